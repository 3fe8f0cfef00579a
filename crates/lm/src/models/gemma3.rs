//! The Gemma 3 family (text models: 270M, 1B, and the text part of the larger ones).
//!
//! Architecture (Gemma Team 2025; transformers `modeling_gemma3.py`), as switches of
//! [`crate::models::transformer::TransformerSpec`]:
//! * embeddings × `√hidden` (rounded to f32), tied LM head, no logit soft-capping;
//! * sandwich norms: RMSNorm before *and* after attention and the MLP; Gemma's norms compute
//!   `x̂ · (1 + w)`: GGUF files store `1 + w` already (llama.cpp's converter adds it), Hugging
//!   Face checkpoints store `w` and [`load_hf_weights`] adds the 1;
//! * per-head RMSNorm of queries and keys before RoPE; attention scaled by
//!   `query_pre_attn_scalar^(−½)`; `head_dim` independent of `hidden / heads` (270M: 640 wide,
//!   4 heads of 256, 1 KV head);
//! * GeGLU MLP with the tanh GELU;
//! * local layers: sliding-window attention (a key at `p₀` is hidden from the query at `p₁` iff
//!   `p₁ − p₀ ≥ window`, 512 for 270M) with RoPE base 10,000; every 6th layer (5, 11, 17, …) is
//!   global: full causal attention, RoPE base 1,000,000. The local base is not in GGUF
//!   metadata (llama.cpp hard-codes 10,000) and neither is the layer pattern (llama.cpp: every
//!   6th); Hugging Face configs carry both (`layer_types`, `rope_parameters` or
//!   `rope_local_base_freq`);
//! * rotate-half RoPE on un-permuted Q/K rows (llama.cpp's converter does not permute Gemma).
//!
//! | Hugging Face name | GGUF name |
//! |---|---|
//! | `model.layers.{i}.input_layernorm.weight` | `blk.{i}.attn_norm.weight` |
//! | `model.layers.{i}.self_attn.{q,k}_norm.weight` | `blk.{i}.attn_{q,k}_norm.weight` |
//! | `model.layers.{i}.post_attention_layernorm.weight` | `blk.{i}.post_attention_norm.weight` |
//! | `model.layers.{i}.pre_feedforward_layernorm.weight` | `blk.{i}.ffn_norm.weight` |
//! | `model.layers.{i}.post_feedforward_layernorm.weight` | `blk.{i}.post_ffw_norm.weight` |
//! | other names | as Llama ([`crate::models::llama`]) |

use std::path::Path;

use serde_json::Value;

use crate::error::{LmError, Result};
use crate::format::gguf::{GgufFile, GgufHeader};
use crate::models::gguf_loader::{
    GgufLayout, arch_usize, common_leaf, expect_architecture, load_tensors, special_ids, vocab_size,
};
use crate::models::transformer::{
    Activation, HostWeights, LayerAttention, NormPlacement, QkNorm, TransformerSpec,
};
use crate::nn::rope::{RopeScaling, inv_frequencies};

/// RoPE base of Gemma 3's local (sliding-window) layers when the file does not say.
pub const DEFAULT_LOCAL_ROPE_BASE: f64 = 10_000.0;
/// Every `GLOBAL_LAYER_PERIOD`-th layer is global when the file does not list layer types.
pub const GLOBAL_LAYER_PERIOD: usize = 6;

/// Hyper-parameters of a Gemma 3 text model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gemma3Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base of the global layers.
    pub rope_theta: f64,
    /// RoPE base of the local layers.
    pub rope_local_base_freq: f64,
    /// Sliding window of the local layers.
    pub sliding_window: usize,
    /// Per layer: `true` for global (full) attention, `false` for sliding-window attention.
    pub global_layers: Vec<bool>,
    /// Attention scores are scaled by `query_pre_attn_scalar^(−½)`.
    pub query_pre_attn_scalar: f64,
    /// Context window.
    pub max_position_embeddings: usize,
    /// Beginning-of-sequence token.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    pub eos_token_id: Vec<u32>,
}

impl Gemma3Config {
    /// The architecture the forward pass runs.
    ///
    /// # Errors
    /// An inconsistent configuration (checked by [`TransformerSpec::check`]).
    pub fn spec(&self) -> Result<TransformerSpec> {
        let d = self.head_dim;
        let local = inv_frequencies(d, self.rope_local_base_freq, &RopeScaling::Default)?;
        let global = inv_frequencies(d, self.rope_theta, &RopeScaling::Default)?;
        let spec = TransformerSpec {
            family: "gemma3".into(),
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.num_key_value_heads,
            head_dim: d,
            rms_norm_eps: self.rms_norm_eps,
            max_positions: self.max_position_embeddings,
            tie_word_embeddings: true,
            norms: NormPlacement::Sandwich,
            qk_norm: QkNorm::PerHead,
            activation: Activation::GeluTanh,
            // transformers: torch.tensor(hidden ** 0.5) in the model dtype.
            embed_scale: (self.hidden_size as f64).sqrt() as f32,
            attn_scale: self.query_pre_attn_scalar.powf(-0.5),
            moe: None,
            rope_freqs: vec![local, global],
            layers: self
                .global_layers
                .iter()
                .map(|&g| LayerAttention {
                    rope: usize::from(g),
                    window: (!g).then_some(self.sliding_window),
                })
                .collect(),
        };
        spec.check("gemma3 config")?;
        Ok(spec)
    }

    /// Parses a Hugging Face `config.json` of `model_type` `gemma3_text` (or a multimodal
    /// `gemma3` one, whose `text_config` is read). RoPE bases come from transformers 5's
    /// `rope_parameters` (`sliding_attention` / `full_attention`) or from `rope_theta` +
    /// `rope_local_base_freq`; layer types from `layer_types` or `sliding_window_pattern`.
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the missing or malformed field.
    pub fn from_hf_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |detail: String| LmError::InvalidModelConfig {
            path: origin.into(),
            detail,
        };
        let root: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let v = root.get("text_config").unwrap_or(&root);
        let num = |key: &str| -> Result<f64> {
            v.get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| bad(format!("`{key}` is missing or not a number")))
        };
        let int = |key: &str| -> Result<usize> { num(key).map(|x| x as usize) };
        let layers = int("num_hidden_layers")?;
        let global_layers = match v.get("layer_types").and_then(Value::as_array) {
            Some(types) => types
                .iter()
                .map(|t| match t.as_str() {
                    Some("full_attention") => Ok(true),
                    Some("sliding_attention") => Ok(false),
                    other => Err(bad(format!("layer_types holds {other:?}"))),
                })
                .collect::<Result<Vec<bool>>>()?,
            None => {
                let period = v
                    .get("sliding_window_pattern")
                    .and_then(Value::as_u64)
                    .map_or(GLOBAL_LAYER_PERIOD, |p| p as usize);
                (0..layers).map(|i| (i + 1) % period.max(1) == 0).collect()
            }
        };
        if global_layers.len() != layers {
            return Err(bad(format!(
                "layer_types lists {} layers, num_hidden_layers is {layers}",
                global_layers.len()
            )));
        }
        let params = v.get("rope_parameters").filter(|p| !p.is_null());
        let theta_of = |kind: &str| {
            params
                .and_then(|p| p.get(kind))
                .and_then(|p| p.get("rope_theta"))
                .and_then(Value::as_f64)
        };
        let rope_theta = theta_of("full_attention")
            .or_else(|| v.get("rope_theta").and_then(Value::as_f64))
            .unwrap_or(1_000_000.0);
        let rope_local_base_freq = theta_of("sliding_attention")
            .or_else(|| v.get("rope_local_base_freq").and_then(Value::as_f64))
            .unwrap_or(DEFAULT_LOCAL_ROPE_BASE);
        let ids = |key: &str| -> Vec<u32> {
            match root.get(key).or_else(|| v.get(key)) {
                Some(Value::Number(n)) => n.as_u64().map(|x| x as u32).into_iter().collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_u64())
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
            num_attention_heads: heads,
            num_key_value_heads: int("num_key_value_heads")?,
            head_dim: int("head_dim")?,
            rms_norm_eps: num("rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            rope_local_base_freq,
            sliding_window: int("sliding_window")?,
            global_layers,
            query_pre_attn_scalar: num("query_pre_attn_scalar")?,
            max_position_embeddings: int("max_position_embeddings").unwrap_or(32_768),
            bos_token_id: ids("bos_token_id").first().copied(),
            eos_token_id: ids("eos_token_id"),
        };
        cfg.spec().map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }
}

/// Gemma 3's per-block GGUF leaves (the sandwich norms; the rest as [`common_leaf`]).
pub fn gguf_leaf(leaf: &str) -> Option<&'static str> {
    match leaf {
        "post_attention_norm.weight" => Some("post_attention_layernorm.weight"),
        "ffn_norm.weight" => Some("pre_feedforward_layernorm.weight"),
        "post_ffw_norm.weight" => Some("post_feedforward_layernorm.weight"),
        other => common_leaf(other),
    }
}

/// Reads the configuration from the `gemma3.*` metadata keys (`embedding_length`,
/// `block_count`, `feed_forward_length`, `attention.head_count(_kv)`, `attention.key_length`,
/// `attention.layer_norm_rms_epsilon`, `attention.sliding_window`, `rope.freq_base`,
/// `context_length`), with llama.cpp's fixed local RoPE base and layer pattern.
///
/// # Errors
/// Another architecture, a missing key (named), or an inconsistent configuration.
pub fn config_from_gguf(header: &GgufHeader) -> Result<Gemma3Config> {
    expect_architecture(header, "gemma3")?;
    let (bos_token_id, eos_token_id) = special_ids(header)?;
    let u = |k: &str| arch_usize(header, "gemma3", k);
    let layers = u("block_count")?;
    let head_dim = u("attention.key_length")?;
    let cfg = Gemma3Config {
        vocab_size: vocab_size(header, "gemma3")?,
        hidden_size: u("embedding_length")?,
        intermediate_size: u("feed_forward_length")?,
        num_attention_heads: u("attention.head_count")?,
        num_key_value_heads: u("attention.head_count_kv")?,
        head_dim,
        rms_norm_eps: f64::from(header.get_f32("gemma3.attention.layer_norm_rms_epsilon")?),
        rope_theta: header
            .optional("gemma3.rope.freq_base", GgufHeader::get_f32)?
            .map_or(1_000_000.0, f64::from),
        rope_local_base_freq: DEFAULT_LOCAL_ROPE_BASE,
        sliding_window: u("attention.sliding_window")?,
        global_layers: (0..layers)
            .map(|i| (i + 1) % GLOBAL_LAYER_PERIOD == 0)
            .collect(),
        // llama.cpp: the scale is 1/√head_dim (query_pre_attn_scalar = head_dim for Gemma 3).
        query_pre_attn_scalar: head_dim as f64,
        max_position_embeddings: u("context_length")?,
        bos_token_id,
        eos_token_id,
    };
    cfg.spec()?;
    Ok(cfg)
}

/// De-quantises every tensor of a Gemma 3 GGUF into Hugging Face names (norm weights keep the
/// file's `1 + w`), checked against the configuration.
///
/// # Errors
/// Unknown tensors, shapes that do not fit the metadata (naming the tensor).
pub fn load_gguf(file: &GgufFile, origin: &str) -> Result<(Gemma3Config, HostWeights)> {
    let cfg = config_from_gguf(file.header())?;
    let layout = GgufLayout {
        leaf: gguf_leaf,
        permuted_qk: None,
        auxiliary: &[],
        expert_leaf: None,
    };
    let (weights, _) = load_tensors(file, origin, layout)?;
    weights.check(&cfg.spec()?)?;
    Ok((cfg, weights))
}

/// Loads `dir/config.json` and `dir/model.safetensors` of a Hugging Face Gemma 3 checkpoint,
/// adding Gemma's `+1` to every norm weight so that they mean what GGUF's do.
///
/// # Errors
/// As [`crate::models::hf_dir::load_weights`], plus configuration errors.
pub fn load_hf_weights(dir: &Path) -> Result<(Gemma3Config, HostWeights)> {
    let path = dir.join("config.json");
    let text = crate::models::hf_dir::read_text(&path)?;
    let cfg = Gemma3Config::from_hf_json(&text, &path.display().to_string())?;
    let mut weights = crate::models::hf_dir::load_weights(dir, &cfg.spec()?)?;
    for (name, t) in weights.tensors.iter_mut() {
        if name.ends_with("norm.weight") {
            t.data.iter_mut().for_each(|w| *w += 1.0);
        }
    }
    Ok((cfg, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_config_reads_layer_types_and_both_rope_styles() {
        let v5 = r#"{"model_type": "gemma3_text", "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 6, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-6, "sliding_window": 3,
            "query_pre_attn_scalar": 4, "max_position_embeddings": 64,
            "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
            "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                            "sliding_attention", "sliding_attention", "full_attention"],
            "bos_token_id": 2, "eos_token_id": [1, 106]}"#;
        let c = Gemma3Config::from_hf_json(v5, "config.json").unwrap();
        assert_eq!(
            c.global_layers,
            vec![false, false, false, false, false, true]
        );
        assert_eq!((c.rope_local_base_freq, c.rope_theta), (1e4, 1e6));
        assert_eq!(c.eos_token_id, vec![1, 106]);
        let spec = c.spec().unwrap();
        assert_eq!(spec.layers[5].window, None);
        assert_eq!(spec.layers[0].window, Some(3));
        assert_eq!(spec.layers[0].rope, 0);
        assert_eq!(spec.layers[5].rope, 1);
        assert_eq!(spec.attn_scale, 0.5);
        let v4 = v5
            .replace(r#""rope_parameters""#, r#""unused""#)
            .replace(r#""layer_types""#, r#""unused2""#)
            .replace(
                r#""bos_token_id""#,
                r#""rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6, "bos_token_id""#,
            );
        let c4 = Gemma3Config::from_hf_json(&v4, "config.json").unwrap();
        assert_eq!(c4, c);
        let broken = v5.replace(r#""head_dim": 4,"#, "");
        let e = Gemma3Config::from_hf_json(&broken, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("head_dim") && e.contains("cfg.json"), "{e}");
    }

    #[test]
    fn gguf_leaves_map_the_sandwich_norms() {
        assert_eq!(
            gguf_leaf("ffn_norm.weight"),
            Some("pre_feedforward_layernorm.weight")
        );
        assert_eq!(
            gguf_leaf("attn_q_norm.weight"),
            Some("self_attn.q_norm.weight")
        );
        assert_eq!(gguf_leaf("rope_freqs.weight"), None);
    }
}
