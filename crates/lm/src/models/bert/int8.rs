//! An int8 CPU inference path for the BERT encoder: the four linear layers of each block run as
//! dynamically quantised int8 matrix products ([`crate::kernels::qgemm`]), everything else in f32.
//!
//! Where the burn path ([`BertModel::forward`]) pads a batch to its longest sequence and runs one
//! tensor op at a time, this path concatenates the sequences' rows (no padding at all), runs
//! attention per sequence and head, and fuses residual + layer norm and GELU into single passes
//! over the rows, spreading every step over rayon's threads (a single short query uses every
//! core). Layer norms, softmax and GELU are f32 loops compiled for AVX-512 where the CPU has it
//! ([`crate::kernels`]).
//!
//! It is an approximation of the f32 model: on the golden sentences its all-MiniLM-L6-v2
//! embeddings have cosine similarity above 0.99 with the exact ones (test
//! `int8_embeddings_stay_close_to_f32` in `crates/lm/tests/minilm_golden.rs`, which prints the
//! measured values). [`crate::SentenceEncoder::quantized`] switches an encoder to it.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use lm::models::bert::SentenceEncoder;
//!
//! let encoder = SentenceEncoder::from_dir(lm::locate::minilm_dir()?, &Device::flex())?;
//! let fast = encoder.clone().quantized()?;
//! let (a, b) = (encoder.embed(&["How tall is Everest?"])?, fast.embed(&["How tall is Everest?"])?);
//! let cosine: f32 = a[0].iter().zip(&b[0]).map(|(x, y)| x * y).sum();
//! assert!(cosine > 0.99);
//! # Ok::<(), lm::LmError>(())
//! ```

use rayon::prelude::*;

use crate::error::{LmError, Result};
use crate::kernels::qgemm::{QuantizedMatrix, QuantizedRows, ROWS_PER_TASK, qgemm};
use crate::kernels::{add_layer_norm_rows, attention_head, attention_scratch, gelu_in_place};
use crate::models::bert::{BertModel, LayerNorm, Linear, tensor_to_vec};

/// A linear layer with int8 weights and an f32 bias.
#[derive(Debug, Clone)]
struct QLinear {
    weight: QuantizedMatrix,
    bias: Vec<f32>,
}

impl QLinear {
    fn from_linear(linear: &Linear) -> Result<Self> {
        let [k, n] = linear.weight.dims();
        let w = tensor_to_vec(linear.weight.clone())?;
        Ok(Self {
            weight: QuantizedMatrix::from_f32(&w, k, n)?,
            bias: tensor_to_vec(linear.bias.clone())?,
        })
    }

    /// `out = x · W + b` for `x` already quantised.
    fn forward(&self, x: &QuantizedRows, out: &mut Vec<f32>) -> Result<()> {
        out.resize(x.rows() * self.weight.n(), 0.0);
        qgemm(x, &self.weight, &self.bias, out)
    }
}

/// Layer-norm parameters as f32 vectors.
#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn from_layer_norm(norm: &LayerNorm) -> Result<Self> {
        Ok(Self {
            gamma: tensor_to_vec(norm.gamma.clone())?,
            beta: tensor_to_vec(norm.beta.clone())?,
            eps: norm.eps as f32,
        })
    }

    /// `x = LayerNorm(x + residual)` row by row (`residual` empty: no addition), in parallel.
    fn apply(&self, x: &mut [f32], residual: &[f32]) {
        let h = self.gamma.len();
        let chunk = ROWS_PER_TASK * h;
        if residual.is_empty() {
            x.par_chunks_mut(chunk)
                .for_each(|x| add_layer_norm_rows(x, &[], &self.gamma, &self.beta, self.eps));
        } else {
            x.par_chunks_mut(chunk)
                .zip(residual.par_chunks(chunk))
                .for_each(|(x, r)| add_layer_norm_rows(x, r, &self.gamma, &self.beta, self.eps));
        }
    }
}

/// One encoder block with int8 linear layers.
#[derive(Debug, Clone)]
struct QLayer {
    qkv: QLinear,
    attention_output: QLinear,
    attention_norm: Norm,
    intermediate: QLinear,
    output: QLinear,
    output_norm: Norm,
}

/// The BERT encoder with int8 linear layers, for CPU inference (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Int8Bert {
    hidden: usize,
    heads: usize,
    vocab_size: usize,
    max_positions: usize,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type0: Vec<f32>,
    embeddings_norm: Norm,
    layers: Vec<QLayer>,
    /// Buffers kept between calls (one per concurrent caller): re-allocating them each pass
    /// made the kernel zero fresh pages for 9% of the time.
    scratch: std::sync::Arc<std::sync::Mutex<Vec<Scratch>>>,
}

/// Reusable buffers of one forward pass.
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    quantized: QuantizedRows,
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
}

impl Int8Bert {
    /// Quantises a loaded [`BertModel`] (its weights are read back from its device once).
    ///
    /// # Errors
    /// [`LmError::TensorRead`] when the weights cannot be read back, [`LmError::NonFinite`] for
    /// a NaN or infinite weight.
    pub fn from_model(model: &BertModel) -> Result<Self> {
        let config = model.config();
        let token_types = tensor_to_vec(model.token_type_embeddings.clone())?;
        let layers = model
            .layers
            .iter()
            .map(|l| {
                Ok(QLayer {
                    qkv: QLinear::from_linear(&l.qkv)?,
                    attention_output: QLinear::from_linear(&l.attention_output)?,
                    attention_norm: Norm::from_layer_norm(&l.attention_norm)?,
                    intermediate: QLinear::from_linear(&l.intermediate)?,
                    output: QLinear::from_linear(&l.output)?,
                    output_norm: Norm::from_layer_norm(&l.output_norm)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            vocab_size: config.vocab_size,
            max_positions: config.max_position_embeddings,
            word_embeddings: tensor_to_vec(model.word_embeddings.clone())?,
            position_embeddings: tensor_to_vec(model.position_embeddings.clone())?,
            token_type0: token_types[..config.hidden_size].to_vec(),
            embeddings_norm: Norm::from_layer_norm(&model.embeddings_norm)?,
            layers,
            scratch: Default::default(),
        })
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Mean of the last hidden state over each sequence's tokens (not normalised), as
    /// [`BertModel::mean_pooled`]; all sequences run in one pass with their rows concatenated.
    /// An empty sequence gives zeros.
    ///
    /// # Errors
    /// [`LmError::SequenceTooLong`], [`LmError::TokenOutOfRange`].
    pub fn mean_pooled(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let mut starts = Vec::with_capacity(sequences.len());
        let mut rows = 0;
        for s in sequences {
            if s.len() > self.max_positions {
                return Err(LmError::SequenceTooLong {
                    len: s.len(),
                    max: self.max_positions,
                });
            }
            if let Some(&id) = s.iter().find(|&&id| id as usize >= self.vocab_size) {
                return Err(LmError::TokenOutOfRange {
                    id,
                    vocab_size: self.vocab_size,
                });
            }
            starts.push(rows);
            rows += s.len();
        }
        if rows == 0 {
            return Ok(vec![vec![0.0; h]; sequences.len()]);
        }
        let mut scratch = self
            .scratch
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        // The whole pass runs on a rayon worker: called from outside the pool, every parallel
        // step would otherwise hand its work over and put the caller to sleep (18% of the time
        // for one short query in kernel scheduling).
        let result = rayon::scope(|_| self.forward_pooled(sequences, &starts, rows, &mut scratch));
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
        result
    }

    /// The pass itself, with `starts[i]` the first row of sequence `i` and `rows` in all.
    fn forward_pooled(
        &self,
        sequences: &[&[u32]],
        starts: &[usize],
        rows: usize,
        scratch: &mut Scratch,
    ) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        // Embeddings: word + position + token type 0, then layer norm.
        let mut x = std::mem::take(&mut scratch.x);
        x.resize(rows * h, 0.0);
        for (s, &start) in sequences.iter().zip(starts) {
            for (t, &id) in s.iter().enumerate() {
                let dst = &mut x[(start + t) * h..(start + t + 1) * h];
                let word = &self.word_embeddings[id as usize * h..][..h];
                let pos = &self.position_embeddings[t * h..][..h];
                for (((d, w), p), ty) in dst.iter_mut().zip(word).zip(pos).zip(&self.token_type0) {
                    *d = w + p + ty;
                }
            }
        }
        self.embeddings_norm.apply(&mut x, &[]);

        let spans: Vec<(usize, usize)> = starts
            .iter()
            .zip(sequences)
            .filter(|(_, s)| !s.is_empty())
            .map(|(&start, s)| (start, s.len()))
            .collect();
        for layer in &self.layers {
            self.layer_forward(layer, &spans, &mut x, rows, scratch)?;
        }

        let pooled = sequences
            .iter()
            .zip(starts)
            .map(|(s, &start)| {
                let mut mean = vec![0.0f32; h];
                for t in 0..s.len() {
                    for (m, v) in mean
                        .iter_mut()
                        .zip(&x[(start + t) * h..(start + t + 1) * h])
                    {
                        *m += v;
                    }
                }
                let inv = 1.0 / (s.len() as f32).max(1e-9);
                mean.iter_mut().for_each(|m| *m *= inv);
                mean
            })
            .collect();
        scratch.x = x;
        Ok(pooled)
    }

    /// One block: attention with residual + norm, then the GELU MLP with residual + norm.
    fn layer_forward(
        &self,
        layer: &QLayer,
        spans: &[(usize, usize)],
        x: &mut [f32],
        rows: usize,
        s: &mut Scratch,
    ) -> Result<()> {
        let h = self.hidden;
        let (heads, dh) = (self.heads, h / self.heads);
        s.quantized.quantize(x, rows, h)?;
        layer.qkv.forward(&s.quantized, &mut s.qkv)?;

        // Attention per (sequence, head), each into its own block, then scattered into rows.
        let ld = 3 * h;
        let scale = 1.0 / (dh as f32).sqrt();
        let qkv = &s.qkv;
        let blocks: Vec<(usize, usize, usize, Vec<f32>)> = spans
            .par_iter()
            .flat_map_iter(|&(start, len)| (0..heads).map(move |head| (start, len, head)))
            .map(|(start, len, head)| {
                let (kt_len, scores_len) = attention_scratch(len, dh);
                let mut kt = vec![0.0f32; kt_len];
                let mut scores = vec![0.0f32; scores_len];
                let mut ctx = vec![0.0f32; len * dh];
                attention_head(
                    &qkv[start * ld..(start + len) * ld],
                    ld,
                    len,
                    dh,
                    [head * dh, h + head * dh, 2 * h + head * dh],
                    scale,
                    &mut kt,
                    &mut scores,
                    &mut ctx,
                );
                (start, len, head, ctx)
            })
            .collect();
        s.context.resize(rows * h, 0.0);
        for (start, len, head, ctx) in blocks {
            for t in 0..len {
                s.context[(start + t) * h + head * dh..][..dh]
                    .copy_from_slice(&ctx[t * dh..(t + 1) * dh]);
            }
        }

        s.quantized.quantize(&s.context, rows, h)?;
        layer
            .attention_output
            .forward(&s.quantized, &mut s.projected)?;
        layer.attention_norm.apply(&mut s.projected, x);
        x.copy_from_slice(&s.projected);

        s.quantized.quantize(x, rows, h)?;
        layer.intermediate.forward(&s.quantized, &mut s.hidden)?;
        let inter = s.hidden.len() / rows;
        s.hidden
            .par_chunks_mut(ROWS_PER_TASK * inter)
            .for_each(gelu_in_place);
        s.quantized.quantize(&s.hidden, rows, inter)?;
        layer.output.forward(&s.quantized, &mut s.projected)?;
        layer.output_norm.apply(&mut s.projected, x);
        x.copy_from_slice(&s.projected);
        Ok(())
    }
}
