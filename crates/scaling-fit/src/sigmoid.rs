//! Loss → downstream-accuracy map: a Richards (generalised logistic) curve with a chance floor.
//!
//! acc(x) = floor + (ceiling − floor) · σ(k·(x − x0))^v, σ(z) = 1/(1 + e^(−z)),
//! with `floor` pinned at chance (0.25 for 4-way multiple choice, 0.5 for binary tasks, 0 for
//! exact match) and k, x0, v and (unless pinned) ceiling fitted by least squares within bounds.
//! v = 1 is the ordinary logistic; v ≠ 1 lets the curve leave the floor slowly and rise steeply,
//! the shape of "emergent" benchmark curves (Richards 1959; the reference pipeline's
//! `_fit_richards`). Gadre et al. (2024, §3.2) use the exponential special case to map loss to
//! top-1 error.
//!
//! `x` must be a quantity that *increases* with capability, e.g. the negative loss or the
//! negative log-perplexity: pass `-loss`.

use argmin::core::{CostFunction, Error as ArgminError, Executor, State};
use argmin::solver::neldermead::NelderMead;

use crate::error::{FitError, Result, check_finite, check_len};

/// A fitted Richards curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RichardsCurve {
    /// Slope k > 0.
    pub k: f64,
    /// Location x0.
    pub x0: f64,
    /// Shape v > 0 (1 = logistic).
    pub v: f64,
    /// Chance floor.
    pub floor: f64,
    /// Ceiling (saturation accuracy).
    pub ceiling: f64,
    /// Root-mean-square residual of the fit.
    pub rmse: f64,
}

impl RichardsCurve {
    /// Predicted accuracy at `x`.
    pub fn predict(&self, x: f64) -> f64 {
        let s = 1.0 / (1.0 + (-self.k * (x - self.x0)).exp());
        self.floor + (self.ceiling - self.floor) * s.powf(self.v)
    }

    /// The `x` at which the curve reaches accuracy `y`; errors unless floor < y < ceiling.
    pub fn inverse(&self, y: f64) -> Result<f64> {
        if !(y > self.floor && y < self.ceiling) {
            return Err(FitError::no_fit(
                "Richards inverse",
                format!(
                    "target {y} outside the open range ({}, {})",
                    self.floor, self.ceiling
                ),
            ));
        }
        let s = ((y - self.floor) / (self.ceiling - self.floor)).powf(1.0 / self.v);
        Ok(self.x0 - (1.0 / s - 1.0).ln() / self.k)
    }
}

/// Bounds and pins of the Richards fit (defaults follow the reference pipeline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RichardsConfig {
    /// Chance accuracy (pinned floor).
    pub floor: f64,
    /// Pinned ceiling; `None` fits it in [floor + 0.05, 1].
    pub ceiling: Option<f64>,
    /// Bounds on k.
    pub k_bounds: (f64, f64),
    /// Bounds on v.
    pub v_bounds: (f64, f64),
    /// Margin around the observed x range allowed for x0.
    pub x0_margin: f64,
}

impl RichardsConfig {
    /// Default bounds (k ∈ [0.1, 50], v ∈ [0.1, 20], x0 within 2 of the data) for a floor.
    pub fn with_floor(floor: f64) -> Self {
        Self {
            floor,
            ceiling: None,
            k_bounds: (0.1, 50.0),
            v_bounds: (0.1, 20.0),
            x0_margin: 2.0,
        }
    }
}

#[derive(Clone)]
struct Sse<'a> {
    x: &'a [f64],
    y: &'a [f64],
    bounds: [(f64, f64); 4],
    floor: f64,
}

fn squash(u: f64, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) / (1.0 + (-u).exp())
}

fn unsquash(p: f64, (lo, hi): (f64, f64)) -> f64 {
    let t = ((p - lo) / (hi - lo)).clamp(1e-6, 1.0 - 1e-6);
    (t / (1.0 - t)).ln()
}

impl Sse<'_> {
    fn curve(&self, u: &[f64]) -> RichardsCurve {
        RichardsCurve {
            k: squash(u[0], self.bounds[0]),
            x0: squash(u[1], self.bounds[1]),
            v: squash(u[2], self.bounds[2]),
            floor: self.floor,
            ceiling: squash(u[3], self.bounds[3]),
            rmse: 0.0,
        }
    }
}

impl CostFunction for Sse<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, u: &Self::Param) -> std::result::Result<f64, ArgminError> {
        let c = self.curve(u);
        Ok(self
            .x
            .iter()
            .zip(self.y)
            .map(|(&x, &y)| (c.predict(x) - y).powi(2))
            .sum())
    }
}

/// Fits the Richards curve to (x, accuracy) pairs (≥ 4 points, or ≥ 3 with a pinned ceiling).
pub fn fit_richards(x: &[f64], y: &[f64], cfg: &RichardsConfig) -> Result<RichardsCurve> {
    let what = "Richards sigmoid";
    check_len(what, x.len(), y.len())?;
    check_finite("x", x)?;
    check_finite("accuracy", y)?;
    let needed = if cfg.ceiling.is_some() { 3 } else { 4 };
    if x.len() < needed {
        return Err(FitError::too_few(what, needed, x.len()));
    }
    if !(0.0..1.0).contains(&cfg.floor) {
        return Err(FitError::config("floor", "must be in [0, 1)"));
    }
    let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        return Err(FitError::NoSpread { what: what.into() });
    }
    if let Some(c) = cfg.ceiling
        && !(c > cfg.floor && c <= 1.0)
    {
        return Err(FitError::config("ceiling", "must be in (floor, 1]"));
    }
    let ceiling_bounds = match cfg.ceiling {
        // A pinned ceiling is a degenerate interval; widen by a hair so the transform is defined.
        Some(c) => (c - 1e-12, c + 1e-12),
        None => ((cfg.floor + 0.05).min(1.0 - 1e-9), 1.0),
    };
    let problem = Sse {
        x,
        y,
        bounds: [
            cfg.k_bounds,
            (lo - cfg.x0_margin, hi + cfg.x0_margin),
            cfg.v_bounds,
            ceiling_bounds,
        ],
        floor: cfg.floor,
    };
    let mut xs = x.to_vec();
    xs.sort_by(f64::total_cmp);
    let med = xs[xs.len() / 2];
    let y_max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for &k0 in &[1.0, 5.0, 20.0] {
        for &v0 in &[0.5, 1.0, 3.0] {
            for &x00 in &[med, xs[xs.len() / 4], xs[3 * xs.len() / 4]] {
                // A free ceiling starts just above the data, inside its bounds (which start
                // above 0.95 when the floor is above 0.9).
                let c0 = cfg.ceiling.unwrap_or_else(|| {
                    (y_max + 0.05).clamp(ceiling_bounds.0, 0.95_f64.max(ceiling_bounds.0))
                });
                let p0 = [k0, x00, v0, c0];
                let u0: Vec<f64> = p0
                    .iter()
                    .zip(problem.bounds.iter())
                    .map(|(&p, &b)| unsquash(p, b))
                    .collect();
                let mut simplex = vec![u0.clone()];
                for d in 0..4 {
                    let mut v = u0.clone();
                    v[d] += 0.7;
                    simplex.push(v);
                }
                let solver = NelderMead::new(simplex)
                    .with_sd_tolerance(1e-12)
                    .map_err(|e| FitError::Solver(e.to_string()))?;
                let res = Executor::new(problem.clone(), solver)
                    .configure(|s| s.max_iters(3000))
                    .timer(false)
                    .run();
                if let Ok(res) = res
                    && let Some(p) = res.state().get_best_param()
                {
                    let c = res.state().get_best_cost();
                    if c.is_finite() && best.as_ref().is_none_or(|b| c < b.0) {
                        best = Some((c, p.clone()));
                    }
                }
            }
        }
    }
    let (sse, u) =
        best.ok_or_else(|| FitError::Solver("Nelder-Mead failed on every start".into()))?;
    let mut curve = problem.curve(&u);
    if let Some(c) = cfg.ceiling {
        curve.ceiling = c;
    }
    curve.rmse = (sse / x.len() as f64).sqrt();
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_curve_and_inverts() {
        let truth = RichardsCurve {
            k: 4.0,
            x0: -2.5,
            v: 2.0,
            floor: 0.25,
            ceiling: 0.85,
            rmse: 0.0,
        };
        let x: Vec<f64> = (0..30).map(|i| -4.0 + 0.1 * i as f64).collect();
        let y: Vec<f64> = x.iter().map(|&v| truth.predict(v)).collect();
        let fit = fit_richards(&x, &y, &RichardsConfig::with_floor(0.25)).unwrap();
        assert!(fit.rmse < 1e-3, "{fit:?}");
        for &xx in &[-3.5, -2.5, -1.5] {
            assert!((fit.predict(xx) - truth.predict(xx)).abs() < 2e-3);
        }
        let x_back = fit.inverse(0.5).unwrap();
        assert!((fit.predict(x_back) - 0.5).abs() < 1e-9);
        assert!(fit.inverse(0.2).is_err());
    }

    #[test]
    fn pinned_ceilings_and_high_floors_fit_or_are_refused_never_panic() {
        let x: Vec<f64> = (0..20).map(|i| i as f64 * 0.2).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&v| 0.92 + 0.07 / (1.0 + (-3.0 * (v - 2.0)).exp()))
            .collect();
        // A ceiling pinned at 1 (exact-match tasks) and a floor above 0.9.
        let mut cfg = RichardsConfig::with_floor(0.25);
        cfg.ceiling = Some(1.0);
        assert!(fit_richards(&x, &y, &cfg).is_ok());
        assert!(fit_richards(&x, &y, &RichardsConfig::with_floor(0.91)).is_ok());
        // A ceiling at or below the floor, or above 1, is a named error.
        for c in [0.25, 0.1, 1.2] {
            cfg.ceiling = Some(c);
            let e = fit_richards(&x, &y, &cfg).unwrap_err().to_string();
            assert!(e.contains("ceiling"), "{e}");
        }
    }
}
