//! Per-sample records (JSONL), the summary (lm-eval's results layout) and the markdown table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::error::{HarnessError, Result};
use super::metrics;

/// One scored item, one JSON line of `samples_<task>.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleRecord {
    /// `task/idx`.
    pub id: String,
    /// Task name (`mmlu_<subject>` for MMLU).
    pub task: String,
    /// Group (`mmlu`), if any.
    #[serde(default)]
    pub group: Option<String>,
    /// Index in the source file.
    pub idx: usize,
    /// The model's name.
    pub model: String,
    /// The exact strings scored or the prompt (task-specific object).
    pub inputs: serde_json::Value,
    /// Log-likelihood per choice (or per target / document).
    #[serde(default)]
    pub logliks: Vec<f64>,
    /// Greedy flag per choice.
    #[serde(default)]
    pub is_greedy: Vec<bool>,
    /// The prediction (choice index, extracted answer, generation).
    pub prediction: serde_json::Value,
    /// The gold answer.
    pub gold: serde_json::Value,
    /// Correctness in `[0, 1]` (the routing score: acc, exact match, pass).
    pub correct: f64,
    /// Per-item metric values (`acc`, `acc_norm`, `loglik`, `words`, …).
    pub metrics: BTreeMap<String, f64>,
    /// Tokens fed through the model for this item. Log-likelihood items scored together
    /// (`RunConfig::batch_size` > 1) share their chunk's tokens out evenly, the remainder one
    /// each to the first items, so a task's records sum to the tokens the model read.
    pub tokens: usize,
    /// Wall time, seconds (with `batch_size` > 1, the chunk's time divided evenly among its
    /// items: the items of one batch are not timed apart).
    pub time_s: f64,
    /// Token ids, per-token log-probs and other detail.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Reads a JSONL file of records; a missing file is an empty list. A truncated last line (a
/// crash mid-write) is ignored; any other bad line is an error.
pub fn read_records(path: &Path) -> Result<Vec<SampleRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HarnessError::io(path, e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => return Err(HarnessError::parse(path, i + 1, e.to_string())),
        }
    }
    Ok(out)
}

/// Appends one record as a JSON line and flushes (so a crash loses at most that line).
pub fn append_record(file: &mut std::fs::File, path: &Path, rec: &SampleRecord) -> Result<()> {
    let line =
        serde_json::to_string(rec).map_err(|e| HarnessError::parse(path, 0, e.to_string()))?;
    writeln!(file, "{line}")
        .and_then(|_| file.flush())
        .map_err(|e| HarnessError::io(path, e))
}

/// Aggregates one task's records into lm-eval metric values:
/// * `acc`, `acc_norm`, `exact_match_*`, `pass@1`: means (with `<name>_stderr`);
/// * LAMBADA: `perplexity = exp(-mean(loglik))` and `acc`;
/// * WikiText: `word_perplexity`, `byte_perplexity`, `bits_per_byte` (weighted by words/bytes).
pub fn aggregate(records: &[SampleRecord]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if records.is_empty() {
        return out;
    }
    let col = |k: &str| -> Option<Vec<f64>> {
        records.iter().map(|r| r.metrics.get(k).copied()).collect()
    };
    let is_rolling = records[0].metrics.contains_key("words");
    if is_rolling {
        let sum = |k: &str| col(k).map(|v| v.iter().sum::<f64>()).unwrap_or(f64::NAN);
        let (ll, words, bytes) = (sum("loglik"), sum("words"), sum("bytes"));
        out.insert(
            "word_perplexity".into(),
            metrics::weighted_perplexity(ll, words),
        );
        out.insert(
            "byte_perplexity".into(),
            metrics::weighted_perplexity(ll, bytes),
        );
        out.insert("bits_per_byte".into(), metrics::bits_per_byte(ll, bytes));
        return out;
    }
    let keys: Vec<String> = records[0].metrics.keys().cloned().collect();
    for k in keys {
        let Some(v) = col(&k) else { continue };
        if k == "loglik" {
            out.insert("perplexity".into(), metrics::perplexity(&v));
            continue;
        }
        out.insert(k.clone(), metrics::mean(&v));
        out.insert(format!("{k}_stderr"), metrics::mean_stderr(&v));
    }
    out
}

/// A task's summary line for the results file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskSummary {
    /// Task name.
    pub task: String,
    /// Items aggregated.
    pub n: usize,
    /// Metric values.
    pub metrics: BTreeMap<String, f64>,
    /// Items per second of this run (0 when everything was resumed).
    pub items_per_s: f64,
    /// Wall time of this run, seconds.
    pub wall_s: f64,
}

/// lm-eval-style `results.json`: `results[task]["<metric>,none"]`, `n-samples`, `n-shot`,
/// `config`, `total_evaluation_time_seconds`.
pub fn results_json(
    model: &str,
    summaries: &[TaskSummary],
    n_shot: &BTreeMap<String, usize>,
    config: serde_json::Value,
    total_s: f64,
) -> serde_json::Value {
    let mut results = serde_json::Map::new();
    let mut samples = serde_json::Map::new();
    for s in summaries {
        let mut m = serde_json::Map::new();
        m.insert("alias".into(), s.task.clone().into());
        for (k, v) in &s.metrics {
            let key = match k.strip_suffix("_stderr") {
                Some(base) => format!("{base}_stderr,none"),
                None => format!("{k},none"),
            };
            m.insert(key, serde_json::json!(v));
        }
        results.insert(s.task.clone(), m.into());
        samples.insert(
            s.task.clone(),
            serde_json::json!({"effective": s.n, "items_per_s": s.items_per_s, "wall_s": s.wall_s}),
        );
    }
    serde_json::json!({
        "results": results,
        "n-shot": n_shot,
        "n-samples": samples,
        "config": config,
        "model_name": model,
        "total_evaluation_time_seconds": total_s,
    })
}

/// A markdown table: task, n, metric, value, stderr (lm-eval's `make_table` columns).
pub fn markdown_table(summaries: &[TaskSummary]) -> String {
    let mut s = String::from("| task | n | metric | value | stderr |\n|---|---:|---|---:|---:|\n");
    for t in summaries {
        for (k, v) in &t.metrics {
            if k.ends_with("_stderr") {
                continue;
            }
            let se = t
                .metrics
                .get(&format!("{k}_stderr"))
                .map_or(String::new(), |e| format!("{e:.4}"));
            s.push_str(&format!("| {} | {} | {k} | {v:.4} | {se} |\n", t.task, t.n));
        }
    }
    s
}
