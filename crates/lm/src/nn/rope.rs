//! Rotary position embeddings (RoPE, Su et al. 2021) in both layouts found in the wild.
//!
//! A head vector of `d` values is split into `d / 2` pairs; pair `j` at position `p` is rotated
//! by the angle `p · θ_j`, `θ_j = base^(−2j/d)`. The layouts differ only in *which* values form
//! a pair:
//!
//! | layout | pair `j` | used by |
//! |---|---|---|
//! | [`RopeLayout::RotateHalf`] | `(x[j], x[j + d/2])` | Hugging Face Llama (`rotate_half`) and safetensors checkpoints |
//! | [`RopeLayout::Interleaved`] | `(x[2j], x[2j + 1])` | the original Meta code, GGUF "llama" files, burn's `RotaryEncoding` |
//!
//! llama.cpp's converter permutes the rows of `W_q` and `W_k` so that interleaved RoPE on the
//! GGUF weights equals rotate-half RoPE on the Hugging Face weights; [`unpermute_rows`] undoes
//! that permutation (and [`permute_rows`] applies it), so one model implementation serves both
//! file formats. The equivalence is tested below.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{LmError, Result};

/// Which values of a head vector form a rotation pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Pairs `(j, j + d/2)`: Hugging Face's `rotate_half`.
    RotateHalf,
    /// Pairs `(2j, 2j + 1)`: GGUF / Meta / burn's `RotaryEncoding`.
    Interleaved,
}

/// How the rotation frequencies of a model are derived from its base frequency.
///
/// Transformers' `rope_parameters` / `rope_scaling` (`rope_type`); the GGUF form of the
/// `llama3` kind is the `rope_freqs.weight` tensor of per-frequency divisors
/// ([`RopeScaling::FreqFactors`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// `θ_j = base^(−2j/d)` (transformers `"default"`).
    Default,
    /// Llama 3.1/3.2 frequency scaling (transformers `_compute_llama3_parameters`): wavelengths
    /// above `original_max_position_embeddings / low_freq_factor` are divided by `factor`,
    /// those below `original / high_freq_factor` kept, the band between interpolated smoothly.
    Llama3 {
        /// Scale factor for the low frequencies.
        factor: f64,
        /// Low-frequency edge (wavelength divisor).
        low_freq_factor: f64,
        /// High-frequency edge (wavelength divisor).
        high_freq_factor: f64,
        /// Context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
    /// Per-frequency divisors read from a file (llama.cpp's `rope_freqs.weight`):
    /// `θ_j = base^(−2j/d) / factors[j]`.
    #[serde(skip)]
    FreqFactors(Vec<f32>),
}

/// The `d / 2` inverse frequencies `θ_j` of a head of width `head_dim`, computed in f32 as
/// transformers does (`1 / base^(2j/d)`, then the scaling), so that positions far into the
/// context (where `p · θ_j` needs every bit) give the reference's angles.
///
/// # Errors
/// [`LmError::InvalidModelConfig`] when `FreqFactors` has the wrong length or a non-positive
/// entry, or a `Llama3` parameter is not positive with `high_freq_factor > low_freq_factor`.
pub fn inv_frequencies(head_dim: usize, base: f64, scaling: &RopeScaling) -> Result<Vec<f32>> {
    let half = head_dim / 2;
    let bad = |detail: String| LmError::InvalidModelConfig {
        path: "rope".into(),
        detail,
    };
    let plain: Vec<f32> = (0..half)
        .map(|j| {
            let exponent = (2 * j) as f32 / head_dim as f32;
            1.0f32 / ((base as f32).powf(exponent))
        })
        .collect();
    match scaling {
        RopeScaling::Default => Ok(plain),
        RopeScaling::FreqFactors(f) => {
            if f.len() != half {
                return Err(bad(format!(
                    "rope_freqs has {} entries, expected head_dim / 2 = {half}",
                    f.len()
                )));
            }
            if let Some(x) = f.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(bad(format!(
                    "rope_freqs holds {x}, expected positive values"
                )));
            }
            Ok(plain.iter().zip(f).map(|(t, d)| t / d).collect())
        }
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let ok = [
                *factor,
                *low_freq_factor,
                *high_freq_factor,
                *original_max_position_embeddings,
            ]
            .iter()
            .all(|x| x.is_finite() && *x > 0.0)
                && high_freq_factor > low_freq_factor;
            if !ok {
                return Err(bad(format!(
                    "llama3 rope scaling needs positive parameters with high_freq_factor > low_freq_factor; got {scaling:?}"
                )));
            }
            let (factor, low, high, old) = (
                *factor as f32,
                *low_freq_factor as f32,
                *high_freq_factor as f32,
                *original_max_position_embeddings as f32,
            );
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            Ok(plain
                .iter()
                .map(|&inv| {
                    let wavelen = 2.0 * std::f32::consts::PI / inv;
                    let scaled = if wavelen > low_wavelen {
                        inv / factor
                    } else {
                        inv
                    };
                    // The reference's `~(w < high) * ~(w > low)`, negations kept as written.
                    #[allow(clippy::neg_cmp_op_on_partial_ord)]
                    let medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
                    if medium {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect())
        }
    }
}

/// Rotary embedding of one head width: its inverse frequencies and pair layout. `cos` / `sin`
/// rows are computed on the host for the positions of each step (no position table, so a
/// 128k-token context costs nothing until it is used).
#[derive(Debug, Clone)]
pub struct Rope {
    layout: RopeLayout,
    head_dim: usize,
    inv_freq: Vec<f32>,
}

impl Rope {
    /// Plain RoPE with base frequency `base` (`rope_theta`).
    pub fn new(layout: RopeLayout, head_dim: usize, base: f64) -> Self {
        let inv_freq = inv_frequencies(head_dim, base, &RopeScaling::Default).unwrap_or_default();
        Self {
            layout,
            head_dim,
            inv_freq,
        }
    }

    /// RoPE with precomputed inverse frequencies ([`inv_frequencies`]), `head_dim / 2` of them.
    pub fn with_inv_freq(layout: RopeLayout, inv_freq: Vec<f32>) -> Self {
        Self {
            layout,
            head_dim: 2 * inv_freq.len(),
            inv_freq,
        }
    }

    /// The layout.
    pub fn layout(&self) -> RopeLayout {
        self.layout
    }

    /// The inverse frequencies `θ_j`.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// `cos` and `sin` rows for `positions` (one per (sequence, token), row-major `[b, t]`),
    /// shaped `[b, 1, t, head_dim]` to broadcast over heads. Angles are `p · θ_j` rounded to
    /// f32, as the reference computes them.
    pub fn tables(
        &self,
        positions: &[i64],
        b: usize,
        t: usize,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let d = self.head_dim;
        let half = d / 2;
        let mut cos = vec![0f32; positions.len() * d];
        let mut sin = vec![0f32; positions.len() * d];
        for (row, &p) in positions.iter().enumerate() {
            for (j, &inv) in self.inv_freq.iter().enumerate() {
                let angle = f64::from(p as f32 * inv);
                let (c, s) = (angle.cos() as f32, angle.sin() as f32);
                let (a, bb) = match self.layout {
                    RopeLayout::RotateHalf => (j, j + half),
                    RopeLayout::Interleaved => (2 * j, 2 * j + 1),
                };
                cos[row * d + a] = c;
                cos[row * d + bb] = c;
                sin[row * d + a] = s;
                sin[row * d + bb] = s;
            }
        }
        (
            Tensor::from_data(TensorData::new(cos, [b, 1, t, d]), device),
            Tensor::from_data(TensorData::new(sin, [b, 1, t, d]), device),
        )
    }

    /// Rotates `x` (`[b, heads, t, head_dim]`) with tables from [`Rope::tables`].
    pub fn apply(&self, x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
        let rotated = match self.layout {
            RopeLayout::RotateHalf => rotate_half(x.clone()),
            RopeLayout::Interleaved => rotate_pairs(x.clone()),
        };
        x * cos.clone() + rotated * sin.clone()
    }
}

/// `rotate_half(x) = cat(−x[d/2..], x[..d/2])` along the last dimension.
pub fn rotate_half(x: Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().slice_dim(3, 0..d / 2);
    let x2 = x.slice_dim(3, d / 2..d);
    Tensor::cat(vec![x2.neg(), x1], 3)
}

/// The interleaved counterpart: `(x[2j], x[2j+1]) → (−x[2j+1], x[2j])`.
pub fn rotate_pairs(x: Tensor<4>) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let pairs = x.reshape([b, h, t, d / 2, 2]);
    let even = pairs.clone().slice_dim(4, 0..1);
    let odd = pairs.slice_dim(4, 1..2);
    Tensor::cat(vec![odd.neg(), even], 4).reshape([b, h, t, d])
}

/// Undoes llama.cpp's Q/K row permutation: GGUF rows `(head, j, p)` → Hugging Face rows
/// `(head, p, j)` for a `[n_heads · head_dim, cols]` row-major matrix (`p ∈ {0, 1}` selects
/// the half, `j < head_dim / 2` the pair).
pub fn unpermute_rows(w: &[f32], n_heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    reorder_rows(w, n_heads, head_dim, cols, false)
}

/// Applies llama.cpp's Q/K row permutation (Hugging Face → GGUF layout).
pub fn permute_rows(w: &[f32], n_heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    reorder_rows(w, n_heads, head_dim, cols, true)
}

fn reorder_rows(
    w: &[f32],
    n_heads: usize,
    head_dim: usize,
    cols: usize,
    to_gguf: bool,
) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..n_heads {
        for p in 0..2 {
            for j in 0..half {
                let hf = h * head_dim + p * half + j;
                let gg = h * head_dim + 2 * j + p;
                let (src, dst) = if to_gguf { (hf, gg) } else { (gg, hf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec_of(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn permutation_round_trips() {
        let w: Vec<f32> = (0..2 * 8 * 3).map(|i| i as f32).collect();
        assert_eq!(unpermute_rows(&permute_rows(&w, 2, 8, 3), 2, 8, 3), w);
        assert_ne!(permute_rows(&w, 2, 8, 3), w);
    }

    #[test]
    fn interleaved_on_permuted_weights_equals_rotate_half() {
        // One head of dimension 8, projection of a 3-vector: q = W x.
        let device = Device::flex();
        let (heads, d, cols, pos) = (2usize, 8usize, 3usize, 5usize);
        let w: Vec<f32> = (0..heads * d * cols)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let x = [0.3f32, -1.2, 0.7];
        let project = |w: &[f32]| -> Vec<f32> {
            (0..heads * d)
                .map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum())
                .collect()
        };
        let q_hf = project(&w);
        let q_gg = project(&permute_rows(&w, heads, d, cols));
        let as_tensor =
            |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, heads, 1, d]), &device);
        let half = Rope::new(RopeLayout::RotateHalf, d, 10_000.0);
        let inter = Rope::new(RopeLayout::Interleaved, d, 10_000.0);
        let (c, s) = half.tables(&[pos as i64], 1, 1, &device);
        let a = vec_of(half.apply(as_tensor(q_hf), &c, &s));
        let (c, s) = inter.tables(&[pos as i64], 1, 1, &device);
        let b = vec_of(inter.apply(as_tensor(q_gg), &c, &s));
        // Interleaved output is in GGUF row order: map it back to compare.
        let b = unpermute_rows(&b, heads, d, 1);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        // Position 0 is the identity.
        let (c, s) = half.tables(&[0], 1, 1, &device);
        let q = as_tensor(project(&w));
        assert_eq!(vec_of(half.apply(q.clone(), &c, &s)), vec_of(q));
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        // Llama 3.1 parameters: factor 8, low 1, high 4, original 8192, θ 500000, d = 128.
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let plain = inv_frequencies(128, 500_000.0, &RopeScaling::Default).unwrap();
        let scaled = inv_frequencies(128, 500_000.0, &scaling).unwrap();
        // Wavelength 2π/θ below 8192/4 = 2048: unchanged.
        assert_eq!(scaled[0], plain[0]);
        // The lowest frequency (wavelength far above 8192): divided by the factor.
        assert!((scaled[63] - plain[63] / 8.0).abs() <= plain[63] * 1e-6);
        // In between: between the two, monotone.
        for j in 0..64 {
            assert!(scaled[j] <= plain[j] && scaled[j] >= plain[j] / 8.0 * (1.0 - 1e-6));
        }
        // Divisors that equal the llama3 ratios reproduce the same frequencies.
        let factors: Vec<f32> = plain.iter().zip(&scaled).map(|(p, s)| p / s).collect();
        let via = inv_frequencies(128, 500_000.0, &RopeScaling::FreqFactors(factors)).unwrap();
        for (a, b) in via.iter().zip(&scaled) {
            assert!((a - b).abs() <= b * 1e-6);
        }
        assert!(inv_frequencies(128, 1e4, &RopeScaling::FreqFactors(vec![1.0; 3])).is_err());
    }
}
