//! The scaling-law study: every fit of the crate run on real scaling runs (or a seeded synthetic
//! ladder), collected into a typed [`StudyReport`] with its Markdown report, JSON summary and SVG
//! figures.
//!
//! With a data folder ([`Source::Data`], or [`Source::Auto`] when
//! `datasets::locate::shared_data_dir` finds one):
//! * **Chinchilla** (Epoch AI's digitised Figure-4 runs, 5 highest-loss outliers dropped, which
//!   reproduces Besiroglu et al. 2024): IsoFLOP parabolas per budget, the Approach-2 frontier,
//!   the Approach-3 law from the 4 500-start grid with bootstrap intervals, next to the
//!   published values; held-out forecasts of the largest budget ([`ChinchillaSection`]).
//! * **Over-training** (Gadre et al. 2024, 104 runs): Approach 3 and a shared-floor asymptotic
//!   law per token multiplier fitted on models ≤ 412 M parameters, forecasting the 1.4 B and
//!   6.9 B runs; a loss → mean downstream accuracy sigmoid with a chance floor
//!   ([`OvertrainingSection`]).
//! * **Pythia** (16 models × 27 checkpoints): LAMBADA log-perplexity → accuracy Richards curves
//!   fitted on the models up to 6.9 B, predicting the 12 B models ([`PythiaSection`]).
//!
//! Without data ([`Source::Synthetic`]), a seeded ladder drawn from the Chinchilla paper's law
//! runs the same pipeline and compares the recovered parameters with the truth
//! ([`SyntheticSection`]).
//!
//! [`run`] does the work and returns the report; [`StudyReport::write`] writes `report.md`,
//! `summary.json` and the SVG figures into a folder. A small synthetic study (coarse
//! Approach-3 grid, few bootstrap replicates) runs in about a second:
//!
//! ```
//! use scaling_fit::InitGrid;
//! use scaling_fit::study::{Source, StudyConfig, run};
//!
//! let config = StudyConfig {
//!     source: Source::Synthetic { seed: 0 },
//!     bootstrap: 8,
//!     band_bootstrap_min: 50,
//!     grid: InitGrid::coarse(),
//!     ..StudyConfig::default()
//! };
//! let report = run(&config)?;
//! let synthetic = report.synthetic.as_ref().expect("a synthetic source gives that section");
//! // The Chinchilla paper's law is α = 0.34, β = 0.28.
//! let law = synthetic.approach3.fit.law;
//! assert!((law.alpha - 0.34).abs() < 0.05 && (law.beta - 0.28).abs() < 0.05);
//! assert!(report.to_markdown().starts_with("# Scaling laws"));
//! assert_eq!(report.figures.len(), 4);
//! # Ok::<(), scaling_fit::study::StudyError>(())
//! ```

mod bench;
mod chinchilla;
mod figures;
mod overtraining;
mod pythia;
mod report;
mod synthetic;

use std::path::{Path, PathBuf};
use std::time::Instant;

use datasets::error::DatasetError;

use crate::bootstrap::Interval;
use crate::chinchilla::InitGrid;
use crate::error::FitError;
use crate::points::RunPoint;

pub use bench::{Approach3Bench, approach3_bench};
pub use report::{
    Approach3, ChinchillaForecast, ChinchillaSection, FrontierExponents, HeldOutErrors,
    HeldOutOptimum, MeanError, NamedInterval, ObservedPredicted, OvertrainingAccuracy,
    OvertrainingForecast, OvertrainingSection, OvertrainingSet, PythiaSection, PythiaTask,
    SizeOnlyFit, SplitForecast, StudyReport, SyntheticAccuracy, SyntheticHeldOut, SyntheticSection,
};

/// Where the study's runs come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Source {
    /// The shared data folder if `datasets::locate::shared_data_dir` finds one (the
    /// `CAI_DATA_DIR` variable, else a `shared/data` beside the workspace), else the synthetic
    /// ladder with seed 0.
    Auto,
    /// A data folder holding `chinchilla_scaling/`, `scaling_overtraining_gadre2024/` and
    /// `pythia_evals/`.
    Data(PathBuf),
    /// The seeded synthetic ladder drawn from the Chinchilla paper's law.
    Synthetic {
        /// Seed of the ladder's noise.
        seed: u64,
    },
}

impl Source {
    /// [`Source::Auto`] resolved to a data folder or the synthetic ladder (seed 0); the other
    /// sources unchanged.
    pub fn resolve(&self) -> Source {
        match self {
            Source::Auto => datasets::locate::shared_data_dir()
                .map_or(Source::Synthetic { seed: 0 }, Source::Data),
            other => other.clone(),
        }
    }
}

/// Settings of the study (the flags of the `scaling_laws` example).
#[derive(Debug, Clone, PartialEq)]
pub struct StudyConfig {
    /// Where the runs come from.
    pub source: Source,
    /// Bootstrap replicates of the Approach-3 intervals (at least 1).
    pub bootstrap: usize,
    /// Fewest bootstrap replicates of the asymptotic-law bands: they use
    /// `max(bootstrap, band_bootstrap_min)`.
    pub band_bootstrap_min: usize,
    /// Bootstrap replicates (over compute buckets) of the Approach-2 frontier exponents.
    pub frontier_bootstrap: usize,
    /// Base seed of every bootstrap.
    pub bootstrap_seed: u64,
    /// Initialisation grid of the Approach-3 fits on all runs (the bootstrap refits always
    /// start from the full-data optimum, the two published laws and every 8th point of
    /// [`InitGrid::coarse`]).
    pub grid: InitGrid,
}

impl Default for StudyConfig {
    /// [`Source::Auto`], 200 Approach-3 replicates, bands with at least 500, 2 000 over the
    /// frontier's buckets, seed 0, the 4 500-start grid of Hoffmann et al. (2022).
    fn default() -> Self {
        Self {
            source: Source::Auto,
            bootstrap: 200,
            band_bootstrap_min: 500,
            frontier_bootstrap: 2000,
            bootstrap_seed: 0,
            grid: InitGrid::hoffmann(),
        }
    }
}

impl StudyConfig {
    fn check(&self) -> Result<(), StudyError> {
        for (field, v) in [
            ("bootstrap", self.bootstrap),
            ("frontier_bootstrap", self.frontier_bootstrap),
        ] {
            if v == 0 {
                return Err(StudyError::Config {
                    field: field.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.grid.is_empty() {
            return Err(StudyError::Config {
                field: "grid".into(),
                reason: "the Approach-3 grid has no starts".into(),
            });
        }
        Ok(())
    }
}

/// Everything that can stop the study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The data folder does not exist or is not a folder.
    #[error("data folder {}: {reason}", path.display())]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A data set could not be loaded.
    #[error("cannot load the {dataset} data from {}", path.display())]
    Load {
        /// The data set, in words.
        dataset: String,
        /// Its file or folder.
        path: PathBuf,
        /// The loader's error (it names the file, line and field).
        #[source]
        source: Box<DatasetError>,
    },
    /// A data set loaded but lacks something the study needs.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The data set's file or folder.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A fit failed.
    #[error("{step}: {source}")]
    Fit {
        /// The step of the study.
        step: String,
        /// Why the fit failed.
        #[source]
        source: FitError,
    },
    /// A configuration value is out of range.
    #[error("invalid study configuration `{field}`: {reason}")]
    Config {
        /// The [`StudyConfig`] field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Two fits that must agree do not.
    #[error("{0}")]
    Inconsistent(String),
    /// Writing the report failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON summary could not be serialised.
    #[error("summary.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Adds the study step to a fit error.
trait Step<T> {
    fn step(self, step: &str) -> Result<T, StudyError>;
}

impl<T> Step<T> for crate::error::Result<T> {
    fn step(self, step: &str) -> Result<T, StudyError> {
        self.map_err(|source| StudyError::Fit {
            step: step.to_string(),
            source,
        })
    }
}

/// One timed step of the study.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timing {
    /// The step, in words.
    pub step: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A rendered figure of the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    /// File name inside the output folder, e.g. `chinchilla_isoflop.svg`.
    pub file_name: String,
    /// The SVG document (left out of `summary.json`).
    #[serde(skip)]
    pub svg: String,
}

/// The timings and progress lines of one run.
struct Clock<'a> {
    timings: Vec<Timing>,
    log: &'a mut dyn FnMut(&str),
}

impl Clock<'_> {
    fn say(&mut self, line: &str) {
        (self.log)(line);
    }

    fn time<T>(&mut self, what: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        let seconds = t.elapsed().as_secs_f64();
        (self.log)(&format!("  {what}: {seconds:.3} s"));
        self.timings.push(Timing {
            step: what.to_string(),
            seconds,
        });
        out
    }
}

/// Runs the study `config` describes, silently.
pub fn run(config: &StudyConfig) -> Result<StudyReport, StudyError> {
    run_with_log(config, &mut |_| {})
}

/// Runs the study `config` describes; `log` receives progress lines as they happen: the source
/// (`data: DIR`, or that the synthetic ladder runs), each section's name and each timed step
/// (`  STEP: 1.234 s`).
pub fn run_with_log(
    config: &StudyConfig,
    log: &mut dyn FnMut(&str),
) -> Result<StudyReport, StudyError> {
    config.check()?;
    let source = config.source.resolve();
    let mut clock = Clock {
        timings: Vec::new(),
        log,
    };
    let mut report = StudyReport {
        source: source.clone(),
        chinchilla: None,
        overtraining: None,
        pythia: None,
        synthetic: None,
        figures: Vec::new(),
        timings: Vec::new(),
    };
    match &source {
        Source::Data(dir) => {
            check_dir(dir)?;
            clock.say(&format!("data: {}", dir.display()));
            report.chinchilla = Some(chinchilla::run(
                dir,
                config,
                &mut clock,
                &mut report.figures,
            )?);
            report.overtraining = Some(overtraining::run(
                dir,
                &config.grid,
                &mut clock,
                &mut report.figures,
            )?);
            report.pythia = Some(pythia::run(dir, &mut clock, &mut report.figures)?);
        }
        // `resolve` never returns `Auto`; were it to, seed 0 is what it stands for.
        Source::Synthetic { .. } | Source::Auto => {
            let seed = match &source {
                Source::Synthetic { seed } => *seed,
                _ => 0,
            };
            clock.say("no data folder: running the seeded synthetic ladder");
            report.synthetic = Some(synthetic::run(
                seed,
                config,
                &mut clock,
                &mut report.figures,
            )?);
        }
    }
    report.timings = clock.timings;
    Ok(report)
}

/// A data folder that exists and is a folder.
fn check_dir(dir: &Path) -> Result<(), StudyError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(StudyError::DataDir {
            path: dir.to_path_buf(),
            reason: if dir.exists() {
                "not a folder".into()
            } else {
                "no such folder".into()
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting and small helpers shared by the sections
// ---------------------------------------------------------------------------------------------

/// `x` as `d.ddde±n`.
fn sci(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let e = x.abs().log10().floor() as i32;
    format!("{:.3}e{e}", x / 10f64.powi(e))
}

/// `estimate [lo, hi]` with `prec` decimals, followed by the count of non-finite replicates
/// left out of the interval when there are any.
fn iv(i: &Interval, prec: usize) -> String {
    let s = format!("{:.p$} [{:.p$}, {:.p$}]", i.estimate, i.lo, i.hi, p = prec);
    match i.non_finite {
        0 => s,
        n => format!("{s} ({n} non-finite replicates left out)"),
    }
}

/// A relative error as a signed percentage.
fn pct(x: f64) -> String {
    format!("{:+.2}%", 100.0 * x)
}

/// `n` log-spaced values from `lo` to `hi`.
fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.log10(), hi.log10());
    (0..n)
        .map(|i| 10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64))
        .collect()
}

/// The loaders' runs as fit points.
fn to_points(runs: &[datasets::scaling::ScalingRun]) -> Vec<RunPoint> {
    runs.iter()
        .map(|r| RunPoint::new(r.params, r.tokens, r.flops, r.loss))
        .collect()
}
