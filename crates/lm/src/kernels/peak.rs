//! An arithmetic-rate probe: how many f32 multiply-accumulates one core retires per
//! nanosecond through 512-bit FMAs (`vfmadd231ps`), and through the bfloat16 pair dot product
//! (`vdpbf16ps`, AVX512-BF16) where the CPU has it — the compute limits that the f32-activation
//! tiles of [`super::qdot`] run against (batched decoding and prefill are bound by them, as
//! batch-1 decoding is by [`super::bandwidth::read_bandwidth`]).
//!
//! Why the bfloat16 rate is here: `vdpbf16ps` does 32 multiply-accumulates per instruction
//! against an FMA's 16, which would halve the multiplies of the 8-row tiles if weights and
//! activations were rounded to bfloat16. On this project's 2-core Xeon (Emerald Rapids) it
//! retires one instruction per ~0.75 ns against ~0.19 ns for an FMA, so it is *slower* per
//! multiply-accumulate (~43 against ~85 per ns), and the executor has no bfloat16 tiles
//! (`docs/lm.md`, "Batched decoding").
//!
//! ```
//! let r = lm::kernels::peak::multiply_rates(1 << 16);
//! assert!(r.fma_f32 > 0.0);
//! ```

use std::time::Instant;

/// Multiply-accumulates per nanosecond on one thread (the calling one).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MultiplyRates {
    /// Through f32 FMAs: 512-bit `vfmadd231ps` with AVX-512 F, 256-bit `vfmadd231ps` with
    /// AVX2 + FMA, scalar `mul_add` otherwise.
    pub fma_f32: f64,
    /// Through 512-bit `vdpbf16ps` (two bfloat16 products added to each f32 lane); `None`
    /// where the CPU lacks AVX512-BF16.
    pub dot_bf16: Option<f64>,
}

/// Independent accumulator chains per loop: enough to cover the instructions' latency, few
/// enough to stay in registers.
const CHAINS: usize = 24;

/// Measures [`MultiplyRates`] with `iters` passes over 24 independent accumulators
/// per instruction kind (best of three timings each).
pub fn multiply_rates(iters: usize) -> MultiplyRates {
    let iters = iters.max(1);
    let time = |f: &dyn Fn(usize) -> f32| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f(iters));
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let per_ns = |macs_per_op: usize, secs: f64| {
        (iters * CHAINS * macs_per_op) as f64 / (secs.max(1e-12) * 1e9)
    };
    #[cfg(target_arch = "x86_64")]
    {
        if super::has_avx512() {
            // SAFETY: AVX-512 F checked.
            let fma = per_ns(16, time(&|n| unsafe { x86::fma512(n) }));
            let dot_bf16 = std::arch::is_x86_feature_detected!("avx512bf16")
                // SAFETY: AVX-512 F and BF16 checked.
                .then(|| per_ns(32, time(&|n| unsafe { x86::dpbf16(n) })));
            return MultiplyRates {
                fma_f32: fma,
                dot_bf16,
            };
        }
        if super::qdot::has_avx2() {
            // SAFETY: AVX2 and FMA checked.
            let fma = per_ns(8, time(&|n| unsafe { x86::fma256(n) }));
            return MultiplyRates {
                fma_f32: fma,
                dot_bf16: None,
            };
        }
    }
    MultiplyRates {
        fma_f32: per_ns(1, time(&scalar)),
        dot_bf16: None,
    }
}

/// The portable loop: scalar fused multiply-adds over [`CHAINS`] accumulators.
fn scalar(n: usize) -> f32 {
    let (w, x) = (
        std::hint::black_box(0.999_9f32),
        std::hint::black_box(1e-3f32),
    );
    let mut v = [0f32; CHAINS];
    for _ in 0..n {
        for a in &mut v {
            *a = a.mul_add(w, x);
        }
    }
    v.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// `CHAINS` accumulators of type `$zero`'s result, each updated `$n` times by `$op`
    /// (`|a| …`), then summed into one vector.
    macro_rules! chains {
        ($n:expr, $zero:expr, $add:ident, $op:expr) => {{
            let mut v = [$zero; CHAINS];
            for _ in 0..$n {
                for a in &mut v {
                    *a = $op(*a);
                }
            }
            v.iter().fold($zero, |s, &a| $add(s, a))
        }};
    }

    /// `CHAINS` chains of 512-bit FMAs, `n` rounds.
    ///
    /// # Safety
    /// AVX-512 F present.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma512(n: usize) -> f32 {
        let (w, x) = (_mm512_set1_ps(0.999_9), _mm512_set1_ps(1e-3));
        let (w, x) = (std::hint::black_box(w), std::hint::black_box(x));
        let s = chains!(n, _mm512_setzero_ps(), _mm512_add_ps, |a| {
            _mm512_fmadd_ps(a, w, x)
        });
        _mm512_reduce_add_ps(s)
    }

    /// `CHAINS` chains of 256-bit FMAs, `n` rounds.
    ///
    /// # Safety
    /// AVX2 and FMA present.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma256(n: usize) -> f32 {
        let (w, x) = (_mm256_set1_ps(0.999_9), _mm256_set1_ps(1e-3));
        let (w, x) = (std::hint::black_box(w), std::hint::black_box(x));
        let s = chains!(n, _mm256_setzero_ps(), _mm256_add_ps, |a| {
            _mm256_fmadd_ps(a, w, x)
        });
        let mut out = [0f32; 8];
        // SAFETY: `out` holds 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    /// `CHAINS` chains of 512-bit `vdpbf16ps`, `n` rounds (two products 1 · bf16(10⁻³) per
    /// lane and round).
    ///
    /// # Safety
    /// AVX-512 F and AVX512-BF16 present.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn dpbf16(n: usize) -> f32 {
        let w: __m512bh = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0), _mm512_set1_ps(1.0));
        let x: __m512bh = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3), _mm512_set1_ps(1e-3));
        let (w, x) = (std::hint::black_box(w), std::hint::black_box(x));
        let s = chains!(n, _mm512_setzero_ps(), _mm512_add_ps, |a| {
            _mm512_dpbf16_ps(a, w, x)
        });
        _mm512_reduce_add_ps(s)
    }
}

#[cfg(test)]
mod tests {
    use super::CHAINS;

    /// Every chain runs `a ← a·w + x` from 0: after `n` rounds `x·(1 − wⁿ)/(1 − w)`.
    fn chain(n: usize) -> f64 {
        let (w, x) = (0.999_9f64, 1e-3f64);
        x * (1.0 - w.powi(n as i32)) / (1.0 - w)
    }

    fn close(got: f32, want: f64) -> bool {
        (f64::from(got) - want).abs() <= 1e-3 * want
    }

    #[test]
    fn the_probe_reports_positive_finite_rates() {
        let r = super::multiply_rates(1 << 12);
        assert!(r.fma_f32.is_finite() && r.fma_f32 > 0.0, "{r:?}");
        if let Some(b) = r.dot_bf16 {
            assert!(b.is_finite() && b > 0.0, "{r:?}");
        }
    }

    #[test]
    fn the_timed_loops_do_the_work_they_are_credited_with() {
        let n = 3000;
        let want = CHAINS as f64 * chain(n);
        assert!(
            close(super::scalar(n), want),
            "{} vs {want}",
            super::scalar(n)
        );
        #[cfg(target_arch = "x86_64")]
        {
            if crate::kernels::qdot::has_avx2() {
                // SAFETY: AVX2 and FMA checked.
                let got = unsafe { super::x86::fma256(n) };
                assert!(close(got, 8.0 * want), "{got} vs {}", 8.0 * want);
            }
            if crate::kernels::has_avx512() {
                // SAFETY: AVX-512 F checked.
                let got = unsafe { super::x86::fma512(n) };
                assert!(close(got, 16.0 * want), "{got} vs {}", 16.0 * want);
                if std::arch::is_x86_feature_detected!("avx512bf16") {
                    // Each lane adds two products 1 · bf16(10⁻³) per round.
                    let x = f64::from(f32::from_bits(0x3a83_0000));
                    let want = (16 * CHAINS) as f64 * 2.0 * n as f64 * x;
                    // SAFETY: AVX-512 F and BF16 checked.
                    let got = unsafe { super::x86::dpbf16(n) };
                    assert!(close(got, want), "{got} vs {want}");
                }
            }
        }
    }
}
