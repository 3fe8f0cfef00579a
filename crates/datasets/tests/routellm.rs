//! RouteLLM loaders: hand-written fixtures, and the real data when `../shared/data` exists.

use std::path::PathBuf;

use datasets::routellm::{ROUTELLM_STRONG, ROUTELLM_WEAK, RULE_CONTAMINATED};
use datasets::{RouteLlmOptions, ScoreKind, load_routellm_gsm8k, load_routellm_mmlu};

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/routellm")
}

const EXCLUDE: RouteLlmOptions = RouteLlmOptions {
    exclude_contaminated: true,
};

#[test]
fn mmlu_fixture_ids_groups_and_order() {
    let l = load_routellm_mmlu(&fixtures(), &RouteLlmOptions::default()).unwrap();
    let t = &l.data;
    assert_eq!(
        t.models(),
        &[ROUTELLM_WEAK.to_string(), ROUTELLM_STRONG.to_string()]
    );
    assert_eq!(t.kind(), ScoreKind::Binary);
    assert_eq!(t.n_prompts(), 5);
    let ids: Vec<&str> = t.prompts().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "mmlu/algebra/0",
            "mmlu/algebra/1",
            "mmlu/algebra/2",
            "mmlu/history/0",
            "mmlu/history/1"
        ]
    );
    assert_eq!(t.prompts()[3].group.as_deref(), Some("history"));
    assert!(
        t.prompts()[0]
            .text
            .as_deref()
            .unwrap()
            .starts_with("What is 2 + 2?\nA. 3")
    );
    assert_eq!(t.model_scores(0), vec![1.0, 0.0, 0.0, 1.0, 1.0]);
    assert_eq!(t.model_scores(1), vec![1.0, 1.0, 0.0, 0.0, 1.0]);
    assert_eq!(l.report.rows_read, 5);
    assert_eq!(l.report.total_skipped(), 0);
}

#[test]
fn mmlu_fixture_contamination_removes_every_exact_text_match() {
    // The contaminated text occurs in both subject files: both rows go.
    let l = load_routellm_mmlu(&fixtures(), &EXCLUDE).unwrap();
    assert_eq!(l.data.n_prompts(), 3);
    assert_eq!(l.report.skipped.len(), 1);
    assert_eq!(l.report.skipped[0].rule, RULE_CONTAMINATED);
    assert_eq!(
        l.report.skipped[0].examples,
        vec!["mmlu/algebra/2".to_string(), "mmlu/history/1".to_string()]
    );
}

#[test]
fn gsm8k_fixture_with_multiline_responses() {
    let path = fixtures().join("gsm8k/gsm8k_responses.csv");
    let l = load_routellm_gsm8k(&path, &RouteLlmOptions::default()).unwrap();
    assert_eq!(l.data.n_prompts(), 2);
    assert_eq!(l.data.model_scores(0), vec![1.0, 0.0]);
    let c = load_routellm_gsm8k(&path, &EXCLUDE).unwrap();
    assert_eq!(c.data.n_prompts(), 1);
    assert_eq!(c.report.skipped[0].examples, vec!["gsm8k/1".to_string()]);
}

fn pct(x: f64) -> f64 {
    (x * 10_000.0).round() / 100.0
}

#[test]
fn real_mmlu_matches_reference_numbers() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let dir = data.join("routellm_evals");
    let l = load_routellm_mmlu(&dir, &RouteLlmOptions::default()).unwrap();
    let t = &l.data;
    assert_eq!(t.n_prompts(), 14_042);
    assert_eq!(l.report.rows_read, 14_042);
    assert_eq!(pct(t.mean_score(0)), 68.08);
    assert_eq!(pct(t.mean_score(1)), 80.58);
    let groups: std::collections::BTreeSet<&str> = t
        .prompts()
        .iter()
        .filter_map(|p| p.group.as_deref())
        .collect();
    assert_eq!(groups.len(), 57);
    // Prompt texts are not unique (105 repeated texts), which is why ids are positional.
    let texts: std::collections::HashSet<&str> = t
        .prompts()
        .iter()
        .filter_map(|p| p.text.as_deref())
        .collect();
    assert_eq!(texts.len(), 13_937);

    let c = load_routellm_mmlu(&dir, &EXCLUDE).unwrap();
    assert_eq!(c.data.n_prompts(), 14_037);
    assert_eq!(c.report.total_skipped(), 5);
}

#[test]
fn real_gsm8k_matches_reference_numbers() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let path = data.join("routellm_evals/gsm8k/gsm8k_responses.csv");
    let l = load_routellm_gsm8k(&path, &RouteLlmOptions::default()).unwrap();
    assert_eq!(l.data.n_prompts(), 1319);
    assert_eq!(pct(l.data.mean_score(0)), 63.84);
    assert_eq!(pct(l.data.mean_score(1)), 85.67);
    let c = load_routellm_gsm8k(&path, &EXCLUDE).unwrap();
    assert_eq!(c.data.n_prompts(), 1307);
    assert_eq!(c.report.total_skipped(), 12);
}
