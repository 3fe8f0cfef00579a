//! Softmax statistics without materialising the distribution: `Σ e^{x−m}` and
//! `Σ (x−m)·e^{x−m}` over a logit row, with a vectorisable `exp` (AVX2 when the CPU has it);
//! and SwiGLU's `silu(g)·u` on the same `exp`.

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

/// `(Σ e, Σ (x − m)·e)` with `e = exp(x − m)`, in 8 lanes.
#[inline(always)]
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_sums(logits: &[f32], m: f32) -> (f64, f64) {
    portable_sums(logits, m)
}

/// `(Σ e, Σ (x − m)·e)` with `e = exp(x − m)` over `logits` (`m` ≥ every logit).
pub fn sums(logits: &[f32], m: f32) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if super::qdot::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
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
