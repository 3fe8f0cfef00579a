//! The mixture-of-experts MLP block: a linear router, a pluggable expert selector, and SwiGLU
//! experts that run only on the tokens routed to them.
//!
//! ```text
//! z   = h · W_router                      [n, E] router logits, read back to the host
//! S_t = selector(layer, z_t)              experts + combine weights per token (any rule)
//! y_t = Σ_{e ∈ S_t} w_{t,e} · W_down,e (act(h_t·W_gate,e) ⊙ h_t·W_up,e)
//! ```
//!
//! The selection rule is a parameter ([`ExpertRouting`]): any
//! [`routing_core::expert::ExpertSelector`] — HF top-k (OLMoE's own rule, [`default_selector`]),
//! top-p, Benjamini–Hochberg (`bh_moe`). The block groups tokens by expert and runs each expert
//! once on the rows routed to it (a gather, two matmuls, a weighted scatter-add), so its cost
//! grows with the number of (token, expert) pairs selected, not with `E`. Experts nobody chose
//! are never touched.
//!
//! The router logits are read back to the host at every MoE layer (the selector is host code),
//! which synchronises a GPU device once per layer; on the CPU backend it costs a copy of `n·E`
//! floats.
//!
//! An optional [`RoutingObserver`] sees every layer's logits and choices ([`RoutedLayer`]) —
//! the hook for routing logs, expert-usage statistics and timing.

use std::time::Instant;

use burn::tensor::activation::{gelu_approximate, silu};
use burn::tensor::{Device, IndexingUpdateOp, Tensor};
use routing_core::expert::{ExpertChoice, ExpertSelector, TopK};

use crate::error::{LmError, Result};
use crate::models::transformer::{Activation, MoeSpec};
use crate::nn::tensor_io::{read_f32, upload, upload_ids};

/// One expert's weights in burn layout: gate and up fused `[hidden, 2·f]`, down `[f, hidden]`.
#[derive(Debug, Clone)]
pub struct ExpertWeights {
    /// `[W_gate | W_up]`, `[hidden, 2·f]`.
    pub gate_up: Tensor<2>,
    /// `W_down`, `[f, hidden]`.
    pub down: Tensor<2>,
}

/// What one MoE layer decided for one forward step, shown to a [`RoutingObserver`].
#[derive(Debug)]
pub struct RoutedLayer<'a> {
    /// Layer index.
    pub layer: usize,
    /// Rows in the step (`batch × tokens`), in row-major order of the step's tokens.
    pub tokens: usize,
    /// Experts in the layer (`E`).
    pub experts: usize,
    /// Router logits, `tokens × E`, row-major.
    pub logits: &'a [f32],
    /// Each row's selection (experts in descending logit order, combine weights).
    pub choices: &'a [ExpertChoice],
    /// The block's input (the normalised hidden states, `tokens × hidden`, row-major), read
    /// back only when the observer asks for it ([`RoutingObserver::wants_hidden`]).
    pub hidden: Option<&'a [f32]>,
    /// Seconds spent in the selector for this layer and step.
    pub select_seconds: f64,
    /// Seconds of the whole MoE block (router, read-back, selection, experts, scatter).
    /// On the CPU backend operations run eagerly, so this is the block's compute time; on an
    /// asynchronous GPU device the experts' kernels may still be in flight when it is taken.
    pub block_seconds: f64,
}

/// Receives every MoE layer's routing decisions during a forward pass.
pub trait RoutingObserver {
    /// Called once per MoE layer per forward step, after the layer's output is computed.
    fn observe(&mut self, routed: &RoutedLayer<'_>);

    /// Whether [`RoutedLayer::hidden`] should carry the block's input (an extra read-back per
    /// layer; for calibration and router training). Default: no.
    fn wants_hidden(&self) -> bool {
        false
    }
}

/// The expert-selection rule (and optional observer) a forward pass uses at every MoE layer.
pub struct ExpertRouting<'a> {
    /// Chooses each token's experts and weights.
    pub selector: &'a mut dyn ExpertSelector,
    /// Sees each layer's decisions.
    pub observer: Option<&'a mut dyn RoutingObserver>,
}

impl std::fmt::Debug for ExpertRouting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpertRouting")
            .field("selector", &self.selector.name())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl<'a> ExpertRouting<'a> {
    /// Routing by `selector` with no observer.
    pub fn new(selector: &'a mut dyn ExpertSelector) -> Self {
        Self {
            selector,
            observer: None,
        }
    }

    /// Routing by `selector`, every layer shown to `observer`.
    pub fn observed(
        selector: &'a mut dyn ExpertSelector,
        observer: &'a mut dyn RoutingObserver,
    ) -> Self {
        Self {
            selector,
            observer: Some(observer),
        }
    }
}

/// The model's own rule: top-`experts_per_token` with its `norm_topk_prob` (HF semantics).
///
/// # Errors
/// A `k` of zero (the spec's check rejects it earlier).
pub fn default_selector(moe: &MoeSpec) -> Result<TopK> {
    TopK::new(moe.experts_per_token, moe.norm_topk_prob)
        .map_err(|source| LmError::ExpertSelection { layer: 0, source })
}

/// Runs one MoE block on normalised hidden states `xn` (`[n, hidden]`): router, selection,
/// the selected experts, and their weighted sum (`[n, hidden]`).
///
/// # Errors
/// A selector error ([`LmError::ExpertSelection`], e.g. a NaN router logit) or a failed
/// read-back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn moe_block(
    xn: Tensor<2>,
    router: &Tensor<2>,
    experts: &[ExpertWeights],
    f: usize,
    activation: Activation,
    layer: usize,
    routing: &mut ExpertRouting<'_>,
    device: &Device,
) -> Result<Tensor<2>> {
    let start = Instant::now();
    let [n, h] = xn.dims();
    let e = experts.len();
    let logits = read_f32(xn.clone().matmul(router.clone()))?;
    // The choice buffers are allocated outside the timed selection: `select_seconds` is the
    // selector's own cost.
    let mut choices = vec![ExpertChoice::with_capacity(e); n];
    let select_start = Instant::now();
    for (t, choice) in choices.iter_mut().enumerate() {
        routing
            .selector
            .select(layer, &logits[t * e..(t + 1) * e], choice)
            .map_err(|source| LmError::ExpertSelection { layer, source })?;
    }
    let select_seconds = select_start.elapsed().as_secs_f64();

    // Group (row, weight) pairs by expert.
    let mut rows: Vec<Vec<i64>> = vec![Vec::new(); e];
    let mut weights: Vec<Vec<f32>> = vec![Vec::new(); e];
    for (t, c) in choices.iter().enumerate() {
        for (&x, &w) in c.experts.iter().zip(&c.weights) {
            rows[x].push(t as i64);
            weights[x].push(w);
        }
    }
    let mut out = Tensor::<2>::zeros([n, h], device);
    for (x, expert) in experts.iter().enumerate() {
        let m = rows[x].len();
        if m == 0 {
            continue;
        }
        let idx = upload_ids(std::mem::take(&mut rows[x]), device);
        let xe = if m == n && n == 1 {
            xn.clone()
        } else {
            xn.clone().select(0, idx.clone())
        };
        let gu = xe.matmul(expert.gate_up.clone());
        let gate = gu.clone().slice_dim(1, 0..f);
        let up = gu.slice_dim(1, f..2 * f);
        let gate = match activation {
            Activation::Silu => silu(gate),
            Activation::GeluTanh => gelu_approximate(gate),
        };
        let w = upload(std::mem::take(&mut weights[x]), [m, 1], device);
        let y = (gate * up).matmul(expert.down.clone()) * w;
        out = out.select_assign(0, idx, y, IndexingUpdateOp::Add);
    }
    if let Some(obs) = routing.observer.as_deref_mut() {
        let hidden = if obs.wants_hidden() {
            Some(read_f32(xn)?)
        } else {
            None
        };
        obs.observe(&RoutedLayer {
            hidden: hidden.as_deref(),
            layer,
            tokens: n,
            experts: e,
            logits: &logits,
            choices: &choices,
            select_seconds,
            block_seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(out)
}
