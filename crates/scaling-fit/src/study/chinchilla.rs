//! Chinchilla: Epoch AI's digitised runs of Hoffmann et al. (2022).

use std::path::Path;

use datasets::scaling::{EpochChinchillaOptions, load_chinchilla_epoch};

use super::figures::{self, BandInput};
use super::report::{
    Approach3, ChinchillaForecast, ChinchillaSection, FrontierExponents, HeldOutOptimum,
    NamedInterval, SplitForecast,
};
use super::{Clock, Figure, Step, StudyConfig, StudyError, to_points};
use crate::bootstrap::{BootstrapConfig, bootstrap};
use crate::chinchilla::{ChinchillaConfig, ChinchillaFit, ChinchillaLaw, InitGrid};
use crate::chinchilla::{fit_chinchilla, fit_chinchilla_from};
use crate::frontier::fit_frontier;
use crate::isoflop::{IsoFlopFit, fit_isoflops};
use crate::points::{RunPoint, bucket_by_budgets};

/// Chinchilla's IsoFLOP budgets (Hoffmann et al. 2022, §3.2).
const CHINCHILLA_BUDGETS: [f64; 9] = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21];

/// Buckets with compute up to this feed the asymptotic law; the larger ones are forecast.
const LAW_MAX_COMPUTE: f64 = 1e20;

/// Runs with compute up to this feed the Approach-3 refit; the larger ones are predicted.
const SPLIT_MAX_COMPUTE: f64 = 1.5e21;

/// Loads Epoch AI's runs from `dir/chinchilla_scaling` with `opts`.
pub(super) fn load(dir: &Path, opts: &EpochChinchillaOptions) -> Result<Vec<RunPoint>, StudyError> {
    Ok(to_points(&load_epoch(dir, opts)?.data))
}

fn load_epoch(
    dir: &Path,
    opts: &EpochChinchillaOptions,
) -> Result<datasets::outcome::Loaded<Vec<datasets::scaling::ScalingRun>>, StudyError> {
    let path = dir.join("chinchilla_scaling");
    load_chinchilla_epoch(&path, opts).map_err(|source| StudyError::Load {
        dataset: "Chinchilla (Epoch AI)".into(),
        path,
        source: Box::new(source),
    })
}

/// Bootstraps the Approach-3 law over runs, refitting from the full-data optimum, the two
/// published laws and every 8th point of the coarse grid. Intervals for E, A, B, α, β, a, b.
pub(super) fn approach3_bootstrap(
    points: &[RunPoint],
    fit: &ChinchillaFit,
    config: &StudyConfig,
    clock: &mut Clock<'_>,
) -> Result<Approach3, StudyError> {
    let boot = config.bootstrap;
    // The full-data optimum, the two published laws, and every 8th point of the coarse grid
    // (guards against a resample whose optimum moved to another basin).
    let mut starts = vec![
        fit.theta,
        ChinchillaLaw::HOFFMANN_2022.to_theta(),
        ChinchillaLaw::BESIROGLU_2024.to_theta(),
    ];
    starts.extend(InitGrid::coarse().starts().into_iter().step_by(8));
    let cfg = ChinchillaConfig {
        threads: 1,
        ..ChinchillaConfig::default()
    };
    let samples = clock
        .time(
            &format!(
                "bootstrap Approach 3 ({boot} reps × {} starts)",
                starts.len()
            ),
            || {
                bootstrap(
                    points.len(),
                    &BootstrapConfig {
                        replicates: boot,
                        seed: config.bootstrap_seed,
                        ..BootstrapConfig::default()
                    },
                    |idx| {
                        let pts: Vec<RunPoint> = idx.iter().map(|&i| points[i]).collect();
                        fit_chinchilla_from(&pts, &starts, &cfg).ok().map(|f| f.law)
                    },
                )
            },
        )
        .step("bootstrap of Approach 3")?;
    let l = fit.law;
    let (a, b) = l.frontier_exponents();
    let named = |name: &str, interval| NamedInterval {
        name: name.to_string(),
        interval,
    };
    Ok(Approach3 {
        fit: fit.clone(),
        replicates: boot,
        failed_replicates: samples.failed,
        bootstrap_starts: starts.len(),
        bootstrap_grid_starts: starts.len() - 3,
        intervals: vec![
            named("E", samples.interval(l.e, |s| s.e)),
            named("A", samples.interval(l.a, |s| s.a)),
            named("B", samples.interval(l.b, |s| s.b)),
            named("α", samples.interval(l.alpha, |s| s.alpha)),
            named("β", samples.interval(l.beta, |s| s.beta)),
            named(
                "a = β/(α+β)",
                samples.interval(a, |s| s.frontier_exponents().0),
            ),
            named(
                "b = α/(α+β)",
                samples.interval(b, |s| s.frontier_exponents().1),
            ),
        ],
    })
}

/// The Chinchilla section: Approach 2, Approach 3 with intervals, held-out forecasts.
pub(super) fn run(
    dir: &Path,
    config: &StudyConfig,
    clock: &mut Clock<'_>,
    figs: &mut Vec<Figure>,
) -> Result<ChinchillaSection, StudyError> {
    clock.say("Chinchilla (Epoch AI extraction)");
    let loaded = load_epoch(dir, &EpochChinchillaOptions::default())?;
    let points = to_points(&loaded.data);

    // Approach 2.
    let buckets =
        bucket_by_budgets(&points, &CHINCHILLA_BUDGETS, 0.1).step("Chinchilla compute buckets")?;
    let fits = clock
        .time("IsoFLOP parabolas (Chinchilla)", || {
            fit_isoflops(&buckets, 3)
        })
        .step("Chinchilla IsoFLOP parabolas")?;
    let frontier = fit_frontier(&fits).step("Chinchilla frontier")?;
    let boot_front = bootstrap(
        fits.len(),
        &BootstrapConfig {
            replicates: config.frontier_bootstrap,
            seed: config.bootstrap_seed,
            ..BootstrapConfig::default()
        },
        |idx| {
            let sub: Vec<IsoFlopFit> = idx.iter().map(|&i| fits[i].clone()).collect();
            fit_frontier(&sub).ok().map(|f| (f.a(), f.b()))
        },
    )
    .step("bootstrap of the Chinchilla frontier")?;
    let exponents = FrontierExponents {
        a: boot_front.interval(frontier.a(), |s| s.0),
        b: boot_front.interval(frontier.b(), |s| s.1),
        a_student_t: frontier
            .params
            .exponent_interval(0.95)
            .unwrap_or((f64::NAN, f64::NAN)),
        replicates: config.frontier_bootstrap,
    };
    figs.push(figures::isoflop(
        "chinchilla_isoflop.svg",
        "Chinchilla IsoFLOP profiles (Epoch extraction)",
        &points,
        &fits,
    ));

    // Approach 3.
    let cfg = ChinchillaConfig {
        grid: config.grid.clone(),
        ..ChinchillaConfig::default()
    };
    let n_starts = cfg.grid.len();
    let fit = clock
        .time(
            &format!("Approach 3, {n_starts} starts, all cores (Chinchilla)"),
            || fit_chinchilla(&points, &cfg),
        )
        .step("Chinchilla Approach 3")?;
    let approach3 = approach3_bootstrap(&points, &fit, config, clock)?;
    // The same fit on all runs, outliers included, for comparison.
    let all = load(dir, &EpochChinchillaOptions::all())?;
    let fit_all = clock
        .time(
            &format!("Approach 3, {n_starts} starts, all {} points", all.len()),
            || fit_chinchilla(&all, &cfg),
        )
        .step("Chinchilla Approach 3 on all runs")?;
    figs.push(figures::frontier(
        "chinchilla_frontier.svg",
        &fits,
        &frontier,
        Some(&fit.law),
    ));

    // Held-out forecasts.
    let (train, test): (Vec<&IsoFlopFit>, Vec<&IsoFlopFit>) =
        fits.iter().partition(|f| f.compute <= LAW_MAX_COMPUTE);
    let c: Vec<f64> = train.iter().map(|f| f.compute).collect();
    let l: Vec<f64> = train.iter().map(|f| f.loss_opt).collect();
    let held: Vec<(f64, f64)> = test.iter().map(|f| (f.compute, f.loss_opt)).collect();
    let (law, bands, fig) = figures::law_with_band(
        &BandInput {
            file_name: "chinchilla_law.svg",
            title: "Chinchilla: asymptotic law through IsoFLOP optima ≤ 1e20",
            c: &c,
            l: &l,
            held: &held,
            replicates: config.bootstrap.max(config.band_bootstrap_min),
            seed: config.bootstrap_seed,
        },
        clock,
    )?;
    figs.push(fig);
    let held_out = held
        .iter()
        .zip(bands)
        .map(|(&(compute, observed), forecast)| HeldOutOptimum {
            compute,
            observed,
            forecast,
        })
        .collect();
    let (tr, te): (Vec<RunPoint>, Vec<RunPoint>) =
        points.iter().partition(|p| p.compute <= SPLIT_MAX_COMPUTE);
    if te.is_empty() {
        return Err(StudyError::Invalid {
            path: dir.join("chinchilla_scaling"),
            reason: "no run above 1.5e21 FLOPs to hold out".into(),
        });
    }
    let a3_small = clock
        .time(
            &format!("Approach 3 on runs ≤ 1.5e21 ({n_starts} starts)"),
            || fit_chinchilla(&tr, &cfg),
        )
        .step("Chinchilla Approach 3 on runs ≤ 1.5e21")?;
    let errs: Vec<f64> = te
        .iter()
        .map(|p| a3_small.law.loss(p.params, p.tokens) / p.loss - 1.0)
        .collect();
    let mean_abs_error = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64;
    let max_abs_error = errs.iter().map(|e| e.abs()).fold(0.0, f64::max);

    Ok(ChinchillaSection {
        rows_read: loaded.report.rows_read,
        kept: points.len(),
        skipped: loaded.report.skipped,
        isoflop: fits,
        frontier,
        exponents,
        approach3,
        all_runs: all.len(),
        all_runs_law: fit_all.law,
        forecast: ChinchillaForecast {
            law,
            held_out,
            approach3: SplitForecast {
                max_compute: SPLIT_MAX_COMPUTE,
                train_runs: tr.len(),
                test_runs: te.len(),
                law: a3_small.law,
                mean_abs_error,
                max_abs_error,
            },
        },
    })
}
