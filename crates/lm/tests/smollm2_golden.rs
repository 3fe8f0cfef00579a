//! SmolLM2-135M-Instruct (Q4_1 GGUF) against the PyTorch reference in
//! `shared/golden/smollm2_logits.json`: input ids, last-position logits (top-5 order and values
//! within 1e-2), teacher-forced log-probs within 1e-2, greedy 32-token continuations.

mod common;

use lm::{
    GenerateOptions, LanguageModel, CausalLm, LogitsAt, generate, tensor_io::read_f32,
    token_logprobs,
};

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

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
    let mut worst_logit = 0f32;
    let mut worst_lp = 0f32;
    for case in golden["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let ids = model.encode(prompt).unwrap();
        assert_eq!(ids, u32s(&case["input_ids"]), "input ids of {prompt:?}");

        // Last-position logits.
        let mut cache = model.new_cache(1);
        let logits = read_f32(
            model
                .forward(&[ids.clone()], &mut cache, LogitsAt::Last)
                .unwrap(),
        )
        .unwrap();
        let top = &case["last_logits_top20"];
        let want_ids = u32s(&top["ids"]);
        let want_vals = f32s(&top["values"]);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let got_top5: Vec<u32> = order[..5].iter().map(|&i| i as u32).collect();
        assert_eq!(got_top5, want_ids[..5], "top-5 of {prompt:?}");
        for (&id, &v) in want_ids.iter().zip(&want_vals) {
            worst_logit = worst_logit.max((logits[id as usize] - v).abs());
        }
        for (i, v) in f32s(&case["last_logits_first16"]).iter().enumerate() {
            worst_logit = worst_logit.max((logits[i] - v).abs());
        }

        // Teacher-forced log-probs of every next prompt token.
        let lps = token_logprobs(&model, &ids).unwrap();
        let want = f32s(&case["teacher_forced_logprobs"]);
        assert_eq!(lps.len(), want.len());
        for (a, b) in lps.iter().zip(&want) {
            worst_lp = worst_lp.max((a - b).abs());
        }

        // Greedy continuation (stops at EOS like the reference).
        let g = generate(
            &model,
            &ids,
            &GenerateOptions {
                max_new_tokens: 32,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            g.tokens,
            u32s(&case["greedy_32"]),
            "greedy continuation of {prompt:?}: {:?}",
            g.text
        );
        assert_eq!(g.text, case["greedy_32_text"].as_str().unwrap());
    }
    eprintln!("max |logit diff| = {worst_logit:.2e}, max |log-prob diff| = {worst_lp:.2e}");
    assert!(worst_logit < 1e-2, "logits differ by {worst_logit}");
    assert!(worst_lp < 1e-2, "log-probs differ by {worst_lp}");
}
