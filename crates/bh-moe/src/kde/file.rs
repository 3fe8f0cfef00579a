//! Per-layer null distributions on disk: one JSON file, one record per MoE layer, each with
//! its provenance.
//!
//! ```json
//! {
//!   "format": "bh-moe/kde-nulls/v1",
//!   "nulls": [
//!     {
//!       "provenance": { "model": "allenai/OLMoE-1B-7B-0924", "layer": 0,
//!                       "calibration": "WikiText-2 train, first 2,000 windows of 512 tokens",
//!                       "tokens": 1024000 },
//!       "bandwidth_rule": "scott",          // or "silverman", or { "factor": 0.3 }
//!       "factor": 0.1379, "bandwidth": 0.152,
//!       "source_samples": 65536000,          // logits offered to the fit (tokens × E)
//!       "samples": [ … ],                    // the kept samples, and/or
//!       "table": { "start": -9.1, "step": 0.0024, "values": [ … ] }
//!     }
//!   ]
//! }
//! ```
//!
//! Records are stored in layer order (`nulls[i]` is layer `i`). A record holds the samples (the
//! KDE can be rebuilt exactly and re-tabulated at any resolution), the table (all the selector
//! needs; much smaller for large calibration sets), or both. Loading checks every field and
//! names the file and the field of the first problem.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Bandwidth, CdfTable, GaussianKde};
use crate::error::{BhMoeError, Result, invalid};

/// The `format` tag of the files this version reads and writes.
pub const KDE_FILE_FORMAT: &str = "bh-moe/kde-nulls/v1";

/// Where a null distribution's samples came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The model whose router logits were collected (HF id or local path).
    pub model: String,
    /// The MoE layer (0-based).
    pub layer: usize,
    /// The calibration text, in words (dataset, split, how much of it, window length).
    pub calibration: String,
    /// Calibration tokens; the sample pool is `tokens × E` logits.
    pub tokens: usize,
    /// The seed of the KDE's subsample (`None` in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The most samples the KDE kept (`None` as `seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples: Option<usize>,
}

/// A stored [`CdfTable`] (its bandwidth is the record's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRecord {
    /// The first grid point.
    pub start: f64,
    /// The grid step.
    pub step: f64,
    /// The CDF at the grid points, non-decreasing in `[0, 1]`.
    pub values: Vec<f64>,
}

/// One layer's null distribution with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdeRecord {
    /// Where the samples came from.
    pub provenance: Provenance,
    /// The bandwidth rule the KDE was fitted with.
    pub bandwidth_rule: Bandwidth,
    /// The bandwidth factor.
    pub factor: f64,
    /// The kernel standard deviation `h`.
    pub bandwidth: f64,
    /// Samples offered to the fit, before subsampling.
    pub source_samples: usize,
    /// The samples the KDE was built on (after subsampling), if kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<Vec<f64>>,
    /// The tabulated CDF, if kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableRecord>,
}

impl KdeRecord {
    /// A record of `kde` that keeps its samples.
    pub fn new(provenance: Provenance, kde: &GaussianKde) -> Self {
        Self {
            provenance,
            bandwidth_rule: kde.rule(),
            factor: kde.factor(),
            bandwidth: kde.bandwidth(),
            source_samples: kde.source_samples(),
            samples: Some(kde.samples().to_vec()),
            table: None,
        }
    }

    /// Also keeps `table`.
    pub fn with_table(mut self, table: &CdfTable) -> Self {
        self.table = Some(TableRecord {
            start: table.start(),
            step: table.step(),
            values: table.values().to_vec(),
        });
        self
    }

    /// Drops the samples (keep a table first, or the record cannot be used).
    pub fn without_samples(mut self) -> Self {
        self.samples = None;
        self
    }

    /// Rebuilds the KDE from the stored samples and rule, and checks it reproduces the stored
    /// bandwidth (relative `1e−12`).
    ///
    /// # Errors
    /// No samples stored, samples a KDE cannot be fitted on, or a bandwidth mismatch.
    pub fn kde(&self) -> Result<GaussianKde> {
        let samples = self
            .samples
            .as_deref()
            .ok_or_else(|| invalid("samples", "the record keeps no samples (table only)"))?;
        let kde = GaussianKde::fit(samples, self.bandwidth_rule)?;
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
        let mismatch = rel(kde.bandwidth(), self.bandwidth);
        if mismatch.is_nan() || mismatch > 1e-12 {
            return Err(invalid(
                "bandwidth",
                format!(
                    "stored {} but the samples and rule `{}` give {}",
                    self.bandwidth,
                    self.bandwidth_rule.name(),
                    kde.bandwidth()
                ),
            ));
        }
        Ok(kde)
    }

    /// The CDF table: the stored one, or one tabulated from the samples with
    /// `steps_per_bandwidth` steps per bandwidth.
    ///
    /// # Errors
    /// An invalid stored table, or no table and no usable samples.
    pub fn cdf_table(&self, steps_per_bandwidth: usize) -> Result<CdfTable> {
        match &self.table {
            Some(t) => CdfTable::from_parts(t.start, t.step, t.values.clone(), self.bandwidth),
            None => self.kde()?.tabulate(steps_per_bandwidth),
        }
    }

    /// The first problem of this record as `(field, reason)`, the field relative to the record.
    fn problem(&self, index: usize) -> Option<(String, String)> {
        if self.provenance.layer != index {
            return Some((
                "provenance.layer".into(),
                format!(
                    "{} in record {index}: records are stored in layer order, one per layer",
                    self.provenance.layer
                ),
            ));
        }
        if let Bandwidth::Factor(f) = self.bandwidth_rule
            && !(f.is_finite() && f > 0.0)
        {
            return Some((
                "bandwidth_rule".into(),
                format!("factor {f} must be positive"),
            ));
        }
        for (field, v) in [("factor", self.factor), ("bandwidth", self.bandwidth)] {
            if !(v.is_finite() && v > 0.0) {
                return Some((field.into(), format!("{v} must be finite and positive")));
            }
        }
        if self.samples.is_none() && self.table.is_none() {
            return Some((String::new(), "neither samples nor a table".into()));
        }
        if let Some(samples) = &self.samples {
            if samples.len() > self.source_samples {
                return Some((
                    "source_samples".into(),
                    format!(
                        "{} is below the {} stored samples",
                        self.source_samples,
                        samples.len()
                    ),
                ));
            }
            match self.kde() {
                Ok(_) => {}
                Err(BhMoeError::NonFiniteSample { index, value }) => {
                    return Some((
                        format!("samples[{index}]"),
                        format!("{value} is not finite"),
                    ));
                }
                Err(BhMoeError::InvalidParameter { name, reason }) => return Some((name, reason)),
                Err(e) => return Some(("samples".into(), e.to_string())),
            }
        }
        if let Some(t) = &self.table {
            match CdfTable::from_parts(t.start, t.step, t.values.clone(), self.bandwidth) {
                Ok(_) => {}
                Err(BhMoeError::InvalidParameter { name, reason }) if name == "bandwidth" => {
                    return Some((name, reason));
                }
                Err(BhMoeError::InvalidParameter { name, reason }) => {
                    return Some((format!("table.{name}"), reason));
                }
                Err(e) => return Some(("table".into(), e.to_string())),
            }
        }
        None
    }
}

/// A file of per-layer null distributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdeFile {
    /// Always [`KDE_FILE_FORMAT`].
    pub format: String,
    /// One record per layer, in layer order.
    pub nulls: Vec<KdeRecord>,
}

impl KdeFile {
    /// A file of `nulls` (one per layer, in layer order).
    pub fn new(nulls: Vec<KdeRecord>) -> Self {
        Self {
            format: KDE_FILE_FORMAT.into(),
            nulls,
        }
    }

    /// Checks every field, naming `path` and the first invalid field.
    ///
    /// # Errors
    /// [`BhMoeError::Field`]: a wrong format tag, no records, a record out of layer order, a
    /// non-positive factor or bandwidth, a record with neither samples nor a table, samples or
    /// a table that fail their checks ([`GaussianKde::fit`], [`CdfTable::from_parts`]), or
    /// samples that do not reproduce the stored bandwidth.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let field = |field: String, reason: String| BhMoeError::Field {
            path: path.to_path_buf(),
            field,
            reason,
        };
        if self.format != KDE_FILE_FORMAT {
            return Err(field(
                "format".into(),
                format!("`{}`, expected `{KDE_FILE_FORMAT}`", self.format),
            ));
        }
        if self.nulls.is_empty() {
            return Err(field("nulls".into(), "no records".into()));
        }
        for (i, record) in self.nulls.iter().enumerate() {
            if let Some((name, reason)) = record.problem(i) {
                let name = if name.is_empty() {
                    format!("nulls[{i}]")
                } else {
                    format!("nulls[{i}].{name}")
                };
                return Err(field(name, reason));
            }
        }
        Ok(())
    }

    /// Validates and writes the file as compact JSON.
    ///
    /// Floats are written in shortest round-trip form; serde_json's default parser (the
    /// workspace does not enable its `float_roundtrip` feature) reads them back to within about
    /// an ulp, so a loaded record equals the saved one to ~`1e−16` relative — far below the
    /// table's own error.
    ///
    /// # Errors
    /// An invalid record ([`KdeFile::validate`]) or an I/O error, naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.validate(path)?;
        let mut bytes = serde_json::to_vec(self).map_err(|source| BhMoeError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        bytes.push(b'\n');
        std::fs::write(path, bytes).map_err(|source| io(path, source))
    }

    /// Reads and validates a file.
    ///
    /// # Errors
    /// An I/O error, malformed JSON or an unknown/missing field ([`BhMoeError::Json`], with line
    /// and column), or an invalid value ([`BhMoeError::Field`]), all naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
        let file: Self = serde_json::from_str(&text).map_err(|source| BhMoeError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        file.validate(path)?;
        Ok(file)
    }

    /// One CDF table per layer, in layer order (stored tables, or tabulated from the samples
    /// with `steps_per_bandwidth`) — the input of [`crate::BhSelector::new`].
    ///
    /// # Errors
    /// See [`KdeRecord::cdf_table`].
    pub fn tables(&self, steps_per_bandwidth: usize) -> Result<Vec<CdfTable>> {
        self.nulls
            .iter()
            .map(|r| r.cdf_table(steps_per_bandwidth))
            .collect()
    }
}

fn io(path: &Path, source: std::io::Error) -> BhMoeError {
    BhMoeError::Io {
        path: PathBuf::from(path),
        source,
    }
}
