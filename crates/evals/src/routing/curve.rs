//! Cost–quality curves of a weak/strong pair router.
//!
//! A curve has one point per target strong-call share: the share actually achieved, the
//! mean quality of the routed answers, and (when the table has costs) the mean cost per
//! prompt. Evaluation sorts the router's scores once and keeps prefix sums of the strong
//! model's gain, so each point costs `O(log n)` after an `O(n log n)` set-up: a million
//! prompts on a 100-point grid takes well under a second.

use datasets::OutcomeTable;
use routing_core::{SortedScores, error::check_finite, error::check_share};

use crate::error::{EvalError, Result};

/// How a target strong-call share becomes a routing rule.
#[derive(Debug, Clone, Default)]
pub enum ShareRule {
    /// RouteLLM's rule (the code's): threshold = `(1 − share)` quantile of the calibration
    /// scores (`None` = the evaluated scores themselves); strong when `score >= threshold`.
    /// Ties at the threshold all go strong, so the achieved share can exceed the target.
    #[default]
    Threshold,
    /// As [`ShareRule::Threshold`], with the threshold calibrated on separate scores (e.g. a
    /// calibration split), RouteLLM's deployment setting.
    CalibratedOn(Vec<f64>),
    /// Exactly `round(share × n)` prompts with the highest scores go strong (ties broken by
    /// prompt order). This is the budget-constrained optimum when the scores are the oracle's.
    Rank,
}

/// The weak/strong outcomes of one evaluation set.
#[derive(Debug, Clone)]
pub struct PairOutcomes {
    /// Weak model name.
    pub weak_name: String,
    /// Strong model name.
    pub strong_name: String,
    /// Weak model score per prompt.
    pub weak: Vec<f64>,
    /// Strong model score per prompt.
    pub strong: Vec<f64>,
    /// Per-prompt costs `(weak, strong)`, when known.
    pub costs: Option<(Vec<f64>, Vec<f64>)>,
}

impl PairOutcomes {
    /// Extracts a pair from an outcome table.
    pub fn from_table(table: &OutcomeTable, weak: &str, strong: &str) -> Result<Self> {
        let (w, s) = (table.model_index(weak)?, table.model_index(strong)?);
        Ok(Self {
            weak_name: weak.to_string(),
            strong_name: strong.to_string(),
            weak: table.model_scores(w),
            strong: table.model_scores(s),
            costs: table.model_costs(w).zip(table.model_costs(s)),
        })
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.weak.len()
    }

    /// True when there are no prompts.
    pub fn is_empty(&self) -> bool {
        self.weak.is_empty()
    }

    /// Mean quality of always-weak.
    pub fn weak_quality(&self) -> f64 {
        mean(&self.weak)
    }

    /// Mean quality of always-strong.
    pub fn strong_quality(&self) -> f64 {
        mean(&self.strong)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// One point of a pair router's curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    /// The share the rule aimed for.
    pub target_share: f64,
    /// The share of prompts actually sent to the strong model.
    pub strong_share: f64,
    /// Mean score of the routed answers.
    pub quality: f64,
    /// Mean cost per prompt, when the outcomes carry costs.
    pub cost: Option<f64>,
    /// The score threshold used (`None` for [`ShareRule::Rank`]).
    pub threshold: Option<f64>,
}

/// A router's curve together with the pair's reference qualities.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairCurve {
    /// Router name.
    pub router: String,
    /// Mean quality of always-weak.
    pub weak_quality: f64,
    /// Mean quality of always-strong.
    pub strong_quality: f64,
    /// Points in grid order.
    pub points: Vec<CurvePoint>,
}

/// A router's scores prepared for fast evaluation at many shares.
#[derive(Debug, Clone)]
pub struct PairEvaluator {
    n: usize,
    /// Scores sorted descending (ties keep prompt order).
    desc_scores: Vec<f64>,
    /// `prefix_gain[k]` = Σ over the `k` highest-scored prompts of (strong − weak).
    prefix_gain: Vec<f64>,
    /// Same for cost, when known.
    prefix_cost: Option<Vec<f64>>,
    weak_total: f64,
    weak_cost_total: Option<f64>,
    weak_quality: f64,
    strong_quality: f64,
    eval_sorted: SortedScores,
}

impl PairEvaluator {
    /// Prepares `scores` (one per prompt of `outcomes`, higher = more need for strong).
    pub fn new(scores: &[f64], outcomes: &PairOutcomes) -> Result<Self> {
        let n = outcomes.len();
        if scores.len() != n {
            return Err(EvalError::param(
                "scores",
                format!("{} scores for {n} prompts", scores.len()),
            ));
        }
        check_finite("router scores", scores)?;
        // The outcome fields are public: their lengths and values are checked here.
        if outcomes.strong.len() != n {
            return Err(EvalError::param(
                "strong outcomes",
                format!("{} values for {n} prompts", outcomes.strong.len()),
            ));
        }
        check_finite("weak outcomes", &outcomes.weak)?;
        check_finite("strong outcomes", &outcomes.strong)?;
        if let Some((wc, sc)) = &outcomes.costs {
            for (what, v) in [("weak costs", wc), ("strong costs", sc)] {
                if v.len() != n {
                    return Err(EvalError::param(
                        what,
                        format!("{} values for {n} prompts", v.len()),
                    ));
                }
                check_finite(what, v)?;
            }
        }
        let eval_sorted = SortedScores::new(scores)?;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let mut prefix_gain = Vec::with_capacity(n + 1);
        prefix_gain.push(0.0);
        let mut acc = 0.0;
        for &i in &order {
            acc += outcomes.strong[i] - outcomes.weak[i];
            prefix_gain.push(acc);
        }
        let prefix_cost = outcomes.costs.as_ref().map(|(wc, sc)| {
            let mut v = Vec::with_capacity(n + 1);
            v.push(0.0);
            let mut acc = 0.0;
            for &i in &order {
                acc += sc[i] - wc[i];
                v.push(acc);
            }
            v
        });
        Ok(Self {
            n,
            desc_scores: order.iter().map(|&i| scores[i]).collect(),
            prefix_gain,
            prefix_cost,
            weak_total: outcomes.weak.iter().sum(),
            weak_cost_total: outcomes.costs.as_ref().map(|(wc, _)| wc.iter().sum()),
            weak_quality: outcomes.weak_quality(),
            strong_quality: outcomes.strong_quality(),
            eval_sorted,
        })
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (construction rejects empty input).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Mean quality of always-weak on this set.
    pub fn weak_quality(&self) -> f64 {
        self.weak_quality
    }

    /// Mean quality of always-strong on this set.
    pub fn strong_quality(&self) -> f64 {
        self.strong_quality
    }

    fn point_with_k(&self, target: f64, k: usize, threshold: Option<f64>) -> CurvePoint {
        let n = self.n as f64;
        CurvePoint {
            target_share: target,
            strong_share: k as f64 / n,
            quality: (self.weak_total + self.prefix_gain[k]) / n,
            cost: self
                .weak_cost_total
                .zip(self.prefix_cost.as_ref())
                .map(|(w, pc)| (w + pc[k]) / n),
            threshold,
        }
    }

    /// The point reached by routing strong every prompt with `score >= threshold`.
    pub fn point_at_threshold(&self, threshold: f64) -> CurvePoint {
        let k = self.desc_scores.partition_point(|&s| s >= threshold);
        let target = self.eval_sorted.share_at_threshold(threshold);
        self.point_with_k(target, k, Some(threshold))
    }

    /// The point at `threshold` for target share `share`: `score >= threshold` routes strong,
    /// except at share 0, whose threshold is the highest score and routes strong only the
    /// scores above it — none (RouteLLM's `benchmarks.py`: `>=` at every threshold but the
    /// top one, `>` there), so the curve starts at always-weak even when the top score is tied.
    fn point_at_threshold_for(&self, share: f64, threshold: f64) -> CurvePoint {
        if share > 0.0 {
            return self.point_at_threshold(threshold);
        }
        let k = self.desc_scores.partition_point(|&s| s > threshold);
        self.point_with_k(k as f64 / self.n as f64, k, Some(threshold))
    }

    /// The point for a target share under `rule`.
    pub fn point_at_share(&self, share: f64, rule: &ShareRule) -> Result<CurvePoint> {
        let share = check_share(share)?;
        Ok(match rule {
            ShareRule::Threshold => {
                let thr = self.eval_sorted.threshold_for_share(share)?;
                CurvePoint {
                    target_share: share,
                    ..self.point_at_threshold_for(share, thr)
                }
            }
            ShareRule::CalibratedOn(calibration) => {
                let thr = routing_core::calibrate_threshold(calibration, share)?;
                CurvePoint {
                    target_share: share,
                    ..self.point_at_threshold_for(share, thr)
                }
            }
            ShareRule::Rank => {
                let k = ((share * self.n as f64).round() as usize).min(self.n);
                self.point_with_k(share, k, None)
            }
        })
    }

    /// The curve over a grid of target shares.
    pub fn curve(&self, router: &str, grid: &[f64], rule: &ShareRule) -> Result<PairCurve> {
        if grid.is_empty() {
            return Err(EvalError::param("grid", "empty share grid"));
        }
        let points = grid
            .iter()
            .map(|&s| self.point_at_share(s, rule))
            .collect::<Result<_>>()?;
        Ok(PairCurve {
            router: router.to_string(),
            weak_quality: self.weak_quality,
            strong_quality: self.strong_quality,
            points,
        })
    }
}

/// `n + 1` evenly spaced shares `0, 1/n, …, 1`.
pub fn share_grid(n: usize) -> Vec<f64> {
    let n = n.max(1);
    (0..=n).map(|i| i as f64 / n as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes() -> PairOutcomes {
        PairOutcomes {
            weak_name: "w".into(),
            strong_name: "s".into(),
            weak: vec![1.0, 0.0, 0.0, 1.0],
            strong: vec![1.0, 1.0, 0.0, 0.0],
            costs: Some((vec![1.0; 4], vec![10.0; 4])),
        }
    }

    #[test]
    fn rank_rule_hits_shares_exactly() {
        let o = outcomes();
        let e = PairEvaluator::new(&[0.1, 0.9, 0.5, 0.3], &o).unwrap();
        let c = e.curve("r", &share_grid(4), &ShareRule::Rank).unwrap();
        let shares: Vec<f64> = c.points.iter().map(|p| p.strong_share).collect();
        assert_eq!(shares, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        // Order by score: p1 (+1), p2 (0), p3 (-1), p0 (0).
        let q: Vec<f64> = c.points.iter().map(|p| p.quality).collect();
        assert_eq!(q, vec![0.5, 0.75, 0.75, 0.5, 0.5]);
        assert_eq!(c.points[4].cost, Some(10.0));
        assert_eq!(c.points[0].cost, Some(1.0));
    }

    #[test]
    fn threshold_rule_sends_ties_strong() {
        let o = outcomes();
        let e = PairEvaluator::new(&[0.5, 0.5, 0.5, 0.1], &o).unwrap();
        let p = e.point_at_share(0.25, &ShareRule::Threshold).unwrap();
        assert_eq!(p.strong_share, 0.75);
    }

    #[test]
    fn rejects_mismatched_or_nan_scores() {
        let o = outcomes();
        assert!(PairEvaluator::new(&[0.1, 0.2], &o).is_err());
        assert!(PairEvaluator::new(&[0.1, 0.2, f64::NAN, 0.3], &o).is_err());
        let e = PairEvaluator::new(&[0.1, 0.2, 0.3, 0.4], &o).unwrap();
        assert!(e.point_at_share(1.2, &ShareRule::Rank).is_err());
    }
}
