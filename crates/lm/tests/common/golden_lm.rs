//! One check of a causal LM against a `*_logits.json` golden file (the format of
//! `smollm2_logits.json` and `gemma3_logits.json`): input ids, last-position logits (top-5 order
//! and values), teacher-forced log-probs, greedy 32-token continuations.

use lm::{
    GenerateOptions, LanguageModel, LogitsAt, generate, nn::tensor_io::read_f32, token_logprobs,
};

/// A JSON array of numbers as f32.
pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of integers as u32.
pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Worst differences found by [`check_golden_logits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GoldenDiff {
    /// Max |Δlogit| over the golden last-position values.
    pub logit: f32,
    /// Max |Δ teacher-forced log-prob|.
    pub logprob: f32,
}

/// Checks `model` against every case of `golden`, asserting identical input ids (prompts fed as
/// [`LanguageModel::encode_prompt`]), top-5 order and greedy continuations; returns the worst
/// numeric differences for the caller's tolerance.
pub fn check_golden_logits<M: LanguageModel>(model: &M, golden: &serde_json::Value) -> GoldenDiff {
    let mut d = GoldenDiff::default();
    for case in golden["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let ids = model.encode_prompt(prompt).unwrap();
        assert_eq!(ids, u32s(&case["input_ids"]), "input ids of {prompt:?}");

        let mut cache = model.new_cache(1);
        let logits = read_f32(
            model
                .forward(std::slice::from_ref(&ids), &mut cache, LogitsAt::Last)
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
            d.logit = d.logit.max((logits[id as usize] - v).abs());
        }
        for (i, v) in f32s(&case["last_logits_first16"]).iter().enumerate() {
            d.logit = d.logit.max((logits[i] - v).abs());
        }

        let lps = token_logprobs(model, &ids).unwrap();
        let want = f32s(&case["teacher_forced_logprobs"]);
        assert_eq!(lps.len(), want.len());
        for (a, b) in lps.iter().zip(&want) {
            d.logprob = d.logprob.max((a - b).abs());
        }

        // Greedy continuation (stops at a stop token like the reference).
        let g = generate(
            model,
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
    d
}
