//! Softmax statistics without materialising the distribution: the first maximum of a logit row
//! ([`argmax_first`]), `Σ e^{x−m}` and `Σ (x−m)·e^{x−m}` ([`sums`]) with a vectorisable `exp`
//! (AVX2 when the CPU has it); and SwiGLU's `silu(g)·u` on the same `exp`.
//!
//! The AVX2 paths are written with intrinsics that perform the portable code's operations in
//! the same order, lane for lane (no fused multiply-adds), so both return the same bits
//! (`avx2_paths_equal_the_portable_ones_bit_for_bit`): a guided-decoding run's entropy and
//! max-probability triggers fire at the same steps whichever path a machine takes.

/// `exp(t)` for `t ≤ 0` (clamped at −87, below which it is < 2⁻¹²⁵): `2ⁿ · e^r` with
/// `n = round(t / ln 2)`, `|r| ≤ ln 2 / 2` and a degree-6 Taylor polynomial (relative error
/// < 2·10⁻⁷). Branch-free, so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp_nonpositive(t: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding and subtracting it rounds to an integer.
    let t = t.max(-87.0);
    let shifted = t * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = t - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // `n` as an integer, read from the bits of `shifted` (whose unit is 1: the integer sits in
    // its low mantissa bits) — the same value as `n as i32`, whose saturating conversion
    // compiles to scalar compares and moves per lane and kept loops over this function from
    // vectorising (a third of attention's softmax).
    let ni = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    f32::from_bits(ni.wrapping_add(127) << 23) * p
}

/// The eight lanes' sums and the tail's, added up in f64 (lane 0 first), as both paths do.
#[inline(always)]
fn finish(z: [f32; 8], s: [f32; 8], tail: &[f32], m: f32) -> (f64, f64) {
    let (mut zt, mut st) = (0f64, 0f64);
    for &x in tail {
        let t = x - m;
        let e = exp_nonpositive(t);
        zt += f64::from(e);
        st += f64::from(t * e);
    }
    (
        z.iter().map(|&v| f64::from(v)).sum::<f64>() + zt,
        s.iter().map(|&v| f64::from(v)).sum::<f64>() + st,
    )
}

/// `(Σ e, Σ (x − m)·e)` with `e = exp(x − m)`, in 8 lanes.
fn portable_sums(logits: &[f32], m: f32) -> (f64, f64) {
    let mut z = [0f32; 8];
    let mut s = [0f32; 8];
    let chunks = logits.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let t = c[l] - m;
            let e = exp_nonpositive(t);
            z[l] += e;
            s[l] += t * e;
        }
    }
    finish(z, s, tail, m)
}

/// [`exp_nonpositive`] on 8 lanes: the same operations in the same order (no FMA), so the same
/// bits per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exp_nonpositive8(t: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0;
    let c = _mm256_set1_ps;
    // `t.max(-87.0)`: MAXPS returns its second operand when the first is NaN, as `f32::max`
    // returns the number.
    let t = _mm256_max_ps(t, c(-87.0));
    let shifted = _mm256_add_ps(_mm256_mul_ps(t, c(LOG2E)), c(ROUND));
    let n = _mm256_sub_ps(shifted, c(ROUND));
    let r = _mm256_sub_ps(
        _mm256_sub_ps(t, _mm256_mul_ps(n, c(LN2_HI))),
        _mm256_mul_ps(n, c(LN2_LO)),
    );
    // Horner from the inside, as the scalar expression nests: k + r·(…).
    let step = |k: f32, inner: __m256| _mm256_add_ps(c(k), _mm256_mul_ps(r, inner));
    let p = step(1.0 / 120.0, c(1.0 / 720.0));
    let p = step(1.0 / 24.0, p);
    let p = step(1.0 / 6.0, p);
    let p = step(0.5, p);
    let p = step(1.0, p);
    let p = step(1.0, p);
    let ni = _mm256_sub_epi32(
        _mm256_castps_si256(shifted),
        _mm256_set1_epi32(ROUND.to_bits() as i32),
    );
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        ni,
        _mm256_set1_epi32(127),
    )));
    _mm256_mul_ps(scale, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_sums(logits: &[f32], m: f32) -> (f64, f64) {
    use std::arch::x86_64::*;
    let chunks = logits.chunks_exact(8);
    let tail = chunks.remainder();
    let mv = _mm256_set1_ps(m);
    let (mut z, mut s) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for c in chunks {
        // SAFETY: `c` holds 8 floats.
        let t = _mm256_sub_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, mv);
        let e = exp_nonpositive8(t);
        z = _mm256_add_ps(z, e);
        s = _mm256_add_ps(s, _mm256_mul_ps(t, e));
    }
    let (mut zl, mut sl) = ([0f32; 8], [0f32; 8]);
    // SAFETY: each array holds 8 floats.
    unsafe {
        _mm256_storeu_ps(zl.as_mut_ptr(), z);
        _mm256_storeu_ps(sl.as_mut_ptr(), s);
    }
    finish(zl, sl, tail, m)
}

/// The index and value of the first largest element of `logits` — what the loop
/// `if x > m { m = x; i = j }` from `m = −∞, i = 0` returns: NaNs are passed over, ties go to
/// the lowest index, and a row with nothing above −∞ gives `(0, −∞)`. Vectorised with AVX2
/// when the CPU has it (the same result).
pub fn argmax_first(logits: &[f32]) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if super::qdot::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2_argmax_first(logits) };
    }
    portable_argmax_first(logits)
}

fn portable_argmax_first(logits: &[f32]) -> (usize, f32) {
    let (mut i, mut m) = (0, f32::NEG_INFINITY);
    for (j, &x) in logits.iter().enumerate() {
        if x > m {
            m = x;
            i = j;
        }
    }
    (i, m)
}

/// Two passes: the maximum in four 8-lane accumulators, then the first element equal to it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_argmax_first(logits: &[f32]) -> (usize, f32) {
    use std::arch::x86_64::*;
    let chunks = logits.chunks_exact(32);
    let tail = chunks.remainder();
    let mut acc = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
    for c in chunks {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` holds 32 floats. MAXPS(x, a) = x > a ? x : a, so NaNs in `x` are
            // passed over.
            *a = _mm256_max_ps(unsafe { _mm256_loadu_ps(c.as_ptr().add(8 * k)) }, *a);
        }
    }
    let a = _mm256_max_ps(_mm256_max_ps(acc[0], acc[1]), _mm256_max_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
    let m = lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if m == f32::NEG_INFINITY {
        return (0, m);
    }
    // The first element equal to the maximum (±0 compare equal; its own bits are returned).
    let mv = _mm256_set1_ps(m);
    let body = logits.len() - logits.len() % 8;
    for (ci, c) in logits[..body].chunks_exact(8).enumerate() {
        // SAFETY: `c` holds 8 floats.
        let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(unsafe { _mm256_loadu_ps(c.as_ptr()) }, mv);
        let mask = _mm256_movemask_ps(eq);
        if mask != 0 {
            let i = 8 * ci + mask.trailing_zeros() as usize;
            return (i, logits[i]);
        }
    }
    let i = body + logits[body..].iter().position(|&x| x == m).unwrap_or(0);
    (i, logits[i])
}

/// `(Σ e, Σ (x − m)·e)` with `e = exp(x − m)` over `logits` (`m` ≥ every logit).
pub fn sums(logits: &[f32], m: f32) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if super::qdot::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2_sums(logits, m) };
    }
    portable_sums(logits, m)
}

/// `silu(g)·u = g·σ(g)·u` for one value, with `σ` from `e = exp(−|g|)` (an argument `≤ 0`, so
/// [`exp_nonpositive`] serves): `σ(g) = 1/(1+e)` for `g ≥ 0`, `e/(1+e)` below. Branch-free.
#[inline(always)]
fn silu_mul_one(g: f32, u: f32) -> f32 {
    let e = exp_nonpositive(-g.abs());
    let num = if g >= 0.0 { 1.0 } else { e };
    g * num / (1.0 + e) * u
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu_mul_one(g, u);
    }
}

/// `out[i] = silu(gate[i]) · up[i]` (SwiGLU's product; relative error ~3·10⁻⁷), vectorised
/// with AVX2 when the CPU has it. Processes `min` of the three lengths.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::qdot::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { avx2_silu_mul(gate, up, out) };
        return;
    }
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu_mul_one(g, u);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn silu_mul_matches_the_direct_formula() {
        let gate: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) / 37.0).collect();
        let up: Vec<f32> = (0..1001)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 3.0)
            .collect();
        let mut out = vec![0f32; 1001];
        silu_mul(&gate, &up, &mut out);
        for ((&o, &g), &u) in out.iter().zip(&gate).zip(&up) {
            let want = f64::from(g) / (1.0 + (-f64::from(g)).exp()) * f64::from(u);
            assert!(
                (f64::from(o) - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{g}: {o} vs {want}"
            );
        }
    }

    use super::*;

    #[test]
    fn exp_reads_the_exponent_from_the_bits_exactly() {
        // The integer exponent taken from the bits of `t·log2(e) + 1.5·2²³` against the
        // saturating conversion it replaced, bit for bit, over [−100, 0] (the clamp included).
        let reference = |t: f32| {
            let t = t.max(-87.0);
            let n = (t * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
            let r = t - n * 0.693_145_75 - n * 1.428_606_8e-6;
            let p = 1.0
                + r * (1.0
                    + r * (0.5
                        + r * (1.0 / 6.0
                            + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
            f32::from_bits(((n as i32 + 127) as u32) << 23) * p
        };
        for i in 0..=2_000_000u32 {
            let t = -(i as f32) * 5e-5;
            assert_eq!(exp_nonpositive(t).to_bits(), reference(t).to_bits(), "{t}");
        }
        for t in [0.0f32, -0.0, -86.9, -87.0, -87.1, -1e30, f32::NEG_INFINITY] {
            assert_eq!(exp_nonpositive(t).to_bits(), reference(t).to_bits(), "{t}");
        }
    }

    /// Deterministic logit rows of many lengths (tails of every size), spread like a model's.
    fn rows() -> Vec<Vec<f32>> {
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut rows: Vec<Vec<f32>> = [1usize, 7, 8, 9, 31, 32, 33, 40, 257, 1003, 49_152]
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| (next() % 40_000) as f32 / 1000.0 - 30.0)
                    .collect()
            })
            .collect();
        // Ties, signed zeros, infinities and NaNs where the scans must agree on the index.
        rows.push(vec![0.5, 2.0, 2.0, 1.0, 2.0]);
        rows.push(vec![-0.0, 0.0, -0.0, -1.0]);
        rows.push(vec![0.0; 40]);
        rows.push(vec![f32::NEG_INFINITY; 33]);
        rows.push(vec![f32::NAN, f32::NEG_INFINITY, 3.0, f32::NAN, 3.0]);
        rows.push(vec![f32::NAN; 17]);
        rows.push([vec![f32::NAN], vec![f32::NEG_INFINITY; 40]].concat());
        rows.push((0..70).map(|i| if i == 66 { 9.0 } else { -1.0 }).collect());
        rows.push(
            (0..70)
                .map(|i| if i == 5 { f32::INFINITY } else { 1.0 })
                .collect(),
        );
        rows
    }

    #[test]
    fn avx2_paths_equal_the_portable_ones_bit_for_bit() {
        if !super::super::qdot::has_avx2() {
            return;
        }
        for row in rows() {
            // SAFETY: the CPU has AVX2 (checked above).
            let (i, m) = unsafe { avx2_argmax_first(&row) };
            let (pi, pm) = portable_argmax_first(&row);
            assert_eq!((i, m.to_bits()), (pi, pm.to_bits()), "{row:?}");
            assert_eq!(argmax_first(&row).0, pi);
            if m.is_finite() {
                // SAFETY: as above.
                let (z, s) = unsafe { avx2_sums(&row, m) };
                let (pz, ps) = portable_sums(&row, m);
                assert_eq!((z.to_bits(), s.to_bits()), (pz.to_bits(), ps.to_bits()));
            }
        }
        // Every lane of the vector `exp` against the scalar one, the clamp and NaN included.
        let ts: Vec<f32> = (0..=200_000u32)
            .map(|i| -(i as f32) * 5e-4)
            .chain([-0.0, -87.0, -87.5, -1e30, f32::NEG_INFINITY, f32::NAN])
            .collect();
        for c in ts.chunks(8) {
            let mut lanes = [0f32; 8];
            lanes[..c.len()].copy_from_slice(c);
            let mut out = [0f32; 8];
            // SAFETY: as above; both arrays hold 8 floats.
            unsafe {
                use std::arch::x86_64::*;
                let v = exp_nonpositive8(_mm256_loadu_ps(lanes.as_ptr()));
                _mm256_storeu_ps(out.as_mut_ptr(), v);
            }
            for (t, e) in lanes.iter().zip(out) {
                assert_eq!(e.to_bits(), exp_nonpositive(*t).to_bits(), "{t}");
            }
        }
    }

    #[test]
    fn argmax_is_the_first_maximum() {
        assert_eq!(argmax_first(&[0.5, 2.0, 2.0, 1.0, 2.0]), (1, 2.0));
        assert_eq!(argmax_first(&[f32::NAN, 1.0, 3.0]), (2, 3.0));
        assert_eq!(
            argmax_first(&[f32::NAN, f32::NEG_INFINITY]),
            (0, f32::NEG_INFINITY)
        );
        assert_eq!(argmax_first(&[]).0, 0);
        let (i, m) = argmax_first(&[-0.0, 0.0]);
        assert_eq!((i, m.to_bits()), (0, (-0.0f32).to_bits()));
        let long: Vec<f32> = (0..1000).map(|i| (i % 250) as f32).collect();
        assert_eq!(argmax_first(&long), (249, 249.0));
    }

    #[test]
    fn exp_is_accurate_and_sums_match() {
        for t in [-0.0f32, -0.3, -1.0, -5.5, -20.0, -80.0] {
            let rel = (exp_nonpositive(t) - t.exp()).abs() / t.exp();
            assert!(rel < 3e-7, "{t}: {rel}");
        }
        let logits: Vec<f32> = (0..1003).map(|i| -((i * 37 % 101) as f32) / 9.0).collect();
        let (z, s) = sums(&logits, 0.0);
        let (z0, s0) = portable_sums(&logits, 0.0);
        let zr: f64 = logits.iter().map(|&x| f64::from(x).exp()).sum();
        let sr: f64 = logits
            .iter()
            .map(|&x| f64::from(x) * f64::from(x).exp())
            .sum();
        assert!((z - zr).abs() < 1e-5 * zr && (z0 - zr).abs() < 1e-5 * zr);
        assert!((s - sr).abs() < 1e-5 * sr.abs() && (s0 - sr).abs() < 1e-5 * sr.abs());
    }
}
