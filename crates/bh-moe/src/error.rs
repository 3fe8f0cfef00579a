//! The crate's error type.

use std::path::PathBuf;

use routing_core::RoutingError;

/// Result alias for `bh-moe`.
pub type Result<T> = std::result::Result<T, BhMoeError>;

/// Errors raised while fitting, storing or configuring null distributions and selectors.
///
/// Selection itself ([`routing_core::expert::ExpertSelector::select`]) reports
/// [`RoutingError`]s, since that is the trait's error type.
#[derive(Debug, thiserror::Error)]
pub enum BhMoeError {
    /// An error from `routing-core` (bad logits, an expert count above `E`, …).
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// A KDE needs at least two samples (scipy's `gaussian_kde` needs more points than
    /// dimensions).
    #[error("a KDE needs at least 2 samples, got {got}")]
    TooFewSamples {
        /// Samples given (after subsampling, if any).
        got: usize,
    },
    /// All samples are equal: the sample variance, hence the bandwidth, is zero.
    #[error("the {samples} samples all equal {value}: zero variance, no bandwidth")]
    ZeroVariance {
        /// How many samples.
        samples: usize,
        /// Their common value.
        value: f64,
    },
    /// A sample is NaN or infinite.
    #[error("sample {index} is {value}")]
    NonFiniteSample {
        /// Position in the input.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON or does not have the expected shape.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// An error from the benchmark harness (loading a task, scoring).
    #[error(transparent)]
    Harness(#[from] evals::harness::HarnessError),

    /// Writing or reading a Parquet file failed.
    #[error("{}: parquet: {detail}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The polars error.
        detail: String,
    },

    /// An error from the language-model engine (loading the base model, a forward pass).
    #[error(transparent)]
    Lm(#[from] lm::LmError),

    /// A file parsed, but one of its fields has an invalid value.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, as a JSON path (`nulls[3].table.step`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> BhMoeError {
    BhMoeError::InvalidParameter {
        name: name.to_string(),
        reason: reason.into(),
    }
}
