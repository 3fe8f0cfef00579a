//! Benchmarks as library code: the measurements behind the `lm_bench` and `embed --bench`
//! examples, each a function returning a typed report (markdown and JSON), so other crates and
//! tests can run them and the examples only parse arguments, pick the device and print.
//!
//! * [`throughput`]: prefill and decode tokens/s of a [`crate::CausalLm`] over batch × prompt
//!   cells, with llama.cpp (llama-cpp-python) run on the same file and prompt lengths in the same
//!   process tree for the ratio.
//! * [`embed`]: sentences/s of the MiniLM [`crate::SentenceEncoder`] (f32 and int8), against
//!   sentence-transformers on the same sentences, and the comparison with the golden embeddings.
//!
//! The peers are the Python scripts in `crates/lm/peer/` ([`peer_script`]), run with `python3`;
//! their failures and malformed outputs are [`BenchError`]s naming the script and the field.
//!
//! ```
//! use lm::bench::throughput::{ThroughputCell, ThroughputReport};
//!
//! // Two repetitions of batch 1 and batch 8 at 128 tokens: medians and their ratio.
//! let cell = |batch, decode_tok_per_s| ThroughputCell {
//!     batch,
//!     prompt_tokens: 128,
//!     decode_steps: 32,
//!     prefill_secs: 0.1,
//!     prefill_tok_per_s: 1280.0 * batch as f64,
//!     decode_secs: 1.0,
//!     decode_tok_per_s,
//! };
//! let report = ThroughputReport {
//!     model: "tiny".into(),
//!     engine: "f32".into(),
//!     device: "cpu".into(),
//!     threads: 1,
//!     cells: vec![cell(1, 40.0), cell(8, 200.0), cell(1, 50.0), cell(8, 260.0)],
//!     llama_cpp: vec![],
//! };
//! let ratios = report.batched_ratios();
//! assert_eq!(ratios.len(), 1);
//! assert_eq!(ratios[0].batch, 8);
//! // 200/40 = 5.0 and 260/50 = 5.2: of an even count the median is the upper middle value.
//! assert_eq!(ratios[0].median_of_ratios, Some(5.2));
//! assert!(report.to_markdown().contains("| 128 | 8 |"));
//! ```

pub mod embed;
pub mod throughput;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::LmError;

/// What can go wrong in a benchmark: the model's own errors, files, and the peer processes.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The model failed (loading, tokenising, a forward pass).
    #[error(transparent)]
    Lm(#[from] LmError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input file is malformed (a golden file, a texts file): names the file and the entry.
    #[error("{}: {reason}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the entry (`case 3: ...`).
        reason: String,
    },
    /// A setting cannot be measured (an empty list, a zero size).
    #[error("benchmark setting `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The peer script could not be started or exited with an error.
    #[error("peer {}: {reason}", script.display())]
    Peer {
        /// The script.
        script: PathBuf,
        /// The exit status and the end of its standard error, or why it did not start.
        reason: String,
    },
    /// The peer's output lacks a field or has one of the wrong kind.
    #[error("peer {}: output field `{field}`: {reason}", script.display())]
    PeerOutput {
        /// The script.
        script: PathBuf,
        /// The JSON field (`sentences_per_s`, `embeddings[3]`, ...).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result of the benchmark functions.
pub type Result<T> = std::result::Result<T, BenchError>;

/// The path of a peer script shipped with this crate (`crates/lm/peer/NAME`).
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peer")
        .join(name)
}

/// Runs `python3 SCRIPT ARGS...` and returns its standard output; a failure to start or a
/// non-zero exit is [`BenchError::Peer`] with the last lines of its standard error.
fn run_python(script: &Path, args: &[String], env: &[(&str, &str)]) -> Result<Vec<u8>> {
    let peer = |reason: String| BenchError::Peer {
        script: script.to_path_buf(),
        reason,
    };
    if !script.is_file() {
        return Err(peer("no such script".into()));
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd
        .output()
        .map_err(|e| peer(format!("cannot start python3: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(peer(format!("{}: {}", output.status, tail.join(" | "))));
    }
    Ok(output.stdout)
}

/// The median of finite values (the upper one of an even count, as the reports always used);
/// `None` when there is none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// `a / b` when both are known and `b` is not 0.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Writes `value` as pretty JSON to `path`, creating its folder.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let io = |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| BenchError::Input {
        path: path.to_path_buf(),
        reason: format!("cannot serialise: {e}"),
    })?;
    std::fs::write(path, text).map_err(io)
}

/// `Some(x)` printed with `digits` decimals, `None` as `–`.
fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_skips_non_finite_values_and_is_none_when_empty() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median([f64::NAN]), None);
        assert_eq!(median(Vec::new()), None);
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
    }

    #[test]
    fn a_missing_peer_script_is_a_typed_error_naming_it() {
        let script = peer_script("no_such_peer.py");
        let err = run_python(&script, &[], &[]).unwrap_err();
        assert!(matches!(err, BenchError::Peer { .. }), "{err}");
        assert!(err.to_string().contains("no_such_peer.py"), "{err}");
    }

    #[test]
    fn a_failing_peer_reports_its_status_and_stderr() {
        if Command::new("python3").arg("--version").output().is_err() {
            eprintln!("skipped: no python3");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lm-bench-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("fails.py");
        std::fs::write(
            &script,
            "import sys\nprint('broken input', file=sys.stderr)\nsys.exit(3)\n",
        )
        .unwrap();
        let err = run_python(&script, &[], &[]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("fails.py") && text.contains("broken input"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
