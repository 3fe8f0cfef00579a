//! Per-item records and their resumable JSONL logs.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{GuidedError, Result};

/// The small model's signal at one of its steps, compactly: `[position, token, entropy,
/// max_prob]`.
pub type StepRow = (usize, u32, f32, f32);

/// One item under one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Task name.
    pub task: String,
    /// 0-based index in the task's source order.
    pub idx: usize,
    /// Configuration name ([`super::HelpConfig::name`]).
    pub config: String,
    /// 1 when the task's metric scores the text correct.
    pub correct: f64,
    /// The completion, cut before the first stop string.
    pub text: String,
    /// What the task's scorer extracted.
    pub prediction: serde_json::Value,
    /// Why generation stopped.
    pub stop: String,
    /// Completion length in tokens of the writing model (the small model's, except for the
    /// oracle alone).
    pub completion_tokens: usize,
    /// Of those, tokens the oracle wrote (after re-tokenising, for text hand-offs).
    pub oracle_tokens: usize,
    /// Oracle calls (BiLD: fallbacks; speculative decoding: verification passes).
    pub calls: usize,
    /// Hand-offs whose text did not join exactly (a character lost or duplicated).
    pub inexact_handoffs: usize,
    /// Tokens the small model read (prompt tail, hand-offs, re-reads).
    pub small_read: usize,
    /// Tokens the small model wrote.
    pub small_generated: usize,
    /// Tokens the oracle read.
    pub oracle_read: usize,
    /// Tokens the oracle wrote or verified.
    pub oracle_generated: usize,
    /// Wall time of the item, seconds.
    pub seconds: f64,
    /// CPU time the process spent on the item (all its threads), seconds: the item's cost
    /// even when other work shared the cores or the run was paused (`None` where the
    /// platform has no per-thread clock, and in logs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    /// Seconds in the small model.
    pub small_s: f64,
    /// Seconds in the oracle.
    pub oracle_s: f64,
    /// Seconds in the policy layer.
    pub policy_s: f64,
    /// Seconds in the small model's own steps.
    #[serde(default)]
    pub small_step_s: f64,
    /// Speculative decoding: drafted and accepted tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drafted_accepted: Option<(usize, usize)>,
    /// BiLD: rollbacks and discarded small-model tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollbacks_discarded: Option<(usize, usize)>,
    /// The writing model's per-step signal (kept for the small and oracle configurations: the
    /// meta-analysis reads it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRow>,
}

/// An append-only JSONL log of one task × configuration: records already there are loaded (a
/// truncated last line, left by an interrupted run, is dropped and rewritten), new ones are
/// appended as they finish.
#[derive(Debug)]
pub struct ItemLog {
    path: PathBuf,
    done: BTreeMap<usize, ItemRecord>,
}

impl ItemLog {
    /// Opens (or creates) the log at `path`.
    ///
    /// # Errors
    /// I/O errors; a malformed line other than the last (named by line).
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| GuidedError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut done = BTreeMap::new();
        if path.exists() {
            let text = fs::read_to_string(path).map_err(io)?;
            let lines: Vec<&str> = text.lines().collect();
            let mut good_bytes = 0;
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    good_bytes += line.len() + 1;
                    continue;
                }
                match serde_json::from_str::<ItemRecord>(line) {
                    Ok(r) => {
                        done.insert(r.idx, r);
                        good_bytes += line.len() + 1;
                    }
                    Err(_) if i + 1 == lines.len() => {
                        // An interrupted write: drop it, the item is redone.
                        let keep = text[..good_bytes.min(text.len())].to_string();
                        fs::write(path, keep).map_err(io)?;
                    }
                    Err(e) => {
                        return Err(GuidedError::Log {
                            path: path.to_path_buf(),
                            line: i + 1,
                            detail: e.to_string(),
                        });
                    }
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            done,
        })
    }

    /// The record of item `idx`, when done.
    pub fn get(&self, idx: usize) -> Option<&ItemRecord> {
        self.done.get(&idx)
    }

    /// Appends a finished record.
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self, record: ItemRecord) -> Result<()> {
        let io = |source| GuidedError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let line = serde_json::to_string(&record).map_err(|e| GuidedError::Log {
            path: self.path.clone(),
            line: self.done.len() + 1,
            detail: e.to_string(),
        })?;
        writeln!(f, "{line}").map_err(io)?;
        self.done.insert(record.idx, record);
        Ok(())
    }

    /// Records for `indices`, in order, skipping those not done.
    pub fn records(&self, indices: &[usize]) -> Vec<ItemRecord> {
        indices
            .iter()
            .filter_map(|i| self.done.get(i).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(idx: usize) -> ItemRecord {
        ItemRecord {
            task: "t".into(),
            idx,
            config: "small".into(),
            correct: 1.0,
            text: "x".into(),
            prediction: serde_json::Value::Null,
            stop: "max_tokens".into(),
            completion_tokens: 3,
            oracle_tokens: 0,
            calls: 0,
            inexact_handoffs: 0,
            small_read: 5,
            small_generated: 3,
            oracle_read: 0,
            oracle_generated: 0,
            seconds: 0.1,
            cpu_s: None,
            small_s: 0.1,
            oracle_s: 0.0,
            policy_s: 0.0,
            small_step_s: 0.0,
            drafted_accepted: None,
            rollbacks_discarded: None,
            steps: vec![(0, 7, 1.5, 0.4)],
        }
    }

    #[test]
    fn logs_resume_and_drop_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("gd-log-{}", std::process::id()));
        let path = dir.join("a/small.jsonl");
        let _ = fs::remove_dir_all(&dir);
        let mut log = ItemLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append(record(1)).unwrap();
        // A torn write.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"task\": \"t\", \"idx\": 2").unwrap();
        drop(f);
        let log = ItemLog::open(&path).unwrap();
        assert_eq!(log.records(&[0, 1, 2]).len(), 2);
        assert_eq!(log.get(1), Some(&record(1)));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
        // A bad line in the middle is an error naming it.
        fs::write(&path, "not json\n{}\n").unwrap();
        let e = ItemLog::open(&path).unwrap_err().to_string();
        assert!(e.contains("small.jsonl:1"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
