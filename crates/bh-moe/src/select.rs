//! The adaptive expert selectors: [`BhSelector`] (Benjamini–Hochberg over per-layer null
//! p-values) and [`TopP`] (nucleus over the router's softmax). Both implement
//! [`routing_core::expert::ExpertSelector`]; the fixed-`k` baseline is
//! [`routing_core::expert::TopK`].
//!
//! Both keep their scratch buffers (softmax probabilities, expert order, BH's thresholds) inside the
//! selector behind `&mut self`, as the trait prescribes: once the buffers and the caller's
//! [`ExpertChoice`] have grown to `E`, a selection allocates nothing
//! (`tests/no_alloc.rs` counts). Clones share the (immutable) null distributions through an
//! `Arc`, so one selector per thread is cheap.

use std::sync::Arc;

use routing_core::RoutingError;
use routing_core::expert::{
    CombineWeights, ExpertChoice, ExpertSelector, check_count, check_logits, fill_choice,
    rank_by_logit, rank_top_k, softmax_into,
};

use crate::bh::BhConfig;
use crate::error::{Result, invalid};
use crate::kde::{CdfTable, NullDistribution};

/// Benjamini–Hochberg expert selection (the seed study's BH routing).
///
/// For one token's logits `z₁ … z_E` at layer `l`, with that layer's null distribution `F_l`:
///
/// 1. p-values `p_e = 1 − F_l(z_e)` ([`NullDistribution::sf`]);
/// 2. `i*` = the largest rank `i` with `p₍ᵢ₎ ≤ i·α/E` ([`crate::bh`]), `k̂ = clamp(i*, min_k,
///    max_k)` (0 → `min_k`);
/// 3. the experts are the top-`k̂` by logit — which *is* BH's rejected set, since `p` is
///    non-increasing in `z` (BH only chooses `k̂`);
/// 4. weights: `softmax(z)` over all `E` experts in `f32`, taken at the selected experts and by
///    default renormalised to sum 1 ([`CombineWeights::Renormalised`] — the seed's BH routing
///    renormalises the selected probabilities; [`BhSelector::with_weights`] switches to the raw
///    probabilities, OLMoE's own `norm_topk_prob = false`, or to weight 1,
///    [`CombineWeights::Unit`], which skips the softmax).
///
/// **How it is computed.** Steps 1–2 never evaluate a p-value per token. Because `sf` is
/// monotone, `p_e ≤ i·α/E ⇔ z_e ≥ t_i` with `t_i = F_l`'s logit threshold at level `i·α/E`
/// ([`NullDistribution::threshold`], exact in `f32`), and rank `i` passes BH exactly when at
/// least `i` logits reach `t_i`. The `E` thresholds of a layer are computed once (at the
/// layer's first token); per token the selector keeps the logits that reach the loosest
/// threshold `t_E` (about `α·E` of them under the null — no other logit can pass any rank),
/// sorts those, and takes the largest rank `i` whose `i`-th logit reaches `t_i`: `E`
/// comparisons and a sort of the few candidates, no `sf`. The top `k̂` are then the first `k̂`
/// candidates (a partial sort of all `E` only when `min_k` lifts `k̂` past them). The result is the
/// p-value procedure's, bit for bit (`tests/properties.rs` checks it against [`crate::bh`] on
/// the p-values, which [`BhSelector::pvalues`] still gives for logs).
///
/// The unclamped count `i*` of the last call is kept for routing logs
/// ([`BhSelector::last_discoveries`]).
#[derive(Debug)]
pub struct BhSelector<N = CdfTable> {
    nulls: Arc<[N]>,
    config: BhConfig,
    weights: CombineWeights,
    probs: Vec<f32>,
    order: Vec<usize>,
    /// Per layer: the logit thresholds `t_1 ≥ … ≥ t_E` (empty until the layer's first token, or
    /// recomputed when `E` changes).
    thresholds: Vec<Vec<f32>>,
    discoveries: usize,
}

impl<N> Clone for BhSelector<N> {
    fn clone(&self) -> Self {
        Self {
            nulls: Arc::clone(&self.nulls),
            config: self.config,
            weights: self.weights,
            probs: self.probs.clone(),
            order: self.order.clone(),
            thresholds: self.thresholds.clone(),
            discoveries: self.discoveries,
        }
    }
}

impl<N: NullDistribution> BhSelector<N> {
    /// A selector with one null distribution per layer (`nulls[l]` for layer `l`), typically
    /// [`CdfTable`]s from [`crate::KdeFile::tables`]; any [`NullDistribution`] works (the
    /// exact [`crate::GaussianKde`] too: it is evaluated only to place the thresholds).
    ///
    /// # Errors
    /// No null distribution.
    pub fn new(nulls: Vec<N>, config: BhConfig) -> Result<Self> {
        if nulls.is_empty() {
            return Err(invalid(
                "nulls",
                "need one null distribution per layer, got none",
            ));
        }
        let layers = nulls.len();
        Ok(Self {
            nulls: nulls.into(),
            config,
            weights: CombineWeights::Renormalised,
            probs: Vec::new(),
            order: Vec::new(),
            thresholds: vec![Vec::new(); layers],
            discoveries: 0,
        })
    }

    /// Uses `weights` for the combine weights (default [`CombineWeights::Renormalised`]).
    pub fn with_weights(mut self, weights: CombineWeights) -> Self {
        self.weights = weights;
        self
    }

    /// The BH parameters.
    pub fn config(&self) -> &BhConfig {
        &self.config
    }

    /// The combine-weight rule.
    pub fn weights(&self) -> CombineWeights {
        self.weights
    }

    /// Number of layers (null distributions).
    pub fn layers(&self) -> usize {
        self.nulls.len()
    }

    /// The p-value `1 − F_l(z_e)` of every expert (by expert index) for `logits` at `layer` —
    /// for logs and checks; selection itself compares logits with thresholds.
    ///
    /// # Errors
    /// A layer without a null distribution.
    pub fn pvalues(&self, layer: usize, logits: &[f32]) -> routing_core::Result<Vec<f64>> {
        let null = self.null(layer)?;
        Ok(logits.iter().map(|&z| null.sf(f64::from(z))).collect())
    }

    /// The logit thresholds `t_i = F_l⁻¹(1 − i·α/E)` of `layer` for `experts` logits,
    /// `i = 1 … E` (non-increasing): rank `i` passes BH when at least `i` logits are `≥ t_i`.
    ///
    /// # Errors
    /// A layer without a null distribution.
    pub fn thresholds(&self, layer: usize, experts: usize) -> routing_core::Result<Vec<f32>> {
        let null = self.null(layer)?;
        let alpha = self.config.alpha();
        let m = experts as f64;
        Ok((1..=experts)
            // The same level expression as `bh::step_up_sorted`, so the decisions agree.
            .map(|i| null.threshold(i as f64 * alpha / m))
            .collect())
    }

    /// BH's rejection count `i*` at the last successful selection, before clamping to
    /// `[min_k, max_k]`: `i* > max_k` means the cap cut BH's choice, `i* < min_k` that the
    /// floor lifted it.
    pub fn last_discoveries(&self) -> usize {
        self.discoveries
    }

    fn null(&self, layer: usize) -> routing_core::Result<&N> {
        self.nulls.get(layer).ok_or(RoutingError::UnknownLayer {
            layer,
            layers: self.nulls.len(),
        })
    }
}

impl<N: NullDistribution> ExpertSelector for BhSelector<N> {
    fn name(&self) -> String {
        format!(
            "bh α={} k∈[{},{}]",
            self.config.alpha(),
            self.config.min_k(),
            self.config.max_k()
        )
    }

    fn select(
        &mut self,
        layer: usize,
        logits: &[f32],
        out: &mut ExpertChoice,
    ) -> routing_core::Result<()> {
        out.clear();
        check_logits(layer, logits)?;
        let m = logits.len();
        check_count(layer, "min_k", self.config.min_k(), m)?;
        check_count(layer, "max_k", self.config.max_k(), m)?;
        self.null(layer)?;
        if self.thresholds[layer].len() != m {
            self.thresholds[layer] = self.thresholds(layer, m)?;
        }
        let thresholds = &self.thresholds[layer];
        // Only logits ≥ t_E (the loosest threshold) can pass any rank: collect them, sort them by
        // descending logit (ties: lower index), and scan. Rank i passes when the i-th largest
        // logit reaches t_i; beyond the candidates every logit is < t_E ≤ t_i.
        let loosest = thresholds[m - 1];
        self.order.clear();
        self.order.reserve(m);
        self.order.extend((0..m).filter(|&e| logits[e] >= loosest));
        self.order.sort_unstable_by(|&a, &b| {
            logits[b]
                .partial_cmp(&logits[a])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        self.discoveries = self
            .order
            .iter()
            .zip(thresholds)
            .rposition(|(&e, &t)| logits[e] >= t)
            .map_or(0, |i| i + 1);
        let k = self.config.k_hat(self.discoveries);
        if self.weights != CombineWeights::Unit {
            softmax_into(logits, &mut self.probs);
        }
        // The top k̂ are the first k̂ candidates unless the floor lifted k̂ past them.
        if k > self.order.len() {
            rank_top_k(logits, k, &mut self.order);
        }
        fill_choice(&self.order, &self.probs, k, self.weights, out);
        Ok(())
    }
}

/// Top-p (nucleus) expert selection: the smallest set of highest-probability experts whose
/// softmax mass reaches `p`.
///
/// `softmax(z)` over all `E` experts in `f32`; experts by descending probability (= descending
/// logit; ties: lower index first); `k` = the first rank at which the running sum (accumulated
/// in `f64`) is `≥ p` — the crossing expert is included — capped at `max_k` when given. If
/// rounding keeps the total below `p` (possible only for `p` within `~1e−7` of 1), all `E`
/// experts are taken. Weights as [`BhSelector`]: renormalised by default.
#[derive(Debug, Clone)]
pub struct TopP {
    p: f64,
    max_k: Option<usize>,
    weights: CombineWeights,
    probs: Vec<f32>,
    order: Vec<usize>,
}

impl TopP {
    /// Mass `p ∈ (0, 1]`, at most `max_k ≥ 1` experts when given.
    ///
    /// # Errors
    /// [`crate::BhMoeError::InvalidParameter`] naming `p` or `max_k`.
    pub fn new(p: f64, max_k: Option<usize>) -> Result<Self> {
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            return Err(invalid("p", format!("{p} is outside (0, 1]")));
        }
        if max_k == Some(0) {
            return Err(invalid("max_k", "must be at least 1"));
        }
        Ok(Self {
            p,
            max_k,
            weights: CombineWeights::Renormalised,
            probs: Vec::new(),
            order: Vec::new(),
        })
    }

    /// Uses `weights` for the combine weights (default [`CombineWeights::Renormalised`]).
    pub fn with_weights(mut self, weights: CombineWeights) -> Self {
        self.weights = weights;
        self
    }

    /// The mass threshold.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The cap on experts per token.
    pub fn max_k(&self) -> Option<usize> {
        self.max_k
    }
}

impl ExpertSelector for TopP {
    fn name(&self) -> String {
        match self.max_k {
            Some(k) => format!("top-p {} k≤{k}", self.p),
            None => format!("top-p {}", self.p),
        }
    }

    fn select(
        &mut self,
        layer: usize,
        logits: &[f32],
        out: &mut ExpertChoice,
    ) -> routing_core::Result<()> {
        out.clear();
        check_logits(layer, logits)?;
        let m = logits.len();
        if let Some(max_k) = self.max_k {
            check_count(layer, "max_k", max_k, m)?;
        }
        softmax_into(logits, &mut self.probs);
        rank_by_logit(logits, &mut self.order);
        let mut mass = 0.0_f64;
        let mut k = m;
        for (rank, &e) in self.order.iter().enumerate() {
            mass += f64::from(self.probs[e]);
            if mass >= self.p {
                k = rank + 1;
                break;
            }
        }
        if let Some(max_k) = self.max_k {
            k = k.min(max_k);
        }
        fill_choice(&self.order, &self.probs, k, self.weights, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kde::{Bandwidth, GaussianKde};

    /// A null whose sf is `1 − x` on `[0, 1]`: p-values are read off the logits directly.
    struct Uniform;
    impl NullDistribution for Uniform {
        fn sf(&self, x: f64) -> f64 {
            (1.0 - x).clamp(0.0, 1.0)
        }
    }

    #[test]
    fn bh_selects_the_hand_computed_count() {
        // Logits chosen so that p = 1 − z = [0.01, 0.04, 0.03, 0.20, 0.50] (the textbook
        // example, α = 0.1, i* = 3): experts 0, 2, 1 in descending logit order.
        let logits = [0.99_f32, 0.96, 0.97, 0.80, 0.50];
        let mut bh = BhSelector::new(vec![Uniform], BhConfig::new(0.1, 1, 5).unwrap()).unwrap();
        let mut out = ExpertChoice::new();
        bh.select(0, &logits, &mut out).unwrap();
        assert_eq!(out.experts, vec![0, 2, 1]);
        assert_eq!(bh.last_discoveries(), 3);
        assert!((out.weight_sum() - 1.0).abs() < 1e-6);
        // Softmax weights over all five, renormalised over the three.
        let z: Vec<f64> = logits.iter().map(|&x| f64::from(x).exp()).collect();
        let sel = z[0] + z[2] + z[1];
        assert!((f64::from(out.weights[0]) - z[0] / sel).abs() < 1e-6);
        // Raw probabilities: they sum to the selected mass.
        let mut raw = bh.clone().with_weights(CombineWeights::Probabilities);
        raw.select(0, &logits, &mut out).unwrap();
        let total: f64 = z.iter().sum();
        assert!((f64::from(out.weight_sum()) - sel / total).abs() < 1e-6);
        // The p-values per expert index (f32 logits, so ≈).
        let p = bh.pvalues(0, &logits).unwrap();
        assert!((p[3] - 0.20).abs() < 1e-6 && (p[0] - 0.01).abs() < 1e-6);
    }

    #[test]
    fn bh_clamps_and_floors() {
        let mut out = ExpertChoice::new();
        // Nothing significant (all p = 0.5) → min_k.
        let mut bh = BhSelector::new(vec![Uniform], BhConfig::new(0.2, 2, 4).unwrap()).unwrap();
        bh.select(0, &[0.5; 8], &mut out).unwrap();
        assert_eq!(
            (out.experts.clone(), bh.last_discoveries()),
            (vec![0, 1], 0)
        );
        // Everything significant (all p ≈ 0.001) → max_k.
        bh.select(0, &[0.999; 8], &mut out).unwrap();
        assert_eq!((out.len(), bh.last_discoveries()), (4, 8));
    }

    #[test]
    fn bh_errors_name_layer_and_field() {
        let kde = GaussianKde::fit(&[0.0, 1.0, 2.5, -1.0], Bandwidth::Scott).unwrap();
        let table = kde.tabulate(16).unwrap();
        let mut bh = BhSelector::new(vec![table], BhConfig::new(0.3, 1, 8).unwrap()).unwrap();
        let mut out = ExpertChoice::new();
        assert!(matches!(
            bh.select(1, &[0.0; 8], &mut out),
            Err(RoutingError::UnknownLayer {
                layer: 1,
                layers: 1
            })
        ));
        assert!(matches!(
            bh.select(0, &[0.0; 4], &mut out),
            Err(RoutingError::ExpertCount { layer: 0, ref field, value: 8, experts: 4 }) if field == "max_k"
        ));
        assert!(matches!(
            bh.select(0, &[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &mut out),
            Err(RoutingError::NonFiniteLogit {
                layer: 0,
                expert: 1,
                ..
            })
        ));
        assert!(matches!(
            bh.select(0, &[], &mut out),
            Err(RoutingError::EmptyLogits { layer: 0 })
        ));
        assert!(out.is_empty());
        assert!(BhSelector::<CdfTable>::new(vec![], BhConfig::new(0.3, 1, 8).unwrap()).is_err());
    }

    #[test]
    fn top_p_hand_computed() {
        // softmax of ln([0.5, 0.3, 0.15, 0.05]) = [0.5, 0.3, 0.15, 0.05].
        let logits: Vec<f32> = [0.5_f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let mut out = ExpertChoice::new();
        let mut pick = |p: f64, max_k: Option<usize>| {
            let mut s = TopP::new(p, max_k).unwrap();
            s.select(0, &logits, &mut out).unwrap();
            out.experts.clone()
        };
        // 0.5 reaches 0.4 → {0}; 0.5 < 0.6 ≤ 0.8 → {0, 1}; 0.8 < 0.9 ≤ 0.95 → {0, 1, 2}.
        assert_eq!(pick(0.4, None), vec![0]);
        assert_eq!(pick(0.6, None), vec![0, 1]);
        assert_eq!(pick(0.9, None), vec![0, 1, 2]);
        assert_eq!(pick(0.9, Some(2)), vec![0, 1]);
        assert_eq!(pick(1.0, None), vec![0, 1, 2, 3]);
        let mut raw = TopP::new(0.6, None)
            .unwrap()
            .with_weights(CombineWeights::Probabilities);
        raw.select(0, &logits, &mut out).unwrap();
        assert!((out.weights[0] - 0.5).abs() < 1e-6 && (out.weights[1] - 0.3).abs() < 1e-6);
        let mut norm = TopP::new(0.6, None).unwrap();
        norm.select(0, &logits, &mut out).unwrap();
        assert!((out.weights[0] - 0.625).abs() < 1e-6 && (out.weights[1] - 0.375).abs() < 1e-6);
    }

    #[test]
    fn top_p_parameters_and_errors() {
        assert!(TopP::new(0.0, None).is_err());
        assert!(TopP::new(1.1, None).is_err());
        assert!(TopP::new(f64::NAN, None).is_err());
        assert!(TopP::new(0.5, Some(0)).is_err());
        let mut s = TopP::new(0.5, Some(9)).unwrap();
        let mut out = ExpertChoice::new();
        assert!(matches!(
            s.select(3, &[0.0; 8], &mut out),
            Err(RoutingError::ExpertCount { layer: 3, ref field, value: 9, experts: 8 }) if field == "max_k"
        ));
        assert_eq!(s.name(), "top-p 0.5 k≤9");
    }
}

/// Any selector with every combine weight set to 1: the selected experts' outputs are summed
/// (the MoEfication testbed's rule, where experts are slices of a dense MLP and the sum over
/// all experts is the dense MLP exactly).
#[derive(Debug, Clone)]
pub struct UnitWeights<S>(pub S);

impl<S: ExpertSelector> ExpertSelector for UnitWeights<S> {
    fn name(&self) -> String {
        format!("{}, weights 1", self.0.name())
    }

    fn select(
        &mut self,
        layer: usize,
        logits: &[f32],
        out: &mut ExpertChoice,
    ) -> routing_core::Result<()> {
        self.0.select(layer, logits, out)?;
        out.weights.iter_mut().for_each(|w| *w = 1.0);
        Ok(())
    }
}
