//! Gemma 3 270M (pretrained, Q4_K_M GGUF) against transformers in
//! `shared/golden/gemma3_logits.json`: input ids from the GGUF-metadata SentencePiece tokenizer
//! (BOS first), last-position logits (top-5 order, values within 1e-2), teacher-forced log-probs
//! within 1e-2 — including a 701-token prompt, past the local layers' 512-token sliding window —
//! and greedy 32-token continuations.

mod common;
#[path = "common/golden_lm.rs"]
mod golden_lm;

use lm::{CausalLm, LanguageModel};

#[test]
fn gemma3_matches_the_pytorch_reference() {
    let Some(path) = common::gemma3_gguf_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("gemma3_logits.json") else {
        return;
    };
    let model = CausalLm::from_gguf(&path, &common::test_device()).unwrap();
    assert_eq!(model.prefix_tokens(), &[2], "BOS first (add_bos_token)");
    let longest = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["input_ids"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert!(
        longest > 512,
        "the golden file must exercise the sliding window"
    );
    let d = golden_lm::check_golden_logits(&model, &golden);
    eprintln!(
        "Gemma 3: max |logit diff| = {:.2e}, max |log-prob diff| = {:.2e}",
        d.logit, d.logprob
    );
    assert!(d.logit < 1e-2, "logits differ by {}", d.logit);
    assert!(d.logprob < 1e-2, "log-probs differ by {}", d.logprob);
}

/// Without the sliding window (every layer global) the 701-token prompt's late log-probs move
/// far outside the tolerance: the golden file really checks the window.
#[test]
fn the_sliding_window_matters_on_the_long_prompt() {
    let Some(path) = common::gemma3_gguf_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("gemma3_logits.json") else {
        return;
    };
    let file = lm::GgufFile::open(&path).unwrap();
    let (cfg, w) = lm::models::gemma3::load_gguf(&file, "gemma3").unwrap();
    let mut spec = cfg.spec().unwrap();
    for l in &mut spec.layers {
        l.window = None;
    }
    let model = lm::Transformer::new(spec, &w, &common::test_device()).unwrap();
    drop(w);
    let case = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|c| c["input_ids"].as_array().unwrap().len())
        .unwrap();
    let ids = golden_lm::u32s(&case["input_ids"]);
    let want = golden_lm::f32s(&case["teacher_forced_logprobs"]);
    let mut cache = model.new_cache(1);
    let logits = lm::nn::tensor_io::read_f32(
        model
            .forward(std::slice::from_ref(&ids), &mut cache, lm::LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    let v = cfg.vocab_size;
    let mut worst = 0f32;
    for (i, w) in want.iter().enumerate() {
        let row = &logits[i * v..(i + 1) * v];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
        worst = worst.max((row[ids[i + 1] as usize] - lse - w).abs());
    }
    eprintln!("without the window: max |log-prob diff| = {worst:.2e}");
    assert!(worst > 1e-1, "{worst}");
}
