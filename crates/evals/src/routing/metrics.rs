//! Scalar summaries of a pair router's curve: PGR, APGR, CPT, AUC and Hybrid-LLM's quality drop.
//!
//! Definitions (Ong et al. 2024, "RouteLLM: Learning to Route LLMs with Preference Data", §5.1):
//! * **PGR** (performance gap recovered) of a point with quality `q`:
//!   `(q − q_weak) / (q_strong − q_weak)`.
//! * **APGR** (average PGR): the paper defines it as the mean of PGR over the strong-call
//!   shares 10%, 20%, …, 100% ([`ApgrMethod::MeanOfShares`]); RouteLLM's code instead
//!   integrates over the *achieved* shares with the trapezoid rule,
//!   `(AUC − weak_auc) / (strong_auc − weak_auc)` with both baselines integrated over the
//!   same shares (`evaluate.py`'s `apgr_metric`) — the integral of PGR divided by the span of
//!   the achieved shares ([`ApgrMethod::Area`], the default here, as the issue asks: "default
//!   to the code's"; the span is 1 whenever the curve runs from always-weak to always-strong).
//! * **CPT(x%)** (call-performance threshold): the strong-call share needed to reach PGR `x`.
//!   The paper calls it the minimum share achieving it ([`CptMethod::MinimumShare`]); the
//!   code linearly interpolates share against quality (`np.interp`,
//!   [`CptMethod::Interpolated`], the default). `np.interp` assumes increasing qualities; we
//!   interpolate inside the first pair of consecutive points that brackets the target,
//!   which equals `np.interp` whenever the curve is monotone.
//! * **AUC**: trapezoid area under quality vs achieved strong-call share (RouteLLM's
//!   notebook metric; an ideal router approaches the oracle's area).
//! * **Quality drop at a cost advantage** (Ding et al. 2024, "Hybrid LLM", §4): with
//!   cost advantage `a` = share of queries answered by the small model, the relative
//!   drop `(q_strong − q(1 − a)) / q_strong` in percent, reading `q` off the curve by
//!   linear interpolation in the achieved share.

use crate::error::{EvalError, Result};
use crate::routing::curve::{CurvePoint, PairCurve};

/// Which APGR definition to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApgrMethod {
    /// Trapezoid area of PGR over achieved strong-call shares (RouteLLM's code; default).
    #[default]
    Area,
    /// Mean PGR at target shares 0.1, 0.2, …, 1.0 (RouteLLM's paper). The curve must
    /// contain those targets (e.g. built on [`crate::routing::share_grid`]`(10)`).
    MeanOfShares,
}

/// Which CPT definition to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CptMethod {
    /// Linear interpolation of share against quality (RouteLLM's code; default).
    #[default]
    Interpolated,
    /// The smallest achieved share whose PGR reaches the target (RouteLLM's paper).
    MinimumShare,
}

/// Performance gap recovered by quality `q`.
pub fn pgr(q: f64, weak: f64, strong: f64) -> Result<f64> {
    let gap = strong - weak;
    if gap.abs() < 1e-12 {
        return Err(EvalError::Undefined {
            metric: "PGR".into(),
            reason: format!("weak ({weak}) and strong ({strong}) qualities are equal"),
        });
    }
    Ok((q - weak) / gap)
}

impl PairCurve {
    /// The points sorted by achieved share (stable).
    fn by_share(&self) -> Vec<CurvePoint> {
        let mut pts = self.points.clone();
        pts.sort_by(|a, b| a.strong_share.total_cmp(&b.strong_share));
        pts
    }

    /// PGR of every point, in grid order.
    pub fn pgr_values(&self) -> Result<Vec<f64>> {
        self.points
            .iter()
            .map(|p| pgr(p.quality, self.weak_quality, self.strong_quality))
            .collect()
    }

    /// APGR by the chosen definition.
    pub fn apgr(&self, method: ApgrMethod) -> Result<f64> {
        match method {
            ApgrMethod::Area => {
                let pts = self.by_share();
                let ys = pts
                    .iter()
                    .map(|p| pgr(p.quality, self.weak_quality, self.strong_quality))
                    .collect::<Result<Vec<_>>>()?;
                let xs: Vec<f64> = pts.iter().map(|p| p.strong_share).collect();
                let span = xs.last().zip(xs.first()).map_or(0.0, |(b, a)| b - a);
                if span <= 0.0 {
                    return Err(EvalError::Undefined {
                        metric: "APGR".into(),
                        reason: "every point of the curve has the same strong-call share".into(),
                    });
                }
                Ok(trapezoid(&xs, &ys) / span)
            }
            ApgrMethod::MeanOfShares => {
                let mut sum = 0.0;
                for i in 1..=10 {
                    let target = i as f64 / 10.0;
                    let p = self
                        .points
                        .iter()
                        .find(|p| (p.target_share - target).abs() < 1e-9)
                        .ok_or_else(|| EvalError::Undefined {
                            metric: "APGR (mean of shares)".into(),
                            reason: format!("curve has no point at target share {target}"),
                        })?;
                    sum += pgr(p.quality, self.weak_quality, self.strong_quality)?;
                }
                Ok(sum / 10.0)
            }
        }
    }

    /// Trapezoid area under quality vs achieved strong-call share.
    pub fn auc(&self) -> f64 {
        let pts = self.by_share();
        let xs: Vec<f64> = pts.iter().map(|p| p.strong_share).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.quality).collect();
        trapezoid(&xs, &ys)
    }

    /// CPT: the strong-call share needed to recover `target_pgr` (e.g. 0.5 for CPT(50%)).
    /// `None` when the curve never reaches it.
    pub fn cpt(&self, target_pgr: f64, method: CptMethod) -> Result<Option<f64>> {
        if !target_pgr.is_finite() {
            return Err(EvalError::param(
                "target_pgr",
                format!("{target_pgr} is not finite"),
            ));
        }
        let target_q = self.weak_quality + target_pgr * (self.strong_quality - self.weak_quality);
        let pts = self.by_share();
        pgr(0.0, self.weak_quality, self.strong_quality)?;
        let reaches = |q: f64| q >= target_q - 1e-12;
        Ok(match method {
            CptMethod::MinimumShare => pts
                .iter()
                .find(|p| reaches(p.quality))
                .map(|p| p.strong_share),
            CptMethod::Interpolated => {
                if let Some(first) = pts.first().filter(|p| reaches(p.quality)) {
                    return Ok(Some(first.strong_share));
                }
                pts.windows(2).find_map(|w| {
                    let (a, b) = (w[0], w[1]);
                    (a.quality < target_q && reaches(b.quality)).then(|| {
                        let t = (target_q - a.quality) / (b.quality - a.quality);
                        a.strong_share + t * (b.strong_share - a.strong_share)
                    })
                })
            }
        })
    }

    /// Quality at an achieved strong-call share, linearly interpolated between points.
    pub fn quality_at_share(&self, share: f64) -> Result<f64> {
        if !share.is_finite() {
            return Err(EvalError::param("share", format!("{share} is not finite")));
        }
        let pts = self.by_share();
        let (Some(&first), Some(&last)) = (pts.first(), pts.last()) else {
            return Err(EvalError::param("curve", "no points"));
        };
        if share < first.strong_share - 1e-12 || share > last.strong_share + 1e-12 {
            return Err(EvalError::param(
                "share",
                format!(
                    "{share} is outside the curve's range [{}, {}]",
                    first.strong_share, last.strong_share
                ),
            ));
        }
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if share <= b.strong_share {
                let span = b.strong_share - a.strong_share;
                let t = if span > 0.0 {
                    (share - a.strong_share) / span
                } else {
                    1.0
                };
                return Ok(a.quality + t * (b.quality - a.quality));
            }
        }
        Ok(last.quality)
    }

    /// Hybrid-LLM's relative quality drop (%) at a cost advantage (share sent to the weak model).
    pub fn quality_drop_at(&self, cost_advantage: f64) -> Result<f64> {
        if self.strong_quality <= 0.0 {
            return Err(EvalError::Undefined {
                metric: "quality drop".into(),
                reason: "the strong model's quality is 0".into(),
            });
        }
        let q = self.quality_at_share(1.0 - cost_advantage)?;
        Ok((self.strong_quality - q) / self.strong_quality * 100.0)
    }
}

/// Trapezoid rule over points sorted by `x` (`numpy.trapezoid`).
pub fn trapezoid(xs: &[f64], ys: &[f64]) -> f64 {
    xs.windows(2)
        .zip(ys.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::curve::{PairEvaluator, PairOutcomes, ShareRule, share_grid};

    fn linear_curve() -> PairCurve {
        PairCurve {
            router: "x".into(),
            weak_quality: 0.5,
            strong_quality: 0.7,
            points: share_grid(10)
                .into_iter()
                .map(|s| CurvePoint {
                    target_share: s,
                    strong_share: s,
                    quality: 0.5 + 0.2 * s,
                    cost: None,
                    threshold: None,
                })
                .collect(),
        }
    }

    #[test]
    fn linear_curve_has_apgr_one_half() {
        let c = linear_curve();
        assert!((c.apgr(ApgrMethod::Area).unwrap() - 0.5).abs() < 1e-12);
        assert!((c.apgr(ApgrMethod::MeanOfShares).unwrap() - 0.55).abs() < 1e-12);
        assert!((c.cpt(0.5, CptMethod::Interpolated).unwrap().unwrap() - 0.5).abs() < 1e-12);
        assert!((c.cpt(0.55, CptMethod::MinimumShare).unwrap().unwrap() - 0.6).abs() < 1e-12);
        assert!((c.cpt(0.55, CptMethod::Interpolated).unwrap().unwrap() - 0.55).abs() < 1e-9);
        assert!((c.auc() - 0.6).abs() < 1e-12);
        // Half the queries to the weak model: q = 0.6, drop = 0.1 / 0.7.
        assert!((c.quality_drop_at(0.5).unwrap() - 100.0 / 7.0).abs() < 1e-9);
    }

    /// Ten prompts: three strong-only wins, one weak-only.
    fn ten_outcomes() -> PairOutcomes {
        PairOutcomes {
            weak_name: "w".into(),
            strong_name: "s".into(),
            weak: vec![0., 0., 1., 1., 0., 1., 0., 0., 1., 1.],
            strong: vec![1., 1., 1., 1., 0., 0., 1., 0., 1., 1.],
            costs: None,
        }
    }

    #[test]
    fn oracle_beats_random_and_recovers_everything_early() {
        let o = ten_outcomes();
        let gain: Vec<f64> = o.strong.iter().zip(&o.weak).map(|(s, w)| s - w).collect();
        let e = PairEvaluator::new(&gain, &o).unwrap();
        let c = e
            .curve("oracle", &share_grid(10), &ShareRule::Rank)
            .unwrap();
        // Gains: three +1, one −1: PGR reaches 1 at 20% strong calls, peaks at 30% (q = 0.8).
        assert_eq!(c.cpt(1.0, CptMethod::MinimumShare).unwrap(), Some(0.2));
        assert!((c.points[3].quality - 0.8).abs() < 1e-12);
        assert!(c.apgr(ApgrMethod::Area).unwrap() > 1.0);
    }

    #[test]
    fn pgr_undefined_when_models_tie() {
        assert!(pgr(0.5, 0.6, 0.6).is_err());
    }

    #[test]
    fn apgr_is_normalised_by_the_span_of_achieved_shares_as_routellm_code() {
        // Achieved shares 0.2 … 0.8 only, PGR = share: RouteLLM's
        // (AUC − weak_auc) / (strong_auc − weak_auc) is the mean PGR over [0.2, 0.8], 0.5.
        let mut c = linear_curve();
        c.points
            .retain(|p| (0.2 - 1e-9..=0.8 + 1e-9).contains(&p.strong_share));
        let auc = c.auc();
        let (w, s) = (c.weak_quality, c.strong_quality);
        let code = (auc - w * 0.6) / (s * 0.6 - w * 0.6);
        let got = c.apgr(ApgrMethod::Area).unwrap();
        assert!(
            (got - code).abs() < 1e-12 && (got - 0.5).abs() < 1e-12,
            "{got}"
        );
        // One share only: undefined, not a division by zero.
        c.points.truncate(1);
        assert!(c.apgr(ApgrMethod::Area).is_err());
        assert!(c.quality_at_share(f64::NAN).is_err());
        assert!(c.cpt(f64::NAN, CptMethod::Interpolated).is_err());
    }

    #[test]
    fn tied_top_scores_still_start_the_curve_at_always_weak() {
        // Six of ten prompts share the top score (a 0/1 classifier): RouteLLM's top threshold
        // routes none of them strong, so the curve spans [0, 1] and its summaries exist.
        let o = ten_outcomes();
        let scores = [1., 1., 1., 1., 1., 1., 0., 0., 0., 0.];
        let e = PairEvaluator::new(&scores, &o).unwrap();
        let c = e
            .curve("classifier", &share_grid(10), &ShareRule::Threshold)
            .unwrap();
        assert_eq!(c.points[0].strong_share, 0.0);
        assert_eq!(c.points[0].quality, c.weak_quality);
        assert!(c.quality_at_share(0.5).is_ok());
        assert!(c.apgr(ApgrMethod::Area).is_ok());
        // Outcome lengths are checked, not indexed past.
        let mut short = o.clone();
        short.strong.pop();
        assert!(PairEvaluator::new(&scores, &short).is_err());
    }
}
