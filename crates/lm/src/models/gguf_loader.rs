//! GGUF files of decoder families into Hugging Face names and layout, shared by every family.
//!
//! A family supplies its name table (GGUF leaf → Hugging Face leaf, see
//! [`crate::models::llama::gguf_leaf`], [`crate::models::gemma3::gguf_leaf`]); this module reads every tensor,
//! de-quantises it to f32 ([`crate::format::dequant`]), reverses GGUF's `ne` order into PyTorch's shape
//! (`ne[0]` is the fastest axis, so `[ne1, ne0]` row-major is the same memory), un-permutes the
//! Q/K rows of families whose converter permutes them for interleaved RoPE
//! ([`crate::nn::rope::unpermute_rows`]), and sets aside the auxiliary tensors a family asks for
//! (`rope_freqs.weight`). A tensor that maps to nothing is an error naming it: nothing is
//! silently ignored.

use std::collections::BTreeMap;

use crate::error::{LmError, Result};
use crate::format::gguf::{GgufFile, GgufHeader};
use crate::models::transformer::{HostTensor, HostWeights};
use crate::nn::rope::unpermute_rows;

/// The Hugging Face name of a GGUF tensor, given the family's per-block leaf table, or `None`
/// for tensors the family does not use. The names outside blocks are common to every family.
pub fn hf_name(gguf_name: &str, leaf: fn(&str) -> Option<&'static str>) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (i, l) = rest.split_once('.')?;
    let i: usize = i.parse().ok()?;
    Some(format!("model.layers.{i}.{}", leaf(l)?))
}

/// Per-block GGUF leaves every decoder family here names the same way.
pub fn common_leaf(leaf: &str) -> Option<&'static str> {
    Some(match leaf {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_q_norm.weight" => "self_attn.q_norm.weight",
        "attn_k_norm.weight" => "self_attn.k_norm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    })
}

/// How to read one family's tensors.
#[derive(Debug, Clone, Copy)]
pub struct GgufLayout<'a> {
    /// The family's block leaf table.
    pub leaf: fn(&str) -> Option<&'static str>,
    /// `Some((query heads, key/value heads, head_dim))` when Q/K rows are stored permuted for
    /// interleaved RoPE (llama.cpp's `llama` architecture).
    pub permuted_qk: Option<(usize, usize, usize)>,
    /// GGUF tensors kept aside by their GGUF name instead of mapped (e.g. `rope_freqs.weight`).
    pub auxiliary: &'a [&'a str],
    /// Mixture-of-experts families: block leaves of llama.cpp's merged expert tensors
    /// (`ffn_gate_exps.weight`, PyTorch shape `[E, rows, cols]`) → the per-expert Hugging Face
    /// leaf; each is split into `model.layers.{i}.mlp.experts.{e}.{leaf}`.
    pub expert_leaf: Option<fn(&str) -> Option<&'static str>>,
}

/// `blk.{i}.{leaf}` → `(i, leaf)`.
fn block_leaf(gguf_name: &str) -> Option<(usize, &str)> {
    let rest = gguf_name.strip_prefix("blk.")?;
    let (i, l) = rest.split_once('.')?;
    Some((i.parse().ok()?, l))
}

/// De-quantises every tensor of `file` into Hugging Face names; returns the weights and the
/// auxiliary tensors found.
///
/// # Errors
/// Tensors with no Hugging Face counterpart ([`LmError::WeightKeys`] naming them all), and any
/// de-quantisation error (naming the tensor's type).
pub fn load_tensors(
    file: &GgufFile,
    origin: &str,
    layout: GgufLayout<'_>,
) -> Result<(HostWeights, BTreeMap<String, HostTensor>)> {
    let header = file.header();
    let mut weights = HostWeights {
        origin: origin.to_string(),
        ..Default::default()
    };
    let mut aux = BTreeMap::new();
    let mut unknown = Vec::new();
    for info in header.tensors() {
        let shape: Vec<usize> = info.dims.iter().rev().map(|&x| x as usize).collect();
        if layout.auxiliary.contains(&info.name.as_str()) {
            let data = file.dequantize_info(info)?;
            aux.insert(info.name.clone(), HostTensor { shape, data });
            continue;
        }
        if let Some((block, leaf)) = block_leaf(&info.name)
            && let Some(expert_leaf) = layout.expert_leaf.and_then(|f| f(leaf))
        {
            if shape.len() != 3 {
                return Err(LmError::WeightShape {
                    path: origin.into(),
                    name: info.name.clone(),
                    expected: vec![0, 0, 0],
                    found: shape,
                });
            }
            let data = file.dequantize_info(info)?;
            let (rows, cols) = (shape[1], shape[2]);
            // Dimensions are non-zero and their product fits (checked when the header was
            // read), so `rows * cols` is a non-zero divisor of the data's length.
            for (e, part) in data.chunks_exact(rows * cols).enumerate() {
                weights.tensors.insert(
                    format!("model.layers.{block}.mlp.experts.{e}.{expert_leaf}"),
                    HostTensor {
                        shape: vec![rows, cols],
                        data: part.to_vec(),
                    },
                );
            }
            continue;
        }
        let Some(name) = hf_name(&info.name, layout.leaf) else {
            unknown.push(info.name.clone());
            continue;
        };
        let mut data = file.dequantize_info(info)?;
        let cols = shape.last().copied().unwrap_or(1);
        if let Some((nh, nkv, d)) = layout.permuted_qk {
            let heads = if info.name.ends_with("attn_q.weight") {
                Some(nh)
            } else if info.name.ends_with("attn_k.weight") {
                Some(nkv)
            } else {
                None
            };
            if let Some(heads) = heads {
                // Head counts come from metadata: their product is checked, not trusted.
                let rows = heads.checked_mul(d);
                if shape.len() != 2 || rows != Some(shape[0]) {
                    return Err(LmError::WeightShape {
                        path: origin.into(),
                        name: info.name.clone(),
                        expected: vec![rows.unwrap_or(usize::MAX), cols],
                        found: shape,
                    });
                }
                data = unpermute_rows(&data, heads, d, cols);
            }
        }
        weights.tensors.insert(name, HostTensor { shape, data });
    }
    if !unknown.is_empty() {
        return Err(LmError::WeightKeys {
            path: origin.into(),
            missing: Vec::new(),
            unexpected: unknown,
        });
    }
    Ok((weights, aux))
}

/// Reads `{arch}.{key}` as a `usize`.
///
/// # Errors
/// [`LmError::MissingKey`] / [`LmError::WrongValueType`] naming the key.
pub fn arch_usize(header: &GgufHeader, arch: &str, key: &str) -> Result<usize> {
    header.get_u32(&format!("{arch}.{key}")).map(|v| v as usize)
}

/// The vocabulary size: `{arch}.vocab_size`, else the length of `tokenizer.ggml.tokens`.
///
/// # Errors
/// Neither key present.
pub fn vocab_size(header: &GgufHeader, arch: &str) -> Result<usize> {
    match header.optional(&format!("{arch}.vocab_size"), GgufHeader::get_u32)? {
        Some(v) => Ok(v as usize),
        None => Ok(header.get_str_array("tokenizer.ggml.tokens")?.len()),
    }
}

/// Checks `general.architecture`.
///
/// # Errors
/// [`LmError::InvalidModelConfig`] naming the architecture found and the one expected.
pub fn expect_architecture(header: &GgufHeader, expected: &str) -> Result<()> {
    let arch = header.architecture()?;
    if arch != expected {
        return Err(LmError::InvalidModelConfig {
            path: crate::error::UNNAMED_GGUF.into(),
            detail: format!("general.architecture is `{arch}`, expected `{expected}`"),
        });
    }
    Ok(())
}

/// `tokenizer.ggml.bos_token_id` and the EOS ids (`tokenizer.ggml.eos_token_id`), when present.
///
/// # Errors
/// A present id that is not an integer in u32 range.
pub fn special_ids(header: &GgufHeader) -> Result<(Option<u32>, Vec<u32>)> {
    Ok((
        header.optional("tokenizer.ggml.bos_token_id", GgufHeader::get_u32)?,
        header
            .optional("tokenizer.ggml.eos_token_id", GgufHeader::get_u32)?
            .into_iter()
            .collect(),
    ))
}
