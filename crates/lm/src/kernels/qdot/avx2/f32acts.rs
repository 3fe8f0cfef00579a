//! Tiles with **f32 activations** (`Precision::F32` of the quantized executor): each group of
//! 32 weights is widened to f32 in registers (`w = a·u + b`, `a·v` or `a·sc·(u − 32)`, the
//! values the f32 engine de-quantises) and multiplied into up to 8 activation rows with FMAs;
//! no activation is rounded, so the result equals the de-quantised f32 product up to the order
//! of the f32 additions. One version on 512-bit registers (AVX-512 F) and one on 256-bit
//! (AVX2 + FMA), chosen at run time by [`super::super::dot_tile_f32`]; the portable twin is
//! [`super::super::portable_tile_f32`].

use std::arch::x86_64::*;

use super::{f16_at, f16_pair, high_bits, hsum, nibbles, prefetch};
use crate::kernels::qdot::{QK, QType};

/// The 8-bit lanes of a Q6_K group's two scales, as f32 (`scales` holds `sc[0]` in its low and
/// `sc[1]` in its high 128 bits, as 16-bit lanes).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn q6_scales(scales: __m256i) -> (f32, f32) {
    let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(scales)) as i16;
    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(scales)) as i16;
    (f32::from(lo), f32::from(hi))
}

/// Weight rows prefetched ahead of their use by the batch-1 kernels (`rows1`: contiguous
/// rows; the multi-row tiles are bound by arithmetic, and a prefetch there measured nothing).
const AHEAD_ROWS: usize = 8;

/// The accumulator of the `i`-th product of a row when there are `P` of them (round robin).
#[inline(always)]
const fn slot<const P: usize>(i: usize) -> usize {
    i % P
}

/// AVX-512 F: a group's 32 weights as two 16-lane vectors.
pub(in crate::kernels::qdot) mod wide {
    #![allow(clippy::needless_range_loop)]

    use super::*;

    /// `P` 16-lane accumulators per activation row, of which the low and high halves of a
    /// group use two when `P ≥ 2` (independent FMA chains); `x[j]` points at row `t0 + j`.
    struct Acc<const N: usize, const P: usize> {
        v: [[__m512; P]; N],
        x: [*const f32; N],
    }

    impl<const N: usize, const P: usize> Acc<N, P> {
        /// `v[j] += w0 · x[j][g·32..+16] + w1 · x[j][g·32+16..+32]`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn mul(&mut self, g: usize, w0: __m512, w1: __m512) {
            // Constant slots (a slot chosen by `g` would keep the accumulators in memory).
            let (k0, k1) = (0, (P - 1).min(1));
            for j in 0..N {
                // SAFETY: group `g` lies inside row `t0 + j` (checked by `dot_tile_f32`).
                unsafe {
                    let p = self.x[j].add(g * QK);
                    self.v[j][k0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(p), self.v[j][k0]);
                    self.v[j][k1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(p.add(16)), self.v[j][k1]);
                }
            }
        }

        /// Group `g` with unsigned values `u`: `w = a · u + b`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
            let (a, b) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(u)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256::<1>(u)));
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, _mm512_fmadd_ps(lo, a, b), _mm512_fmadd_ps(hi, a, b)) };
        }

        /// Group `g` of 4-bit values packed at `q` (`packed4_group!`): `w = a · u + c` by table
        /// look-up ([`widen4`]): four operations for the group's 32 weights where unpacking the
        /// nibbles and converting and scaling each half took ten; the same values as
        /// [`Self::unsigned`], bit for bit.
        ///
        /// # Safety
        /// As [`Self::mul`], and 16 readable bytes at `q`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn packed4(&mut self, g: usize, q: *const u8, a: f32, c: f32) {
            // SAFETY: the caller's block holds 16 bytes at `q`; the rest as in `mul`.
            unsafe {
                let (lo, hi) = widen4(q, a, c);
                self.mul(g, lo, hi);
            }
        }

        /// Group `g` with signed values `v`: `w = a · v`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
            let a = _mm512_set1_ps(a);
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256::<1>(v)));
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, _mm512_mul_ps(lo, a), _mm512_mul_ps(hi, a)) };
        }

        /// Q6_K group `g`: `w = a · sc · (u − 32)`, one `sc` per 16 values.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
            let (s0, s1) = q6_scales(scales);
            let c = _mm512_set1_epi32(32);
            let lo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(u)), c);
            let hi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_extracti128_si256::<1>(u)), c);
            let w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(lo), _mm512_set1_ps(a * s0));
            let w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(hi), _mm512_set1_ps(a * s1));
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, w0, w1) };
        }
    }

    /// One weight row against f32 activation rows `t0..t0 + N` of `x` (`cols` values each).
    ///
    /// # Safety
    /// AVX2, FMA, F16C and AVX-512 F/BW/VL present; `row` holds `ty.row_bytes(cols)` bytes;
    /// `x` holds rows `t0..t0 + N`; `out.len() ≥ N`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    #[inline]
    pub(in crate::kernels::qdot) unsafe fn dot<const N: usize, const P: usize>(
        ty: QType,
        row: &[u8],
        x: &[f32],
        cols: usize,
        t0: usize,
        out: &mut [f32],
    ) {
        let nb = cols / QK;
        let bb = ty.block_bytes();
        let p = row.as_ptr();
        let mut acc = Acc::<N, P> {
            v: [[_mm512_setzero_ps(); P]; N],
            x: std::array::from_fn(|j| x[(t0 + j) * cols..].as_ptr()),
        };
        // SAFETY: every pointer stays inside `row` and rows `t0..t0 + N` of `x` (the caller's
        // contract, checked by `dot_tile_f32`).
        unsafe { decode_row!(acc, ty, p, nb, bb, packed4) };
        let v: [__m512; N] = std::array::from_fn(|j| {
            acc.v[j][1..]
                .iter()
                .fold(acc.v[j][0], |s, &v| _mm512_add_ps(s, v))
        });
        if N == 8 {
            let s = sum8(std::array::from_fn(|j| v[j]));
            // SAFETY: `out` holds at least `N` = 8 values (the caller's contract).
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        } else {
            for j in 0..N {
                out[j] = _mm512_reduce_add_ps(v[j]);
            }
        }
    }

    /// The lane sums of eight vectors, `[Σ v[0], …, Σ v[7]]`, by a transposing tree: 25
    /// shuffles and additions against the 64 of eight separate horizontal sums (the
    /// reduction was ~15% of an 8-row tile over 576 values).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    #[inline]
    fn sum8(v: [__m512; 8]) -> __m256 {
        // 128-bit chunks c0..c3 of a and b → [a0 + a2, a1 + a3, b0 + b2, b1 + b3].
        let pair = |a: __m512, b: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
            )
        };
        let (t01, t23, t45, t67) = (
            pair(v[0], v[1]),
            pair(v[2], v[3]),
            pair(v[4], v[5]),
            pair(v[6], v[7]),
        );
        // Chunk i of `quad(p, q)`: four partial sums of row i of the four rows of p and q.
        let quad = |p: __m512, q: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(p, q),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(p, q),
            )
        };
        let (u0, u1) = (quad(t01, t23), quad(t45, t67));
        // Within each chunk i: [u0 pairs, u1 pairs], then [row i, row i + 4, …].
        let s = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(u0, u1),
            _mm512_shuffle_ps::<0b11_01_11_01>(u0, u1),
        );
        let s = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(s, s),
            _mm512_shuffle_ps::<0b11_01_11_01>(s, s),
        );
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
        _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, s))
    }

    /// The 32 weights `a · u + c` of a group of 4-bit values `u` packed at `q` (value `j` in
    /// the low, `j + 16` in the high nibble of byte `j`), by table look-up: the 16 possible
    /// weights `a · k + c` computed once, then picked by each lane's nibble (`vpermps` reads an
    /// index's low 4 bits only, so the zero-extended bytes index the low nibbles as they are
    /// and, shifted by 4, the high ones).
    ///
    /// # Safety
    /// The features of [`dot`]; 16 readable bytes at `q`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    #[inline]
    unsafe fn widen4(q: *const u8, a: f32, c: f32) -> (__m512, __m512) {
        let k = _mm512_setr_ps(
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        );
        let table = _mm512_fmadd_ps(k, _mm512_set1_ps(a), _mm512_set1_ps(c));
        // SAFETY: the caller's 16 bytes at `q`.
        let bytes = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(q.cast()) });
        (
            _mm512_permutexvar_ps(bytes, table),
            _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(bytes), table),
        )
    }

    /// The 32 weights `a · v` of the 32 signed bytes at `q` (the values of [`Acc::signed`]).
    ///
    /// # Safety
    /// The features of [`dot`]; 32 readable bytes at `q`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    #[inline]
    unsafe fn widen8(q: *const u8, a: f32) -> (__m512, __m512) {
        let a = _mm512_set1_ps(a);
        // SAFETY: the caller's 32 bytes at `q`.
        let (lo, hi) = unsafe {
            (
                _mm512_cvtepi8_epi32(_mm_loadu_si128(q.cast())),
                _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(16).cast())),
            )
        };
        (
            _mm512_mul_ps(_mm512_cvtepi32_ps(lo), a),
            _mm512_mul_ps(_mm512_cvtepi32_ps(hi), a),
        )
    }

    /// Whether [`pair8`] runs `ty` (the types whose groups widen in registers without the
    /// shared block visitor: SmolLM2's Q4_1 and Q8_0, and Q4_0).
    pub(in crate::kernels::qdot) fn pair8_runs(ty: QType) -> bool {
        matches!(ty, QType::Q4_0 | QType::Q4_1 | QType::Q8_0)
    }

    /// Two consecutive weight rows against activation rows `t0..t0 + 8`: each pair of
    /// activation vectors loaded serves both weight rows (16 accumulators), so the tile loads
    /// half the activations per FMA of [`dot`] — with f32 activations the loads, not the
    /// widening, bound the one-row tile (8 rows of 2,048 values overflow L1). The weights are
    /// those of [`Acc::packed4`] and [`Acc::signed`], bit for bit, and each row's sums are
    /// accumulated in [`dot`]'s order for `P = 1`.
    ///
    /// # Safety
    /// The features of [`dot`]; `ty` one of [`pair8_runs`]; `rows` holds two rows of
    /// `ty.row_bytes(cols)` bytes; `x` holds rows `t0..t0 + 8` of `cols` values;
    /// `out.len() ≥ 16` (row 0's eight sums, then row 1's).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    pub(in crate::kernels::qdot) unsafe fn pair8(
        ty: QType,
        rows: &[u8],
        x: &[f32],
        cols: usize,
        t0: usize,
        out: &mut [f32],
    ) {
        let nb = cols / QK;
        let bb = ty.block_bytes();
        let rb = ty.row_bytes(cols);
        let xs: [*const f32; 8] = std::array::from_fn(|j| x[(t0 + j) * cols..].as_ptr());
        let mut v = [[_mm512_setzero_ps(); 8]; 2];
        let p = rows.as_ptr();
        for g in 0..nb {
            // SAFETY (whole loop body): block `g` of both rows lies inside `rows`, group `g`
            // inside each activation row (the caller's contract).
            unsafe {
                let (b0, b1) = (p.add(g * bb), p.add(rb + g * bb));
                let w = match ty {
                    QType::Q4_0 => {
                        let (d0, d1) = (f16_at(b0), f16_at(b1));
                        [
                            widen4(b0.add(2), d0, -8.0 * d0),
                            widen4(b1.add(2), d1, -8.0 * d1),
                        ]
                    }
                    QType::Q4_1 => {
                        let ((d0, m0), (d1, m1)) = (f16_pair(b0), f16_pair(b1));
                        [widen4(b0.add(4), d0, m0), widen4(b1.add(4), d1, m1)]
                    }
                    _ => [
                        widen8(b0.add(2), f16_pair(b0).0),
                        widen8(b1.add(2), f16_pair(b1).0),
                    ],
                };
                for j in 0..8 {
                    let q = xs[j].add(g * QK);
                    let (x0, x1) = (_mm512_loadu_ps(q), _mm512_loadu_ps(q.add(16)));
                    for r in 0..2 {
                        v[r][j] = _mm512_fmadd_ps(w[r].0, x0, v[r][j]);
                        v[r][j] = _mm512_fmadd_ps(w[r].1, x1, v[r][j]);
                    }
                }
            }
        }
        for r in 0..2 {
            // SAFETY: `out` holds 16 values (the caller's contract).
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * r), sum8(v[r])) };
        }
    }

    /// One activation row (batch-1 decoding), with fewer operations per group than
    /// [`Acc`]: the group's integer values are multiplied into `x` first and the group scale
    /// applied to that sum, `w·x = a·Σu·x + b·Σx` (`Σx` per group computed once per call), so
    /// no weight is formed. Even and odd groups go to separate accumulators (independent FMA
    /// chains).
    struct Acc1 {
        v: [__m512; 4],
        off: [f32; 2],
        x: *const f32,
        sx: *const f32,
    }

    impl Acc1 {
        /// Rotates the even/odd accumulator pairs (`v[1]` was this group's input): constant
        /// indices keep them in registers, where an index chosen by the group's parity would
        /// not.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        fn push(&mut self, v0: __m512, v2: Option<__m512>) {
            let [a, _, c, d] = self.v;
            self.v = match v2 {
                Some(v2) => [v0, a, v2, c],
                None => [v0, a, c, d],
            };
        }

        /// The group's two halves of `x`.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn xs(&self, g: usize) -> (__m512, __m512) {
            // SAFETY: group `g` lies inside `x` (the caller's contract).
            unsafe {
                let p = self.x.add(g * QK);
                (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)))
            }
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(u)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256::<1>(u)));
            // SAFETY: as in `xs`; `sx` holds one sum per group.
            unsafe {
                let (x0, x1) = self.xs(g);
                let s = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
                self.push(_mm512_fmadd_ps(s, _mm512_set1_ps(a), self.v[1]), None);
                let off = self.off[1] + b * *self.sx.add(g);
                self.off = [off, self.off[0]];
            }
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256::<1>(v)));
            // SAFETY: as in `xs`.
            unsafe {
                let (x0, x1) = self.xs(g);
                let s = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
                self.push(_mm512_fmadd_ps(s, _mm512_set1_ps(a), self.v[1]), None);
            }
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
            let (s0, s1) = q6_scales(scales);
            let c = _mm512_set1_epi32(32);
            let lo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(u)), c);
            let hi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_extracti128_si256::<1>(u)), c);
            // SAFETY: as in `xs`.
            unsafe {
                let (x0, x1) = self.xs(g);
                let p0 = _mm512_mul_ps(_mm512_cvtepi32_ps(lo), x0);
                let p1 = _mm512_mul_ps(_mm512_cvtepi32_ps(hi), x1);
                let v0 = _mm512_fmadd_ps(p0, _mm512_set1_ps(a * s0), self.v[1]);
                let v2 = _mm512_fmadd_ps(p1, _mm512_set1_ps(a * s1), self.v[3]);
                self.push(v0, Some(v2));
            }
        }
    }

    /// `out[r] = row r · x` for the `out.len()` consecutive weight rows of `rb` bytes in
    /// `rows` and one activation row `x` (batch-1 decoding, [`Acc1`]): the dispatch is paid
    /// once per call, not once per row.
    ///
    /// # Safety
    /// The features of [`dot`]; `rows` holds `out.len()` rows of `ty.row_bytes(x.len())` = `rb`
    /// bytes.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
    pub(in crate::kernels::qdot) unsafe fn rows1(
        ty: QType,
        rows: &[u8],
        rb: usize,
        x: &[f32],
        out: &mut [f32],
    ) {
        let nb = x.len() / QK;
        let bb = ty.block_bytes();
        // The group sums on the stack for rows of up to 4,096 values (a call covers one
        // thread's range of rows; there are several per product).
        let mut stack = [0f32; 128];
        let heap: Vec<f32>;
        let sx: &[f32] = if nb <= stack.len() {
            for (s, c) in stack.iter_mut().zip(x.chunks_exact(QK)) {
                *s = c.iter().sum();
            }
            &stack[..nb]
        } else {
            heap = x.chunks_exact(QK).map(|c| c.iter().sum()).collect();
            &heap
        };
        // Rows in runs of 8: their lane sums are reduced together (`sum8`), and the weights
        // `AHEAD_ROWS` rows on are prefetched (the loads of each group stalled on memory
        // otherwise: a tenth of this kernel's cycles in decoding).
        let base = rows.as_ptr();
        let mut r0 = 0;
        while r0 < out.len() {
            let m = (out.len() - r0).min(8);
            let mut vs = [_mm512_setzero_ps(); 8];
            let mut offs = [0f32; 8];
            for i in 0..m {
                let r = r0 + i;
                prefetch(base.wrapping_add((r + AHEAD_ROWS) * rb), rb);
                let p = rows[r * rb..(r + 1) * rb].as_ptr();
                let mut acc = Acc1 {
                    v: [_mm512_setzero_ps(); 4],
                    off: [0.0; 2],
                    x: x.as_ptr(),
                    sx: sx.as_ptr(),
                };
                // SAFETY: row `r` lies inside `rows` and every group inside `x` and `sx` (the
                // caller's contract).
                unsafe { decode_row!(acc, ty, p, nb, bb) };
                vs[i] = _mm512_add_ps(
                    _mm512_add_ps(acc.v[0], acc.v[1]),
                    _mm512_add_ps(acc.v[2], acc.v[3]),
                );
                offs[i] = acc.off[0] + acc.off[1];
            }
            let mut sums = [0f32; 8];
            // SAFETY: `sums` holds 8 values.
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), sum8(vs)) };
            for i in 0..m {
                out[r0 + i] = sums[i] + offs[i];
            }
            r0 += m;
        }
    }
}

/// AVX2 + FMA: a group's 32 weights as four 8-lane vectors.
pub(in crate::kernels::qdot) mod narrow {
    #![allow(clippy::needless_range_loop)]

    use super::*;

    /// `P` 8-lane accumulators per activation row (the four 8-value chunks of a group spread
    /// over `P` independent FMA chains); `x[j]` points at row `t0 + j`.
    struct Acc<const N: usize, const P: usize> {
        v: [[__m256; P]; N],
        x: [*const f32; N],
    }

    /// The 32 bytes of `u` as four vectors of 8 i32 (`signed`: sign-extended).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn widen<const SIGNED: bool>(u: __m256i) -> [__m256i; 4] {
        let lo = _mm256_castsi256_si128(u);
        let hi = _mm256_extracti128_si256::<1>(u);
        let parts = [lo, _mm_srli_si128::<8>(lo), hi, _mm_srli_si128::<8>(hi)];
        parts.map(|p| {
            if SIGNED {
                _mm256_cvtepi8_epi32(p)
            } else {
                _mm256_cvtepu8_epi32(p)
            }
        })
    }

    impl<const N: usize, const P: usize> Acc<N, P> {
        /// `v[j] += Σ_c w[c] · x[j][g·32 + 8c..+8]`.
        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        unsafe fn mul(&mut self, g: usize, w: [__m256; 4]) {
            for j in 0..N {
                // SAFETY: group `g` lies inside row `t0 + j` (checked by `dot_tile_f32`).
                unsafe {
                    let p = self.x[j].add(g * QK);
                    for (c, w) in w.iter().enumerate() {
                        let k = slot::<P>(c);
                        self.v[j][k] =
                            _mm256_fmadd_ps(*w, _mm256_loadu_ps(p.add(8 * c)), self.v[j][k]);
                    }
                }
            }
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        unsafe fn unsigned(&mut self, g: usize, u: __m256i, a: f32, b: f32) {
            let (a, b) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
            let w = widen::<false>(u).map(|v| _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), a, b));
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, w) };
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        unsafe fn signed(&mut self, g: usize, v: __m256i, a: f32) {
            let a = _mm256_set1_ps(a);
            let w = widen::<true>(v).map(|v| _mm256_mul_ps(_mm256_cvtepi32_ps(v), a));
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, w) };
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        unsafe fn q6(&mut self, g: usize, u: __m256i, scales: __m256i, a: f32) {
            let (s0, s1) = q6_scales(scales);
            let (a0, a1) = (_mm256_set1_ps(a * s0), _mm256_set1_ps(a * s1));
            let c = _mm256_set1_epi32(32);
            let v = widen::<false>(u).map(|v| _mm256_cvtepi32_ps(_mm256_sub_epi32(v, c)));
            let w = [
                _mm256_mul_ps(v[0], a0),
                _mm256_mul_ps(v[1], a0),
                _mm256_mul_ps(v[2], a1),
                _mm256_mul_ps(v[3], a1),
            ];
            // SAFETY: as in `mul`.
            unsafe { self.mul(g, w) };
        }
    }

    /// As [`super::wide::dot`], on AVX2 + FMA + F16C.
    ///
    /// # Safety
    /// AVX2, FMA and F16C present; otherwise as [`super::wide::dot`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    pub(in crate::kernels::qdot) unsafe fn dot<const N: usize, const P: usize>(
        ty: QType,
        row: &[u8],
        x: &[f32],
        cols: usize,
        t0: usize,
        out: &mut [f32],
    ) {
        let nb = cols / QK;
        let bb = ty.block_bytes();
        let p = row.as_ptr();
        let mut acc = Acc::<N, P> {
            v: [[_mm256_setzero_ps(); P]; N],
            x: std::array::from_fn(|j| x[(t0 + j) * cols..].as_ptr()),
        };
        // SAFETY: as in `wide::dot`.
        unsafe { decode_row!(acc, ty, p, nb, bb) };
        for j in 0..N {
            let v = acc.v[j][1..]
                .iter()
                .fold(acc.v[j][0], |s, &v| _mm256_add_ps(s, v));
            // SAFETY: same features as this function.
            out[j] = unsafe { hsum(v) };
        }
    }

    /// `out[r] = row r · x` for the `out.len()` consecutive weight rows of `rb` bytes in
    /// `rows` and one activation row `x` (batch-1 decoding): the dispatch is paid once per
    /// call, not once per row.
    ///
    /// # Safety
    /// The features of [`dot`]; `rows` holds `out.len()` rows of `ty.row_bytes(x.len())` = `rb`
    /// bytes.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::kernels::qdot) unsafe fn rows1(
        ty: QType,
        rows: &[u8],
        rb: usize,
        x: &[f32],
        out: &mut [f32],
    ) {
        for (r, o) in out.iter_mut().enumerate() {
            // The prefetch measured on the AVX-512 kernel, applied here alike.
            prefetch(rows.as_ptr().wrapping_add((r + AHEAD_ROWS) * rb), rb);
            // SAFETY: row `r` lies inside `rows` (the caller's contract).
            unsafe {
                dot::<1, 4>(
                    ty,
                    &rows[r * rb..(r + 1) * rb],
                    x,
                    x.len(),
                    0,
                    std::slice::from_mut(o),
                )
            };
        }
    }
}
