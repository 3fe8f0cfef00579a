//! Decode-time attention for a group of `G` query heads (2 or 3) sharing a key/value head, with
//! each cached chunk widened once for all `G` heads: scores of 8 keys × `G` heads accumulate in
//! `8·G` registers (AVX-512 VL gives 32 of them at 256 bits) while one 8-value chunk of each
//! key is widened and multiplied into every head, and the weighted sum keeps `G` heads × 64
//! outputs in registers while each value row's chunks are widened once. The same products as
//! [`super::attend`] summed in the same order per head, so the results are equal bit for bit.

// Register arrays indexed by head and lane, as the kernel's description reads.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{KV_AHEAD, load8, prefetch, reduce8_ps, score_tail};

/// [`super::attend`] for exactly `G` heads.
///
/// # Safety
/// AVX2, FMA, F16C and AVX-512 F/BW/VL present; `d % 8 == 0`; otherwise as [`super::attend`]
/// with `g == G`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(in crate::kernels::qdot) unsafe fn attend<const G: usize, const H: bool>(
    q: &[f32],
    keys: *const u8,
    vals: *const u8,
    len: usize,
    d: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let full = len - len % 8;
    let es = if H { 2 } else { 4 };
    // Keys and values prefetched `KV_AHEAD` rows ahead of both loops.
    let fetch = |base: *const u8, row: usize| prefetch(base.wrapping_add(row * d * es), d * es);
    // SAFETY (whole body): indices stay within the bounds the caller asserted.
    unsafe {
        let scale_v = _mm256_set1_ps(scale);
        for r in 0..KV_AHEAD.min(len) {
            fetch(vals, r);
        }
        let mut j = 0;
        while j < full {
            let k = j * d;
            for r in 0..8 {
                fetch(keys, j + KV_AHEAD + r);
            }
            let mut acc = [[_mm256_setzero_ps(); 8]; G];
            let mut i = 0;
            while i < d {
                let qv: [__m256; G] =
                    std::array::from_fn(|h| _mm256_loadu_ps(q.as_ptr().add(h * d + i)));
                for r in 0..8 {
                    let kv = load8::<H>(keys, k + r * d + i);
                    for h in 0..G {
                        acc[h][r] = _mm256_fmadd_ps(qv[h], kv, acc[h][r]);
                    }
                }
                i += 8;
            }
            for h in 0..G {
                let sh = scores.as_mut_ptr().add(h * len + j);
                _mm256_storeu_ps(sh, _mm256_mul_ps(reduce8_ps(acc[h]), scale_v));
            }
            j += 8;
        }
        score_tail::<H>(q, keys, full, len, G, d, scale, scores);
        // Values: 64-wide output chunks, all G heads' accumulators in registers over all rows.
        let mut c0 = 0;
        while c0 < d {
            let w = ((d - c0) / 8).min(8);
            let mut acc = [[_mm256_setzero_ps(); 8]; G];
            for j in 0..len {
                if c0 == 0 {
                    fetch(vals, j + KV_AHEAD);
                }
                let row = j * d + c0;
                let p: [__m256; G] =
                    std::array::from_fn(|h| _mm256_set1_ps(*scores.as_ptr().add(h * len + j)));
                for c in 0..8 {
                    if c < w {
                        let v = load8::<H>(vals, row + c * 8);
                        for h in 0..G {
                            acc[h][c] = _mm256_fmadd_ps(p[h], v, acc[h][c]);
                        }
                    }
                }
            }
            for h in 0..G {
                for c in 0..w {
                    _mm256_storeu_ps(out.as_mut_ptr().add(h * d + c0 + c * 8), acc[h][c]);
                }
            }
            c0 += 8 * w;
        }
    }
}
