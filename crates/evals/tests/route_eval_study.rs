//! The `route_eval` study as library code: the synthetic default, presets, custom tables,
//! typed errors and the written report.

use std::path::{Path, PathBuf};

use evals::EvalError;
use evals::routing::route_eval::{
    DEFAULT_SYNTHETIC_SEED, Preset, RouterScores, SectionReport, Source, StudyConfig,
    UnknownPreset, run,
};

/// A fresh, empty temporary folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("evals-route-eval-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A RouteLLM-style GSM8K response file with `n` questions: the weak model answers the
/// first two thirds, the strong one all but the last question.
fn write_gsm8k(dir: &Path, n: usize) -> PathBuf {
    let sub = dir.join("routellm_evals/gsm8k");
    std::fs::create_dir_all(&sub).unwrap();
    let mut csv = String::from(
        "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1_response,gpt-4-1106-preview_response\n",
    );
    for i in 0..n {
        let weak = if i < 2 * n / 3 { "True" } else { "False" };
        let strong = if i + 1 < n { "True" } else { "False" };
        csv.push_str(&format!("question {i}?,{weak},{strong},a,b\n"));
    }
    let path = sub.join("gsm8k_responses.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn synthetic_default_noisy_router_lies_between_random_and_oracle() {
    let report = run(&StudyConfig::default()).unwrap();
    let slugs: Vec<&str> = report.sections.iter().map(|s| s.slug.as_str()).collect();
    assert_eq!(
        slugs,
        ["synthetic_pair", "synthetic_multi", "synthetic_study"]
    );

    let SectionReport::Pair(pair) = &report.sections[0].report else {
        panic!("first section is not a pair view");
    };
    assert_eq!(pair.n_prompts, 1000);
    let (oracle, noisy) = (&pair.summaries[0], &pair.summaries[1]);
    assert_eq!(oracle.router, "oracle");
    assert_eq!(noisy.router, "difficulty+noise(sd=0.5)");
    let random = pair.random.apgr.mean;
    assert!(
        random < noisy.apgr_area && noisy.apgr_area < oracle.apgr_area,
        "random {random}, noisy {}, oracle {}",
        noisy.apgr_area,
        oracle.apgr_area
    );

    let SectionReport::Multi(multi) = &report.sections[1].report else {
        panic!("second section is not an N-model view");
    };
    let aiq: Vec<(&str, f64)> = multi
        .routers
        .iter()
        .map(|(n, _, a)| (n.as_str(), *a))
        .collect();
    assert_eq!(aiq[0].0, "oracle");
    assert!(
        multi.zero_router_aiq < aiq[1].1 && aiq[1].1 < aiq[0].1,
        "{aiq:?}"
    );

    let SectionReport::Study(study) = &report.sections[2].report else {
        panic!("third section is not a study table");
    };
    assert_eq!(study.rows.len(), 6);
    assert_eq!(study.rows[0].pass_gap.mean, 0.0);
    assert!(study.rows[5].pass_gap.mean < -10.0);

    let text = report.stdout_table();
    assert!(text.contains("\n== Synthetic pair (test split) (1000 prompts, "));
    assert!(text.contains("| difficulty+noise(sd=0.5) | "));
    assert!(report.notes[0].contains("synthetic data"));
}

#[test]
fn synthetic_seed_changes_the_data_and_the_default_seed_reproduces() {
    let at = |seed| {
        let cfg = StudyConfig {
            source: Source::Synthetic { seed },
            ..StudyConfig::default()
        };
        let r = run(&cfg).unwrap();
        match &r.sections[0].report {
            SectionReport::Pair(p) => (p.weak_quality, p.strong_quality),
            _ => panic!("first section is not a pair view"),
        }
    };
    assert_eq!(at(DEFAULT_SYNTHETIC_SEED), at(DEFAULT_SYNTHETIC_SEED));
    assert_ne!(at(DEFAULT_SYNTHETIC_SEED), at(DEFAULT_SYNTHETIC_SEED + 1));
    // The synthetic preset is the default source and needs no data folder, even a bad one.
    let via_preset = StudyConfig {
        source: Source::Presets {
            presets: vec![Preset::Synthetic],
            data_dir: Some(PathBuf::from("/no/such/folder")),
        },
        ..StudyConfig::default()
    };
    let a = run(&via_preset).unwrap().summary_json().unwrap();
    let b = run(&StudyConfig::default())
        .unwrap()
        .summary_json()
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn unknown_preset_is_a_typed_error_listing_the_presets() {
    let e: UnknownPreset = "mmlu-pro".parse::<Preset>().unwrap_err();
    assert_eq!(e.name, "mmlu-pro");
    let msg = e.to_string();
    for name in Preset::NAMES {
        assert!(msg.contains(name), "{msg} lacks {name}");
    }
    assert_eq!(
        "routerbench-winogrande".parse::<Preset>(),
        Ok(Preset::RouterbenchWinogrande)
    );
    assert_eq!(Preset::All.expand(), Preset::REAL_DATA.to_vec());
}

#[test]
fn missing_data_dir_is_a_typed_error_naming_the_path() {
    let missing = std::env::temp_dir().join("evals-route-eval-no-such-folder");
    let cfg = StudyConfig {
        source: Source::preset(Preset::Gsm8k, Some(missing.clone())),
        ..StudyConfig::default()
    };
    match run(&cfg).unwrap_err() {
        EvalError::DataDir { path, reason } => {
            assert_eq!(path.as_deref(), Some(missing.as_path()));
            assert_eq!(reason, "no such folder");
        }
        other => panic!("expected DataDir, got {other:?}"),
    }
    // A data folder without the preset's files: the loader's error names the file.
    let empty = temp_dir("empty");
    let cfg = StudyConfig {
        source: Source::preset(Preset::Gsm8k, Some(empty.clone())),
        ..StudyConfig::default()
    };
    let e = run(&cfg).unwrap_err();
    assert!(matches!(e, EvalError::Data(_)), "{e:?}");
    assert!(e.to_string().contains("gsm8k_responses.csv"), "{e}");
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn preset_with_router_scores_writes_the_report() {
    let dir = temp_dir("gsm8k");
    write_gsm8k(&dir, 30);
    // A router that knows the answer: higher scores exactly where only the strong model is
    // right (distinct scores, so that every share is reachable by a threshold).
    let mut scores = String::from("id,score\n");
    for i in 0..30 {
        let s = f64::from(u8::from((20..29).contains(&i))) + f64::from(i) / 100.0;
        scores.push_str(&format!("gsm8k/{i},{s}\n"));
    }
    let scores_path = dir.join("scores.csv");
    std::fs::write(&scores_path, scores).unwrap();
    let cfg = StudyConfig {
        source: Source::Presets {
            presets: vec![Preset::Gsm8k, Preset::Gsm8k],
            data_dir: Some(dir.clone()),
        },
        routers: vec![RouterScores {
            name: "knows".into(),
            path: scores_path,
        }],
        ..StudyConfig::default()
    };
    let report = run(&cfg).unwrap();
    assert_eq!(report.sections.len(), 1, "repeated presets run once");
    let s = &report.sections[0];
    assert_eq!(s.slug, "gsm8k");
    assert_eq!(s.loaded.as_ref().unwrap().rows_read, 30);
    let SectionReport::Pair(pair) = &s.report else {
        panic!("gsm8k is a pair view");
    };
    assert_eq!(
        (pair.weak_quality, pair.strong_quality),
        (20.0 / 30.0, 29.0 / 30.0)
    );
    let knows = &pair.summaries[1];
    assert_eq!(knows.router, "knows");
    // Like the oracle, it recovers the whole gap once the 9 questions (30%) only the strong
    // model answers go to it: APGR (area) ≈ 1 − 0.3 / 2 = 0.85; random ≈ 0.5.
    let oracle = pair.summaries[0].apgr_area;
    assert!((oracle - 0.85).abs() < 1e-9, "oracle {oracle}");
    assert!((knows.apgr_area - oracle).abs() < 0.01, "{knows:?}");
    assert!(pair.random.apgr.mean < 0.6, "{:?}", pair.random.apgr);
    assert!(report.stdout_table().starts_with("loaded "));

    let out = dir.join("out");
    let md = report.write(&out).unwrap();
    assert_eq!(md, out.join("report.md"));
    let text = std::fs::read_to_string(&md).unwrap();
    assert_eq!(text, report.to_markdown());
    assert!(text.contains("### Data\n\n- ") && text.contains("![RouteLLM GSM8K"));
    assert!(out.join("gsm8k.svg").is_file());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, report.summary_json().unwrap());
    assert_eq!(summary["gsm8k"]["routers"][0]["router"], "knows");
    let full: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(full["sections"][0]["report"]["kind"], "pair");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn table_source_defaults_to_extreme_models_and_rejects_incomplete_router_scores() {
    let dir = temp_dir("table");
    let mut csv = String::from("id,a,b,c,cost:a,cost:b,cost:c\n");
    for i in 0..12 {
        let (a, b, c) = (u8::from(i < 3), u8::from(i < 6), u8::from(i < 10));
        csv.push_str(&format!("p{i},{a},{b},{c},1,2,5\n"));
    }
    let table = dir.join("t.csv");
    std::fs::write(&table, csv).unwrap();
    let source = Source::Table {
        path: table.clone(),
        weak: None,
        strong: None,
    };
    let report = run(&StudyConfig {
        source: source.clone(),
        ..StudyConfig::default()
    })
    .unwrap();
    let slugs: Vec<&str> = report.sections.iter().map(|s| s.slug.as_str()).collect();
    assert_eq!(slugs, ["table", "table-multi"]);
    let SectionReport::Pair(pair) = &report.sections[0].report else {
        panic!("first section is not a pair view");
    };
    assert_eq!((pair.weak.as_str(), pair.strong.as_str()), ("a", "c"));

    let partial = dir.join("partial.csv");
    std::fs::write(&partial, "id,score\np0,1\n").unwrap();
    let e = run(&StudyConfig {
        source,
        routers: vec![RouterScores {
            name: "partial".into(),
            path: partial,
        }],
        ..StudyConfig::default()
    })
    .unwrap_err();
    assert!(matches!(e, EvalError::Routing(_)), "{e:?}");
    assert!(e.to_string().contains("partial"), "{e}");

    let e = run(&StudyConfig {
        source: Source::Table {
            path: dir.join("absent.csv"),
            weak: None,
            strong: None,
        },
        ..StudyConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("absent.csv"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
