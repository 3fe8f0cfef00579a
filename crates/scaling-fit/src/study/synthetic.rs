//! The seeded synthetic ladder drawn from the Chinchilla paper's law.

use super::chinchilla::approach3_bootstrap;
use super::figures::{self, BandInput};
use super::report::{SyntheticAccuracy, SyntheticHeldOut, SyntheticSection};
use super::{Clock, Figure, Step, StudyConfig, StudyError};
use crate::chinchilla::{ChinchillaConfig, ChinchillaLaw, fit_chinchilla};
use crate::frontier::fit_frontier;
use crate::isoflop::fit_isoflops;
use crate::points::bucket_by_rounding;
use crate::sigmoid::{RichardsConfig, RichardsCurve, fit_richards};
use crate::synthetic::{LadderSpec, generate_ladder, optimal_runs};

/// Multiplicative noise σ on the ladder's losses.
const NOISE_SD: f64 = 0.005;

/// Held-out compute-optimal budgets (10–1000× the ladder's largest).
const HELD_OUT: [f64; 3] = [1e22, 1e23, 1e24];

/// The true loss → accuracy map.
const ACCURACY_TRUTH: RichardsCurve = RichardsCurve {
    k: 4.0,
    x0: -2.3,
    v: 1.5,
    floor: 0.25,
    ceiling: 0.85,
    rmse: 0.0,
};

/// The synthetic section: the whole pipeline on a ladder with known parameters.
pub(super) fn run(
    seed: u64,
    config: &StudyConfig,
    clock: &mut Clock<'_>,
    figs: &mut Vec<Figure>,
) -> Result<SyntheticSection, StudyError> {
    let truth = ChinchillaLaw::HOFFMANN_2022;
    let mut spec = LadderSpec::default_with_seed(seed);
    spec.noise_sd = NOISE_SD;
    let points = generate_ladder(&spec).step("synthetic ladder")?;
    let held_runs = optimal_runs(&truth, &HELD_OUT, 0.0, 1);
    let fits = bucket_by_rounding(&points, 2)
        .and_then(|b| fit_isoflops(&b, 3))
        .step("synthetic IsoFLOP parabolas")?;
    let frontier = fit_frontier(&fits).step("synthetic frontier")?;
    let cfg = ChinchillaConfig {
        grid: config.grid.clone(),
        ..ChinchillaConfig::default()
    };
    let fit = clock
        .time(
            &format!("Approach 3, {} starts (synthetic)", cfg.grid.len()),
            || fit_chinchilla(&points, &cfg),
        )
        .step("synthetic Approach 3")?;
    let approach3 = approach3_bootstrap(&points, &fit, config, clock)?;
    figs.push(figures::isoflop(
        "synthetic_isoflop.svg",
        "Synthetic IsoFLOP profiles",
        &points,
        &fits,
    ));
    figs.push(figures::frontier(
        "synthetic_frontier.svg",
        &fits,
        &frontier,
        Some(&fit.law),
    ));
    let c: Vec<f64> = fits.iter().map(|f| f.compute).collect();
    let l: Vec<f64> = fits.iter().map(|f| f.loss_opt).collect();
    let held: Vec<(f64, f64)> = held_runs.iter().map(|r| (r.compute, r.loss)).collect();
    let (law, bands, fig) = figures::law_with_band(
        &BandInput {
            file_name: "synthetic_law.svg",
            title: "Synthetic: asymptotic law through IsoFLOP optima",
            c: &c,
            l: &l,
            held: &held,
            replicates: config.bootstrap.max(config.band_bootstrap_min),
            seed: config.bootstrap_seed,
        },
        clock,
    )?;
    figs.push(fig);
    let held_out = held_runs
        .iter()
        .zip(bands)
        .map(|(r, forecast)| SyntheticHeldOut {
            compute: r.compute,
            true_loss: r.loss,
            forecast,
            approach3: fit.law.optimal_loss(r.compute),
        })
        .collect();

    // Loss → accuracy.
    let x: Vec<f64> = points.iter().map(|p| -p.loss).collect();
    let y: Vec<f64> = x.iter().map(|&v| ACCURACY_TRUTH.predict(v)).collect();
    let curve = fit_richards(&x, &y, &RichardsConfig::with_floor(ACCURACY_TRUTH.floor))
        .step("synthetic loss → accuracy")?;
    let hx: Vec<f64> = held_runs.iter().map(|r| -r.loss).collect();
    let hy: Vec<f64> = hx.iter().map(|&v| ACCURACY_TRUTH.predict(v)).collect();
    let loss_at_half = -curve
        .inverse(0.5)
        .step("synthetic loss → accuracy inverse")?;
    figs.push(figures::sigmoid(
        "synthetic_sigmoid.svg",
        "Synthetic loss → accuracy",
        "−loss",
        &curve,
        (&x, &y),
        (&hx, &hy),
    ));
    Ok(SyntheticSection {
        truth,
        seed,
        budgets: spec.budgets.len(),
        runs_per_budget: spec.runs_per_budget,
        half_width_dex: spec.half_width_dex,
        noise_sd: spec.noise_sd,
        isoflop: fits,
        frontier,
        approach3,
        asymptotic: law,
        held_out,
        accuracy: SyntheticAccuracy {
            truth: ACCURACY_TRUTH,
            curve,
            predicted: hx.iter().map(|&v| curve.predict(v)).collect(),
            true_accuracy: hy,
            loss_at_half,
        },
    })
}
