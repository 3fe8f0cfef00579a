//! CPU kernels with run-time SIMD dispatch: the int8 dot-product tile of [`crate::kernels::qgemm`], the
//! f32 row loops of [`crate::models::bert::int8`] (layer norm, GELU, softmax attention, row quantisation)
//! and the GGUF-block integer dot products of the quantized executor ([`qdot`], AVX2); two
//! probes of the machine's limits beside them ([`bandwidth`]: memory reads, [`peak`]:
//! multiply-accumulates).
//!
//! This is the only module of the workspace that uses `unsafe`, for two reasons, both checked
//! here and nowhere else:
//!
//! * calling a function compiled with `#[target_feature(enable = …)]` is `unsafe` unless the
//!   caller was compiled with the same features; every such call below sits behind a run-time
//!   check ([`has_avx512`], [`has_avx512_vnni`]) that the CPU has them;
//! * the AVX-512 VNNI tile reads its operands through raw pointers (`_mm512_loadu_si512`,
//!   unaligned `i32` reads); the index ranges are checked by `assert!`s before the loop.
//!
//! Every kernel has a portable version in plain Rust used on other CPUs and by the tests; the
//! int8 tile's two versions compute the same integers, so they agree exactly.
//!
//! The f32 loops are written once as `#[inline(always)]` plain Rust and compiled twice by
//! `multiversion!`: for the build's baseline target (x86-64: SSE2) and with AVX-512 enabled,
//! so that the auto-vectoriser emits 16-wide code where the CPU has it.
#![allow(unsafe_code)]

pub mod bandwidth;
pub mod math;
pub mod peak;
pub mod pool;
pub mod qdot;
pub mod qgemm;
pub mod softmax;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the SIMD versions may be used (see [`set_simd_enabled`]).
static SIMD_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the SIMD versions off (or back on) for the whole process: every kernel then runs its
/// portable version, as on a CPU without AVX-512. For tests (`tests/portable_kernels.rs` runs
/// both on one machine) and for measuring what the SIMD versions buy.
pub fn set_simd_enabled(enabled: bool) {
    SIMD_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether [`set_simd_enabled`] left the SIMD versions on.
pub(crate) fn simd_enabled() -> bool {
    SIMD_ENABLED.load(Ordering::Relaxed)
}

/// Whether the CPU has AVX-512 F/BW/VL with FMA and AVX2 (detected once) and SIMD is enabled.
pub fn has_avx512() -> bool {
    SIMD_ENABLED.load(Ordering::Relaxed) && detected_avx512()
}

/// The CPU's AVX-512 F/BW/VL, FMA and AVX2 (detected once).
fn detected_avx512() -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the CPU has AVX-512 VNNI (`vpdpbusd`) besides [`has_avx512`] (detected once).
pub fn has_avx512_vnni() -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    has_avx512()
        && *FLAG.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        })
}

/// Defines a function whose body is compiled twice, for the baseline target and with AVX-512,
/// and dispatched at run time by [`has_avx512`]. Inside the body, the const `FMA` tells which
/// (use [`madd`] for `a · b + c`, fused where that is a single instruction).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable<const FMA: bool>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) {
                    portable::<true>($($arg),*)
                }
                if has_avx512() {
                    // SAFETY: the CPU has every feature `avx512` was compiled with.
                    unsafe { avx512($($arg),*) };
                    return;
                }
            }
            portable::<false>($($arg),*)
        }
    };
}

/// `a · b + c`: one fused multiply-add when `FMA` (the code is compiled with the `fma` target
/// feature), a multiply and an add otherwise (`mul_add` without hardware FMA is a slow libm call).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Rows per int8 tile (the VNNI kernel keeps `TILE_ROWS × 4` accumulators in registers).
pub const TILE_ROWS: usize = 6;
/// Columns per int8 tile: four 16-column panels.
pub const TILE_COLS: usize = 64;
/// Bytes of one column group per step of four `k` values (`TILE_COLS × 4`).
pub const GROUP_STEP_BYTES: usize = TILE_COLS * 4;

/// Integer dot products of `rows ≤ TILE_ROWS` rows of `a` (u8, row stride `lda`, starting at
/// byte 0 of each row) with one packed column group (`k4` steps of [`GROUP_STEP_BYTES`]: for each
/// step, four panels of 16 columns × 4 consecutive `k` values) into `out[r][c]` (overwritten).
///
/// Dispatches to the AVX-512 VNNI kernel when the CPU has it; both versions compute the same
/// exact `i32` sums.
///
/// # Panics
/// If `rows > TILE_ROWS`, `a` is shorter than `(rows − 1)·lda + 4·k4` or `group` shorter than
/// `k4 · GROUP_STEP_BYTES` (internal invariants of [`crate::kernels::qgemm`]).
pub(crate) fn int8_tile(
    a: &[u8],
    lda: usize,
    rows: usize,
    group: &[i8],
    k4: usize,
    out: &mut [[i32; TILE_COLS]; TILE_ROWS],
) {
    assert!(rows <= TILE_ROWS && rows > 0, "tile rows {rows}");
    assert!(4 * k4 <= lda, "lda {lda} < 4·k4 {}", 4 * k4);
    assert!(
        a.len() >= (rows - 1) * lda + 4 * k4,
        "a holds {} bytes",
        a.len()
    );
    assert!(group.len() >= k4 * GROUP_STEP_BYTES, "group too short");
    #[cfg(target_arch = "x86_64")]
    if has_avx512_vnni() {
        // SAFETY: the CPU has AVX-512 F/BW/VNNI, and the asserts above bound every read.
        unsafe {
            match rows {
                1 => vnni::tile::<1>(a, lda, group, k4, out),
                2 => vnni::tile::<2>(a, lda, group, k4, out),
                3 => vnni::tile::<3>(a, lda, group, k4, out),
                4 => vnni::tile::<4>(a, lda, group, k4, out),
                5 => vnni::tile::<5>(a, lda, group, k4, out),
                _ => vnni::tile::<6>(a, lda, group, k4, out),
            }
        }
        return;
    }
    int8_tile_portable(a, lda, rows, group, k4, out);
}

/// The portable version of [`int8_tile`] (same arguments, same result).
pub(crate) fn int8_tile_portable(
    a: &[u8],
    lda: usize,
    rows: usize,
    group: &[i8],
    k4: usize,
    out: &mut [[i32; TILE_COLS]; TILE_ROWS],
) {
    for (r, acc) in out.iter_mut().enumerate().take(rows) {
        acc.fill(0);
        let row = &a[r * lda..r * lda + 4 * k4];
        for (kk, av) in row.chunks_exact(4).enumerate() {
            let step = &group[kk * GROUP_STEP_BYTES..(kk + 1) * GROUP_STEP_BYTES];
            for (c, b) in step.chunks_exact(4).enumerate() {
                acc[c] += i32::from(av[0]) * i32::from(b[0])
                    + i32::from(av[1]) * i32::from(b[1])
                    + i32::from(av[2]) * i32::from(b[2])
                    + i32::from(av[3]) * i32::from(b[3]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{GROUP_STEP_BYTES, TILE_COLS, TILE_ROWS};
    use std::arch::x86_64::{
        __m512i, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512,
    };

    /// `R` rows × 64 columns with `vpdpbusd` (u8 × i8, four products summed per i32 lane).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VNNI; `a` must hold `(R − 1)·lda + 4·k4` bytes and `group`
    /// `k4 · GROUP_STEP_BYTES` (checked by the caller, [`super::int8_tile`]).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile<const R: usize>(
        a: &[u8],
        lda: usize,
        group: &[i8],
        k4: usize,
        out: &mut [[i32; TILE_COLS]; TILE_ROWS],
    ) {
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        let ap = a.as_ptr();
        let bp = group.as_ptr();
        for kk in 0..k4 {
            // SAFETY: kk < k4, so the 4 × 64 bytes at kk·256 are inside `group`.
            let b: [__m512i; 4] = unsafe {
                let base = bp.add(kk * GROUP_STEP_BYTES);
                [
                    _mm512_loadu_si512(base.cast()),
                    _mm512_loadu_si512(base.add(64).cast()),
                    _mm512_loadu_si512(base.add(128).cast()),
                    _mm512_loadu_si512(base.add(192).cast()),
                ]
            };
            for (r, row_acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and kk < k4, so the 4 bytes at r·lda + 4·kk are inside `a`.
                let word = unsafe { ap.add(r * lda + 4 * kk).cast::<i32>().read_unaligned() };
                let av = _mm512_set1_epi32(word);
                for p in 0..4 {
                    row_acc[p] = _mm512_dpbusd_epi32(row_acc[p], av, b[p]);
                }
            }
        }
        for (r, row_acc) in acc.iter().enumerate() {
            for (p, v) in row_acc.iter().enumerate() {
                // SAFETY: out[r] holds 64 i32; p·16 + 16 ≤ 64.
                unsafe { _mm512_storeu_si512(out[r].as_mut_ptr().add(p * 16).cast(), *v) };
            }
        }
    }
}

/// `min` for values known not to be NaN (a single `vminps`; `f32::min`'s NaN handling costs a
/// compare and a blend per value).
#[inline(always)]
fn fast_min(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// `max` for values known not to be NaN (see [`fast_min`]).
#[inline(always)]
fn fast_max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

multiversion! {
    /// Quantises each `k`-wide row of `x` to unsigned 8 bits with its own affine map:
    /// `x ≈ scale · (q − zero)`, `q ∈ [0, 255]`, the range `[min(x, 0), max(x, 0)]` spread over
    /// the 255 steps (so 0 is exact; an all-zero row gets scale 1, zero point 0). `out` has row
    /// stride `ldq ≥ k`, its padding bytes are set to the row's zero point; `scales` and `zeros`
    /// get one value per row. `finite` is set to false if any value is NaN or infinite (the
    /// codes are then meaningless), and left alone otherwise.
    pub(crate) fn quantize_rows_u8(
        x: &[f32],
        k: usize,
        ldq: usize,
        out: &mut [u8],
        scales: &mut [f32],
        zeros: &mut [i32],
        finite: &mut bool,
    ) {
        // Adding 1.5·2²³ to a float in [0, 255] leaves round-to-nearest-even of it in the low
        // mantissa bits: the integer conversion without a saturating float → int cast.
        const MAGIC: f32 = 12_582_912.0;
        for (((row, q), s), z) in x
            .chunks_exact(k)
            .zip(out.chunks_exact_mut(ldq))
            .zip(scales.iter_mut())
            .zip(zeros.iter_mut())
        {
            let mut lo = [0.0f32; 16];
            let mut hi = [0.0f32; 16];
            let mut check = [0.0f32; 16];
            let mut chunks = row.chunks_exact(16);
            for chunk in &mut chunks {
                for t in 0..16 {
                    lo[t] = fast_min(lo[t], chunk[t]);
                    hi[t] = fast_max(hi[t], chunk[t]);
                    check[t] += chunk[t] * 0.0; // NaN if any value is NaN or infinite
                }
            }
            for (t, v) in chunks.remainder().iter().enumerate() {
                lo[t] = fast_min(lo[t], *v);
                hi[t] = fast_max(hi[t], *v);
                check[t] += v * 0.0;
            }
            if check.iter().any(|c| c.is_nan()) {
                *finite = false;
            }
            let min = lo.iter().fold(0.0f32, |m, v| fast_min(m, *v));
            let max = hi.iter().fold(0.0f32, |m, v| fast_max(m, *v));
            let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
            let inv = 1.0 / scale;
            let zero = ((-min * inv).clamp(0.0, 255.0) + MAGIC).to_bits() & 0xff;
            let zf = zero as f32;
            for (d, v) in q.iter_mut().zip(row) {
                let t = madd::<FMA>(*v, inv, zf);
                *d = (fast_min(fast_max(t, 0.0), 255.0) + MAGIC).to_bits() as u8;
            }
            q[k..].fill(zero as u8);
            *s = scale;
            *z = zero as i32;
        }
    }
}

multiversion! {
    /// `out[r][c] = sa[r] · sw[c] · (acc[r][c] − zero[r] · col_sums[c]) + bias[c]` for one
    /// tile: the de-quantisation of [`int8_tile`]'s sums (`acc` holds `Σ q_a · q_w`, `q_a` the
    /// unsigned codes of [`quantize_rows_u8`]).
    pub(crate) fn dequant_tile(
        acc: &[[i32; TILE_COLS]; TILE_ROWS],
        rows: usize,
        cols: usize,
        row_scales: &[f32],
        row_zeros: &[i32],
        col_scales: &[f32],
        col_sums: &[i32],
        bias: &[f32],
        out: &mut [f32],
        ldo: usize,
    ) {
        for r in 0..rows {
            let (sa, za) = (row_scales[r], row_zeros[r]);
            let dst = &mut out[r * ldo..r * ldo + cols];
            if cols == TILE_COLS {
                // Fixed length: one straight vectorised pass.
                let (cs, sums, b) = (&col_scales[..TILE_COLS], &col_sums[..TILE_COLS], &bias[..TILE_COLS]);
                for c in 0..TILE_COLS {
                    let v = (acc[r][c] - za * sums[c]) as f32;
                    dst[c] = madd::<FMA>(sa * cs[c], v, b[c]);
                }
            } else {
                for c in 0..cols {
                    let v = (acc[r][c] - za * col_sums[c]) as f32;
                    dst[c] = madd::<FMA>(sa * col_scales[c], v, bias[c]);
                }
            }
        }
    }
}

multiversion! {
    /// Layer norm of each `dim`-wide row of `x` in place: `(x − mean) / √(var + eps) · γ + β`
    /// with the biased variance (PyTorch's `LayerNorm`); `residual`, when not empty, is added to
    /// `x` first (same shape).
    pub fn add_layer_norm_rows(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let dim = gamma.len();
        let rows = x.len() / dim;
        for r in 0..rows {
            let row = &mut x[r * dim..(r + 1) * dim];
            if !residual.is_empty() {
                for (v, a) in row.iter_mut().zip(&residual[r * dim..(r + 1) * dim]) {
                    *v += a;
                }
            }
            let mut lanes = [0.0f32; 16];
            for chunk in row.chunks(16) {
                for (l, v) in lanes.iter_mut().zip(chunk) {
                    *l += v;
                }
            }
            let mean = lanes.iter().sum::<f32>() / dim as f32;
            let mut lanes = [0.0f32; 16];
            for chunk in row.chunks(16) {
                for (l, v) in lanes.iter_mut().zip(chunk) {
                    *l += (v - mean) * (v - mean);
                }
            }
            let var = lanes.iter().sum::<f32>() / dim as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = madd::<FMA>((*v - mean) * inv, *g, *b);
            }
        }
    }
}

multiversion! {
    /// Exact-form GELU ([`math::gelu_erf`]) of every value, in place.
    pub fn gelu_in_place(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = math::gelu_erf(*v);
        }
    }
}

/// `e^x` for f32 without a libm call, so that loops over it vectorise: `2^n · p(r)` with
/// `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, `p` the degree-6 Taylor polynomial (relative error below
/// 2e-7 on the reduced range); inputs below −87 give 0, above 88 are clamped.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n is a whole number in [−126, 127]: read it from the bits of n + 1.5·2²³ (a float → int
    // `as` cast saturates and does not vectorise).
    const MAGIC: f32 = 12_582_912.0;
    let ni = (n + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Keys per block of the score loop (four 16-lane registers).
const KEY_BLOCK: usize = 64;

/// Scratch lengths for [`attention_head`] at sequence length `len` and head width `dh`:
/// `(kv, scores)`: the head's keys (transposed, padded to whole key blocks) and values copied
/// out of the strided rows, and the scores of two query rows.
pub fn attention_scratch(len: usize, dh: usize) -> (usize, usize) {
    let padded = len.div_ceil(KEY_BLOCK) * KEY_BLOCK;
    (dh * padded + len * dh, 2 * padded)
}

/// Scaled dot-product attention of one head over one sequence of `len` positions, no mask:
/// `ctx[i] = Σ_j softmax_j(scale · q_i·k_j) · v_j`. `qkv` holds the sequence's rows of the fused
/// projection (row stride `ld`); the head's query, key and value columns start at `offsets` and
/// are `dh` wide. `kt` and `scores` are scratch of the lengths [`attention_scratch`] gives;
/// `ctx` (`len · dh`) receives the result. Head widths 32 and 64 have unrolled versions.
///
/// # Panics
/// When a slice is shorter than the sizes above (a caller's bug, as for slice indexing).
#[allow(clippy::too_many_arguments)]
pub fn attention_head(
    qkv: &[f32],
    ld: usize,
    len: usize,
    dh: usize,
    offsets: [usize; 3],
    scale: f32,
    kt: &mut [f32],
    scores: &mut [f32],
    ctx: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn avx512<const DH: usize>(
            qkv: &[f32],
            ld: usize,
            len: usize,
            dh: usize,
            offsets: [usize; 3],
            scale: f32,
            kt: &mut [f32],
            scores: &mut [f32],
            ctx: &mut [f32],
        ) {
            attention_impl::<true, DH>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx);
        }
        // SAFETY (all three): the CPU has every feature `avx512` was compiled with.
        match dh {
            32 => unsafe { avx512::<32>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx) },
            64 => unsafe { avx512::<64>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx) },
            _ => unsafe { avx512::<0>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx) },
        }
        return;
    }
    match dh {
        32 => attention_impl::<false, 32>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx),
        64 => attention_impl::<false, 64>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx),
        _ => attention_impl::<false, 0>(qkv, ld, len, dh, offsets, scale, kt, scores, ctx),
    }
}

/// [`attention_head`]'s body; `DH > 0` fixes the head width at compile time (then `dh == DH`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attention_impl<const FMA: bool, const DH: usize>(
    qkv: &[f32],
    ld: usize,
    len: usize,
    dh: usize,
    offsets: [usize; 3],
    scale: f32,
    kt: &mut [f32],
    scores: &mut [f32],
    ctx: &mut [f32],
) {
    let dh = if DH > 0 { DH } else { dh };
    let [q_off, k_off, v_off] = offsets;
    let (kt_len, scores_len) = attention_scratch(len, dh);
    let padded = scores_len / 2;
    let (kt, values) = kt[..kt_len].split_at_mut(dh * padded);
    let scores = &mut scores[..scores_len];
    // Keys transposed to [dh, padded] (zeros past `len`), so that scores come out 64 at a time,
    // and values gathered into [len, dh]: the rows of `qkv` are 3·hidden apart, so reading a
    // head's values in place touches one page per position for every query.
    kt.fill(0.0);
    for j in 0..len {
        let key = &qkv[j * ld + k_off..][..dh];
        for (d, v) in key.iter().enumerate() {
            kt[d * padded + j] = *v;
        }
        values[j * dh..(j + 1) * dh].copy_from_slice(&qkv[j * ld + v_off..][..dh]);
    }
    // Scores two query rows at a time (eight independent accumulator registers, so the FMA
    // latency is hidden), then softmax and the weighted sum of values row by row.
    let mut i = 0;
    while i < len {
        let pair = if i + 1 < len { 2 } else { 1 };
        let q0 = &qkv[i * ld + q_off..][..dh];
        let q1 = &qkv[(i + pair - 1) * ld + q_off..][..dh];
        let (s0, second) = scores.split_at_mut(padded);
        for jb in (0..padded).step_by(KEY_BLOCK) {
            let mut a0 = [0.0f32; KEY_BLOCK];
            let mut a1 = [0.0f32; KEY_BLOCK];
            for d in 0..dh {
                let (x0, x1) = (q0[d] * scale, q1[d] * scale);
                let row: &[f32; KEY_BLOCK] = kt[d * padded + jb..][..KEY_BLOCK]
                    .try_into()
                    .expect("KEY_BLOCK values");
                for t in 0..KEY_BLOCK {
                    a0[t] = madd::<FMA>(x0, row[t], a0[t]);
                    a1[t] = madd::<FMA>(x1, row[t], a1[t]);
                }
            }
            s0[jb..jb + KEY_BLOCK].copy_from_slice(&a0);
            if pair == 2 {
                second[jb..jb + KEY_BLOCK].copy_from_slice(&a1);
            }
        }
        softmax_weighted_sum::<FMA, DH>(
            &mut s0[..len],
            values,
            dh,
            0,
            dh,
            &mut ctx[i * dh..(i + 1) * dh],
        );
        if pair == 2 {
            softmax_weighted_sum::<FMA, DH>(
                &mut second[..len],
                values,
                dh,
                0,
                dh,
                &mut ctx[(i + 1) * dh..(i + 2) * dh],
            );
        }
        i += pair;
    }
}

/// `out = Σ_j softmax(s)_j · v_j` for one query row (`s` its `len` scores, overwritten).
#[inline(always)]
fn softmax_weighted_sum<const FMA: bool, const DH: usize>(
    s: &mut [f32],
    qkv: &[f32],
    ld: usize,
    v_off: usize,
    dh: usize,
    out: &mut [f32],
) {
    let mut top = [f32::NEG_INFINITY; 16];
    let mut chunks = s.chunks_exact(16);
    for chunk in &mut chunks {
        for t in 0..16 {
            top[t] = fast_max(top[t], chunk[t]);
        }
    }
    for (m, v) in top.iter_mut().zip(chunks.remainder()) {
        *m = fast_max(*m, *v);
    }
    let max = top.iter().fold(f32::NEG_INFINITY, |m, v| fast_max(m, *v));
    let mut lanes = [0.0f32; 16];
    let mut chunks = s.chunks_exact_mut(16);
    for chunk in &mut chunks {
        for t in 0..16 {
            chunk[t] = exp_f32(chunk[t] - max);
            lanes[t] += chunk[t];
        }
    }
    for (l, v) in lanes.iter_mut().zip(chunks.into_remainder()) {
        *v = exp_f32(*v - max);
        *l += *v;
    }
    let inv = 1.0 / lanes.iter().sum::<f32>();
    if DH > 0 {
        // Four rows of values at a time into four accumulators (FMA latency again).
        let mut acc = [[0.0f32; 64]; 4];
        let mut j = 0;
        while j + 4 <= s.len() {
            for (u, a) in acc.iter_mut().enumerate() {
                let p = s[j + u];
                let v = &qkv[(j + u) * ld + v_off..][..DH];
                for t in 0..DH {
                    a[t] = madd::<FMA>(p, v[t], a[t]);
                }
            }
            j += 4;
        }
        while j < s.len() {
            let v = &qkv[j * ld + v_off..][..DH];
            for t in 0..DH {
                acc[0][t] = madd::<FMA>(s[j], v[t], acc[0][t]);
            }
            j += 1;
        }
        for t in 0..DH {
            out[t] = (acc[0][t] + acc[1][t] + acc[2][t] + acc[3][t]) * inv;
        }
    } else {
        out.fill(0.0);
        for (j, p) in s.iter().enumerate() {
            let v = &qkv[j * ld + v_off..][..dh];
            for (o, vv) in out.iter_mut().zip(v) {
                *o = madd::<FMA>(*p, *vv, *o);
            }
        }
        for o in out.iter_mut() {
            *o *= inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnni_tile_equals_portable_tile() {
        let k4 = 37;
        let lda = 4 * k4 + 8;
        let a: Vec<u8> = (0..TILE_ROWS * lda)
            .map(|i| (i * 131 % 256) as u8)
            .collect();
        let group: Vec<i8> = (0..k4 * GROUP_STEP_BYTES)
            .map(|i| ((i * 71 % 255) as i32 - 127) as i8)
            .collect();
        for rows in 1..=TILE_ROWS {
            let mut fast = [[7; TILE_COLS]; TILE_ROWS];
            let mut slow = [[-7; TILE_COLS]; TILE_ROWS];
            int8_tile(&a, lda, rows, &group, k4, &mut fast);
            int8_tile_portable(&a, lda, rows, &group, k4, &mut slow);
            assert_eq!(fast[..rows], slow[..rows], "rows {rows}");
            // Spot-check one sum against its definition.
            let (r, c) = (rows - 1, 37);
            let (p, cc) = (c / 16, c % 16);
            let want: i32 = (0..k4)
                .flat_map(|kk| (0..4).map(move |t| (kk, t)))
                .map(|(kk, t)| {
                    i32::from(a[r * lda + 4 * kk + t])
                        * i32::from(group[kk * GROUP_STEP_BYTES + p * 64 + cc * 4 + t])
                })
                .sum();
            assert_eq!(slow[r][c], want);
        }
    }

    #[test]
    fn quantize_flags_non_finite_values() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = vec![0.5f32; 40];
            x[33] = bad;
            let (mut q, mut s, mut z, mut finite) = (vec![0u8; 40], [0.0], [0], true);
            quantize_rows_u8(&x, 40, 40, &mut q, &mut s, &mut z, &mut finite);
            assert!(!finite, "{bad}");
        }
    }

    #[test]
    fn exp_matches_std_within_relative_2e7() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (f64::from(exp_f32(x)), f64::from(x).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0));
        assert!(exp_f32(-87.0) < 2e-38);
    }

    #[test]
    fn quantized_rows_reconstruct_within_half_a_step() {
        let k = 10;
        let x: Vec<f32> = (0..3 * k)
            .map(|i| ((i as f32) * 0.71).sin() * 3.0)
            .collect();
        let mut x = x;
        x[k..2 * k].fill(0.0); // an all-zero row
        x[2 * k..].iter_mut().for_each(|v| *v = v.abs()); // a non-negative row
        let (ldq, mut q, mut s, mut z) = (12, vec![0u8; 3 * 12], vec![0.0; 3], vec![0; 3]);
        let mut finite = true;
        quantize_rows_u8(&x, k, ldq, &mut q, &mut s, &mut z, &mut finite);
        assert!(finite);
        assert_eq!((s[1], z[1]), (1.0, 0));
        assert_eq!(z[2], 0);
        for r in 0..3 {
            let zero = u8::try_from(z[r]).unwrap();
            assert_eq!(&q[r * ldq + k..(r + 1) * ldq], &[zero, zero]);
            for c in 0..k {
                let back = (f32::from(q[r * ldq + c]) - z[r] as f32) * s[r];
                assert!((back - x[r * k + c]).abs() <= s[r] * 0.5 + 1e-6);
            }
        }
    }

    #[test]
    fn attention_head_matches_a_direct_softmax() {
        // A generic width and the unrolled 32; lengths across the 64-key blocks.
        for (len, dh) in [(5, 4), (70, 32), (3, 32), (65, 64)] {
            let ld = 3 * dh;
            let qkv: Vec<f32> = (0..len * ld).map(|i| ((i as f32) * 0.37).cos()).collect();
            let (kt_len, s_len) = attention_scratch(len, dh);
            let (mut kt, mut sc, mut ctx) = (
                vec![f32::NAN; kt_len],
                vec![f32::NAN; s_len],
                vec![0.0; len * dh],
            );
            attention_head(
                &qkv,
                ld,
                len,
                dh,
                [0, dh, 2 * dh],
                0.5,
                &mut kt,
                &mut sc,
                &mut ctx,
            );
            for i in 0..len {
                let logits: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..dh)
                            .map(|d| f64::from(qkv[i * ld + d]) * f64::from(qkv[j * ld + dh + d]))
                            .sum::<f64>()
                            * 0.5
                    })
                    .collect();
                let m = logits.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
                for d in 0..dh {
                    let want: f64 = (0..len)
                        .map(|j| (logits[j] - m).exp() / z * f64::from(qkv[j * ld + 2 * dh + d]))
                        .sum();
                    assert!(
                        (f64::from(ctx[i * dh + d]) - want).abs() < 1e-5,
                        "len {len} dh {dh}"
                    );
                }
            }
        }
    }
}
