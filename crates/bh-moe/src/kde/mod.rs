//! One-dimensional Gaussian kernel density estimation with `scipy.stats.gaussian_kde`
//! semantics, the per-layer null distribution of router logits for BH routing.
//!
//! For samples `x₁ … xₙ` (unweighted) the estimate is
//!
//! ```text
//! f̂(x) = (1/n) Σᵢ φ((x − xᵢ)/h) / h          (pdf)
//! F̂(x) = (1/n) Σᵢ Φ((x − xᵢ)/h)              (cdf: scipy's integrate_box_1d(-inf, x))
//! h    = factor · s,   s² = Σ (xᵢ − x̄)² / (n − 1)   (kernel std; scipy's `sqrt(kde.covariance)`)
//! ```
//!
//! with `factor` from the [`Bandwidth`] rule: Scott `n^(−1/5)`, Silverman `(3n/4)^(−1/5)` (the
//! `d = 1` cases of scipy's `scotts_factor`/`silverman_factor`), or a given scalar (scipy's
//! `bw_method=<float>`). The sample variance is the unbiased one (`ddof = 1`), as in scipy's
//! `cov(dataset, bias=False, aweights=1/n)`. Weighted samples are not supported.
//!
//! `Φ` is W. J. Cody's rational Chebyshev `erfc` ([`normal_cdf`]), accurate to a few ulps like
//! scipy's `special.ndtr`. `pdf`, `cdf` and `sf` are exact sums over all samples (`O(n)` per point); BH routing evaluates
//! `E` p-values per token and layer, so the selector uses a [`CdfTable`] instead: the CDF on a
//! fine grid with linear interpolation and a stated error bound. Agreement with scipy 1.17.1 is
//! tested on fixtures (`tests/scipy_kde.rs`).
//!
//! **Subsampling.** A calibration run yields `tokens × E` logits per layer (millions); the fit,
//! and above all the table, cost `O(n)` per point, so [`KdeOptions::max_samples`] draws a
//! uniform subsample without replacement (ChaCha8 seeded by [`KdeOptions::seed`]) before
//! fitting. The bandwidth rule then uses the subsample's `n` — the KDE *is* the subsample's —
//! which widens the kernels slightly (`(n_full / n_sub)^(1/5)`, ×1.58 for 10×).

mod file;
mod normal;
mod table;

pub use file::{KDE_FILE_FORMAT, KdeFile, KdeRecord, Provenance, TableRecord};
pub use normal::{erf, erfc, normal_cdf, normal_pdf};
pub use table::{CdfTable, DEFAULT_STEPS_PER_BANDWIDTH, TAIL_BANDWIDTHS, linear_error_bound};

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{BhMoeError, Result, invalid};

/// The bandwidth factor rule (scipy's `bw_method`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bandwidth {
    /// Scott's rule, `n^(−1/5)` in one dimension (scipy's default).
    Scott,
    /// Silverman's rule, `(n · 3/4)^(−1/5)` in one dimension.
    Silverman,
    /// A fixed factor (scipy's scalar `bw_method`); the kernel std is `factor × s`.
    Factor(f64),
}

impl Bandwidth {
    /// The factor for `n` samples.
    pub fn factor(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            Self::Scott => n.powf(-0.2),
            Self::Silverman => (n * 3.0 / 4.0).powf(-0.2),
            Self::Factor(f) => f,
        }
    }

    /// A short name for reports (`"scott"`, `"silverman"`, `"factor 0.3"`).
    pub fn name(self) -> String {
        match self {
            Self::Scott => "scott".into(),
            Self::Silverman => "silverman".into(),
            Self::Factor(f) => format!("factor {f}"),
        }
    }

    fn check(self) -> Result<()> {
        match self {
            Self::Factor(f) if !(f.is_finite() && f > 0.0) => Err(invalid(
                "bandwidth",
                format!("factor {f} must be finite and positive"),
            )),
            _ => Ok(()),
        }
    }
}

/// How to fit a [`GaussianKde`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdeOptions {
    /// The bandwidth factor rule (default Scott, as scipy).
    pub bandwidth: Bandwidth,
    /// Fit on a uniform random subsample of at most this many samples (`None`: all).
    pub max_samples: Option<usize>,
    /// Seed of the subsample draw.
    pub seed: u64,
}

impl Default for KdeOptions {
    fn default() -> Self {
        Self {
            bandwidth: Bandwidth::Scott,
            max_samples: None,
            seed: 0,
        }
    }
}

/// A fitted 1-D Gaussian KDE (see the [module docs](self) for the definitions).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianKde {
    /// Kept samples, ascending.
    samples: Vec<f64>,
    rule: Bandwidth,
    factor: f64,
    data_std: f64,
    bandwidth: f64,
    source_samples: usize,
}

impl GaussianKde {
    /// Fits on all `samples` with the given bandwidth rule.
    ///
    /// # Errors
    /// See [`GaussianKde::fit_with`].
    pub fn fit(samples: &[f64], bandwidth: Bandwidth) -> Result<Self> {
        Self::fit_with(
            samples,
            &KdeOptions {
                bandwidth,
                ..KdeOptions::default()
            },
        )
    }

    /// Fits with explicit options (bandwidth rule, optional seeded subsampling).
    ///
    /// # Errors
    /// A NaN or infinite sample ([`BhMoeError::NonFiniteSample`], its index in `samples`), fewer
    /// than 2 samples ([`BhMoeError::TooFewSamples`]), all samples equal
    /// ([`BhMoeError::ZeroVariance`]), a non-positive factor or `max_samples < 2`
    /// ([`BhMoeError::InvalidParameter`]).
    pub fn fit_with(samples: &[f64], options: &KdeOptions) -> Result<Self> {
        options.bandwidth.check()?;
        if let Some(index) = samples.iter().position(|v| !v.is_finite()) {
            return Err(BhMoeError::NonFiniteSample {
                index,
                value: samples[index],
            });
        }
        let mut kept = match options.max_samples {
            Some(m) if m < 2 => {
                return Err(invalid("max_samples", format!("{m} is below 2")));
            }
            Some(m) if samples.len() > m => {
                let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
                sample(&mut rng, samples.len(), m)
                    .into_iter()
                    .map(|i| samples[i])
                    .collect()
            }
            _ => samples.to_vec(),
        };
        let n = kept.len();
        if n < 2 {
            return Err(BhMoeError::TooFewSamples { got: n });
        }
        let mean = kept.iter().sum::<f64>() / n as f64;
        let var = kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        if var <= 0.0 || kept.iter().all(|&x| x == kept[0]) {
            return Err(BhMoeError::ZeroVariance {
                samples: n,
                value: kept[0],
            });
        }
        kept.sort_unstable_by(f64::total_cmp);
        let factor = options.bandwidth.factor(n);
        let data_std = var.sqrt();
        Ok(Self {
            samples: kept,
            rule: options.bandwidth,
            factor,
            data_std,
            bandwidth: factor * data_std,
            source_samples: samples.len(),
        })
    }

    /// The samples the estimate is built on (after subsampling), ascending.
    pub fn samples(&self) -> &[f64] {
        &self.samples
    }

    /// Number of samples the estimate is built on.
    pub fn n(&self) -> usize {
        self.samples.len()
    }

    /// Number of samples offered to the fit, before subsampling.
    pub fn source_samples(&self) -> usize {
        self.source_samples
    }

    /// The bandwidth rule.
    pub fn rule(&self) -> Bandwidth {
        self.rule
    }

    /// The bandwidth factor (scipy's `kde.factor`).
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The samples' standard deviation with `ddof = 1`.
    pub fn data_std(&self) -> f64 {
        self.data_std
    }

    /// The kernel standard deviation `h = factor × s`, in logit units.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// The kernel variance `h²` (scipy's `kde.covariance[0, 0]`).
    pub fn covariance(&self) -> f64 {
        self.bandwidth * self.bandwidth
    }

    /// The density `f̂(x)` (scipy's `kde.pdf(x)`).
    pub fn pdf(&self, x: f64) -> f64 {
        let h = self.bandwidth;
        let sum: f64 = self.samples.iter().map(|s| normal_pdf((x - s) / h)).sum();
        sum / (self.n() as f64 * h)
    }

    /// The distribution function `F̂(x)` (scipy's `kde.integrate_box_1d(-np.inf, x)`).
    pub fn cdf(&self, x: f64) -> f64 {
        let h = self.bandwidth;
        let sum: f64 = self.samples.iter().map(|s| normal_cdf((x - s) / h)).sum();
        sum / self.n() as f64
    }

    /// The survival function `1 − F̂(x)`, summed directly (no cancellation in the upper tail).
    pub fn sf(&self, x: f64) -> f64 {
        let h = self.bandwidth;
        let sum: f64 = self.samples.iter().map(|s| normal_cdf((s - x) / h)).sum();
        sum / self.n() as f64
    }

    /// The CDF tabulated with `steps_per_bandwidth` grid steps per bandwidth `h`
    /// ([`CdfTable::from_kde`]).
    ///
    /// # Errors
    /// See [`CdfTable::from_kde`].
    pub fn tabulate(&self, steps_per_bandwidth: usize) -> Result<CdfTable> {
        CdfTable::from_kde(self, steps_per_bandwidth)
    }
}

/// A null distribution of router logits as BH routing uses it: the p-value of a logit `x` is
/// the survival function `1 − F(x)`.
///
/// Implementations must return values in `[0, 1]`, non-increasing in `x`: then ranking experts
/// by descending logit ranks their p-values ascending, which the selector relies on.
pub trait NullDistribution {
    /// `P(X > x)` under the null.
    fn sf(&self, x: f64) -> f64;

    /// The smallest finite `f32` logit `t` with `sf(t) ≤ q` — the logit threshold of a p-value
    /// level: for every finite `f32` logit `z`, `z ≥ t ⇔ sf(z) ≤ q` (given `sf`'s
    /// monotonicity). `−∞` when every finite logit passes, `+∞` when none does.
    ///
    /// This is what lets [`crate::BhSelector`] compare logits against `E` precomputed
    /// thresholds `t_i = threshold(i·α/E)` instead of evaluating `E` p-values per token. The
    /// default bisects over the ordered `f32` bit patterns (32 evaluations of `sf`), so the
    /// threshold is exact with respect to `sf` as implemented, rounding included.
    fn threshold(&self, q: f64) -> f32 {
        if self.sf(f64::from(f32::MIN)) <= q {
            return f32::NEG_INFINITY;
        }
        if self.sf(f64::from(f32::MAX)) > q {
            return f32::INFINITY;
        }
        // Invariant: sf(lo) > q ≥ sf(hi), in the total order of finite f32 values.
        let (mut lo, mut hi) = (order_key(f32::MIN), order_key(f32::MAX));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.sf(f64::from(from_order_key(mid))) <= q {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        from_order_key(hi)
    }
}

/// Maps an `f32` to a `u32` whose unsigned order is the float order (−0 just below +0).
fn order_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// The inverse of [`order_key`].
fn from_order_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & 0x7fff_ffff
    } else {
        !key
    })
}

impl NullDistribution for GaussianKde {
    fn sf(&self, x: f64) -> f64 {
        GaussianKde::sf(self, x)
    }
}

impl NullDistribution for CdfTable {
    fn sf(&self, x: f64) -> f64 {
        CdfTable::sf(self, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_exact_f32_boundaries_of_sf() {
        for x in [f32::MIN, -3.5, -0.0, 0.0, 1e-30, 2.25, f32::MAX] {
            assert_eq!(from_order_key(order_key(x)).to_bits(), x.to_bits());
        }
        assert!(order_key(-1.0) < order_key(-0.0) && order_key(-0.0) < order_key(0.0));
        assert!(order_key(0.0) < order_key(1e-45) && order_key(1.0) < order_key(2.0));
        let kde = GaussianKde::fit(&[0.0, 1.0, 2.5, -1.0, 0.3], Bandwidth::Scott).unwrap();
        let table = kde.tabulate(32).unwrap();
        for q in [1e-9, 0.001, 0.05, 0.3, 0.5, 0.9, 0.999] {
            for null in [&kde as &dyn NullDistribution, &table] {
                let t = null.threshold(q);
                assert!(t.is_finite(), "q = {q}");
                let below = f32::from_bits(if t > 0.0 {
                    t.to_bits() - 1
                } else {
                    t.to_bits() + 1
                });
                assert!(null.sf(f64::from(t)) <= q, "q = {q}");
                assert!(null.sf(f64::from(below)) > q, "q = {q}");
            }
        }
        assert_eq!(table.threshold(1.0), f32::NEG_INFINITY);
        let top = table.threshold(0.0);
        assert!(table.sf(f64::from(top)) == 0.0 && f64::from(top) <= table.end() + 1e-6);
        assert_eq!(kde.threshold(-1.0), f32::INFINITY);
    }

    #[test]
    fn hand_computed_two_point_kde() {
        // Samples {0, 2}: mean 1, s² = (1 + 1) / (2 − 1) = 2, Scott factor 2^(−1/5).
        let kde = GaussianKde::fit(&[2.0, 0.0], Bandwidth::Scott).unwrap();
        let factor = 2f64.powf(-0.2);
        assert!((kde.factor() - factor).abs() < 1e-15);
        assert!((kde.data_std() - 2f64.sqrt()).abs() < 1e-15);
        let h = factor * 2f64.sqrt();
        assert!((kde.bandwidth() - h).abs() < 1e-15);
        assert!((kde.covariance() - h * h).abs() < 1e-15);
        // At the midpoint, the CDF is 1/2 by symmetry and the pdf is φ(1/h)/h.
        assert!((kde.cdf(1.0) - 0.5).abs() < 1e-15);
        assert!((kde.sf(1.0) - 0.5).abs() < 1e-15);
        assert!((kde.pdf(1.0) - normal_pdf(1.0 / h) / h).abs() < 1e-15);
        // Silverman and a given factor.
        let s = GaussianKde::fit(&[0.0, 2.0], Bandwidth::Silverman).unwrap();
        assert!((s.factor() - 1.5f64.powf(-0.2)).abs() < 1e-15);
        let f = GaussianKde::fit(&[0.0, 2.0], Bandwidth::Factor(0.5)).unwrap();
        assert!((f.bandwidth() - 0.5 * 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn sf_and_cdf_are_complements_and_pdf_integrates_to_one() {
        let samples: Vec<f64> = (0..40).map(|i| ((i * 7) % 13) as f64 * 0.3 - 1.0).collect();
        let kde = GaussianKde::fit(&samples, Bandwidth::Scott).unwrap();
        let (lo, hi) = (-6.0, 9.0);
        let steps = 20_000;
        let dx = (hi - lo) / steps as f64;
        let mut integral = 0.0;
        for i in 0..steps {
            let x = lo + (i as f64 + 0.5) * dx;
            integral += kde.pdf(x) * dx;
        }
        assert!((integral - 1.0).abs() < 1e-8, "{integral}");
        for x in [-3.0, -0.5, 0.0, 0.7, 2.0, 5.0] {
            assert!((kde.cdf(x) + kde.sf(x) - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn fitting_errors_are_typed() {
        assert!(matches!(
            GaussianKde::fit(&[1.0], Bandwidth::Scott),
            Err(BhMoeError::TooFewSamples { got: 1 })
        ));
        assert!(matches!(
            GaussianKde::fit(&[], Bandwidth::Scott),
            Err(BhMoeError::TooFewSamples { got: 0 })
        ));
        assert!(matches!(
            GaussianKde::fit(&[3.0, 3.0, 3.0], Bandwidth::Scott),
            Err(BhMoeError::ZeroVariance { samples: 3, .. })
        ));
        assert!(matches!(
            GaussianKde::fit(&[0.0, f64::NAN, 1.0], Bandwidth::Scott),
            Err(BhMoeError::NonFiniteSample { index: 1, .. })
        ));
        assert!(matches!(
            GaussianKde::fit(&[0.0, 1.0, f64::NEG_INFINITY], Bandwidth::Scott),
            Err(BhMoeError::NonFiniteSample { index: 2, .. })
        ));
        assert!(GaussianKde::fit(&[0.0, 1.0], Bandwidth::Factor(0.0)).is_err());
        assert!(GaussianKde::fit(&[0.0, 1.0], Bandwidth::Factor(f64::NAN)).is_err());
        let opts = KdeOptions {
            max_samples: Some(1),
            ..KdeOptions::default()
        };
        assert!(matches!(
            GaussianKde::fit_with(&[0.0, 1.0, 2.0], &opts),
            Err(BhMoeError::InvalidParameter { ref name, .. }) if name == "max_samples"
        ));
    }

    #[test]
    fn subsampling_is_seeded_and_uses_the_subsample_size() {
        let samples: Vec<f64> = (0..5_000).map(|i| (i as f64 * 0.618).sin() * 3.0).collect();
        let opts = |seed| KdeOptions {
            bandwidth: Bandwidth::Scott,
            max_samples: Some(500),
            seed,
        };
        let a = GaussianKde::fit_with(&samples, &opts(1)).unwrap();
        let b = GaussianKde::fit_with(&samples, &opts(1)).unwrap();
        let c = GaussianKde::fit_with(&samples, &opts(2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.samples(), c.samples());
        assert_eq!((a.n(), a.source_samples()), (500, 5_000));
        assert!((a.factor() - 500f64.powf(-0.2)).abs() < 1e-15);
        // Every kept sample is one of the inputs, each at most once.
        let mut sorted = samples.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        assert!(
            a.samples()
                .iter()
                .all(|s| sorted.binary_search_by(|x| x.total_cmp(s)).is_ok())
        );
        // Fewer samples than the cap: no subsampling.
        let all = GaussianKde::fit_with(&samples[..300], &opts(1)).unwrap();
        assert_eq!(all.n(), 300);
    }
}
