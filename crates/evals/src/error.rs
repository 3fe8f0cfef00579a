//! The crate's error type.

use datasets::DatasetError;
use routing_core::RoutingError;

/// Result alias for `evals`.
pub type Result<T> = std::result::Result<T, EvalError>;

/// Errors raised while measuring.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// From the data layer.
    #[error(transparent)]
    Data(#[from] DatasetError),
    /// From routing (calibration, router scores).
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// A metric is undefined for this input (e.g. PGR when weak and strong tie).
    #[error("{metric} is undefined: {reason}")]
    Undefined {
        /// The metric.
        metric: String,
        /// Why.
        reason: String,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// The real-data folder is missing: none was given and none was found (`path` is `None`),
    /// or the given path is not a folder.
    #[error("{}: {reason}", path.as_ref().map_or_else(|| "data folder".to_string(), |p| p.display().to_string()))]
    DataDir {
        /// The folder given, if any.
        path: Option<std::path::PathBuf>,
        /// Why it cannot be used.
        reason: String,
    },
    /// Serialising a report to JSON failed.
    #[error("cannot serialise {what} to JSON: {message}")]
    Json {
        /// What was being serialised.
        what: String,
        /// The serialiser's message.
        message: String,
    },
    /// Writing a report or figure failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl EvalError {
    /// Builds an [`EvalError::InvalidParameter`].
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl From<figure::FigureError> for EvalError {
    fn from(e: figure::FigureError) -> Self {
        match e {
            figure::FigureError::Io { path, source } => Self::Io { path, source },
        }
    }
}
