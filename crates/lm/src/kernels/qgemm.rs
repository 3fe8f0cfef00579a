//! Int8 matrix multiplication for CPU inference: `y = x · W + b` with `W` quantised once per
//! output column and `x` quantised per row on the fly ("dynamic quantisation", as ONNX Runtime's
//! `MatMulInteger` and PyTorch's `quantize_dynamic` run BERT on CPUs).
//!
//! * Weights: symmetric per output column, `q_w = round(W[:, n] / s_n)`, `s_n = max|W[:, n]| /
//!   127`, packed into 64-column groups laid out for the kernel ([`QuantizedMatrix`]).
//! * Activations: affine per row, `x ≈ s_m · (q_x − z_m)` with `q_x ∈ [0, 255]` spanning the
//!   row's `[min(x, 0), max(x, 0)]` (unsigned, as `vpdpbusd` wants; [`QuantizedRows`]). Rows
//!   after a GELU are mostly positive, so an affine map keeps about twice the resolution of a
//!   symmetric one there.
//! * Product: `y[m, n] = s_m · s_n · (Σ_k q_x · q_w − z_m · Σ_k q_w) + b_n`, the integer sums
//!   exact in `i32` (at most `255 · 127 · k`, below 2³¹ for `k < 66,000`).
//!
//! The integer tile runs on AVX-512 VNNI where the CPU has it and in portable Rust elsewhere,
//! with identical results (`kernels::int8_tile`, see [`crate::kernels`]); rows are spread over
//! rayon's threads.
//!
//! ```
//! use lm::kernels::qgemm::{QuantizedMatrix, QuantizedRows, qgemm};
//!
//! // W = [in 3, out 2], x = [2 rows, 3].
//! let w = [1.0, -2.0, 0.5, 0.25, -1.0, 4.0];
//! let x = [0.5, -1.0, 2.0, 1.0, 1.0, 1.0];
//! let qw = QuantizedMatrix::from_f32(&w, 3, 2)?;
//! let qx = QuantizedRows::from_f32(&x, 2, 3)?;
//! let mut y = vec![0.0; 4];
//! qgemm(&qx, &qw, &[0.0, 1.0], &mut y)?;
//! let exact = [0.5 * 1.0 - 1.0 * 0.5 - 2.0, 0.5 * -2.0 - 0.25 + 8.0 + 1.0];
//! assert!((y[0] - exact[0]).abs() < 0.05 && (y[1] - exact[1]).abs() < 0.05);
//! # Ok::<(), lm::LmError>(())
//! ```

// Only the parent module may use `unsafe`; this one stays safe code.
#![deny(unsafe_code)]

use rayon::prelude::*;

use crate::error::{LmError, Result};
use crate::kernels::{
    GROUP_STEP_BYTES, TILE_COLS, TILE_ROWS, dequant_tile, int8_tile, quantize_rows_u8,
};

/// A `[k, n]` weight matrix quantised per output column and packed for [`qgemm`].
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    k: usize,
    n: usize,
    /// `k` rounded up to a multiple of 4.
    k_pad: usize,
    /// Per 64-column group: `k_pad / 4` steps of 4 panels × 16 columns × 4 `k` values.
    packed: Vec<i8>,
    /// Per output column (padded to a multiple of 64 with zeros).
    scales: Vec<f32>,
    /// `Σ_k q_w[k, n]` per output column (padded).
    col_sums: Vec<i32>,
}

impl QuantizedMatrix {
    /// Quantises `w`, row-major `[k, n]` (input dimension first, as `y = x · W`).
    ///
    /// # Errors
    /// [`LmError::ShapeMismatch`] when `w.len() ≠ k·n` or a dimension is 0,
    /// [`LmError::NonFinite`] for a NaN or infinite weight.
    pub fn from_f32(w: &[f32], k: usize, n: usize) -> Result<Self> {
        if k == 0 || n == 0 || w.len() != k * n {
            return Err(LmError::ShapeMismatch {
                context: "QuantizedMatrix::from_f32",
                expected: format!("{k}×{n} = {} values, both > 0", k * n),
                got: format!("{} values", w.len()),
            });
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite()) {
            return Err(LmError::NonFinite {
                context: "QuantizedMatrix::from_f32",
                index: i,
            });
        }
        let k_pad = k.div_ceil(4) * 4;
        let n_pad = n.div_ceil(TILE_COLS) * TILE_COLS;
        let mut scales = vec![0.0f32; n_pad];
        let mut col_sums = vec![0i32; n_pad];
        let mut q = vec![0i8; k_pad * n_pad]; // [k_pad, n_pad]
        for c in 0..n {
            let max = (0..k).fold(0.0f32, |m, r| m.max(w[r * n + c].abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales[c] = s;
            let mut sum = 0i32;
            for r in 0..k {
                let v = (w[r * n + c] / s).round_ties_even().clamp(-127.0, 127.0) as i8;
                q[r * n_pad + c] = v;
                sum += i32::from(v);
            }
            col_sums[c] = sum;
        }
        let k4 = k_pad / 4;
        let groups = n_pad / TILE_COLS;
        let mut packed = vec![0i8; groups * k4 * GROUP_STEP_BYTES];
        for g in 0..groups {
            for kk in 0..k4 {
                let step = &mut packed[(g * k4 + kk) * GROUP_STEP_BYTES..][..GROUP_STEP_BYTES];
                for col in 0..TILE_COLS {
                    for t in 0..4 {
                        step[col * 4 + t] = q[(4 * kk + t) * n_pad + g * TILE_COLS + col];
                    }
                }
            }
        }
        Ok(Self {
            k,
            n,
            k_pad,
            packed,
            scales,
            col_sums,
        })
    }

    /// Input dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output dimension.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The de-quantised matrix, row-major `[k, n]` (for checks: how far quantisation moved it).
    pub fn to_f32(&self) -> Vec<f32> {
        let k4 = self.k_pad / 4;
        let mut out = vec![0.0; self.k * self.n];
        for r in 0..self.k {
            for c in 0..self.n {
                let (g, col) = (c / TILE_COLS, c % TILE_COLS);
                let idx = (g * k4 + r / 4) * GROUP_STEP_BYTES + col * 4 + r % 4;
                out[r * self.n + c] = f32::from(self.packed[idx]) * self.scales[c];
            }
        }
        out
    }

    fn group(&self, g: usize) -> &[i8] {
        let len = (self.k_pad / 4) * GROUP_STEP_BYTES;
        &self.packed[g * len..(g + 1) * len]
    }
}

/// Rows of activations quantised per row for [`qgemm`] (reusable: [`Self::quantize`] refills it).
#[derive(Debug, Clone, Default)]
pub struct QuantizedRows {
    m: usize,
    k: usize,
    k_pad: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

/// Rows per parallel task of the row-wise loops (quantisation here, norms in `bert_int8`).
pub(crate) const ROWS_PER_TASK: usize = 32;

impl QuantizedRows {
    /// Quantises `x`, row-major `[m, k]`.
    ///
    /// # Errors
    /// As [`Self::quantize`].
    pub fn from_f32(x: &[f32], m: usize, k: usize) -> Result<Self> {
        let mut rows = Self::default();
        rows.quantize(x, m, k)?;
        Ok(rows)
    }

    /// Re-fills these rows from `x`, row-major `[m, k]`, reusing the buffers.
    ///
    /// # Errors
    /// [`LmError::ShapeMismatch`] when `x.len() ≠ m·k` or `k = 0`, [`LmError::NonFinite`] for a
    /// NaN or infinite value.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize) -> Result<()> {
        if k == 0 || x.len() != m * k {
            return Err(LmError::ShapeMismatch {
                context: "QuantizedRows::quantize",
                expected: format!("{m}×{k} = {} values, k > 0", m * k),
                got: format!("{} values", x.len()),
            });
        }
        let k_pad = k.div_ceil(4) * 4;
        self.m = m;
        self.k = k;
        self.k_pad = k_pad;
        self.data.resize(m * k_pad, 128);
        self.scales.resize(m, 1.0);
        self.zeros.resize(m, 0);
        self.data
            .par_chunks_mut(ROWS_PER_TASK * k_pad)
            .zip(self.scales.par_chunks_mut(ROWS_PER_TASK))
            .zip(self.zeros.par_chunks_mut(ROWS_PER_TASK))
            .zip(x.par_chunks(ROWS_PER_TASK * k))
            .map(|(((q, s), z), x)| {
                let mut finite = true;
                quantize_rows_u8(x, k, k_pad, q, s, z, &mut finite);
                finite
            })
            .reduce(|| true, |a, b| a && b)
            .then_some(())
            .ok_or_else(|| LmError::NonFinite {
                context: "QuantizedRows::quantize",
                index: x.iter().position(|v| !v.is_finite()).unwrap_or(0),
            })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.m
    }
}

/// `out = x · W + bias` (row-major `[m, n]`) from quantised rows and weights.
///
/// Work is split over rayon's threads by blocks of whole rows, one block per thread.
///
/// # Errors
/// [`LmError::ShapeMismatch`] when `x`'s width differs from `W`'s input dimension, `bias` is not
/// `n` long (or empty, for no bias) or `out` is not `m·n` long.
pub fn qgemm(x: &QuantizedRows, w: &QuantizedMatrix, bias: &[f32], out: &mut [f32]) -> Result<()> {
    let (m, n) = (x.m, w.n);
    if x.k != w.k || out.len() != m * n || !(bias.is_empty() || bias.len() == n) {
        return Err(LmError::ShapeMismatch {
            context: "qgemm",
            expected: format!("x [m, {}], bias [{n}] or empty, out [{m}·{n}]", w.k),
            got: format!(
                "x [{m}, {}], bias [{}], out [{}]",
                x.k,
                bias.len(),
                out.len()
            ),
        });
    }
    if m == 0 {
        return Ok(());
    }
    let zeros;
    let bias = if bias.is_empty() {
        zeros = vec![0.0; n];
        &zeros[..]
    } else {
        bias
    };
    let groups = w.n.div_ceil(TILE_COLS);
    // One block of rows per thread: each task owns whole output rows and streams every weight
    // group once for all its rows. Splitting finer (or by columns, with the rows re-read per
    // group) measured slower even for a single 93-token sequence: the weights, 1.8 MB per
    // MiniLM block, come from L3 once per task.
    let threads = rayon::current_num_threads().max(1);
    let per_task = m.div_ceil(threads).div_ceil(TILE_ROWS) * TILE_ROWS;
    out.par_chunks_mut(per_task * n)
        .enumerate()
        .for_each(|(t, dst)| {
            let r0 = t * per_task;
            let rows = dst.len() / n;
            for g in 0..groups {
                rows_times_group(x, w, g, r0, rows, bias, &mut dst[g * TILE_COLS..], n);
            }
        });
    Ok(())
}

/// Rows `r0..r0 + rows` of `x` times column group `g` of `w`, written to `dst` (row stride
/// `ldo`, the group's first column at `dst[0]`).
#[allow(clippy::too_many_arguments)]
fn rows_times_group(
    x: &QuantizedRows,
    w: &QuantizedMatrix,
    g: usize,
    r0: usize,
    rows: usize,
    bias: &[f32],
    dst: &mut [f32],
    ldo: usize,
) {
    let k4 = x.k_pad / 4;
    let group = w.group(g);
    let c0 = g * TILE_COLS;
    let cols = TILE_COLS.min(w.n - c0);
    let mut acc = [[0i32; TILE_COLS]; TILE_ROWS];
    let mut r = 0;
    while r < rows {
        let tr = TILE_ROWS.min(rows - r);
        let a = &x.data[(r0 + r) * x.k_pad..];
        int8_tile(a, x.k_pad, tr, group, k4, &mut acc);
        dequant_tile(
            &acc,
            tr,
            cols,
            &x.scales[r0 + r..],
            &x.zeros[r0 + r..],
            &w.scales[c0..],
            &w.col_sums[c0..],
            &bias[c0..],
            &mut dst[r * ldo..],
            ldo,
        );
        r += tr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| (i as f32 * 0.731 + seed).sin() * 2.0)
            .collect()
    }

    /// The exact product of the de-quantised operands, in f64.
    fn reference(x: &QuantizedRows, xf: &[f32], w: &QuantizedMatrix, bias: &[f32]) -> Vec<f64> {
        let (m, k, n) = (x.m, w.k, w.n);
        let wd = w.to_f32();
        let mut out = vec![0.0; m * n];
        for r in 0..m {
            let (s, z) = (x.scales[r], x.zeros[r] as f32);
            for c in 0..n {
                let mut acc = f64::from(bias[c]);
                for t in 0..k {
                    let q =
                        ((xf[r * k + t] * (1.0 / s)).round_ties_even() + z).clamp(0.0, 255.0) - z;
                    acc += f64::from(q * s) * f64::from(wd[t * n + c]);
                }
                out[r * n + c] = acc;
            }
        }
        out
    }

    #[test]
    fn qgemm_equals_the_product_of_dequantised_operands() {
        // Odd sizes: k not a multiple of 4, n not of 64, m below and above the row-split size.
        for &(m, k, n) in &[
            (1, 7, 5),
            (5, 30, 70),
            (13, 64, 64),
            (50, 33, 130),
            (301, 40, 65),
        ] {
            let (xf, wf) = (data(m * k, 0.3), data(k * n, 1.7));
            let bias = data(n, 2.9);
            let w = QuantizedMatrix::from_f32(&wf, k, n).unwrap();
            let x = QuantizedRows::from_f32(&xf, m, k).unwrap();
            let mut y = vec![f32::NAN; m * n];
            qgemm(&x, &w, &bias, &mut y).unwrap();
            let want = reference(&x, &xf, &w, &bias);
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-4,
                    "{m}×{k}×{n} [{i}]: {a} vs {b}"
                );
            }
            // And close to the unquantised product (2 % of the output range).
            let mut worst = 0.0f32;
            for r in 0..m {
                for c in 0..n {
                    let exact: f32 =
                        (0..k).map(|t| xf[r * k + t] * wf[t * n + c]).sum::<f32>() + bias[c];
                    worst = worst.max((exact - y[r * n + c]).abs());
                }
            }
            assert!(worst < 0.02 * (k as f32).sqrt() * 4.0, "worst {worst}");
        }
    }

    #[test]
    fn bad_shapes_and_values_are_typed_errors() {
        assert!(matches!(
            QuantizedMatrix::from_f32(&[1.0; 5], 2, 3),
            Err(LmError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            QuantizedMatrix::from_f32(&[1.0, f32::NAN], 1, 2),
            Err(LmError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            QuantizedRows::from_f32(&[1.0, f32::INFINITY, 0.0], 1, 3),
            Err(LmError::NonFinite { index: 1, .. })
        ));
        let w = QuantizedMatrix::from_f32(&[1.0; 6], 3, 2).unwrap();
        let x = QuantizedRows::from_f32(&[1.0; 4], 2, 2).unwrap();
        let mut y = vec![0.0; 4];
        assert!(matches!(
            qgemm(&x, &w, &[], &mut y),
            Err(LmError::ShapeMismatch { .. })
        ));
        let x = QuantizedRows::from_f32(&[1.0; 6], 2, 3).unwrap();
        assert!(qgemm(&x, &w, &[0.0; 3], &mut y).is_err());
        assert!(qgemm(&x, &w, &[], &mut y[..3]).is_err());
        qgemm(&x, &w, &[], &mut y).unwrap();
        assert!(y.iter().all(|v| (v - 3.0).abs() < 1e-5));
    }
}
