//! The routing configurations of the study and the seed's grid.

use std::sync::Arc;

use routing_core::expert::{CombineWeights, ExpertSelector, TopK};
use serde::{Deserialize, Serialize};

use crate::bh::BhConfig;
use crate::error::{Result, invalid};
use crate::kde::CdfTable;
use crate::select::{BhSelector, TopP};

/// One expert-selection rule of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum RoutingConfig {
    /// A fixed `k` (HF top-k).
    TopK {
        /// Experts per token.
        k: usize,
    },
    /// Benjamini–Hochberg on the per-layer null p-values.
    Bh {
        /// Level α.
        alpha: f64,
        /// Fewest experts.
        min_k: usize,
        /// Most experts.
        max_k: usize,
    },
    /// The smallest prefix whose softmax mass reaches `p`.
    TopP {
        /// Mass.
        p: f64,
        /// The mean expert count it was matched to on calibration tokens, if any.
        matched_mean: Option<f64>,
    },
}

impl RoutingConfig {
    /// The seed's file-name stem: `8experts_topk_baseline`, `64experts_bh_a030`, `topp_p0.935`.
    pub fn name(&self) -> String {
        match self {
            Self::TopK { k } => format!("{k}experts_topk_baseline"),
            Self::Bh { alpha, max_k, .. } => {
                format!("{max_k}experts_bh_a{:03}", (alpha * 100.0).round() as u32)
            }
            Self::TopP { p, .. } => format!("topp_p{p:.3}"),
        }
    }

    /// `"topk"`, `"bh"` or `"topp"`.
    pub fn strategy(&self) -> &'static str {
        match self {
            Self::TopK { .. } => "topk",
            Self::Bh { .. } => "bh",
            Self::TopP { .. } => "topp",
        }
    }

    /// The most experts a token can get (`None`: up to `E`).
    pub fn max_k(&self) -> Option<usize> {
        match self {
            Self::TopK { k } => Some(*k),
            Self::Bh { max_k, .. } => Some(*max_k),
            Self::TopP { .. } => None,
        }
    }

    /// The fewest experts a token can get.
    pub fn min_k(&self) -> usize {
        match self {
            Self::TopK { k } => *k,
            Self::Bh { min_k, .. } => *min_k,
            Self::TopP { .. } => 1,
        }
    }

    /// α of a BH configuration.
    pub fn alpha(&self) -> Option<f64> {
        match self {
            Self::Bh { alpha, .. } => Some(*alpha),
            _ => None,
        }
    }

    /// The selector: combine weights 1 when `unit` (the testbed; [`CombineWeights::Unit`], no
    /// softmax), else the softmax probabilities treated as `weights` says (OLMoE: as they are,
    /// `norm_topk_prob = false`).
    ///
    /// # Errors
    /// Invalid parameters, or BH without nulls.
    pub fn selector(
        &self,
        nulls: &Arc<Vec<CdfTable>>,
        unit: bool,
        weights: CombineWeights,
    ) -> Result<Box<dyn ExpertSelector>> {
        let weights = if unit { CombineWeights::Unit } else { weights };
        let boxed: Box<dyn ExpertSelector> = match self {
            Self::TopK { k } => Box::new(TopK::new(*k, false)?.with_weights(weights)),
            Self::Bh {
                alpha,
                min_k,
                max_k,
            } => {
                if nulls.is_empty() {
                    return Err(invalid("nulls", "BH needs one null distribution per layer"));
                }
                Box::new(
                    BhSelector::new(
                        nulls.as_ref().clone(),
                        BhConfig::new(*alpha, *min_k, *max_k)?,
                    )?
                    .with_weights(weights),
                )
            }
            Self::TopP { p, .. } => Box::new(TopP::new(*p, None)?.with_weights(weights)),
        };
        Ok(boxed)
    }
}

/// The seed's grid: top-k baselines at `ks` and BH at every (`max_k`, α), `min_k` = 1.
pub fn seed_grid(ks: &[usize], max_ks: &[usize], alphas: &[f64]) -> Vec<RoutingConfig> {
    let mut out: Vec<RoutingConfig> = ks.iter().map(|&k| RoutingConfig::TopK { k }).collect();
    for &max_k in max_ks {
        for &alpha in alphas {
            out.push(RoutingConfig::Bh {
                alpha,
                min_k: 1,
                max_k,
            });
        }
    }
    out
}

/// The seed's values: top-k 8, 16, 32, 64; BH `max_k` 8, 16, 32, 64 × α 0.30, 0.40, 0.50, 0.60.
pub fn default_grid() -> Vec<RoutingConfig> {
    seed_grid(
        &[8, 16, 32, 64],
        &[8, 16, 32, 64],
        &[0.30, 0.40, 0.50, 0.60],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_seed() {
        let g = default_grid();
        assert_eq!(g.len(), 20);
        assert_eq!(g[0].name(), "8experts_topk_baseline");
        assert_eq!(g[4].name(), "8experts_bh_a030");
        assert_eq!(g[19].name(), "64experts_bh_a060");
        let p = RoutingConfig::TopP {
            p: 0.9,
            matched_mean: None,
        };
        assert_eq!(p.name(), "topp_p0.900");
    }
}
