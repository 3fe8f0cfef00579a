//! all-MiniLM-L6-v2 against sentence-transformers: identical input_ids, mean-pooled states and
//! normalised embeddings within 1e-4 (max abs), one text at a time and batched together.

mod common;

use burn::tensor::Device;
use lm::models::bert::SentenceEncoder;

/// Tolerance on every embedding component (shared/golden/README.md).
const TOLERANCE: f32 = 1e-4;

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("minilm_embeddings.json") else {
        return;
    };
    let device = Device::flex();
    let encoder = SentenceEncoder::from_dir(&dir, &device).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();

    // Tokenisation: identical ids, truncation to 256.
    let ids = encoder.tokenize(&texts).unwrap();
    for (case, got) in cases.iter().zip(&ids) {
        let expected: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(got, &expected, "input_ids of {:?}", case["text"]);
    }

    // One text per forward pass (no padding), then all texts in one padded batch.
    let single: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| encoder.embed(&[*t]).unwrap().remove(0))
        .collect();
    // Default threads (one pass per thread), and one thread with passes of at most 4 texts: both
    // sort by length internally and must give the vectors back in input order.
    let batched = encoder.embed(&texts).unwrap();
    let serial = encoder
        .clone()
        .with_threads(1)
        .with_max_batch(4)
        .embed(&texts)
        .unwrap();
    let mut worst = 0.0f32;
    for (i, case) in cases.iter().enumerate() {
        let expected = floats(&case["embedding"]);
        let e1 = max_abs_diff(&single[i], &expected);
        let e2 = max_abs_diff(&batched[i], &expected).max(max_abs_diff(&serial[i], &expected));
        eprintln!(
            "{:>4} tokens  max|Δ| single {e1:.2e}  batched {e2:.2e}  {:?}",
            case["input_ids"].as_array().unwrap().len(),
            texts[i].chars().take(40).collect::<String>()
        );
        assert!(
            e1 <= TOLERANCE && e2 <= TOLERANCE,
            "{:?}: max abs error {e1:e} (single) / {e2:e} (batched) > {TOLERANCE:e}",
            case["text"]
        );
        worst = worst.max(e1).max(e2);
    }
    eprintln!(
        "worst max abs error over {} texts: {worst:.3e}",
        cases.len()
    );
}

/// The golden `mean_pooled_unnormalised` vectors all have unit norm (within 1e-7): they were
/// captured after sentence-transformers' `Normalize` module. So this checks that our pooled
/// vectors, which are not unit length, point the same way, and that normalising is the only
/// difference.
#[test]
fn minilm_mean_pooled_states_match_sentence_transformers() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("minilm_embeddings.json") else {
        return;
    };
    let encoder = SentenceEncoder::from_dir(&dir, &Device::flex()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let ids = encoder.tokenize(&texts).unwrap();
    let pooled = encoder.embed_ids_unnormalized(&ids).unwrap();
    let mut worst = 0.0f32;
    for (case, got) in cases.iter().zip(&pooled) {
        let expected = floats(&case["mean_pooled_unnormalised"]);
        let golden_norm = expected.iter().map(|x| x * x).sum::<f32>().sqrt();
        let norm = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut unit = got.clone();
        lm::models::bert::l2_normalize(&mut unit);
        let err = max_abs_diff(&unit, &expected);
        eprintln!(
            "pooled norm {norm:.4} (golden {golden_norm:.6})  max|Δ| after normalising {err:.2e}"
        );
        assert!(
            err <= TOLERANCE,
            "{:?}: max abs error {err:e}",
            case["text"]
        );
        worst = worst.max(err);
    }
    eprintln!("mean-pooled worst max abs error (directions): {worst:.3e}");
}

/// The int8 path ([`SentenceEncoder::quantized`]) is an approximation: its embeddings must stay
/// within cosine 0.99 of sentence-transformers' on every golden text, in input order, whether
/// the texts run one at a time or together (rows concatenated), and identical between the two.
#[test]
fn int8_embeddings_stay_close_to_f32() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("minilm_embeddings.json") else {
        return;
    };
    let encoder = SentenceEncoder::from_dir(&dir, &Device::flex())
        .unwrap()
        .quantized()
        .unwrap();
    assert!(encoder.is_quantized());
    let cases = golden["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let batched = encoder.embed(&texts).unwrap();
    let small_passes = encoder.clone().with_max_batch(3).embed(&texts).unwrap();
    let mut worst = 1.0f32;
    for (i, case) in cases.iter().enumerate() {
        let single = encoder.embed(&[texts[i]]).unwrap().remove(0);
        let expected = floats(&case["embedding"]);
        let cos: f32 = single.iter().zip(&expected).map(|(a, b)| a * b).sum();
        let norm: f32 = single.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        // Row blocks, not rows, depend on the batch: the per-row quantisation makes each
        // sequence's result independent of its neighbours, up to f32 summation order.
        let drift = max_abs_diff(&single, &batched[i]).max(max_abs_diff(&single, &small_passes[i]));
        eprintln!(
            "int8 cosine to sentence-transformers {cos:.5}, batch drift {drift:.1e}: {:?}",
            texts[i].chars().take(40).collect::<String>()
        );
        assert!(cos > 0.99, "{:?}: cosine {cos}", texts[i]);
        assert!(drift < 1e-5, "{:?}: batched differs by {drift}", texts[i]);
        worst = worst.min(cos);
    }
    eprintln!("int8: lowest cosine over {} texts {worst:.5}", cases.len());
}
