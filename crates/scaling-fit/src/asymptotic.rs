//! Asymptotic compute law loss(C) = L∞ + A·C^(−α), per curve or with a shared floor.
//!
//! The saturating power law of Hestness et al. (2017) and Kaplan et al. (2020, §3), fitted the
//! way the reference pipeline does it: for a trial floor L∞ the model is linear in
//! log(loss − L∞) = log A − α·log C, so (A, α) have a closed-form least-squares solution and
//! only L∞ is searched — on a grid over [0, 0.95·min loss] (0 included: no floor), then
//! refined by golden-section search between the neighbours of the best grid point. The criterion is the mean squared
//! residual in log(loss − L∞) space. With several curves (e.g. optimisers or datasets) the floor
//! can be shared: each curve keeps its own (A, α) and the summed criterion picks one L∞.

use crate::error::{FitError, Result, check_len, check_positive};
use crate::linreg::fit_line;

/// One fitted curve loss(C) = l_inf + a·C^(−alpha).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AsymptoticLaw {
    /// Irreducible loss L∞ (same units as the loss).
    pub l_inf: f64,
    /// Scale A.
    pub a: f64,
    /// Exponent α > 0.
    pub alpha: f64,
    /// Mean squared residual of log(loss − L∞) at the optimum.
    pub mse_log: f64,
}

impl AsymptoticLaw {
    /// Predicted loss at compute `c` (FLOPs).
    pub fn predict(&self, c: f64) -> f64 {
        self.l_inf + self.a * c.powf(-self.alpha)
    }
}

/// Search settings for the floor L∞.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsymptoticConfig {
    /// Grid points over (0, max_floor_fraction · min loss] (the reference uses 400).
    pub grid: usize,
    /// Upper end of the floor search as a fraction of the smallest loss (reference: 0.95).
    pub max_floor_fraction: f64,
    /// Refine the best grid point by golden-section search.
    pub refine: bool,
}

impl Default for AsymptoticConfig {
    fn default() -> Self {
        Self {
            grid: 400,
            max_floor_fraction: 0.95,
            refine: true,
        }
    }
}

impl AsymptoticConfig {
    fn check(&self) -> Result<()> {
        if self.grid < 2 {
            return Err(FitError::config("grid", "need at least 2 grid points"));
        }
        if !(self.max_floor_fraction > 0.0 && self.max_floor_fraction < 1.0) {
            return Err(FitError::config("max_floor_fraction", "must be in (0, 1)"));
        }
        Ok(())
    }
}

/// A curve prepared for the inner solve: natural logs of compute, raw losses.
struct Curve {
    log_c: Vec<f64>,
    y: Vec<f64>,
}

impl Curve {
    fn new(what: &str, c: &[f64], y: &[f64], min_points: usize) -> Result<Self> {
        check_len(what, c.len(), y.len())?;
        check_positive("compute", c)?;
        check_positive("loss", y)?;
        if c.len() < min_points {
            return Err(FitError::too_few(what, min_points, c.len()));
        }
        let log_c: Vec<f64> = c.iter().map(|v| v.ln()).collect();
        let spread = log_c.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - log_c.iter().copied().fold(f64::INFINITY, f64::min);
        if spread <= 0.0 {
            return Err(FitError::TooFewBuckets {
                what: what.into(),
                needed: 2,
                got: 1,
            });
        }
        Ok(Self {
            log_c,
            y: y.to_vec(),
        })
    }

    /// Closed-form (A, α) for a fixed floor; `None` if some loss ≤ floor or α ≤ 0.
    fn solve(&self, l_inf: f64) -> Option<AsymptoticLaw> {
        let mut z = Vec::with_capacity(self.y.len());
        for &y in &self.y {
            let d = y - l_inf;
            if d <= 0.0 {
                return None;
            }
            z.push(d.ln());
        }
        let line = fit_line("asymptotic inner solve", &self.log_c, &z).ok()?;
        let alpha = -line.slope;
        if !(alpha.is_finite() && alpha > 0.0) {
            return None;
        }
        Some(AsymptoticLaw {
            l_inf,
            a: line.intercept.exp(),
            alpha,
            mse_log: line.mse,
        })
    }
}

/// 1-D minimisation over the floor: grid, then golden-section refinement.
fn search_floor(
    hi: f64,
    cfg: &AsymptoticConfig,
    total: impl Fn(f64) -> Option<f64>,
) -> Option<f64> {
    let obj = |l: f64| total(l).unwrap_or(f64::INFINITY);
    let step = hi / (cfg.grid - 1) as f64;
    let (mut best_i, mut best_v) = (usize::MAX, f64::INFINITY);
    for i in 0..cfg.grid {
        let v = obj(i as f64 * step);
        if v < best_v {
            best_v = v;
            best_i = i;
        }
    }
    if best_i == usize::MAX {
        return None;
    }
    let mut best = best_i as f64 * step;
    if cfg.refine {
        let (mut lo, mut up) = ((best - step).max(0.0), (best + step).min(hi));
        let g = (5f64.sqrt() - 1.0) / 2.0;
        let mut x1 = up - g * (up - lo);
        let mut x2 = lo + g * (up - lo);
        let (mut f1, mut f2) = (obj(x1), obj(x2));
        for _ in 0..60 {
            if f1 <= f2 {
                up = x2;
                x2 = x1;
                f2 = f1;
                x1 = up - g * (up - lo);
                f1 = obj(x1);
            } else {
                lo = x1;
                x1 = x2;
                f1 = f2;
                x2 = lo + g * (up - lo);
                f2 = obj(x2);
            }
        }
        let cand = if f1 <= f2 { x1 } else { x2 };
        if obj(cand) <= best_v {
            best = cand;
        }
    }
    Some(best)
}

/// Fits loss(C) = L∞ + A·C^(−α) to one curve (≥ 3 points at ≥ 2 distinct compute values).
pub fn fit_asymptotic(
    compute: &[f64],
    loss: &[f64],
    cfg: &AsymptoticConfig,
) -> Result<AsymptoticLaw> {
    cfg.check()?;
    let what = "asymptotic law";
    let curve = Curve::new(what, compute, loss, 3)?;
    let hi = cfg.max_floor_fraction * curve.y.iter().copied().fold(f64::INFINITY, f64::min);
    let l = search_floor(hi, cfg, |l| curve.solve(l).map(|f| f.mse_log))
        .ok_or_else(|| FitError::no_fit(what, "no floor gives a decreasing power law"))?;
    curve
        .solve(l)
        .ok_or_else(|| FitError::no_fit(what, "inner solve failed at the optimum"))
}

/// Curves fitted jointly with one shared floor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SharedAsymptotic {
    /// The shared floor L∞.
    pub l_inf: f64,
    /// One law per input curve, in input order (all with `l_inf` equal to the shared floor).
    pub curves: Vec<AsymptoticLaw>,
    /// Sum over curves of the per-curve mean squared log residuals.
    pub total_mse_log: f64,
}

/// Fits loss_q(C) = L∞ + A_q·C^(−α_q) with one L∞ shared by all curves `(compute, loss)`.
///
/// Each curve needs ≥ 2 points at distinct compute values; together they need more points than
/// free parameters (2 per curve + 1).
pub fn fit_asymptotic_shared(
    curves: &[(&[f64], &[f64])],
    cfg: &AsymptoticConfig,
) -> Result<SharedAsymptotic> {
    cfg.check()?;
    let what = "shared-floor asymptotic law";
    if curves.is_empty() {
        return Err(FitError::too_few(what, 1, 0));
    }
    let prepared = curves
        .iter()
        .map(|(c, y)| Curve::new(what, c, y, 2))
        .collect::<Result<Vec<_>>>()?;
    let total_points: usize = prepared.iter().map(|c| c.y.len()).sum();
    if total_points < 2 * prepared.len() + 1 {
        return Err(FitError::too_few(
            what,
            2 * prepared.len() + 1,
            total_points,
        ));
    }
    let y_min = prepared
        .iter()
        .flat_map(|c| c.y.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let total = |l: f64| -> Option<f64> {
        let mut s = 0.0;
        for c in &prepared {
            s += c.solve(l)?.mse_log;
        }
        Some(s)
    };
    let l = search_floor(cfg.max_floor_fraction * y_min, cfg, total)
        .ok_or_else(|| FitError::no_fit(what, "no shared floor fits every curve"))?;
    let fits = prepared
        .iter()
        .map(|c| c.solve(l))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| FitError::no_fit(what, "inner solve failed at the optimum"))?;
    Ok(SharedAsymptotic {
        l_inf: l,
        total_mse_log: fits.iter().map(|f| f.mse_log).sum(),
        curves: fits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_noise_free_law() {
        let truth = AsymptoticLaw {
            l_inf: 1.8,
            a: 300.0,
            alpha: 0.12,
            mse_log: 0.0,
        };
        let c: Vec<f64> = (0..8).map(|i| 10f64.powf(18.0 + 0.5 * i as f64)).collect();
        let y: Vec<f64> = c.iter().map(|&v| truth.predict(v)).collect();
        let f = fit_asymptotic(&c, &y, &AsymptoticConfig::default()).unwrap();
        assert!((f.l_inf - 1.8).abs() < 1e-3, "{f:?}");
        assert!((f.alpha - 0.12).abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn shared_floor_recovers_both_curves() {
        let c: Vec<f64> = (0..7).map(|i| 10f64.powf(18.0 + 0.5 * i as f64)).collect();
        let y1: Vec<f64> = c.iter().map(|&v| 1.7 + 200.0 * v.powf(-0.11)).collect();
        let y2: Vec<f64> = c.iter().map(|&v| 1.7 + 90.0 * v.powf(-0.09)).collect();
        let s =
            fit_asymptotic_shared(&[(&c, &y1), (&c, &y2)], &AsymptoticConfig::default()).unwrap();
        assert!((s.l_inf - 1.7).abs() < 1e-3, "{s:?}");
        assert!((s.curves[0].alpha - 0.11).abs() < 1e-3);
        assert!((s.curves[1].alpha - 0.09).abs() < 1e-3);
    }

    #[test]
    fn single_compute_value_is_rejected() {
        let c = [1e19; 4];
        let y = [3.0, 2.9, 2.8, 2.7];
        assert!(matches!(
            fit_asymptotic(&c, &y, &AsymptoticConfig::default()),
            Err(FitError::TooFewBuckets { .. })
        ));
    }
}
