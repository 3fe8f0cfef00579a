//! Seeded, parallel nonparametric bootstrap with percentile intervals.
//!
//! Efron & Tibshirani (1993), ch. 13: resample the fit's units with replacement, refit, and read
//! intervals off the percentiles of the refitted quantities. Choose the unit that is i.i.d.: for
//! a law through IsoFLOP optima that is the bucket optimum, not the run inside a bucket (the
//! within-bucket sweep is a design, not a sample), as the reference pipeline notes. For a
//! parametric fit on all runs it is the run.
//!
//! Replicate `r` draws its indices from stream `r` of the `ChaCha8Rng` seeded with `seed`
//! (`set_stream`), so results do not depend on how many threads run the replicates, and two
//! bootstraps whose base seeds differ share no replicate (with seeds `seed + r`, as until
//! session 21, the bootstraps of seeds 7 and 8 shared all replicates but one).

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{FitError, Result};

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Number of replicates.
    pub replicates: usize,
    /// Base seed.
    pub seed: u64,
    /// Worker threads; 0 means all available cores.
    pub threads: usize,
    /// Central interval mass, e.g. 0.95 for the 2.5–97.5 percentile interval.
    pub level: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            replicates: 1000,
            seed: 0,
            threads: 0,
            level: 0.95,
        }
    }
}

/// Number of worker threads to use for `requested` (0 = all cores).
pub(crate) fn worker_count(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The generator of replicate `r`: stream `r` of the ChaCha8 generator seeded with `seed`.
pub fn replicate_rng(seed: u64, r: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(r as u64);
    rng
}

/// Draws `n` indices uniformly with replacement from `0..n`.
pub fn resample_indices(rng: &mut impl Rng, n: usize) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(0..n)).collect()
}

/// Runs `refit` on `cfg.replicates` resamples of `0..n_units`, in parallel.
///
/// `refit` returns `None` for a resample it cannot fit (e.g. too few distinct buckets); such
/// replicates are dropped and counted in [`BootstrapSamples::failed`].
pub fn bootstrap<T, F>(
    n_units: usize,
    cfg: &BootstrapConfig,
    refit: F,
) -> Result<BootstrapSamples<T>>
where
    T: Send,
    F: Fn(&[usize]) -> Option<T> + Sync,
{
    if n_units == 0 {
        return Err(FitError::too_few("bootstrap", 1, 0));
    }
    if cfg.replicates == 0 {
        return Err(FitError::config("replicates", "must be >= 1"));
    }
    if !(cfg.level > 0.0 && cfg.level < 1.0) {
        return Err(FitError::config("level", "must be in (0, 1)"));
    }
    let next = AtomicUsize::new(0);
    let threads = worker_count(cfg.threads).min(cfg.replicates);
    let mut results: Vec<(usize, Option<T>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let r = next.fetch_add(1, Ordering::Relaxed);
                        if r >= cfg.replicates {
                            break;
                        }
                        let idx = resample_indices(&mut replicate_rng(cfg.seed, r), n_units);
                        out.push((r, refit(&idx)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bootstrap worker panicked"))
            .collect()
    });
    results.sort_by_key(|(r, _)| *r);
    let failed = results.iter().filter(|(_, t)| t.is_none()).count();
    let samples: Vec<T> = results.into_iter().filter_map(|(_, t)| t).collect();
    if samples.is_empty() {
        return Err(FitError::no_fit(
            "bootstrap",
            "every replicate failed to fit",
        ));
    }
    Ok(BootstrapSamples {
        samples,
        failed,
        level: cfg.level,
    })
}

/// The refitted quantities of the successful replicates, in replicate order.
#[derive(Debug, Clone)]
pub struct BootstrapSamples<T> {
    /// One value per successful replicate.
    pub samples: Vec<T>,
    /// Replicates whose refit failed.
    pub failed: usize,
    /// Interval level carried over from the config.
    pub level: f64,
}

impl<T> BootstrapSamples<T> {
    /// Percentile interval of a scalar derived from each replicate.
    pub fn interval(&self, estimate: f64, f: impl Fn(&T) -> f64) -> Interval {
        let v: Vec<f64> = self.samples.iter().map(f).collect();
        Interval::from_samples(estimate, &v, self.level)
    }
}

/// A point estimate with a bootstrap percentile interval and median.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Estimate from the full data.
    pub estimate: f64,
    /// Lower percentile ((1 − level)/2).
    pub lo: f64,
    /// Median of the replicates.
    pub median: f64,
    /// Upper percentile ((1 + level)/2).
    pub hi: f64,
    /// Replicates whose value was NaN or infinite (a refit that diverged), left out of the
    /// percentiles and counted here so a report can say so; the percentiles are NaN when no
    /// replicate is finite.
    pub non_finite: usize,
}

impl Interval {
    /// Builds the interval from replicate values; non-finite values are left out of the
    /// percentiles and counted in [`Interval::non_finite`].
    pub fn from_samples(estimate: f64, samples: &[f64], level: f64) -> Self {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        let non_finite = samples.len() - v.len();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| percentile_sorted(&v, p);
        Self {
            estimate,
            lo: q((1.0 - level) / 2.0),
            median: q(0.5),
            hi: q((1.0 + level) / 2.0),
            non_finite,
        }
    }
}

/// Linear-interpolation percentile (numpy's default) of sorted data; NaN if empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let i = h.floor() as usize;
            let j = (i + 1).min(n - 1);
            sorted[i] + (h - i as f64) * (sorted[j] - sorted[i])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 0.5), 2.5);
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert!((percentile_sorted(&v, 0.975) - 3.925).abs() < 1e-12);
    }

    /// The replicate means of a bootstrap of `data`.
    fn means(data: &[f64], replicates: usize, seed: u64, threads: usize) -> Vec<f64> {
        let mean =
            |idx: &[usize]| Some(idx.iter().map(|&i| data[i]).sum::<f64>() / idx.len() as f64);
        let cfg = BootstrapConfig {
            replicates,
            seed,
            threads,
            level: 0.9,
        };
        bootstrap(data.len(), &cfg, mean).unwrap().samples
    }

    #[test]
    fn bootstrap_is_deterministic_across_thread_counts() {
        let data: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
        let mean =
            |idx: &[usize]| Some(idx.iter().map(|&i| data[i]).sum::<f64>() / idx.len() as f64);
        assert_eq!(means(&data, 200, 7, 1), means(&data, 200, 7, 2));
        let s = bootstrap(data.len(), &BootstrapConfig::default(), mean).unwrap();
        let full = data.iter().sum::<f64>() / 50.0;
        let iv = s.interval(full, |m| *m);
        assert!(iv.lo < full && full < iv.hi);
        assert_eq!(iv.non_finite, 0);
    }

    #[test]
    fn neighbouring_base_seeds_share_no_replicate() {
        let data: Vec<f64> = (0..40).map(|i| (i as f64 * 0.71).cos()).collect();
        let (a, b) = (means(&data, 50, 7, 2), means(&data, 50, 8, 2));
        // With seeds `seed + r` replicate r + 1 of seed 7 was replicate r of seed 8.
        let shared = a.iter().filter(|x| b.contains(x)).count();
        assert_eq!(shared, 0, "{shared} of 50 replicates shared");
        assert_ne!(
            resample_indices(&mut replicate_rng(7, 1), 40),
            resample_indices(&mut replicate_rng(8, 0), 40)
        );
    }

    #[test]
    fn non_finite_replicates_are_counted_not_hidden() {
        let iv = Interval::from_samples(2.0, &[1.0, f64::NAN, 2.0, f64::INFINITY, 3.0], 0.5);
        assert_eq!(iv.non_finite, 2);
        assert_eq!((iv.lo, iv.median, iv.hi), (1.5, 2.0, 2.5));
        let none = Interval::from_samples(0.0, &[f64::NAN], 0.9);
        assert_eq!(none.non_finite, 1);
        assert!(none.lo.is_nan() && none.hi.is_nan());
    }
}
