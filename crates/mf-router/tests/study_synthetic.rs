//! The studies on the synthetic source: they route better than random, write their files,
//! and fail with typed errors on bad input.

mod common;

use std::path::PathBuf;

use evals::routing::MeanStd;
use mf_router::MfError;
use mf_router::study::Source;
use mf_router::study::code::{CodeConfig, run as run_code};
use mf_router::study::routellm::{RouteLlmConfig, run as run_routellm};

fn synthetic_routellm() -> RouteLlmConfig {
    RouteLlmConfig {
        source: Source::Synthetic {
            seed: 3,
            n_items: 1200,
        },
        quick: true,
        ..RouteLlmConfig::default()
    }
}

#[test]
fn synthetic_mf_routes_better_than_random() {
    let report = run_routellm(&synthetic_routellm(), None).unwrap();
    assert_eq!(report.seeds.len(), 2);
    assert!(report.data.synthetic);
    for (set, pick) in [("held-out questions", 0usize), ("held-out groups", 2usize)] {
        let metrics: Vec<_> = report
            .seeds
            .iter()
            .map(|s| match pick {
                0 => &s.held_out_questions,
                _ => &s.held_out_subjects,
            })
            .collect();
        let random = MeanStd::of(&metrics.iter().map(|m| m.random_apgr).collect::<Vec<_>>());
        for r in 0..2 {
            let mf = MeanStd::of(
                &metrics
                    .iter()
                    .map(|m| m.routers[r].apgr_area)
                    .collect::<Vec<_>>(),
            );
            let name = &metrics[0].routers[r].router;
            assert!(
                mf.mean > random.mean + 0.05,
                "{set}, {name}: MF APGR {:.3} vs random {:.3}",
                mf.mean,
                random.mean
            );
        }
    }
    // The N-model router beats the zero router's hull.
    let multi = report.multi.as_ref().unwrap();
    let zero = multi.report.zero_router_aiq;
    assert!(
        multi.report.routers[1..]
            .iter()
            .any(|(_, _, aiq)| *aiq > zero)
    );
    assert!(report.speed.checkpoint_identical);
    assert!(report.speed.int8.is_none());
}

#[test]
fn synthetic_reports_write_their_files() {
    let config = RouteLlmConfig {
        seeds: Some(1),
        epochs: Some(3),
        ..synthetic_routellm()
    };
    let report = run_routellm(&config, None).unwrap();
    let dir = common::tmp_dir("study-routellm");
    report.write(&dir).unwrap();
    for f in [
        "report.md",
        "summary.json",
        "synthetic_seed0.svg",
        "synthetic_shifted_seed0.svg",
        "synthetic_groups_seed0.svg",
        "synthetic_multi.svg",
        "checkpoint/config.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in ["mmlu", "gsm8k", "subjects", "multi", "speed"] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("not real data"));
    // The whole report serialises.
    assert!(
        serde_json::to_string(&report)
            .unwrap()
            .contains("held_out_questions")
    );
}

#[test]
fn synthetic_code_study_beats_random_routing() {
    let config = CodeConfig {
        source: Source::Synthetic {
            seed: 2,
            n_items: 600,
        },
        seeds: 2,
        ..CodeConfig::default()
    };
    let report = run_code(&config, None).unwrap();
    assert_eq!(report.pairs.len(), 3);
    // Summed over pairs and thresholds, the router's gap is above a random router's at the
    // same share.
    let (mut router, mut random) = (0.0, 0.0);
    for p in &report.pairs {
        for r in &p.rows {
            router += r.perf_gap.mean;
            random += r.random_expected_gap_at_router_share;
        }
    }
    assert!(
        router > random,
        "router {router:.1} pp vs random {random:.1} pp"
    );
    let dir = common::tmp_dir("study-code");
    report.write(&dir).unwrap();
    for p in &report.pairs {
        assert!(dir.join(format!("{}.svg", p.slug)).is_file());
        assert!(
            dir.join(format!("checkpoint-{}/config.json", p.slug))
                .is_file()
        );
    }
    assert!(dir.join("report.md").is_file() && dir.join("summary.json").is_file());
}

#[test]
fn a_missing_data_folder_is_a_typed_error_naming_it() {
    let missing = PathBuf::from("/definitely/not/here/mf-router-data");
    let config = RouteLlmConfig {
        source: Source::Data(missing.clone()),
        ..RouteLlmConfig::default()
    };
    let err = run_routellm(&config, None).unwrap_err();
    match &err {
        MfError::DataDir { path, .. } => assert_eq!(path, &missing),
        other => panic!("expected DataDir, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("/definitely/not/here/mf-router-data")
    );
    let err = run_code(
        &CodeConfig {
            source: Source::Data(missing.clone()),
            ..CodeConfig::default()
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, MfError::DataDir { ref path, .. } if path == &missing));
}

#[test]
fn real_data_without_an_encoder_and_bad_fields_are_typed_errors() {
    let dir = common::tmp_dir("study-empty-data");
    let err = run_routellm(
        &RouteLlmConfig {
            source: Source::Data(dir),
            ..RouteLlmConfig::default()
        },
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, MfError::MissingEncoder { study: "routellm" }),
        "{err}"
    );
    let err = run_routellm(
        &RouteLlmConfig {
            seeds: Some(0),
            ..synthetic_routellm()
        },
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, MfError::InvalidParameter { ref name, .. } if name == "seeds"),
        "{err}"
    );
    let err = run_routellm(
        &RouteLlmConfig {
            held_out_subjects: 40,
            ..synthetic_routellm()
        },
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("held_out_subjects"), "{err}");
    let err = run_code(
        &CodeConfig {
            source: Source::Synthetic {
                seed: 0,
                n_items: 5,
            },
            ..CodeConfig::default()
        },
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("n_items"), "{err}");
}
