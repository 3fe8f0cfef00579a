//! The crate's error type.

use datasets::DatasetError;

/// Result alias for `routing-core`.
pub type Result<T> = std::result::Result<T, RoutingError>;

/// Errors raised while scoring, calibrating or routing.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// An error from the data layer (unknown model, bad table).
    #[error(transparent)]
    Data(#[from] DatasetError),
    /// Two arrays that must have the same length do not.
    #[error("{what}: expected length {expected}, got {got}")]
    Shape {
        /// What was being compared.
        what: String,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A share (fraction of calls) outside `[0, 1]` or not finite.
    #[error("strong-call share {value} is outside [0, 1]")]
    InvalidShare {
        /// The offending value.
        value: f64,
    },
    /// A router produced a NaN or infinite score.
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Which array.
        what: String,
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// Nothing to work on.
    #[error("empty {what}")]
    Empty {
        /// What was empty.
        what: String,
    },
    /// A router was asked about prompts it has no data for.
    #[error("router `{router}` has no entry for {count} prompt id(s), e.g. {examples}")]
    UnknownPrompts {
        /// The router's name.
        router: String,
        /// How many ids were unknown.
        count: usize,
        /// A few of them, comma-separated.
        examples: String,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// An expert selector was given no router logits.
    #[error("layer {layer}: empty router logits")]
    EmptyLogits {
        /// The MoE layer.
        layer: usize,
    },
    /// A router logit is NaN or infinite.
    #[error("layer {layer}: router logit of expert {expert} is {value}")]
    NonFiniteLogit {
        /// The MoE layer.
        layer: usize,
        /// The expert whose logit it is.
        expert: usize,
        /// The value.
        value: f32,
    },
    /// An expert count (`k`, `min_k`, `max_k`) larger than the layer's number of experts.
    #[error("layer {layer}: `{field}` = {value} exceeds the layer's {experts} experts")]
    ExpertCount {
        /// The MoE layer.
        layer: usize,
        /// The selector's field.
        field: String,
        /// Its value.
        value: usize,
        /// Experts at that layer (the length of the router logits).
        experts: usize,
    },
    /// A layer index a selector has no parameters for (e.g. no null distribution).
    #[error("layer {layer}: the selector only knows layers 0..{layers}")]
    UnknownLayer {
        /// The requested layer.
        layer: usize,
        /// How many layers the selector knows.
        layers: usize,
    },
}

/// Checks that every value is finite.
pub fn check_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(RoutingError::NonFinite {
            what: what.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that a share is in `[0, 1]`.
pub fn check_share(value: f64) -> Result<f64> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(RoutingError::InvalidShare { value })
    }
}
