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
    /// Speculative decoding needs the draft and the target to share a vocabulary.
    #[error("draft vocabulary {draft} differs from the target's {target}")]
    VocabularyMismatch {
        /// The draft model's vocabulary size.
        draft: usize,
        /// The target model's vocabulary size.
        target: usize,
    },
}
