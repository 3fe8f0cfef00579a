//! OLMoE (Muennighoff et al. 2024; transformers `modeling_olmoe.py`): a Llama-shaped decoder
//! whose MLPs are mixtures of SwiGLU experts.
//!
//! As switches of [`TransformerSpec`]: pre-norms; RMSNorm of queries and keys over the **whole
//! projected vector** (`h · head_dim` values, before the split into heads — not per head);
//! rotate-half RoPE with θ = 10,000 (on un-permuted rows: llama.cpp's converter does not
//! permute OLMoE's Q/K); SiLU experts; untied LM head; and a [`MoeSpec`]: a linear router over
//! `E` experts, softmax over **all** experts in f32, top-`k` (`num_experts_per_tok`), the
//! selected probabilities used as combine weights as they are unless `norm_topk_prob` says to
//! renormalise them. OLMoE-1B-7B: 16 layers, 64 experts, top-8, `norm_topk_prob = false`.
//!
//! The selection rule is a parameter of the forward pass
//! ([`crate::models::transformer::Transformer::forward_routed`]); the model's own top-`k` is the
//! default.
//!
//! | Hugging Face (Hub, per expert) | transformers 5 (fused) | GGUF (llama.cpp `olmoe`) |
//! |---|---|---|
//! | `mlp.gate.weight` `[E, H]` | same | `ffn_gate_inp.weight` |
//! | `mlp.experts.{e}.gate_proj.weight` `[I, H]` | `mlp.experts.gate_up_proj` `[E, 2I, H]`, gate rows first | `ffn_gate_exps.weight` `[E, I, H]` |
//! | `mlp.experts.{e}.up_proj.weight` `[I, H]` | (second half of `gate_up_proj`) | `ffn_up_exps.weight` `[E, I, H]` |
//! | `mlp.experts.{e}.down_proj.weight` `[H, I]` | `mlp.experts.down_proj` `[E, H, I]` | `ffn_down_exps.weight` `[E, H, I]` |
//! | `self_attn.{q,k}_norm.weight` `[h·d]`, `[h_kv·d]` | same | `attn_{q,k}_norm.weight` |
//!
//! Host weights always hold the per-expert names; the fused and merged forms are split at
//! load. A Hugging Face directory may hold one `model.safetensors` or shards listed by
//! `model.safetensors.index.json` (the released OLMoE-1B-7B: ~14 GB in 3 shards; shards are read
//! one at a time).
//!
//! ```
//! use lm::models::olmoe::OlmoeConfig;
//!
//! let cfg = OlmoeConfig::from_hf_json(r#"{"model_type": "olmoe", "vocab_size": 32,
//!     "hidden_size": 16, "intermediate_size": 8, "num_hidden_layers": 2,
//!     "num_attention_heads": 2, "num_key_value_heads": 2, "num_experts": 4,
//!     "num_experts_per_tok": 2, "norm_topk_prob": false, "rms_norm_eps": 1e-5,
//!     "max_position_embeddings": 64, "rope_parameters": {"rope_theta": 10000.0}}"#, "config.json")?;
//! let spec = cfg.spec()?;
//! assert_eq!(spec.moe.unwrap().num_experts, 4);
//! // 2 of 4 experts active per token: the parameter count a token passes through.
//! assert!(spec.active_parameter_count() < spec.parameter_count());
//! # Ok::<(), lm::LmError>(())
//! ```

use std::path::Path;

use serde_json::Value;

use crate::error::{LmError, Result};
use crate::format::gguf::{GgufFile, GgufHeader};
use crate::models::gguf_loader::{
    GgufLayout, arch_usize, common_leaf, expect_architecture, load_tensors, special_ids, vocab_size,
};
use crate::models::hf_dir::{read_checkpoint, read_text};
use crate::models::transformer::{
    Activation, HostTensor, HostWeights, LayerAttention, MoeSpec, NormPlacement, QkNorm,
    TransformerSpec,
};
use crate::nn::rope::{RopeScaling, inv_frequencies};

/// Hyper-parameters of an OLMoE model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OlmoeConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of one expert's MLP.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Context window.
    pub max_position_embeddings: usize,
    /// Experts per layer.
    pub num_experts: usize,
    /// Experts per token the model was trained with.
    pub num_experts_per_tok: usize,
    /// Whether top-k weights are renormalised.
    pub norm_topk_prob: bool,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    pub eos_token_id: Vec<u32>,
}

impl OlmoeConfig {
    /// The architecture the forward pass runs.
    ///
    /// # Errors
    /// An inconsistent configuration (checked by [`TransformerSpec::check`]).
    pub fn spec(&self) -> Result<TransformerSpec> {
        let heads = self.num_attention_heads.max(1);
        if !self.hidden_size.is_multiple_of(heads) {
            return Err(LmError::InvalidModelConfig {
                path: "olmoe config".into(),
                detail: format!(
                    "hidden_size {} must split into num_attention_heads {} heads",
                    self.hidden_size, self.num_attention_heads
                ),
            });
        }
        let d = self.hidden_size / heads;
        let freqs = inv_frequencies(d, self.rope_theta, &RopeScaling::Default)?;
        let spec = TransformerSpec {
            family: "olmoe".into(),
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.num_key_value_heads,
            head_dim: d,
            rms_norm_eps: self.rms_norm_eps,
            max_positions: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            norms: NormPlacement::Pre,
            qk_norm: QkNorm::Full,
            activation: Activation::Silu,
            embed_scale: 1.0,
            attn_scale: 1.0 / (d as f64).sqrt(),
            rope_freqs: vec![freqs],
            layers: vec![
                LayerAttention {
                    rope: 0,
                    window: None
                };
                self.num_hidden_layers
            ],
            moe: Some(MoeSpec {
                num_experts: self.num_experts,
                experts_per_token: self.num_experts_per_tok,
                norm_topk_prob: self.norm_topk_prob,
            }),
        };
        spec.check("olmoe config")?;
        Ok(spec)
    }

    /// Parses a Hugging Face `config.json` of `model_type` `olmoe`. The RoPE base comes from
    /// transformers 5's `rope_parameters.rope_theta` or the older top-level `rope_theta`
    /// (default 10,000); only the `default` RoPE type is accepted. `clip_qkv` (an OLMo option
    /// the released OLMoE leaves `null`) and `attention_bias` are refused when set, since the
    /// forward pass does not implement them.
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the missing or malformed field.
    pub fn from_hf_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |detail: String| LmError::InvalidModelConfig {
            path: origin.into(),
            detail,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let num = |key: &str| -> Result<f64> {
            v.get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| bad(format!("`{key}` is missing or not a number")))
        };
        let int = |key: &str| -> Result<usize> {
            let x = num(key)?;
            if x < 0.0 || x.fract() != 0.0 {
                return Err(bad(format!("`{key}` = {x} is not a non-negative integer")));
            }
            Ok(x as usize)
        };
        let params = v.get("rope_parameters").filter(|p| !p.is_null());
        if let Some(kind) = params
            .or_else(|| v.get("rope_scaling").filter(|p| !p.is_null()))
            .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
            .and_then(Value::as_str)
            && kind != "default"
        {
            return Err(bad(format!(
                "rope_type `{kind}` is not supported for OLMoE (supported: default)"
            )));
        }
        let rope_theta = params
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or_else(|| v.get("rope_theta").and_then(Value::as_f64))
            .unwrap_or(10_000.0);
        if v.get("clip_qkv").is_some_and(|c| !c.is_null()) {
            return Err(bad(
                "`clip_qkv` is set; clipped Q/K/V are not supported".into()
            ));
        }
        if v.get("attention_bias").and_then(Value::as_bool) == Some(true) {
            return Err(bad("`attention_bias` = true is not supported".into()));
        }
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            return Err(bad(format!("hidden_act `{act}` is not supported (silu)")));
        }
        let ids = |key: &str| -> Vec<u32> {
            match v.get(key) {
                Some(Value::Number(n)) => n.as_u64().map(|x| x as u32).into_iter().collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_u64)
                    .map(|x| x as u32)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let heads = int("num_attention_heads")?;
        let cfg = Self {
            vocab_size: int("vocab_size")?,
            hidden_size: int("hidden_size")?,
            intermediate_size: int("intermediate_size")?,
            num_hidden_layers: int("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: match v.get("num_key_value_heads") {
                Some(x) if !x.is_null() => int("num_key_value_heads")?,
                _ => heads,
            },
            rms_norm_eps: num("rms_norm_eps").unwrap_or(1e-5),
            rope_theta,
            max_position_embeddings: int("max_position_embeddings").unwrap_or(4096),
            num_experts: int("num_experts")?,
            num_experts_per_tok: int("num_experts_per_tok")?,
            norm_topk_prob: v
                .get("norm_topk_prob")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            bos_token_id: ids("bos_token_id").first().copied(),
            eos_token_id: ids("eos_token_id"),
        };
        cfg.spec().map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }
}

/// OLMoE's GGUF block leaves → Hugging Face leaves (experts are split separately, see
/// [`gguf_expert_leaf`]).
pub fn gguf_leaf(leaf: &str) -> Option<&'static str> {
    match leaf {
        "ffn_norm.weight" => Some("post_attention_layernorm.weight"),
        "ffn_gate_inp.weight" => Some("mlp.gate.weight"),
        other => common_leaf(other),
    }
}

/// llama.cpp's merged expert tensors → the per-expert Hugging Face leaf.
pub fn gguf_expert_leaf(leaf: &str) -> Option<&'static str> {
    match leaf {
        "ffn_gate_exps.weight" => Some("gate_proj.weight"),
        "ffn_up_exps.weight" => Some("up_proj.weight"),
        "ffn_down_exps.weight" => Some("down_proj.weight"),
        _ => None,
    }
}

/// The configuration from GGUF metadata (`general.architecture = olmoe`). The expert width is
/// `olmoe.expert_feed_forward_length` when present, else `olmoe.feed_forward_length`;
/// `olmoe.expert_weights_norm` (absent in llama.cpp's OLMoE files) sets `norm_topk_prob`.
///
/// # Errors
/// A missing key, named.
pub fn config_from_gguf(header: &GgufHeader) -> Result<OlmoeConfig> {
    expect_architecture(header, "olmoe")?;
    let (bos_token_id, eos_token_id) = special_ids(header)?;
    let u = |k: &str| arch_usize(header, "olmoe", k);
    let heads = u("attention.head_count")?;
    let cfg = OlmoeConfig {
        vocab_size: vocab_size(header, "olmoe")?,
        hidden_size: u("embedding_length")?,
        intermediate_size: u("expert_feed_forward_length").or_else(|_| u("feed_forward_length"))?,
        num_hidden_layers: u("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: header
            .optional("olmoe.attention.head_count_kv", GgufHeader::get_u32)?
            .map_or(heads, |x| x as usize),
        rms_norm_eps: f64::from(header.get_f32("olmoe.attention.layer_norm_rms_epsilon")?),
        rope_theta: header
            .optional("olmoe.rope.freq_base", GgufHeader::get_f32)?
            .map_or(10_000.0, f64::from),
        max_position_embeddings: u("context_length")?,
        num_experts: u("expert_count")?,
        num_experts_per_tok: u("expert_used_count")?,
        norm_topk_prob: header
            .optional("olmoe.expert_weights_norm", GgufHeader::get_bool)?
            .unwrap_or(false),
        tie_word_embeddings: header.tensor("output.weight").is_err(),
        bos_token_id,
        eos_token_id,
    };
    cfg.spec()?;
    Ok(cfg)
}

/// Configuration and de-quantised weights of an OLMoE GGUF file (any block type
/// [`crate::format::dequant`] reads); merged expert tensors are split per expert.
///
/// # Errors
/// Metadata or tensors that do not fit (a merged tensor with the wrong expert count is a
/// [`LmError::WeightShape`] naming it; a missing tensor a [`LmError::WeightKeys`]).
pub fn load_gguf(file: &GgufFile, origin: &str) -> Result<(OlmoeConfig, HostWeights)> {
    let cfg = config_from_gguf(file.header())?;
    let layout = GgufLayout {
        leaf: gguf_leaf,
        permuted_qk: None,
        auxiliary: &[],
        expert_leaf: Some(gguf_expert_leaf),
    };
    let (weights, _) = load_tensors(file, origin, layout)?;
    weights.check(&cfg.spec()?)?;
    Ok((cfg, weights))
}

/// Splits a stacked `[E, rows, cols]` tensor into `E` tensors of `[rows, cols]`.
fn split_experts(t: &HostTensor) -> Vec<HostTensor> {
    let (e, rows, cols) = (t.shape[0], t.shape[1], t.shape[2]);
    (0..e)
        .map(|x| HostTensor {
            shape: vec![rows, cols],
            data: t.data[x * rows * cols..(x + 1) * rows * cols].to_vec(),
        })
        .collect()
}

/// Rewrites transformers 5's fused expert tensors (`mlp.experts.gate_up_proj` `[E, 2I, H]`,
/// gate rows first, and `mlp.experts.down_proj` `[E, H, I]`) into per-expert names, checking
/// their shapes against `cfg`. Per-expert checkpoints pass through unchanged.
///
/// # Errors
/// [`LmError::WeightShape`] naming a fused tensor of the wrong shape (e.g. another expert
/// count).
pub fn unfuse_experts(weights: &mut HostWeights, cfg: &OlmoeConfig) -> Result<()> {
    let (e, i, h) = (cfg.num_experts, cfg.intermediate_size, cfg.hidden_size);
    let fused: Vec<String> = weights
        .tensors
        .keys()
        .filter(|k| {
            k.ends_with(".mlp.experts.gate_up_proj") || k.ends_with(".mlp.experts.down_proj")
        })
        .cloned()
        .collect();
    for name in fused {
        let t = weights.tensors.remove(&name).expect("listed above");
        let gate_up = name.ends_with("gate_up_proj");
        let expected = if gate_up {
            vec![e, 2 * i, h]
        } else {
            vec![e, h, i]
        };
        if t.shape != expected {
            return Err(LmError::WeightShape {
                path: weights.origin.clone().into(),
                name,
                expected,
                found: t.shape,
            });
        }
        let prefix = name
            .strip_suffix(if gate_up { "gate_up_proj" } else { "down_proj" })
            .expect("suffix checked");
        for (x, part) in split_experts(&t).into_iter().enumerate() {
            if gate_up {
                let (g, u) = part.data.split_at(i * h);
                for (leaf, data) in [("gate_proj", g), ("up_proj", u)] {
                    weights.tensors.insert(
                        format!("{prefix}{x}.{leaf}.weight"),
                        HostTensor {
                            shape: vec![i, h],
                            data: data.to_vec(),
                        },
                    );
                }
            } else {
                weights
                    .tensors
                    .insert(format!("{prefix}{x}.down_proj.weight"), part);
            }
        }
    }
    Ok(())
}

/// Configuration and weights of a Hugging Face OLMoE directory: `config.json` and
/// `model.safetensors` or sharded `model.safetensors.index.json`, in the Hub's per-expert
/// layout or transformers 5's fused one. A tied model's `lm_head.weight` copy and
/// `rotary_emb.inv_freq` buffers are dropped.
///
/// # Errors
/// Unreadable or inconsistent files; missing or unexpected keys ([`LmError::WeightKeys`],
/// every key named), wrong shapes ([`LmError::WeightShape`]), a bad index.
pub fn load_hf(dir: &Path) -> Result<(OlmoeConfig, HostWeights)> {
    let path = dir.join("config.json");
    let cfg = OlmoeConfig::from_hf_json(&read_text(&path)?, &path.display().to_string())?;
    let mut weights = read_checkpoint(dir)?;
    weights.tensors.retain(|k, _| {
        !(k.ends_with("rotary_emb.inv_freq") || (cfg.tie_word_embeddings && k == "lm_head.weight"))
    });
    unfuse_experts(&mut weights, &cfg)?;
    weights.check(&cfg.spec()?)?;
    Ok((cfg, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""model_type": "olmoe", "vocab_size": 32, "hidden_size": 16,
        "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 2, "num_experts": 4, "num_experts_per_tok": 2,
        "rms_norm_eps": 1e-5, "max_position_embeddings": 64"#;

    #[test]
    fn config_reads_both_rope_styles_and_refuses_what_is_not_implemented() {
        let v5 = format!(
            r#"{{{BASE}, "rope_parameters": {{"rope_theta": 5000.0, "rope_type": "default"}}}}"#
        );
        let v4 = format!(r#"{{{BASE}, "rope_theta": 5000.0}}"#);
        let a = OlmoeConfig::from_hf_json(&v5, "v5").unwrap();
        let b = OlmoeConfig::from_hf_json(&v4, "v4").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rope_theta, 5000.0);
        assert!(!a.norm_topk_prob);
        for (extra, field) in [
            (r#""clip_qkv": 8.0"#, "clip_qkv"),
            (r#""attention_bias": true"#, "attention_bias"),
            (
                r#""rope_scaling": {"rope_type": "yarn", "factor": 2.0}"#,
                "yarn",
            ),
            (r#""num_experts_per_tok": 9"#, "num_experts_per_tok"),
        ] {
            // A repeated key: the later value wins.
            let text = format!("{{{BASE}, {extra}}}");
            let e = OlmoeConfig::from_hf_json(&text, "cfg.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field) && e.contains("cfg.json"), "{e}");
        }
        let missing = BASE.replace(r#""num_experts": 4,"#, "");
        let e = OlmoeConfig::from_hf_json(&format!("{{{missing}}}"), "c.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("num_experts"), "{e}");
    }

    #[test]
    fn fused_experts_split_into_the_hub_layout() {
        let cfg = OlmoeConfig::from_hf_json(&format!("{{{BASE}}}"), "c").unwrap();
        let spec = cfg.spec().unwrap();
        let per_expert = HostWeights::random(&spec, 3, 0.1, 0.1);
        // Fuse layer 0 and 1 the way transformers 5 stores them.
        let mut fused = per_expert.clone();
        for l in 0..2 {
            let p = format!("model.layers.{l}.mlp.experts");
            let (mut gu, mut down) = (Vec::new(), Vec::new());
            for e in 0..4 {
                for leaf in ["gate_proj", "up_proj"] {
                    gu.extend(
                        fused
                            .tensors
                            .remove(&format!("{p}.{e}.{leaf}.weight"))
                            .unwrap()
                            .data,
                    );
                }
                down.extend(
                    fused
                        .tensors
                        .remove(&format!("{p}.{e}.down_proj.weight"))
                        .unwrap()
                        .data,
                );
            }
            fused.tensors.insert(
                format!("{p}.gate_up_proj"),
                HostTensor {
                    shape: vec![4, 16, 16],
                    data: gu,
                },
            );
            fused.tensors.insert(
                format!("{p}.down_proj"),
                HostTensor {
                    shape: vec![4, 16, 8],
                    data: down,
                },
            );
        }
        let mut unfused = fused.clone();
        unfuse_experts(&mut unfused, &cfg).unwrap();
        assert_eq!(unfused.tensors, per_expert.tensors);
        // Another expert count in the fused tensor names it.
        let mut wrong = fused;
        let t = wrong
            .tensors
            .get_mut("model.layers.1.mlp.experts.down_proj")
            .unwrap();
        t.shape = vec![2, 16, 16];
        let e = unfuse_experts(&mut wrong, &cfg).unwrap_err().to_string();
        assert!(e.contains("model.layers.1.mlp.experts.down_proj"), "{e}");
    }
}
