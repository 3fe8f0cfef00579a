//! The study pipeline end to end on a tiny random OLMoE with synthetic text: every experiment
//! writes its summary JSON, its Parquet routing log (readable, consistent with the summary) and
//! sidecar; the results table, figure and report appear; a rerun resumes (skips finished
//! experiments). And the testbed identity at the harness level: a dense tiny Llama and its MoE
//! split scored with all experts give the same log-likelihoods.

use std::path::PathBuf;

use bh_moe::study::pipeline::{ModelSource, StudyPlan, run};
use bh_moe::study::{Dataset, RoutingConfig, seed_grid};
use bh_moe::testbed::{Testbed, TestbedOptions, windows};
use bh_moe::{UnitWeights, routed::RoutedLm, synthetic};
use evals::harness::runner::evaluate_loglik_items;
use evals::harness::{Scorer, ScoringMode};
use routing_core::expert::TopK;

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bh-study-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn synthetic_study_writes_every_log_and_resumes() {
    let out = out_dir("synthetic");
    let mut plan = StudyPlan::new(ModelSource::Synthetic(None));
    plan.limit = 3;
    plan.grid = seed_grid(&[2, 16], &[16], &[0.3, 0.6]);
    plan.calibration_tokens = 1_024;
    plan.window = 64;
    plan.output = out.clone();
    plan.progress = false;
    let device = burn::tensor::Device::flex();
    let report = run(&plan, &device, &mut |_| {}).unwrap();
    // 2 top-k + 2 BH + 2 top-p (matched to the two max_k = E BH configs), × 3 datasets.
    assert_eq!(report.experiments.len(), 18);
    assert_eq!(
        report
            .experiments
            .iter()
            .filter(|e| matches!(e.routing, RoutingConfig::TopP { .. }))
            .count(),
        6
    );
    let logs = out.join("logs");
    for e in &report.experiments {
        let stem = format!("{}_{}", e.config, e.dataset.name());
        assert!(logs.join(format!("{stem}.json")).is_file(), "{stem}");
        assert!(logs.join(format!("{stem}_internal_routing.json")).is_file());
        let ks = bh_moe::study::log::read_routing_k(
            &logs.join(format!("{stem}_internal_routing.parquet")),
        )
        .unwrap();
        let hist_total: u64 = e.k_histogram.iter().sum();
        assert_eq!(
            ks.len() as u64,
            hist_total,
            "{stem}: one row per (token, layer)"
        );
        let mean = ks.iter().map(|&k| f64::from(k)).sum::<f64>() / ks.len() as f64;
        assert!((mean - e.mean_k).abs() < 1e-9);
        match e.routing {
            RoutingConfig::TopK { k } => assert!(ks.iter().all(|&x| x as usize == k)),
            RoutingConfig::Bh { min_k, max_k, .. } => {
                assert!(ks.iter().all(|&x| (min_k..=max_k).contains(&(x as usize))))
            }
            RoutingConfig::TopP { .. } => assert!(ks.iter().all(|&x| x >= 1)),
        }
        assert_eq!(e.metrics.output_determinism, 1.0, "{stem}");
        if e.dataset == Dataset::Wikitext {
            assert!(e.metrics.perplexity.is_some_and(|p| p > 1.0));
        } else {
            assert!(e.metrics.task_accuracy.is_some());
        }
    }
    for f in [
        "bh_routing_results.csv",
        "bh_routing_results.json",
        "bh_routing_figure.svg",
        "report.md",
        "nulls.json",
        "top_p_matching.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(out.join("bh_routing_results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 19);
    // Rerun: everything is found and skipped, with identical summaries.
    // The calibration pass is skipped too: nulls and the top-p matching come from their files.
    let t = std::time::Instant::now();
    let mut lines = Vec::new();
    let again = run(&plan, &device, &mut |l| lines.push(l.to_string())).unwrap();
    assert_eq!(again.experiments, report.experiments);
    assert!(
        lines.iter().any(|l| l.contains("nulls reused")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("top-p matching reused")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("collecting router logits")),
        "{lines:?}"
    );
    eprintln!("resumed run: {:.2} s", t.elapsed().as_secs_f64());
    // Another KDE seed recalibrates (the cached nulls were drawn with the first), and so must
    // the top-p matching built on them.
    let mut reseeded = plan.clone();
    reseeded.seed += 1;
    let mut lines = Vec::new();
    let out2 = out_dir("synthetic-reseeded");
    reseeded.output = out2.clone();
    std::fs::create_dir_all(&out2).unwrap();
    for f in ["nulls.json", "top_p_matching.json"] {
        std::fs::copy(out.join(f), out2.join(f)).unwrap();
    }
    run(&reseeded, &device, &mut |l| lines.push(l.to_string())).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("collecting router logits"))
            && !lines.iter().any(|l| l.contains("reused")),
        "{lines:?}"
    );
    std::fs::remove_dir_all(&out2).ok();
    // A larger limit into the same folder would silently report the 3-item results: refused,
    // naming the summary and the field.
    let mut bigger = plan.clone();
    bigger.limit = 4;
    let e = run(&bigger, &device, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains(".json") && e.contains("samples"), "{e}");
    // A summary cut short by a crash is run again, not an error.
    let first = &report.experiments[0];
    let stem = format!("{}_{}", first.config, first.dataset.name());
    std::fs::write(logs.join(format!("{stem}.json")), "{\"config\": \"8exp").unwrap();
    let third = run(&plan, &device, &mut |_| {}).unwrap();
    let (a, b) = (&third.experiments[0], &report.experiments[0]);
    assert_eq!((a.samples, a.mean_k), (b.samples, b.mean_k));
    assert_eq!(a.k_histogram, b.k_histogram);
    assert_eq!(third.experiments[1..], report.experiments[1..]);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn testbed_with_all_experts_scores_like_the_dense_model() {
    let cfg = lm::LlamaConfig {
        vocab_size: 256,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_id: Vec::new(),
    };
    let spec = cfg.spec().unwrap();
    let dense_w = lm::HostWeights::random(&spec, 4, 0.4, 0.1);
    let device = burn::tensor::Device::flex();
    let tok = synthetic::byte_tokenizer();
    let ids: Vec<u32> = (0..512u32).map(|i| (i * 37 + 11) % 256).collect();
    let tb = Testbed::build(
        &spec,
        &dense_w,
        &windows(&ids, 64, 512),
        "synthetic ids",
        "tiny",
        &TestbedOptions {
            experts: 8,
            ..TestbedOptions::default()
        },
        &device,
        |_, _| {},
    )
    .unwrap();
    let moe = tb.model(&spec, &dense_w, &device).unwrap();
    let dense = lm::CausalLm::new(
        "dense",
        spec.clone(),
        &dense_w,
        tok.clone(),
        None,
        &[],
        &device,
    )
    .unwrap();
    let routed = RoutedLm::new(
        "moe",
        &moe,
        &tok,
        Vec::new(),
        None,
        Box::new(UnitWeights(TopK::new(8, false).unwrap())),
    );
    let items: Vec<_> = bh_moe::study::synthetic_datasets(4, 2)
        .into_iter()
        .flat_map(|d| d.items)
        .collect();
    let mut a = Scorer::new(&dense, ScoringMode::PrefixCache, 512);
    let mut b = Scorer::new(&routed, ScoringMode::PrefixCache, 512);
    let ra = evaluate_loglik_items(&mut a, &items).unwrap();
    let rb = evaluate_loglik_items(&mut b, &items).unwrap();
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.correct, y.correct, "{}", x.id);
        for (p, q) in x.logliks.iter().zip(&y.logliks) {
            assert!(
                (p - q).abs() < 1e-3 * p.abs().max(1.0),
                "{}: {p} vs {q}",
                x.id
            );
        }
    }
    // Fewer experts change the scores.
    routed.set_selector(Box::new(UnitWeights(TopK::new(2, false).unwrap())));
    let mut c = Scorer::new(&routed, ScoringMode::PrefixCache, 512);
    let rc = evaluate_loglik_items(&mut c, &items).unwrap();
    assert!(ra.iter().zip(&rc).any(|(x, y)| x.logliks != y.logliks));
}
