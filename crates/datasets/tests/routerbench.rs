//! RouterBench zero-shot slices: fixture behaviour and the real figures of REFERENCE_NUMBERS.md.

use std::path::PathBuf;

use datasets::routerbench::{RULE_EMPTY_CELL, RULE_MERGED};
use datasets::{
    FragmentPolicy, OutcomeTable, RouterBenchOptions, load_routerbench_slice,
    load_routerbench_slice_with,
};

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/routerbench")
}

const MERGE: RouterBenchOptions = RouterBenchOptions {
    fragments: FragmentPolicy::Merge,
};

#[test]
fn fixture_header_models_splits_and_costs() {
    let l = load_routerbench_slice(&fixtures(), "toy").unwrap();
    let t = &l.data;
    assert_eq!(t.name(), "routerbench-toy");
    assert_eq!(t.models(), &["model-a", "org/model-b", "model-c"]);
    let ids: Vec<&str> = t.prompts().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["toy.train.0", "toy.train.1", "toy.test.0"]);
    assert_eq!(
        t.split_labels(),
        vec!["test".to_string(), "train".to_string()]
    );
    assert_eq!(
        t.prompts()[0].text.as_deref(),
        Some("['First question?\nA) yes\nB) no\nAnswer:']")
    );
    assert_eq!(t.prompts()[0].group.as_deref(), Some("toy"));
    assert_eq!(t.scores_of(1), &[0.0, 1.0, 0.0]);
    assert_eq!(t.costs_of(2), Some(&[0.003, 0.03, 0.0003][..]));
    assert_eq!(l.report.rows_read, 5);
    assert_eq!(l.report.skipped.len(), 1);
    assert_eq!(l.report.skipped[0].rule, RULE_EMPTY_CELL);
    assert_eq!(l.report.skipped[0].count, 2);
}

#[test]
fn fixture_merge_policy_joins_fragments_across_files() {
    let l = load_routerbench_slice_with(&fixtures(), "toy", &MERGE).unwrap();
    let t = &l.data;
    let ids: Vec<&str> = t.prompts().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["toy.train.0", "toy.train.1", "toy.train.2", "toy.test.0"]
    );
    assert_eq!(t.scores_of(2), &[1.0, 1.0, 1.0]);
    assert_eq!(t.costs_of(2), Some(&[0.001, 0.01, 0.0001][..]));
    // metadata from the fragment holding most scores (the train row)
    assert_eq!(t.prompts()[2].split.as_deref(), Some("train"));
    assert_eq!(l.report.skipped[0].rule, RULE_MERGED);
    assert_eq!(l.report.total_skipped(), 1);
}

#[test]
fn unknown_slice_is_an_io_error_naming_the_file() {
    let e = load_routerbench_slice(&fixtures(), "nope")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope_train.csv"), "{e}");
}

/// Accuracy in percent to one decimal, as in REFERENCE_NUMBERS.md.
fn acc(t: &OutcomeTable, model: &str) -> f64 {
    (t.mean_score(t.model_index(model).unwrap()) * 1000.0).round() / 10.0
}

/// Mean cost per prompt to six decimals.
fn cost(t: &OutcomeTable, model: &str) -> f64 {
    (t.mean_cost(t.model_index(model).unwrap()).unwrap() * 1e6).round() / 1e6
}

const MODELS: [&str; 11] = [
    "gpt-4-1106-preview",
    "claude-v1",
    "claude-v2",
    "claude-instant-v1",
    "gpt-3.5-turbo-1106",
    "zero-one-ai/Yi-34B-Chat",
    "mistralai/mixtral-8x7b-chat",
    "meta/llama-2-70b-chat",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
    "WizardLM/WizardLM-13B-V1.2",
];

fn check(t: &OutcomeTable, accs: [f64; 11], costs: Option<[f64; 11]>) {
    for (i, m) in MODELS.iter().enumerate() {
        assert_eq!(acc(t, m), accs[i], "accuracy of {m}");
        if let Some(c) = costs {
            assert_eq!(cost(t, m), c[i], "cost of {m}");
        }
    }
}

#[test]
fn real_mbpp_and_winogrande_match_reference() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let dir = data.join("routerbench_routerdc/routerbench_zs");
    let mbpp = load_routerbench_slice(&dir, "mbpp").unwrap();
    assert_eq!(mbpp.data.n_prompts(), 427);
    assert_eq!(mbpp.report.total_skipped(), 0);
    assert_eq!(mbpp.data.n_models(), 11);
    assert_eq!(mbpp.data.split("train").unwrap().n_prompts(), 299);
    assert_eq!(mbpp.data.split("test").unwrap().n_prompts(), 128);
    check(
        &mbpp.data,
        [
            68.6, 59.7, 64.2, 60.4, 65.3, 38.6, 54.1, 33.0, 51.8, 34.4, 37.0,
        ],
        Some([
            0.009377, 0.004274, 0.005838, 0.000481, 0.000335, 0.000229, 0.000174, 0.000297,
            0.000156, 0.000048, 0.000081,
        ]),
    );
    let wino = load_routerbench_slice(&dir, "winograde").unwrap();
    assert_eq!(wino.data.n_prompts(), 1267);
    assert_eq!(wino.report.total_skipped(), 0);
    check(
        &wino.data,
        [
            85.9, 56.2, 47.8, 51.7, 64.1, 75.4, 67.9, 50.3, 58.5, 56.6, 52.9,
        ],
        Some([
            0.003531, 0.002825, 0.002834, 0.000283, 0.000352, 0.000281, 0.000211, 0.000317,
            0.000273, 0.000070, 0.000105,
        ]),
    );
}

#[test]
fn real_arc_challenge_fragments() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let dir = data.join("routerbench_routerdc");
    // Skip policy: 14 sample ids are split over 2 rows each; all 28 rows are skipped.
    let skip = load_routerbench_slice(&dir, "arc_challenge").unwrap();
    assert_eq!(skip.report.rows_read, 1484);
    assert_eq!(skip.data.n_prompts(), 1456);
    assert_eq!(skip.report.skipped.len(), 1);
    assert_eq!(skip.report.skipped[0].rule, RULE_EMPTY_CELL);
    assert_eq!(skip.report.skipped[0].count, 28);
    check(
        &skip.data,
        [
            95.4, 90.9, 58.9, 82.9, 83.4, 90.3, 85.4, 80.3, 66.3, 67.1, 65.8,
        ],
        None,
    );
    // Merge policy: 1,470 prompts, accuracies equal REFERENCE_NUMBERS.md (per-column means
    // over non-empty cells). Its ARC-C costs (means over all 1,484 rows) are not reproduced.
    let merged = load_routerbench_slice_with(&dir, "arc_challenge", &MERGE).unwrap();
    assert_eq!(merged.data.n_prompts(), 1470);
    assert_eq!(merged.report.skipped.len(), 1);
    assert_eq!(merged.report.skipped[0].rule, RULE_MERGED);
    assert_eq!(merged.report.skipped[0].count, 14);
    check(
        &merged.data,
        [
            95.4, 90.8, 58.7, 82.9, 83.4, 90.3, 85.4, 80.3, 66.1, 67.0, 65.9,
        ],
        Some([
            0.005027, 0.004022, 0.004031, 0.000402, 0.000506, 0.000401, 0.000301, 0.000452,
            0.000389, 0.000100, 0.000150,
        ]),
    );
}
