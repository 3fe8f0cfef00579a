//! The crate's error type: one enum whose variants name what a user can fix (the file, the
//! tensor key, the config field).

use std::path::{Path, PathBuf};

/// Result alias for `mf-router`.
pub type Result<T> = std::result::Result<T, MfError>;

/// Errors raised while building battles, splitting, embedding, training, saving or loading.
#[derive(Debug, thiserror::Error)]
pub enum MfError {
    /// An error from the data layer (unknown model, bad table).
    #[error(transparent)]
    Data(#[from] datasets::DatasetError),
    /// An error from the routing layer (calibration, bad share).
    #[error(transparent)]
    Routing(#[from] routing_core::RoutingError),
    /// Reading the benchmark harness's per-sample outputs failed.
    #[error(transparent)]
    Harness(#[from] evals::harness::HarnessError),
    /// Evaluating routing curves failed.
    #[error(transparent)]
    Eval(#[from] evals::EvalError),
    /// A figure could not be written.
    #[error(transparent)]
    Figure(#[from] figure::FigureError),
    /// An error from the sentence encoder.
    #[error("sentence encoder: {0}")]
    Encoder(#[from] lm::LmError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A hyper-parameter or argument outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Nothing to work on (no battles, an empty split, …).
    #[error("empty {what}")]
    Empty {
        /// What was empty.
        what: String,
    },
    /// Two things that must agree in size do not.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was compared.
        what: String,
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// An embedding-cache file is malformed (bad magic, version, truncated record, …).
    #[error("embedding cache {path}: {reason}")]
    CacheCorrupt {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An embedding cache written for another encoder or width.
    #[error("embedding cache {path}: {field} is `{found}` but `{expected}` was asked for")]
    CacheMismatch {
        /// The cache file.
        path: PathBuf,
        /// The header field (`model id`, `dim`).
        field: &'static str,
        /// What the caller expects.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A prompt without text was given to a router that embeds text.
    #[error("prompt `{id}` has no text; an embedding router needs the prompt text")]
    MissingText {
        /// The prompt id.
        id: String,
    },
    /// A safetensors file could not be parsed.
    #[error("checkpoint {path}: safetensors: {message}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A tensor the config requires is absent from the weights file.
    #[error("checkpoint {path}: missing tensor `{key}`")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor key.
        key: String,
    },
    /// A tensor that the config does not expect is present in the weights file.
    #[error("checkpoint {path}: unexpected tensor `{key}`")]
    UnexpectedTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor key.
        key: String,
    },
    /// A tensor has the wrong dtype or shape for the config.
    #[error("checkpoint {path}: tensor `{key}` is {got}, config requires {expected}")]
    TensorMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor key.
        key: String,
        /// What the config requires (dtype and shape).
        expected: String,
        /// What the file holds.
        got: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("checkpoint {path}: tensor `{key}` holds a non-finite value")]
    NonFiniteTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor key.
        key: String,
    },
    /// The JSON config is malformed or inconsistent.
    #[error("checkpoint config {path}: field `{field}`: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The offending field (or `<json>` for a parse error).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint was written for another encoder (embedding model id or width).
    #[error(
        "checkpoint expects embedding model `{expected}` ({expected_dim}-d) but got `{got}` ({got_dim}-d)"
    )]
    EmbeddingMismatch {
        /// The checkpoint's embedding model id.
        expected: String,
        /// The checkpoint's embedding width.
        expected_dim: usize,
        /// The embedder's model id.
        got: String,
        /// The embedder's width.
        got_dim: usize,
    },
    /// A study's data folder does not exist or is not a folder.
    #[error("data folder {path}: {reason}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong (`no such folder`, `not a folder`).
        reason: String,
    },
    /// No data folder was given and the shared one was not found.
    #[error(
        "shared data not found: set CAI_DATA_DIR, give a data folder (`Source::Data`), or use the synthetic source"
    )]
    NoSharedData,
    /// A study on real data was run without the sentence encoder it embeds prompts with.
    #[error(
        "the {study} study on real data needs a sentence encoder (MiniLM): pass one, or use the synthetic source"
    )]
    MissingEncoder {
        /// The study (`routellm`, `code`).
        study: &'static str,
    },
    /// A lookup embedder was asked for a text it does not hold.
    #[error("embedder `{model_id}` holds no vector for the text `{text}`")]
    UnknownText {
        /// The embedder's model id.
        model_id: String,
        /// The text (its first 60 characters).
        text: String,
    },
    /// A data file holds no usable records.
    #[error("{path}: no {what}")]
    EmptyFile {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: String,
    },
    /// A routing call needs a threshold but the checkpoint has none.
    #[error("no routing threshold: calibrate one (`with_threshold`) or save it in the checkpoint")]
    NoThreshold,
}

impl MfError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An invalid-parameter error.
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Maps an `mf-router` error into the routing layer's error type (for the router traits).
impl From<MfError> for routing_core::RoutingError {
    fn from(e: MfError) -> Self {
        match e {
            MfError::Routing(r) => r,
            MfError::Data(d) => routing_core::RoutingError::Data(d),
            other => routing_core::RoutingError::InvalidParameter {
                name: "mf-router".into(),
                reason: other.to_string(),
            },
        }
    }
}
