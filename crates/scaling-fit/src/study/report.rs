//! The study's typed results, their Markdown report and the files they are written to.

use std::fmt::Write as _;
use std::path::Path;

use datasets::outcome::SkipCount;

use super::{Figure, Source, StudyError, Timing, iv, pct, sci};
use crate::asymptotic::{AsymptoticLaw, SharedAsymptotic};
use crate::bootstrap::Interval;
use crate::chinchilla::{ChinchillaFit, ChinchillaLaw};
use crate::frontier::Frontier;
use crate::isoflop::IsoFlopFit;
use crate::sigmoid::RichardsCurve;

/// Everything the study fitted, its figures and its timings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StudyReport {
    /// The source the study ran on ([`Source::Auto`] resolved).
    pub source: Source,
    /// Chinchilla (Epoch AI's digitised runs); with a data folder.
    pub chinchilla: Option<ChinchillaSection>,
    /// Over-training (Gadre et al. 2024); with a data folder.
    pub overtraining: Option<OvertrainingSection>,
    /// Pythia loss → accuracy maps; with a data folder.
    pub pythia: Option<PythiaSection>,
    /// The seeded synthetic ladder; without a data folder.
    pub synthetic: Option<SyntheticSection>,
    /// The rendered figures, in the order they were made.
    pub figures: Vec<Figure>,
    /// Wall-clock time of the slow steps.
    pub timings: Vec<Timing>,
}

/// A bootstrap interval with the parameter it is for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NamedInterval {
    /// The parameter (`E`, `A`, `B`, `α`, `β`, `a = β/(α+β)`, `b = α/(α+β)`).
    pub name: String,
    /// Estimate and 95% percentile interval.
    pub interval: Interval,
}

/// An Approach-3 fit (the Chinchilla law by Huber/L-BFGS) with bootstrap intervals over runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Approach3 {
    /// The fit on all runs.
    pub fit: ChinchillaFit,
    /// Bootstrap replicates.
    pub replicates: usize,
    /// Replicates whose refit failed (left out of the intervals).
    pub failed_replicates: usize,
    /// L-BFGS starts of each refit.
    pub bootstrap_starts: usize,
    /// Of those, points of the coarse grid.
    pub bootstrap_grid_starts: usize,
    /// E, A, B, α, β and the frontier exponents a, b, in that order.
    pub intervals: Vec<NamedInterval>,
}

/// The Approach-2 frontier exponents with bootstrap (over buckets) and Student-t intervals.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FrontierExponents {
    /// a in N* ∝ C^a.
    pub a: Interval,
    /// b in D* ∝ C^b.
    pub b: Interval,
    /// Student-t 95% interval of a (NaN when not identified).
    pub a_student_t: (f64, f64),
    /// Bootstrap replicates.
    pub replicates: usize,
}

/// An IsoFLOP optimum held out of the asymptotic law's fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeldOutOptimum {
    /// Its compute budget.
    pub compute: f64,
    /// The observed loss at the optimum.
    pub observed: f64,
    /// The law's forecast with its 95% bootstrap band.
    pub forecast: Interval,
}

/// Approach 3 refitted on the smaller runs, predicting the larger ones.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitForecast {
    /// Runs with compute up to this are fitted.
    pub max_compute: f64,
    /// Fitted runs.
    pub train_runs: usize,
    /// Predicted runs.
    pub test_runs: usize,
    /// The refitted law.
    pub law: ChinchillaLaw,
    /// Mean absolute relative error on the predicted runs.
    pub mean_abs_error: f64,
    /// Largest absolute relative error on the predicted runs.
    pub max_abs_error: f64,
}

/// The Chinchilla section's held-out forecasts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChinchillaForecast {
    /// Asymptotic law L(C) = L∞ + A·C^(−α) through the IsoFLOP optima with C ≤ 1e20.
    pub law: AsymptoticLaw,
    /// Its forecasts of the larger buckets' optima.
    pub held_out: Vec<HeldOutOptimum>,
    /// Approach 3 on runs with C ≤ 1.5e21.
    pub approach3: SplitForecast,
}

/// Chinchilla: Epoch AI's digitised runs of Hoffmann et al. (2022).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChinchillaSection {
    /// Rows in the file.
    pub rows_read: usize,
    /// Runs kept.
    pub kept: usize,
    /// The rows the loader dropped, by rule.
    pub skipped: Vec<SkipCount>,
    /// One parabola per budget (Approach 2).
    pub isoflop: Vec<IsoFlopFit>,
    /// Power laws through the bucket optima.
    pub frontier: Frontier,
    /// The frontier's exponents with intervals.
    pub exponents: FrontierExponents,
    /// Approach 3 on the kept runs.
    pub approach3: Approach3,
    /// Runs in the file (outliers included).
    pub all_runs: usize,
    /// Approach 3 on all of them.
    pub all_runs_law: ChinchillaLaw,
    /// Held-out forecasts.
    pub forecast: ChinchillaForecast,
}

/// One held-out run of the over-training study and its three forecasts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OvertrainingForecast {
    /// Architecture, e.g. `open_lm_1b`.
    pub model_config: String,
    /// Parameters N.
    pub params: f64,
    /// Token multiplier M = D/(20N).
    pub multiplier: f64,
    /// Observed C4 validation loss.
    pub observed: f64,
    /// Approach 3's prediction.
    pub approach3: f64,
    /// The own-floor asymptotic law of its multiplier (none when no small model has it).
    pub per_curve_floor: Option<f64>,
    /// The shared-floor asymptotic law of its multiplier.
    pub shared_floor: Option<f64>,
}

/// The over-training study on one training set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OvertrainingSet {
    /// Training set (`c4_original`, `rpj`, `rw_original`).
    pub dataset: String,
    /// Runs fitted (N ≤ 412 M).
    pub train_runs: usize,
    /// Approach 3 on them.
    pub approach3: ChinchillaFit,
    /// Token multipliers with a curve, in increasing order.
    pub multipliers: Vec<String>,
    /// One asymptotic law per multiplier, each with its own floor.
    pub per_curve: Vec<AsymptoticLaw>,
    /// One law per multiplier with a floor shared by all.
    pub shared: SharedAsymptotic,
    /// The held-out larger runs.
    pub held_out: Vec<OvertrainingForecast>,
}

/// A mean absolute relative error in percent and the number of runs it is over.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeanError {
    /// Mean absolute error, in percent.
    pub mean_abs_pct: f64,
    /// Runs.
    pub runs: usize,
}

/// Held-out errors of the three over-training forecasts, over all training sets.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HeldOutErrors {
    /// Approach 3.
    pub approach3: MeanError,
    /// Per-curve-floor asymptotic laws.
    pub per_curve_floor: MeanError,
    /// Shared-floor asymptotic laws.
    pub shared_floor: MeanError,
}

/// The over-training study's loss → mean downstream accuracy map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OvertrainingAccuracy {
    /// Tasks averaged (those with a chance level that every run has).
    pub tasks: usize,
    /// Mean chance accuracy (the curve's floor).
    pub floor: f64,
    /// Runs fitted (N ≤ 412 M).
    pub train_runs: usize,
    /// The Richards curve of accuracy against −(C4 loss).
    pub curve: RichardsCurve,
    /// Larger runs predicted.
    pub held_out_runs: usize,
    /// Mean absolute error on them, in accuracy.
    pub mean_abs_error: f64,
    /// Largest absolute error on them.
    pub max_abs_error: f64,
}

/// Over-training: Gadre et al. (2024).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OvertrainingSection {
    /// Runs in the study.
    pub runs: usize,
    /// The validation loss used.
    pub loss_key: String,
    /// One entry per training set.
    pub sets: Vec<OvertrainingSet>,
    /// Held-out errors over all sets.
    pub errors: HeldOutErrors,
    /// Loss → downstream accuracy.
    pub accuracy: OvertrainingAccuracy,
}

/// An observed value and its prediction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ObservedPredicted {
    /// Observed.
    pub observed: f64,
    /// Predicted.
    pub predicted: f64,
}

/// The size-only map log10(parameters) → accuracy at the final checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum SizeOnlyFit {
    /// The curve and its predictions of the 12 B models.
    Fitted {
        /// The Richards curve.
        curve: RichardsCurve,
        /// Predictions of the 12 B models' final checkpoints.
        predictions: Vec<ObservedPredicted>,
    },
    /// The fit failed (the report says why).
    Failed {
        /// Why.
        reason: String,
    },
}

/// One task of the Pythia study.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PythiaTask {
    /// Task name, e.g. `arc_easy`.
    pub task: String,
    /// Chance accuracy (the curve's floor).
    pub chance: f64,
    /// (checkpoint, model) points fitted.
    pub fit_points: usize,
    /// Richards curve of accuracy against −ln(LAMBADA perplexity).
    pub curve: RichardsCurve,
    /// Mean absolute error on every 12 B checkpoint.
    pub checkpoints_mae: f64,
    /// The 12 B models' final checkpoints.
    pub finals: Vec<ObservedPredicted>,
    /// The size-only map.
    pub size_only: SizeOnlyFit,
    /// The figure's file name, for the tasks that have one.
    pub figure: Option<String>,
}

/// Pythia: LAMBADA log-perplexity → task accuracy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PythiaSection {
    /// The final training step.
    pub final_step: u64,
    /// One entry per task.
    pub tasks: Vec<PythiaTask>,
}

/// A noise-free compute-optimal run held out of the synthetic fits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyntheticHeldOut {
    /// Compute.
    pub compute: f64,
    /// True loss.
    pub true_loss: f64,
    /// The asymptotic law's forecast and 95% band.
    pub forecast: Interval,
    /// Approach 3's compute-optimal loss.
    pub approach3: f64,
}

/// The synthetic loss → accuracy map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyntheticAccuracy {
    /// The true Richards curve.
    pub truth: RichardsCurve,
    /// The fitted one.
    pub curve: RichardsCurve,
    /// Predicted accuracy at the held-out runs.
    pub predicted: Vec<f64>,
    /// True accuracy at the held-out runs.
    pub true_accuracy: Vec<f64>,
    /// The loss at which the fitted curve reaches accuracy 0.5.
    pub loss_at_half: f64,
}

/// The seeded synthetic ladder drawn from the Chinchilla paper's law.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyntheticSection {
    /// The law the ladder is drawn from.
    pub truth: ChinchillaLaw,
    /// Seed of the ladder.
    pub seed: u64,
    /// Compute budgets.
    pub budgets: usize,
    /// Runs per budget.
    pub runs_per_budget: usize,
    /// Half-width of each budget's sweep, in decades of N around the optimum.
    pub half_width_dex: f64,
    /// Multiplicative noise σ on the loss.
    pub noise_sd: f64,
    /// One parabola per budget (Approach 2).
    pub isoflop: Vec<IsoFlopFit>,
    /// Power laws through the bucket optima.
    pub frontier: Frontier,
    /// Approach 3 with bootstrap intervals.
    pub approach3: Approach3,
    /// Asymptotic law through the IsoFLOP optima.
    pub asymptotic: AsymptoticLaw,
    /// Held-out compute-optimal runs at 1e22, 1e23, 1e24 FLOPs.
    pub held_out: Vec<SyntheticHeldOut>,
    /// Loss → accuracy.
    pub accuracy: SyntheticAccuracy,
}

impl StudyReport {
    /// The Markdown report (`report.md`).
    pub fn to_markdown(&self) -> String {
        let mut md = String::from(
            "# Scaling laws\n\nGenerated by `scaling_laws` (crate `scaling-fit`).\n\n",
        );
        if let Some(s) = &self.chinchilla {
            s.markdown(&mut md);
        }
        if let Some(s) = &self.overtraining {
            s.markdown(&mut md);
        }
        if let Some(s) = &self.pythia {
            s.markdown(&mut md);
        }
        if let Some(s) = &self.synthetic {
            s.markdown(&mut md);
        }
        md.push_str("## Timings\n\n| step | seconds |\n|---|---:|\n");
        for t in &self.timings {
            let _ = writeln!(md, "| {} | {:.3} |", t.step, t.seconds);
        }
        md
    }

    /// The report as pretty-printed JSON (`summary.json`): every section and timing, the
    /// figures by file name only.
    pub fn to_json(&self) -> Result<String, StudyError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes `report.md`, `summary.json` and the SVG figures into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), StudyError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StudyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for f in &self.figures {
            let path = dir.join(&f.file_name);
            std::fs::write(&path, &f.svg).map_err(io(&path))?;
        }
        let path = dir.join("summary.json");
        let mut json = self.to_json()?;
        json.push('\n');
        std::fs::write(&path, json).map_err(io(&path))?;
        let path = dir.join("report.md");
        std::fs::write(&path, self.to_markdown()).map_err(io(&path))?;
        Ok(())
    }
}

/// The IsoFLOP table.
fn isoflop_table(md: &mut String, fits: &[IsoFlopFit]) {
    md.push_str("| budget C | runs | N* | D* | D*/N* | L* | curvature under / over | clipped |\n|---:|---:|---:|---:|---:|---:|---|---|\n");
    for f in fits {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.4} | {:.3} / {:.3} | {} |",
            sci(f.compute),
            f.n_points,
            sci(f.params_opt),
            sci(f.tokens_opt),
            f.tokens_opt / f.params_opt,
            f.loss_opt,
            f.a_under,
            f.a_over,
            if f.clipped { "yes" } else { "no" }
        );
    }
    md.push('\n');
}

/// The precision an interval row is printed with.
fn prec(i: &Interval) -> usize {
    if i.estimate.abs() > 10.0 { 1 } else { 4 }
}

impl ChinchillaSection {
    fn markdown(&self, md: &mut String) {
        md.push_str("## Chinchilla: Epoch AI's digitised runs\n\n");
        let _ = writeln!(
            md,
            "{} points read, {} kept: {}\n",
            self.rows_read,
            self.kept,
            self.skipped
                .iter()
                .map(|s| format!("{} × {} ({})", s.count, s.rule, s.examples.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        );
        md.push_str("### IsoFLOP profiles (Approach 2)\n\nRuns assigned to the nearest of the paper's nine budgets within ±0.1 decade.\n\n");
        isoflop_table(md, &self.isoflop);
        let (ta_lo, ta_hi) = self.exponents.a_student_t;
        let _ = writeln!(
            md,
            "| exponent | this fit [95% bootstrap over buckets] | Student-t 95% | Hoffmann et al. 2022 (Approach 2) |\n|---|---|---|---|\n| a (N* ∝ C^a) | {} | [{ta_lo:.3}, {ta_hi:.3}] | 0.49 [0.462, 0.534] |\n| b (D* ∝ C^b) | {} | | 0.51 [0.483, 0.529] |\n",
            iv(&self.exponents.a, 3),
            iv(&self.exponents.b, 3)
        );

        let h = ChinchillaLaw::HOFFMANN_2022;
        let e = ChinchillaLaw::BESIROGLU_2024;
        let (ha, hb) = h.frontier_exponents();
        let (ea, eb) = e.frontier_exponents();
        let published = [
            (h.e, e.e),
            (h.a, e.a),
            (h.b, e.b),
            (h.alpha, e.alpha),
            (h.beta, e.beta),
            (ha, ea),
            (hb, eb),
        ];
        let a3 = &self.approach3;
        let fit = &a3.fit;
        let _ = writeln!(
            md,
            "### Parametric law (Approach 3)\n\nHuber δ = 1e-3 on log loss, L-BFGS from {} starts ({} finished, {} reached the best objective {:.6e}). Intervals: 95% bootstrap over runs ({} replicates, each refitted by L-BFGS from the full-data optimum, the two published laws and {} points of the coarse grid).\n\n| parameter | this fit [95% CI] | Hoffmann et al. 2022 | Besiroglu et al. 2024 |\n|---|---|---:|---:|",
            fit.starts,
            fit.finished_starts,
            fit.starts_at_best,
            fit.objective,
            a3.replicates,
            a3.bootstrap_grid_starts
        );
        for (ni, (hv, ev)) in a3.intervals.iter().zip(published) {
            let i = &ni.interval;
            let _ = writeln!(
                md,
                "| {} | {} | {hv:.4} | {ev:.4} |",
                ni.name,
                iv(i, prec(i))
            );
        }
        let la = &self.all_runs_law;
        let _ = writeln!(
            md,
            "\nWith the {} outliers kept (all {} points) the same procedure gives E = {:.4}, A = {:.1}, B = {:.1}, α = {:.4}, β = {:.4} — β and B move far from both published fits; dropping the five reproduces Besiroglu et al.\n",
            self.all_runs.saturating_sub(self.kept),
            self.all_runs,
            la.e,
            la.a,
            la.b,
            la.alpha,
            la.beta
        );

        let fc = &self.forecast;
        md.push_str("### Held-out forecast\n\nAsymptotic law L(C) = L∞ + A·C^(−α) (floor searched, inner log-linear solve) through the IsoFLOP optima with C ≤ 1e20, forecasting the optima of the four larger buckets (3×–30× the largest fitted budget); and Approach 3 refitted on runs with C ≤ 1.5e21, predicting every run above.\n\n");
        let _ = writeln!(
            md,
            "Fitted law: L∞ = {:.4}, A = {:.4}, α = {:.4}.\n\n| held-out | observed | forecast [95% band] | error |\n|---|---:|---|---:|",
            fc.law.l_inf, fc.law.a, fc.law.alpha
        );
        for h in &fc.held_out {
            let b = &h.forecast;
            let _ = writeln!(
                md,
                "| IsoFLOP optimum at C = {} | {:.4} | {} | {} |",
                sci(h.compute),
                h.observed,
                iv(b, 4),
                pct(b.estimate / h.observed - 1.0)
            );
        }
        let s = &fc.approach3;
        let _ = writeln!(
            md,
            "| {} runs with C > 1.5e21 (Approach 3 on {} smaller runs) | | | mean abs {:.2}%, max {:.2}% |\n",
            s.test_runs,
            s.train_runs,
            100.0 * s.mean_abs_error,
            100.0 * s.max_abs_error
        );
        md.push_str("![IsoFLOP](chinchilla_isoflop.svg)\n![frontier](chinchilla_frontier.svg)\n![law](chinchilla_law.svg)\n\n");
    }
}

impl OvertrainingSection {
    fn markdown(&self, md: &mut String) {
        md.push_str("## Over-training: Gadre et al. (2024)\n\n");
        let _ = writeln!(
            md,
            "{} runs (3 training sets × N from 11 M to 6.9 B × token multipliers M = D/(20N) from 0.25 to 32). Loss: C4 validation (`{}`). Fitted on N ≤ 412 M; forecasts for the 1.4 B and 6.9 B runs.\n",
            self.runs, self.loss_key
        );
        md.push_str("Per-multiplier asymptotic laws L_M(C) = L∞ + A_M·C^(−α_M) through the 4 small models of each multiplier, with an independent floor per curve (the reference pipeline's final choice) and with one floor shared by all multipliers.\n\n| training set | held-out run | N | M | observed | Approach 3 | err | per-curve floor | err | shared floor | err |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for s in &self.sets {
            let set = &s.dataset;
            for r in &s.held_out {
                let obs = r.observed;
                let cell = |p: Option<f64>| match p {
                    Some(p) => format!("{p:.4} | {}", pct(p / obs - 1.0)),
                    None => "– | –".into(),
                };
                let _ = writeln!(
                    md,
                    "| {set} | {} | {} | {} | {obs:.4} | {:.4} | {} | {} | {} |",
                    r.model_config,
                    sci(r.params),
                    r.multiplier,
                    r.approach3,
                    pct(r.approach3 / obs - 1.0),
                    cell(r.per_curve_floor),
                    cell(r.shared_floor)
                );
            }
            let law = &s.approach3.law;
            let _ = writeln!(
                md,
                "| {set} | *fit* | | | | E={:.3} α={:.3} β={:.3} | | L∞ {} | | L∞={:.3} | |",
                law.e,
                law.alpha,
                law.beta,
                s.per_curve
                    .iter()
                    .map(|l| format!("{:.2}", l.l_inf))
                    .collect::<Vec<_>>()
                    .join("/"),
                s.shared.l_inf
            );
        }
        let e = &self.errors;
        let _ = writeln!(
            md,
            "\nMean absolute error on held-out runs: Approach 3 {:.2}% ({} runs), per-curve-floor law {:.2}% ({} runs), shared-floor law {:.2}% ({} runs).\n",
            e.approach3.mean_abs_pct,
            e.approach3.runs,
            e.per_curve_floor.mean_abs_pct,
            e.per_curve_floor.runs,
            e.shared_floor.mean_abs_pct,
            e.shared_floor.runs
        );
        let a = &self.accuracy;
        let _ = writeln!(
            md,
            "### Loss → downstream accuracy\n\nMean accuracy over the {} tasks with a stated chance level (floor = mean chance {:.3}) against −(C4 loss), Richards curve fitted on the {} runs with N ≤ 412 M: k = {:.3}, x0 = {:.3}, v = {:.3}, ceiling = {:.3} (train RMSE {:.4}). On the {} larger runs: mean absolute error {:.4} (max {:.4}) in accuracy.\n",
            a.tasks,
            a.floor,
            a.train_runs,
            a.curve.k,
            a.curve.x0,
            a.curve.v,
            a.curve.ceiling,
            a.curve.rmse,
            a.held_out_runs,
            a.mean_abs_error,
            a.max_abs_error
        );
        md.push_str("![over-training](overtraining.svg)\n![sigmoid](overtraining_sigmoid.svg)\n\n");
    }
}

impl PythiaSection {
    fn markdown(&self, md: &mut String) {
        md.push_str("## Pythia: LAMBADA log-perplexity → task accuracy\n\nx = −ln(LAMBADA perplexity) per (model, checkpoint); checkpoints before step 1000 dropped. Richards curves with the task's chance floor, fitted on all checkpoints of the 14 models up to 6.9 B, predicting both 12 B models (all checkpoints, and the final one). A second fit maps log10(parameters) → accuracy at the final checkpoint.\n\n| task | chance | fit points | 12B checkpoints MAE | 12B final: observed → predicted | size-only fit: 12B final predicted |\n|---|---:|---:|---:|---|---:|\n");
        let mut figs = Vec::new();
        for t in &self.tasks {
            let finals = t
                .finals
                .iter()
                .map(|f| format!("{:.3} → {:.3}", f.observed, f.predicted))
                .collect::<Vec<_>>()
                .join(", ");
            let size_pred = match &t.size_only {
                SizeOnlyFit::Fitted { predictions, .. } => predictions
                    .iter()
                    .map(|p| format!("{:.3} (obs {:.3})", p.predicted, p.observed))
                    .collect::<Vec<_>>()
                    .join(", "),
                SizeOnlyFit::Failed { reason } => format!("no fit: {reason}"),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.4} | {finals} | {size_pred} |",
                t.task, t.chance, t.fit_points, t.checkpoints_mae
            );
            if let Some(f) = &t.figure {
                figs.push(format!("![{}]({f})", t.task));
            }
        }
        let _ = writeln!(md, "\n{}\n", figs.join("\n"));
    }
}

impl SyntheticSection {
    fn markdown(&self, md: &mut String) {
        let truth = &self.truth;
        let _ = writeln!(
            md,
            "## Synthetic ladder\n\nNo data folder was found, so a seeded ladder was drawn from the Chinchilla paper's law (E = {}, A = {}, B = {}, α = {}, β = {}): {} budgets × {} runs spanning ±{} decades of N around the optimum, multiplicative noise σ = {}. Held out: noise-free compute-optimal runs at 1e22, 1e23, 1e24 FLOPs (10–1000× the largest budget).\n",
            truth.e,
            truth.a,
            truth.b,
            truth.alpha,
            truth.beta,
            self.budgets,
            self.runs_per_budget,
            self.half_width_dex,
            self.noise_sd
        );
        isoflop_table(md, &self.isoflop);
        let (ta, tb) = truth.frontier_exponents();
        let truths = [truth.e, truth.a, truth.b, truth.alpha, truth.beta, ta, tb];
        md.push_str("| parameter | truth | recovered [95% CI] |\n|---|---:|---|\n");
        for (ni, tv) in self.approach3.intervals.iter().zip(truths) {
            let i = &ni.interval;
            let _ = writeln!(md, "| {} | {tv:.4} | {} |", ni.name, iv(i, prec(i)));
        }
        let _ = writeln!(
            md,
            "| Approach 2 a | {ta:.4} | {:.4} |\n| Approach 2 b | {tb:.4} | {:.4} |\n",
            self.frontier.a(),
            self.frontier.b()
        );
        let law = &self.asymptotic;
        let _ = writeln!(
            md,
            "Asymptotic law through the optima: L∞ = {:.4} (truth E = {}), α = {:.4} (truth αβ/(α+β) = {:.4}).\n\n| held-out C | true loss | asymptotic law [95% band] | err | Approach 3 | err |\n|---:|---:|---|---:|---:|---:|",
            law.l_inf,
            truth.e,
            law.alpha,
            truth.alpha * truth.beta / (truth.alpha + truth.beta)
        );
        for h in &self.held_out {
            let b = &h.forecast;
            let _ = writeln!(
                md,
                "| {} | {:.4} | {} | {} | {:.4} | {} |",
                sci(h.compute),
                h.true_loss,
                iv(b, 4),
                pct(b.estimate / h.true_loss - 1.0),
                h.approach3,
                pct(h.approach3 / h.true_loss - 1.0)
            );
        }
        let acc = &self.accuracy;
        let _ = writeln!(
            md,
            "\nLoss → accuracy (synthetic Richards truth k = {}, x0 = {}, v = {}, floor {}, ceiling {}): fitted k = {:.3}, x0 = {:.3}, v = {:.3}, ceiling = {:.3}; accuracy at the held-out runs predicted {} (truth {}). Inverse: accuracy 0.5 needs loss {:.4}.\n",
            acc.truth.k,
            acc.truth.x0.to_string().replace('-', "−"),
            acc.truth.v,
            acc.truth.floor,
            acc.truth.ceiling,
            acc.curve.k,
            acc.curve.x0,
            acc.curve.v,
            acc.curve.ceiling,
            acc.predicted
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            acc.true_accuracy
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            acc.loss_at_half
        );
        md.push_str("![IsoFLOP](synthetic_isoflop.svg)\n![frontier](synthetic_frontier.svg)\n![law](synthetic_law.svg)\n![sigmoid](synthetic_sigmoid.svg)\n\n");
    }
}
