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
