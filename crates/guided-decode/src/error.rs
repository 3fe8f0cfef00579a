//! The crate's error type.

use lm::LmError;
use routing_core::RoutingError;

/// Result alias for `guided-decode`.
pub type Result<T, E = GuidedError> = std::result::Result<T, E>;

/// Errors of guided generation.
#[derive(Debug, thiserror::Error)]
pub enum GuidedError {
    /// A model, tokenizer or sampling error.
    #[error(transparent)]
    Lm(#[from] LmError),
    /// An invalid policy parameter.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// Options that cannot work together (named).
    #[error("invalid guided-decoding option `{name}`: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A remote oracle failed (the URL never carries credentials; the API key is never shown).
    #[error("remote oracle {url}: {kind}: {detail}")]
    Remote {
        /// The endpoint.
        url: String,
        /// What went wrong.
        kind: RemoteErrorKind,
        /// The client's or server's message (a response body is cut to 200 characters).
        detail: String,
    },
    /// A benchmark task, its data or its scoring failed.
    #[error(transparent)]
    Harness(#[from] evals::harness::HarnessError),
    /// A routing metric or its data failed (`evals`).
    #[error(transparent)]
    Eval(#[from] evals::EvalError),
    /// A figure could not be written.
    #[error(transparent)]
    Figure(#[from] figure::FigureError),
    /// Reading or writing a study file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of a per-item log is not a record.
    #[error("{path}:{line}: {detail}")]
    Log {
        /// The log file.
        path: std::path::PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// Speculative decoding needs the draft and the target to share a vocabulary.
    #[error("draft vocabulary {draft} differs from the target's {target}")]
    VocabularyMismatch {
        /// The draft model's vocabulary size.
        draft: usize,
        /// The target model's vocabulary size.
        target: usize,
    },
}

/// Kinds of remote-oracle failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// The connection was refused, reset, or the host is unknown (server absent).
    Connection,
    /// No complete answer within the timeout.
    Timeout,
    /// The server answered with this non-2xx status.
    HttpStatus(u16),
    /// The answer is not the JSON of a completion.
    MalformedResponse,
    /// Another HTTP protocol error.
    Protocol,
}

impl std::fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connection => write!(f, "connection failed"),
            Self::Timeout => write!(f, "timed out"),
            Self::HttpStatus(s) => write!(f, "HTTP status {s}"),
            Self::MalformedResponse => write!(f, "malformed response"),
            Self::Protocol => write!(f, "protocol error"),
        }
    }
}
