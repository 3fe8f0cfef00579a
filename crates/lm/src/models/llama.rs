//! The Llama family (Llama 2/3, SmolLM2, …): configuration from Hugging Face `config.json` or
//! GGUF metadata, and the GGUF tensor names.
//!
//! Architecture (Touvron et al. 2023; Hugging Face `modeling_llama.py`): token embedding →
//! `L` × [RMSNorm → grouped-query self-attention with rotary positions → residual → RMSNorm →
//! SwiGLU MLP → residual] → RMSNorm → LM head (tied to the embedding when
//! `tie_word_embeddings`). The forward pass is [`crate::models::transformer::Transformer`] with
//! [`LlamaConfig::spec`]. Llama 3.1/3.2's `llama3` RoPE scaling is read from `rope_scaling`
//! (published checkpoints) or `rope_parameters` (transformers 5), and from GGUF's
//! `rope_freqs.weight`.
//!
//! | Hugging Face name | GGUF name | shape (PyTorch) |
//! |---|---|---|
//! | `model.embed_tokens.weight` | `token_embd.weight` | `[vocab, hidden]` |
//! | `model.layers.{i}.input_layernorm.weight` | `blk.{i}.attn_norm.weight` | `[hidden]` |
//! | `model.layers.{i}.self_attn.{q,k,v}_proj.weight` | `blk.{i}.attn_{q,k,v}.weight` (Q/K rows permuted) | `[h·d, hidden]`, `[h_kv·d, hidden]` ×2 |
//! | `model.layers.{i}.self_attn.o_proj.weight` | `blk.{i}.attn_output.weight` | `[hidden, h·d]` |
//! | `model.layers.{i}.post_attention_layernorm.weight` | `blk.{i}.ffn_norm.weight` | `[hidden]` |
//! | `model.layers.{i}.mlp.{gate,up,down}_proj.weight` | `blk.{i}.ffn_{gate,up,down}.weight` | `[ffn, hidden]` ×2, `[hidden, ffn]` |
//! | `model.norm.weight` | `output_norm.weight` | `[hidden]` |
//! | `lm_head.weight` (absent when tied) | `output.weight` | `[vocab, hidden]` |
//! | (RoPE frequencies) | `rope_freqs.weight` (Llama 3 only) | `[d / 2]` |

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

/// Hyper-parameters of a Llama model (the fields of Hugging Face's `config.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head; `None`: `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RoPE frequency scaling (`None`: plain). Serialised in the published-checkpoint style
    /// (`rope_scaling`); [`LlamaConfig::from_hf_json`] also reads transformers 5's
    /// `rope_parameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Context window.
    pub max_position_embeddings: usize,
    /// Whether the LM head shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    #[serde(default, deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<u32>,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u32>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
        None,
    }
    Ok(
        match <Option<OneOrMany> as serde::Deserialize>::deserialize(d)? {
            Some(OneOrMany::One(x)) => vec![x],
            Some(OneOrMany::Many(v)) => v,
            Some(OneOrMany::None) | None => Vec::new(),
        },
    )
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Parses a Hugging Face `config.json` (`origin` names the file in errors). RoPE scaling
    /// is read from `rope_scaling` (`rope_type` or the older `type`) or from transformers 5's
    /// `rope_parameters` (which then also holds `rope_theta`); `default` and `llama3` are
    /// supported.
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the field: malformed JSON, a missing size, an
    /// unsupported `rope_type`, or an inconsistent configuration.
    pub fn from_hf_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |detail: String| LmError::InvalidModelConfig {
            path: origin.into(),
            detail,
        };
        let mut value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let obj = value
            .as_object_mut()
            .ok_or_else(|| bad("config.json is not a JSON object".into()))?;
        let params = obj.remove("rope_parameters").filter(|v| !v.is_null());
        let scaling = obj.remove("rope_scaling").filter(|v| !v.is_null());
        if let Some(theta) = params.as_ref().and_then(|p| p.get("rope_theta")).cloned() {
            obj.insert("rope_theta".into(), theta);
        }
        let mut cfg: LlamaConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let rope = params.or(scaling);
        cfg.rope_scaling = match rope {
            None => None,
            Some(r) => parse_rope_scaling(&r, origin)?,
        };
        cfg.check(origin)?;
        Ok(cfg)
    }

    /// The architecture the forward pass runs.
    ///
    /// # Errors
    /// An invalid RoPE scaling ([`inv_frequencies`]).
    pub fn spec(&self) -> Result<TransformerSpec> {
        let d = self.head_dim();
        let scaling = self.rope_scaling.clone().unwrap_or(RopeScaling::Default);
        let freqs = inv_frequencies(d, self.rope_theta, &scaling)?;
        Ok(TransformerSpec {
            family: "llama".into(),
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
            qk_norm: QkNorm::None,
            activation: Activation::Silu,
            embed_scale: 1.0,
            attn_scale: 1.0 / (d as f64).sqrt(),
            moe: None,
            rope_freqs: vec![freqs],
            layers: vec![
                LayerAttention {
                    rope: 0,
                    window: None
                };
                self.num_hidden_layers
            ],
        })
    }

    /// Checks internal consistency; `origin` names the file for the error: the heads must
    /// split `hidden_size` (unless `head_dim` is given), then everything
    /// [`TransformerSpec::check`] checks (sizes, grouped heads, RoPE frequencies).
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the field.
    pub fn check(&self, origin: &str) -> Result<()> {
        if self.num_attention_heads == 0
            || self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(LmError::InvalidModelConfig {
                path: origin.into(),
                detail: format!(
                    "hidden_size {} must split into num_attention_heads {} heads (or give head_dim)",
                    self.hidden_size, self.num_attention_heads
                ),
            });
        }
        self.spec()?.check(origin)
    }
}

/// Reads a `rope_scaling` / `rope_parameters` object.
fn parse_rope_scaling(v: &Value, origin: &str) -> Result<Option<RopeScaling>> {
    let bad = |detail: String| LmError::InvalidModelConfig {
        path: origin.into(),
        detail,
    };
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| -> Result<f64> {
        v.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(format!("rope scaling `{kind}` needs a number `{key}`")))
    };
    match kind {
        "default" => Ok(None),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        })),
        other => Err(bad(format!(
            "rope_type `{other}` is not supported (supported: default, llama3)"
        ))),
    }
}

/// Llama's per-block GGUF leaves ([`common_leaf`] plus `ffn_norm` → `post_attention_layernorm`).
pub fn gguf_leaf(leaf: &str) -> Option<&'static str> {
    match leaf {
        "ffn_norm.weight" => Some("post_attention_layernorm.weight"),
        "attn_q_norm.weight" | "attn_k_norm.weight" => None,
        other => common_leaf(other),
    }
}

/// Reads the configuration from the `llama.*` metadata keys (`embedding_length`,
/// `block_count`, `feed_forward_length`, `attention.head_count(_kv)`, `attention.key_length`,
/// `attention.layer_norm_rms_epsilon`, `rope.freq_base`, `context_length`) and the tokenizer's
/// special ids. RoPE scaling comes from the `rope_freqs.weight` tensor ([`load_gguf`]).
///
/// # Errors
/// Another architecture, a missing key, or an inconsistent configuration.
pub fn config_from_gguf(header: &GgufHeader) -> Result<LlamaConfig> {
    expect_architecture(header, "llama")?;
    let (bos_token_id, eos_token_id) = special_ids(header)?;
    let u = |k: &str| arch_usize(header, "llama", k);
    let opt = |k: &str| {
        header
            .optional(&format!("llama.{k}"), GgufHeader::get_u32)
            .map(|v| v.map(|x| x as usize))
    };
    let heads = u("attention.head_count")?;
    let hidden = u("embedding_length")?;
    let head_dim = match opt("attention.key_length")? {
        Some(d) => Some(d),
        None => opt("rope.dimension_count")?,
    }
    .filter(|&d| d != hidden / heads.max(1));
    let cfg = LlamaConfig {
        vocab_size: vocab_size(header, "llama")?,
        hidden_size: hidden,
        intermediate_size: u("feed_forward_length")?,
        num_hidden_layers: u("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: opt("attention.head_count_kv")?.unwrap_or(heads),
        head_dim,
        rms_norm_eps: f64::from(header.get_f32("llama.attention.layer_norm_rms_epsilon")?),
        rope_theta: header
            .optional("llama.rope.freq_base", GgufHeader::get_f32)?
            .map_or(10_000.0, f64::from),
        rope_scaling: None,
        max_position_embeddings: u("context_length")?,
        tie_word_embeddings: header.tensor("output.weight").is_err(),
        bos_token_id,
        eos_token_id,
    };
    cfg.check("gguf metadata")?;
    Ok(cfg)
}

/// De-quantises every tensor of a Llama GGUF into Hugging Face layout, Q/K rows un-permuted;
/// `rope_freqs.weight` becomes [`RopeScaling::FreqFactors`].
///
/// A Llama 3 vocabulary (`tokenizer.ggml.pre = llama-bpe`) with a context beyond Llama 3.0's
/// 8,192 positions is a Llama 3.1/3.2 model, whose converter always writes `rope_freqs.weight`:
/// its absence is an error rather than silently unscaled positions.
///
/// # Errors
/// Unknown tensors, shapes that do not fit the metadata (naming the tensor), a missing
/// `rope_freqs.weight` as above.
pub fn load_gguf(file: &GgufFile, origin: &str) -> Result<(LlamaConfig, HostWeights)> {
    let header = file.header();
    let mut cfg = config_from_gguf(header)?;
    let d = cfg.head_dim();
    let layout = GgufLayout {
        leaf: gguf_leaf,
        permuted_qk: Some((cfg.num_attention_heads, cfg.num_key_value_heads, d)),
        auxiliary: &["rope_freqs.weight"],
        expert_leaf: None,
    };
    let (weights, aux) = load_tensors(file, origin, layout)?;
    match aux.get("rope_freqs.weight") {
        Some(t) => cfg.rope_scaling = Some(RopeScaling::FreqFactors(t.data.clone())),
        None => {
            let llama3 = header
                .get_str("tokenizer.ggml.pre")
                .is_ok_and(|p| p == "llama-bpe");
            if llama3 && cfg.max_position_embeddings > 8192 {
                return Err(LmError::WeightKeys {
                    path: origin.into(),
                    missing: vec!["rope_freqs.weight".into()],
                    unexpected: Vec::new(),
                });
            }
        }
    }
    weights.check(&cfg.spec()?)?;
    Ok((cfg, weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::transformer::HostTensor;

    pub(crate) fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            vocab_size: 11,
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 32,
            tie_word_embeddings: true,
            bos_token_id: Some(1),
            eos_token_id: vec![2],
        }
    }

    #[test]
    fn config_parses_hf_json_and_rejects_inconsistency() {
        let json = r#"{"vocab_size": 11, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 32, "eos_token_id": [2, 3]}"#;
        let c = LlamaConfig::from_hf_json(json, "config.json").unwrap();
        assert_eq!(c.eos_token_id, vec![2, 3]);
        assert_eq!(c.rope_scaling, None);
        assert_eq!(c.rope_theta, 10_000.0);
        c.check("config.json").unwrap();
        let bad = LlamaConfig {
            num_key_value_heads: 3,
            ..tiny_config()
        };
        assert!(
            bad.check("config.json")
                .unwrap_err()
                .to_string()
                .contains("num_key_value_heads")
        );
    }

    #[test]
    fn rope_scaling_reads_both_config_styles() {
        let base = r#""vocab_size": 11, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 32"#;
        let scaling = r#"{"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3""#;
        let v5 = format!(r#"{{{base}, "rope_parameters": {scaling}, "rope_theta": 500000.0}}}}"#);
        let v4 = format!(r#"{{{base}, "rope_theta": 500000.0, "rope_scaling": {scaling}}}}}"#);
        let a = LlamaConfig::from_hf_json(&v5, "v5").unwrap();
        let b = LlamaConfig::from_hf_json(&v4, "v4").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rope_theta, 500_000.0);
        assert!(
            matches!(a.rope_scaling, Some(RopeScaling::Llama3 { factor, .. }) if factor == 32.0)
        );
        let yarn = format!(r#"{{{base}, "rope_scaling": {{"rope_type": "yarn", "factor": 4.0}}}}"#);
        let e = LlamaConfig::from_hf_json(&yarn, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("yarn") && e.contains("cfg.json"), "{e}");
        let missing =
            format!(r#"{{{base}, "rope_scaling": {{"rope_type": "llama3", "factor": 4.0}}}}"#);
        let e = LlamaConfig::from_hf_json(&missing, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("low_freq_factor"), "{e}");
    }

    #[test]
    fn weight_check_names_missing_and_unexpected_keys() {
        let cfg = tiny_config();
        let spec = cfg.spec().unwrap();
        let mut w = HostWeights {
            origin: "mem".into(),
            ..Default::default()
        };
        for (name, shape) in HostWeights::expected(&spec) {
            let n = shape.iter().product();
            w.tensors.insert(
                name,
                HostTensor {
                    shape,
                    data: vec![0.1; n],
                },
            );
        }
        w.check(&spec).unwrap();
        w.tensors.remove("model.norm.weight");
        w.tensors.insert(
            "extra".into(),
            HostTensor {
                shape: vec![1],
                data: vec![0.0],
            },
        );
        let e = w.check(&spec).unwrap_err().to_string();
        assert!(
            e.contains("model.norm.weight") && e.contains("extra"),
            "{e}"
        );
    }
}
