//! Per-sample outputs of several models as a routing [`OutcomeTable`].
//!
//! Prompt id = `task/idx` (the record's `id`), score = the record's `correct` (accuracy, exact
//! match or pass, in `[0, 1]`), group = the task (MMLU: the subject task `mmlu_<subject>`). Only
//! prompts scored for every model are kept, in sorted id order, so a router trains on exactly
//! the outcomes this runner produced. The table round-trips through the workspace's outcome CSV
//! ([`datasets::write_outcome_csv`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use datasets::{OutcomeTable, PromptMeta, ScoreKind};

use super::error::{HarnessError, Result};
use super::record::{SampleRecord, read_records};

/// Reads every `samples_*.jsonl` in `dir`.
pub fn read_dir_records(dir: &Path) -> Result<Vec<SampleRecord>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| HarnessError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("samples_") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(read_records(&f)?);
    }
    Ok(out)
}

/// Builds an outcome table from `(model name, records)` pairs. Prompts missing for some model
/// are dropped, and so are perplexity documents (they have no correctness). The table's costs
/// are the tokens each model processed for the item (the records' `tokens`), from which
/// `2 × active parameters × tokens` gives its FLOPs ([`routing_core::cost`]).
pub fn outcome_table(name: &str, runs: &[(String, Vec<SampleRecord>)]) -> Result<OutcomeTable> {
    let maps: Vec<BTreeMap<String, &SampleRecord>> = runs
        .iter()
        .map(|(_, recs)| {
            recs.iter()
                .filter(|r| !r.metrics.contains_key("words"))
                .map(|r| (r.id.clone(), r))
                .collect()
        })
        .collect();
    let common: BTreeSet<String> = match maps.first() {
        Some(first) => first
            .keys()
            .filter(|id| maps.iter().all(|m| m.contains_key(*id)))
            .cloned()
            .collect(),
        None => BTreeSet::new(),
    };
    let mut prompts = Vec::with_capacity(common.len());
    let mut scores = Vec::with_capacity(common.len() * runs.len());
    let mut tokens = Vec::with_capacity(common.len() * runs.len());
    for id in &common {
        let first = maps[0][id];
        let mut meta = PromptMeta::new(id.clone()).with_group(first.task.clone());
        if let Some(text) = prompt_text(first) {
            meta = meta.with_text(text);
        }
        prompts.push(meta);
        scores.extend(maps.iter().map(|m| m[id].correct));
        tokens.extend(maps.iter().map(|m| m[id].tokens as f64));
    }
    let kind = if scores.iter().all(|&s| s == 0.0 || s == 1.0) {
        ScoreKind::Binary
    } else {
        ScoreKind::Graded
    };
    Ok(OutcomeTable::new(
        name,
        kind,
        runs.iter().map(|(m, _)| m.clone()).collect(),
        prompts,
        scores,
        Some(tokens),
    )?)
}

/// Loads one output folder per model (`(model name, folder)`) as an outcome table.
pub fn load_outcomes(name: &str, runs: &[(String, PathBuf)]) -> Result<OutcomeTable> {
    let recs = runs
        .iter()
        .map(|(m, d)| Ok((m.clone(), read_dir_records(d)?)))
        .collect::<Result<Vec<_>>>()?;
    outcome_table(name, &recs)
}

/// The text a query router reads for a record: the context the model was given (`context`,
/// the first of `contexts` for multiple choice, the prompt's tail for generation).
pub fn prompt_text(r: &SampleRecord) -> Option<String> {
    let i = &r.inputs;
    i.get("context")
        .or_else(|| i.get("contexts").and_then(|c| c.get(0)))
        .or_else(|| i.get("prompt_tail"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}
