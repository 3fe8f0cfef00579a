//! Integer dot products of GGUF-quantized weight rows with activations quantised on the fly,
//! for the quantized CPU executor ([`crate::quantized`]).
//!
//! **Activations** ([`QActs`]) are quantised per block of 32 values, symmetric:
//! `d = max|x| / 127`, `q = round(x / d)` (i8), and the block sum `s = d · Σ q` is kept for the
//! weight types with an offset. **Weights** stay in their GGUF blocks ([`QType`]). Every type is
//! read as groups of 32 weights `w = a · u + b` (u unsigned, Q4/Q5 types), `w = a · v`
//! (v signed, Q8_0) or `w = d · sc · (u − 32)` with one `sc` per 16 values (Q6_K), so that a
//! group's contribution to `w · x` is
//!
//! ```text
//! d_x · (a · Σ u·q + b · Σ q) = (a · d_x) · Σ u·q + b · s_x
//! ```
//!
//! with the sum `Σ u·q` exact in integers (AVX2 `vpmaddubsw` + `vpmaddwd`, or one AVX-512 VNNI
//! `vpdpbusd` per 4-byte group where the CPU has it). The kernels compute
//! one weight row against up to [`MAX_TILE`] activation rows at a time, so that a weight block is
//! unpacked once per tile during prefill.
//!
//! Three versions of each tile kernel, chosen at run time: AVX-512 VNNI (+VL, on top of AVX2),
//! AVX2 (+FMA, F16C) and portable Rust. They compute the same integer sums per group; the two
//! SIMD versions are one source instantiated twice (`tiles!`) and agree bit for bit, the
//! portable one differs only in the order of the f32 accumulation (within 1e-5 relative; all
//! tested). [`VNNI_TILES`] turns the VNNI version off.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::format::dequant::f16_to_f32;
use crate::format::ggml_type::GgmlType;

/// Values per activation block (and per weight group).
pub const QK: usize = 32;

/// Activation rows processed together against one weight row.
pub const MAX_TILE: usize = 8;

/// The GGUF block types the integer kernels read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum QType {
    /// `{f16 d; u8 qs[16]}`, `w = d · (u − 8)`.
    Q4_0,
    /// `{f16 d, m; u8 qs[16]}`, `w = d · u + m`.
    Q4_1,
    /// `{f16 d; u32 qh; u8 qs[16]}`, `w = d · (u − 16)`, 5-bit `u`.
    Q5_0,
    /// `{f16 d, m; u32 qh; u8 qs[16]}`, `w = d · u + m`.
    Q5_1,
    /// `{f16 d; i8 qs[32]}`, `w = d · v`.
    Q8_0,
    /// 256-value super-blocks, 8 groups of 32 with 6-bit scales and mins.
    Q4K,
    /// As Q4_K with a fifth bit per value.
    Q5K,
    /// 256-value super-blocks, 6-bit values, one i8 scale per 16 values.
    Q6K,
}

impl QType {
    /// The kernel type of a GGML type, or `None` when the integer kernels cannot read it.
    pub fn from_ggml(t: GgmlType) -> Option<Self> {
        Some(match t {
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q5_0 => Self::Q5_0,
            GgmlType::Q5_1 => Self::Q5_1,
            GgmlType::Q8_0 => Self::Q8_0,
            GgmlType::Q4_K => Self::Q4K,
            GgmlType::Q5_K => Self::Q5K,
            GgmlType::Q6_K => Self::Q6K,
            _ => return None,
        })
    }

    /// The GGML type.
    pub fn ggml(self) -> GgmlType {
        match self {
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Q4_1 => GgmlType::Q4_1,
            Self::Q5_0 => GgmlType::Q5_0,
            Self::Q5_1 => GgmlType::Q5_1,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4K => GgmlType::Q4_K,
            Self::Q5K => GgmlType::Q5_K,
            Self::Q6K => GgmlType::Q6_K,
        }
    }

    /// Values per block.
    pub fn block_values(self) -> usize {
        match self {
            Self::Q4K | Self::Q5K | Self::Q6K => 256,
            _ => 32,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// Bytes of one row of `cols` values (`cols` a multiple of [`Self::block_values`]).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_values() * self.block_bytes()
    }

    /// Byte offsets of the half-float fields of a block (`d`, and `m`/`dmin` where the type
    /// has one), as ggml lays them out; the K-quants' 6- and 8-bit sub-scales are integers and
    /// always finite.
    pub fn f16_fields(self) -> &'static [usize] {
        match self {
            Self::Q4_0 | Self::Q5_0 | Self::Q8_0 => &[0],
            Self::Q4_1 | Self::Q5_1 | Self::Q4K | Self::Q5K => &[0, 2],
            Self::Q6K => &[208],
        }
    }

    /// The index of the first block of `blocks` with a NaN or infinite scale (a half float
    /// whose exponent bits are all ones), if any; a block with finite scales decodes to
    /// finite values.
    pub fn first_non_finite_block(self, blocks: &[u8]) -> Option<usize> {
        let fields = self.f16_fields();
        blocks.chunks_exact(self.block_bytes()).position(|b| {
            fields
                .iter()
                .any(|&o| u16::from_le_bytes([b[o], b[o + 1]]) & 0x7c00 == 0x7c00)
        })
    }
}

/// Rows of activations quantised in blocks of [`QK`] (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QActs {
    /// Values per row (a multiple of [`QK`]).
    pub cols: usize,
    /// Number of rows.
    pub rows: usize,
    /// Quantised values, `rows × cols`.
    pub qs: Vec<i8>,
    /// Block scales, `rows × cols / QK`.
    pub d: Vec<f32>,
    /// `d · Σ q` per block.
    pub s: Vec<f32>,
    /// `d` transposed to `[block, row]` (filled when there are at least 8 rows: the 8-row
    /// AVX2 tile reads 8 rows' scales of one block with one load).
    pub dt: Vec<f32>,
    /// `s` transposed likewise.
    pub st: Vec<f32>,
    /// Terms per input row: 1, or 2 when [`QActs::quantize_two_terms`] stored each row's
    /// rounding residual as a second 8-bit row (rows `n..2n` are the residuals of `0..n`).
    pub terms: usize,
    /// True after [`QActs::keep_f32`]: nothing is quantised, and the products read the f32
    /// activations with [`dot_tile_f32`].
    pub exact: bool,
    /// After [`QActs::keep_f32`]: a copy of the f32 activations starting at `xf_at`, a
    /// 64-byte boundary (rows are whole blocks of 32, so every row starts on one): a 512-bit
    /// load that straddles two cache lines costs two, and the f32 tiles load 16 per group.
    xf: Vec<f32>,
    xf_at: usize,
}

impl QActs {
    /// Quantises `x` (`rows × cols`, row-major) into `self`, reusing its buffers.
    ///
    /// # Panics
    /// If `cols` is not a positive multiple of [`QK`] or `x.len() != rows · cols` (internal
    /// invariants: the executor checks shapes at load).
    pub fn quantize(&mut self, x: &[f32], rows: usize, cols: usize) {
        self.set_shape(x, rows, cols);
        self.exact = false;
        let nb = rows * cols / QK;
        self.qs.resize(rows * cols, 0);
        self.d.resize(nb, 0.0);
        self.s.resize(nb, 0.0);
        let pool = super::pool::global();
        let k = pool.threads();
        // Batch-1 decoding quantises one row on this thread; from 8 rows on (batched decoding,
        // prefill) the rows are split over the pool.
        if rows < 8 || k == 1 {
            quantize_blocks(x, &mut self.qs, &mut self.d, &mut self.s);
            self.transpose_scales();
            return;
        }
        // Rows split over the pool's threads.
        let per = rows.div_ceil(k);
        let bpr = cols / QK;
        type Part<'a> = (&'a [f32], &'a mut [i8], &'a mut [f32], &'a mut [f32]);
        let slots: Vec<std::sync::Mutex<Part<'_>>> = x
            .chunks(per * cols)
            .zip(self.qs.chunks_mut(per * cols))
            .zip(self.d.chunks_mut(per * bpr))
            .zip(self.s.chunks_mut(per * bpr))
            .map(|(((x, q), d), s)| std::sync::Mutex::new((x, q, d, s)))
            .collect();
        pool.for_each(slots.len(), &|j| {
            let mut g = slots[j].lock().unwrap_or_else(|e| e.into_inner());
            let (x, q, d, s) = &mut *g;
            quantize_blocks(x, q, d, s);
        });
        self.transpose_scales();
    }

    /// Records the shape of `x` (`rows × cols`) and quantises nothing: the products read `x`
    /// itself ([`dot_tile_f32`]; `Precision::F32` of the quantized executor).
    ///
    /// # Panics
    /// As [`QActs::quantize`].
    pub fn keep_f32(&mut self, x: &[f32], rows: usize, cols: usize) {
        self.set_shape(x, rows, cols);
        self.exact = true;
        let n = x.len();
        // Room first, so that the aligned offset computed from the pointer stays valid; then
        // only the few padding values and the copy are written (zeroing the whole buffer
        // before copying over it was ~1.5% of batched decoding).
        self.xf.clear();
        self.xf.reserve(n + 16);
        let at = self.xf.as_ptr().align_offset(64).min(16);
        self.xf.resize(at, 0.0);
        self.xf.extend_from_slice(x);
        self.xf_at = at;
    }

    /// The activations [`QActs::keep_f32`] kept (`rows × cols`, each row 64-byte aligned).
    pub fn f32_rows(&self) -> &[f32] {
        &self.xf[self.xf_at..self.xf_at + self.rows * self.cols]
    }

    /// Checks `x` against `rows × cols` and records the shape (one term).
    fn set_shape(&mut self, x: &[f32], rows: usize, cols: usize) {
        assert!(
            cols > 0 && cols.is_multiple_of(QK),
            "cols {cols} not a multiple of {QK}"
        );
        assert_eq!(x.len(), rows * cols, "activation shape");
        self.cols = cols;
        self.rows = rows;
        self.terms = 1;
    }

    /// Quantises `x` as two 8-bit terms per block, `x ≈ d·q + d₂·q₂` with `q₂` the rounding
    /// residual `x − d·q` quantised the same way (`d₂ ≈ d/254`): about 15 bits per value.
    /// Rows `0..rows` hold the first term, rows `rows..2·rows` the second; a product over all
    /// `2·rows` rows, folded (`out[t] + out[rows + t]`), is the two-term product.
    ///
    /// # Panics
    /// As [`QActs::quantize`].
    pub fn quantize_two_terms(&mut self, x: &[f32], rows: usize, cols: usize) {
        self.quantize(x, rows, cols);
        let residual: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| v - f32::from(self.qs[i]) * self.d[i / QK])
            .collect();
        let mut second = QActs::default();
        second.quantize(&residual, rows, cols);
        self.qs.extend_from_slice(&second.qs);
        self.d.extend_from_slice(&second.d);
        self.s.extend_from_slice(&second.s);
        self.rows = 2 * rows;
        self.terms = 2;
        self.transpose_scales();
    }

    /// Fills [`Self::dt`] and [`Self::st`] (or empties them below 8 rows).
    fn transpose_scales(&mut self) {
        let (rows, nb) = (self.rows, self.blocks());
        self.dt.clear();
        self.st.clear();
        if rows < 8 {
            return;
        }
        self.dt.resize(rows * nb, 0.0);
        self.st.resize(rows * nb, 0.0);
        for t in 0..rows {
            for g in 0..nb {
                self.dt[g * rows + t] = self.d[t * nb + g];
                self.st[g * rows + t] = self.s[t * nb + g];
            }
        }
    }

    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.cols / QK
    }
}

/// Quantises whole blocks of `x` into `qs`, `d`, `s` (see [`QActs`]).
fn quantize_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for (((xb, qb), d), s) in x
        .chunks_exact(QK)
        .zip(qs.chunks_exact_mut(QK))
        .zip(d.iter_mut())
        .zip(s.iter_mut())
    {
        let amax = xb.iter().fold(0f32, |m, &v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            // Round half away from zero without a libm call.
            let y = v * inv;
            let r = (y + 0.5f32.copysign(y)) as i32;
            let r = r.clamp(-127, 127) as i8;
            *q = r;
            sum += i32::from(r);
        }
        // A non-finite input makes the block NaN, never a silent zero.
        let finite = amax.is_finite() && xb.iter().all(|v| !v.is_nan());
        *d = if finite { scale } else { f32::NAN };
        *s = *d * sum as f32;
    }
}

/// `Σ a·b` over equal-length f32 slices (AVX2 + FMA where present).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA; reads stay within `n` of both slices.
        return unsafe { avx2::dot_f32(&a[..n], &b[..n]) };
    }
    let mut acc = [0f32; 8];
    let (ca, cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `o += p · v` (AVX2 + FMA where present).
pub fn axpy(o: &mut [f32], p: f32, v: &[f32]) {
    let n = o.len().min(v.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA; reads and writes stay within `n`.
        unsafe { avx2::axpy(&mut o[..n], p, &v[..n]) };
        return;
    }
    for (o, &v) in o[..n].iter_mut().zip(&v[..n]) {
        *o += p * v;
    }
}

/// An element type of the KV cache the attention kernel reads: f32, or IEEE half floats as
/// `u16` bit patterns (written by [`extend_f16`]).
pub trait KvElem: Copy + private::Sealed {
    /// Whether the elements are half floats (the AVX2 kernel widens them as it loads).
    const HALF: bool;
    /// The value as f32.
    fn to_f32(self) -> f32;
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u16 {}
}

impl KvElem for f32 {
    const HALF: bool = false;
    fn to_f32(self) -> f32 {
        self
    }
}

impl KvElem for u16 {
    const HALF: bool = true;
    fn to_f32(self) -> f32 {
        crate::format::dequant::f16_to_f32(self)
    }
}

/// Attention of `g` query heads (`q`: `g × d`) sharing one key/value head over `len` cached
/// rows (`keys`, `vals`: `len × d`, f32 or half floats — [`KvElem`]):
/// `out[h] = softmax(scale · q[h]·Kᵀ) · V`. `scores` is scratch (resized to `g × len`). AVX2 +
/// FMA where present and `d` is a multiple of 8; a half-float cache is widened as it is read
/// (`vcvtph2ps`), so the kernel reads half the bytes.
///
/// # Panics
/// If the slices are shorter than the shapes say (internal invariant of the executor).
#[allow(clippy::too_many_arguments)]
pub fn attend<T: KvElem>(
    q: &[f32],
    keys: &[T],
    vals: &[T],
    g: usize,
    d: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let len = keys.len() / d;
    assert!(q.len() >= g * d && vals.len() >= len * d && out.len() >= g * d && len > 0);
    scores.clear();
    scores.resize(g * len, 0.0);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && d.is_multiple_of(8) && (2..=3).contains(&g) && crate::kernels::has_avx512() {
        let (k, v) = (keys.as_ptr().cast(), vals.as_ptr().cast());
        // SAFETY: the CPU has AVX2, FMA, F16C and AVX-512 F/BW/VL; as below.
        unsafe {
            match (g, T::HALF) {
                (2, true) => {
                    avx2::attend_group::attend::<2, true>(q, k, v, len, d, scale, scores, out)
                }
                (2, false) => {
                    avx2::attend_group::attend::<2, false>(q, k, v, len, d, scale, scores, out)
                }
                (_, true) => {
                    avx2::attend_group::attend::<3, true>(q, k, v, len, d, scale, scores, out)
                }
                (_, false) => {
                    avx2::attend_group::attend::<3, false>(q, k, v, len, d, scale, scores, out)
                }
            }
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && d.is_multiple_of(8) {
        // SAFETY: the CPU has AVX2, FMA and F16C; the assert above bounds every access, and
        // `T::HALF` says how wide the elements behind the pointers are.
        unsafe {
            if T::HALF {
                avx2::attend::<true>(
                    q,
                    keys.as_ptr().cast(),
                    vals.as_ptr().cast(),
                    len,
                    g,
                    d,
                    scale,
                    scores,
                    out,
                )
            } else {
                avx2::attend::<false>(
                    q,
                    keys.as_ptr().cast(),
                    vals.as_ptr().cast(),
                    len,
                    g,
                    d,
                    scale,
                    scores,
                    out,
                )
            }
        };
        return;
    }
    portable_attend(
        q,
        |i| keys[i].to_f32(),
        |i| vals[i].to_f32(),
        len,
        g,
        d,
        scale,
        scores,
        out,
    );
}

/// The portable attention loop, reading element `i` of the keys and values through `key` and
/// `val`.
#[allow(clippy::too_many_arguments)]
fn portable_attend(
    q: &[f32],
    key: impl Fn(usize) -> f32,
    val: impl Fn(usize) -> f32,
    len: usize,
    g: usize,
    d: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    for jj in 0..len {
        for h in 0..g {
            let qh = &q[h * d..(h + 1) * d];
            let dot: f32 = (0..d).map(|i| qh[i] * key(jj * d + i)).sum();
            scores[h * len + jj] = dot * scale;
        }
    }
    softmax_rows(scores, len);
    out[..g * d].iter_mut().for_each(|v| *v = 0.0);
    for jj in 0..len {
        for h in 0..g {
            let p = scores[h * len + jj];
            for i in 0..d {
                out[h * d + i] += p * val(jj * d + i);
            }
        }
    }
}

/// `x` as an IEEE 754 half float (bit pattern), rounded to nearest, ties to even; overflow
/// gives ±∞, NaN stays NaN (quiet).
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // A subnormal half (or zero): the 24-bit significand shifted into 10 bits.
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let mut r = m >> shift;
        let rem = m & ((1 << shift) - 1);
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    // A carry out of the mantissa moves to the next binade (or to ∞), as it should.
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    sign | r as u16
}

/// Appends `x` as half floats to `out` (F16C's `vcvtps2ph` on AVX2 machines, the same
/// rounding as [`f32_to_f16`]).
pub fn extend_f16(out: &mut Vec<u16>, x: &[f32]) {
    let start = out.len();
    out.resize(start + x.len(), 0);
    let dst = &mut out[start..];
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has F16C (part of `has_avx2`); `dst` and `x` have the same length.
        unsafe { avx2::to_f16(x, dst) };
        return;
    }
    for (o, &v) in dst.iter_mut().zip(x) {
        *o = f32_to_f16(v);
    }
}

/// Softmax of each `len`-long row of `scores`, in place.
fn softmax_rows(scores: &mut [f32], len: usize) {
    for row in scores.chunks_exact_mut(len) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Whether the AVX2 kernels may run (AVX2, FMA and F16C detected, SIMD not switched off by
/// [`super::set_simd_enabled`]).
pub fn has_avx2() -> bool {
    super::simd_enabled() && detected_avx2()
}

fn detected_avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the matrix products may use the AMX panels ([`amx`]) where the CPU and the kernel
/// allow them (default on; off: the VNNI tiles, to compare).
pub static AMX_TILES: AtomicBool = AtomicBool::new(true);

/// Whether [`amx::panel`] is to be used: [`AMX_TILES`] on and [`amx::available`].
pub fn amx_enabled() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        AMX_TILES.load(Ordering::Relaxed) && amx::available()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod amx;

/// Whether [`dot_tile`] may use the AVX-512 VNNI tiles where the CPU has them (default on;
/// off: the AVX2 tiles, e.g. to compare the two — they give identical integer sums).
pub static VNNI_TILES: AtomicBool = AtomicBool::new(true);

/// Whether [`dot_tile`]'s 8-row panels (prefill, batches of 8) may use the 512-bit VNNI tile
/// where the VNNI tiles are on (default on: two groups per instruction; off: the 256-bit
/// VNNI tile, to compare).
pub static VNNI512_TILE: AtomicBool = AtomicBool::new(true);

/// The integer tiles [`dot_tile`] may use (each only where the CPU has it), to compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tiles {
    /// The fastest the CPU has (the default).
    #[default]
    Best,
    /// AVX2 `vpmaddubsw` + `vpmaddwd` tiles only.
    Avx2,
    /// AVX-512 VNNI on 256-bit registers only (no 512-bit 8-row tile, no AMX).
    Vnni256,
    /// The VNNI tiles, 512-bit 8-row tile included, but no AMX panels.
    Vnni512,
}

impl std::str::FromStr for Tiles {
    type Err = String;

    /// Parses `"best"`, `"avx2"`, `"vnni256"` or `"vnni512"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "best" => Ok(Self::Best),
            "avx2" => Ok(Self::Avx2),
            "vnni256" => Ok(Self::Vnni256),
            "vnni512" => Ok(Self::Vnni512),
            _ => Err(format!(
                "unknown tiles {s:?}: expected best, avx2, vnni256 or vnni512"
            )),
        }
    }
}

/// Sets the tiles [`dot_tile`] and the matrix products use from now on, process-wide
/// ([`VNNI_TILES`], [`VNNI512_TILE`], [`AMX_TILES`]).
pub fn use_tiles(tiles: Tiles) {
    VNNI_TILES.store(tiles != Tiles::Avx2, Ordering::Relaxed);
    VNNI512_TILE.store(
        matches!(tiles, Tiles::Best | Tiles::Vnni512),
        Ordering::Relaxed,
    );
    AMX_TILES.store(tiles == Tiles::Best, Ordering::Relaxed);
}

/// `out[j] = row · acts[t0 + j]` for `j < n` (`n ≤ MAX_TILE`), `row` one weight row of `ty` with
/// `acts.cols` values.
///
/// # Panics
/// If `row` is shorter than `ty.row_bytes(acts.cols)`, `acts.cols` is not a multiple of
/// `ty.block_values()`, `n` is 0 or above [`MAX_TILE`], or `t0 + n > acts.rows`.
pub fn dot_tile(ty: QType, row: &[u8], acts: &QActs, t0: usize, n: usize, out: &mut [f32]) {
    assert!(
        acts.cols.is_multiple_of(ty.block_values()),
        "{} values per row are not whole {:?} blocks",
        acts.cols,
        ty
    );
    assert!(row.len() >= ty.row_bytes(acts.cols), "weight row too short");
    assert!(
        (1..=MAX_TILE).contains(&n) && t0 + n <= acts.rows,
        "tile out of range"
    );
    assert!(out.len() >= n, "output too short");
    assert!(acts.qs.len() >= acts.rows * acts.cols && acts.d.len() >= acts.rows * acts.blocks());
    // One weight row against `n` activation rows with the tiles of instruction set `$m`.
    #[cfg(target_arch = "x86_64")]
    macro_rules! tile {
        ($m:ident) => {
            match n {
                8 if acts.dt.len() == acts.rows * acts.blocks() => {
                    avx2::$m::dot8(ty, row, acts, t0, out)
                }
                1 => avx2::$m::dot::<1>(ty, row, acts, t0, out),
                2 => avx2::$m::dot::<2>(ty, row, acts, t0, out),
                3 => avx2::$m::dot::<3>(ty, row, acts, t0, out),
                4 => avx2::$m::dot::<4>(ty, row, acts, t0, out),
                5 => avx2::$m::dot::<5>(ty, row, acts, t0, out),
                6 => avx2::$m::dot::<6>(ty, row, acts, t0, out),
                7 => avx2::$m::dot::<7>(ty, row, acts, t0, out),
                _ => avx2::$m::dot::<8>(ty, row, acts, t0, out),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2, FMA and F16C (and, for the VNNI tiles, AVX-512
        // F/BW/VL/VNNI); the asserts above bound every read the kernel makes (`row` holds the
        // row's blocks, `acts` rows `t0..t0 + n`).
        unsafe {
            if crate::kernels::has_avx512_vnni() && VNNI_TILES.load(Ordering::Relaxed) {
                if n == 8
                    && acts.dt.len() == acts.rows * acts.blocks()
                    && VNNI512_TILE.load(Ordering::Relaxed)
                {
                    avx2::vnni512::dot8(ty, row, acts, t0, out);
                    return;
                }
                tile!(vnni_tiles);
            } else {
                tile!(avx2_tiles);
            }
        }
        return;
    }
    portable_tile(ty, row, acts, t0, n, out);
}

/// The portable version of [`dot_tile`] (also used by the tests to check the AVX2 one).
pub fn portable_tile(ty: QType, row: &[u8], acts: &QActs, t0: usize, n: usize, out: &mut [f32]) {
    let nb = acts.blocks();
    let mut acc = [0f32; MAX_TILE];
    let mut off = [0f32; MAX_TILE];
    let mut visit = |g: usize, grp: Group| {
        for j in 0..n {
            let blk = (t0 + j) * nb + g;
            let q = &acts.qs[blk * QK..blk * QK + QK];
            let dx = acts.d[blk];
            match grp {
                Group::Unsigned { u, a, b } => {
                    let isum: i32 = u
                        .iter()
                        .zip(q)
                        .map(|(&u, &q)| i32::from(u) * i32::from(q))
                        .sum();
                    acc[j] += isum as f32 * (a * dx);
                    off[j] += b * acts.s[blk];
                }
                Group::Signed { v, a } => {
                    let isum: i32 = v
                        .iter()
                        .zip(q)
                        .map(|(&v, &q)| i32::from(v) * i32::from(q))
                        .sum();
                    acc[j] += isum as f32 * (a * dx);
                }
                Group::Q6 { u, sc, a } => {
                    let mut isum = 0i32;
                    for (h, &s) in sc.iter().enumerate() {
                        let part: i32 = u[16 * h..16 * h + 16]
                            .iter()
                            .zip(&q[16 * h..16 * h + 16])
                            .map(|(&u, &q)| (i32::from(u) - 32) * i32::from(q))
                            .sum();
                        isum += i32::from(s) * part;
                    }
                    acc[j] += isum as f32 * (a * dx);
                }
            }
        }
    };
    for_each_group(ty, row, nb, &mut visit);
    for j in 0..n {
        out[j] = acc[j] + off[j];
    }
}

/// `out[j] = row · x[t0 + j]` for `j < n` (`n ≤ MAX_TILE`) with the activations **kept in
/// f32**: `x` holds rows of `cols` values, and each group of 32 weights is widened to f32 in
/// registers (the values [`crate::format::dequant`] produces), so the result is the
/// de-quantised f32 product up to the order of the additions — no activation rounding.
/// AVX-512 F, then AVX2 + FMA, then the portable [`portable_tile_f32`], chosen at run time.
///
/// # Panics
/// If `cols` is not a multiple of `ty.block_values()`, `row` is shorter than
/// `ty.row_bytes(cols)`, `n` is 0 or above [`MAX_TILE`], `x` holds fewer than `t0 + n` rows or
/// `out` fewer than `n` values.
pub fn dot_tile_f32(
    ty: QType,
    row: &[u8],
    x: &[f32],
    cols: usize,
    t0: usize,
    n: usize,
    out: &mut [f32],
) {
    assert!(
        cols.is_multiple_of(ty.block_values()),
        "{cols} values per row are not whole {ty:?} blocks"
    );
    assert!(row.len() >= ty.row_bytes(cols), "weight row too short");
    assert!(
        (1..=MAX_TILE).contains(&n) && (t0 + n) * cols <= x.len(),
        "tile out of range"
    );
    assert!(out.len() >= n, "output too short");
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        let wide = crate::kernels::has_avx512() && F32_WIDE_TILES.load(Ordering::Relaxed);
        // SAFETY: the CPU has AVX2, FMA and F16C (and AVX-512 F/BW/VL when `wide`); the
        // asserts above bound every read (`row` holds the row's blocks, `x` rows t0..t0 + n).
        unsafe { simd_tile_f32(wide, ty, row, x, cols, t0, n, out) };
        return;
    }
    portable_tile_f32(ty, row, x, cols, t0, n, out);
}

/// The SIMD versions of [`dot_tile_f32`]: `wide` (AVX-512) or AVX2 + FMA, with fewer rows
/// given more accumulators per row (independent FMA chains keep the units busy when few rows
/// share a widened group).
///
/// # Safety
/// AVX2, FMA and F16C present, and AVX-512 F/BW/VL when `wide`; the shapes as
/// [`dot_tile_f32`] asserts them.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn simd_tile_f32(
    wide: bool,
    ty: QType,
    row: &[u8],
    x: &[f32],
    cols: usize,
    t0: usize,
    n: usize,
    out: &mut [f32],
) {
    macro_rules! tile {
        ($m:ident) => {
            match n {
                1 => avx2::f32acts::$m::dot::<1, 4>(ty, row, x, cols, t0, out),
                2 => avx2::f32acts::$m::dot::<2, 4>(ty, row, x, cols, t0, out),
                3 => avx2::f32acts::$m::dot::<3, 2>(ty, row, x, cols, t0, out),
                4 => avx2::f32acts::$m::dot::<4, 2>(ty, row, x, cols, t0, out),
                5 => avx2::f32acts::$m::dot::<5, 2>(ty, row, x, cols, t0, out),
                6 => avx2::f32acts::$m::dot::<6, 2>(ty, row, x, cols, t0, out),
                7 => avx2::f32acts::$m::dot::<7, 2>(ty, row, x, cols, t0, out),
                // One accumulator per row: the order of `wide::pair8`, so that a row's sums do
                // not depend on whether it was paired (and eight rows need no more chains).
                _ => avx2::f32acts::$m::dot::<8, 1>(ty, row, x, cols, t0, out),
            }
        };
    }
    // SAFETY: the caller's contract.
    unsafe {
        if wide {
            tile!(wide);
        } else {
            tile!(narrow);
        }
    }
}

/// Whether [`dot_pair8_f32`] has a two-row kernel for `ty` on this CPU (AVX-512, and a type
/// whose groups it widens: Q4_0, Q4_1, Q8_0); where it has not, it makes two
/// [`dot_tile_f32`] calls.
pub fn pair8_f32_runs(ty: QType) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && crate::kernels::has_avx512()
            && F32_WIDE_TILES.load(Ordering::Relaxed)
            && avx2::f32acts::wide::pair8_runs(ty)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = ty;
        false
    }
}

/// [`dot_tile_f32`] for two consecutive weight rows (`rows`: row 0, then row 1) and eight
/// activation rows `t0..t0 + 8`: `out[8·i + j] = row i · x[t0 + j]`, equal bit for bit to two
/// [`dot_tile_f32`] calls (each activation load serves both rows: the one-row tile with f32
/// activations is bound by those loads).
///
/// # Panics
/// As [`dot_tile_f32`] with `n = 8`, and if `rows` holds fewer than two rows or `out` fewer
/// than 16 values.
pub fn dot_pair8_f32(ty: QType, rows: &[u8], x: &[f32], cols: usize, t0: usize, out: &mut [f32]) {
    let rb = ty.row_bytes(cols);
    assert!(rows.len() >= 2 * rb, "two weight rows expected");
    assert!(out.len() >= 2 * MAX_TILE, "output too short");
    #[cfg(target_arch = "x86_64")]
    if pair8_f32_runs(ty) {
        assert!(
            cols.is_multiple_of(ty.block_values()),
            "{cols} values per row are not whole {ty:?} blocks"
        );
        assert!((t0 + MAX_TILE) * cols <= x.len(), "tile out of range");
        // SAFETY: AVX2, FMA, F16C and AVX-512 F/BW/VL checked by `pair8_f32_runs`, which also
        // checked the type; the asserts bound every read (two rows of `rb` bytes, activation
        // rows t0..t0 + 8) and write (16 values).
        unsafe { avx2::f32acts::wide::pair8(ty, rows, x, cols, t0, out) };
        return;
    }
    let (a, b) = out.split_at_mut(MAX_TILE);
    dot_tile_f32(ty, &rows[..rb], x, cols, t0, MAX_TILE, a);
    dot_tile_f32(ty, &rows[rb..2 * rb], x, cols, t0, MAX_TILE, b);
}

/// `out[r] = row r · x` for the `out.len()` consecutive weight rows of `ty` in `rows` and one
/// f32 activation row `x` ([`dot_tile_f32`] with one row, dispatched once for all rows: the
/// batch-1 decoding case).
///
/// # Panics
/// If `x.len()` is not a multiple of `ty.block_values()` or `rows` is shorter than
/// `out.len()` rows.
pub fn dot_rows_f32(ty: QType, rows: &[u8], x: &[f32], out: &mut [f32]) {
    let cols = x.len();
    assert!(
        cols.is_multiple_of(ty.block_values()),
        "{cols} values per row are not whole {ty:?} blocks"
    );
    let rb = ty.row_bytes(cols);
    assert!(rows.len() >= rb * out.len(), "weight rows too short");
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: features checked; `rows` holds `out.len()` rows of `rb` bytes (asserted).
        unsafe {
            if crate::kernels::has_avx512() && F32_WIDE_TILES.load(Ordering::Relaxed) {
                avx2::f32acts::wide::rows1(ty, rows, rb, x, out);
            } else {
                avx2::f32acts::narrow::rows1(ty, rows, rb, x, out);
            }
        }
        return;
    }
    for (r, o) in out.iter_mut().enumerate() {
        portable_tile_f32(
            ty,
            &rows[r * rb..(r + 1) * rb],
            x,
            cols,
            0,
            1,
            std::slice::from_mut(o),
        );
    }
}

/// Whether [`dot_tile_f32`] uses its AVX-512 version where the CPU has one (the tests and
/// benchmarks switch it off to compare the AVX2 one).
pub static F32_WIDE_TILES: AtomicBool = AtomicBool::new(true);

/// The portable version of [`dot_tile_f32`] (the tests check the SIMD ones against it).
pub fn portable_tile_f32(
    ty: QType,
    row: &[u8],
    x: &[f32],
    cols: usize,
    t0: usize,
    n: usize,
    out: &mut [f32],
) {
    let nb = cols / QK;
    let mut acc = [0f32; MAX_TILE];
    let mut visit = |g: usize, grp: Group| {
        let w: [f32; QK] = match grp {
            Group::Unsigned { u, a, b } => u.map(|u| f32::from(u).mul_add(a, b)),
            Group::Signed { v, a } => v.map(|v| f32::from(v) * a),
            Group::Q6 { u, sc, a } => {
                std::array::from_fn(|i| (f32::from(u[i]) - 32.0) * (a * f32::from(sc[i / 16])))
            }
        };
        for (j, acc) in acc.iter_mut().enumerate().take(n) {
            let xr = &x[(t0 + j) * cols + g * QK..][..QK];
            *acc += w.iter().zip(xr).map(|(w, x)| w * x).sum::<f32>();
        }
    };
    for_each_group(ty, row, nb, &mut visit);
    out[..n].copy_from_slice(&acc[..n]);
}

/// One group of 32 weights, decoded (portable path).
#[derive(Clone, Copy)]
enum Group {
    /// `w = a · u + b`.
    Unsigned { u: [u8; 32], a: f32, b: f32 },
    /// `w = a · v`.
    Signed { v: [i8; 32], a: f32 },
    /// `w = a · sc[i / 16] · (u − 32)`.
    Q6 { u: [u8; 32], sc: [i8; 2], a: f32 },
}

fn f16(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

fn nibbles(qs: &[u8]) -> [u8; 32] {
    let mut u = [0u8; 32];
    for (j, &b) in qs.iter().enumerate().take(16) {
        u[j] = b & 0x0f;
        u[j + 16] = b >> 4;
    }
    u
}

fn with_high_bits(mut u: [u8; 32], qh: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (j, u) in u.iter_mut().enumerate() {
        *u |= (((qh >> j) & 1) as u8) << 4;
    }
    u
}

/// `(scale, min)` of group `j` of a Q4_K/Q5_K super-block's packed 6-bit table.
fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Calls `f(group index, group)` for every 32-value group of a row of `nb` groups.
fn for_each_group(ty: QType, row: &[u8], nb: usize, f: &mut impl FnMut(usize, Group)) {
    let bb = ty.block_bytes();
    match ty {
        QType::Q4_0 | QType::Q4_1 | QType::Q5_0 | QType::Q5_1 | QType::Q8_0 => {
            for g in 0..nb {
                let b = &row[g * bb..(g + 1) * bb];
                let d = f16(b, 0);
                let grp = match ty {
                    QType::Q4_0 => Group::Unsigned {
                        u: nibbles(&b[2..]),
                        a: d,
                        b: -8.0 * d,
                    },
                    QType::Q4_1 => Group::Unsigned {
                        u: nibbles(&b[4..]),
                        a: d,
                        b: f16(b, 2),
                    },
                    QType::Q5_0 => Group::Unsigned {
                        u: with_high_bits(nibbles(&b[6..]), &b[2..6]),
                        a: d,
                        b: -16.0 * d,
                    },
                    QType::Q5_1 => Group::Unsigned {
                        u: with_high_bits(nibbles(&b[8..]), &b[4..8]),
                        a: d,
                        b: f16(b, 2),
                    },
                    _ => {
                        let mut v = [0i8; 32];
                        for (v, &q) in v.iter_mut().zip(&b[2..34]) {
                            *v = q as i8;
                        }
                        Group::Signed { v, a: d }
                    }
                };
                f(g, grp);
            }
        }
        QType::Q4K | QType::Q5K => {
            for sb in 0..nb / 8 {
                let b = &row[sb * bb..(sb + 1) * bb];
                let (d, dmin) = (f16(b, 0), f16(b, 2));
                let scales = &b[4..16];
                let (qh, qs) = if ty == QType::Q5K {
                    (Some(&b[16..48]), &b[48..176])
                } else {
                    (None, &b[16..144])
                };
                for c in 0..4 {
                    for half in 0..2 {
                        let j = 2 * c + half;
                        let (sc, m) = scale_min(j, scales);
                        let mut u = [0u8; 32];
                        for (l, u) in u.iter_mut().enumerate() {
                            let q = qs[32 * c + l];
                            *u = if half == 0 { q & 0x0f } else { q >> 4 };
                            if let Some(qh) = qh {
                                *u |= ((qh[l] >> j) & 1) << 4;
                            }
                        }
                        let grp = Group::Unsigned {
                            u,
                            a: d * f32::from(sc),
                            b: -(dmin * f32::from(m)),
                        };
                        f(sb * 8 + j, grp);
                    }
                }
            }
        }
        QType::Q6K => {
            for sb in 0..nb / 8 {
                let b = &row[sb * bb..(sb + 1) * bb];
                let d = f16(b, 208);
                for h in 0..2 {
                    let ql = &b[64 * h..64 * h + 64];
                    let qh = &b[128 + 32 * h..128 + 32 * h + 32];
                    let sc = &b[192 + 8 * h..192 + 8 * h + 8];
                    for k in 0..4 {
                        let mut u = [0u8; 32];
                        for (l, u) in u.iter_mut().enumerate() {
                            let lo = match k {
                                0 => ql[l] & 0x0f,
                                1 => ql[l + 32] & 0x0f,
                                2 => ql[l] >> 4,
                                _ => ql[l + 32] >> 4,
                            };
                            *u = lo | (((qh[l] >> (2 * k)) & 3) << 4);
                        }
                        let grp = Group::Q6 {
                            u,
                            sc: [sc[2 * k] as i8, sc[2 * k + 1] as i8],
                            a: d,
                        };
                        f(sb * 8 + 4 * h + k, grp);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 kernels. Callers check the CPU features and the bounds ([`super::dot_tile`]).

    use std::arch::x86_64::*;

    /// The IEEE half at `p`, as f32, converted in integer registers: a vector conversion of
    /// one half became an insert into lane 0 merging with whatever register the compiler
    /// picked for the other lanes (the row's running sums, as it happened), chaining every
    /// block to the previous one.
    #[inline]
    unsafe fn f16_at(p: *const u8) -> f32 {
        // SAFETY: the caller's block holds two bytes at `p`.
        crate::format::dequant::f16_to_f32(unsafe { p.cast::<u16>().read_unaligned() })
    }

    /// The two IEEE halves at `p..p + 4`, as f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn f16_pair(p: *const u8) -> (f32, f32) {
        // SAFETY: the caller's block holds four bytes at `p`.
        let bits = unsafe { p.cast::<i32>().read_unaligned() };
        // Both halves in one full 32-bit load (no lane-0 insert: see `f16_at`).
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
        (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
    }

    /// 16 bytes of nibbles → 32 lanes (low nibbles first, then high nibbles).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        // SAFETY: the caller's block holds 16 bytes at `p`.
        let b = unsafe { _mm_loadu_si128(p.cast()) };
        let m = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(b, m);
        let hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
        _mm256_set_m128i(hi, lo)
    }

    /// Bit `j` of the little-endian u32 at `p` → `0x10` in lane `j`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn high_bits(p: *const u8) -> __m256i {
        // SAFETY: the caller's block holds four bytes at `p`.
        let qh = unsafe { p.cast::<i32>().read_unaligned() };
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(qh),
            _mm256_set_epi64x(
                0x0303_0303_0303_0303,
                0x0202_0202_0202_0202,
                0x0101_0101_0101_0101,
                0,
            ),
        );
        let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// A group of 32 four-bit values packed two per byte at `$q` (value `j` in the low and
    /// value `j + 16` in the high nibble of byte `j`), `w = $a · u + $c`: unpacked here and
    /// handed to `$acc.unsigned`, or handed packed to `$acc.packed4` (accumulators that widen
    /// the bytes themselves, with fewer operations).
    macro_rules! packed4_group {
        (unpack, $acc:ident, $g:expr, $q:expr, $a:expr, $c:expr) => {
            $acc.unsigned($g, nibbles($q), $a, $c)
        };
        (packed4, $acc:ident, $g:expr, $q:expr, $a:expr, $c:expr) => {
            $acc.packed4($g, $q, $a, $c)
        };
    }

    /// The per-type block decoding shared by the accumulators: calls `$acc.unsigned`,
    /// `$acc.signed` or `$acc.q6` once per group of 32 weights of the row at `$p` (with a
    /// final `packed4`, Q4_0 and Q4_1 groups go to `$acc.packed4` as their packed bytes).
    macro_rules! decode_row {
        ($acc:ident, $ty:expr, $p:expr, $nb:expr, $bb:expr) => {
            decode_row!($acc, $ty, $p, $nb, $bb, unpack)
        };
        ($acc:ident, $ty:expr, $p:expr, $nb:expr, $bb:expr, $q4:ident) => {{
            let (ty, p, nb, bb) = ($ty, $p, $nb, $bb);
            let acc = &mut $acc;
            match ty {
                QType::Q4_0 => {
                    for g in 0..nb {
                        let b = p.add(g * bb);
                        let d = f16_at(b);
                        packed4_group!($q4, acc, g, b.add(2), d, -8.0 * d);
                    }
                }
                QType::Q4_1 => {
                    for g in 0..nb {
                        let b = p.add(g * bb);
                        let (d, m) = f16_pair(b);
                        packed4_group!($q4, acc, g, b.add(4), d, m);
                    }
                }
                QType::Q5_0 => {
                    for g in 0..nb {
                        let b = p.add(g * bb);
                        let d = f16_at(b);
                        let u = _mm256_or_si256(nibbles(b.add(6)), high_bits(b.add(2)));
                        acc.unsigned(g, u, d, -16.0 * d);
                    }
                }
                QType::Q5_1 => {
                    for g in 0..nb {
                        let b = p.add(g * bb);
                        let u = _mm256_or_si256(nibbles(b.add(8)), high_bits(b.add(4)));
                        let (d, m) = f16_pair(b);
                        acc.unsigned(g, u, d, m);
                    }
                }
                QType::Q8_0 => {
                    for g in 0..nb {
                        let b = p.add(g * bb);
                        let v = _mm256_loadu_si256(b.add(2).cast());
                        // Q8_0's blocks are 34 bytes: the vector pair load measured faster here
                        // (25 against 17.5 GiB/s) than the integer conversion.
                        acc.signed(g, v, f16_pair(b).0);
                    }
                }
                QType::Q4K | QType::Q5K => {
                    let m4 = _mm256_set1_epi8(0x0f);
                    for sb in 0..nb / 8 {
                        let b = p.add(sb * bb);
                        let (d, dmin) = f16_pair(b);
                        let scales = std::slice::from_raw_parts(b.add(4), 12);
                        let (qh, qs) = if ty == QType::Q5K {
                            (Some(_mm256_loadu_si256(b.add(16).cast())), b.add(48))
                        } else {
                            (None, b.add(16))
                        };
                        for c in 0..4 {
                            let q = _mm256_loadu_si256(qs.add(32 * c).cast());
                            let halves = [
                                _mm256_and_si256(q, m4),
                                _mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                            ];
                            for (half, mut u) in halves.into_iter().enumerate() {
                                let j = 2 * c + half;
                                if let Some(qh) = qh {
                                    let bit = _mm256_set1_epi8(1 << j);
                                    let set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
                                    u = _mm256_or_si256(
                                        u,
                                        _mm256_and_si256(set, _mm256_set1_epi8(0x10)),
                                    );
                                }
                                let (sc, m) = crate::kernels::qdot::scale_min(j, scales);
                                acc.unsigned(
                                    sb * 8 + j,
                                    u,
                                    d * f32::from(sc),
                                    -(dmin * f32::from(m)),
                                );
                            }
                        }
                    }
                }
                QType::Q6K => {
                    let m4 = _mm256_set1_epi8(0x0f);
                    let m2 = _mm256_set1_epi8(0x03);
                    for sb in 0..nb / 8 {
                        let b = p.add(sb * bb);
                        let d = f16_at(b.add(208));
                        for h in 0..2 {
                            let ql = b.add(64 * h);
                            let a = _mm256_loadu_si256(ql.cast());
                            let bq = _mm256_loadu_si256(ql.add(32).cast());
                            let qh = _mm256_loadu_si256(b.add(128 + 32 * h).cast());
                            let sc = b.add(192 + 8 * h).cast::<i8>();
                            let lows = [
                                _mm256_and_si256(a, m4),
                                _mm256_and_si256(bq, m4),
                                _mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                                _mm256_and_si256(_mm256_srli_epi16(bq, 4), m4),
                            ];
                            let highs = [
                                _mm256_and_si256(qh, m2),
                                _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
                                _mm256_and_si256(_mm256_srli_epi16(qh, 4), m2),
                                _mm256_and_si256(_mm256_srli_epi16(qh, 6), m2),
                            ];
                            for k in 0..4 {
                                let u = _mm256_or_si256(lows[k], _mm256_slli_epi16(highs[k], 4));
                                let scales = _mm256_set_m128i(
                                    _mm_set1_epi16(i16::from(*sc.add(2 * k + 1))),
                                    _mm_set1_epi16(i16::from(*sc.add(2 * k))),
                                );
                                acc.q6(sb * 8 + 4 * h + k, u, scales, d);
                            }
                        }
                    }
                }
            }
        }};
    }

    /// `Σ a·b`, `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every read is below `n` in both slices.
        unsafe {
            while i + 16 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                i += 16;
            }
            while i + 8 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                i += 8;
            }
            let mut sum = hsum(_mm256_add_ps(acc0, acc1));
            while i < n {
                sum += *pa.add(i) * *pb.add(i);
                i += 1;
            }
            sum
        }
    }

    /// Lane `j` of the result = the sum of the 8 lanes of `p[j]` (floats).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn reduce8_ps(p: [__m256; 8]) -> __m256 {
        let h01 = _mm256_hadd_ps(p[0], p[1]);
        let h23 = _mm256_hadd_ps(p[2], p[3]);
        let h45 = _mm256_hadd_ps(p[4], p[5]);
        let h67 = _mm256_hadd_ps(p[6], p[7]);
        let h0123 = _mm256_hadd_ps(h01, h23);
        let h4567 = _mm256_hadd_ps(h45, h67);
        let lo = _mm256_permute2f128_ps(h0123, h4567, 0x20);
        let hi = _mm256_permute2f128_ps(h0123, h4567, 0x31);
        _mm256_add_ps(lo, hi)
    }

    /// Eight cached values at element `i` of `p`: f32, or half floats widened (`H`).
    ///
    /// # Safety
    /// F16C/AVX present; 8 elements readable at `i`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8<const H: bool>(p: *const u8, i: usize) -> __m256 {
        // SAFETY: as the caller guarantees.
        unsafe {
            if H {
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * i).cast()))
            } else {
                _mm256_loadu_ps(p.add(4 * i).cast())
            }
        }
    }

    /// `dst[i] = half(x[i])`, rounded to nearest even (`vcvtps2ph`).
    ///
    /// # Safety
    /// F16C present; `dst.len() == x.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn to_f16(x: &[f32], dst: &mut [u16]) {
        let n = x.len();
        let mut i = 0;
        // SAFETY: every access is below `n` in both slices.
        unsafe {
            while i + 8 <= n {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(
                    x.as_ptr().add(i),
                ));
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
                i += 8;
            }
        }
        for j in i..n {
            dst[j] = super::f32_to_f16(x[j]);
        }
    }

    /// [`super::attend`] over an f32 (`H = false`) or half-float (`H = true`) cache, with
    /// the dot products and weighted sums inlined: scores for 8 keys at a time (8
    /// accumulators, one `vhaddps` tree per 8 keys instead of a horizontal sum per key), the
    /// softmax's `exp` vectorised, and the weighted sum of values accumulated in registers,
    /// 64 output values (8 vectors) at a time. Keys and values are read in blocks for all `g`
    /// heads at once, so each cached row comes from memory once per call.
    ///
    /// # Safety
    /// AVX2, FMA and F16C present; `d % 8 == 0`; `q ≥ g·d`, `keys`/`vals` hold `len·d`
    /// elements (f32 or u16 per `H`), `scores ≥ g·len`, `out ≥ g·d` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn attend<const H: bool>(
        q: &[f32],
        keys: *const u8,
        vals: *const u8,
        len: usize,
        g: usize,
        d: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let full = len - len % 8;
        // SAFETY (whole body): indices stay within the bounds the caller asserted.
        unsafe {
            let scale_v = _mm256_set1_ps(scale);
            // Keys in blocks of 8, all g heads per block: a block (8·d values) is read from
            // memory once and stays in L1 for the group's heads.
            let es = if H { 2 } else { 4 };
            for r in 0..KV_AHEAD.min(len) {
                prefetch(vals.wrapping_add(r * d * es), d * es);
            }
            let mut j = 0;
            while j < full {
                let k = j * d;
                for r in 0..8 {
                    prefetch(keys.wrapping_add((j + KV_AHEAD + r) * d * es), d * es);
                }
                for h in 0..g {
                    let qh = q.as_ptr().add(h * d);
                    let mut acc = [_mm256_setzero_ps(); 8];
                    let mut i = 0;
                    while i < d {
                        let qv = _mm256_loadu_ps(qh.add(i));
                        for (r, a) in acc.iter_mut().enumerate() {
                            *a = _mm256_fmadd_ps(qv, load8::<H>(keys, k + r * d + i), *a);
                        }
                        i += 8;
                    }
                    let sh = scores.as_mut_ptr().add(h * len + j);
                    _mm256_storeu_ps(sh, _mm256_mul_ps(reduce8_ps(acc), scale_v));
                }
                j += 8;
            }
            score_tail::<H>(q, keys, full, len, g, d, scale, scores);
            // Values in blocks of 64 rows, all g heads per block (the block stays in L1/L2);
            // each head's 64-wide output chunks accumulate in registers within a block.
            let mut j0 = 0;
            while j0 < len {
                let jl = (len - j0).min(64);
                let vb = j0 * d;
                for h in 0..g {
                    let sh = scores.as_ptr().add(h * len + j0);
                    let o = out.as_mut_ptr().add(h * d);
                    let first = j0 == 0;
                    let mut c0 = 0;
                    while c0 + 64 <= d {
                        let pf = h == 0 && c0 == 0;
                        weighted_sum::<8, H>(sh, vals, vb + c0, jl, d, o.add(c0), first, pf);
                        c0 += 64;
                    }
                    while c0 < d {
                        let pf = h == 0 && c0 == 0;
                        weighted_sum::<1, H>(sh, vals, vb + c0, jl, d, o.add(c0), first, pf);
                        c0 += 8;
                    }
                }
                j0 += jl;
            }
        }
    }

    /// The scores of keys `j0..len` (those after the blocks of 8) for `g` heads, then the
    /// softmax of every head's row.
    ///
    /// # Safety
    /// As [`attend`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn score_tail<const H: bool>(
        q: &[f32],
        keys: *const u8,
        j0: usize,
        len: usize,
        g: usize,
        d: usize,
        scale: f32,
        scores: &mut [f32],
    ) {
        // SAFETY: as the caller guarantees.
        unsafe {
            for j in j0..len {
                let k = j * d;
                for h in 0..g {
                    let qh = q.as_ptr().add(h * d);
                    let mut acc = _mm256_setzero_ps();
                    let mut i = 0;
                    while i < d {
                        acc = _mm256_fmadd_ps(
                            _mm256_loadu_ps(qh.add(i)),
                            load8::<H>(keys, k + i),
                            acc,
                        );
                        i += 8;
                    }
                    *scores.as_mut_ptr().add(h * len + j) = hsum(acc) * scale;
                }
            }
        }
        for row in scores[..g * len].chunks_exact_mut(len) {
            // SAFETY: same features.
            unsafe { softmax_row(row) };
        }
    }

    /// `o[0..8W] (+)= Σ_j p[j] · v[at + j·d .. at + j·d + 8W]` over `len` rows (`=` when
    /// `first`, else added to what `o` holds), the `W` accumulators in registers; `v` holds
    /// f32 or (`H`) half floats; `fetch` prefetches the row [`KV_AHEAD`] on with each row.
    ///
    /// # Safety
    /// AVX2, FMA and F16C present; `p` holds `len` values, `v` rows `0..len` of stride `d` hold
    /// `8W` elements from `at`, `o` has room for `8W`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn weighted_sum<const W: usize, const H: bool>(
        p: *const f32,
        v: *const u8,
        at: usize,
        len: usize,
        d: usize,
        o: *mut f32,
        first: bool,
        fetch: bool,
    ) {
        let es = if H { 2 } else { 4 };
        // SAFETY: as the caller guarantees.
        unsafe {
            let mut acc: [__m256; W] = std::array::from_fn(|c| {
                if first {
                    _mm256_setzero_ps()
                } else {
                    _mm256_loadu_ps(o.add(c * 8))
                }
            });
            for j in 0..len {
                if fetch {
                    prefetch(v.wrapping_add((at + (j + KV_AHEAD) * d) * es), d * es);
                }
                let pj = _mm256_set1_ps(*p.add(j));
                let row = at + j * d;
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(pj, load8::<H>(v, row + c * 8), *a);
                }
            }
            for (c, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(o.add(c * 8), *a);
            }
        }
    }

    /// Softmax of one score row in place: max and sum over 8 lanes, `exp` vectorised.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn softmax_row(row: &mut [f32]) {
        let mut m8 = [f32::NEG_INFINITY; 8];
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                m8[l] = m8[l].max(c[l]);
            }
        }
        let max = tail
            .iter()
            .chain(&m8)
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = crate::kernels::softmax::exp_nonpositive(*v - max);
        }
        let mut s8 = [0f32; 8];
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                s8[l] += c[l];
            }
        }
        let sum: f32 = s8.iter().chain(tail).sum();
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }

    /// `o += p · v`, `o.len() == v.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy(o: &mut [f32], p: f32, v: &[f32]) {
        let n = o.len();
        let (po, pv) = (o.as_mut_ptr(), v.as_ptr());
        let pp = _mm256_set1_ps(p);
        let mut i = 0;
        // SAFETY: every access is below `n` in both slices.
        unsafe {
            while i + 8 <= n {
                let r = _mm256_fmadd_ps(pp, _mm256_loadu_ps(pv.add(i)), _mm256_loadu_ps(po.add(i)));
                _mm256_storeu_ps(po.add(i), r);
                i += 8;
            }
            while i < n {
                *po.add(i) += p * *pv.add(i);
                i += 1;
            }
        }
    }

    /// The tile kernels ([`Acc`], [`Acc8`], `dot`, `dot8`), instantiated once per instruction
    /// set: `$feat` are the target features, `$vnni` whether the 4-byte integer products use
    /// AVX-512 VNNI's `vpdpbusd` (one instruction) instead of AVX2's `vpmaddubsw` + `vpmaddwd`.
    /// Both give the same exact integer sums (no pair sum here reaches `vpmaddubsw`'s i16
    /// saturation: unsigned values are below 64 and signed ones are used through `vpsignb`).
    macro_rules! tiles {
        ($m:ident, $feat:literal, $vnni:literal) => {
            pub(super) mod $m {
                #![allow(clippy::needless_range_loop)]
                use std::arch::x86_64::*;

                use super::{f16_at, f16_pair, high_bits, hsum, nibbles};
                use crate::kernels::qdot::{QActs, QK, QType};

                /// `Σ` over each 4-byte group of `u · q` (unsigned × signed bytes), as i32 lanes.
                #[target_feature(enable = $feat)]
                #[inline]
                #[allow(unused_unsafe)]
                unsafe fn pairs(u: __m256i, q: __m256i) -> __m256i {
                    if $vnni {
                        // SAFETY: `$vnni` instantiations carry the AVX-512 VNNI/VL features.
                        unsafe { _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, q) }
                    } else {
                        _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1))
                    }
                }
                /// Per-tile accumulation state: one 8-lane f32 accumulator and one offset sum per row.
                struct Acc<const N: usize> {
                    v: [__m256; N],
                    off: [f32; N],
                    qs: [*const i8; N],
                    d: [*const f32; N],
                    s: [*const f32; N],
                }

                impl<const N: usize> Acc<N> {
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn new(acts: &QActs, t0: usize) -> Self {
                        let nb = acts.blocks();
                        Self {
                            v: [_mm256_setzero_ps(); N],
                            off: [0.0; N],
                            qs: std::array::from_fn(|j| acts.qs[(t0 + j) * acts.cols..].as_ptr()),
                            d: std::array::from_fn(|j| acts.d[(t0 + j) * nb..].as_ptr()),
                            s: std::array::from_fn(|j| acts.s[(t0 + j) * nb..].as_ptr()),
                        }
                    }

                    /// Group `g` with unsigned values `u`: `w = a · u + b`.
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
                        for j in 0..N {
                            // SAFETY: group `g` lies inside row `t0 + j` (checked by `dot_tile`).
                            unsafe {
                                let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                                let isum = pairs(u, q);
                                let scale = _mm256_set1_ps(a * *self.d[j].add(g));
                                self.v[j] =
                                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, self.v[j]);
                                self.off[j] += b * *self.s[j].add(g);
                            }
                        }
                    }

                    /// Group `g` with signed values `v`: `w = a · v`.
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
                        let av = _mm256_sign_epi8(v, v);
                        for j in 0..N {
                            // SAFETY: as in `unsigned`.
                            unsafe {
                                let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                                let sq = _mm256_sign_epi8(q, v);
                                let isum = pairs(av, sq);
                                let scale = _mm256_set1_ps(a * *self.d[j].add(g));
                                self.v[j] =
                                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, self.v[j]);
                            }
                        }
                    }

                    /// Q6_K group `g`: `w = a · sc · (u − 32)`, `scales` holding `sc` per 16 lanes as i16.
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
                        let c32 = _mm256_set1_epi8(32);
                        for j in 0..N {
                            // SAFETY: as in `unsigned`.
                            unsafe {
                                let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                                let p = _mm256_sub_epi16(
                                    _mm256_maddubs_epi16(u, q),
                                    _mm256_maddubs_epi16(c32, q),
                                );
                                let isum = _mm256_madd_epi16(p, scales);
                                let scale = _mm256_set1_ps(a * *self.d[j].add(g));
                                self.v[j] =
                                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, self.v[j]);
                            }
                        }
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    #[allow(clippy::needless_range_loop)]
                    unsafe fn finish(&self, out: &mut [f32]) {
                        for j in 0..N {
                            // SAFETY: same features as the caller.
                            out[j] = unsafe { hsum(self.v[j]) } + self.off[j];
                        }
                    }
                }

                /// Accumulation over exactly 8 activation rows with one f32 lane per row: the 8 rows'
                /// integer group sums are reduced into one vector (`vphaddd` tree), scaled by the 8 rows'
                /// block scales in one multiply and added with one FMA — instead of a broadcast, a scalar
                /// multiply and an FMA per row and group.
                struct Acc8 {
                    v: __m256,
                    off: __m256,
                    qs: [*const i8; 8],
                    dt: *const f32,
                    st: *const f32,
                    rows: usize,
                }

                impl Acc8 {
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn new(acts: &QActs, t0: usize) -> Self {
                        Self {
                            v: _mm256_setzero_ps(),
                            off: _mm256_setzero_ps(),
                            qs: std::array::from_fn(|j| acts.qs[(t0 + j) * acts.cols..].as_ptr()),
                            dt: acts.dt[t0..].as_ptr(),
                            st: acts.st[t0..].as_ptr(),
                            rows: acts.rows,
                        }
                    }

                    /// Lane `j` of the result = the sum of the 8 lanes of `p[j]`.
                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn reduce(p: [__m256i; 8]) -> __m256i {
                        let h01 = _mm256_hadd_epi32(p[0], p[1]);
                        let h23 = _mm256_hadd_epi32(p[2], p[3]);
                        let h45 = _mm256_hadd_epi32(p[4], p[5]);
                        let h67 = _mm256_hadd_epi32(p[6], p[7]);
                        let h0123 = _mm256_hadd_epi32(h01, h23);
                        let h4567 = _mm256_hadd_epi32(h45, h67);
                        let lo = _mm256_permute2x128_si256(h0123, h4567, 0x20);
                        let hi = _mm256_permute2x128_si256(h0123, h4567, 0x31);
                        _mm256_add_epi32(lo, hi)
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn scaled(&mut self, g: usize, isum: __m256i, a: f32) {
                        // SAFETY: block `g`'s scales of rows t0..t0 + 8 are contiguous in `dt`.
                        let d = unsafe { _mm256_loadu_ps(self.dt.add(g * self.rows)) };
                        let scale = _mm256_mul_ps(_mm256_set1_ps(a), d);
                        self.v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, self.v);
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
                        // SAFETY: group `g` lies inside rows t0..t0 + 8 (checked by `dot_tile`).
                        let p: [__m256i; 8] = std::array::from_fn(|j| unsafe {
                            let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                            pairs(u, q)
                        });
                        // SAFETY: as above.
                        unsafe {
                            self.scaled(g, Self::reduce(p), a);
                            let s = _mm256_loadu_ps(self.st.add(g * self.rows));
                            self.off = _mm256_fmadd_ps(_mm256_set1_ps(b), s, self.off);
                        }
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
                        let av = _mm256_sign_epi8(v, v);
                        // SAFETY: as in `unsigned`.
                        let p: [__m256i; 8] = std::array::from_fn(|j| unsafe {
                            let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                            pairs(av, _mm256_sign_epi8(q, v))
                        });
                        // SAFETY: as above.
                        unsafe { self.scaled(g, Self::reduce(p), a) };
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
                        let c32 = _mm256_set1_epi8(32);
                        // SAFETY: as in `unsigned`.
                        let p: [__m256i; 8] = std::array::from_fn(|j| unsafe {
                            let q = _mm256_loadu_si256(self.qs[j].add(g * QK).cast());
                            let d = _mm256_sub_epi16(
                                _mm256_maddubs_epi16(u, q),
                                _mm256_maddubs_epi16(c32, q),
                            );
                            _mm256_madd_epi16(d, scales)
                        });
                        // SAFETY: as above.
                        unsafe { self.scaled(g, Self::reduce(p), a) };
                    }

                    #[target_feature(enable = $feat)]
                    #[inline]
                    unsafe fn finish(&self, out: &mut [f32]) {
                        // SAFETY: `out` holds at least 8 values (checked by `dot_tile`).
                        unsafe {
                            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(self.v, self.off))
                        };
                    }
                }

                /// The 8-row AVX2 tile ([`Acc8`]).
                ///
                /// # Safety
                /// As [`dot`] with `N = 8`, and `acts.dt`/`acts.st` filled.
                #[target_feature(enable = $feat)]
                pub(in crate::kernels::qdot) unsafe fn dot8(
                    ty: QType,
                    row: &[u8],
                    acts: &QActs,
                    t0: usize,
                    out: &mut [f32],
                ) {
                    let nb = acts.blocks();
                    let bb = ty.block_bytes();
                    let p = row.as_ptr();
                    // SAFETY: as in `dot`.
                    unsafe {
                        let mut acc = Acc8::new(acts, t0);
                        decode_row!(acc, ty, p, nb, bb);
                        acc.finish(out);
                    }
                }

                /// The AVX2 tile: one weight row against activation rows `t0..t0 + N`.
                ///
                /// # Safety
                /// AVX2, FMA and F16C present; `row` holds `ty.row_bytes(acts.cols)` bytes; rows
                /// `t0..t0 + N` exist in `acts`; `out.len() ≥ N`.
                #[target_feature(enable = $feat)]
                pub(in crate::kernels::qdot) unsafe fn dot<const N: usize>(
                    ty: QType,
                    row: &[u8],
                    acts: &QActs,
                    t0: usize,
                    out: &mut [f32],
                ) {
                    let nb = acts.blocks();
                    let bb = ty.block_bytes();
                    let p = row.as_ptr();
                    // SAFETY (whole body): every pointer below stays inside `row` (block `g` of `nb`, or
                    // super-block `sb` of `nb / 8`) and `acts` rows `t0..t0 + N`, as the caller checked.
                    unsafe {
                        let mut acc = Acc::<N>::new(acts, t0);
                        decode_row!(acc, ty, p, nb, bb);
                        acc.finish(out);
                    }
                }
            }
        };
    }

    tiles!(avx2_tiles, "avx2,fma,f16c", false);
    tiles!(
        vnni_tiles,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        true
    );

    /// Rows of cached keys or values prefetched ahead of their use by the decode-time
    /// attention kernels: a decoding step streams every sequence's cache from memory (for
    /// SmolLM2 at 512 positions, 131 KB per sequence, layer and KV head: 94 MB per step of 8
    /// sequences), and the first use of each line stalled the FMAs (a third of the grouped
    /// kernel's cycles, at the value loop's loads).
    const KV_AHEAD: usize = 32;

    /// Asks for the `bytes` bytes at `p` in the L1 cache (one prefetch per 64-byte line). `p`
    /// may lie past the caller's data (a prefetch never faults): it is formed with wrapping
    /// arithmetic and never read.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn prefetch(p: *const u8, bytes: usize) {
        let mut off = 0;
        while off < bytes {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast());
            off += 64;
        }
    }

    pub(super) mod attend_group;
    pub(super) mod f32acts;

    /// The 8-row tile on 512-bit registers (AVX-512 VNNI): two consecutive groups of one
    /// weight row at a time, group `g` in the low and `g + 1` in the high 256 bits, so one
    /// `vpdpbusd` per activation row covers 64 values and one reduction tree serves two
    /// groups. The integer group sums are those of [`avx2_tiles`]; the f32 accumulation keeps
    /// even and odd groups apart until the end (a different summation order: equal to the
    /// 256-bit tiles within f32 rounding, not bit for bit).
    pub(super) mod vnni512 {
        #![allow(clippy::needless_range_loop)]

        use std::arch::x86_64::*;

        use super::{f16_at, f16_pair, high_bits, nibbles};
        use crate::kernels::qdot::{QActs, QK, QType};

        /// 16 f32 lanes: activation row `j` of a pair's low group in lane `j`, of its high
        /// group in lane `8 + j`. Groups arrive in order; an even group waits in `u0`/`a0`/
        /// `b0`/`sc0` for its odd partner.
        struct Acc16 {
            v: __m512,
            off: __m512,
            qs: [*const i8; 8],
            dt: *const f32,
            st: *const f32,
            rows: usize,
            pending: bool,
            g0: usize,
            u0: __m256i,
            a0: f32,
            b0: f32,
            sc0: __m256i,
        }

        impl Acc16 {
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn new(acts: &QActs, t0: usize) -> Self {
                Self {
                    v: _mm512_setzero_ps(),
                    off: _mm512_setzero_ps(),
                    qs: std::array::from_fn(|j| acts.qs[(t0 + j) * acts.cols..].as_ptr()),
                    dt: acts.dt[t0..].as_ptr(),
                    st: acts.st[t0..].as_ptr(),
                    rows: acts.rows,
                    pending: false,
                    g0: 0,
                    u0: _mm256_setzero_si256(),
                    a0: 0.0,
                    b0: 0.0,
                    sc0: _mm256_setzero_si256(),
                }
            }

            /// Keeps group `g` for its partner; true when it was the first of a pair.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            fn wait(&mut self, g: usize, u: __m256i, a: f32, b: f32, sc: __m256i) -> bool {
                if self.pending {
                    self.pending = false;
                    return false;
                }
                (self.pending, self.g0, self.u0, self.a0, self.b0, self.sc0) =
                    (true, g, u, a, b, sc);
                true
            }

            /// Lane `j` of the low half = the sum of the low 8 lanes of `p[j]`, lane `8 + j`
            /// = the sum of its high 8 lanes.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            fn reduce(p: [__m512i; 8]) -> __m512i {
                let pair = |a: __m512i, b: __m512i| {
                    _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b))
                };
                let quad = |a: __m512i, b: __m512i| {
                    _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
                };
                // Per 128-bit lane k: rows 0–3 (x) and 4–7 (y), summed over lane k's values.
                let x = quad(pair(p[0], p[1]), pair(p[2], p[3]));
                let y = quad(pair(p[4], p[5]), pair(p[6], p[7]));
                // [x0 + x1, x2 + x3, y0 + y1, y2 + y3], then [x01, y01, x23, y23].
                let s = _mm512_add_epi32(
                    _mm512_shuffle_i32x4::<0x88>(x, y),
                    _mm512_shuffle_i32x4::<0xDD>(x, y),
                );
                _mm512_shuffle_i32x4::<0xD8>(s, s)
            }

            /// Two 256-bit halves as one register.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            fn join(lo: __m256i, hi: __m256i) -> __m512i {
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            }

            /// Two scalars broadcast over the low and the high 8 lanes.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            fn halves(lo: f32, hi: f32) -> __m512 {
                _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castps_pd(_mm512_set1_ps(lo)),
                    _mm256_castps_pd(_mm256_set1_ps(hi)),
                ))
            }

            /// Groups `g0` and `g1` of the 8 rows of scales at `p` (`[group, rows]`).
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn scales_at(&self, p: *const f32, g0: usize, g1: usize) -> __m512 {
                // SAFETY: groups g0 and g1 of rows t0..t0 + 8 lie inside the transposed scales.
                unsafe {
                    _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                        _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(
                            p.add(g0 * self.rows),
                        ))),
                        _mm256_castps_pd(_mm256_loadu_ps(p.add(g1 * self.rows))),
                    ))
                }
            }

            /// Activation bytes of groups `g0` and `g1` of row `j`.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn acts_at(&self, j: usize, g0: usize, g1: usize) -> __m512i {
                // SAFETY: both groups lie inside row t0 + j (checked by `dot_tile`).
                unsafe {
                    let p = self.qs[j];
                    if g1 == g0 + 1 {
                        _mm512_loadu_si512(p.add(g0 * QK).cast())
                    } else {
                        Self::join(
                            _mm256_loadu_si256(p.add(g0 * QK).cast()),
                            _mm256_loadu_si256(p.add(g1 * QK).cast()),
                        )
                    }
                }
            }

            /// Adds the pair's integer sums `isum`, scaled by `a` per group and the rows' scales.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn scaled(&mut self, g0: usize, g1: usize, isum: __m512i, a0: f32, a1: f32) {
                // SAFETY: as in `scales_at`.
                let d = unsafe { self.scales_at(self.dt, g0, g1) };
                let scale = _mm512_mul_ps(Self::halves(a0, a1), d);
                self.v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, self.v);
            }

            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
                if self.wait(g, u, a, b, u) {
                    return;
                }
                let (g0, u) = (self.g0, Self::join(self.u0, u));
                let zero = _mm512_setzero_si512();
                let mut p = [zero; 8];
                // SAFETY (both blocks): groups g0 and g lie inside rows t0..t0 + 8 (checked by
                // `dot_tile`).
                for j in 0..8 {
                    p[j] = _mm512_dpbusd_epi32(zero, u, unsafe { self.acts_at(j, g0, g) });
                }
                unsafe {
                    let s = self.scales_at(self.st, g0, g);
                    self.off = _mm512_fmadd_ps(Self::halves(self.b0, b), s, self.off);
                    self.scaled(g0, g, Self::reduce(p), self.a0, a);
                }
            }

            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
                if self.wait(g, v, a, 0.0, v) {
                    return;
                }
                let (g0, v) = (self.g0, Self::join(self.u0, v));
                // |v| against q with v's sign (AVX-512 has no `vpsignb`: q is negated where v
                // is negative; where v is 0 the product is 0 either way).
                let av = _mm512_abs_epi8(v);
                let neg = _mm512_movepi8_mask(v);
                let zero = _mm512_setzero_si512();
                let mut p = [zero; 8];
                for j in 0..8 {
                    // SAFETY: as in `unsigned`.
                    let q = unsafe { self.acts_at(j, g0, g) };
                    p[j] = _mm512_dpbusd_epi32(zero, av, _mm512_mask_sub_epi8(q, neg, zero, q));
                }
                // SAFETY: as in `unsigned`.
                unsafe { self.scaled(g0, g, Self::reduce(p), self.a0, a) };
            }

            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
                if self.wait(g, u, a, 0.0, scales) {
                    return;
                }
                let (g0, u) = (self.g0, Self::join(self.u0, u));
                let scales = Self::join(self.sc0, scales);
                let c32 = _mm512_set1_epi8(32);
                let mut p = [_mm512_setzero_si512(); 8];
                for j in 0..8 {
                    // SAFETY: as in `unsigned`.
                    let q = unsafe { self.acts_at(j, g0, g) };
                    let d =
                        _mm512_sub_epi16(_mm512_maddubs_epi16(u, q), _mm512_maddubs_epi16(c32, q));
                    p[j] = _mm512_madd_epi16(d, scales);
                }
                // SAFETY: as in `unsigned`.
                unsafe { self.scaled(g0, g, Self::reduce(p), self.a0, a) };
            }

            /// Runs a last, unpaired group (an odd group count) of type `ty` with a zero
            /// partner reading the same activations (zero values, scale and offset add exactly
            /// 0), then stores the 8 rows' dot products.
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            #[inline]
            unsafe fn finish(&mut self, ty: QType, out: &mut [f32]) {
                if self.pending {
                    let (g, z) = (self.g0, _mm256_setzero_si256());
                    // SAFETY: group g was checked by the caller.
                    unsafe {
                        match ty {
                            QType::Q8_0 => self.signed(g, z, 0.0),
                            QType::Q6K => self.q6(g, z, z, 0.0),
                            _ => self.unsigned(g, z, 0.0, 0.0),
                        }
                    }
                }
                let fold = |x: __m512| {
                    _mm256_add_ps(
                        _mm512_castps512_ps256(x),
                        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x))),
                    )
                };
                // SAFETY: `out` holds at least 8 values (checked by `dot_tile`).
                unsafe {
                    _mm256_storeu_ps(
                        out.as_mut_ptr(),
                        _mm256_add_ps(fold(self.v), fold(self.off)),
                    )
                };
            }
        }

        /// The 8-row tile on 512-bit registers.
        ///
        /// # Safety
        /// AVX2, FMA, F16C and AVX-512 F/BW/VL/VNNI present; otherwise as `avx2_tiles::dot8`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(in crate::kernels::qdot) unsafe fn dot8(
            ty: QType,
            row: &[u8],
            acts: &QActs,
            t0: usize,
            out: &mut [f32],
        ) {
            let nb = acts.blocks();
            let bb = ty.block_bytes();
            let p = row.as_ptr();
            // SAFETY: as in `avx2_tiles::dot8`.
            unsafe {
                let mut acc = Acc16::new(acts, t0);
                decode_row!(acc, ty, p, nb, bb);
                acc.finish(ty, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dequant::dequantize;

    /// A deterministic byte soup that is a valid block of every type (scales kept finite by
    /// writing small f16 values where the scales live).
    fn random_row(ty: QType, cols: usize, seed: u64) -> Vec<u8> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut bytes: Vec<u8> = (0..ty.row_bytes(cols))
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) as u8
            })
            .collect();
        let bb = ty.block_bytes();
        // f16 0.01 ≈ 0x211f, f16 −0.004 ≈ 0x9c19: positive d, signed offsets.
        let d = 0x211fu16.to_le_bytes();
        let m = 0x9c19u16.to_le_bytes();
        for blk in bytes.chunks_exact_mut(bb) {
            match ty {
                QType::Q6K => blk[208..210].copy_from_slice(&d),
                QType::Q4_1 | QType::Q5_1 | QType::Q4K | QType::Q5K => {
                    blk[0..2].copy_from_slice(&d);
                    blk[2..4].copy_from_slice(&m);
                }
                _ => blk[0..2].copy_from_slice(&d),
            }
        }
        bytes
    }

    #[test]
    fn a_non_finite_scale_is_found_where_the_dequantiser_reads_it() {
        use crate::format::dequant::first_non_finite;
        for ty in TYPES {
            let cols = 3 * ty.block_values();
            let row = random_row(ty, cols, 9);
            assert_eq!(ty.first_non_finite_block(&row), None, "{ty:?}");
            let w = dequantize(ty.ggml(), &row, cols).unwrap();
            assert_eq!(first_non_finite(&w), None, "{ty:?}");
            for &field in ty.f16_fields() {
                for bits in [0x7e00u16, 0x7c00, 0xfc00] {
                    let mut bad = row.clone();
                    let at = ty.block_bytes() + field;
                    bad[at..at + 2].copy_from_slice(&bits.to_le_bytes());
                    assert_eq!(ty.first_non_finite_block(&bad), Some(1), "{ty:?} {field}");
                    // The de-quantiser turns that field into non-finite values of block 1.
                    let w = dequantize(ty.ggml(), &bad, cols).unwrap();
                    let i = first_non_finite(&w).unwrap_or(usize::MAX);
                    assert_eq!(i / ty.block_values(), 1, "{ty:?} {field} {bits:#x}");
                }
            }
        }
    }

    fn acts(rows: usize, cols: usize, seed: u64) -> (Vec<f32>, QActs) {
        let mut s = seed;
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((s >> 40) as f32) / (1u64 << 24) as f32 - 0.5;
                u * if i % 7 == 0 { 8.0 } else { 1.0 }
            })
            .collect();
        let mut q = QActs::default();
        q.quantize(&x, rows, cols);
        (x, q)
    }

    const TYPES: [QType; 8] = [
        QType::Q4_0,
        QType::Q4_1,
        QType::Q5_0,
        QType::Q5_1,
        QType::Q8_0,
        QType::Q4K,
        QType::Q5K,
        QType::Q6K,
    ];

    #[test]
    fn portable_tile_matches_dequantised_dot_within_activation_rounding() {
        for ty in TYPES {
            for cols in [256usize, 512, 768] {
                let row = random_row(ty, cols, cols as u64);
                let w = dequantize(ty.ggml(), &row, cols).unwrap();
                let (x, q) = acts(3, cols, 7);
                let mut out = [0f32; 4];
                portable_tile(ty, &row, &q, 0, 3, &mut out);
                for t in 0..3 {
                    let xr = &x[t * cols..(t + 1) * cols];
                    let exact: f64 = w
                        .iter()
                        .zip(xr)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    // The activation rounding error: |Δx| ≤ d/2 per value.
                    let bound: f64 = w
                        .iter()
                        .zip(q.d[t * cols / QK..].iter().flat_map(|&d| [d; QK]))
                        .map(|(&w, d)| f64::from(w.abs()) * f64::from(d) * 0.5)
                        .sum::<f64>()
                        + 1e-4;
                    let got = f64::from(out[t]);
                    assert!(
                        (got - exact).abs() <= bound,
                        "{ty:?} cols {cols} row {t}: {got} vs {exact} (bound {bound})"
                    );
                }
            }
        }
    }

    #[test]
    fn attention_kernel_matches_a_direct_softmax() {
        for (g, d, len) in [
            (1usize, 64usize, 1usize),
            (3, 64, 37),
            (2, 256, 9),
            (1, 12, 5),
            (1, 64, 16),
            (2, 40, 19),
            (3, 128, 300),
        ] {
            let f = |i: usize, k: f32| ((i as f32) * k).sin();
            let q: Vec<f32> = (0..g * d).map(|i| f(i, 0.37)).collect();
            let keys: Vec<f32> = (0..len * d).map(|i| f(i, 0.11)).collect();
            let vals: Vec<f32> = (0..len * d).map(|i| f(i, 0.23)).collect();
            let mut out = vec![0f32; g * d];
            let mut scores = Vec::new();
            attend(&q, &keys, &vals, g, d, 0.125, &mut scores, &mut out);
            for h in 0..g {
                let s: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|i| f64::from(q[h * d + i]) * f64::from(keys[j * d + i]))
                            .sum::<f64>()
                            * 0.125
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for i in 0..d {
                    let want: f64 = (0..len)
                        .map(|j| (s[j] - m).exp() / z * f64::from(vals[j * d + i]))
                        .sum();
                    let got = f64::from(out[h * d + i]);
                    assert!(
                        (got - want).abs() < 1e-5,
                        "g {g} d {d} len {len} h {h} i {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn half_float_conversion_rounds_to_nearest_even() {
        use crate::format::dequant::f16_to_f32;
        // Every finite half survives the round trip; NaNs stay NaN.
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(f16_to_f32(f32_to_f16(x)).is_nan());
            } else {
                assert_eq!(f32_to_f16(x), h, "{h:#06x} = {x}");
            }
        }
        // Ties go to even; overflow to infinity; tiny values to (signed) zero.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(-1e-9), 0x8000);
        // Values in between: within half a unit in the last place, and the AVX2 converter
        // (where present) writes the same bits.
        let xs: Vec<f32> = (0..4099)
            .map(|i| ((i as f32) * 0.731).sin() * 10f32.powi(i % 9 - 4))
            .collect();
        let mut fast = Vec::new();
        extend_f16(&mut fast, &xs);
        for (&x, &h) in xs.iter().zip(&fast) {
            assert_eq!(h, f32_to_f16(x), "{x}");
            let back = f16_to_f32(h);
            let ulp = if back.abs() < 6.1e-5 {
                2f32.powi(-24)
            } else {
                back.abs() * 2f32.powi(-10)
            };
            assert!((back - x).abs() <= 0.5 * ulp * 1.001, "{x} -> {back}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn grouped_attention_equals_the_per_head_kernel_bit_for_bit() {
        if !(has_avx2() && crate::kernels::has_avx512()) {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        }
        // Same products, same order per head: identical results, f32 and half caches, key
        // counts on and off the blocks of 8, head sizes with and without a 64-wide tail.
        for (g, d, len) in [
            (3usize, 64usize, 37usize),
            (2, 40, 19),
            (3, 256, 8),
            (2, 128, 301),
        ] {
            let f = |i: usize, k: f32| ((i as f32) * k).sin();
            let q: Vec<f32> = (0..g * d).map(|i| f(i, 0.37)).collect();
            let k32: Vec<f32> = (0..len * d).map(|i| f(i, 0.11)).collect();
            let v32: Vec<f32> = (0..len * d).map(|i| f(i, 0.23)).collect();
            let (mut k16, mut v16) = (Vec::new(), Vec::new());
            extend_f16(&mut k16, &k32);
            extend_f16(&mut v16, &v32);
            for half in [false, true] {
                let (k, v): (*const u8, *const u8) = if half {
                    (k16.as_ptr().cast(), v16.as_ptr().cast())
                } else {
                    (k32.as_ptr().cast(), v32.as_ptr().cast())
                };
                let (mut a, mut b) = (vec![0f32; g * d], vec![0f32; g * d]);
                let mut scores = vec![0f32; g * len];
                // SAFETY: AVX2 and AVX-512 checked; the slices hold the shapes passed.
                unsafe {
                    match (g, half) {
                        (2, false) => avx2::attend_group::attend::<2, false>(
                            &q,
                            k,
                            v,
                            len,
                            d,
                            0.125,
                            &mut scores,
                            &mut a,
                        ),
                        (2, true) => avx2::attend_group::attend::<2, true>(
                            &q,
                            k,
                            v,
                            len,
                            d,
                            0.125,
                            &mut scores,
                            &mut a,
                        ),
                        (_, false) => avx2::attend_group::attend::<3, false>(
                            &q,
                            k,
                            v,
                            len,
                            d,
                            0.125,
                            &mut scores,
                            &mut a,
                        ),
                        (_, true) => avx2::attend_group::attend::<3, true>(
                            &q,
                            k,
                            v,
                            len,
                            d,
                            0.125,
                            &mut scores,
                            &mut a,
                        ),
                    }
                    if half {
                        avx2::attend::<true>(&q, k, v, len, g, d, 0.125, &mut scores, &mut b);
                    } else {
                        avx2::attend::<false>(&q, k, v, len, g, d, 0.125, &mut scores, &mut b);
                    }
                }
                assert_eq!(a, b, "g {g} d {d} len {len} half {half}");
            }
        }
    }

    #[test]
    fn half_float_attention_equals_attention_over_the_rounded_cache() {
        use crate::format::dequant::f16_to_f32;
        for (g, d, len) in [
            (3usize, 64usize, 37usize),
            (1, 64, 300),
            (2, 40, 19),
            (1, 12, 5),
        ] {
            let f = |i: usize, k: f32| ((i as f32) * k).sin();
            let q: Vec<f32> = (0..g * d).map(|i| f(i, 0.37)).collect();
            let mut k16 = Vec::new();
            let mut v16 = Vec::new();
            extend_f16(
                &mut k16,
                &(0..len * d).map(|i| f(i, 0.11)).collect::<Vec<_>>(),
            );
            extend_f16(
                &mut v16,
                &(0..len * d).map(|i| f(i, 0.23)).collect::<Vec<_>>(),
            );
            let k32: Vec<f32> = k16.iter().map(|&h| f16_to_f32(h)).collect();
            let v32: Vec<f32> = v16.iter().map(|&h| f16_to_f32(h)).collect();
            let (mut a, mut b) = (vec![0f32; g * d], vec![0f32; g * d]);
            let mut scores = Vec::new();
            attend(&q, &k32, &v32, g, d, 0.125, &mut scores, &mut a);
            attend(&q, &k16, &v16, g, d, 0.125, &mut scores, &mut b);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6, "g {g} d {d} len {len}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn quantised_activations_reconstruct_within_half_a_step() {
        let (x, q) = acts(2, 64, 3);
        for (i, &v) in x.iter().enumerate() {
            let d = q.d[i / QK];
            let back = f32::from(q.qs[i]) * d;
            assert!((back - v).abs() <= d * 0.5 + 1e-7, "{i}: {back} vs {v}");
        }
        for b in 0..q.d.len() {
            let sum: i32 = q.qs[b * QK..(b + 1) * QK]
                .iter()
                .map(|&v| i32::from(v))
                .sum();
            assert_eq!(q.s[b], q.d[b] * sum as f32);
        }
        let mut z = QActs::default();
        z.quantize(&[0.0; 32], 1, 32);
        assert_eq!((z.d[0], z.s[0]), (0.0, 0.0));
        z.quantize(&[f32::NAN; 32], 1, 32);
        assert!(z.d[0].is_nan());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_tile_matches_portable_tile() {
        if !has_avx2() {
            eprintln!("no AVX2 on this CPU: nothing to compare");
            return;
        }
        for ty in TYPES {
            for cols in [256usize, 1280] {
                let row = random_row(ty, cols, 11 + cols as u64);
                let w = dequantize(ty.ggml(), &row, cols).unwrap();
                let (_, q) = acts(9, cols, 5);
                for n in 1..=MAX_TILE {
                    for t0 in [0, 9 - n] {
                        let mut a = [0f32; MAX_TILE];
                        let mut p = [0f32; MAX_TILE];
                        dot_tile(ty, &row, &q, t0, n, &mut a);
                        portable_tile(ty, &row, &q, t0, n, &mut p);
                        for j in 0..n {
                            // The two versions add the same integer group sums in different
                            // orders: they agree to f32 rounding of the magnitude Σ|w·x|.
                            let t = t0 + j;
                            let xq: Vec<f32> = (0..cols)
                                .map(|i| {
                                    f32::from(q.qs[t * cols + i]) * q.d[t * cols / QK + i / QK]
                                })
                                .collect();
                            let mag: f32 = w.iter().zip(&xq).map(|(a, b)| (a * b).abs()).sum();
                            let tol = 1e-5 * mag.max(p[j].abs());
                            assert!(
                                (a[j] - p[j]).abs() <= tol,
                                "{ty:?} cols {cols} n {n} t0 {t0} j {j}: {} vs {} (|w·x| {mag})",
                                a[j],
                                p[j]
                            );
                        }
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vnni512_tile_equals_avx2_tile_within_rounding() {
        if !(has_avx2() && crate::kernels::has_avx512_vnni()) {
            eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
            return;
        }
        // Two groups per 512-bit step: the same integer sums, even and odd groups accumulated
        // apart. Odd group counts (96 = 3 blocks) pair the last group with a zero one.
        for ty in TYPES {
            for cols in [96usize, 160, 256, 1280] {
                if !cols.is_multiple_of(ty.block_values()) {
                    continue;
                }
                let row = random_row(ty, cols, 29 + cols as u64);
                let (x, q) = acts(11, cols, 5);
                for t0 in [0, 3] {
                    let (mut z, mut a) = ([0f32; 8], [0f32; 8]);
                    // SAFETY: checked above; `dot_tile`'s asserts hold for these shapes.
                    unsafe {
                        avx2::vnni512::dot8(ty, &row, &q, t0, &mut z);
                        avx2::avx2_tiles::dot8(ty, &row, &q, t0, &mut a);
                    }
                    let w = dequantize(ty.ggml(), &row, cols).unwrap();
                    for j in 0..8 {
                        let bound: f32 = w
                            .iter()
                            .zip(&x[(t0 + j) * cols..(t0 + j + 1) * cols])
                            .map(|(w, x)| (w * x).abs())
                            .sum();
                        assert!(
                            (z[j] - a[j]).abs() <= 1e-5 * bound,
                            "{ty:?} cols {cols} t0 {t0} row {j}: {} vs {}",
                            z[j],
                            a[j]
                        );
                    }
                }
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn amx_panel_matches_portable_tile() {
        if !amx::available() {
            eprintln!("no AMX-INT8 (or no tile state from the kernel) here: nothing to compare");
            return;
        }
        // 16 weight rows against 1..=16 activation rows from several offsets; rows of 1, 3
        // and 18 blocks (96: an odd count; 576: SmolLM2's hidden size). The integer sums are
        // exact on both sides, so the f32 results differ only by the accumulation order.
        for ty in [QType::Q4_0, QType::Q4_1, QType::Q8_0] {
            for cols in [32usize, 96, 576] {
                let rb = ty.row_bytes(cols);
                let rows: Vec<u8> = (0..amx::ROWS)
                    .flat_map(|j| random_row(ty, cols, 41 + j as u64 + cols as u64))
                    .collect();
                let (x, q) = acts(21, cols, 13);
                for (t0, m) in [(0, 16), (0, 8), (3, 1), (5, 16), (2, 7), (20, 1)] {
                    let mut p = [0f32; amx::TOKENS * amx::ROWS];
                    amx::panel(ty, &rows, rb, &q, t0, m, &mut p);
                    for j in 0..amx::ROWS {
                        let row = &rows[j * rb..(j + 1) * rb];
                        let w = dequantize(ty.ggml(), row, cols).unwrap();
                        let mut want = [0f32; MAX_TILE];
                        for t in 0..m {
                            portable_tile(ty, row, &q, t0 + t, 1, &mut want);
                            let bound: f32 = w
                                .iter()
                                .zip(&x[(t0 + t) * cols..(t0 + t + 1) * cols])
                                .map(|(w, x)| (w * x).abs())
                                .sum();
                            let got = p[t * amx::ROWS + j];
                            assert!(
                                (got - want[0]).abs() <= 1e-5 * bound.max(1e-6),
                                "{ty:?} cols {cols} t0 {t0} m {m} row {j} token {t}: {got} vs {}",
                                want[0]
                            );
                        }
                    }
                }
            }
        }
    }

    /// `Σ w·x` in f64 and `Σ |w·x|` (the scale of f32 rounding) for de-quantised `w`.
    fn exact_dot(w: &[f32], x: &[f32]) -> (f64, f64) {
        w.iter().zip(x).fold((0.0, 0.0), |(s, m), (&w, &x)| {
            let p = f64::from(w) * f64::from(x);
            (s + p, m + p.abs())
        })
    }

    #[test]
    fn f32_activation_tiles_equal_the_dequantised_product() {
        // Every type, odd row counts, rows not a multiple of 8, 32-block rows of odd group
        // counts and K-quant rows of 1 and 5 super-blocks; the portable tile and each SIMD
        // version against the de-quantised f64 dot within f32 rounding (1e-5 of Σ|w·x|).
        let wide = crate::kernels::has_avx512();
        for ty in TYPES {
            for cols in [96usize, 256, 1280] {
                if !cols.is_multiple_of(ty.block_values()) {
                    continue;
                }
                let row = random_row(ty, cols, 41 + cols as u64);
                let w = dequantize(ty.ggml(), &row, cols).unwrap();
                let (x, _) = acts(11, cols, 13);
                for n in 1..=MAX_TILE {
                    for t0 in [0, 11 - n] {
                        let mut got = vec![[0f32; MAX_TILE]];
                        portable_tile_f32(ty, &row, &x, cols, t0, n, &mut got[0]);
                        #[cfg(target_arch = "x86_64")]
                        if has_avx2() {
                            for use_wide in [false, true] {
                                if use_wide && !wide {
                                    continue;
                                }
                                let mut o = [0f32; MAX_TILE];
                                // SAFETY: AVX2 (and AVX-512 for `wide`) checked; the shapes
                                // satisfy `dot_tile_f32`'s asserts.
                                unsafe {
                                    simd_tile_f32(use_wide, ty, &row, &x, cols, t0, n, &mut o)
                                };
                                got.push(o);
                            }
                        }
                        let mut d = [0f32; MAX_TILE];
                        dot_tile_f32(ty, &row, &x, cols, t0, n, &mut d);
                        got.push(d);
                        for (v, o) in got.iter().enumerate() {
                            for (j, &oj) in o.iter().enumerate().take(n) {
                                let t = t0 + j;
                                let (e, mag) = exact_dot(&w, &x[t * cols..(t + 1) * cols]);
                                assert!(
                                    (f64::from(oj) - e).abs() <= 1e-5 * mag + 1e-7,
                                    "{ty:?} cols {cols} n {n} t0 {t0} row {j} version {v}: {oj} vs {e}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pair_tile_equals_two_one_row_tiles_bit_for_bit() {
        // The two-row kernel against the one-row wide tile (bit for bit: a row's sums must
        // not depend on whether a thread's range paired it) and the de-quantised f64 dot;
        // odd group counts, an offset tile, and a type without a two-row kernel (the
        // fallback).
        for ty in TYPES {
            for cols in [96usize, 1280] {
                if !cols.is_multiple_of(ty.block_values()) {
                    continue;
                }
                let rb = ty.row_bytes(cols);
                let rows: Vec<u8> = (0..2)
                    .flat_map(|r| random_row(ty, cols, 7 + r + cols as u64))
                    .collect();
                let (x, _) = acts(11, cols, 5);
                for t0 in [0usize, 3] {
                    let mut got = [0f32; 2 * MAX_TILE];
                    dot_pair8_f32(ty, &rows, &x, cols, t0, &mut got);
                    #[cfg(target_arch = "x86_64")]
                    if pair8_f32_runs(ty) {
                        let mut pair = [0f32; 2 * MAX_TILE];
                        // SAFETY: AVX-512 and the type checked; two rows, rows t0..t0 + 8.
                        unsafe { avx2::f32acts::wide::pair8(ty, &rows, &x, cols, t0, &mut pair) };
                        for i in 0..2 {
                            let mut one = [0f32; MAX_TILE];
                            let row = &rows[i * rb..(i + 1) * rb];
                            // SAFETY: AVX-512 present; the shapes satisfy `dot_tile_f32`.
                            unsafe {
                                simd_tile_f32(true, ty, row, &x, cols, t0, MAX_TILE, &mut one)
                            };
                            for j in 0..MAX_TILE {
                                assert_eq!(
                                    pair[i * MAX_TILE + j].to_bits(),
                                    one[j].to_bits(),
                                    "{ty:?} cols {cols} t0 {t0} row {i} token {j}"
                                );
                            }
                        }
                    }
                    for i in 0..2 {
                        let w = dequantize(ty.ggml(), &rows[i * rb..(i + 1) * rb], cols).unwrap();
                        for j in 0..MAX_TILE {
                            let t = t0 + j;
                            let (e, mag) = exact_dot(&w, &x[t * cols..(t + 1) * cols]);
                            let v = got[i * MAX_TILE + j];
                            assert!(
                                (f64::from(v) - e).abs() <= 1e-5 * mag + 1e-7,
                                "{ty:?} cols {cols} t0 {t0} row {i} token {j}: {v} vs {e}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn f32_rows_kernel_equals_the_dequantised_product() {
        // Batch-1 decoding's entry point (on AVX-512 its own accumulation, `a·Σu·x + b·Σx`);
        // 13 rows (not a multiple of anything), every type, both SIMD widths where the CPU has
        // them, against the de-quantised f64 dot and the one-row tile.
        for ty in TYPES {
            let cols = 512;
            let rb = ty.row_bytes(cols);
            let rows: Vec<u8> = (0..13)
                .flat_map(|r| random_row(ty, cols, 100 + r))
                .collect();
            let (x, _) = acts(1, cols, 3);
            for wide in [true, false] {
                F32_WIDE_TILES.store(wide, Ordering::Relaxed);
                let mut all = [0f32; 13];
                dot_rows_f32(ty, &rows, &x, &mut all);
                for (r, &v) in all.iter().enumerate() {
                    let row = &rows[r * rb..(r + 1) * rb];
                    let w = dequantize(ty.ggml(), row, cols).unwrap();
                    let (e, mag) = exact_dot(&w, &x);
                    let mut one = [0f32; MAX_TILE];
                    dot_tile_f32(ty, row, &x, cols, 0, 1, &mut one);
                    for got in [v, one[0]] {
                        assert!(
                            (f64::from(got) - e).abs() <= 1e-5 * mag + 1e-7,
                            "{ty:?} row {r} wide {wide}: {got} vs {e}"
                        );
                    }
                }
            }
            F32_WIDE_TILES.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    #[should_panic(expected = "tile out of range")]
    fn f32_activation_tile_refuses_rows_past_the_input() {
        let row = random_row(QType::Q4_1, 64, 1);
        let x = vec![0.5f32; 2 * 64];
        let mut out = [0f32; MAX_TILE];
        dot_tile_f32(QType::Q4_1, &row, &x, 64, 1, 2, &mut out);
    }

    #[test]
    fn vnni_tiles_equal_avx2_tiles_bit_for_bit() {
        if !(has_avx2() && crate::kernels::has_avx512_vnni()) {
            eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
            return;
        }
        // The same integer group sums (one `vpdpbusd` against `vpmaddubsw` + `vpmaddwd`),
        // accumulated in the same order: identical f32 results, every type, every tile width,
        // the 8-row panel included, odd row lengths (1280 = 5 super-blocks).
        for ty in TYPES {
            for cols in [256usize, 1280] {
                let row = random_row(ty, cols, 23 + cols as u64);
                let (_, q) = acts(9, cols, 7);
                for n in 1..=MAX_TILE {
                    for t0 in [0, 9 - n] {
                        let (mut v, mut a) = ([0f32; MAX_TILE], [0f32; MAX_TILE]);
                        // SAFETY: checked above; `dot_tile`'s asserts hold for these shapes.
                        unsafe {
                            macro_rules! run {
                                ($m:ident, $o:expr) => {
                                    match n {
                                        8 if q.dt.len() == q.rows * q.blocks() => {
                                            avx2::$m::dot8(ty, &row, &q, t0, $o)
                                        }
                                        1 => avx2::$m::dot::<1>(ty, &row, &q, t0, $o),
                                        2 => avx2::$m::dot::<2>(ty, &row, &q, t0, $o),
                                        3 => avx2::$m::dot::<3>(ty, &row, &q, t0, $o),
                                        4 => avx2::$m::dot::<4>(ty, &row, &q, t0, $o),
                                        5 => avx2::$m::dot::<5>(ty, &row, &q, t0, $o),
                                        6 => avx2::$m::dot::<6>(ty, &row, &q, t0, $o),
                                        7 => avx2::$m::dot::<7>(ty, &row, &q, t0, $o),
                                        _ => avx2::$m::dot::<8>(ty, &row, &q, t0, $o),
                                    }
                                };
                            }
                            run!(vnni_tiles, &mut v);
                            run!(avx2_tiles, &mut a);
                        }
                        assert_eq!(v[..n], a[..n], "{ty:?} cols {cols} n {n} t0 {t0}");
                    }
                }
            }
        }
    }
}
