//! The study end to end on tiny random models and synthetic items (no files needed): the
//! oracle alone scores 100% by construction, greedy speculative decoding reproduces it, random
//! help makes exactly `c` calls per item, a rerun resumes from the logs without redoing any
//! item, and the report, summary and figures are written; a configuration the pair cannot run
//! is a typed error before any work.

use evals::harness::Task;
use guided_decode::study::{HelpConfig, OracleSource, StudyOptions, run_study_on};
use guided_decode::testing::{synthetic_items, tiny_model};
use guided_decode::{GuidedError, RemoteConfig};
use lm::CausalLm;

fn configs(list: &str) -> Vec<HelpConfig> {
    list.split(',')
        .map(|c| HelpConfig::parse(c).unwrap())
        .collect()
}

#[test]
fn the_study_runs_resumes_and_reports() {
    let (small, oracle) = (tiny_model(30, 1), tiny_model(30, 2));
    let items = synthetic_items(&oracle, 16, 3).unwrap();
    let dir = std::env::temp_dir().join(format!("gd-study-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = StudyOptions::new(&dir, "", vec![]);
    opts.configs = Some(configs(
        "small,oracle,random:2x2,entropy:2.5x1,maxprob:0.4x1,bild:0.6/2,spec:3",
    ));
    let tasks = [(Task::LambadaGen, items)];
    let report = run_study_on(&small, OracleSource::Model(&oracle), &tasks, &opts).unwrap();
    let t = &report.tasks[0];
    let get = |c: &str| t.get(HelpConfig::parse(c).unwrap()).unwrap();
    assert_eq!(get("oracle").accuracy, 1.0);
    assert_eq!(
        get("spec:3").accuracy,
        1.0,
        "greedy speculative decoding is the oracle"
    );
    assert!(get("small").accuracy < 1.0);
    assert_eq!(get("small").oracle_share, 0.0);
    // Eight-token completions: at most two calls of at most two tokens each (a call drawn
    // inside an earlier one's span moves after it, and may then fall past the budget).
    let r = get("random:2x2");
    assert!(
        r.calls_per_item > 1.0 && r.calls_per_item <= 2.0,
        "{}",
        r.calls_per_item
    );
    assert!(
        r.oracle_share > 0.2 && r.oracle_share <= 0.5,
        "{}",
        r.oracle_share
    );
    assert!(get("entropy:2.5x1").policy_overhead > 0.0);
    assert!(
        t.curves
            .iter()
            .any(|c| c.family == "entropy" && c.apgr.is_some())
    );
    for f in [
        "report.md",
        "summary.json",
        "curves_lambada_gen.svg",
        "items/lambada_gen/random_c2_k2.jsonl",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| k \\ c |") && md.contains("Token-level APGR"),
        "{md}"
    );
    // A rerun finds every item done: same report, logs untouched.
    let log = dir.join("items/lambada_gen/spec_g3.jsonl");
    let before = std::fs::read_to_string(&log).unwrap();
    let again = run_study_on(&small, OracleSource::Model(&oracle), &tasks, &opts).unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
    // (Exact: the logs' floats round-trip through JSON, serde_json's `float_roundtrip`.)
    assert_eq!(again, report);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configurations_the_pair_cannot_run_are_refused_up_front() {
    let small = tiny_model(30, 1);
    let items = synthetic_items(&small, 2, 3).unwrap();
    let mut opts = StudyOptions::new(std::env::temp_dir().join("gd-study-refused"), "", vec![]);
    opts.configs = Some(configs("small,spec:2"));
    // A remote oracle (never contacted) cannot verify drafts.
    let remote = OracleSource::<CausalLm>::Remote(RemoteConfig::new("http://127.0.0.1:9/v1", "m"));
    let e = run_study_on(&small, remote, &[(Task::LambadaGen, items)], &opts).unwrap_err();
    assert!(
        matches!(e, GuidedError::InvalidOption { name: "config", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("spec_g2"), "{e}");
}
