//! The decoder-only transformer every text family here shares, on any burn device.
//!
//! Families differ in a handful of switches, collected in [`TransformerSpec`]; the forward pass
//! is written once:
//!
//! ```text
//! x = embed(ids) · embed_scale
//! for each layer ℓ:
//!     h = attn_norm(x)
//!     q, k, v = h·W_q, h·W_k, h·W_v            (heads of width head_dim, h_kv ≤ h heads)
//!     q, k = qk_norm(q), qk_norm(k)             (none | per head | over the whole vector)
//!     q, k = rope_ℓ(q), rope_ℓ(k)               (per-layer frequencies: Gemma's local/global)
//!     a = softmax(q·kᵀ · attn_scale + mask_ℓ)·v (causal; sliding window on local layers)
//!     x = x + post_attn_norm(a·W_o)             (post norm: Gemma's sandwich only)
//!     h = ffn_norm(x)
//!     x = x + post_ffn_norm(W_down(act(h·W_gate) ⊙ h·W_up))   (dense)
//!     x = x + Σ_{e∈S(h)} w_e · W_down,e(act(h·W_gate,e) ⊙ h·W_up,e) (MoE, [`crate::nn::moe`])
//! logits = final_norm(x) · W_head               (tied: W_head = embedᵀ)
//! ```
//!
//! | family | norms | q/k norm | activation | embed scale | attention windows | RoPE |
//! |---|---|---|---|---|---|---|
//! | Llama 2/3, SmolLM2 | pre | none | SiLU | 1 | full | θ, optional `llama3` scaling |
//! | Gemma 3 | sandwich | per head | GELU (tanh) | √hidden | 512 on 5 of 6 layers | 10⁴ local, 10⁶ global |
//! | OLMoE | pre | whole vector | SiLU, MoE MLP | 1 | full | θ |
//!
//! Weights are held on the host in Hugging Face names ([`HostWeights`]); each family's loader
//! maps its file's names there, and [`HostWeights::expected`] lists what a spec needs.

use std::collections::BTreeMap;

use burn::tensor::activation::{gelu_approximate, silu, softmax};
use burn::tensor::{Device, Tensor};

use crate::error::{LmError, Result};
use crate::nn::kv_cache::KvCache;
use crate::nn::moe::{ExpertRouting, ExpertWeights, default_selector, moe_block};
use crate::nn::rope::{Rope, RopeLayout};
use crate::nn::tensor_io::{upload, upload_ids};

/// Where the RMSNorms sit in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NormPlacement {
    /// Before attention and before the MLP (Llama): `input_layernorm`,
    /// `post_attention_layernorm` (which, despite its name, precedes the MLP).
    Pre,
    /// Before *and* after each sub-block (Gemma 2/3): `input_layernorm`,
    /// `post_attention_layernorm`, `pre_feedforward_layernorm`, `post_feedforward_layernorm`.
    Sandwich,
}

/// RMSNorm applied to queries and keys before RoPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum QkNorm {
    /// None (Llama).
    None,
    /// Over each head's `head_dim` values, one weight vector of `head_dim` shared by the heads
    /// (Gemma 3, Qwen 3).
    PerHead,
    /// Over the whole projected vector (`h · head_dim` for queries, `h_kv · head_dim` for keys),
    /// before the split into heads (OLMo 2, OLMoE).
    Full,
}

/// The gated MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU with the tanh approximation (GeGLU; transformers' `gelu_pytorch_tanh`).
    GeluTanh,
}

/// A mixture-of-experts MLP in place of the dense one (OLMoE, Mixtral style): a linear router
/// (`mlp.gate.weight`, `[E, hidden]`) and `E` SwiGLU experts of width
/// [`TransformerSpec::intermediate_size`] (`mlp.experts.{e}.{gate,up,down}_proj.weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MoeSpec {
    /// Experts per layer (`E`).
    pub num_experts: usize,
    /// Experts the model was trained to use per token (`num_experts_per_tok`); the default
    /// selection rule when a forward pass is given none.
    pub experts_per_token: usize,
    /// Whether the default top-k renormalises the selected probabilities to sum to 1.
    pub norm_topk_prob: bool,
}

/// The attention of one layer: which RoPE table and which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LayerAttention {
    /// Index into [`TransformerSpec::rope_freqs`].
    pub rope: usize,
    /// Sliding window: a key at position `p₀` is hidden from a query at `p₁` iff
    /// `p₁ − p₀ ≥ window`. `None`: full causal attention.
    pub window: Option<usize>,
}

/// Everything the forward pass needs to know about a model: sizes and the family's switches.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransformerSpec {
    /// Family name for reports and errors (`"llama"`, `"gemma3"`).
    pub family: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of one head (not always `hidden / heads`: Gemma 3 270M has 640 / 4 heads of 256).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Context window (positions).
    pub max_positions: usize,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// RMSNorm placement.
    pub norms: NormPlacement,
    /// Query/key normalisation.
    pub qk_norm: QkNorm,
    /// The MLP's gate activation.
    pub activation: Activation,
    /// Factor on the embeddings (`√hidden` for Gemma, rounded to f32 as transformers does).
    pub embed_scale: f32,
    /// Factor on `q·kᵀ` (`1/√head_dim`, or Gemma's `query_pre_attn_scalar^(−½)`).
    pub attn_scale: f64,
    /// Inverse RoPE frequencies, one set per distinct table ([`crate::nn::rope::inv_frequencies`]).
    pub rope_freqs: Vec<Vec<f32>>,
    /// Per-layer attention (its length is the number of layers).
    pub layers: Vec<LayerAttention>,
    /// `Some` for mixture-of-experts models: every layer's MLP is a routed set of experts.
    pub moe: Option<MoeSpec>,
}

impl TransformerSpec {
    /// Number of transformer blocks.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Parameters of the model (the tied head counted once).
    pub fn parameter_count(&self) -> u64 {
        HostWeights::expected(self)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>() as u64)
            .sum()
    }

    /// Parameters a token passes through on its way to the logits: all but the embedding
    /// table, plus the LM head (the tied matrix counts as the head); for a mixture-of-experts
    /// model, only the `experts_per_token` experts it uses (the router counted in full). `2 ×`
    /// this is the usual FLOPs-per-token estimate of a forward pass (Kaplan et al. 2020),
    /// attention over the context aside.
    pub fn active_parameter_count(&self) -> u64 {
        let k = self.moe.map_or(0.0, |m| m.experts_per_token as f64);
        self.active_parameter_count_at(k).round() as u64
    }

    /// [`Self::active_parameter_count`] of a mixture-of-experts model that uses `mean_experts`
    /// experts per token on average (any selection rule); a dense model ignores the argument.
    pub fn active_parameter_count_at(&self, mean_experts: f64) -> f64 {
        let embedding = (self.vocab_size * self.hidden_size) as u64;
        let total = self.parameter_count();
        let mut active = if self.tie_word_embeddings {
            total
        } else {
            total - embedding
        } as f64;
        if let Some(m) = self.moe {
            let per_expert = self.expert_parameter_count() as f64;
            active -= (m.num_experts as f64 - mean_experts) * per_expert * self.num_layers() as f64;
        }
        active
    }

    /// Parameters of one expert of one layer (`3 · hidden · intermediate`); of one dense MLP
    /// for a dense model.
    pub fn expert_parameter_count(&self) -> u64 {
        3 * (self.hidden_size * self.intermediate_size) as u64
    }

    /// Checks internal consistency; `origin` names the file for the error.
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the inconsistent field.
    pub fn check(&self, origin: &str) -> Result<()> {
        let bad = |detail: String| LmError::InvalidModelConfig {
            path: origin.into(),
            detail,
        };
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.layers.len()),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_positions),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(bad(format!("`{name}` must be positive")));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(bad(format!("head_dim {} must be even", self.head_dim)));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_heads, self.num_kv_heads
            )));
        }
        if !(self.rms_norm_eps > 0.0 && self.attn_scale > 0.0 && self.embed_scale > 0.0) {
            return Err(bad(
                "rms_norm_eps, the attention scale and the embedding scale must be positive".into(),
            ));
        }
        for (i, f) in self.rope_freqs.iter().enumerate() {
            if f.len() != self.head_dim / 2 || f.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!(
                    "RoPE table {i} has {} finite frequencies, expected head_dim / 2 = {}",
                    f.len(),
                    self.head_dim / 2
                )));
            }
        }
        if let Some(m) = self.moe
            && (m.num_experts == 0
                || m.experts_per_token == 0
                || m.experts_per_token > m.num_experts)
        {
            return Err(bad(format!(
                "num_experts_per_tok {} must lie in 1..=num_experts {}",
                m.experts_per_token, m.num_experts
            )));
        }
        if let Some((i, l)) = self
            .layers
            .iter()
            .enumerate()
            .find(|(_, l)| l.rope >= self.rope_freqs.len() || l.window == Some(0))
        {
            return Err(bad(format!(
                "layer {i}: RoPE table {} of {} or window {:?}",
                l.rope,
                self.rope_freqs.len(),
                l.window
            )));
        }
        Ok(())
    }
}

/// A host-side tensor in PyTorch layout (row-major, `shape` as PyTorch reports it).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Model weights in Hugging Face names and layout (Q/K rows in rotate-half order), on the host.
#[derive(Debug, Clone, Default)]
pub struct HostWeights {
    /// Parameter name → tensor.
    pub tensors: BTreeMap<String, HostTensor>,
    /// Where they came from (for errors).
    pub origin: String,
}

impl HostWeights {
    /// The expected `(name, shape)` of every parameter of a model with `spec`.
    pub fn expected(spec: &TransformerSpec) -> Vec<(String, Vec<usize>)> {
        let (h, d) = (spec.hidden_size, spec.head_dim);
        let (nh, nkv, f) = (spec.num_heads, spec.num_kv_heads, spec.intermediate_size);
        let mut v = vec![(
            "model.embed_tokens.weight".to_string(),
            vec![spec.vocab_size, h],
        )];
        for i in 0..spec.num_layers() {
            let p = format!("model.layers.{i}");
            v.push((format!("{p}.input_layernorm.weight"), vec![h]));
            v.push((format!("{p}.self_attn.q_proj.weight"), vec![nh * d, h]));
            v.push((format!("{p}.self_attn.k_proj.weight"), vec![nkv * d, h]));
            v.push((format!("{p}.self_attn.v_proj.weight"), vec![nkv * d, h]));
            v.push((format!("{p}.self_attn.o_proj.weight"), vec![h, nh * d]));
            match spec.qk_norm {
                QkNorm::None => {}
                QkNorm::PerHead => {
                    v.push((format!("{p}.self_attn.q_norm.weight"), vec![d]));
                    v.push((format!("{p}.self_attn.k_norm.weight"), vec![d]));
                }
                QkNorm::Full => {
                    v.push((format!("{p}.self_attn.q_norm.weight"), vec![nh * d]));
                    v.push((format!("{p}.self_attn.k_norm.weight"), vec![nkv * d]));
                }
            }
            v.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            if spec.norms == NormPlacement::Sandwich {
                v.push((format!("{p}.pre_feedforward_layernorm.weight"), vec![h]));
                v.push((format!("{p}.post_feedforward_layernorm.weight"), vec![h]));
            }
            match spec.moe {
                None => {
                    v.push((format!("{p}.mlp.gate_proj.weight"), vec![f, h]));
                    v.push((format!("{p}.mlp.up_proj.weight"), vec![f, h]));
                    v.push((format!("{p}.mlp.down_proj.weight"), vec![h, f]));
                }
                Some(m) => {
                    v.push((format!("{p}.mlp.gate.weight"), vec![m.num_experts, h]));
                    for e in 0..m.num_experts {
                        let q = format!("{p}.mlp.experts.{e}");
                        v.push((format!("{q}.gate_proj.weight"), vec![f, h]));
                        v.push((format!("{q}.up_proj.weight"), vec![f, h]));
                        v.push((format!("{q}.down_proj.weight"), vec![h, f]));
                    }
                }
            }
        }
        v.push(("model.norm.weight".to_string(), vec![h]));
        if !spec.tie_word_embeddings {
            v.push(("lm_head.weight".to_string(), vec![spec.vocab_size, h]));
        }
        v
    }

    /// Checks names, shapes and values against `spec`: missing and unexpected keys are one error
    /// naming them all; a wrong shape or a NaN or infinite value names the tensor.
    ///
    /// # Errors
    /// [`LmError::WeightKeys`], [`LmError::WeightShape`] or [`LmError::NonFiniteWeight`].
    pub fn check(&self, spec: &TransformerSpec) -> Result<()> {
        let expected = Self::expected(spec);
        let missing: Vec<String> = expected
            .iter()
            .filter(|(n, _)| !self.tensors.contains_key(n))
            .map(|(n, _)| n.clone())
            .collect();
        let unexpected: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .cloned()
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(LmError::WeightKeys {
                path: self.origin.clone().into(),
                missing,
                unexpected,
            });
        }
        for (name, shape) in expected {
            let t = &self.tensors[&name];
            if t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
                return Err(LmError::WeightShape {
                    path: self.origin.clone().into(),
                    name,
                    expected: shape,
                    found: t.shape.clone(),
                });
            }
            if let Some(index) = crate::format::dequant::first_non_finite(&t.data) {
                return Err(LmError::NonFiniteWeight {
                    path: self.origin.clone().into(),
                    name,
                    index,
                });
            }
        }
        Ok(())
    }

    /// The tensor `name`.
    ///
    /// # Errors
    /// [`LmError::WeightNotFound`] naming it.
    pub fn get(&self, name: &str) -> Result<&HostTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| LmError::WeightNotFound {
                path: self.origin.clone().into(),
                name: name.to_string(),
            })
    }
}

impl HostWeights {
    /// Seeded random weights for `spec` (tests, examples, documentation): every norm weight
    /// `1 + norm_scale · (u − ½)`, every other value `scale · (u − ½)`, `u` uniform on `[0, 1)`
    /// from ChaCha8 with `seed`, drawn in [`HostWeights::expected`] order.
    pub fn random(spec: &TransformerSpec, seed: u64, scale: f32, norm_scale: f32) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut w = HostWeights {
            origin: format!("random weights, seed {seed}"),
            ..Default::default()
        };
        for (name, shape) in HostWeights::expected(spec) {
            let n: usize = shape.iter().product();
            let norm = name.ends_with("norm.weight");
            let data = (0..n)
                .map(|_| {
                    let u = rng.random::<f32>() - 0.5;
                    if norm {
                        1.0 + norm_scale * u
                    } else {
                        scale * u
                    }
                })
                .collect();
            w.tensors.insert(name, HostTensor { shape, data });
        }
        w
    }
}

/// PyTorch `[out, in]` → burn `[in, out]`.
fn transpose(t: &HostTensor) -> (Vec<f32>, usize, usize) {
    let (out, inp) = (t.shape[0], t.shape[1]);
    let mut v = vec![0f32; out * inp];
    // Blocked so that both the reads and the writes stay within cache lines.
    const B: usize = 32;
    for o0 in (0..out).step_by(B) {
        for i0 in (0..inp).step_by(B) {
            for o in o0..(o0 + B).min(out) {
                for i in i0..(i0 + B).min(inp) {
                    v[i * out + o] = t.data[o * inp + i];
                }
            }
        }
    }
    (v, inp, out)
}

/// Concatenates several `[in, out_k]` matrices along columns.
fn hcat(parts: &[(Vec<f32>, usize, usize)]) -> (Vec<f32>, usize, usize) {
    let rows = parts[0].1;
    let cols: usize = parts.iter().map(|p| p.2).sum();
    let mut v = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for (data, _, c) in parts {
            v.extend_from_slice(&data[r * c..(r + 1) * c]);
        }
    }
    (v, rows, cols)
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Tensor<1>,
    q_norm: Option<Tensor<1>>,
    k_norm: Option<Tensor<1>>,
    wqkv: Tensor<2>,
    wo: Tensor<2>,
    post_attn_norm: Option<Tensor<1>>,
    ffn_norm: Tensor<1>,
    post_ffn_norm: Option<Tensor<1>>,
    ffn: Ffn,
}

/// A layer's MLP: dense, or routed experts.
// One per layer, built once: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Ffn {
    Dense {
        w_gate_up: Tensor<2>,
        w_down: Tensor<2>,
    },
    Moe {
        /// `[hidden, E]`.
        router: Tensor<2>,
        experts: Vec<ExpertWeights>,
    },
}

/// Which positions to return logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsAt {
    /// Every position of the step (teacher forcing, scoring).
    All,
    /// Only the last position (decoding).
    Last,
}

/// A decoder-only transformer on a device (the exact f32 executor).
#[derive(Debug, Clone)]
pub struct Transformer {
    spec: TransformerSpec,
    device: Device,
    embed: Tensor<2>,
    layers: Vec<Layer>,
    norm: Tensor<1>,
    lm_head: Tensor<2>,
    ropes: Vec<Rope>,
}

impl Transformer {
    /// Uploads checked weights to `device`. Q/K fused with V into one `[hidden, (h + 2·h_kv)·d]`
    /// matrix and gate with up into one `[hidden, 2·ffn]` (PyTorch's `[out, in]` transposed to
    /// burn's `[in, out]`).
    ///
    /// # Errors
    /// An inconsistent spec or weights that do not fit it.
    pub fn new(spec: TransformerSpec, weights: &HostWeights, device: &Device) -> Result<Self> {
        spec.check(&weights.origin)?;
        weights.check(&spec)?;
        let up2 = |(v, r, c): (Vec<f32>, usize, usize)| upload(v, [r, c], device);
        let up1 = |t: &HostTensor| upload(t.data.clone(), [t.data.len()], device);
        let embed_host = weights.get("model.embed_tokens.weight")?;
        let embed = upload(
            embed_host.data.clone(),
            [spec.vocab_size, spec.hidden_size],
            device,
        );
        let lm_head = if spec.tie_word_embeddings {
            up2(transpose(embed_host))
        } else {
            up2(transpose(weights.get("lm_head.weight")?))
        };
        let sandwich = spec.norms == NormPlacement::Sandwich;
        let mut layers = Vec::with_capacity(spec.num_layers());
        for i in 0..spec.num_layers() {
            let p = format!("model.layers.{i}");
            let w = |n: &str| weights.get(&format!("{p}.{n}"));
            let opt = |on: bool, n: &str| -> Result<Option<Tensor<1>>> {
                Ok(if on { Some(up1(w(n)?)) } else { None })
            };
            let has_qk = spec.qk_norm != QkNorm::None;
            layers.push(Layer {
                attn_norm: up1(w("input_layernorm.weight")?),
                q_norm: opt(has_qk, "self_attn.q_norm.weight")?,
                k_norm: opt(has_qk, "self_attn.k_norm.weight")?,
                wqkv: up2(hcat(&[
                    transpose(w("self_attn.q_proj.weight")?),
                    transpose(w("self_attn.k_proj.weight")?),
                    transpose(w("self_attn.v_proj.weight")?),
                ])),
                wo: up2(transpose(w("self_attn.o_proj.weight")?)),
                post_attn_norm: opt(sandwich, "post_attention_layernorm.weight")?,
                ffn_norm: up1(w(if sandwich {
                    "pre_feedforward_layernorm.weight"
                } else {
                    "post_attention_layernorm.weight"
                })?),
                post_ffn_norm: opt(sandwich, "post_feedforward_layernorm.weight")?,
                ffn: match spec.moe {
                    None => Ffn::Dense {
                        w_gate_up: up2(hcat(&[
                            transpose(w("mlp.gate_proj.weight")?),
                            transpose(w("mlp.up_proj.weight")?),
                        ])),
                        w_down: up2(transpose(w("mlp.down_proj.weight")?)),
                    },
                    Some(m) => Ffn::Moe {
                        router: up2(transpose(w("mlp.gate.weight")?)),
                        experts: (0..m.num_experts)
                            .map(|e| {
                                let q = format!("mlp.experts.{e}");
                                Ok(ExpertWeights {
                                    gate_up: up2(hcat(&[
                                        transpose(w(&format!("{q}.gate_proj.weight"))?),
                                        transpose(w(&format!("{q}.up_proj.weight"))?),
                                    ])),
                                    down: up2(transpose(w(&format!("{q}.down_proj.weight"))?)),
                                })
                            })
                            .collect::<Result<Vec<_>>>()?,
                    },
                },
            });
        }
        let ropes = spec
            .rope_freqs
            .iter()
            .map(|f| Rope::with_inv_freq(RopeLayout::RotateHalf, f.clone()))
            .collect();
        Ok(Self {
            norm: up1(weights.get("model.norm.weight")?),
            spec,
            device: device.clone(),
            embed,
            layers,
            lm_head,
            ropes,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &TransformerSpec {
        &self.spec
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fresh cache for `batch` sequences.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(self.spec.num_layers(), batch)
    }

    /// Runs `tokens` (`batch` rows of equal length `t`, already left-padded as the cache's
    /// padding says) through the model, appending to `cache`. Returns logits
    /// `[batch, t, vocab]` ([`LogitsAt::All`]) or `[batch, 1, vocab]` ([`LogitsAt::Last`]).
    ///
    /// Positions count from each sequence's first real token, plus the cache's
    /// [`KvCache::position_offset`].
    ///
    /// A mixture-of-experts model routes with its own rule (top-`experts_per_token`,
    /// [`crate::nn::moe::default_selector`]); [`Self::forward_routed`] takes any other.
    ///
    /// # Errors
    /// Ragged or empty rows, a batch that differs from the cache's, ids outside the
    /// vocabulary, or a sequence past the context window.
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut KvCache,
        at: LogitsAt,
    ) -> Result<Tensor<3>> {
        match self.spec.moe {
            None => self.run(tokens, cache, at, None),
            Some(m) => {
                let mut top_k = default_selector(&m)?;
                self.run(tokens, cache, at, Some(&mut ExpertRouting::new(&mut top_k)))
            }
        }
    }

    /// [`Self::forward`] with the experts of every MoE layer chosen by `routing` (a dense
    /// model ignores it).
    ///
    /// # Errors
    /// As [`Self::forward`], and [`LmError::ExpertSelection`] when the selector refuses a
    /// token's router logits.
    pub fn forward_routed(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut KvCache,
        at: LogitsAt,
        routing: &mut ExpertRouting<'_>,
    ) -> Result<Tensor<3>> {
        self.run(tokens, cache, at, Some(routing))
    }

    fn run(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut KvCache,
        at: LogitsAt,
        mut routing: Option<&mut ExpertRouting<'_>>,
    ) -> Result<Tensor<3>> {
        let spec = &self.spec;
        let b = tokens.len();
        let t = tokens.first().map_or(0, Vec::len);
        if b == 0 || t == 0 || tokens.iter().any(|r| r.len() != t) || cache.batch() != b {
            return Err(LmError::InvalidModelConfig {
                path: "forward".into(),
                detail: format!(
                    "expected {} rows of equal, non-zero length; got lengths {:?}",
                    cache.batch(),
                    tokens.iter().map(Vec::len).collect::<Vec<_>>()
                ),
            });
        }
        let start = cache.len();
        let offset = cache.position_offset();
        if offset + start + t > spec.max_positions {
            return Err(LmError::SequenceTooLong {
                len: offset + start + t,
                max: spec.max_positions,
            });
        }
        let mut ids = Vec::with_capacity(b * t);
        for row in tokens {
            for &id in row {
                if id as usize >= spec.vocab_size {
                    return Err(LmError::TokenOutOfRange {
                        id,
                        vocab_size: spec.vocab_size,
                    });
                }
                ids.push(i64::from(id));
            }
        }
        let (h, d) = (spec.hidden_size, spec.head_dim);
        let (nh, nkv) = (spec.num_heads, spec.num_kv_heads);
        let rep = nh / nkv;
        let pad = cache.padding().to_vec();

        // Positions count from each sequence's first real token; pad slots get position 0.
        let positions: Vec<i64> = (0..b)
            .flat_map(|s| {
                let p = pad[s] as i64;
                (0..t).map(move |i| (offset + start + i) as i64 - p)
            })
            .map(|p| p.max(0))
            .collect();
        let tables: Vec<(Tensor<4>, Tensor<4>)> = self
            .ropes
            .iter()
            .map(|r| r.tables(&positions, b, t, &self.device))
            .collect();

        // One additive mask [b, 1, rep·t, total] per distinct window: causal, pad slots hidden,
        // keys `window` or more positions back hidden. A pad query may still see itself, so
        // that no softmax row is empty (its output is never used). A single-token step of
        // unpadded sequences within every window needs no mask at all.
        let mut windows: Vec<Option<usize>> = spec.layers.iter().map(|l| l.window).collect();
        windows.sort_unstable();
        windows.dedup();
        let masks: Vec<(Option<usize>, Option<Tensor<4>>)> = windows
            .into_iter()
            .map(|w| (w, self.mask(&pad, t, start, rep, w)))
            .collect();

        let mut x = self.embed.clone().select(0, upload_ids(ids, &self.device)); // [b·t, h]
        if spec.embed_scale != 1.0 {
            x = x.mul_scalar(spec.embed_scale);
        }
        let eps = spec.rms_norm_eps;
        for (li, layer) in self.layers.iter().enumerate() {
            let la = spec.layers[li];
            let xn = rms_norm(x.clone(), &layer.attn_norm, eps);
            let qkv = xn.matmul(layer.wqkv.clone()); // [b·t, (nh + 2 nkv) d]
            let mut q = qkv.clone().slice_dim(1, 0..nh * d);
            let mut k = qkv.clone().slice_dim(1, nh * d..(nh + nkv) * d);
            let v = qkv.slice_dim(1, (nh + nkv) * d..(nh + 2 * nkv) * d);
            match (spec.qk_norm, &layer.q_norm, &layer.k_norm) {
                (QkNorm::Full, Some(qn), Some(kn)) => {
                    q = rms_norm(q, qn, eps);
                    k = rms_norm(k, kn, eps);
                }
                (QkNorm::PerHead, Some(qn), Some(kn)) => {
                    q = rms_norm(q.reshape([b * t * nh, d]), qn, eps).reshape([b * t, nh * d]);
                    k = rms_norm(k.reshape([b * t * nkv, d]), kn, eps).reshape([b * t, nkv * d]);
                }
                _ => {}
            }
            let q = q.reshape([b, t, nh, d]).swap_dims(1, 2);
            let k = k.reshape([b, t, nkv, d]).swap_dims(1, 2);
            let v = v.reshape([b, t, nkv, d]).swap_dims(1, 2);
            let (cos, sin) = &tables[la.rope];
            let rope = &self.ropes[la.rope];
            let q = rope.apply(q, cos, sin);
            let k = rope.apply(k, cos, sin);
            let (k_all, v_all) = cache.append(li, k, v); // [b, nkv, total, d]
            // Grouped-query attention without copying K/V: the `rep` query heads sharing a KV
            // head are stacked along the query axis.
            let q = q.reshape([b, nkv, rep * t, d]);
            let mut scores = q.matmul(k_all.swap_dims(2, 3)).mul_scalar(spec.attn_scale);
            let mask = masks
                .iter()
                .find(|(w, _)| *w == la.window)
                .and_then(|(_, m)| m.as_ref());
            if let Some(m) = mask {
                scores = scores + m.clone();
            }
            let probs = softmax(scores, 3);
            let mut attn = probs
                .matmul(v_all)
                .reshape([b, nh, t, d])
                .swap_dims(1, 2)
                .reshape([b * t, nh * d])
                .matmul(layer.wo.clone());
            if let Some(n) = &layer.post_attn_norm {
                attn = rms_norm(attn, n, eps);
            }
            x = x + attn;

            let xn = rms_norm(x.clone(), &layer.ffn_norm, eps);
            let f = spec.intermediate_size;
            let mut mlp = match (&layer.ffn, routing.as_deref_mut()) {
                (Ffn::Dense { w_gate_up, w_down }, _) => {
                    let gu = xn.matmul(w_gate_up.clone());
                    let gate = gu.clone().slice_dim(1, 0..f);
                    let upv = gu.slice_dim(1, f..2 * f);
                    let gate = match spec.activation {
                        Activation::Silu => silu(gate),
                        Activation::GeluTanh => gelu_approximate(gate),
                    };
                    (gate * upv).matmul(w_down.clone())
                }
                (Ffn::Moe { router, experts }, Some(r)) => {
                    moe_block(xn, router, experts, f, spec.activation, li, r, &self.device)?
                }
                (Ffn::Moe { .. }, None) => {
                    return Err(LmError::InvalidModelConfig {
                        path: "forward".into(),
                        detail: "a mixture-of-experts layer needs an expert selector".into(),
                    });
                }
            };
            if let Some(n) = &layer.post_ffn_norm {
                mlp = rms_norm(mlp, n, eps);
            }
            x = x + mlp;
        }
        cache.advance(t);
        let x = match at {
            LogitsAt::All => x,
            LogitsAt::Last => x.reshape([b, t, h]).slice_dim(1, t - 1..t).reshape([b, h]),
        };
        let rows = if at == LogitsAt::All { t } else { 1 };
        let x = rms_norm(x, &self.norm, eps);
        Ok(x.matmul(self.lm_head.clone())
            .reshape([b, rows, spec.vocab_size]))
    }

    /// The additive attention mask of one step for one window, or `None` when nothing is hidden.
    fn mask(
        &self,
        pad: &[usize],
        t: usize,
        start: usize,
        rep: usize,
        window: Option<usize>,
    ) -> Option<Tensor<4>> {
        let b = pad.len();
        let total = start + t;
        let w = window.unwrap_or(usize::MAX);
        let needs = t > 1 || pad.iter().any(|&p| p > 0) || total > w;
        if !needs {
            return None;
        }
        let mut mask = vec![0f32; b * rep * t * total];
        for (s, &pad_s) in pad.iter().enumerate() {
            for i in 0..t {
                let q = start + i;
                let row: Vec<f32> = (0..total)
                    .map(|j| {
                        // `q - j` is reached only when `j ≤ q`.
                        let hidden = j > q || (j < pad_s && j != q) || q - j >= w;
                        if hidden { f32::NEG_INFINITY } else { 0.0 }
                    })
                    .collect();
                for r in 0..rep {
                    let at = ((s * rep + r) * t + i) * total;
                    mask[at..at + total].copy_from_slice(&row);
                }
            }
        }
        Some(upload(mask, [b, 1, rep * t, total], &self.device))
    }
}

/// RMSNorm over the last dimension of `[n, h]`: `x / sqrt(mean(x²) + ε) · w`.
pub fn rms_norm(x: Tensor<2>, w: &Tensor<1>, eps: f64) -> Tensor<2> {
    let ms = (x.clone() * x.clone()).mean_dim(1);
    x * ms.add_scalar(eps).sqrt().recip() * w.clone().unsqueeze::<2>()
}
