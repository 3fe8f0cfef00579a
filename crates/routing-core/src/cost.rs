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

    /// Reads `count` price pairs from one comma-separated list, `IN,OUT[,IN,OUT...]` dollars
    /// per million tokens (the command-line form): exactly `2 × count` numbers, each finite and
    /// non-negative.
    ///
    /// ```
    /// use routing_core::cost::TokenPrices;
    ///
    /// let [small, oracle] = TokenPrices::parse_pairs("0.1, 0.2,5,15", 2)?[..] else { unreachable!() };
    /// assert_eq!(oracle, TokenPrices { input_per_million: 5.0, output_per_million: 15.0 });
    /// assert_eq!(small.output_per_million, 0.2);
    /// assert!(TokenPrices::parse_pairs("1,2,3", 1).is_err()); // a third number is not ignored
    /// assert!("1,NaN".parse::<TokenPrices>().is_err());
    /// # Ok::<(), routing_core::cost::PriceParseError>(())
    /// ```
    pub fn parse_pairs(text: &str, count: usize) -> Result<Vec<Self>, PriceParseError> {
        let err = |reason: String| PriceParseError {
            text: text.to_string(),
            reason,
        };
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != 2 * count {
            return Err(err(format!(
                "{} numbers where {} are needed",
                fields.len(),
                2 * count
            )));
        }
        let values = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| {
                        err(format!(
                            "number {} (`{f}`) is not a finite price ≥ 0",
                            i + 1
                        ))
                    })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        Ok(values
            .chunks(2)
            .map(|p| Self {
                input_per_million: p[0],
                output_per_million: p[1],
            })
            .collect())
    }
}

/// A price list that cannot be read ([`TokenPrices::parse_pairs`], `str::parse`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("prices `{text}`: {reason} (dollars per million tokens as INPUT,OUTPUT pairs)")]
pub struct PriceParseError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::str::FromStr for TokenPrices {
    type Err = PriceParseError;

    /// `INPUT,OUTPUT` dollars per million tokens.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse_pairs(s, 1)?.remove(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_lists_are_read_whole_or_refused_with_the_reason() {
        let p: TokenPrices = " 2.5 ,10".parse().unwrap();
        assert_eq!(p.input_per_million, 2.5);
        assert_eq!(p.output_per_million, 10.0);
        assert_eq!(
            TokenPrices::parse_pairs("0,0,1,2", 2).unwrap()[1].output_per_million,
            2.0
        );
        for (text, count, reason) in [
            ("1", 1, "1 numbers where 2 are needed"),
            ("1,2,3", 1, "3 numbers where 2 are needed"),
            ("1,2", 2, "2 numbers where 4 are needed"),
            ("1,-2", 1, "number 2 (`-2`)"),
            ("NaN,2", 1, "number 1 (`NaN`)"),
            ("1,inf", 1, "number 2 (`inf`)"),
            ("1,", 1, "number 2 (``)"),
            ("a,b", 1, "number 1 (`a`)"),
        ] {
            let err = TokenPrices::parse_pairs(text, count).unwrap_err();
            assert_eq!(err.text, text);
            assert!(err.to_string().contains(reason), "{err} lacks {reason}");
        }
    }
}
