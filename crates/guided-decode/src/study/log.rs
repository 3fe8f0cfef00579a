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
    /// Tokens the small model read as input: the prompt, the oracle's hand-offs, re-reads
    /// after rollbacks — not its own sampled tokens, which are `small_generated` alone (the
    /// convention of [`TOKEN_COUNTS`]).
    pub small_read: usize,
    /// Tokens the small model wrote (BiLD: rolled-back ones included; speculative decoding:
    /// every draft).
    pub small_generated: usize,
    /// Tokens the oracle read as input (not its own written tokens).
    pub oracle_read: usize,
    /// Tokens the oracle wrote (speculative decoding and BiLD: its corrections).
    pub oracle_generated: usize,
    /// The convention of the `*_read` counts: [`TOKEN_COUNTS`] in records written now, 0 in
    /// logs written before session 19, whose reads also counted the tokens a model fed back
    /// to itself (they are converted on load: [`ItemRecord::upgrade`]).
    #[serde(default)]
    pub token_counts: u32,
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

/// The token-count convention of records written now: `*_read` counts a model's inputs and
/// `*_generated` its outputs, each token once, so that `2 × parameters × (read + generated)`
/// estimates a model's FLOPs and `read`/`generated` are what a per-token price list charges
/// as input and output.
pub const TOKEN_COUNTS: u32 = 1;

impl ItemRecord {
    /// Converts a record of an older token-count convention to [`TOKEN_COUNTS`] (a no-op on
    /// current records). Convention 0 counted in `small_read` every token the small model
    /// sampled (it reads each back), in the in-process oracle-alone configuration's
    /// `oracle_read` every token the oracle wrote, and in BiLD's and speculative decoding's
    /// `oracle_read` every position of the verifier's passes — each pass after the first
    /// starts with the verifier's own last token; speculative decoding's `small_read` left
    /// out the correction the draft reads after each pass.
    pub fn upgrade(&mut self) {
        if self.token_counts >= TOKEN_COUNTS {
            return;
        }
        let family = self.config.split('_').next().unwrap_or("");
        match family {
            "oracle" => {
                // The in-process oracle alone ran as a guided generation that never calls
                // (no calls); a remote one is one call whose reads are the server's
                // prompt tokens.
                if self.calls == 0 {
                    self.oracle_read = self.oracle_read.saturating_sub(self.oracle_generated);
                }
            }
            "bild" => {
                self.small_read = self.small_read.saturating_sub(self.small_generated);
                self.oracle_read = self
                    .oracle_read
                    .saturating_sub(self.calls.saturating_sub(1));
            }
            "spec" => {
                self.small_read =
                    self.small_read.saturating_sub(self.small_generated) + self.oracle_generated;
                self.oracle_read = self
                    .oracle_read
                    .saturating_sub(self.calls.saturating_sub(1));
            }
            _ => self.small_read = self.small_read.saturating_sub(self.small_generated),
        }
        self.token_counts = TOKEN_COUNTS;
    }
}

/// The lines of a JSONL file written by appending, each with its 1-based line number. A last
/// line cut short by an interrupted write (it does not parse as `T`) is removed from the file,
/// and a complete last line without its newline gets one, so that the next append starts a
/// line of its own. A line other than the last that does not parse is an error naming it.
///
/// # Errors
/// I/O errors; a malformed line other than the last.
pub(crate) fn read_appended<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Vec<(usize, T)>> {
    let io = |source| GuidedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut good = 0;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if !line.trim().is_empty() {
            match serde_json::from_str::<T>(line) {
                Ok(v) => out.push((i + 1, v)),
                Err(_) if i + 1 == lines.len() => {
                    // An interrupted write: cut it off; its item is redone.
                    let f = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
                    f.set_len(good as u64).map_err(io)?;
                    return Ok(out);
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
        good += raw.len();
    }
    if !text.is_empty() && !text.ends_with('\n') {
        let mut f = fs::OpenOptions::new().append(true).open(path).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
    }
    Ok(out)
}

/// Appends `value` as one JSON line in a single write (a crash leaves either the whole line,
/// its newline included, or a torn tail that [`read_appended`] removes).
///
/// # Errors
/// I/O and serialisation errors.
pub(crate) fn append_line<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut line = serde_json::to_string(value).map_err(|e| GuidedError::Log {
        path: path.to_path_buf(),
        line: 0,
        detail: e.to_string(),
    })?;
    line.push('\n');
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| GuidedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(line.as_bytes())
        .map_err(|source| GuidedError::Io {
            path: path.to_path_buf(),
            source,
        })
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
        for (_, mut r) in read_appended::<ItemRecord>(path)? {
            r.upgrade();
            done.insert(r.idx, r);
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
        append_line(&self.path, &record)?;
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
            token_counts: TOKEN_COUNTS,
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

    #[test]
    fn a_whole_last_line_without_its_newline_is_kept_and_ended() {
        let dir = std::env::temp_dir().join(format!("gd-log-nl-{}", std::process::id()));
        let path = dir.join("small.jsonl");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A crash between a record and its newline (or a CRLF file edited by hand).
        let line = |i| serde_json::to_string(&record(i)).unwrap();
        fs::write(&path, format!("{}\r\n{}", line(0), line(1))).unwrap();
        let mut log = ItemLog::open(&path).unwrap();
        assert_eq!(log.records(&[0, 1]).len(), 2);
        log.append(record(2)).unwrap();
        let log = ItemLog::open(&path).unwrap();
        assert_eq!(
            log.records(&[0, 1, 2]),
            vec![record(0), record(1), record(2)]
        );
        // A torn tail after CRLF lines is cut at the right byte.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"idx\": 3, \"te").unwrap();
        drop(f);
        let before = fs::read_to_string(&path).unwrap();
        let log = ItemLog::open(&path).unwrap();
        assert_eq!(log.records(&[0, 1, 2, 3]).len(), 3);
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(after, before[..before.rfind('{').unwrap()]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_of_the_old_token_counts_are_upgraded_on_load() {
        let legacy = |config: &str, calls: usize| {
            let mut r = record(0);
            r.config = config.into();
            r.token_counts = 0;
            r.calls = calls;
            (r.small_read, r.small_generated) = (100, 30);
            (r.oracle_read, r.oracle_generated) = (50, 6);
            r
        };
        let up = |mut r: ItemRecord| {
            r.upgrade();
            assert_eq!(r.token_counts, TOKEN_COUNTS);
            (
                r.small_read,
                r.small_generated,
                r.oracle_read,
                r.oracle_generated,
            )
        };
        // Guided configurations: the small model's sampled tokens left its reads.
        for c in ["small", "random_c10_k5", "entropy_t2_k4", "maxprob_t0.4_k4"] {
            assert_eq!(up(legacy(c, 3)), (70, 30, 50, 6), "{c}");
        }
        // The in-process oracle alone (no calls) and a remote one (one call).
        assert_eq!(up(legacy("oracle", 0)), (100, 30, 44, 6));
        assert_eq!(up(legacy("oracle", 1)), (100, 30, 50, 6));
        // BiLD: 3 fallbacks; speculative decoding: 4 passes, 6 corrections read by the draft.
        assert_eq!(up(legacy("bild_f0.6_r5", 3)), (70, 30, 48, 6));
        assert_eq!(up(legacy("spec_g4", 4)), (76, 30, 47, 6));
        // Current records are left alone, and a current log reads back unchanged.
        let mut r = legacy("small", 0);
        r.token_counts = TOKEN_COUNTS;
        assert_eq!(up(r), (100, 30, 50, 6));
        let j = serde_json::to_string(&record(4)).unwrap();
        assert!(j.contains("\"token_counts\":1"), "{j}");
    }
}
