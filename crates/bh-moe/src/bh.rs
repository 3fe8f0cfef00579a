//! The Benjamini–Hochberg step-up procedure and the expert count it implies.
//!
//! Benjamini & Hochberg (1995), "Controlling the false discovery rate", JRSS B 57(1), §3: for
//! `m` p-values sorted ascending, `p₍₁₎ ≤ … ≤ p₍ₘ₎`, and a level `α`, find
//!
//! ```text
//! i* = max { i : p₍ᵢ₎ ≤ i·α/m }      (0 when no rank passes)
//! ```
//!
//! and reject the hypotheses of ranks `1 … i*`. It is a *step-up* rule: ranks below `i*` are
//! rejected even when they fail their own threshold (p = [0.001, 0.03, 0.035, 0.30] at
//! α = 0.05 rejects the three smallest although 0.03 > 2·0.05/4 = 0.025). Under independence it
//! keeps the false discovery rate at `α · m₀/m ≤ α`.
//!
//! **In BH routing BH only chooses `k̂`.** Each layer has one null distribution `F` of router
//! logits (a KDE fitted on calibration logits of all experts), and expert `e`'s p-value is
//! `p_e = 1 − F(logit_e)`. That map is monotone non-increasing in the logit, so sorting the
//! p-values ascending is sorting the experts by descending logit, and the rejected set — ranks
//! `1 … i*` — is always the top-`i*` experts by logit. BH therefore never picks *which* experts
//! differently from top-k; it picks *how many*:
//!
//! ```text
//! k̂ = clamp(i*, min_k, max_k)        (i* = 0 → min_k)
//! ```

use crate::error::{Result, invalid};

/// The largest rank `i` with `p₍ᵢ₎ ≤ i·α/m` over p-values already sorted ascending (0 when none
/// passes). The threshold is computed as `i as f64 * alpha / m as f64`; ties pass together.
///
/// No validation and no allocation; [`step_up`] checks and sorts.
pub fn step_up_sorted(sorted: &[f64], alpha: f64) -> usize {
    let m = sorted.len() as f64;
    (1..=sorted.len())
        .rev()
        .find(|&i| sorted[i - 1] <= i as f64 * alpha / m)
        .unwrap_or(0)
}

fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(invalid("alpha", format!("{alpha} is outside (0, 1]")))
    }
}

fn check_pvalues(pvalues: &[f64]) -> Result<()> {
    match pvalues.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(i) => Err(invalid(
            &format!("pvalues[{i}]"),
            format!("{} is outside [0, 1]", pvalues[i]),
        )),
        None => Ok(()),
    }
}

/// The number of BH rejections `i*` among `pvalues` (any order) at level `alpha`.
///
/// # Errors
/// `alpha` outside `(0, 1]` or a p-value outside `[0, 1]` (NaN included).
pub fn step_up(pvalues: &[f64], alpha: f64) -> Result<usize> {
    check_alpha(alpha)?;
    check_pvalues(pvalues)?;
    let mut sorted = pvalues.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(step_up_sorted(&sorted, alpha))
}

/// Which hypotheses BH rejects at level `alpha`: `true` at every index whose p-value is among
/// the `i*` smallest. With ties this is exactly `{ e : p_e ≤ p₍ᵢ*₎ }` (a p-value equal to
/// `p₍ᵢ*₎` at a higher rank would pass its own, larger threshold).
///
/// # Errors
/// As [`step_up`].
pub fn rejections(pvalues: &[f64], alpha: f64) -> Result<Vec<bool>> {
    let count = step_up(pvalues, alpha)?;
    if count == 0 {
        return Ok(vec![false; pvalues.len()]);
    }
    let mut sorted = pvalues.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let cut = sorted[count - 1];
    Ok(pvalues.iter().map(|&p| p <= cut).collect())
}

/// BH routing's parameters: the level `α` and the range `[min_k, max_k]` of experts per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BhConfig {
    alpha: f64,
    min_k: usize,
    max_k: usize,
}

impl BhConfig {
    /// Level `alpha ∈ (0, 1]`, at least `min_k ≥ 1` and at most `max_k ≥ min_k` experts.
    /// (The seed study's grid: `α ∈ {0.30, 0.40, 0.50, 0.60}`, `max_k ∈ {8, 16, 32, 64}`,
    /// `min_k = 1`.)
    ///
    /// # Errors
    /// [`crate::BhMoeError::InvalidParameter`] naming `alpha`, `min_k` or `max_k`.
    pub fn new(alpha: f64, min_k: usize, max_k: usize) -> Result<Self> {
        check_alpha(alpha)?;
        if min_k == 0 {
            return Err(invalid(
                "min_k",
                "must be at least 1 (a token needs an expert)",
            ));
        }
        if max_k < min_k {
            return Err(invalid(
                "max_k",
                format!("{max_k} is below min_k = {min_k}"),
            ));
        }
        Ok(Self {
            alpha,
            min_k,
            max_k,
        })
    }

    /// The BH level.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The fewest experts per token.
    pub fn min_k(&self) -> usize {
        self.min_k
    }

    /// The most experts per token.
    pub fn max_k(&self) -> usize {
        self.max_k
    }

    /// `k̂ = clamp(i*, min_k, max_k)` for `discoveries = i*` BH rejections (0 → `min_k`).
    pub fn k_hat(&self, discoveries: usize) -> usize {
        discoveries.clamp(self.min_k, self.max_k)
    }

    /// `k̂` for p-values in any order ([`step_up`] then [`BhConfig::k_hat`]).
    ///
    /// # Errors
    /// A p-value outside `[0, 1]`.
    pub fn k_hat_for(&self, pvalues: &[f64]) -> Result<usize> {
        Ok(self.k_hat(step_up(pvalues, self.alpha)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textbook_example() {
        // p = [0.01, 0.04, 0.03, 0.20, 0.50], α = 0.1, m = 5.
        // Sorted:      0.01  0.03  0.04  0.20  0.50
        // i·α/m:       0.02  0.04  0.06  0.08  0.10
        // passes:      yes   yes   yes   no    no     → i* = 3
        let p = [0.01, 0.04, 0.03, 0.20, 0.50];
        assert_eq!(step_up(&p, 0.1).unwrap(), 3);
        // The three smallest are rejected: indices 0 (0.01), 2 (0.03), 1 (0.04).
        assert_eq!(
            rejections(&p, 0.1).unwrap(),
            vec![true, true, true, false, false]
        );
        let c = BhConfig::new(0.1, 1, 8).unwrap();
        assert_eq!(c.k_hat_for(&p).unwrap(), 3);
    }

    #[test]
    fn step_up_passes_over_a_failing_rank() {
        // p = [0.001, 0.03, 0.035, 0.30], α = 0.05, m = 4.
        // i·α/m:       0.0125  0.025  0.0375  0.05
        // passes:      yes     NO     yes     no     → i* = 3 (the largest passing rank)
        // Rank 2 fails its own threshold but is rejected: BH steps *up* from the bottom.
        // (A step-down rule would stop at the first failure and reject only rank 1.)
        let p = [0.30, 0.035, 0.001, 0.03];
        assert_eq!(step_up(&p, 0.05).unwrap(), 3);
        assert_eq!(rejections(&p, 0.05).unwrap(), vec![false, true, true, true]);
    }

    #[test]
    fn thresholds_are_inclusive() {
        // Dyadic values, exact in f64: α = 0.5, m = 4 → thresholds 0.125, 0.25, 0.375, 0.5.
        // p sorted = [0.125, 0.3, 0.375, 0.9]: rank 1 equals 0.125 (pass), rank 2 0.3 > 0.25
        // (fail), rank 3 equals 0.375 (pass), rank 4 0.9 > 0.5 (fail) → i* = 3.
        assert_eq!(step_up(&[0.9, 0.375, 0.3, 0.125], 0.5).unwrap(), 3);
        // Ties pass together: 0.01 three times at α = 0.05, m = 4 (thresholds 0.0125, 0.025,
        // 0.0375, 0.05; 0.5 fails) → 3.
        assert_eq!(step_up(&[0.01, 0.5, 0.01, 0.01], 0.05).unwrap(), 3);
        assert_eq!(
            rejections(&[0.01, 0.5, 0.01, 0.01], 0.05).unwrap(),
            vec![true, false, true, true]
        );
    }

    #[test]
    fn no_rejection_gives_min_k_and_many_clamp_to_max_k() {
        // p = [0.2, 0.5, 0.9], α = 0.05, m = 3: thresholds 0.0167, 0.0333, 0.05, none passes.
        let p = [0.2, 0.5, 0.9];
        assert_eq!(step_up(&p, 0.05).unwrap(), 0);
        assert_eq!(rejections(&p, 0.05).unwrap(), vec![false; 3]);
        assert_eq!(BhConfig::new(0.05, 1, 3).unwrap().k_hat_for(&p).unwrap(), 1);
        assert_eq!(BhConfig::new(0.05, 2, 3).unwrap().k_hat_for(&p).unwrap(), 2);
        // p = 0.001 … 0.008 at α = 0.1, m = 8: thresholds 0.0125 … 0.1, all pass → 8,
        // clamped to max_k = 4.
        let p: Vec<f64> = (1..=8).map(|i| i as f64 * 0.001).collect();
        assert_eq!(step_up(&p, 0.1).unwrap(), 8);
        assert_eq!(BhConfig::new(0.1, 1, 4).unwrap().k_hat_for(&p).unwrap(), 4);
        assert_eq!(BhConfig::new(0.1, 1, 8).unwrap().k_hat_for(&p).unwrap(), 8);
        assert_eq!(step_up(&[], 0.1).unwrap(), 0);
    }

    #[test]
    fn parameters_are_checked() {
        let name = |r: Result<BhConfig>| match r {
            Err(crate::BhMoeError::InvalidParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name(BhConfig::new(0.0, 1, 8)), "alpha");
        assert_eq!(name(BhConfig::new(1.5, 1, 8)), "alpha");
        assert_eq!(name(BhConfig::new(f64::NAN, 1, 8)), "alpha");
        assert_eq!(name(BhConfig::new(0.3, 0, 8)), "min_k");
        assert_eq!(name(BhConfig::new(0.3, 4, 3)), "max_k");
        assert!(BhConfig::new(1.0, 1, 1).is_ok());
        assert!(step_up(&[0.1, f64::NAN], 0.1).is_err());
        assert!(step_up(&[0.1, 1.5], 0.1).is_err());
    }
}
