//! RouterDC graded score files: fixtures and the real 12-file folder.

use std::path::PathBuf;

use datasets::{ScoreKind, load_routerdc, load_routerdc_dir};

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/routerdc")
}

#[test]
fn fixture_single_file() {
    let l = load_routerdc(&fixtures().join("toy-test.json")).unwrap();
    let t = &l.data;
    assert_eq!(t.kind(), ScoreKind::Graded);
    assert_eq!(t.models(), &["org/zeta-7b", "alpha-7b", "mid-7b"]);
    assert_eq!(t.prompts()[1].id, "toy-test/1");
    assert_eq!(t.prompts()[1].split.as_deref(), Some("test"));
    assert_eq!(t.prompts()[1].group.as_deref(), Some("toy"));
    assert_eq!(t.prompts()[0].text.as_deref(), Some("Q: What is 1+1?"));
    assert_eq!(t.scores_of(1), &[0.3, 0.0, 0.9]);
    assert_eq!(l.report.rows_read, 2);
}

#[test]
fn fixture_dir_concats_and_aligns_key_order() {
    let l = load_routerdc_dir(&fixtures()).unwrap();
    let t = &l.data;
    assert_eq!(t.n_prompts(), 5);
    // first file (sorted: toy-test.json) fixes the column order; items with other key
    // orders are aligned by name
    assert_eq!(t.models(), &["org/zeta-7b", "alpha-7b", "mid-7b"]);
    assert_eq!(t.prompts()[2].id, "toy_train/0");
    assert_eq!(t.prompts()[2].split.as_deref(), Some("train"));
    assert_eq!(t.scores_of(2), &[0.75, 1.0, 0.25]);
    assert_eq!(t.scores_of(3), &[1.0, 0.1, 1.0]);
    assert_eq!(l.report.rows_read, 5);
}

#[test]
fn real_routerdc_folder() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let dir = data.join("routerdc_7model_scores");
    let l = load_routerdc_dir(&dir).unwrap();
    let t = &l.data;
    assert_eq!(t.n_prompts(), 13_615);
    assert_eq!(t.n_models(), 7);
    assert_eq!(t.models()[0], "mistralai/Mistral-7B-v0.1");
    let groups: std::collections::BTreeSet<&str> = t
        .prompts()
        .iter()
        .filter_map(|p| p.group.as_deref())
        .collect();
    assert_eq!(
        groups.into_iter().collect::<Vec<_>>(),
        [
            "MATH_prealgebra",
            "arc_challenge",
            "arc_easy",
            "gsm8k",
            "humaneval",
            "mbpp",
            "mmlu"
        ]
    );
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let m = t.model_index("meta-math/MetaMath-Mistral-7B").unwrap();
    assert_eq!(r4(t.mean_score(m)), 0.5737);
    let gsm = load_routerdc(&dir.join("gsm8k-test.json")).unwrap().data;
    assert_eq!(gsm.n_prompts(), 1319);
    assert_eq!(gsm.split_labels(), vec!["test".to_string()]);
    let m = gsm
        .model_index("cognitivecomputations/dolphin-2.9-llama3-8b")
        .unwrap();
    assert_eq!(r4(gsm.mean_score(m)), 0.6981);
    let mbpp = load_routerdc(&dir.join("mbpp.json")).unwrap().data;
    assert_eq!(mbpp.n_prompts(), 500);
    assert!(mbpp.split_labels().is_empty());
}
