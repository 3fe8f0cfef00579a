//! `lm::bench` on the real models: every throughput cell is measured in order and the report
//! round-trips through JSON; the MiniLM golden comparison passes and a deliberately shifted
//! reference fails it; the embedding benchmark times both paths.

mod common;

use burn::tensor::Device;
use lm::bench::BenchError;
use lm::bench::embed::{self, EmbedBenchConfig};
use lm::bench::throughput::{self, ThroughputConfig, ThroughputReport};
use lm::models::bert::SentenceEncoder;
use lm::{CausalLm, Engine, LanguageModel};

#[test]
fn throughput_measures_every_cell_in_order_on_smollm2() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let model = CausalLm::open_with(&path, &Device::flex(), Engine::Quantized).unwrap();
    let (text, _) = throughput::bench_text(common::shared_data_dir().as_deref()).unwrap();
    let head: String = text.chars().take(4000).collect();
    let corpus = model.encode(&head).unwrap();
    let config = ThroughputConfig {
        batches: vec![1, 2],
        lengths: vec![8, 16],
        decode: 2,
        reps: 2,
    };
    let mut seen = Vec::new();
    let report = throughput::run(&model, &corpus, &config, "cpu", None, |c, peer| {
        assert!(!peer);
        seen.push((c.batch, c.prompt_tokens));
    })
    .unwrap();
    let order = [(1, 8), (2, 8), (1, 16), (2, 16)];
    assert_eq!(seen, [order, order].concat());
    assert_eq!(report.cells.len(), 8);
    assert!(report.llama_cpp.is_empty() && report.peer_ratios().is_empty());
    for c in &report.cells {
        assert_eq!(c.decode_steps, 2);
        assert!(
            c.prefill_tok_per_s.is_finite() && c.prefill_tok_per_s > 0.0,
            "{c:?}"
        );
        assert!(
            c.decode_tok_per_s.is_finite() && c.decode_tok_per_s > 0.0,
            "{c:?}"
        );
        let expect = (c.batch * c.prompt_tokens) as f64 / c.prefill_secs;
        assert!((c.prefill_tok_per_s - expect).abs() < 1e-9 * expect);
    }
    assert_eq!(report.batched_ratios().len(), 2);
    assert_eq!(report.engine, "quantized");

    let file = std::env::temp_dir().join(format!("lm-bench-{}.json", std::process::id()));
    report.write_json(&file).unwrap();
    let back: ThroughputReport =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(back, report);
    std::fs::remove_file(&file).unwrap();

    // A corpus too short for the largest cell is refused before anything is timed.
    let err = throughput::run(&model, &corpus[..20], &config, "cpu", None, |_, _| {
        panic!("nothing may be measured")
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            BenchError::Config {
                field: "corpus",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn minilm_golden_comparison_passes_and_catches_a_shifted_reference() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let Some(golden_dir) = common::golden_dir_or_skip() else {
        return;
    };
    let encoder = SentenceEncoder::from_dir(&dir, &Device::flex()).unwrap();
    let path = golden_dir.join("minilm_embeddings.json");
    let ok = embed::compare_golden(&encoder, &path).unwrap();
    assert!(ok.passed(), "{}", ok.to_markdown());
    assert!(ok.cases.len() >= 5);
    assert!(ok.worst <= embed::GOLDEN_TOLERANCE);

    // The same file with one component moved by 1e-3 must fail.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let x = json["cases"][2]["embedding"][7].as_f64().unwrap();
    json["cases"][2]["embedding"][7] = serde_json::json!(x + 1e-3);
    let shifted = std::env::temp_dir().join(format!("minilm-shifted-{}.json", std::process::id()));
    std::fs::write(&shifted, json.to_string()).unwrap();
    let bad = embed::compare_golden(&encoder, &shifted).unwrap();
    std::fs::remove_file(&shifted).unwrap();
    assert!(!bad.passed());
    assert!(
        (bad.cases[2].single - 1e-3).abs() < 1e-4,
        "{:?}",
        bad.cases[2]
    );
    assert!(
        bad.cases
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.single <= 1e-4)
    );
}

#[test]
fn the_embedding_benchmark_times_both_paths() {
    let Some(dir) = common::minilm_dir_or_skip() else {
        return;
    };
    let encoder = SentenceEncoder::from_dir(&dir, &Device::flex()).unwrap();
    let texts: Vec<String> = embed::bench_sentences().into_iter().take(12).collect();
    let config = EmbedBenchConfig {
        batch: 5,
        rounds: 1,
        int8: true,
    };
    let report = embed::run(&encoder, &texts, &config, "cpu", 2, None).unwrap();
    assert_eq!(report.sentences, 12);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = encoder.tokenize(&refs).unwrap().iter().map(Vec::len).sum();
    assert_eq!(report.tokens, tokens);
    assert!(report.f32.sentences_per_s > 0.0);
    let int8 = report.int8.as_ref().unwrap();
    assert!(int8.cosine_lowest > 0.99 && int8.cosine_mean >= int8.cosine_lowest);
    assert!(report.peer.is_none() && report.f32_over_peer().is_none());
    assert!(report.to_markdown().contains("ours (int8)"));
    let err = embed::run(&encoder, &[], &config, "cpu", 2, None).unwrap_err();
    assert!(matches!(err, BenchError::Config { field: "texts", .. }));
}
