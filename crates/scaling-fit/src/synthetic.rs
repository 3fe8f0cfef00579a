//! Seeded synthetic IsoFLOP ladders drawn from a known Chinchilla law, for recovery tests and
//! for running the pipeline without data.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::chinchilla::ChinchillaLaw;
use crate::error::{FitError, Result, check_positive};
use crate::points::RunPoint;

/// How to lay out a synthetic ladder.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderSpec {
    /// The true law L(N, D).
    pub law: ChinchillaLaw,
    /// Compute budgets (FLOPs), one IsoFLOP profile each.
    pub budgets: Vec<f64>,
    /// Runs per budget, spread evenly in log10 N around the true optimum.
    pub runs_per_budget: usize,
    /// Half-width of the sweep in decades of N (runs span N_opt·10^(±half_width)).
    pub half_width_dex: f64,
    /// Multiplicative noise: loss·exp(σ·z), z ~ N(0, 1).
    pub noise_sd: f64,
    /// RNG seed.
    pub seed: u64,
}

impl LadderSpec {
    /// Seven budgets 1e18, 3e18, …, 1e21 (steps of ~√10, rounded to 1 and 3) with 9 runs
    /// each, ±0.6 dex, from the Hoffmann et al. (2022) law, with 1 % noise (callers may set
    /// less: the study's synthetic ladder uses 0.5 %).
    pub fn default_with_seed(seed: u64) -> Self {
        Self {
            law: ChinchillaLaw::HOFFMANN_2022,
            budgets: vec![1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21],
            runs_per_budget: 9,
            half_width_dex: 0.6,
            noise_sd: 0.01,
            seed,
        }
    }
}

/// A standard normal draw (Box–Muller).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Generates the ladder: for each budget C, N = N_opt(C)·10^u for u evenly spaced in
/// [−half_width, half_width], D = C/(6N), loss = L(N, D)·exp(σz).
pub fn generate_ladder(spec: &LadderSpec) -> Result<Vec<RunPoint>> {
    check_positive("budgets", &spec.budgets)?;
    if spec.runs_per_budget < 1 {
        return Err(FitError::config("runs_per_budget", "must be >= 1"));
    }
    if !(spec.noise_sd >= 0.0 && spec.half_width_dex >= 0.0) {
        return Err(FitError::config("noise_sd/half_width_dex", "must be >= 0"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut out = Vec::with_capacity(spec.budgets.len() * spec.runs_per_budget);
    for &c in &spec.budgets {
        let n_opt = spec.law.optimal_params(c);
        for i in 0..spec.runs_per_budget {
            let u = if spec.runs_per_budget == 1 {
                0.0
            } else {
                -spec.half_width_dex
                    + 2.0 * spec.half_width_dex * i as f64 / (spec.runs_per_budget - 1) as f64
            };
            let n = n_opt * 10f64.powf(u);
            let d = c / (6.0 * n);
            let loss = spec.law.loss(n, d) * (spec.noise_sd * standard_normal(&mut rng)).exp();
            out.push(RunPoint::new(n, d, c, loss));
        }
    }
    Ok(out)
}

/// Compute-optimal runs at `budgets` (held-out "validation" runs), with the same noise model.
pub fn optimal_runs(
    law: &ChinchillaLaw,
    budgets: &[f64],
    noise_sd: f64,
    seed: u64,
) -> Vec<RunPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    budgets
        .iter()
        .map(|&c| {
            let n = law.optimal_params(c);
            let d = law.optimal_tokens(c);
            RunPoint::new(
                n,
                d,
                c,
                law.loss(n, d) * (noise_sd * standard_normal(&mut rng)).exp(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_is_seeded_and_on_budget() {
        let spec = LadderSpec::default_with_seed(3);
        let a = generate_ladder(&spec).unwrap();
        let b = generate_ladder(&spec).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 63);
        for p in &a {
            assert!((6.0 * p.params * p.tokens / p.compute - 1.0).abs() < 1e-9);
        }
    }
}
