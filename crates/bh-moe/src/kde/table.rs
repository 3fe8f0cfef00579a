//! The KDE's CDF on a grid, for `O(1)` p-values in the routing hot loop.

use super::{GaussianKde, normal_cdf, normal_pdf};
use crate::error::{Result, invalid};

/// The grid spans `[min − 8h, max + 8h]`; beyond it the table answers 0 and 1, off by at most
/// `Φ(−8) ≈ 6.2e−16`.
pub const TAIL_BANDWIDTHS: f64 = 8.0;

/// Default grid resolution: 64 steps per bandwidth, an error bound of `7.4e−6`
/// ([`linear_error_bound`]).
pub const DEFAULT_STEPS_PER_BANDWIDTH: usize = 64;

/// Largest table [`CdfTable::from_kde`] builds (points), so a bad bandwidth cannot exhaust
/// memory.
const MAX_POINTS: usize = 10_000_000;

/// Kernels further than this many bandwidths from a grid point contribute exactly 0 or 1 in
/// `f64` (`Φ(−9) ≈ 1.1e−19`), so the tabulation skips them.
const WINDOW_BANDWIDTHS: f64 = 9.0;

/// Rounding a stored table may carry ([`CdfTable::from_parts`]).
const PARSE_SLACK: f64 = 1e-12;

/// Slack for the values at the grid points (rounding of `erfc` and the sums) and the tails
/// beyond the grid (`Φ(−8)`).
const NODE_SLACK: f64 = 1e-15;

/// The worst-case error of a [`CdfTable`] with grid step `step = Δ` for a Gaussian KDE with
/// bandwidth `h`:
///
/// ```text
/// |F̂(x) − table(x)| ≤ φ(1)/8 · (Δ/h)² + 1e−15  ≈ 0.0302 (Δ/h)²
/// ```
///
/// Linear interpolation errs by at most `Δ²/8 · max|F̂''|`, and `F̂'' = f̂'` is a mean of
/// `−zφ(z)/h²` terms with `|zφ(z)| ≤ φ(1) = e^(−1/2)/√(2π)`; the `1e−15` covers rounding at the
/// grid points and the tails beyond `± 8h`. The bound is reached only when all samples
/// coincide; real KDEs stay well below it.
pub fn linear_error_bound(step: f64, bandwidth: f64) -> f64 {
    let r = step / bandwidth;
    normal_pdf(1.0) / 8.0 * r * r + NODE_SLACK
}

/// The CDF of a [`GaussianKde`] on an even grid, linearly interpolated; 0 below the grid and 1
/// above it.
///
/// Monotone by construction (non-decreasing grid values, linear pieces), so the p-values
/// `1 − table(x)` are non-increasing in `x`, as [`crate::kde::NullDistribution`] requires.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfTable {
    start: f64,
    step: f64,
    values: Vec<f64>,
    bandwidth: f64,
}

impl CdfTable {
    /// Tabulates `kde`'s exact CDF on `[min − 8h, max + 8h]` with step
    /// `h / steps_per_bandwidth` ([`DEFAULT_STEPS_PER_BANDWIDTH`] = 64 is a good default).
    ///
    /// Cost: `O(points × samples within ±9h)`; subsample large calibration sets first
    /// ([`crate::kde::KdeOptions::max_samples`]). Grid values are clamped to `[0, 1]` and made
    /// non-decreasing (a running maximum over rounding noise of `~1e−16`).
    ///
    /// # Errors
    /// `steps_per_bandwidth = 0`, or a grid of more than ten million points (a range of more
    /// than `10⁷ / steps_per_bandwidth` bandwidths).
    pub fn from_kde(kde: &GaussianKde, steps_per_bandwidth: usize) -> Result<Self> {
        if steps_per_bandwidth == 0 {
            return Err(invalid("steps_per_bandwidth", "must be at least 1"));
        }
        let h = kde.bandwidth();
        let samples = kde.samples();
        let (min, max) = (samples[0], samples[samples.len() - 1]);
        let start = min - TAIL_BANDWIDTHS * h;
        let step = h / steps_per_bandwidth as f64;
        let intervals = ((max + TAIL_BANDWIDTHS * h - start) / step).ceil();
        if intervals.is_nan() || intervals >= MAX_POINTS as f64 {
            return Err(invalid(
                "steps_per_bandwidth",
                format!(
                    "the grid over [{start}, {}] would need {intervals} points (limit {MAX_POINTS})",
                    max + TAIL_BANDWIDTHS * h
                ),
            ));
        }
        let points = intervals as usize + 1;
        let n = samples.len() as f64;
        let window = WINDOW_BANDWIDTHS * h;
        let mut values = Vec::with_capacity(points);
        let mut running = 0.0_f64;
        for j in 0..points {
            let x = start + j as f64 * step;
            // Samples below x − 9h contribute Φ(≥ 9) = 1 exactly in f64; above x + 9h, 0.
            let lo = samples.partition_point(|&s| s < x - window);
            let hi = samples.partition_point(|&s| s <= x + window);
            let near: f64 = samples[lo..hi]
                .iter()
                .map(|s| normal_cdf((x - s) / h))
                .sum();
            let v = ((lo as f64 + near) / n).clamp(0.0, 1.0);
            running = running.max(v);
            values.push(running);
        }
        Ok(Self {
            start,
            step,
            values,
            bandwidth: h,
        })
    }

    /// A table from stored parts (a loaded file).
    ///
    /// Values may stray from `[0, 1]` or dip below their predecessor by at most `1e−12` — the
    /// rounding of a JSON round trip (serde_json's default float parsing is correct to about an
    /// ulp) — and are then clamped and made non-decreasing; larger violations are errors.
    ///
    /// # Errors
    /// A non-finite `start`, a non-positive or non-finite `step` or `bandwidth`, fewer than two
    /// values, or values outside `[0, 1]` or decreasing — [`crate::BhMoeError::InvalidParameter`]
    /// naming the part (`values[17]`).
    pub fn from_parts(start: f64, step: f64, mut values: Vec<f64>, bandwidth: f64) -> Result<Self> {
        if !start.is_finite() {
            return Err(invalid("start", format!("{start} is not finite")));
        }
        if !(step.is_finite() && step > 0.0) {
            return Err(invalid(
                "step",
                format!("{step} must be finite and positive"),
            ));
        }
        if !(bandwidth.is_finite() && bandwidth > 0.0) {
            return Err(invalid(
                "bandwidth",
                format!("{bandwidth} must be finite and positive"),
            ));
        }
        if values.len() < 2 {
            return Err(invalid(
                "values",
                format!("{} value(s); a table needs at least 2", values.len()),
            ));
        }
        let mut previous = 0.0;
        for (i, v) in values.iter_mut().enumerate() {
            if !(-PARSE_SLACK..=1.0 + PARSE_SLACK).contains(v) {
                return Err(invalid(
                    &format!("values[{i}]"),
                    format!("{v} is outside [0, 1]"),
                ));
            }
            if *v < previous - PARSE_SLACK {
                return Err(invalid(
                    &format!("values[{i}]"),
                    format!("{v} is below the previous value {previous}: a CDF cannot decrease"),
                ));
            }
            *v = v.clamp(previous, 1.0);
            previous = *v;
        }
        Ok(Self {
            start,
            step,
            values,
            bandwidth,
        })
    }

    /// The interpolated CDF at `x`: 0 below the grid, 1 above it.
    pub fn cdf(&self, x: f64) -> f64 {
        let t = (x - self.start) / self.step;
        if t.is_nan() || t < 0.0 {
            // Below the grid (or NaN, which the selectors never pass).
            return 0.0;
        }
        let last = self.values.len() - 1;
        if t >= last as f64 {
            return 1.0;
        }
        let i = t as usize;
        let frac = t - i as f64;
        let (a, b) = (self.values[i], self.values[i + 1]);
        a + frac * (b - a)
    }

    /// `1 − cdf(x)`: the p-value of logit `x`.
    pub fn sf(&self, x: f64) -> f64 {
        1.0 - self.cdf(x)
    }

    /// The first grid point.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The last grid point.
    pub fn end(&self) -> f64 {
        self.start + (self.values.len() - 1) as f64 * self.step
    }

    /// The grid step.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// The CDF at the grid points.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The KDE bandwidth `h` the table was built for.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// The guaranteed maximum absolute error against the exact KDE CDF
    /// ([`linear_error_bound`]).
    pub fn max_error(&self) -> f64 {
        linear_error_bound(self.step, self.bandwidth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kde::Bandwidth;

    fn mixture(n: usize) -> Vec<f64> {
        // A deterministic, lumpy sample: three clusters and a long right tail.
        (0..n)
            .map(|i| {
                let u = (i as f64 * 0.754_877_666).fract();
                match i % 4 {
                    0 => -2.0 + u,
                    1 => 0.3 * u,
                    2 => 1.5 + 0.5 * u,
                    _ => 3.0 + 6.0 * u * u,
                }
            })
            .collect()
    }

    #[test]
    fn table_stays_within_its_stated_bound() {
        for (n, steps) in [(50, 8), (50, 64), (2_000, 16), (2_000, 64)] {
            let kde = GaussianKde::fit(&mixture(n), Bandwidth::Scott).unwrap();
            let table = kde.tabulate(steps).unwrap();
            let bound = table.max_error();
            let (lo, hi) = (table.start() - 1.0, table.end() + 1.0);
            let mut worst = 0.0_f64;
            for i in 0..=5_000 {
                let x = lo + (hi - lo) * i as f64 / 5_000.0;
                worst = worst.max((table.cdf(x) - kde.cdf(x)).abs());
            }
            assert!(worst <= bound, "n={n} steps={steps}: {worst} > {bound}");
            // The bound is a worst case; at 64 steps it is 7.4e−6.
            if steps == 64 {
                assert!(bound < 7.5e-6 && bound > 7.3e-6, "{bound}");
            }
        }
    }

    #[test]
    fn table_is_monotone_and_zero_one_outside() {
        let kde = GaussianKde::fit(&mixture(300), Bandwidth::Silverman).unwrap();
        let table = kde.tabulate(32).unwrap();
        assert!(table.values().windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(table.cdf(table.start() - 1e-9), 0.0);
        assert_eq!(table.cdf(table.end() + 1e-9), 1.0);
        assert_eq!(table.sf(f64::INFINITY), 0.0);
        assert_eq!(table.sf(f64::NEG_INFINITY), 1.0);
        assert!(
            table.values()[0] < 1e-15 && table.values()[table.values().len() - 1] > 1.0 - 1e-15
        );
        // The grid covers [min − 8h, max + 8h].
        let h = kde.bandwidth();
        assert!((table.start() - (kde.samples()[0] - 8.0 * h)).abs() < 1e-12);
        assert!(table.end() >= kde.samples()[kde.n() - 1] + 8.0 * h - 1e-12);
        // At the grid points the table is the exact CDF.
        let last = table.values().len() - 1;
        for j in [0, 1, last / 3, last / 2, last] {
            let x = table.start() + j as f64 * table.step();
            assert!((table.values()[j] - kde.cdf(x)).abs() < 1e-14);
        }
    }

    #[test]
    fn parts_are_validated() {
        assert!(CdfTable::from_parts(0.0, 0.1, vec![0.0, 0.5, 1.0], 0.2).is_ok());
        let err = |r: Result<CdfTable>| match r {
            Err(crate::BhMoeError::InvalidParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(CdfTable::from_parts(f64::NAN, 0.1, vec![0.0, 1.0], 0.2)),
            "start"
        );
        assert_eq!(
            err(CdfTable::from_parts(0.0, 0.0, vec![0.0, 1.0], 0.2)),
            "step"
        );
        assert_eq!(
            err(CdfTable::from_parts(0.0, 0.1, vec![0.5], 0.2)),
            "values"
        );
        assert_eq!(
            err(CdfTable::from_parts(0.0, 0.1, vec![0.0, 0.6, 0.5], 0.2)),
            "values[2]"
        );
        assert_eq!(
            err(CdfTable::from_parts(0.0, 0.1, vec![0.0, 1.5], 0.2)),
            "values[1]"
        );
        assert_eq!(
            err(CdfTable::from_parts(0.0, 0.1, vec![0.0, 1.0], -1.0)),
            "bandwidth"
        );
        let kde = GaussianKde::fit(&[0.0, 1.0], Bandwidth::Scott).unwrap();
        assert!(kde.tabulate(0).is_err());
    }
}
