//! Batched, left-padded log-likelihood scoring equals one-request-at-a-time scoring on the real
//! SmolLM2 weights (requests of different lengths share a batch).

mod common;

use burn::tensor::Device;
use lm::{CausalLm, LanguageModel, loglikelihood};

#[test]
fn batched_scoring_matches_unbatched() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let model = CausalLm::from_gguf(&path, &Device::flex()).unwrap();
    let texts = [
        ("The capital of France is", " Paris"),
        (
            "Roof shingle removal: A man is sitting on a roof. He",
            " starts pulling up roofing.",
        ),
        ("1 + 1 =", " 2"),
        (
            "Once upon a time there was a little dog who loved to",
            " run in the park every morning",
        ),
    ];
    let reqs: Vec<(Vec<u32>, Vec<u32>)> = texts
        .iter()
        .map(|(c, x)| (model.encode(c).unwrap(), model.encode(x).unwrap()))
        .collect();
    let single: Vec<f64> = reqs
        .iter()
        .map(|r| loglikelihood(&model, std::slice::from_ref(r), 1).unwrap()[0].logprob)
        .collect();
    let batched = loglikelihood(&model, &reqs, 4).unwrap();
    let worst = single
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b.logprob).abs())
        .fold(0.0, f64::max);
    eprintln!("batched vs single: max |Δ loglik| = {worst:e}");
    assert!(worst < 1e-3, "{worst}");
}
