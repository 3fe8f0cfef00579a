//! The study's figures (and the one fit that is drawn as it is made: the asymptotic law with
//! its bootstrap band).

use super::{Clock, Figure, StudyError, logspace, sci};
use crate::asymptotic::{AsymptoticConfig, AsymptoticLaw, fit_asymptotic};
use crate::bootstrap::{BootstrapConfig, Interval, bootstrap};
use crate::chinchilla::ChinchillaLaw;
use crate::frontier::Frontier;
use crate::isoflop::IsoFlopFit;
use crate::points::RunPoint;
use crate::sigmoid::RichardsCurve;
use figure::{LegendPos, Marker, Plot, Scale, color};

/// `plot` rendered as the figure `file_name`.
pub(super) fn figure(file_name: &str, plot: &Plot) -> Figure {
    Figure {
        file_name: file_name.to_string(),
        svg: plot.render(),
    }
}

/// IsoFLOP profiles: each bucket's runs, its parabola in log10 D and its optimum.
pub(super) fn isoflop(
    file_name: &str,
    title: &str,
    points: &[RunPoint],
    fits: &[IsoFlopFit],
) -> Figure {
    let mut p = Plot::new(title, "training tokens D", "loss");
    p.x_scale = Scale::Log;
    for (i, f) in fits.iter().enumerate() {
        let c = color(i);
        let pts: Vec<&RunPoint> = points
            .iter()
            .filter(|q| {
                let lt = q.tokens.log10();
                (q.compute.log10() - f.compute.log10()).abs() < 0.1
                    && lt >= f.log10_tokens_range.0 - 1e-9
                    && lt <= f.log10_tokens_range.1 + 1e-9
            })
            .collect();
        let xs: Vec<f64> = pts.iter().map(|q| q.tokens).collect();
        let ys: Vec<f64> = pts.iter().map(|q| q.loss).collect();
        p.points(&xs, &ys, c, &format!("C = {}", sci(f.compute)));
        let grid = logspace(
            10f64.powf(f.log10_tokens_range.0),
            10f64.powf(f.log10_tokens_range.1),
            60,
        );
        let yh: Vec<f64> = grid.iter().map(|&d| f.loss_at(d)).collect();
        p.line(&grid, &yh, c, "");
        p.markers(
            &[f.tokens_opt],
            &[f.loss_opt],
            "#000",
            "",
            Marker::Cross,
            4.0,
        );
    }
    p.note("parabola in log10 D per compute bucket; × = clipped optimum");
    figure(file_name, &p)
}

/// The compute-optimal frontier: bucket optima, the Approach-2 power laws and (dashed) the
/// Approach-3 law's frontier. `fits` must not be empty.
pub(super) fn frontier(
    file_name: &str,
    fits: &[IsoFlopFit],
    frontier: &Frontier,
    a3: Option<&ChinchillaLaw>,
) -> Figure {
    let mut p = Plot::new(
        "Compute-optimal frontier",
        "compute C (FLOPs)",
        "N* (params) / D* (tokens)",
    );
    p.x_scale = Scale::Log;
    p.y_scale = Scale::Log;
    p.legend_pos = LegendPos::BottomRight;
    let c: Vec<f64> = fits.iter().map(|f| f.compute).collect();
    let first = c.first().copied().unwrap_or(f64::NAN);
    let last = c.last().copied().unwrap_or(f64::NAN);
    let grid = logspace(first / 2.0, last * 10.0, 50);
    p.points(
        &c,
        &fits.iter().map(|f| f.params_opt).collect::<Vec<_>>(),
        color(0),
        "N* (IsoFLOP optima)",
    );
    p.points(
        &c,
        &fits.iter().map(|f| f.tokens_opt).collect::<Vec<_>>(),
        color(1),
        "D* (IsoFLOP optima)",
    );
    p.line(
        &grid,
        &grid
            .iter()
            .map(|&x| frontier.params.at(x))
            .collect::<Vec<_>>(),
        color(0),
        &format!("Approach 2: N ∝ C^{:.3}", frontier.a()),
    );
    p.line(
        &grid,
        &grid
            .iter()
            .map(|&x| frontier.tokens.at(x))
            .collect::<Vec<_>>(),
        color(1),
        &format!("Approach 2: D ∝ C^{:.3}", frontier.b()),
    );
    if let Some(law) = a3 {
        let (a, b) = law.frontier_exponents();
        p.styled_line(
            &grid,
            &grid
                .iter()
                .map(|&x| law.optimal_params(x))
                .collect::<Vec<_>>(),
            color(0),
            &format!("Approach 3: N ∝ C^{a:.3}"),
            1.5,
            true,
        );
        p.styled_line(
            &grid,
            &grid
                .iter()
                .map(|&x| law.optimal_tokens(x))
                .collect::<Vec<_>>(),
            color(1),
            &format!("Approach 3: D ∝ C^{b:.3}"),
            1.5,
            true,
        );
    }
    figure(file_name, &p)
}

/// What [`law_with_band`] fits and draws.
pub(super) struct BandInput<'a> {
    /// Figure file name.
    pub file_name: &'a str,
    /// Figure title (also names the timing).
    pub title: &'a str,
    /// Compute of the fitted points.
    pub c: &'a [f64],
    /// Loss of the fitted points.
    pub l: &'a [f64],
    /// Held-out (compute, loss) points.
    pub held: &'a [(f64, f64)],
    /// Bootstrap replicates.
    pub replicates: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

/// Asymptotic law through (C, L*) with a bootstrap band over the points, drawn with the
/// held-out points. Returns the law, its band at each held-out compute, and the figure.
pub(super) fn law_with_band(
    input: &BandInput<'_>,
    clock: &mut Clock<'_>,
) -> Result<(AsymptoticLaw, Vec<Interval>, Figure), StudyError> {
    let BandInput {
        file_name,
        title,
        c,
        l,
        held,
        replicates,
        seed,
    } = *input;
    let cfg = AsymptoticConfig::default();
    let law = fit_asymptotic(c, l, &cfg).map_err(|source| StudyError::Fit {
        step: title.to_string(),
        source,
    })?;
    // A successful fit has at least 3 points.
    let (c_first, c_last) = (c[0], c[c.len() - 1]);
    let c_max = held.iter().map(|h| h.0).fold(c_last, f64::max) * 3.0;
    let grid = logspace(c_first / 2.0, c_max, 60);
    let mut targets = grid.clone();
    targets.extend(held.iter().map(|h| h.0));
    let samples = clock
        .time(
            &format!("bootstrap asymptotic law ({replicates} reps): {title}"),
            || {
                bootstrap(
                    c.len(),
                    &BootstrapConfig {
                        replicates,
                        seed,
                        ..BootstrapConfig::default()
                    },
                    |idx| {
                        let mut u: Vec<usize> = idx.to_vec();
                        u.sort_unstable();
                        u.dedup();
                        if u.len() < 3 {
                            return None;
                        }
                        let cb: Vec<f64> = idx.iter().map(|&i| c[i]).collect();
                        let lb: Vec<f64> = idx.iter().map(|&i| l[i]).collect();
                        let f = fit_asymptotic(&cb, &lb, &AsymptoticConfig { grid: 100, ..cfg })
                            .ok()?;
                        Some(targets.iter().map(|&x| f.predict(x)).collect::<Vec<f64>>())
                    },
                )
            },
        )
        .map_err(|source| StudyError::Fit {
            step: format!("bootstrap of {title}"),
            source,
        })?;
    let bands: Vec<Interval> = (0..targets.len())
        .map(|k| samples.interval(law.predict(targets[k]), |v| v[k]))
        .collect();
    let mut p = Plot::new(
        title,
        "compute C (FLOPs)",
        "loss at the compute-optimal allocation",
    );
    p.x_scale = Scale::Log;
    let n = grid.len();
    p.band(
        &grid,
        &bands[..n].iter().map(|b| b.lo).collect::<Vec<_>>(),
        &bands[..n].iter().map(|b| b.hi).collect::<Vec<_>>(),
        color(0),
        "95% bootstrap band",
    );
    p.line(
        &grid,
        &grid.iter().map(|&x| law.predict(x)).collect::<Vec<_>>(),
        color(0),
        &format!("L = {:.3} + {}·C^-{:.4}", law.l_inf, sci(law.a), law.alpha),
    );
    p.points(c, l, color(0), "fitted optima");
    if let Some(first_held) = held.first() {
        p.markers(
            &held.iter().map(|h| h.0).collect::<Vec<_>>(),
            &held.iter().map(|h| h.1).collect::<Vec<_>>(),
            color(3),
            "held out",
            Marker::Diamond,
            5.0,
        );
        p.vline((c_last * first_held.0).sqrt(), "#333", "");
    }
    p.hline(law.l_inf, "#777", "L∞");
    Ok((law, bands[n..].to_vec(), figure(file_name, &p)))
}

/// A fitted Richards curve with its fitted and held-out points.
pub(super) fn sigmoid(
    file_name: &str,
    title: &str,
    x_label: &str,
    curve: &RichardsCurve,
    train: (&[f64], &[f64]),
    held: (&[f64], &[f64]),
) -> Figure {
    let mut p = Plot::new(title, x_label, "accuracy");
    p.legend_pos = LegendPos::TopLeft;
    let lo = train
        .0
        .iter()
        .chain(held.0)
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = train
        .0
        .iter()
        .chain(held.0)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.1 * (hi - lo);
    let g: Vec<f64> = (0..100)
        .map(|i| lo - pad + (hi - lo + 2.0 * pad) * i as f64 / 99.0)
        .collect();
    p.points(train.0, train.1, color(0), "fitted");
    p.markers(held.0, held.1, color(3), "held out", Marker::Diamond, 5.0);
    p.line(
        &g,
        &g.iter().map(|&x| curve.predict(x)).collect::<Vec<_>>(),
        color(0),
        &format!("Richards k={:.2} v={:.2}", curve.k, curve.v),
    );
    p.hline(curve.floor, "#777", "chance");
    figure(file_name, &p)
}
