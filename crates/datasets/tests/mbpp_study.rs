//! MBPP routing-study JSONL outputs: exact rates on the hand-written fixture.

use std::path::PathBuf;

use datasets::{CodeCell, CodeMetric, load_code_outputs};

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/mbpp_study")
}

#[test]
fn fixture_rates_follow_the_study_rules() {
    let dir = fixtures();
    let (small, large) = (dir.join("small.jsonl"), dir.join("large.jsonl"));
    let l = load_code_outputs(&[("small", small.as_path()), ("large", large.as_path())]).unwrap();
    let c = &l.data;
    assert_eq!(c.models(), &["small", "large"]);
    assert_eq!(c.n_items(), 6);
    assert_eq!(l.report.rows_read, 12);
    let ids: Vec<&str> = c.items().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["11", "12", "13", "14", "15", "16"]); // first file's order
    assert_eq!(
        c.items()[0].text.as_deref(),
        Some("Write a function to reverse a list.")
    );

    // small: passed 8+3+0+9+2+6 = 28 of 9+6+0+9+9+6 = 39 tests; perfect 2+1+0+3+0+2 = 8 of 18
    assert!((c.pass_rate(0) - 28.0 / 39.0).abs() < 1e-12);
    assert!((c.perfect_rate(0) - 8.0 / 18.0).abs() < 1e-12);
    // large (lines in another order, aligned by task_id): 44 of 51 tests, 13 of 18 perfect
    assert!((c.pass_rate(1) - 44.0 / 51.0).abs() < 1e-12);
    assert!((c.perfect_rate(1) - 13.0 / 18.0).abs() < 1e-12);

    // item 12, small: one failing sample, one code error (no test cases), one perfect
    assert_eq!(
        c.cell(1, 0),
        CodeCell {
            tests_passed: 3,
            tests_total: 6,
            perfect: 1,
            samples: 3,
            code_errors: 1
        }
    );
    // item 13, small: every sample errored
    assert_eq!(
        c.cell(2, 0),
        CodeCell {
            tests_passed: 0,
            tests_total: 0,
            perfect: 0,
            samples: 3,
            code_errors: 3
        }
    );
    // item 16, small: a sample that ran with zero test results is not perfect
    assert_eq!(
        c.cell(5, 0),
        CodeCell {
            tests_passed: 6,
            tests_total: 6,
            perfect: 2,
            samples: 3,
            code_errors: 0
        }
    );

    let t = c.to_outcome_table(CodeMetric::PerfectRate).unwrap();
    assert_eq!(t.scores_of(3), &[1.0, 1.0]);
    let t = c.to_outcome_table(CodeMetric::TestPassRate).unwrap();
    assert_eq!(t.scores_of(2), &[0.0, 0.5]);
}
