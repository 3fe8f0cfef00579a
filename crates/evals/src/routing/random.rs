//! The random-router baseline as a band: the same curve under many seeds.
//!
//! A random router sends a uniformly random subset of the requested size to the strong model,
//! so its expected quality at share `s` is `q_weak + s·(q_strong − q_weak)` and its expected
//! APGR is 0.5. Reports show the mean curve with a ±1 standard-deviation band and the APGR
//! spread over seeds.

use datasets::PromptMeta;
use routing_core::{PairRouter, RandomRouter};

use crate::error::{EvalError, Result};
use crate::routing::curve::{CurvePoint, PairCurve, PairEvaluator, PairOutcomes, ShareRule};
use crate::routing::metrics::{ApgrMethod, CptMethod};
use crate::routing::study::MeanStd;

/// The random router's curve statistics over seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RandomBand {
    /// Mean over seeds of each grid point (shares and qualities averaged).
    pub mean_curve: PairCurve,
    /// Standard deviation over seeds of the quality at each grid point.
    pub quality_std: Vec<f64>,
    /// APGR (code definition) over seeds.
    pub apgr: MeanStd,
    /// APGR of each seed.
    pub apgr_values: Vec<f64>,
    /// CPT(50%) (code definition) over the seeds that reach it.
    pub cpt50: Option<MeanStd>,
    /// The seeds used.
    pub seeds: Vec<u64>,
}

/// Evaluates `RandomRouter::new(base_seed + i)` for `i in 0..n_seeds` on the same grid.
pub fn random_band(
    prompts: &[PromptMeta],
    outcomes: &PairOutcomes,
    grid: &[f64],
    n_seeds: usize,
    base_seed: u64,
) -> Result<RandomBand> {
    if n_seeds == 0 {
        return Err(EvalError::param("n_seeds", "at least one seed is needed"));
    }
    let seeds: Vec<u64> = (0..n_seeds as u64).map(|i| base_seed + i).collect();
    let curves = seeds
        .iter()
        .map(|&seed| {
            let scores = RandomRouter::new(seed).score(prompts)?;
            PairEvaluator::new(&scores, outcomes)?.curve("random", grid, &ShareRule::Threshold)
        })
        .collect::<Result<Vec<_>>>()?;
    let k = grid.len();
    let n = n_seeds as f64;
    let mut points = Vec::with_capacity(k);
    let mut quality_std = Vec::with_capacity(k);
    for (j, &target_share) in grid.iter().enumerate() {
        let qs: Vec<f64> = curves.iter().map(|c| c.points[j].quality).collect();
        let ms = MeanStd::of(&qs);
        let cost = curves[0].points[j]
            .cost
            .map(|_| curves.iter().filter_map(|c| c.points[j].cost).sum::<f64>() / n);
        points.push(CurvePoint {
            target_share,
            strong_share: curves.iter().map(|c| c.points[j].strong_share).sum::<f64>() / n,
            quality: ms.mean,
            cost,
            threshold: None,
        });
        quality_std.push(ms.std);
    }
    let apgr_values = curves
        .iter()
        .map(|c| c.apgr(ApgrMethod::Area))
        .collect::<Result<Vec<_>>>()?;
    let cpts: Vec<f64> = curves
        .iter()
        .map(|c| c.cpt(0.5, CptMethod::Interpolated))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(RandomBand {
        mean_curve: PairCurve {
            router: format!("random (mean of {n_seeds} seeds)"),
            weak_quality: curves[0].weak_quality,
            strong_quality: curves[0].strong_quality,
            points,
        },
        quality_std,
        apgr: MeanStd::of(&apgr_values),
        apgr_values,
        cpt50: (!cpts.is_empty()).then(|| MeanStd::of(&cpts)),
        seeds,
    })
}
