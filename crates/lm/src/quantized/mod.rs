//! The quantized CPU executor: the decoder families of [`crate::models::transformer`]
//! (Llama / SmolLM2 / Llama 3, Gemma 3) run with their weight matrices left in the GGUF
//! blocks they were stored in, activations quantised per row on the fly and integer dot
//! products ([`crate::kernels::qdot`]: AVX2 with a portable twin).
//!
//! It is a second executor of the same [`TransformerSpec`] as the burn path
//! ([`crate::models::transformer::Transformer`], exact f32 on any device): the same norms,
//! RoPE tables, attention masks (left padding, sliding windows) and LM head, so that
//! [`crate::CausalLm::open_with`] can hand either to the harness, generation and guided
//! decoding. What differs is arithmetic: weights are the file's (not de-quantised to f32),
//! and activations are, by [`Precision`], rounded to 8 bits per block of 32 before each
//! integer product as llama.cpp does on CPUs ([`Precision::Q8`]), rounded as two 8-bit terms
//! ([`Precision::Q8x2`]), or kept in f32 with each weight group widened to f32 in registers
//! ([`Precision::F32`]: the f32 engine's product on the same weights up to summation order).
//!
//! * memory: the file's matrices (plus f32 norms and the KV cache): ~1× the file size;
//! * threads: rayon's pool (set `RAYON_NUM_THREADS`), rows of each product split across it,
//!   Q/K/V and gate/up read as one stacked product;
//! * decode-time attention is a direct loop over the cache (f32), parallel over heads for
//!   long contexts.

pub mod matrix;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{LmError, Result};
use crate::format::gguf::GgufFile;
use crate::kernels::qdot::QActs;
use crate::models::gguf_loader::{GgufLayout, hf_name};
use crate::models::transformer::{Activation, LogitsAt, NormPlacement, QkNorm, TransformerSpec};
use crate::nn::rope::unpermute_rows;

pub use matrix::{QMatrix, Storage};

/// How activations are rounded before each integer product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Precision {
    /// One 8-bit term per block of 32 (llama.cpp's scheme; the fast default).
    #[default]
    Q8,
    /// Two 8-bit terms per block (the value and its rounding residual, ~15 bits): twice the
    /// integer work per activation row, log-probabilities much closer to the f32 engine.
    Q8x2,
    /// No rounding: the activations stay f32 and each weight group is widened to f32 in
    /// registers ([`crate::kernels::qdot::dot_tile_f32`]) — the f32 engine's product on the
    /// same de-quantised weights, up to the order of the additions.
    F32,
}

/// How the quantized executor stores cached keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvPrecision {
    /// f32: exactly the values the projections produced (the default of
    /// [`QuantizedTransformer`]).
    #[default]
    F32,
    /// IEEE half floats (llama.cpp's default cache type): half the bytes for attention to
    /// read — what batched decoding over long contexts is bound by — at a relative rounding
    /// of `2⁻¹¹` per value (every [`crate::Engine`] of the quantized executor).
    F16,
}

/// One head's cached rows, in the cache's precision.
#[derive(Debug, Clone)]
enum KvRows {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl KvRows {
    fn new(precision: KvPrecision) -> Self {
        match precision {
            KvPrecision::F32 => Self::F32(Vec::new()),
            KvPrecision::F16 => Self::F16(Vec::new()),
        }
    }

    fn reserve(&mut self, n: usize) {
        match self {
            Self::F32(v) => v.reserve(n),
            Self::F16(v) => v.reserve(n),
        }
    }

    fn extend(&mut self, x: &[f32]) {
        match self {
            Self::F32(v) => v.extend_from_slice(x),
            Self::F16(v) => crate::kernels::qdot::extend_f16(v, x),
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Self::F32(v) => v.truncate(n),
            Self::F16(v) => v.truncate(n),
        }
    }
}

/// One transformer block's weights.
#[derive(Debug, Clone)]
struct Block {
    attn_norm: Vec<f32>,
    q: QMatrix,
    k: QMatrix,
    v: QMatrix,
    o: QMatrix,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    gate: QMatrix,
    up: QMatrix,
    down: QMatrix,
    post_ffn_norm: Option<Vec<f32>>,
}

/// A decoder whose matrices stay quantized.
#[derive(Debug, Clone)]
pub struct QuantizedTransformer {
    spec: TransformerSpec,
    precision: Precision,
    kv: KvPrecision,
    embed: QMatrix,
    head: Option<QMatrix>,
    norm: Vec<f32>,
    blocks: Vec<Block>,
}

/// The key/value cache of the quantized executor: per layer and per (sequence, KV head),
/// keys and values as `[position, head_dim]` rows in the model's [`KvPrecision`] (each head's
/// keys contiguous for the attention loop); left padding as in
/// [`crate::nn::kv_cache::KvCache`].
#[derive(Debug, Clone)]
pub struct QCache {
    batch: usize,
    head_dim: usize,
    pad: Vec<usize>,
    len: usize,
    k: Vec<Vec<KvRows>>,
    v: Vec<Vec<KvRows>>,
}

impl QCache {
    /// Cached positions (slots), padding included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sequences in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Per-sequence left padding.
    pub fn padding(&self) -> &[usize] {
        &self.pad
    }

    /// Sets per-sequence left padding (on an empty cache).
    pub fn set_padding(&mut self, pad: Vec<usize>) {
        self.pad = pad;
    }

    /// Rolls back to `len` slots.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            let d = self.head_dim;
            for heads in self.k.iter_mut().chain(self.v.iter_mut()) {
                heads.iter_mut().for_each(|h| h.truncate(len * d));
            }
            self.len = len;
        }
    }
}

/// Bytes of the quantized executor's weights, by block type (for memory reports).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WeightBytes {
    /// `(type name, bytes)` sorted by type.
    pub by_type: Vec<(String, usize)>,
    /// Everything, f32 norms included.
    pub total: usize,
}

fn norm_vec(tensors: &mut BTreeMap<String, (QMatrix, Vec<f32>)>, name: &str) -> Option<Vec<f32>> {
    tensors.remove(name).map(|(_, v)| v)
}

impl QuantizedTransformer {
    /// Reads a GGUF file of a supported family (`llama`, `gemma3`) without de-quantising its
    /// matrices. Returns the model with its BOS and EOS ids.
    ///
    /// # Errors
    /// [`LmError::UnsupportedArchitecture`], [`LmError::UnsupportedQuantizedTensor`] naming a
    /// tensor whose type the integer kernels cannot read, [`LmError::WeightKeys`] for missing or
    /// unexpected tensors, configuration and file errors.
    pub fn from_gguf(file: &GgufFile, origin: &str) -> Result<(Self, Option<u32>, Vec<u32>)> {
        Self::load(file, file.bytes().to_vec(), origin)
    }

    /// As [`QuantizedTransformer::from_gguf`], taking the file: the matrices stay in its
    /// buffer (no copy), so the model holds about the file's size in memory.
    ///
    /// # Errors
    /// As [`QuantizedTransformer::from_gguf`].
    pub fn from_gguf_owned(file: GgufFile, origin: &str) -> Result<(Self, Option<u32>, Vec<u32>)> {
        let (header, bytes) = file.into_parts();
        let view = GgufFile::from_parts(header, Vec::new());
        Self::load(&view, bytes, origin)
    }

    /// Builds the model over `bytes` (the file's bytes; Q/K rows of families stored permuted
    /// are put back in place first, so that every matrix then reads the one shared buffer).
    fn load(
        file: &GgufFile,
        mut bytes: Vec<u8>,
        origin: &str,
    ) -> Result<(Self, Option<u32>, Vec<u32>)> {
        let header = file.header();
        let arch = header.architecture()?.to_string();
        let (spec, layout, bos, eos) = match arch.as_str() {
            "llama" => {
                let mut cfg = crate::models::llama::config_from_gguf(header)?;
                if let Ok(info) = header.tensor("rope_freqs.weight") {
                    let bytes = header.tensor_data(&bytes, info)?;
                    cfg.rope_scaling = Some(crate::nn::rope::RopeScaling::FreqFactors(
                        crate::format::dequant::dequantize(
                            info.ggml_type,
                            bytes,
                            info.n_elements as usize,
                        )?,
                    ));
                }
                let d = cfg.head_dim();
                let layout = GgufLayout {
                    leaf: crate::models::llama::gguf_leaf,
                    permuted_qk: Some((cfg.num_attention_heads, cfg.num_key_value_heads, d)),
                    auxiliary: &["rope_freqs.weight"],
                    expert_leaf: None,
                };
                (cfg.spec()?, layout, cfg.bos_token_id, cfg.eos_token_id)
            }
            "gemma3" => {
                let cfg = crate::models::gemma3::config_from_gguf(header)?;
                let layout = GgufLayout {
                    leaf: crate::models::gemma3::gguf_leaf,
                    permuted_qk: None,
                    auxiliary: &[],
                    expert_leaf: None,
                };
                (cfg.spec()?, layout, cfg.bos_token_id, cfg.eos_token_id)
            }
            _ => {
                return Err(LmError::UnsupportedArchitecture {
                    path: origin.into(),
                    key: "general.architecture",
                    found: arch,
                    supported: "llama, gemma3".into(),
                });
            }
        };
        if let Some((nh, nkv, d)) = layout.permuted_qk {
            for info in header.tensors() {
                let heads = if info.name.ends_with("attn_q.weight") {
                    nh
                } else if info.name.ends_with("attn_k.weight") {
                    nkv
                } else {
                    continue;
                };
                let (rows, n) = (
                    info.dims.get(1).copied().unwrap_or(0) as usize,
                    info.n_bytes as usize,
                );
                if info.dims.len() != 2 || rows != heads * d {
                    return Err(LmError::WeightShape {
                        path: origin.into(),
                        name: info.name.clone(),
                        expected: vec![heads * d, info.dims[0] as usize],
                        found: info.dims.iter().rev().map(|&x| x as usize).collect(),
                    });
                }
                let start =
                    header.tensor_data(&bytes, info)?.as_ptr() as usize - bytes.as_ptr() as usize;
                let rb = n / rows;
                let idx: Vec<f32> = (0..rows).map(|i| i as f32).collect();
                let order = unpermute_rows(&idx, heads, d, 1);
                let old = bytes[start..start + n].to_vec();
                for (i, &r) in order.iter().enumerate() {
                    let r = r as usize;
                    bytes[start + i * rb..start + (i + 1) * rb]
                        .copy_from_slice(&old[r * rb..(r + 1) * rb]);
                }
            }
        }
        let data = &Arc::new(bytes);
        // Every tensor by its Hugging Face name: matrices kept in blocks, vectors as f32.
        let mut tensors: BTreeMap<String, (QMatrix, Vec<f32>)> = BTreeMap::new();
        let mut unknown = Vec::new();
        for info in header.tensors() {
            if layout.auxiliary.contains(&info.name.as_str()) {
                continue;
            }
            let Some(name) = hf_name(&info.name, layout.leaf) else {
                unknown.push(info.name.clone());
                continue;
            };
            let bytes = header.tensor_data(data, info)?;
            let non_finite = |index| LmError::NonFiniteWeight {
                path: origin.into(),
                name: info.name.clone(),
                index,
            };
            if info.dims.len() == 1 {
                let v = crate::format::dequant::dequantize(
                    info.ggml_type,
                    bytes,
                    info.n_elements as usize,
                )?;
                if let Some(i) = crate::format::dequant::first_non_finite(&v) {
                    return Err(non_finite(i));
                }
                let m = QMatrix {
                    name: info.name.clone(),
                    rows: 1,
                    cols: v.len(),
                    storage: Storage::F32(Vec::new()),
                };
                tensors.insert(name, (m, v));
                continue;
            }
            let start = bytes.as_ptr() as usize - data.as_ptr() as usize;
            let range = start..start + bytes.len();
            let m = QMatrix::from_shared(&info.name, info.ggml_type, &info.dims, data, range)?;
            if let Some(i) = m.first_non_finite() {
                return Err(non_finite(i));
            }
            tensors.insert(name, (m, Vec::new()));
        }
        if !unknown.is_empty() {
            return Err(LmError::WeightKeys {
                path: origin.into(),
                missing: Vec::new(),
                unexpected: unknown,
            });
        }
        let model = Self::assemble(spec, tensors, origin)?;
        Ok((model, bos, eos))
    }

    fn assemble(
        spec: TransformerSpec,
        mut t: BTreeMap<String, (QMatrix, Vec<f32>)>,
        origin: &str,
    ) -> Result<Self> {
        let mut missing = Vec::new();
        let mut take_mat = |t: &mut BTreeMap<String, (QMatrix, Vec<f32>)>,
                            name: String,
                            rows: usize,
                            cols: usize|
         -> Result<Option<QMatrix>> {
            match t.remove(&name) {
                Some((m, _)) => {
                    if m.rows != rows || m.cols != cols {
                        return Err(LmError::WeightShape {
                            path: origin.into(),
                            name: m.name.clone(),
                            expected: vec![rows, cols],
                            found: vec![m.rows, m.cols],
                        });
                    }
                    Ok(Some(m))
                }
                None => {
                    missing.push(name);
                    Ok(None)
                }
            }
        };
        let (h, d, f) = (spec.hidden_size, spec.head_dim, spec.intermediate_size);
        let (nh, nkv) = (spec.num_heads, spec.num_kv_heads);
        let embed = take_mat(
            &mut t,
            "model.embed_tokens.weight".into(),
            spec.vocab_size,
            h,
        )?;
        let head = if spec.tie_word_embeddings {
            t.remove("lm_head.weight");
            None
        } else {
            take_mat(&mut t, "lm_head.weight".into(), spec.vocab_size, h)?
        };
        let mut blocks = Vec::new();
        let mut vec_missing = Vec::new();
        let mut take_vec = |t: &mut BTreeMap<String, (QMatrix, Vec<f32>)>,
                            name: String,
                            len: usize| {
            match norm_vec(t, &name) {
                Some(v) if v.len() == len => Some(v),
                _ => {
                    vec_missing.push(name);
                    None
                }
            }
        };
        let norm = take_vec(&mut t, "model.norm.weight".into(), h);
        let sandwich = spec.norms == NormPlacement::Sandwich;
        for i in 0..spec.num_layers() {
            let p = format!("model.layers.{i}.");
            let qk_len = match spec.qk_norm {
                QkNorm::None => None,
                QkNorm::PerHead => Some((d, d)),
                QkNorm::Full => Some((nh * d, nkv * d)),
            };
            let (attn_norm_name, ffn_norm_name, post_attn, post_ffn) = if sandwich {
                (
                    "input_layernorm.weight",
                    "pre_feedforward_layernorm.weight",
                    Some("post_attention_layernorm.weight"),
                    Some("post_feedforward_layernorm.weight"),
                )
            } else {
                (
                    "input_layernorm.weight",
                    "post_attention_layernorm.weight",
                    None,
                    None,
                )
            };
            let block = (
                take_vec(&mut t, format!("{p}{attn_norm_name}"), h),
                take_mat(&mut t, format!("{p}self_attn.q_proj.weight"), nh * d, h)?,
                take_mat(&mut t, format!("{p}self_attn.k_proj.weight"), nkv * d, h)?,
                take_mat(&mut t, format!("{p}self_attn.v_proj.weight"), nkv * d, h)?,
                take_mat(&mut t, format!("{p}self_attn.o_proj.weight"), h, nh * d)?,
                qk_len.map(|(a, _)| take_vec(&mut t, format!("{p}self_attn.q_norm.weight"), a)),
                qk_len.map(|(_, b)| take_vec(&mut t, format!("{p}self_attn.k_norm.weight"), b)),
                post_attn.map(|n| take_vec(&mut t, format!("{p}{n}"), h)),
                take_vec(&mut t, format!("{p}{ffn_norm_name}"), h),
                take_mat(&mut t, format!("{p}mlp.gate_proj.weight"), f, h)?,
                take_mat(&mut t, format!("{p}mlp.up_proj.weight"), f, h)?,
                take_mat(&mut t, format!("{p}mlp.down_proj.weight"), h, f)?,
                post_ffn.map(|n| take_vec(&mut t, format!("{p}{n}"), h)),
            );
            if let (
                Some(attn_norm),
                Some(q),
                Some(k),
                Some(v),
                Some(o),
                q_norm,
                k_norm,
                post_attn_norm,
                Some(ffn_norm),
                Some(gate),
                Some(up),
                Some(down),
                post_ffn_norm,
            ) = block
            {
                blocks.push(Block {
                    attn_norm,
                    q,
                    k,
                    v,
                    o,
                    q_norm: q_norm.flatten(),
                    k_norm: k_norm.flatten(),
                    post_attn_norm: post_attn_norm.flatten(),
                    ffn_norm,
                    gate,
                    up,
                    down,
                    post_ffn_norm: post_ffn_norm.flatten(),
                });
            }
        }
        missing.extend(vec_missing);
        if !missing.is_empty() || !t.is_empty() {
            return Err(LmError::WeightKeys {
                path: origin.into(),
                missing,
                unexpected: t.into_keys().collect(),
            });
        }
        let (Some(embed), Some(norm)) = (embed, norm) else {
            unreachable!("missing tensors were reported above");
        };
        Ok(Self {
            spec,
            precision: Precision::Q8,
            kv: KvPrecision::F32,
            embed,
            head,
            norm,
            blocks,
        })
    }

    /// The model's sizes and switches.
    pub fn spec(&self) -> &TransformerSpec {
        &self.spec
    }

    /// Sets how activations are rounded ([`Precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// How activations are rounded.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets how new caches store keys and values ([`KvPrecision`]; default f32).
    pub fn with_kv_precision(mut self, kv: KvPrecision) -> Self {
        self.kv = kv;
        self
    }

    /// How caches store keys and values.
    pub fn kv_precision(&self) -> KvPrecision {
        self.kv
    }

    fn quantize(&self, acts: &mut QActs, x: &[f32], rows: usize, cols: usize) {
        match self.precision {
            Precision::Q8 => acts.quantize(x, rows, cols),
            Precision::Q8x2 => acts.quantize_two_terms(x, rows, cols),
            Precision::F32 => acts.keep_f32(x, rows, cols),
        }
    }

    /// Bytes of weights held, by type.
    pub fn weight_bytes(&self) -> WeightBytes {
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0;
        let mut add = |m: &QMatrix| {
            *by.entry(m.type_name().to_string()).or_default() += m.size_bytes();
            total += m.size_bytes();
        };
        add(&self.embed);
        if let Some(h) = &self.head {
            add(h);
        }
        for b in &self.blocks {
            for m in [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down] {
                add(m);
            }
        }
        let norms: usize = self
            .blocks
            .iter()
            .map(|b| {
                (b.attn_norm.len()
                    + b.ffn_norm.len()
                    + [&b.q_norm, &b.k_norm, &b.post_attn_norm, &b.post_ffn_norm]
                        .iter()
                        .map(|n| n.as_ref().map_or(0, Vec::len))
                        .sum::<usize>())
                    * 4
            })
            .sum();
        WeightBytes {
            by_type: by.into_iter().collect(),
            total: total + norms + self.norm.len() * 4,
        }
    }

    /// A fresh cache for `batch` sequences.
    pub fn new_cache(&self, batch: usize) -> QCache {
        let heads = vec![KvRows::new(self.kv); batch * self.spec.num_kv_heads];
        QCache {
            batch,
            head_dim: self.spec.head_dim,
            pad: vec![0; batch],
            len: 0,
            k: vec![heads.clone(); self.blocks.len()],
            v: vec![heads; self.blocks.len()],
        }
    }

    /// Runs `tokens` (`batch` rows of equal length, left-padded as the cache says) and returns
    /// logits `[batch · rows, vocab]` row-major, `rows = t` ([`LogitsAt::All`]) or 1.
    ///
    /// # Errors
    /// As [`crate::models::transformer::Transformer::forward`].
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut QCache,
        at: LogitsAt,
    ) -> Result<Vec<f32>> {
        let spec = &self.spec;
        let b = tokens.len();
        let t = tokens.first().map_or(0, Vec::len);
        if b == 0 || t == 0 || tokens.iter().any(|r| r.len() != t) || cache.batch != b {
            return Err(LmError::InvalidModelConfig {
                path: "forward".into(),
                detail: format!(
                    "expected {} rows of equal, non-zero length; got lengths {:?}",
                    cache.batch,
                    tokens.iter().map(Vec::len).collect::<Vec<_>>()
                ),
            });
        }
        let start = cache.len;
        if start + t > spec.max_positions {
            return Err(LmError::SequenceTooLong {
                len: start + t,
                max: spec.max_positions,
            });
        }
        let (h, d, f) = (spec.hidden_size, spec.head_dim, spec.intermediate_size);
        let (nh, nkv) = (spec.num_heads, spec.num_kv_heads);
        let n = b * t;
        let eps = spec.rms_norm_eps as f32;

        // Embeddings, row (s, i) at s·t + i.
        let mut x = vec![0f32; n * h];
        for (s, row) in tokens.iter().enumerate() {
            for (i, &id) in row.iter().enumerate() {
                if id as usize >= spec.vocab_size {
                    return Err(LmError::TokenOutOfRange {
                        id,
                        vocab_size: spec.vocab_size,
                    });
                }
                let dst = &mut x[(s * t + i) * h..(s * t + i + 1) * h];
                self.embed.row_f32(id as usize, dst)?;
                if spec.embed_scale != 1.0 {
                    dst.iter_mut().for_each(|v| *v *= spec.embed_scale);
                }
            }
        }
        // RoPE tables per distinct frequency set: cos/sin `[n, d/2]`.
        let positions: Vec<usize> = (0..n)
            .map(|r| {
                let (s, i) = (r / t, r % t);
                (start + i).saturating_sub(cache.pad[s])
            })
            .collect();
        let tables: Vec<(Vec<f32>, Vec<f32>)> = spec
            .rope_freqs
            .iter()
            .map(|inv| rope_table(inv, &positions))
            .collect();

        let qkv_w = (nh + 2 * nkv) * d;
        let mut xn = vec![0f32; n * h];
        let mut acts = QActs::default();
        let mut qkv = Vec::new();
        let mut attn = vec![0f32; n * nh * d];
        let mut proj = Vec::new();
        let mut gu = Vec::new();
        let mut hidden = vec![0f32; n * f];
        for (li, blk) in self.blocks.iter().enumerate() {
            let la = spec.layers[li];
            rms_rows(&x, &blk.attn_norm, eps, &mut xn);
            self.quantize(&mut acts, &xn, n, h);
            matrix::product(&[&blk.q, &blk.k, &blk.v], &xn, &acts, &mut qkv);
            let (cos, sin) = &tables[la.rope];
            for r in 0..n {
                let row = &mut qkv[r * qkv_w..(r + 1) * qkv_w];
                let (q, kv) = row.split_at_mut(nh * d);
                let k = &mut kv[..nkv * d];
                match (spec.qk_norm, &blk.q_norm, &blk.k_norm) {
                    (QkNorm::PerHead, Some(qn), Some(kn)) => {
                        q.chunks_exact_mut(d)
                            .for_each(|hd| rms_in_place(hd, qn, eps));
                        k.chunks_exact_mut(d)
                            .for_each(|hd| rms_in_place(hd, kn, eps));
                    }
                    (QkNorm::Full, Some(qn), Some(kn)) => {
                        rms_in_place(q, qn, eps);
                        rms_in_place(k, kn, eps);
                    }
                    _ => {}
                }
                let (c, s) = (
                    &cos[r * d / 2..(r + 1) * d / 2],
                    &sin[r * d / 2..(r + 1) * d / 2],
                );
                q.chunks_exact_mut(d).for_each(|hd| rotate_half(hd, c, s));
                k.chunks_exact_mut(d).for_each(|hd| rotate_half(hd, c, s));
            }
            // Append keys and values: slot start + i of sequence s, per KV head.
            let (kc, vc) = (&mut cache.k[li], &mut cache.v[li]);
            for s in 0..b {
                for kvh in 0..nkv {
                    let (kh, vh) = (&mut kc[s * nkv + kvh], &mut vc[s * nkv + kvh]);
                    kh.reserve(t * d);
                    vh.reserve(t * d);
                    for i in 0..t {
                        let row = &qkv[(s * t + i) * qkv_w..(s * t + i + 1) * qkv_w];
                        kh.extend(&row[(nh + kvh) * d..(nh + kvh + 1) * d]);
                        vh.extend(&row[(nh + nkv + kvh) * d..(nh + nkv + kvh + 1) * d]);
                    }
                }
            }
            attention(
                &qkv,
                kc,
                vc,
                &AttnShape {
                    t,
                    start,
                    nh,
                    nkv,
                    d,
                    qkv_w,
                    scale: spec.attn_scale as f32,
                    window: la.window,
                },
                &cache.pad,
                &mut attn,
            );
            self.quantize(&mut acts, &attn, n, nh * d);
            matrix::product(&[&blk.o], &attn, &acts, &mut proj);
            if let Some(pn) = &blk.post_attn_norm {
                proj.chunks_exact_mut(h)
                    .for_each(|r| rms_in_place(r, pn, eps));
            }
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);

            rms_rows(&x, &blk.ffn_norm, eps, &mut xn);
            self.quantize(&mut acts, &xn, n, h);
            matrix::product(&[&blk.gate, &blk.up], &xn, &acts, &mut gu);
            gated(spec.activation, &gu, f, &mut hidden);
            self.quantize(&mut acts, &hidden, n, f);
            matrix::product(&[&blk.down], &hidden, &acts, &mut proj);
            if let Some(pn) = &blk.post_ffn_norm {
                proj.chunks_exact_mut(h)
                    .for_each(|r| rms_in_place(r, pn, eps));
            }
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
        }
        cache.len += t;
        let rows: Vec<usize> = match at {
            LogitsAt::All => (0..n).collect(),
            LogitsAt::Last => (0..b).map(|s| s * t + t - 1).collect(),
        };
        let mut last = vec![0f32; rows.len() * h];
        for (j, &r) in rows.iter().enumerate() {
            let dst = &mut last[j * h..(j + 1) * h];
            dst.copy_from_slice(&x[r * h..(r + 1) * h]);
            rms_in_place(dst, &self.norm, eps);
        }
        self.quantize(&mut acts, &last, rows.len(), h);
        let head = self.head.as_ref().unwrap_or(&self.embed);
        let mut logits = Vec::new();
        matrix::product(&[head], &last, &acts, &mut logits);
        Ok(logits)
    }
}

/// `hidden[r] = act(gate[r]) ⊙ up[r]` for every row of `gu` (`[n, 2f]`, gate columns first);
/// rows split over the pool from 8 rows on (batched decoding, prefill).
fn gated(activation: Activation, gu: &[f32], f: usize, hidden: &mut [f32]) {
    let one = |gu_row: &[f32], dst: &mut [f32]| {
        let (g, u) = gu_row.split_at(f);
        match activation {
            Activation::Silu => crate::kernels::softmax::silu_mul(g, u, dst),
            Activation::GeluTanh => {
                for ((o, &g), &u) in dst.iter_mut().zip(g).zip(u) {
                    *o = gelu_tanh(g) * u;
                }
            }
        }
    };
    let n = gu.len() / (2 * f);
    let pool = crate::kernels::pool::global();
    let k = pool.threads();
    if n < 8 || k == 1 {
        for (row, dst) in gu.chunks_exact(2 * f).zip(hidden.chunks_exact_mut(f)) {
            one(row, dst);
        }
        return;
    }
    let per = n.div_ceil(k);
    let slots: Vec<std::sync::Mutex<(&[f32], &mut [f32])>> = gu
        .chunks(per * 2 * f)
        .zip(hidden.chunks_mut(per * f))
        .map(std::sync::Mutex::new)
        .collect();
    pool.for_each(slots.len(), &|j| {
        let mut g = slots[j].lock().unwrap_or_else(|e| e.into_inner());
        let (src, dst) = &mut *g;
        for (row, d) in src.chunks_exact(2 * f).zip(dst.chunks_exact_mut(f)) {
            one(row, d);
        }
    });
}

/// Sizes of one attention call.
struct AttnShape {
    t: usize,
    start: usize,
    nh: usize,
    nkv: usize,
    d: usize,
    qkv_w: usize,
    scale: f32,
    window: Option<usize>,
}

/// Softmax attention of the step's queries over the cache (per (sequence, KV head) key rows
/// `[slot, d]`), with the burn path's mask: causal, pad slots hidden (a pad query still sees
/// itself), keys `window` or more positions back hidden. One unit of work per (query,
/// head), spread over the [`crate::kernels::pool`].
fn attention(
    qkv: &[f32],
    kc: &[KvRows],
    vc: &[KvRows],
    sh: &AttnShape,
    pad: &[usize],
    out: &mut [f32],
) {
    let AttnShape {
        t,
        start,
        nh,
        nkv,
        d,
        qkv_w,
        scale,
        window,
    } = *sh;
    let rep = nh / nkv;
    let w = window.unwrap_or(usize::MAX);
    let n = out.len() / (nh * d);
    // A unit is query row r and a group of `g` query heads sharing one KV head: each key and
    // value row is read once for the group. Groups are whole KV heads when there are enough
    // units to keep every thread busy, single heads otherwise (one-token decoding).
    let pool = crate::kernels::pool::global();
    let k = pool.threads();
    let g = if n * nkv >= 4 * k { rep } else { 1 };
    let units_per_row = nh / g;
    let unit = |idx: usize, o: &mut [f32], scores: &mut Vec<f32>| {
        let (r, u) = (idx / units_per_row, idx % units_per_row);
        let hq0 = u * g;
        let (s, i) = (r / t, r % t);
        let head = s * nkv + hq0 / rep;
        let (keys, vals) = (&kc[head], &vc[head]);
        let qpos = start + i;
        let lo = if w == usize::MAX {
            0
        } else {
            (qpos + 1).saturating_sub(w)
        };
        // Keys before the padding are hidden, except a pad query's own slot.
        let first = lo.max(pad[s].min(qpos));
        let q = &qkv[r * qkv_w + hq0 * d..r * qkv_w + (hq0 + g) * d];
        let span = first * d..(qpos + 1) * d;
        match (keys, vals) {
            (KvRows::F32(k), KvRows::F32(v)) => {
                crate::kernels::qdot::attend(q, &k[span.clone()], &v[span], g, d, scale, scores, o)
            }
            (KvRows::F16(k), KvRows::F16(v)) => {
                crate::kernels::qdot::attend(q, &k[span.clone()], &v[span], g, d, scale, scores, o)
            }
            _ => unreachable!("keys and values share the cache's precision"),
        }
    };
    // Units handed out one at a time as threads free up (`SpinPool::for_each`); each thread
    // keeps one score buffer for the units it runs.
    let units: Vec<std::sync::Mutex<&mut [f32]>> =
        out.chunks_mut(g * d).map(std::sync::Mutex::new).collect();
    thread_local! {
        static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    pool.for_each(units.len(), &|idx| {
        let mut o = units[idx].lock().unwrap_or_else(|e| e.into_inner());
        SCORES.with(|s| unit(idx, &mut o, &mut s.borrow_mut()));
    });
}

/// cos/sin `[positions, d/2]` of one frequency set, with the burn path's rounding (angle
/// `p · inv` in f32, its cosine in f64).
fn rope_table(inv: &[f32], positions: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let half = inv.len();
    let mut cos = vec![0f32; positions.len() * half];
    let mut sin = vec![0f32; positions.len() * half];
    for (r, &p) in positions.iter().enumerate() {
        for (j, &f) in inv.iter().enumerate() {
            let angle = f64::from(p as f32 * f);
            cos[r * half + j] = angle.cos() as f32;
            sin[r * half + j] = angle.sin() as f32;
        }
    }
    (cos, sin)
}

/// `x ← x · cos + rotate_half(x) · sin` for one head.
fn rotate_half(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    let (a, b) = x.split_at_mut(half);
    for j in 0..half {
        let (x1, x2) = (a[j], b[j]);
        a[j] = x1 * cos[j] - x2 * sin[j];
        b[j] = x2 * cos[j] + x1 * sin[j];
    }
}

/// RMSNorm of each `w.len()`-wide row of `x` into `out`.
fn rms_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    out.copy_from_slice(x);
    out.chunks_exact_mut(w.len())
        .for_each(|r| rms_in_place(r, w, eps));
}

/// `x ← x / √(mean(x²) + ε) · w`.
fn rms_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for (v, &w) in x.iter_mut().zip(w) {
        *v = *v * inv * w;
    }
}

/// GELU with the tanh approximation (transformers' `gelu_pytorch_tanh`).
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // √(2/π)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}
