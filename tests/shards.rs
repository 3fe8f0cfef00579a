//! Sharded runs merged equal the single run: `--shard i/N` splits the items deterministically,
//! and each study's merge step puts the shards' outputs back together.
//!
//! Tiny random models stand in for the real ones (the item split and the merge do not depend on
//! the model); the harness tasks read `shared/data` and print a skip note without it.

use std::path::{Path, PathBuf};

use datasets::shard::Shard;
use evals::harness::{RunConfig, SampleRecord, Task, merge, run};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The records of a task, without the fields that depend on the machine and on what ran before
/// an item in the same process (wall time; tokens fed, which the prefix cache shares).
fn records(dir: &Path, task: &str) -> Vec<SampleRecord> {
    evals::harness::record::read_records(&dir.join(format!("samples_{task}.jsonl")))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            r.time_s = 0.0;
            r.tokens = 0;
            r
        })
        .collect()
}

#[test]
fn lm_eval_shards_merged_equal_the_single_run() {
    if datasets::shared_data_dir().is_none() {
        eprintln!("skip: no shared/data");
        return;
    }
    let model = guided_decode::testing::tiny_model(40, 3);
    let tasks = vec![
        Task::parse("lambada_openai").unwrap(),
        Task::parse("hellaswag").unwrap(),
        Task::parse("lambada_gen").unwrap(),
    ];
    let cfg = |out: PathBuf, shard: Option<Shard>| RunConfig {
        tasks: tasks.clone(),
        limit: Some(10),
        offset: 3,
        output: out,
        progress: false,
        shard,
        ..RunConfig::default()
    };
    let single_dir = tmp("single");
    let single = run(&model, &cfg(single_dir.clone(), None)).unwrap();
    let shard_dirs: Vec<PathBuf> = (0..3).map(|i| tmp(&format!("s{i}"))).collect();
    for (i, dir) in shard_dirs.iter().enumerate() {
        let s = run(&model, &cfg(dir.clone(), Some(Shard::new(i, 3).unwrap()))).unwrap();
        // Shard i of 3 holds items i, i+3, i+6, i+9 of the 10.
        assert_eq!(s[0].n, [4, 3, 3][i], "shard {i}");
    }
    let merged_dir = tmp("merged");
    let merged = merge(&shard_dirs, &merged_dir).unwrap();
    assert_eq!(merged.len(), single.len());
    for (m, s) in merged.iter().zip(&single) {
        assert_eq!((&m.task, m.n), (&s.task, s.n));
        assert_eq!(m.metrics, s.metrics, "task {}", s.task);
    }
    for t in &tasks {
        let name = t.name();
        assert_eq!(
            records(&merged_dir, &name),
            records(&single_dir, &name),
            "{name}"
        );
    }
    // A missing shard, a repeated one, and a shard of another run are refused.
    let err = merge(&shard_dirs[..2], &tmp("bad1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing shard(s) 2/3"), "{err}");
    let err = merge(
        &[
            shard_dirs[0].clone(),
            shard_dirs[0].clone(),
            shard_dirs[1].clone(),
        ],
        &tmp("bad2"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("repeats"), "{err}");
    let err = merge(&[shard_dirs[0].clone(), single_dir.clone()], &tmp("bad3"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another split") || err.contains("two shards"),
        "{err}"
    );
}

/// An item log's records without their wall times (machine-dependent).
fn guided_log(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                for k in [
                    "seconds",
                    "cpu_s",
                    "small_s",
                    "oracle_s",
                    "policy_s",
                    "small_step_s",
                ] {
                    o.remove(k);
                }
            }
            v
        })
        .collect();
    rows.sort_by_key(|v| v["idx"].as_u64());
    rows
}

#[test]
fn guided_study_shards_merged_equal_the_single_run() {
    use evals::harness::Task;
    use guided_decode::study::{OracleSource, StudyOptions, run_study_on};
    let small = guided_decode::testing::tiny_model(40, 1);
    let oracle = guided_decode::testing::tiny_model(40, 2);
    let items = guided_decode::testing::synthetic_items(&oracle, 14, 5).unwrap();
    let tasks = [(Task::LambadaGen, items)];
    let run = |out: PathBuf, shard: Option<Shard>, report_only: bool| {
        let mut opts = StudyOptions::new(out, PathBuf::new(), Vec::new());
        opts.shard = shard;
        opts.report_only = report_only;
        run_study_on(&small, OracleSource::Model(&oracle), &tasks, &opts).unwrap()
    };
    let single_dir = tmp("gd-single");
    let single = run(single_dir.clone(), None, false);
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp(&format!("gd-s{i}"))).collect();
    for (i, d) in dirs.iter().enumerate() {
        run(d.clone(), Some(Shard::new(i, 3).unwrap()), false);
    }
    let merged_dir = tmp("gd-merged");
    guided_decode::merge_logs(&dirs, &merged_dir).unwrap();
    let merged = run(merged_dir.clone(), None, true);
    // Every configuration's log (and the meta-analysis log) equals the single run's.
    let logs = single_dir.join("items").join("lambada_gen");
    let mut n = 0;
    for f in std::fs::read_dir(&logs).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_owned();
        assert_eq!(
            guided_log(&merged_dir.join("items").join("lambada_gen").join(&name)),
            guided_log(&f),
            "{}",
            name.to_string_lossy()
        );
        n += 1;
    }
    assert!(n >= 10, "the default grid's logs ({n})");
    let (a, b) = (&single.tasks[0], &merged.tasks[0]);
    assert_eq!(a.configs.len(), b.configs.len());
    for (x, y) in a.configs.iter().zip(&b.configs) {
        assert_eq!(
            (
                &x.name,
                x.n,
                x.correct,
                x.calls_per_item,
                x.tokens_per_item,
                x.oracle_share
            ),
            (
                &y.name,
                y.n,
                y.correct,
                y.calls_per_item,
                y.tokens_per_item,
                y.oracle_share
            )
        );
    }
    // Two shards that both logged an item are refused.
    let err = guided_decode::merge_logs(&[dirs[0].clone(), dirs[0].clone()], &tmp("gd-bad"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("also logged"), "{err}");
}
