//! Over-training: Gadre et al. (2024).

use std::collections::BTreeMap;
use std::path::Path;

use datasets::scaling::{OvertrainingRun, load_overtraining};

use super::figures;
use super::report::{
    HeldOutErrors, MeanError, OvertrainingAccuracy, OvertrainingForecast, OvertrainingSection,
    OvertrainingSet,
};
use super::{Clock, Figure, Step, StudyError, logspace};
use crate::asymptotic::{AsymptoticConfig, AsymptoticLaw, fit_asymptotic, fit_asymptotic_shared};
use crate::chinchilla::{ChinchillaConfig, fit_chinchilla};
use crate::points::RunPoint;
use crate::sigmoid::{RichardsConfig, fit_richards};
use figure::{Marker, Plot, Scale, color};

/// The validation loss the study uses (C4).
const OT_LOSS: &str = "eval_data/c4_val";
/// Runs with at most this many parameters are fitted; the larger ones are forecast.
const OT_SMALL_MAX_PARAMS: f64 = 5e8;

/// A run with its C4 loss.
struct Run<'a> {
    run: &'a OvertrainingRun,
    loss: f64,
}

/// The over-training section: per training set, Approach 3 and per-multiplier asymptotic laws
/// forecasting the large runs; then loss → mean downstream accuracy.
pub(super) fn run(
    dir: &Path,
    grid: &crate::chinchilla::InitGrid,
    clock: &mut Clock<'_>,
    figs: &mut Vec<Figure>,
) -> Result<OvertrainingSection, StudyError> {
    clock.say("Over-training (Gadre et al. 2024)");
    let path = dir.join("scaling_overtraining_gadre2024");
    let study = load_overtraining(&path)
        .map_err(|source| StudyError::Load {
            dataset: "over-training (Gadre et al. 2024)".into(),
            path: path.clone(),
            source: Box::new(source),
        })?
        .data;
    let runs: Vec<Run> = study
        .runs
        .iter()
        .map(|run| match run.losses.get(OT_LOSS) {
            Some(&loss) => Ok(Run { run, loss }),
            None => Err(StudyError::Invalid {
                path: path.clone(),
                reason: format!("run `{}` has no `{OT_LOSS}` loss", run.name),
            }),
        })
        .collect::<Result<_, _>>()?;
    let cfg = ChinchillaConfig {
        grid: grid.clone(),
        ..ChinchillaConfig::default()
    };
    let mut all_a3 = Vec::new();
    let mut all_asym = Vec::new();
    let mut all_indep = Vec::new();
    let mut sets_out = Vec::new();
    let mut figure_done = false;
    let sets: Vec<String> = {
        let mut v: Vec<String> = runs.iter().map(|r| r.run.dataset.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    for set in &sets {
        let runs: Vec<&Run> = runs.iter().filter(|r| &r.run.dataset == set).collect();
        let (small, mut large): (Vec<&Run>, Vec<&Run>) = runs
            .iter()
            .partition(|r| r.run.params <= OT_SMALL_MAX_PARAMS);
        let train: Vec<RunPoint> = small
            .iter()
            .map(|r| RunPoint::new(r.run.params, r.run.tokens, r.run.flops, r.loss))
            .collect();
        let a3 = clock
            .time(
                &format!(
                    "Approach 3, {} starts ({set}, {} runs)",
                    cfg.grid.len(),
                    train.len()
                ),
                || fit_chinchilla(&train, &cfg),
            )
            .step(&format!("over-training Approach 3 ({set})"))?;
        // One curve per multiplier.
        let mut by_m: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for r in &small {
            let e = by_m.entry(format!("{}", r.run.multiplier)).or_default();
            e.0.push(r.run.flops);
            e.1.push(r.loss);
        }
        let mut keys: Vec<String> = by_m.keys().cloned().collect();
        keys.sort_by(|a, b| {
            let (x, y): (f64, f64) = (a.parse().unwrap_or(0.0), b.parse().unwrap_or(0.0));
            x.total_cmp(&y)
        });
        let curves: Vec<(&[f64], &[f64])> = keys
            .iter()
            .filter_map(|k| by_m.get(k))
            .map(|(c, l)| (c.as_slice(), l.as_slice()))
            .collect();
        let shared = fit_asymptotic_shared(&curves, &AsymptoticConfig::default())
            .step(&format!("over-training shared-floor law ({set})"))?;
        let indep: Vec<AsymptoticLaw> = curves
            .iter()
            .map(|(c, l)| fit_asymptotic(c, l, &AsymptoticConfig::default()))
            .collect::<crate::error::Result<_>>()
            .step(&format!("over-training per-curve law ({set})"))?;
        large.sort_by(|a, b| {
            a.run
                .params
                .total_cmp(&b.run.params)
                .then(a.run.multiplier.total_cmp(&b.run.multiplier))
        });
        let mut held_out = Vec::new();
        for r in &large {
            let obs = r.loss;
            let pa3 = a3.law.loss(r.run.params, r.run.tokens);
            all_a3.push((pa3 / obs - 1.0).abs());
            let key = format!("{}", r.run.multiplier);
            let pos = keys.iter().position(|k| *k == key);
            let predict = |law: Option<&AsymptoticLaw>, acc: &mut Vec<f64>| {
                law.map(|l| {
                    let p = l.predict(r.run.flops);
                    acc.push((p / obs - 1.0).abs());
                    p
                })
            };
            let per_curve_floor = predict(pos.and_then(|i| indep.get(i)), &mut all_indep);
            let shared_floor = predict(pos.and_then(|i| shared.curves.get(i)), &mut all_asym);
            held_out.push(OvertrainingForecast {
                model_config: r.run.model_config.clone(),
                params: r.run.params,
                multiplier: r.run.multiplier,
                observed: obs,
                approach3: pa3,
                per_curve_floor,
                shared_floor,
            });
        }
        if !figure_done {
            figure_done = true;
            figs.push(multiplier_figure(
                set, &runs, &large, &keys, &by_m, &indep, &shared,
            ));
        }
        sets_out.push(OvertrainingSet {
            dataset: set.clone(),
            train_runs: train.len(),
            approach3: a3,
            multipliers: keys,
            per_curve: indep,
            shared,
            held_out,
        });
    }
    let mean = |v: &[f64]| MeanError {
        mean_abs_pct: 100.0 * v.iter().sum::<f64>() / v.len().max(1) as f64,
        runs: v.len(),
    };
    let errors = HeldOutErrors {
        approach3: mean(&all_a3),
        per_curve_floor: mean(&all_indep),
        shared_floor: mean(&all_asym),
    };

    // Loss → downstream accuracy.
    let tasks: Vec<(&String, f64)> = study
        .chance
        .iter()
        .filter(|(k, _)| runs.iter().all(|r| r.run.downstream.contains_key(*k)))
        .map(|(k, &c)| (k, c))
        .collect();
    if tasks.is_empty() {
        return Err(StudyError::Invalid {
            path,
            reason: "no downstream task with a chance level is scored for every run".into(),
        });
    }
    let floor = tasks.iter().map(|(_, c)| c).sum::<f64>() / tasks.len() as f64;
    let mean_acc = |r: &Run| {
        tasks
            .iter()
            .map(|(k, _)| r.run.downstream.get(*k).copied().unwrap_or(f64::NAN))
            .sum::<f64>()
            / tasks.len() as f64
    };
    let (small, large): (Vec<&Run>, Vec<&Run>) = runs
        .iter()
        .partition(|r| r.run.params <= OT_SMALL_MAX_PARAMS);
    if large.is_empty() {
        return Err(StudyError::Invalid {
            path,
            reason: "no run above the small-model size to hold out".into(),
        });
    }
    let x: Vec<f64> = small.iter().map(|r| -r.loss).collect();
    let y: Vec<f64> = small.iter().map(|r| mean_acc(r)).collect();
    let curve = fit_richards(&x, &y, &RichardsConfig::with_floor(floor))
        .step("over-training loss → accuracy")?;
    let errs: Vec<f64> = large
        .iter()
        .map(|r| curve.predict(-r.loss) - mean_acc(r))
        .collect();
    let mean_abs_error = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64;
    figs.push(figures::sigmoid(
        "overtraining_sigmoid.svg",
        "Gadre et al.: C4 loss → mean downstream accuracy",
        "−C4 validation loss",
        &curve,
        (&x, &y),
        (
            &large.iter().map(|r| -r.loss).collect::<Vec<_>>(),
            &large.iter().map(|r| mean_acc(r)).collect::<Vec<_>>(),
        ),
    ));
    Ok(OvertrainingSection {
        runs: runs.len(),
        loss_key: OT_LOSS.to_string(),
        sets: sets_out,
        errors,
        accuracy: OvertrainingAccuracy {
            tasks: tasks.len(),
            floor,
            train_runs: small.len(),
            curve,
            held_out_runs: large.len(),
            mean_abs_error,
            max_abs_error: errs.iter().map(|e| e.abs()).fold(0.0, f64::max),
        },
    })
}

/// The first training set's per-multiplier laws (own floor solid, shared floor dashed) with
/// the fitted and held-out runs.
fn multiplier_figure(
    set: &str,
    runs: &[&Run],
    large: &[&Run],
    keys: &[String],
    by_m: &BTreeMap<String, (Vec<f64>, Vec<f64>)>,
    indep: &[AsymptoticLaw],
    shared: &crate::asymptotic::SharedAsymptotic,
) -> Figure {
    let mut p = Plot::new(
        &format!("Over-training ({set}): asymptotic law per token multiplier"),
        "compute C = 6ND (FLOPs)",
        "C4 validation loss",
    );
    p.x_scale = Scale::Log;
    let c_hi = runs.iter().map(|r| r.run.flops).fold(0.0, f64::max) * 1.5;
    for (i, k) in keys.iter().enumerate() {
        let (Some((c, l)), Some(own), Some(common)) =
            (by_m.get(k), indep.get(i), shared.curves.get(i))
        else {
            continue;
        };
        let col = color(i);
        p.points(c, l, col, &format!("M = {k}"));
        let g = logspace(c.iter().copied().fold(f64::INFINITY, f64::min), c_hi, 40);
        p.line(
            &g,
            &g.iter().map(|&x| own.predict(x)).collect::<Vec<_>>(),
            col,
            "",
        );
        p.styled_line(
            &g,
            &g.iter().map(|&x| common.predict(x)).collect::<Vec<_>>(),
            col,
            "",
            1.0,
            true,
        );
        let held: Vec<&&Run> = large
            .iter()
            .filter(|r| format!("{}", r.run.multiplier) == *k)
            .collect();
        if !held.is_empty() {
            p.markers(
                &held.iter().map(|r| r.run.flops).collect::<Vec<_>>(),
                &held.iter().map(|r| r.loss).collect::<Vec<_>>(),
                col,
                "",
                Marker::Diamond,
                5.0,
            );
        }
    }
    if shared.l_inf > 0.0 {
        p.hline(shared.l_inf, "#777", "shared L∞");
    }
    p.note("circles: fitted (N ≤ 412M); diamonds: held-out 1.4B / 6.9B; solid: own floor, dashed: shared floor");
    figures::figure("overtraining.svg", &p)
}
