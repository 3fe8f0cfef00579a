//! SmolLM2-135M-Instruct (Q4_1 GGUF) against the PyTorch reference in
//! `shared/golden/smollm2_logits.json`: input ids, last-position logits (top-5 order and values
//! within 1e-2), teacher-forced log-probs within 1e-2, greedy 32-token continuations.

mod common;
#[path = "common/golden_lm.rs"]
mod golden_lm;

use lm::CausalLm;

#[test]
fn smollm2_matches_the_pytorch_reference() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("smollm2_logits.json") else {
        return;
    };
    let device = common::test_device();
    let model = CausalLm::from_gguf(&path, &device).unwrap();
    let d = golden_lm::check_golden_logits(&model, &golden);
    let (worst_logit, worst_lp) = (d.logit, d.logprob);
    eprintln!("max |logit diff| = {worst_logit:.2e}, max |log-prob diff| = {worst_lp:.2e}");
    assert!(worst_logit < 1e-2, "logits differ by {worst_logit}");
    assert!(worst_lp < 1e-2, "log-probs differ by {worst_lp}");
}
