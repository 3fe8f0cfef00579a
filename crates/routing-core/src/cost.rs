//! The workspace's one cost model: compute in FLOPs and money in dollars per request.
//!
//! * **FLOPs** of a local model: `2 × active parameters × tokens processed` — the forward
//!   pass's multiply-adds, read and written tokens alike (Kaplan et al. 2020, *Scaling Laws for
//!   Neural Language Models*, §2.1: `C_forward ≈ 2N` per token; attention's
//!   context-dependent term is left out, as there). *Active* parameters are the ones a token
//!   passes through: embedding lookups excluded, the LM head included, and for a
//!   mixture-of-experts model only the experts that fire.
//! * **Dollars**: published per-million-token prices, input (read) and output (written) tokens
//!   priced apart, as API providers quote them; a local model can be given the price of the
//!   hardware time it takes, or zero.
//!
//! ```
//! use routing_core::cost::{ModelCost, TokenPrices};
//!
//! let small = ModelCost::local(135_000_000);
//! assert_eq!(small.flops(100, 20), Some(2.0 * 135e6 * 120.0));
//! let api = ModelCost::priced(TokenPrices { input_per_million: 5.0, output_per_million: 15.0 });
//! assert_eq!(api.flops(100, 20), None); // size unknown
//! assert!((api.dollars(1_000_000, 0) - 5.0).abs() < 1e-12);
//! ```

/// Prices per million tokens, as API providers quote them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenPrices {
    /// Dollars per million input (read) tokens.
    pub input_per_million: f64,
    /// Dollars per million output (written) tokens.
    pub output_per_million: f64,
}

impl TokenPrices {
    /// Dollars for `read` input and `written` output tokens.
    pub fn cost(&self, read: usize, written: usize) -> f64 {
        (read as f64 * self.input_per_million + written as f64 * self.output_per_million) / 1e6
    }
}

/// What one model's tokens cost: its active parameters (for FLOPs) and its prices.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelCost {
    /// Parameters a token passes through; `None` when unknown (a remote API model).
    pub active_parameters: Option<u64>,
    /// Prices per million tokens.
    pub prices: TokenPrices,
}

impl ModelCost {
    /// A local model of `active_parameters`, free of charge.
    pub fn local(active_parameters: u64) -> Self {
        Self {
            active_parameters: Some(active_parameters),
            prices: TokenPrices::default(),
        }
    }

    /// A model known only by its prices.
    pub fn priced(prices: TokenPrices) -> Self {
        Self {
            active_parameters: None,
            prices,
        }
    }

    /// `2 × active parameters × (read + written)` FLOPs, when the size is known.
    pub fn flops(&self, read: usize, written: usize) -> Option<f64> {
        self.active_parameters
            .map(|p| 2.0 * p as f64 * (read + written) as f64)
    }

    /// Dollars for `read` input and `written` output tokens.
    pub fn dollars(&self, read: usize, written: usize) -> f64 {
        self.prices.cost(read, written)
    }
}
