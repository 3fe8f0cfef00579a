//! Arena-Bench v1 judgments: normalisation, dropped questions, length costs.

use std::path::PathBuf;

use datasets::arena::{RULE_EMPTY_SCORE, RULE_INCOMPLETE_QUESTION};
use datasets::{ArenaOptions, ScoreKind, load_arena_judgments};

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/arena")
}

const COSTS: ArenaOptions = ArenaOptions { length_costs: true };

#[test]
fn fixture_scores_texts_and_drops() {
    let l = load_arena_judgments(&fixtures(), &ArenaOptions::default()).unwrap();
    let t = &l.data;
    assert_eq!(t.kind(), ScoreKind::Graded);
    assert_eq!(t.models(), &["model-x", "org/model-y"]);
    let ids: Vec<&str> = t.prompts().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["qa", "qc"]);
    assert_eq!(t.scores_of(0), &[1.0, 0.0]);
    assert_eq!(t.scores_of(1), &[6.0 / 9.0, 0.5]);
    assert_eq!(
        t.prompts()[1].text.as_deref(),
        Some("Explain caching.\nBriefly.")
    );
    assert_eq!(t.prompts()[1].group.as_deref(), Some("arena-bench-v1"));
    assert!(!t.has_costs());
    assert_eq!(l.report.rows_read, 6);
    assert_eq!(l.report.skipped[0].rule, RULE_EMPTY_SCORE);
    assert_eq!(l.report.skipped[0].count, 1);
    assert_eq!(l.report.skipped[1].rule, RULE_INCOMPLETE_QUESTION);
    assert_eq!(l.report.skipped[1].count, 1);
    assert_eq!(l.report.skipped[1].examples, vec!["qb".to_string()]);
}

#[test]
fn fixture_length_costs() {
    let t = load_arena_judgments(&fixtures(), &COSTS).unwrap().data;
    assert_eq!(t.costs_of(0), Some(&[120.0, 80.0][..]));
    assert_eq!(t.costs_of(1), Some(&[2000.0, 1500.0][..]));
}

#[test]
fn real_arena_bench() {
    let Some(data) = datasets::require_shared_data() else {
        return;
    };
    let dir = data.join("arena_bench_v1_judgments");
    let l = load_arena_judgments(&dir, &COSTS).unwrap();
    let t = &l.data;
    assert_eq!(l.report.rows_read, 4500);
    assert_eq!(t.n_models(), 15);
    assert_eq!(t.n_prompts(), 271); // 29 questions lack at least one judgment
    let empty = l
        .report
        .skipped
        .iter()
        .find(|s| s.rule == RULE_EMPTY_SCORE)
        .unwrap();
    assert_eq!(empty.count, 39);
    assert_eq!(l.report.total_skipped(), 4500 - 271 * 15);
    assert!(t.prompts().iter().all(|p| p.text.is_some()));
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let gpt4 = t.model_index("gpt-4-1106-preview").unwrap();
    assert_eq!(r4(t.mean_score(gpt4)), 0.8770);
    let llama = t.model_index("llama-13b").unwrap();
    assert_eq!(r4(t.mean_score(llama)), 0.0578);
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    assert_eq!(r1(t.mean_cost(gpt4).unwrap()), 3208.3);
}
