//! Weight matrices kept in their GGUF blocks, and the threaded matrix product over them.

use std::sync::{Arc, Mutex};

use crate::error::{LmError, Result};
use crate::format::dequant;
use crate::format::ggml_type::GgmlType;
use crate::kernels::qdot::{
    MAX_TILE, QActs, QType, dot_pair8_f32, dot_rows_f32, dot_tile, dot_tile_f32, pair8_f32_runs,
};

/// How a matrix is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// GGUF blocks read by the integer kernels, in place in the file's bytes (shared by every
    /// matrix of the model) or in a buffer of their own (rows reordered at load).
    Blocks {
        /// Block type.
        ty: QType,
        /// The buffer holding the blocks.
        data: Arc<Vec<u8>>,
        /// Where they start in it (`rows × ty.row_bytes(cols)` bytes).
        offset: usize,
    },
    /// f32 values (F32, F16 and BF16 tensors, converted once at load), read by an f32 dot.
    F32(Vec<f32>),
}

/// A `[rows, cols]` weight matrix (`y = W · x`, one row per output).
#[derive(Debug, Clone, PartialEq)]
pub struct QMatrix {
    /// GGUF tensor name (for errors and reports).
    pub name: String,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// The values.
    pub storage: Storage,
}

impl QMatrix {
    /// A matrix from a GGUF tensor's bytes (`dims` in ggml order: `[cols, rows]`), copied.
    ///
    /// # Errors
    /// [`LmError::UnsupportedQuantizedTensor`] for a block type the integer kernels cannot
    /// read (naming the tensor and type), [`LmError::WeightShape`] for a tensor that is not
    /// 2-D or whose rows are not whole blocks, and de-quantisation errors.
    pub fn from_gguf(name: &str, ty: GgmlType, dims: &[u64], bytes: &[u8]) -> Result<Self> {
        let len = bytes.len();
        Self::from_shared(name, ty, dims, &Arc::new(bytes.to_vec()), 0..len)
    }

    /// A matrix over `data[range]` without copying it (block types; F32/F16/BF16 are
    /// converted to f32).
    ///
    /// # Errors
    /// As [`QMatrix::from_gguf`]; a range outside `data`.
    pub fn from_shared(
        name: &str,
        ty: GgmlType,
        dims: &[u64],
        data: &Arc<Vec<u8>>,
        range: std::ops::Range<usize>,
    ) -> Result<Self> {
        let Some(bytes) = data.get(range.clone()) else {
            return Err(LmError::TensorOutOfBounds {
                tensor: name.to_string(),
                start: range.start as u64,
                size: range.len() as u64,
                data_len: data.len() as u64,
            });
        };
        let shape_err = || LmError::WeightShape {
            path: crate::error::UNNAMED_GGUF.into(),
            name: name.to_string(),
            expected: vec![0, 0],
            found: dims.iter().rev().map(|&d| d as usize).collect(),
        };
        let &[cols, rows] = dims else {
            return Err(shape_err());
        };
        let (rows, cols) = (rows as usize, cols as usize);
        let storage = match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
                Storage::F32(dequant::dequantize(ty, bytes, rows * cols)?)
            }
            _ => {
                let Some(qt) = QType::from_ggml(ty) else {
                    return Err(LmError::UnsupportedQuantizedTensor {
                        tensor: name.to_string(),
                        ggml_type: ty.name(),
                        supported: "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K",
                    });
                };
                if !cols.is_multiple_of(qt.block_values())
                    || !cols.is_multiple_of(crate::kernels::qdot::QK)
                    || bytes.len() != rows * qt.row_bytes(cols)
                {
                    return Err(shape_err());
                }
                Storage::Blocks {
                    ty: qt,
                    data: Arc::clone(data),
                    offset: range.start,
                }
            }
        };
        Ok(Self {
            name: name.to_string(),
            rows,
            cols,
            storage,
        })
    }

    /// Reorders the rows: new row `i` is old row `order[i]`.
    pub fn permute_rows(&mut self, order: &[usize]) {
        match &mut self.storage {
            Storage::Blocks { ty, data, offset } => {
                let rb = ty.row_bytes(self.cols);
                let old = &data[*offset..*offset + self.rows * rb];
                let new: Vec<u8> = order
                    .iter()
                    .flat_map(|&r| old[r * rb..(r + 1) * rb].iter().copied())
                    .collect();
                *data = Arc::new(new);
                *offset = 0;
            }
            Storage::F32(v) => {
                let c = self.cols;
                let old = std::mem::take(v);
                *v = order
                    .iter()
                    .flat_map(|&r| old[r * c..(r + 1) * c].iter().copied())
                    .collect();
            }
        }
    }

    /// Row `r` as f32 (the embedding lookup).
    ///
    /// # Errors
    /// A row outside the matrix.
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<()> {
        if r >= self.rows || out.len() != self.cols {
            return Err(LmError::TokenOutOfRange {
                id: r as u32,
                vocab_size: self.rows,
            });
        }
        match &self.storage {
            Storage::Blocks { ty, .. } => {
                let rb = ty.row_bytes(self.cols);
                dequant::dequantize_into(ty.ggml(), &self.blocks()[r * rb..(r + 1) * rb], out)
            }
            Storage::F32(v) => {
                out.copy_from_slice(&v[r * self.cols..(r + 1) * self.cols]);
                Ok(())
            }
        }
    }

    /// The block bytes (empty for f32 storage).
    pub fn blocks(&self) -> &[u8] {
        match &self.storage {
            Storage::Blocks { ty, data, offset } => {
                &data[*offset..*offset + self.rows * ty.row_bytes(self.cols)]
            }
            Storage::F32(_) => &[],
        }
    }

    /// The flat index of the first NaN or infinite value, if any: of an f32 matrix, the value;
    /// of a block matrix, the first value of the first block whose scale is not finite.
    pub fn first_non_finite(&self) -> Option<usize> {
        match &self.storage {
            Storage::Blocks { ty, .. } => ty
                .first_non_finite_block(self.blocks())
                .map(|b| b * ty.block_values()),
            Storage::F32(v) => dequant::first_non_finite(v),
        }
    }

    /// Bytes of weights (the blocks, or 4 per f32 value).
    pub fn size_bytes(&self) -> usize {
        match &self.storage {
            Storage::Blocks { ty, .. } => self.rows * ty.row_bytes(self.cols),
            Storage::F32(v) => v.len() * 4,
        }
    }

    /// The block type's name (`"q4_1"`, `"f32"`).
    pub fn type_name(&self) -> &'static str {
        match &self.storage {
            Storage::Blocks { ty, .. } => ty.ggml().name(),
            Storage::F32(_) => "f32",
        }
    }

    /// `W[r] · x[t]` for rows `r0..r1` and tokens `t0..t1`, written to
    /// `out[(t − t0) · stride + col0 + (r − r0)]`, with `x` given both as f32 and quantised.
    #[allow(clippy::too_many_arguments)]
    fn product_into(
        &self,
        x: &[f32],
        acts: &QActs,
        (t0, t1): (usize, usize),
        (r0, r1): (usize, usize),
        out: &mut [f32],
        stride: usize,
        col0: usize,
    ) {
        match &self.storage {
            Storage::Blocks { ty, .. } => {
                let bytes = self.blocks();
                let rb = ty.row_bytes(self.cols);
                // f32 activations are read from their aligned copy.
                let xf: &[f32] = if acts.exact { acts.f32_rows() } else { &[] };
                if acts.exact && t1 - t0 == 1 {
                    // One f32 activation row (batch-1 decoding): every row in one call.
                    let c = self.cols;
                    let dst = &mut out[col0..col0 + (r1 - r0)];
                    dot_rows_f32(
                        *ty,
                        &bytes[r0 * rb..r1 * rb],
                        &xf[t0 * c..(t0 + 1) * c],
                        dst,
                    );
                    return;
                }
                // From two activation rows on, the AMX unit: 16 weight rows per panel; the
                // rows past the last whole 16 go through the tiles below.
                let first = r0;
                let mut r0 = r0;
                if !acts.exact && t1 - t0 >= AMX_MIN_TOKENS && amx_panels(*ty) {
                    let whole = r0 + (r1 - r0) / 16 * 16;
                    amx_rows(
                        *ty,
                        bytes,
                        rb,
                        acts,
                        (t0, t1),
                        (r0, whole),
                        out,
                        stride,
                        col0,
                    );
                    r0 = whole;
                }
                let mut tile = [0f32; 2 * MAX_TILE];
                // f32 activations: rows in pairs where a two-row kernel exists (each
                // activation load then serves two rows); full tiles of 8 tokens only, with
                // the same sums as the one-row tile.
                let pairs = acts.exact && pair8_f32_runs(*ty);
                // Tokens in blocks of 64 keep the activations in the L1/L2 cache while the
                // rows stream past.
                for tb in (t0..t1).step_by(64) {
                    let te = (tb + 64).min(t1);
                    let mut r = r0;
                    while r < r1 {
                        let two = pairs && r + 1 < r1;
                        let rows_here = 1 + usize::from(two);
                        let mut t = tb;
                        while t < te {
                            let m = (te - t).min(MAX_TILE);
                            if two && m == MAX_TILE {
                                let rows = &bytes[r * rb..(r + 2) * rb];
                                dot_pair8_f32(*ty, rows, xf, self.cols, t, &mut tile);
                            } else {
                                for i in 0..rows_here {
                                    let row = &bytes[(r + i) * rb..(r + i + 1) * rb];
                                    let o = &mut tile[i * MAX_TILE..];
                                    if acts.exact {
                                        dot_tile_f32(*ty, row, xf, self.cols, t, m, o);
                                    } else {
                                        dot_tile(*ty, row, acts, t, m, o);
                                    }
                                }
                            }
                            for i in 0..rows_here {
                                for j in 0..m {
                                    out[(t + j - t0) * stride + col0 + (r + i - first)] =
                                        tile[i * MAX_TILE + j];
                                }
                            }
                            t += m;
                        }
                        r += rows_here;
                    }
                }
            }
            Storage::F32(v) => {
                let c = self.cols;
                // Second-term rows (two-term activations) add nothing: f32 matrices read x.
                let real = acts.rows / acts.terms.max(1);
                for t in t0..t1 {
                    if t >= real {
                        for r in r0..r1 {
                            out[(t - t0) * stride + col0 + (r - r0)] = 0.0;
                        }
                        continue;
                    }
                    let xr = &x[t * c..(t + 1) * c];
                    for r in r0..r1 {
                        out[(t - t0) * stride + col0 + (r - r0)] =
                            dot_f32(&v[r * c..(r + 1) * c], xr);
                    }
                }
            }
        }
    }
}

pub use crate::kernels::qdot::dot_f32;

/// Matrices that read the same input (Q, K and V; gate and up), multiplied in one parallel
/// pass: `out[t] = [W₀ · x[t], W₁ · x[t], …]`.
///
/// Work is split over the threads of the [`crate::kernels::pool`]: by tokens when there are
/// at least [`TOKEN_SPLIT`] input rows (prefill: each thread writes whole output rows, every
/// weight block is unpacked once per tile of tokens), otherwise by contiguous ranges of the
/// stacked weight rows (decoding: each weight byte is read by one thread).
pub fn product(mats: &[&QMatrix], x: &[f32], acts: &QActs, out: &mut Vec<f32>) {
    product_rows_all(mats, x, acts, out);
    if acts.terms == 2 {
        // Fold the second-term rows onto the first.
        let total: usize = mats.iter().map(|m| m.rows).sum();
        let n = acts.rows / 2;
        let (a, b) = out.split_at_mut(n * total);
        a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y);
        out.truncate(n * total);
    }
}

/// Activation rows from which a product goes to the AMX panels: batched decoding, prefill,
/// and the two rows (value and residual) of batch-1 decoding with two-term activations
/// (SmolLM2 Q4_1: 64–85 → 97–116 tok/s; one row stays on the VNNI tile, which reads each
/// weight block once without the panel's transposition).
const AMX_MIN_TOKENS: usize = 2;

/// Whether the AMX panels read `ty` here ([`crate::kernels::qdot::amx`]).
fn amx_panels(ty: QType) -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::kernels::qdot::amx::supports(ty) && crate::kernels::qdot::amx_enabled()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = ty;
        false
    }
}

/// Rows `r0..r1` (a multiple of 16 of them) of a block matrix against tokens `t0..t1` on the
/// AMX unit, written as [`QMatrix::product_into`] writes them (relative to `r0`).
#[allow(clippy::too_many_arguments)]
fn amx_rows(
    ty: QType,
    bytes: &[u8],
    rb: usize,
    acts: &QActs,
    (t0, t1): (usize, usize),
    (r0, r1): (usize, usize),
    out: &mut [f32],
    stride: usize,
    col0: usize,
) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        use crate::kernels::qdot::amx::{ROWS, TOKENS, panel};
        let mut p = [0f32; TOKENS * ROWS];
        // Tokens in blocks of 64 keep the activations in the L1/L2 cache while the rows
        // stream past.
        for tb in (t0..t1).step_by(64) {
            let te = (tb + 64).min(t1);
            for r in (r0..r1).step_by(ROWS) {
                let rows = &bytes[r * rb..(r + ROWS) * rb];
                for t in (tb..te).step_by(TOKENS) {
                    let m = (te - t).min(TOKENS);
                    panel(ty, rows, rb, acts, t, m, &mut p);
                    for j in 0..m {
                        let o = (t + j - t0) * stride + col0 + (r - r0);
                        out[o..o + ROWS].copy_from_slice(&p[j * ROWS..(j + 1) * ROWS]);
                    }
                }
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = (ty, bytes, rb, acts, t0, t1, r0, r1, out, stride, col0);
        unreachable!("amx_panels is false off x86_64 Linux");
    }
}

/// [`product`] over every row of `acts` (both terms of two-term activations, unfolded).
fn product_rows_all(mats: &[&QMatrix], x: &[f32], acts: &QActs, out: &mut Vec<f32>) {
    let n = acts.rows;
    let total: usize = mats.iter().map(|m| m.rows).sum();
    // Every element is written below, so a buffer of the right size is reused as it is.
    if out.len() != n * total {
        out.clear();
        out.resize(n * total, 0.0);
    }
    let pool = crate::kernels::pool::global();
    let k = pool.threads();
    // On the AMX unit a panel takes 16 tokens: batches (x2 terms included) stay split by rows,
    // so that each weight byte is read by one thread.
    let all_amx = !acts.exact
        && mats
            .iter()
            .all(|m| matches!(&m.storage, Storage::Blocks { ty, .. } if amx_panels(*ty)));
    let split = if all_amx {
        AMX_TOKEN_SPLIT
    } else {
        TOKEN_SPLIT
    };
    if n >= split && k > 1 {
        let per = n.div_ceil(k);
        let slots: Vec<Mutex<(usize, &mut [f32])>> = out
            .chunks_mut(per * total)
            .enumerate()
            .map(|(i, c)| Mutex::new((i * per, c)))
            .collect();
        pool.for_each(slots.len(), &|j| {
            let mut g = slots[j].lock().unwrap_or_else(|e| e.into_inner());
            let (t0, dst) = &mut *g;
            let t1 = *t0 + dst.len() / total;
            let mut col = 0;
            for m in mats {
                m.product_into(x, acts, (*t0, t1), (0, m.rows), dst, total, col);
                col += m.rows;
            }
        });
        return;
    }
    // Contiguous ranges of the stacked rows (whole multiples of 16, the AMX panels' rows),
    // several per thread, handed out as threads free up (`SpinPool::for_each`).
    let chunks = if k > 1 { k * CHUNKS_PER_THREAD } else { 1 };
    let per = total.div_ceil(chunks).div_ceil(16) * 16;
    let ranges: Vec<(usize, usize)> = (0..total)
        .step_by(per)
        .map(|s| (s, (s + per).min(total)))
        .collect();
    // Rows s..e of the stack, across the matrices they fall in, into a [n, e − s] panel.
    let run = |(s, e): (usize, usize), dst: &mut [f32]| {
        let mut base = 0;
        for m in mats {
            let (ms, me) = (base, base + m.rows);
            base = me;
            let (lo, hi) = (s.max(ms), e.min(me));
            if lo < hi {
                m.product_into(x, acts, (0, n), (lo - ms, hi - ms), dst, e - s, lo - s);
            }
        }
    };
    // Each range's output as its own slice of `buf`: `out` itself when there is one input row
    // (a range is then a contiguous run of `out`), otherwise an [n, e − s] panel that the
    // thread which computed it copies into place (`place`), so that the copies run beside
    // the other threads' products instead of after them on the calling thread.
    let for_ranges = |buf: &mut [f32], place: &(dyn Fn(usize, &[f32]) + Sync)| {
        let mut slots: Vec<Mutex<&mut [f32]>> = Vec::with_capacity(ranges.len());
        let mut rest = buf;
        for &(s, e) in &ranges {
            let (a, b) = rest.split_at_mut(n * (e - s));
            slots.push(Mutex::new(a));
            rest = b;
        }
        pool.for_each(ranges.len(), &|j| {
            let mut dst = slots[j].lock().unwrap_or_else(|e| e.into_inner());
            run(ranges[j], &mut dst);
            place(j, &dst);
        });
    };
    if n == 1 {
        for_ranges(out, &|_, _| {});
        return;
    }
    // The panels live on the calling thread between calls; the buffer only grows (no
    // allocation and no zeroing per call: every element is written).
    thread_local! {
        static PANELS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let out = Mutex::new(&mut out[..]);
    PANELS.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < n * total {
            buf.resize(n * total, 0.0);
        }
        for_ranges(&mut buf[..n * total], &|j, panel| {
            let (s, e) = ranges[j];
            let w = e - s;
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            for t in 0..n {
                out[t * total + s..t * total + e].copy_from_slice(&panel[t * w..(t + 1) * w]);
            }
        });
    });
}

/// Ranges of weight rows per pool thread in a product split by rows (handed out dynamically,
/// so a thread slowed by the host does not hold the others back by more than one range).
const CHUNKS_PER_THREAD: usize = 8;

/// Input rows from which [`product`] splits work by tokens instead of weight rows.
pub const TOKEN_SPLIT: usize = 16;

/// [`TOKEN_SPLIT`] for products whose matrices all go to the AMX panels.
pub const AMX_TOKEN_SPLIT: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::qdot::portable_tile;

    fn q8_matrix(rows: usize, cols: usize) -> (QMatrix, Vec<u8>) {
        // Q8_0 blocks: f16 scale 0.01 (0x211f) and values cycling through −100..100.
        let mut bytes = Vec::new();
        for r in 0..rows {
            for b in 0..cols / 32 {
                bytes.extend(0x211fu16.to_le_bytes());
                bytes.extend(
                    (0..32).map(|i| (((r * 7 + b * 3 + i * 5) % 201) as i32 - 100) as i8 as u8),
                );
            }
        }
        let m =
            QMatrix::from_gguf("w", GgmlType::Q8_0, &[cols as u64, rows as u64], &bytes).unwrap();
        (m, bytes)
    }

    #[test]
    fn stacked_product_equals_row_by_row_dots_for_every_batch_size() {
        let (a, _) = (q8_matrix(37, 64).0, ());
        let (b, _) = (q8_matrix(21, 64).0, ());
        for n in [1usize, 3, 8, 9, 16, 40] {
            let x: Vec<f32> = (0..n * 64)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
                .collect();
            let mut acts = QActs::default();
            acts.quantize(&x, n, 64);
            let mut out = Vec::new();
            product(&[&a, &b], &x, &acts, &mut out);
            assert_eq!(out.len(), n * 58);
            for t in 0..n {
                for (r, (m, local)) in (0..37)
                    .map(|r| (&a, r))
                    .chain((0..21).map(|r| (&b, r)))
                    .enumerate()
                {
                    let bytes = m.blocks();
                    let Storage::Blocks { ty, .. } = &m.storage else {
                        unreachable!()
                    };
                    let rb = ty.row_bytes(64);
                    let mut want = [0f32; MAX_TILE];
                    portable_tile(
                        *ty,
                        &bytes[local * rb..(local + 1) * rb],
                        &acts,
                        t,
                        1,
                        &mut want,
                    );
                    let got = out[t * 58 + r];
                    assert!(
                        (got - want[0]).abs() <= 1e-5 * want[0].abs().max(1.0),
                        "n {n} t {t} r {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn unsupported_types_and_bad_shapes_are_typed_errors_naming_the_tensor() {
        let e = QMatrix::from_gguf("blk.0.ffn_up.weight", GgmlType::Q2_K, &[256, 2], &[0; 168])
            .unwrap_err();
        assert!(
            matches!(&e, LmError::UnsupportedQuantizedTensor { tensor, ggml_type, .. } if tensor == "blk.0.ffn_up.weight" && *ggml_type == "q2_K"),
            "{e}"
        );
        assert!(e.to_string().contains("blk.0.ffn_up.weight"));
        // 40 columns: not whole Q8_0 blocks.
        let e = QMatrix::from_gguf("w", GgmlType::Q8_0, &[40, 1], &[0; 34]).unwrap_err();
        assert!(matches!(e, LmError::WeightShape { .. }), "{e}");
        // Truncated data.
        let e = QMatrix::from_gguf("w", GgmlType::Q8_0, &[32, 2], &[0; 34]).unwrap_err();
        assert!(matches!(e, LmError::WeightShape { .. }), "{e}");
        // A 3-D tensor.
        let e = QMatrix::from_gguf("w", GgmlType::F32, &[4, 2, 2], &[0; 64]).unwrap_err();
        assert!(matches!(e, LmError::WeightShape { .. }), "{e}");
        // F16 matrices are converted once and read by the f32 dot.
        let one = 0x3c00u16.to_le_bytes();
        let bytes: Vec<u8> = (0..8).flat_map(|_| one).collect();
        let m = QMatrix::from_gguf("w", GgmlType::F16, &[4, 2], &bytes).unwrap();
        assert_eq!(m.storage, Storage::F32(vec![1.0; 8]));
        assert_eq!(m.type_name(), "f32");
    }

    #[test]
    fn row_permutation_and_embedding_rows() {
        let (mut m, bytes) = q8_matrix(3, 32);
        let mut r0 = vec![0f32; 32];
        m.row_f32(2, &mut r0).unwrap();
        let want = dequant::dequantize(GgmlType::Q8_0, &bytes[68..102], 32).unwrap();
        assert_eq!(r0, want);
        m.permute_rows(&[2, 0, 1]);
        let mut r1 = vec![0f32; 32];
        m.row_f32(0, &mut r1).unwrap();
        assert_eq!(r1, want);
        assert!(m.row_f32(3, &mut r1).is_err());
    }
}
