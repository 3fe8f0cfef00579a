//! The routing-evaluation study behind the `route_eval` example: query routers scored on the
//! cost–quality plane, RouteLLM- and RouterBench-style, on the synthetic default, on the
//! real-data presets or on a custom outcome table.
//!
//! [`run`] evaluates a [`StudyConfig`] and returns a [`RouteEvalReport`]: one [`Section`] per
//! view ([`PairReport`] for a weak/strong pair, [`MultiReport`] for N models with costs,
//! [`StudyReport`] for the MBPP-style random-routing table), the data notes and the timings.
//! The report renders as Markdown ([`RouteEvalReport::to_markdown`]), as the console text the
//! example prints ([`RouteEvalReport::stdout_table`]), as JSON, and writes `report.md`,
//! `summary.json` and one SVG figure per section ([`RouteEvalReport::write`]).
//!
//! Sources ([`Source`]):
//! * **synthetic** (the default): a seeded item-response model (`datasets::synthetic`) with a
//!   pair view (test split), a 5-model view and a study table, scored with a synthetic router
//!   that sees each prompt's latent difficulty through Gaussian noise (sd 0.5) — it shows what
//!   a useful router's curve looks like and is not evidence about real models;
//! * **presets** ([`Preset`]): `mmlu` and `gsm8k` (RouteLLM: Mixtral vs GPT-4),
//!   `routerbench-mbpp`, `routerbench-arc`, `routerbench-winogrande` (11 models with
//!   per-prompt USD cost: pair view Mixtral vs GPT-4, N-model AIQ view, and for MBPP the study
//!   tables), `arena` (Arena-Bench v1 judge scores, answer length as cost proxy), `routerdc`
//!   (RouterDC's 7 models, graded), and `all`, read from the shared data folder;
//! * **a table**: an outcome-table CSV (`datasets::load_outcome_csv`) with a weak/strong pair,
//!   plus an N-model view when the table has costs and more than two models.
//!
//! Routers given as precomputed score files ([`StudyConfig::routers`]) join every pair view.
//!
//! ```
//! use evals::routing::route_eval::{SectionReport, StudyConfig, run};
//!
//! let report = run(&StudyConfig::default())?; // the synthetic default, seed 42
//! assert_eq!(report.sections.len(), 3);
//! let SectionReport::Pair(pair) = &report.sections[0].report else { unreachable!() };
//! // Oracle first, then the noisy-difficulty router.
//! assert!(pair.summaries[0].apgr_area > pair.summaries[1].apgr_area);
//! assert!(report.to_markdown().starts_with("# Routing evaluation"));
//! print!("{}", report.stdout_table());
//! # Ok::<(), evals::EvalError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use datasets::synthetic::{SyntheticConfig, generate, success_probability};
use datasets::{CodeOutcomes, LoadReport, OutcomeTable, PromptMeta};
use routing_core::{MultiRouter, PairRouter, PrecomputedRouter, QualityMatrix};

use crate::error::{EvalError, Result};
use crate::routing::report::{MultiReport, PairReport, PairReportOptions, StudyReport};
use figure::Plot;

/// Seed of the synthetic data when [`Source::Synthetic`] is not given one, and of
/// [`Preset::Synthetic`] (the seed of `SyntheticConfig::default_pair`).
pub const DEFAULT_SYNTHETIC_SEED: u64 = 42;

/// Noise (standard deviation) of the synthetic router's view of the latent difficulty.
const NOISE_SD: f64 = 0.5;
/// Seed of the synthetic router's noise.
const NOISE_SEED: u64 = 7;
/// Willingness-to-pay values per N-model sweep.
const N_LAMBDAS: usize = 200;
/// Seed of the random-routing study tables.
const STUDY_SEED: u64 = 42;

/// A named evaluation set-up, as `route_eval --preset` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The embedded synthetic study (needs no data).
    Synthetic,
    /// RouteLLM MMLU responses: Mixtral vs GPT-4.
    Mmlu,
    /// RouteLLM GSM8K responses: Mixtral vs GPT-4.
    Gsm8k,
    /// RouterBench MBPP: pair, 11-model and study views.
    RouterbenchMbpp,
    /// RouterBench ARC-Challenge: pair and 11-model views.
    RouterbenchArc,
    /// RouterBench WinoGrande: pair and 11-model views.
    RouterbenchWinogrande,
    /// Arena-Bench v1 judge scores (answer length as cost proxy): pair and 15-model views.
    Arena,
    /// RouterDC's 7 models (graded), weakest vs strongest.
    Routerdc,
    /// Every real-data preset, in the order of [`Preset::REAL_DATA`].
    All,
}

impl Preset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [Preset; 9] = [
        Preset::Synthetic,
        Preset::Mmlu,
        Preset::Gsm8k,
        Preset::RouterbenchMbpp,
        Preset::RouterbenchArc,
        Preset::RouterbenchWinogrande,
        Preset::Arena,
        Preset::Routerdc,
        Preset::All,
    ];

    /// The presets' names, in the order of [`Preset::ALL`].
    pub const NAMES: [&'static str; 9] = [
        "synthetic",
        "mmlu",
        "gsm8k",
        "routerbench-mbpp",
        "routerbench-arc",
        "routerbench-winogrande",
        "arena",
        "routerdc",
        "all",
    ];

    /// The presets that read the data folder, in the order [`Preset::All`] runs them.
    pub const REAL_DATA: [Preset; 7] = [
        Preset::Mmlu,
        Preset::Gsm8k,
        Preset::RouterbenchMbpp,
        Preset::RouterbenchArc,
        Preset::RouterbenchWinogrande,
        Preset::Arena,
        Preset::Routerdc,
    ];

    /// The preset's name (`routerbench-mbpp`, …).
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|&p| p == self).unwrap_or(0);
        Self::NAMES[i]
    }

    /// Whether the preset reads the data folder (all but [`Preset::Synthetic`]).
    pub fn needs_data(self) -> bool {
        self != Preset::Synthetic
    }

    /// The single presets this one runs: [`Preset::All`] expands to [`Preset::REAL_DATA`].
    pub fn expand(self) -> Vec<Preset> {
        match self {
            Preset::All => Self::REAL_DATA.to_vec(),
            p => vec![p],
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A preset name that [`Preset::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset `{name}` (known: {})", Preset::NAMES.join(", "))]
pub struct UnknownPreset {
    /// The name given.
    pub name: String,
}

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|&n| n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| UnknownPreset {
                name: s.to_string(),
            })
    }
}

/// What a study evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The synthetic study: 2,000-prompt weak/strong pair and 5-model data generated with
    /// `seed` (`SyntheticConfig::default_pair` / `default_multi` otherwise).
    Synthetic {
        /// Seed of the generated data ([`DEFAULT_SYNTHETIC_SEED`] reproduces `route_eval`).
        seed: u64,
    },
    /// Presets, run in order (with [`Preset::All`] expanded and repeats dropped).
    /// [`Preset::Synthetic`] among them runs the synthetic study at
    /// [`DEFAULT_SYNTHETIC_SEED`].
    Presets {
        /// The presets.
        presets: Vec<Preset>,
        /// The data folder; `None`: `datasets::shared_data_dir()` (`CAI_DATA_DIR`, else a
        /// `shared/data` beside the workspace). Only looked up when a preset needs data.
        data_dir: Option<PathBuf>,
    },
    /// A custom outcome table (the wide CSV of `datasets::load_outcome_csv`).
    Table {
        /// The table's CSV file.
        path: PathBuf,
        /// The weak model; `None`: the model with the lowest mean score.
        weak: Option<String>,
        /// The strong model; `None`: the model with the highest mean score.
        strong: Option<String>,
    },
}

impl Source {
    /// The source `route_eval --preset NAME` evaluates: [`Source::Synthetic`] at
    /// [`DEFAULT_SYNTHETIC_SEED`] for [`Preset::Synthetic`], otherwise [`Source::Presets`].
    pub fn preset(preset: Preset, data_dir: Option<PathBuf>) -> Self {
        match preset {
            Preset::Synthetic => Self::Synthetic {
                seed: DEFAULT_SYNTHETIC_SEED,
            },
            p => Self::Presets {
                presets: vec![p],
                data_dir,
            },
        }
    }
}

/// A router's precomputed scores (`id,score` CSV, `datasets::load_scores_csv`): higher means
/// "send to the strong model".
#[derive(Debug, Clone, PartialEq)]
pub struct RouterScores {
    /// The router's name in tables and figures.
    pub name: String,
    /// The score file.
    pub path: PathBuf,
}

/// Configuration of [`run`]. [`StudyConfig::default`] is `route_eval` with no flags: the
/// synthetic study, 20-step grid, 10 random seeds, 10 study trials.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyConfig {
    /// What to evaluate.
    pub source: Source,
    /// Routers' precomputed scores, evaluated in every pair view; each must score every
    /// prompt of the pair's table.
    pub routers: Vec<RouterScores>,
    /// Grid resolution: strong-call shares `0, 1/grid, …, 1` (plus the paper's 10% steps).
    pub grid: usize,
    /// Seeds of the random-router band (≥ 1).
    pub random_seeds: usize,
    /// Random-routing trials per share in the study tables (≥ 1 where a table is made).
    pub trials: usize,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            source: Source::Synthetic {
                seed: DEFAULT_SYNTHETIC_SEED,
            },
            routers: Vec::new(),
            grid: 20,
            random_seeds: 10,
            trials: 10,
        }
    }
}

/// One view's report.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", content = "report", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "a report holds a handful of sections; unboxed variants keep matching simple"
)]
pub enum SectionReport {
    /// A weak/strong pair against the random band and the oracle.
    Pair(PairReport),
    /// N models with costs: single models, zero router, oracle and routers, with AIQ.
    Multi(MultiReport),
    /// The random-routing performance-gap table of a small/large pair.
    Study(StudyReport),
}

impl SectionReport {
    /// The section's title.
    pub fn title(&self) -> &str {
        match self {
            Self::Pair(r) => &r.title,
            Self::Multi(r) => &r.title,
            Self::Study(r) => &r.title,
        }
    }

    /// The section's Markdown, with its figure linked as `figure_file`.
    pub fn markdown(&self, figure_file: &str) -> String {
        match self {
            Self::Pair(r) => r.markdown(figure_file),
            Self::Multi(r) => r.markdown(figure_file),
            Self::Study(r) => r.markdown(figure_file),
        }
    }

    /// The section's figure.
    ///
    /// # Errors
    /// An N-model figure whose hull cannot be built (non-finite points).
    pub fn figure(&self) -> Result<Plot> {
        match self {
            Self::Pair(r) => Ok(r.figure()),
            Self::Multi(r) => r.figure(),
            Self::Study(r) => Ok(r.figure()),
        }
    }

    /// The report as a JSON value (the section's entry in `summary.json`).
    ///
    /// # Errors
    /// [`EvalError::Json`] if serialisation fails.
    pub fn to_json_value(&self) -> Result<serde_json::Value> {
        let v = match self {
            Self::Pair(r) => serde_json::to_value(r),
            Self::Multi(r) => serde_json::to_value(r),
            Self::Study(r) => serde_json::to_value(r),
        };
        v.map_err(|e| json_error(self.title(), &e))
    }
}

/// One section of a [`RouteEvalReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Section {
    /// Short name: the figure is `{slug}.svg`, the `summary.json` key is `slug`.
    pub slug: String,
    /// The loader's report of the data first used by this section (printed before it).
    pub loaded: Option<LoadReport>,
    /// Wall time of the evaluation, milliseconds (shown for pair and N-model views).
    pub elapsed_ms: f64,
    /// The report.
    pub report: SectionReport,
}

impl Section {
    /// The section's figure file name, `{slug}.svg`.
    pub fn figure_file(&self) -> String {
        format!("{}.svg", self.slug)
    }

    /// The console text of the section (what `route_eval` prints for it).
    pub fn stdout_text(&self) -> String {
        let mut s = String::new();
        if let Some(l) = &self.loaded {
            s.push_str(&format!("loaded {l}\n"));
        }
        match &self.report {
            SectionReport::Pair(r) => {
                s.push_str(&format!(
                    "\n== {} ({} prompts, {:.0} ms)\n",
                    r.title, r.n_prompts, self.elapsed_ms
                ));
                s.push_str(&format!(
                    "weak {}: {:.4}   strong {}: {:.4}\n",
                    r.weak, r.weak_quality, r.strong, r.strong_quality
                ));
                s.push_str(&r.metrics_table().render());
            }
            SectionReport::Multi(r) => {
                s.push_str(&format!(
                    "\n== {} ({} prompts, {} models, {:.0} ms)\n",
                    r.title,
                    r.n_prompts,
                    r.models.len(),
                    self.elapsed_ms
                ));
                for (name, p) in &r.models {
                    s.push_str(&format!(
                        "  {name:<40} quality {:.4}  cost {:.6}\n",
                        p.quality, p.cost
                    ));
                }
                s.push_str(&format!("  AIQ zero router {:.4}\n", r.zero_router_aiq));
                for (name, _, a) in &r.routers {
                    s.push_str(&format!("  AIQ {name:<26} {a:.4}\n"));
                }
            }
            SectionReport::Study(r) => {
                s.push_str(&format!("\n== {}\n", r.title));
                for row in &r.rows {
                    s.push_str(&format!(
                        "  small share {:>4.0}%  pass {:5.1} ± {:3.1}  gap {:+5.1} ± {:3.1}\n",
                        100.0 * row.small_share,
                        row.pass_rate.mean,
                        row.pass_rate.std,
                        row.pass_gap.mean,
                        row.pass_gap.std
                    ));
                }
            }
        }
        s
    }
}

/// The result of [`run`]: sections in evaluation order, data notes, timings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteEvalReport {
    /// Notes on the data (one per loaded source, plus caveats), shown under "Data".
    pub notes: Vec<String>,
    /// The sections, in evaluation order.
    pub sections: Vec<Section>,
    /// Wall time of [`run`], seconds.
    pub elapsed_s: f64,
}

/// The opening of `report.md`.
const MARKDOWN_HEADER: &str = "# Routing evaluation\n\nGenerated by `route_eval`. Shares are of calls to the strong model; quality is the mean score of the routed answers; CPT values are strong-call shares. `code` = RouteLLM's evaluation code definition (default), `paper`/`min` = the paper's.\n\n";

impl RouteEvalReport {
    /// The report as Markdown (`report.md`): a header, the data notes, and each section with
    /// its figure linked as `{slug}.svg`.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from(MARKDOWN_HEADER);
        if !self.notes.is_empty() {
            md.push_str("### Data\n\n");
            let notes: Vec<String> = self.notes.iter().map(|n| format!("- {n}")).collect();
            md.push_str(&notes.join("\n"));
            md.push_str("\n\n");
        }
        for s in &self.sections {
            md.push_str(&s.report.markdown(&s.figure_file()));
        }
        md
    }

    /// The console text `route_eval` prints before "wrote …": per section, the loader line,
    /// a `== title` line (with timing for pair and N-model views) and its table or rows.
    pub fn stdout_table(&self) -> String {
        self.sections.iter().map(Section::stdout_text).collect()
    }

    /// `summary.json`'s content: an object mapping each section's slug to its report.
    ///
    /// # Errors
    /// [`EvalError::Json`] if serialisation fails.
    pub fn summary_json(&self) -> Result<serde_json::Value> {
        let mut summary = serde_json::Map::new();
        for s in &self.sections {
            summary.insert(s.slug.clone(), s.report.to_json_value()?);
        }
        Ok(serde_json::Value::Object(summary))
    }

    /// The whole report (notes, sections with loader reports and timings) as pretty JSON.
    ///
    /// # Errors
    /// [`EvalError::Json`] if serialisation fails.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| json_error("the routing report", &e))
    }

    /// The figures: (file name `{slug}.svg`, chart) per section.
    ///
    /// # Errors
    /// As [`SectionReport::figure`].
    pub fn figures(&self) -> Result<Vec<(String, Plot)>> {
        self.sections
            .iter()
            .map(|s| Ok((s.figure_file(), s.report.figure()?)))
            .collect()
    }

    /// Writes `report.md`, `summary.json` and the figures (`{slug}.svg`) into `dir`,
    /// creating it if needed; returns the path of `report.md`.
    ///
    /// # Errors
    /// [`EvalError::Io`] naming the file or folder that could not be written; as
    /// [`RouteEvalReport::figures`] and [`RouteEvalReport::summary_json`].
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let io = |path: PathBuf| move |source| EvalError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        for (file, chart) in self.figures()? {
            chart.save(&dir.join(file))?;
        }
        let md = dir.join("report.md");
        std::fs::write(&md, self.to_markdown()).map_err(io(md.clone()))?;
        let js = dir.join("summary.json");
        let text = serde_json::to_string_pretty(&self.summary_json()?)
            .map_err(|e| json_error("summary.json", &e))?;
        std::fs::write(&js, text).map_err(io(js.clone()))?;
        Ok(md)
    }
}

fn json_error(what: &str, e: &serde_json::Error) -> EvalError {
    EvalError::Json {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Runs the study `config` describes.
///
/// # Errors
/// * [`EvalError::DataDir`] when a preset needs the data folder and none is found, or the
///   given one is not a folder;
/// * [`EvalError::Data`] from the loaders (naming the file and field) and the score files;
/// * [`EvalError::Routing`] when a router's scores miss prompts of the table;
/// * [`EvalError::InvalidParameter`] for zero seeds or trials, and the metrics' errors (e.g.
///   an unknown weak or strong model).
pub fn run(config: &StudyConfig) -> Result<RouteEvalReport> {
    let t0 = Instant::now();
    let mut study = Study {
        config,
        notes: Vec::new(),
        sections: Vec::new(),
        pending_load: None,
    };
    match &config.source {
        Source::Synthetic { seed } => study.synthetic(*seed)?,
        Source::Presets { presets, data_dir } => {
            let mut list: Vec<Preset> = Vec::new();
            for p in presets.iter().flat_map(|p| p.expand()) {
                if !list.contains(&p) {
                    list.push(p);
                }
            }
            let dir = if list.iter().any(|p| p.needs_data()) {
                Some(resolve_data_dir(data_dir.as_deref())?)
            } else {
                None
            };
            for p in list {
                match &dir {
                    Some(d) if p.needs_data() => study.preset(p, d)?,
                    _ => study.synthetic(DEFAULT_SYNTHETIC_SEED)?,
                }
            }
        }
        Source::Table { path, weak, strong } => {
            study.table(path, weak.as_deref(), strong.as_deref())?;
        }
    }
    Ok(RouteEvalReport {
        notes: study.notes,
        sections: study.sections,
        elapsed_s: t0.elapsed().as_secs_f64(),
    })
}

/// The data folder: `given` if it is a folder, else the shared one.
fn resolve_data_dir(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) if p.is_dir() => Ok(p.to_path_buf()),
        Some(p) => Err(EvalError::DataDir {
            path: Some(p.to_path_buf()),
            reason: if p.exists() {
                "not a folder".into()
            } else {
                "no such folder".into()
            },
        }),
        None => datasets::shared_data_dir().ok_or_else(|| EvalError::DataDir {
            path: None,
            reason: "not found: real-data presets read ../shared/data, CAI_DATA_DIR or a folder given explicitly".into(),
        }),
    }
}

/// A run in progress.
struct Study<'a> {
    config: &'a StudyConfig,
    notes: Vec<String>,
    sections: Vec<Section>,
    /// A loader report waiting for the next section.
    pending_load: Option<LoadReport>,
}

impl Study<'_> {
    fn push(&mut self, slug: &str, report: SectionReport, elapsed_ms: f64) {
        self.sections.push(Section {
            slug: slug.to_string(),
            loaded: self.pending_load.take(),
            elapsed_ms,
            report,
        });
    }

    fn pair(
        &mut self,
        slug: &str,
        title: &str,
        table: &OutcomeTable,
        weak: &str,
        strong: &str,
        routers: Vec<(String, Vec<f64>)>,
    ) -> Result<()> {
        let t = Instant::now();
        let opts = PairReportOptions {
            grid: self.config.grid,
            random_seeds: self.config.random_seeds,
            ..PairReportOptions::default()
        };
        let r = PairReport::evaluate(title, table, weak, strong, &routers, &opts)?;
        self.push(slug, SectionReport::Pair(r), ms(t));
        Ok(())
    }

    fn multi(
        &mut self,
        slug: &str,
        title: &str,
        table: &OutcomeTable,
        routers: &[&dyn MultiRouter],
    ) -> Result<()> {
        let t = Instant::now();
        let r = MultiReport::evaluate(title, table, routers, N_LAMBDAS)?;
        self.push(slug, SectionReport::Multi(r), ms(t));
        Ok(())
    }

    fn study(
        &mut self,
        slug: &str,
        title: &str,
        outcomes: &CodeOutcomes,
        small: &str,
        large: &str,
    ) -> Result<()> {
        let t = Instant::now();
        let r = StudyReport::evaluate(
            title,
            outcomes,
            small,
            large,
            self.config.trials,
            STUDY_SEED,
        )?;
        self.push(slug, SectionReport::Study(r), ms(t));
        Ok(())
    }

    fn loaded(&mut self, report: LoadReport) {
        self.notes.push(report.to_string());
        self.pending_load = Some(report);
    }

    /// The configured routers' scores on `table`'s prompts.
    fn external_routers(&self, table: &OutcomeTable) -> Result<Vec<(String, Vec<f64>)>> {
        self.config
            .routers
            .iter()
            .map(|r| {
                let router =
                    PrecomputedRouter::new(r.name.clone(), datasets::load_scores_csv(&r.path)?)?;
                Ok((r.name.clone(), router.score(table.prompts())?))
            })
            .collect()
    }

    fn synthetic(&mut self, seed: u64) -> Result<()> {
        self.notes.push("**synthetic data** (seeded item-response model, `datasets::synthetic`): not evidence about real models.".into());
        let cfg = SyntheticConfig {
            seed,
            ..SyntheticConfig::default_pair()
        };
        let s = generate(&cfg)?;
        let test = s.table.split("test")?;
        let test_difficulty: Vec<f64> = s
            .table
            .prompts()
            .iter()
            .zip(&s.difficulty)
            .filter(|(p, _)| p.split.as_deref() == Some("test"))
            .map(|(_, d)| *d)
            .collect();
        let router =
            NoisyDifficultyRouter::new(&test, &cfg, &test_difficulty, NOISE_SD, NOISE_SEED);
        let mut routers = vec![(router.name.clone(), router.score(test.prompts())?)];
        routers.extend(self.external_routers(&test)?);
        self.pair(
            "synthetic_pair",
            "Synthetic pair (test split)",
            &test,
            "weak",
            "strong",
            routers,
        )?;

        let cfg = SyntheticConfig {
            seed,
            ..SyntheticConfig::default_multi()
        };
        let s = generate(&cfg)?;
        let router =
            NoisyDifficultyRouter::new(&s.table, &cfg, &s.difficulty, NOISE_SD, NOISE_SEED);
        self.multi(
            "synthetic_multi",
            "Synthetic 5 models",
            &s.table,
            &[&router],
        )?;
        let code = CodeOutcomes::from_binary_table(&s.table)?;
        self.study(
            "synthetic_study",
            "Synthetic random-routing study (small vs xl)",
            &code,
            "small",
            "xl",
        )
    }

    fn preset(&mut self, preset: Preset, dir: &Path) -> Result<()> {
        use datasets::routellm::{ROUTELLM_STRONG, ROUTELLM_WEAK};
        let opts = datasets::RouteLlmOptions::default();
        match preset {
            Preset::Synthetic => self.synthetic(DEFAULT_SYNTHETIC_SEED),
            Preset::All => {
                for p in Preset::REAL_DATA {
                    self.preset(p, dir)?;
                }
                Ok(())
            }
            Preset::Mmlu => {
                let l = datasets::load_routellm_mmlu(&dir.join("routellm_evals"), &opts)?;
                self.loaded(l.report);
                let routers = self.external_routers(&l.data)?;
                self.pair(
                    "mmlu",
                    "RouteLLM MMLU (14,042 questions)",
                    &l.data,
                    ROUTELLM_WEAK,
                    ROUTELLM_STRONG,
                    routers,
                )
            }
            Preset::Gsm8k => {
                let l = datasets::load_routellm_gsm8k(
                    &dir.join("routellm_evals/gsm8k/gsm8k_responses.csv"),
                    &opts,
                )?;
                self.loaded(l.report);
                let routers = self.external_routers(&l.data)?;
                self.pair(
                    "gsm8k",
                    "RouteLLM GSM8K (1,319 questions)",
                    &l.data,
                    ROUTELLM_WEAK,
                    ROUTELLM_STRONG,
                    routers,
                )
            }
            Preset::RouterbenchMbpp | Preset::RouterbenchArc | Preset::RouterbenchWinogrande => {
                self.routerbench(preset, dir)
            }
            Preset::Arena => {
                let opts = datasets::ArenaOptions { length_costs: true };
                let l =
                    datasets::load_arena_judgments(&dir.join("arena_bench_v1_judgments"), &opts)?;
                self.loaded(l.report);
                let t = &l.data;
                let routers = self.external_routers(t)?;
                let (weak, strong) = ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview");
                let title = "Arena-Bench v1 (GPT-4 judge, 1-10 normalised): Mixtral vs GPT-4";
                self.pair("arena", title, t, weak, strong, routers)?;
                self.notes.push(
                    "Arena-Bench cost = answer length in characters (a proxy, not dollars).".into(),
                );
                self.multi(
                    "arena-multi",
                    "Arena-Bench v1: 15 models, cost = answer characters",
                    t,
                    &[],
                )
            }
            Preset::Routerdc => {
                let l = datasets::load_routerdc_dir(&dir.join("routerdc_7model_scores"))?;
                self.loaded(l.report);
                let t = &l.data;
                let (weak, strong) = (extreme_model(t, false), extreme_model(t, true));
                let routers = self.external_routers(t)?;
                let title = "RouterDC: 7 models, 12 task files (graded), weakest vs strongest";
                self.pair("routerdc", title, t, &weak, &strong, routers)
            }
        }
    }

    fn routerbench(&mut self, preset: Preset, dir: &Path) -> Result<()> {
        let slice = match preset {
            Preset::RouterbenchMbpp => "mbpp",
            Preset::RouterbenchArc => "arc_challenge",
            _ => "winograde",
        };
        let l = datasets::load_routerbench_slice(&dir.join("routerbench_routerdc"), slice)?;
        self.loaded(l.report);
        let t = &l.data;
        let (weak, strong) = ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview");
        let routers = self.external_routers(t)?;
        let name = preset.name();
        self.pair(
            name,
            &format!("RouterBench {slice}: Mixtral vs GPT-4"),
            t,
            weak,
            strong,
            routers,
        )?;
        self.multi(
            &format!("{name}-multi"),
            &format!("RouterBench {slice}: 11 models"),
            t,
            &[],
        )?;
        if preset == Preset::RouterbenchMbpp {
            let code = CodeOutcomes::from_binary_table(t)?;
            for (small, large) in [
                ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat"),
                ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview"),
                ("meta/llama-2-70b-chat", "gpt-4-1106-preview"),
            ] {
                let (s, l) = (short(small), short(large));
                self.study(
                    &format!("mbpp-study-{s}-{l}"),
                    &format!("MBPP study: {s} vs {l}"),
                    &code,
                    small,
                    large,
                )?;
            }
        }
        Ok(())
    }

    fn table(&mut self, path: &Path, weak: Option<&str>, strong: Option<&str>) -> Result<()> {
        let table = datasets::load_outcome_csv(path)?;
        let weak = weak.map_or_else(|| extreme_model(&table, false), str::to_string);
        let strong = strong.map_or_else(|| extreme_model(&table, true), str::to_string);
        let routers = self.external_routers(&table)?;
        let title = format!("{}: {weak} vs {strong}", path.display());
        self.pair("table", &title, &table, &weak, &strong, routers)?;
        if table.has_costs() && table.n_models() > 2 {
            self.multi(
                "table-multi",
                &format!("{}: all models", path.display()),
                &table,
                &[],
            )?;
        }
        Ok(())
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The last `/`-separated part of a model name.
fn short(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// The model with the highest (`best`) or lowest mean score (empty for a table without models).
fn extreme_model(table: &OutcomeTable, best: bool) -> String {
    (0..table.n_models())
        .max_by(|&a, &b| {
            let o = table.mean_score(a).total_cmp(&table.mean_score(b));
            if best { o } else { o.reverse() }
        })
        .map(|m| table.models()[m].clone())
        .unwrap_or_default()
}

/// A synthetic router that sees each prompt's latent difficulty through Gaussian noise
/// (synthetic: it exists to show what a useful router's curve looks like).
struct NoisyDifficultyRouter {
    name: String,
    models: Vec<String>,
    skills: Vec<f64>,
    discrimination: f64,
    /// Noisy difficulty per prompt id.
    noisy: HashMap<String, f64>,
}

impl NoisyDifficultyRouter {
    fn new(
        table: &OutcomeTable,
        cfg: &SyntheticConfig,
        difficulty: &[f64],
        noise_sd: f64,
        seed: u64,
    ) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut normal = move || {
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        Self {
            name: format!("difficulty+noise(sd={noise_sd})"),
            models: table.models().to_vec(),
            skills: cfg.models.iter().map(|m| m.skill).collect(),
            discrimination: cfg.discrimination,
            noisy: table
                .prompts()
                .iter()
                .zip(difficulty)
                .map(|(p, d)| (p.id.clone(), d + noise_sd * normal()))
                .collect(),
        }
    }

    fn difficulty(&self, p: &PromptMeta) -> routing_core::Result<f64> {
        self.noisy
            .get(&p.id)
            .copied()
            .ok_or_else(|| routing_core::RoutingError::UnknownPrompts {
                router: self.name.clone(),
                count: 1,
                examples: p.id.clone(),
            })
    }
}

impl PairRouter for NoisyDifficultyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, prompts: &[PromptMeta]) -> routing_core::Result<Vec<f64>> {
        prompts.iter().map(|p| self.difficulty(p)).collect()
    }
}

impl MultiRouter for NoisyDifficultyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn expected_quality(&self, prompts: &[PromptMeta]) -> routing_core::Result<QualityMatrix> {
        let mut v = Vec::with_capacity(prompts.len() * self.skills.len());
        for p in prompts {
            let d = self.difficulty(p)?;
            v.extend(
                self.skills
                    .iter()
                    .map(|&s| success_probability(self.discrimination, s, d)),
            );
        }
        QualityMatrix::new(prompts.len(), self.skills.len(), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
        }
        assert_eq!(Preset::All.expand(), Preset::REAL_DATA.to_vec());
        assert!(!Preset::Synthetic.needs_data());
    }
}
