//! Expert-level routing: which experts of a mixture-of-experts layer process one token, and with
//! what combine weights.
//!
//! The third routing level beside the query router ([`crate::PairRouter`]) and the token-level
//! [`crate::token::HelpPolicy`]: for every token at every MoE layer the model shows an
//! [`ExpertSelector`] that token's router logits (one `f32` per expert, `E` of them) and the
//! layer index; the selector writes the chosen experts — indices in descending logit order — and
//! their combine weights into a reused [`ExpertChoice`]. No tensors: a row of logits in, a few
//! indices and weights out, so the same selectors drive any engine.
//!
//! | selector | experts per token |
//! |---|---|
//! | [`TopK`] | a fixed `k` — OLMoE's and Mixtral's router (HF transformers semantics) |
//! | `bh_moe::BhSelector` | adaptive: Benjamini–Hochberg over per-layer null p-values |
//! | `bh_moe::TopP` | adaptive: the smallest prefix whose probability mass reaches `p` |
//!
//! **Buffers.** `select` takes `&mut self`: a selector keeps its scratch buffers (softmax
//! probabilities, the expert order) inside itself and reuses them, and the caller reuses one
//! [`ExpertChoice`], so the per-token hot loop does not allocate once the buffers have grown to
//! `E`. Stateful wrappers (a selector that logs every choice) fit the same signature. To select
//! on several threads, give each thread its own selector (they are `Clone`) and its own
//! [`ExpertChoice`].
//!
//! **Order and ties.** Experts are ranked by descending logit; equal logits rank the lower
//! expert index first. Softmax is monotone, so this is also an order by descending probability
//! (the one HF's `torch.topk` uses, whose own tie order is unspecified).
//!
//! ```
//! use routing_core::expert::{ExpertChoice, ExpertSelector, TopK};
//!
//! let mut top2 = TopK::new(2, false)?; // OLMoE: norm_topk_prob = false
//! let mut choice = ExpertChoice::new();
//! top2.select(0, &[0.5, 2.0, -1.0, 1.0], &mut choice)?;
//! assert_eq!(choice.experts, vec![1, 3]);
//! assert!(choice.weights[0] > choice.weights[1]);
//! # Ok::<(), routing_core::RoutingError>(())
//! ```

use std::cmp::Ordering;

use crate::error::{Result, RoutingError};

/// The experts chosen for one token at one layer, reused from call to call.
///
/// `experts[i]` is an expert index (`0..E`) and `weights[i]` its combine weight; experts are in
/// descending logit order and distinct. A selector clears both vectors before writing, so their
/// capacity carries over between tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpertChoice {
    /// Selected expert indices, descending logit order.
    pub experts: Vec<usize>,
    /// Combine weight of each selected expert (same order as `experts`).
    pub weights: Vec<f32>,
}

impl ExpertChoice {
    /// An empty choice.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty choice with room for `experts` experts (use `E` to never grow).
    pub fn with_capacity(experts: usize) -> Self {
        Self {
            experts: Vec::with_capacity(experts),
            weights: Vec::with_capacity(experts),
        }
    }

    /// Number of selected experts (the token's `k`).
    pub fn len(&self) -> usize {
        self.experts.len()
    }

    /// Whether no expert is selected (only before the first selection or after an error).
    pub fn is_empty(&self) -> bool {
        self.experts.is_empty()
    }

    /// Forgets the choice, keeping the capacity.
    pub fn clear(&mut self) {
        self.experts.clear();
        self.weights.clear();
    }

    /// Sum of the combine weights (1 when renormalised; the selected probability mass when not).
    pub fn weight_sum(&self) -> f32 {
        self.weights.iter().sum()
    }
}

/// Chooses the experts that process one token at one MoE layer.
pub trait ExpertSelector {
    /// A short name for reports and logs (`"top-8"`, `"bh α=0.3 k∈[1,64]"`).
    fn name(&self) -> String;

    /// Writes the experts for one token into `out` (replacing what was there).
    ///
    /// `logits` are the token's router logits at `layer`, one per expert (`E = logits.len()`).
    /// On success `out` holds at least one expert, in descending logit order (ties: lower index
    /// first), with its combine weight. On error `out` is left empty.
    ///
    /// # Errors
    /// Empty logits ([`RoutingError::EmptyLogits`]), a NaN or infinite logit
    /// ([`RoutingError::NonFiniteLogit`]), a configured count above `E`
    /// ([`RoutingError::ExpertCount`]), or a layer the selector has no parameters for
    /// ([`RoutingError::UnknownLayer`]).
    fn select(&mut self, layer: usize, logits: &[f32], out: &mut ExpertChoice) -> Result<()>;
}

impl<S: ExpertSelector + ?Sized> ExpertSelector for &mut S {
    fn name(&self) -> String {
        (**self).name()
    }
    fn select(&mut self, layer: usize, logits: &[f32], out: &mut ExpertChoice) -> Result<()> {
        (**self).select(layer, logits, out)
    }
}

impl<S: ExpertSelector + ?Sized> ExpertSelector for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn select(&mut self, layer: usize, logits: &[f32], out: &mut ExpertChoice) -> Result<()> {
        (**self).select(layer, logits, out)
    }
}

/// How the selected experts' outputs are weighted.
///
/// [`CombineWeights::Probabilities`] and [`CombineWeights::Renormalised`] start from the softmax
/// over **all** `E` logits (in `f32`), so a selected expert's weight never depends on which
/// other experts were left out, only on the normalisation. [`CombineWeights::Unit`] computes no
/// softmax at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CombineWeights {
    /// The selected experts' softmax probabilities as they are (HF `norm_topk_prob = false`,
    /// OLMoE-1B-7B's setting); they sum to the selected probability mass, `≤ 1`.
    Probabilities,
    /// Those probabilities divided by their sum, so the weights sum to 1 (HF
    /// `norm_topk_prob = true`, Mixtral's setting).
    Renormalised,
    /// Weight 1 for every selected expert: their outputs are summed. This is the rule of
    /// MoEfication-style testbeds, whose experts are slices of one dense MLP (all experts
    /// selected = the dense MLP exactly). Selectors that need no probabilities to choose
    /// (top-k, BH) skip the softmax under this rule.
    Unit,
}

impl CombineWeights {
    /// HF's `norm_topk_prob` flag as a [`CombineWeights`].
    pub fn from_norm_topk_prob(norm_topk_prob: bool) -> Self {
        if norm_topk_prob {
            Self::Renormalised
        } else {
            Self::Probabilities
        }
    }
}

/// Checks one token's router logits: non-empty and every entry finite.
///
/// # Errors
/// [`RoutingError::EmptyLogits`] or [`RoutingError::NonFiniteLogit`] (the first offending
/// expert), naming `layer`.
pub fn check_logits(layer: usize, logits: &[f32]) -> Result<()> {
    if logits.is_empty() {
        return Err(RoutingError::EmptyLogits { layer });
    }
    match logits.iter().position(|v| !v.is_finite()) {
        Some(expert) => Err(RoutingError::NonFiniteLogit {
            layer,
            expert,
            value: logits[expert],
        }),
        None => Ok(()),
    }
}

/// Checks that a configured expert count `value` (the field `field`: `k`, `max_k`, …) fits in
/// the `experts` experts of a layer.
///
/// # Errors
/// [`RoutingError::ExpertCount`] when `value > experts`.
pub fn check_count(layer: usize, field: &str, value: usize, experts: usize) -> Result<()> {
    if value > experts {
        return Err(RoutingError::ExpertCount {
            layer,
            field: field.to_string(),
            value,
            experts,
        });
    }
    Ok(())
}

/// Writes `softmax(logits)` into `probs` (resized to `logits.len()`), in `f32` with the max
/// subtracted first — `torch.softmax(x, dtype=torch.float)`. Logits must be finite and non-empty
/// ([`check_logits`]).
pub fn softmax_into(logits: &[f32], probs: &mut Vec<f32>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    probs.clear();
    probs.extend(logits.iter().map(|&x| (x - max).exp()));
    let sum: f32 = probs.iter().sum();
    for p in probs.iter_mut() {
        *p /= sum;
    }
}

/// The workspace's expert order: descending logit, ties to the lower index. Logits must be
/// finite.
fn by_logit(logits: &[f32]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    |&a, &b| {
        logits[b]
            .partial_cmp(&logits[a])
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    }
}

/// Writes all expert indices into `order`, sorted by descending logit (ties: lower index
/// first). Logits must be finite ([`check_logits`]). Does not allocate once `order` has room
/// for `E` indices.
pub fn rank_by_logit(logits: &[f32], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..logits.len());
    order.sort_unstable_by(by_logit(logits));
}

/// Like [`rank_by_logit`], but only the first `k` positions of `order` are guaranteed to be the
/// top `k` experts in order (the rest are the remaining experts, unordered): a partial sort,
/// `O(E + k log k)`. Requires finite logits.
///
/// # Panics
/// When `k = 0` or `k > E` ([`check_count`] first).
pub fn rank_top_k(logits: &[f32], k: usize, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..logits.len());
    let cmp = by_logit(logits);
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, &cmp);
    }
    order[..k].sort_unstable_by(&cmp);
}

/// Writes the first `k` experts of `order` into `out` with their probabilities from `probs`,
/// renormalised when `weights` says so; under [`CombineWeights::Unit`] every weight is 1 and
/// `probs` is not read (it may be empty).
///
/// # Panics
/// When `k > order.len()` or an expert index is out of `probs`' range.
pub fn fill_choice(
    order: &[usize],
    probs: &[f32],
    k: usize,
    weights: CombineWeights,
    out: &mut ExpertChoice,
) {
    out.clear();
    out.experts.extend_from_slice(&order[..k]);
    if weights == CombineWeights::Unit {
        out.weights.resize(k, 1.0);
        return;
    }
    out.weights.extend(order[..k].iter().map(|&e| probs[e]));
    if weights == CombineWeights::Renormalised {
        let sum: f32 = out.weights.iter().sum();
        for w in out.weights.iter_mut() {
            *w /= sum;
        }
    }
}

/// The fixed-`k` router of OLMoE and Mixtral, with HF transformers' semantics.
///
/// `p = softmax(logits)` over all `E` experts in `f32`; the `k` experts of largest probability
/// are selected (equal logits: lower index first); their weights are their probabilities,
/// divided by the sum of the `k` when `norm_topk_prob` is set
/// (`OlmoeTopKRouter` / `MixtralSparseMoeBlock` in `transformers`).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    weights: CombineWeights,
    probs: Vec<f32>,
    order: Vec<usize>,
}

impl TopK {
    /// `k` experts per token; `norm_topk_prob` as in the model's HF `config.json`
    /// (OLMoE-1B-7B: `false`, Mixtral: `true`).
    ///
    /// # Errors
    /// `k = 0` ([`RoutingError::InvalidParameter`] naming `k`). A `k` above a layer's expert
    /// count is reported by [`ExpertSelector::select`], which is where `E` is known.
    pub fn new(k: usize, norm_topk_prob: bool) -> Result<Self> {
        if k == 0 {
            return Err(RoutingError::InvalidParameter {
                name: "k".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            k,
            weights: CombineWeights::from_norm_topk_prob(norm_topk_prob),
            probs: Vec::new(),
            order: Vec::new(),
        })
    }

    /// Experts per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// How the weights are normalised.
    pub fn weights(&self) -> CombineWeights {
        self.weights
    }

    /// Uses `weights` as the combine rule instead of the one `norm_topk_prob` gave.
    pub fn with_weights(mut self, weights: CombineWeights) -> Self {
        self.weights = weights;
        self
    }
}

impl ExpertSelector for TopK {
    fn name(&self) -> String {
        match self.weights {
            CombineWeights::Probabilities => format!("top-{}", self.k),
            CombineWeights::Renormalised => format!("top-{} (renormalised)", self.k),
            CombineWeights::Unit => format!("top-{} (weights 1)", self.k),
        }
    }

    fn select(&mut self, layer: usize, logits: &[f32], out: &mut ExpertChoice) -> Result<()> {
        out.clear();
        check_logits(layer, logits)?;
        check_count(layer, "k", self.k, logits.len())?;
        if self.weights != CombineWeights::Unit {
            softmax_into(logits, &mut self.probs);
        }
        rank_top_k(logits, self.k, &mut self.order);
        fill_choice(&self.order, &self.probs, self.k, self.weights, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64, tol: f64) -> bool {
        (f64::from(a) - b).abs() <= tol
    }

    #[test]
    fn top_k_matches_a_hand_computed_softmax() {
        // logits [1, 3, 2, 0]: e^-2, e^0, e^-1, e^-3 over their sum.
        let logits = [1.0_f32, 3.0, 2.0, 0.0];
        let z: f64 = [-2.0_f64, 0.0, -1.0, -3.0].iter().map(|x| x.exp()).sum();
        let p = |x: f64| x.exp() / z;
        let (p1, p2) = (p(0.0), p(-1.0)); // experts 1 and 2
        let mut out = ExpertChoice::new();

        let mut raw = TopK::new(2, false).unwrap();
        raw.select(3, &logits, &mut out).unwrap();
        assert_eq!(out.experts, vec![1, 2]);
        assert!(close(out.weights[0], p1, 1e-7) && close(out.weights[1], p2, 1e-7));
        // p1 = 0.6439..., p2 = 0.2369...: the selected mass is 0.8808, not 1.
        assert!(close(out.weight_sum(), p1 + p2, 1e-6));

        let mut norm = TopK::new(2, true).unwrap();
        norm.select(3, &logits, &mut out).unwrap();
        assert_eq!(out.experts, vec![1, 2]);
        // Renormalised: e^0 / (e^0 + e^-1) = 0.7311, e^-1 / (e^0 + e^-1) = 0.2689.
        let r = 1.0 / (1.0 + (-1.0_f64).exp());
        assert!(close(out.weights[0], r, 1e-7) && close(out.weights[1], 1.0 - r, 1e-7));

        // k = E takes everything, in logit order; the weights are the full softmax.
        let mut all = TopK::new(4, false).unwrap();
        all.select(0, &logits, &mut out).unwrap();
        assert_eq!(out.experts, vec![1, 2, 0, 3]);
        assert!(close(out.weight_sum(), 1.0, 1e-6));

        // Weight 1: same experts, every weight 1, no softmax kept.
        let mut unit = TopK::new(2, false)
            .unwrap()
            .with_weights(CombineWeights::Unit);
        unit.select(3, &logits, &mut out).unwrap();
        assert_eq!(
            (out.experts.clone(), out.weights.clone()),
            (vec![1, 2], vec![1.0, 1.0])
        );
        assert!(unit.probs.is_empty());
        assert_eq!(unit.name(), "top-2 (weights 1)");
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let mut out = ExpertChoice::new();
        let mut top = TopK::new(3, true).unwrap();
        top.select(0, &[1.0, 2.0, 1.0, 2.0, 1.0], &mut out).unwrap();
        // 2.0 at experts 1 and 3, then 1.0 at 0, 2, 4: the third slot goes to expert 0.
        assert_eq!(out.experts, vec![1, 3, 0]);
        assert_eq!(out.weights[0], out.weights[1]);
        // Equal logits everywhere: experts 0..k, equal weights 1/k.
        top.select(0, &[0.5; 8], &mut out).unwrap();
        assert_eq!(out.experts, vec![0, 1, 2]);
        assert!(out.weights.iter().all(|&w| close(w, 1.0 / 3.0, 1e-7)));
        // -0.0 and 0.0 are equal logits.
        top.select(0, &[-1.0, 0.0, -0.0, 1.0], &mut out).unwrap();
        assert_eq!(out.experts, vec![3, 1, 2]);
    }

    #[test]
    fn partial_rank_agrees_with_the_full_sort() {
        let logits: Vec<f32> = (0..64).map(|i| ((i * 37) % 17) as f32 * 0.25).collect();
        let mut full = Vec::new();
        rank_by_logit(&logits, &mut full);
        let mut part = Vec::new();
        for k in 1..=64 {
            rank_top_k(&logits, k, &mut part);
            assert_eq!(part[..k], full[..k], "k = {k}");
        }
    }

    #[test]
    fn bad_input_is_a_typed_error_naming_layer_and_field() {
        let mut out = ExpertChoice::new();
        assert!(matches!(
            TopK::new(0, false),
            Err(RoutingError::InvalidParameter { ref name, .. }) if name == "k"
        ));
        let mut top = TopK::new(4, false).unwrap();
        assert!(matches!(
            top.select(7, &[], &mut out),
            Err(RoutingError::EmptyLogits { layer: 7 })
        ));
        let e = top
            .select(2, &[0.0, f32::NAN, 1.0, 2.0], &mut out)
            .unwrap_err();
        assert!(matches!(
            e,
            RoutingError::NonFiniteLogit {
                layer: 2,
                expert: 1,
                ..
            }
        ));
        assert!(e.to_string().contains("layer 2"), "{e}");
        assert!(top.select(0, &[0.0, f32::INFINITY], &mut out).is_err());
        let e = top.select(5, &[0.0, 1.0, 2.0], &mut out).unwrap_err();
        assert!(matches!(
            e,
            RoutingError::ExpertCount { layer: 5, ref field, value: 4, experts: 3 } if field == "k"
        ));
        assert!(e.to_string().contains("`k`"), "{e}");
        assert!(out.is_empty());
    }

    #[test]
    fn boxed_and_borrowed_selectors_select_the_same() {
        let logits = [0.1_f32, -0.3, 0.7, 0.2];
        let mut a = ExpertChoice::new();
        let mut b = ExpertChoice::new();
        let mut boxed: Box<dyn ExpertSelector> = Box::new(TopK::new(2, true).unwrap());
        boxed.select(0, &logits, &mut a).unwrap();
        fn through<S: ExpertSelector>(mut s: S, logits: &[f32], out: &mut ExpertChoice) {
            s.select(0, logits, out).unwrap();
        }
        let mut plain = TopK::new(2, true).unwrap();
        through(&mut plain, &logits, &mut b);
        assert_eq!(a, b);
        assert_eq!(boxed.name(), "top-2 (renormalised)");
    }
}
