//! The two routing studies as library code: a typed config in, a typed report out, and the
//! report's files written where the caller says.
//!
//! * [`routellm`] — RouteLLM's matrix-factorisation router (Ong et al. 2024, §4.2) on
//!   golden-label battles: held-out questions, an out-of-distribution set, held-out subjects,
//!   an N-model willingness-to-pay evaluation, speed and a checkpoint (the `routellm_mf`
//!   example);
//! * [`code`] — the MBPP small/large study (seed notebook 000): random routing vs an MLP
//!   classifier router at validation-tuned thresholds, with checkpoints (the `code_router`
//!   example);
//! * [`harness`] — the router trained on the workspace's own `lm_eval` outcomes (re-exported
//!   [`crate::harness_router`]).
//!
//! Each study reads its data from a [`Source`]: the real outcome tables under a data folder
//! (then the caller passes the MiniLM [`SentenceEncoder`] it loaded on the device it chose, and
//! the study embeds prompts through the on-disk cache at the config's `cache` path), or a
//! seeded **synthetic** task ([`crate::synthetic`]: made-up outcomes and embeddings with a
//! planted structure, not real data) that needs neither `../shared` nor MiniLM and runs in
//! seconds. Every report has `to_markdown`, serde serialisation and `write(dir)`.
//!
//! ```
//! use mf_router::study::{Source, code, routellm};
//!
//! // RouteLLM's MF router on a synthetic task: one seed, a few epochs.
//! let config = routellm::RouteLlmConfig {
//!     source: Source::Synthetic { seed: 1, n_items: 1000 },
//!     seeds: Some(1),
//!     epochs: Some(6),
//!     ..routellm::RouteLlmConfig::default()
//! };
//! let report = routellm::run(&config, None)?; // no encoder: the source is synthetic
//! let held_out = &report.seeds[0].held_out_questions;
//! assert!(held_out.routers[1].apgr_area > held_out.random_apgr); // better than random
//! assert!(report.to_markdown().contains("synthetic"));
//!
//! // The MBPP-style classifier study on a synthetic task.
//! let config = code::CodeConfig {
//!     source: Source::Synthetic { seed: 1, n_items: 300 },
//!     seeds: 1,
//!     ..code::CodeConfig::default()
//! };
//! let report = code::run(&config, None)?;
//! assert_eq!(report.pairs.len(), 3);
//! // report.write(Path::new("out/code_router"))? writes report.md, summary.json, SVGs, checkpoints.
//! # Ok::<(), mf_router::MfError>(())
//! ```

use std::path::{Path, PathBuf};

use lm::models::bert::SentenceEncoder;

use crate::embed_cache::CachedEmbedder;
use crate::error::{MfError, Result};

pub mod code;
pub mod routellm;

pub use crate::harness_router as harness;

/// Where the MiniLM embedding cache lives by default (shared by both studies).
pub const DEFAULT_CACHE: &str = "out/embed-cache/all-MiniLM-L6-v2.mfemb";

/// Where a study reads its outcomes and embeddings from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub enum Source {
    /// The shared data folder: `CAI_DATA_DIR`, else a `shared/data` beside the workspace
    /// ([`datasets::shared_data_dir`]); [`MfError::NoSharedData`] when neither exists.
    #[default]
    SharedData,
    /// A data folder holding `routellm_evals/` and `routerbench_routerdc/`.
    Data(PathBuf),
    /// A seeded synthetic task ([`crate::synthetic`]; not real data): no files, no encoder.
    Synthetic {
        /// Seed of the outcomes, groups and embedding noise.
        seed: u64,
        /// Items of the main task (the RouteLLM study's question set, the code study's table).
        n_items: usize,
    },
}

impl Source {
    /// The source command lines pick: synthetic (`n_items` items, seed 0) when `synthetic`,
    /// else the data folder given, else the shared data folder.
    pub fn pick(synthetic: bool, data: Option<PathBuf>, n_items: usize) -> Self {
        match (synthetic, data) {
            (true, _) => Self::Synthetic { seed: 0, n_items },
            (false, Some(dir)) => Self::Data(dir),
            (false, None) => Self::SharedData,
        }
    }

    /// MiniLM on the CPU for a real source (from the fetched model, `lm::locate`), `None` for
    /// the synthetic one. A missing data folder fails first, before the encoder is loaded.
    ///
    /// # Errors
    /// [`MfError::DataDir`] / [`MfError::NoSharedData`], or [`MfError::Encoder`] when MiniLM
    /// is not fetched or does not load.
    pub fn minilm(&self, progress: bool) -> Result<Option<lm::models::bert::SentenceEncoder>> {
        self.data_dir()?;
        if self.is_synthetic() {
            return Ok(None);
        }
        if progress {
            eprintln!("loading MiniLM …");
        }
        Ok(Some(lm::models::bert::SentenceEncoder::from_dir(
            lm::locate::minilm_dir()?,
            &burn::tensor::Device::flex(),
        )?))
    }

    /// Whether the source is synthetic.
    pub fn is_synthetic(&self) -> bool {
        matches!(self, Self::Synthetic { .. })
    }

    /// The data folder of a real source (checked to exist: [`MfError::DataDir`] names it), or
    /// `None` for the synthetic source.
    pub fn data_dir(&self) -> Result<Option<PathBuf>> {
        match self {
            Self::SharedData => datasets::shared_data_dir()
                .map(Some)
                .ok_or(MfError::NoSharedData),
            Self::Data(p) if p.is_dir() => Ok(Some(p.clone())),
            Self::Data(p) => Err(MfError::DataDir {
                path: p.clone(),
                reason: if p.exists() {
                    "not a folder".into()
                } else {
                    "no such folder".into()
                },
            }),
            Self::Synthetic { .. } => Ok(None),
        }
    }

    /// Checks a synthetic source's item count against the study's minimum.
    fn check_items(&self, min: usize) -> Result<()> {
        match self {
            Self::Synthetic { n_items, .. } if *n_items < min => Err(MfError::param(
                "source.n_items",
                format!("the synthetic source needs at least {min} items, got {n_items}"),
            )),
            _ => Ok(()),
        }
    }
}

/// The MiniLM encoder behind the embedding cache at `cache`; the progress bar only when
/// `progress`.
fn open_cache<'a>(
    encoder: &'a SentenceEncoder,
    cache: &Path,
    progress: bool,
) -> Result<CachedEmbedder<&'a SentenceEncoder>> {
    let cached = CachedEmbedder::open(encoder, cache)?;
    Ok(if progress {
        cached
    } else {
        cached.with_progress_min(usize::MAX)
    })
}

/// Prompt texts of a table in row order (`""` for a prompt without text).
fn texts(t: &datasets::OutcomeTable) -> Vec<String> {
    t.prompts()
        .iter()
        .map(|p| p.text.clone().unwrap_or_default())
        .collect()
}

/// Rows whose split label is `split`.
fn rows_of(t: &datasets::OutcomeTable, split: &str) -> Vec<usize> {
    (0..t.n_prompts())
        .filter(|&p| t.prompts()[p].split.as_deref() == Some(split))
        .collect()
}

/// Creates `dir`.
fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| MfError::io(dir, e))
}

/// Writes `text` to `path`.
fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| MfError::io(path, e))
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| MfError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    write_text(path, &text)
}

/// Saves `ck` into a fresh scratch folder under the system's temporary folder, loads it back
/// and removes the folder: the checkpoint round trip of a study, before any output folder.
fn round_trip(ck: &crate::checkpoint::Checkpoint) -> Result<crate::checkpoint::Checkpoint> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mf-router-study-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let got = ck
        .save(&dir)
        .and_then(|()| crate::checkpoint::Checkpoint::load(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    got
}
