//! The whole study (`scaling_fit::study`): on the synthetic source it recovers the law the
//! ladder was drawn from; bad sources and settings give typed errors naming what is wrong; on
//! the real data (when present) it reproduces Besiroglu et al. (2024).
//!
//! Tolerances (synthetic ladder, seed 0, σ = 0.5 %, coarse 243-start grid, as in
//! `synthetic_recovery.rs`): α, β within 0.03, E within 0.05, frontier exponent a within 0.02;
//! the asymptotic law's forecasts of the noise-free held-out runs (10–1000× the largest budget)
//! within 2 %; the loss → accuracy map (noise-free) within 0.01 accuracy.

use std::path::PathBuf;

use datasets::locate::require_shared_data;
use scaling_fit::study::{SizeOnlyFit, Source, StudyConfig, StudyError, run};
use scaling_fit::{ChinchillaLaw, InitGrid};

fn quick(source: Source) -> StudyConfig {
    StudyConfig {
        source,
        bootstrap: 20,
        band_bootstrap_min: 100,
        frontier_bootstrap: 200,
        grid: InitGrid::coarse(),
        ..StudyConfig::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scaling-fit-study-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn synthetic_study_recovers_the_chinchilla_law() {
    let report = run(&quick(Source::Synthetic { seed: 0 })).unwrap();
    assert_eq!(report.source, Source::Synthetic { seed: 0 });
    assert!(report.chinchilla.is_none() && report.overtraining.is_none());
    assert!(report.pythia.is_none());
    let s = report.synthetic.as_ref().unwrap();
    let truth = ChinchillaLaw::HOFFMANN_2022;
    assert_eq!(s.truth, truth);
    let law = s.approach3.fit.law;
    assert!((law.alpha - truth.alpha).abs() < 0.03, "{law:?}");
    assert!((law.beta - truth.beta).abs() < 0.03, "{law:?}");
    assert!((law.e - truth.e).abs() < 0.05, "{law:?}");
    let (a_true, b_true) = truth.frontier_exponents();
    assert!(
        (law.frontier_exponents().0 - a_true).abs() < 0.02,
        "{law:?}"
    );
    assert!((s.frontier.a() - a_true).abs() < 0.02, "{:?}", s.frontier);
    assert!((s.frontier.b() - b_true).abs() < 0.02, "{:?}", s.frontier);
    // Bootstrap intervals: E, A, B, α, β, a, b, each around its estimate.
    assert_eq!(s.approach3.replicates, 20);
    assert_eq!(s.approach3.intervals.len(), 7);
    for ni in &s.approach3.intervals {
        let i = ni.interval;
        assert!(
            i.lo <= i.estimate && i.estimate <= i.hi,
            "{}: {i:?}",
            ni.name
        );
    }
    assert_eq!(s.held_out.len(), 3);
    for h in &s.held_out {
        assert!(
            (h.forecast.estimate / h.true_loss - 1.0).abs() < 0.02,
            "{h:?}"
        );
        assert!((h.approach3 / h.true_loss - 1.0).abs() < 0.02, "{h:?}");
    }
    for (p, t) in s.accuracy.predicted.iter().zip(&s.accuracy.true_accuracy) {
        assert!((p - t).abs() < 0.01, "accuracy {p} vs truth {t}");
    }

    // The report and its files.
    let md = report.to_markdown();
    assert!(md.starts_with("# Scaling laws\n"));
    assert!(md.contains("## Synthetic ladder"));
    assert!(md.contains("| Approach 2 a | 0.4516 |"), "{md}");
    assert!(md.contains("## Timings"));
    let names: Vec<&str> = report
        .figures
        .iter()
        .map(|f| f.file_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "synthetic_isoflop.svg",
            "synthetic_frontier.svg",
            "synthetic_law.svg",
            "synthetic_sigmoid.svg"
        ]
    );
    let dir = scratch("synthetic");
    report.write(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("report.md")).unwrap(), md);
    for f in &report.figures {
        let svg = std::fs::read_to_string(dir.join(&f.file_name)).unwrap();
        assert!(svg.starts_with("<svg") && svg == f.svg, "{}", f.file_name);
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["source"]["Synthetic"]["seed"], 0);
    let alpha = json["synthetic"]["approach3"]["fit"]["law"]["alpha"]
        .as_f64()
        .unwrap();
    assert_eq!(alpha, law.alpha);
    assert_eq!(json["figures"][0]["file_name"], "synthetic_isoflop.svg");
    assert!(json["figures"][0].get("svg").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn synthetic_study_is_seeded() {
    let a = run(&quick(Source::Synthetic { seed: 3 })).unwrap();
    let b = run(&quick(Source::Synthetic { seed: 3 })).unwrap();
    let c = run(&quick(Source::Synthetic { seed: 4 })).unwrap();
    let law = |r: &scaling_fit::study::StudyReport| r.synthetic.as_ref().unwrap().approach3.fit.law;
    assert_eq!(law(&a), law(&b));
    assert_ne!(law(&a), law(&c));
    assert_eq!(a.figures, b.figures);
}

#[test]
fn a_missing_data_folder_is_a_typed_error_naming_it() {
    let dir = scratch("missing").join("no-such-data");
    let err = run(&quick(Source::Data(dir.clone()))).unwrap_err();
    match &err {
        StudyError::DataDir { path, reason } => {
            assert_eq!(path, &dir);
            assert_eq!(reason, "no such folder");
        }
        other => panic!("expected DataDir, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_data_folder_without_the_data_sets_names_the_missing_one() {
    let dir = scratch("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = run(&quick(Source::Data(dir.clone()))).unwrap_err();
    match &err {
        StudyError::Load { path, source, .. } => {
            assert_eq!(path, &dir.join("chinchilla_scaling"));
            let datasets::error::DatasetError::Io { path: file, .. } = &**source else {
                panic!("expected an I/O error, got {source:?}");
            };
            assert!(file.starts_with(dir.join("chinchilla_scaling")), "{file:?}");
        }
        other => panic!("expected Load(Io), got {other:?}"),
    }
    assert!(err.to_string().contains("chinchilla_scaling"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_data_set_names_the_file_and_field() {
    let dir = scratch("malformed");
    std::fs::create_dir_all(dir.join("chinchilla_scaling")).unwrap();
    std::fs::write(
        dir.join("chinchilla_scaling/svg_extracted_data.csv"),
        "Model Size,Training FLOP,loss\n1e8,1e19,2.5\n2e8,not-a-number,2.4\n",
    )
    .unwrap();
    let err = run(&quick(Source::Data(dir.clone()))).unwrap_err();
    let StudyError::Load { source, .. } = &err else {
        panic!("expected Load, got {err:?}");
    };
    let text = source.to_string();
    assert!(
        text.contains("svg_extracted_data.csv") && text.contains("Training FLOP"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zero_bootstrap_replicates_are_rejected() {
    let mut config = quick(Source::Synthetic { seed: 0 });
    config.bootstrap = 0;
    let err = run(&config).unwrap_err();
    assert!(
        matches!(&err, StudyError::Config { field, .. } if field == "bootstrap"),
        "{err:?}"
    );
}

#[test]
fn real_data_study_reproduces_the_published_chinchilla_fit() {
    let Some(dir) = require_shared_data() else {
        return;
    };
    let report = run(&quick(Source::Data(dir))).unwrap();
    let c = report.chinchilla.as_ref().unwrap();
    assert_eq!((c.rows_read, c.kept, c.all_runs), (245, 240, 245));
    assert_eq!(c.isoflop.len(), 9);
    // Besiroglu et al. (2024): E, α, β within 2 %.
    let (law, epoch) = (c.approach3.fit.law, ChinchillaLaw::BESIROGLU_2024);
    assert!((law.e / epoch.e - 1.0).abs() < 0.02, "{law:?}");
    assert!((law.alpha / epoch.alpha - 1.0).abs() < 0.02, "{law:?}");
    assert!((law.beta / epoch.beta - 1.0).abs() < 0.02, "{law:?}");
    // The asymptotic law forecasts the four larger optima within 3 %.
    assert_eq!(c.forecast.held_out.len(), 4);
    for h in &c.forecast.held_out {
        assert!(
            (h.forecast.estimate / h.observed - 1.0).abs() < 0.03,
            "{h:?}"
        );
    }
    let o = report.overtraining.as_ref().unwrap();
    assert_eq!(o.runs, 104);
    assert_eq!(o.sets.len(), 3);
    assert_eq!(o.errors.approach3.runs, 9);
    let p = report.pythia.as_ref().unwrap();
    assert_eq!(p.tasks.len(), 6);
    assert!(
        p.tasks
            .iter()
            .all(|t| t.checkpoints_mae < 0.05 && matches!(t.size_only, SizeOnlyFit::Fitted { .. })),
        "{:?}",
        p.tasks
    );
    let names: Vec<&str> = report
        .figures
        .iter()
        .map(|f| f.file_name.as_str())
        .collect();
    for want in [
        "chinchilla_isoflop.svg",
        "chinchilla_frontier.svg",
        "chinchilla_law.svg",
        "overtraining.svg",
        "overtraining_sigmoid.svg",
        "pythia_lambada_openai.svg",
        "pythia_arc_easy.svg",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}
