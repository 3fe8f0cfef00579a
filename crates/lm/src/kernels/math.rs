//! Scalar math the row loops share: a vectorisable `erf` and the exact GELU built on it
//! (BERT's activation). Gemma's tanh GELU runs on burn tensors
//! ([`crate::models::transformer`]).

// Only the parent module may use `unsafe`; this one stays safe code.
#![deny(unsafe_code)]

/// `erf(x)` for f32 as a rational function of `x` on `[-4, 4]` (±1 beyond), the
/// approximation Eigen uses for `float` (`generic_fast_erf_float`, also TensorFlow's and XLA's
/// CPU `erf`); its largest absolute error against `erf` is below 4e-7. Branch-free, so a loop
/// over it vectorises.
#[allow(clippy::excessive_precision)] // the coefficients as Eigen publishes them
pub fn erf_f32(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -1.609_603_3e-2,
        -2.954_599_8e-3,
        -7.349_906_3e-4,
        -5.692_506_4e-5,
        -2.101_024e-6,
        2.770_681_4e-8,
        -2.726_142_3e-10,
    ];
    const BETA: [f32; 5] = [
        -1.426_473_9e-2,
        -7.373_329e-3,
        -1.682_827e-3,
        -2.133_740_6e-4,
        -1.456_607_2e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = BETA[4];
    for b in BETA[..4].iter().rev() {
        q = q * x2 + b;
    }
    x * p / q
}

/// GELU in its exact form, `x · Φ(x) = x/2 · (1 + erf(x/√2))` (Hendrycks & Gimpel 2016; PyTorch's
/// `gelu(approximate="none")`), with [`erf_f32`].
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_reference_values() {
        // erf values from Abramowitz & Stegun, table 7.1.
        for (x, erf) in [
            (0.0f32, 0.0f32),
            (0.1, 0.112_462_92),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (3.0, 0.999_977_9),
            (5.0, 1.0),
        ] {
            assert!((erf_f32(x) - erf).abs() < 4e-7, "erf({x})");
            assert!((erf_f32(-x) + erf).abs() < 4e-7, "erf({})", -x);
        }
        // GELU(1) = Φ(1) = 0.841_344_7; GELU(-1) = -(1 - Φ(1)).
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_erf(-1.0) + 0.158_655_25).abs() < 1e-6);
        assert!(gelu_erf(-10.0).abs() < 1e-5);
        assert!((gelu_erf(10.0) - 10.0).abs() < 1e-5);
    }
}
