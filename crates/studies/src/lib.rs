//! Every study of the workspace in one call, and every router on one cost–quality plane — the
//! library behind the `reproduce` example.
//!
//! The plane's centre is one experiment at all three routing levels on the same benchmarks and
//! the same two models, SmolLM2-135M (cheap) and Gemma 3 270M (strong), on LAMBADA and
//! HellaSwag:
//! * **query level** — an MF router trained on the two models' own `lm_eval` per-sample
//!   outcomes (`mf_router::harness_router`; test items, every 10% of strong share);
//! * **token level** (LAMBADA) — guided decoding of SmolLM2 with Gemma as the oracle
//!   (`guided_decode::study`: entropy, max-probability and random triggers);
//! * **expert level** — the SmolLM2 mixture-of-experts testbed at its Benjamini–Hochberg and
//!   top-k settings (`bh_moe::study`).
//!
//! Around it, the other studies run and report in their own sections (and on the plane where
//! they have a cost per query): RouteLLM/RouterBench routing evaluation
//! (`evals::routing::route_eval`), RouteLLM's MF router (`mf_router::study::routellm`), the
//! MBPP code-routing study (`mf_router::study::code`) and the scaling-law pipeline
//! (`scaling_fit::study`).
//!
//! [`Config::quick`] uses embedded synthetic defaults (seeded; marked synthetic in every table
//! and on the figure) for the centre experiment and the MF studies, and the real data for the
//! fast studies when `../shared/data` is there. The full mode reads the long real-model runs
//! from their output folders ([`Config::harness`], [`Config::guided`], [`Config::bh`]; a
//! missing one is [`StudiesError::Missing`], naming the command that produces it).
//!
//! Each stage writes its folder under [`Config::out`] and a `stage.json`; a rerun skips
//! finished stages ([`Config::fresh`] reruns them). [`Report::write`] writes `report.md`,
//! `plane.svg` and `plane.json`.
//!
//! ```
//! // Two of the seven stages, on their synthetic stand-ins (about a second).
//! let out = std::env::temp_dir().join(format!("studies-doc-{}", std::process::id()));
//! let config = studies::Config {
//!     quick: true,
//!     out: out.clone(),
//!     stages: vec!["query".into(), "code".into()],
//!     progress: false,
//!     ..studies::Config::default()
//! };
//! let report = studies::run(&config)?;
//! report.write(&config.out)?;
//! assert_eq!(report.stages.len(), 2);
//! assert!(report.plane.points.iter().all(|p| p.synthetic));
//! assert!(out.join("plane.svg").is_file() && out.join("query/stage.json").is_file());
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok::<(), studies::StudiesError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use evals::plane::{Plane, PlanePoint};
use mf_router::harness_router::{HarnessRouterOptions, run_on_table, synthetic_outcomes};
use routing_core::cost::ModelCost;
use serde::{Deserialize, Serialize};

/// A stage's underlying error (each crate's own typed error, boxed).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong composing the studies.
#[derive(Debug, thiserror::Error)]
pub enum StudiesError {
    /// A full-mode input is missing; `command` produces it.
    #[error("{} is missing: run `{command}` first, or pass {flag}", path.display())]
    Missing {
        /// The file or folder looked for.
        path: PathBuf,
        /// The command that produces it.
        command: String,
        /// The option that points at another copy.
        flag: &'static str,
    },
    /// A model whose active parameters `lm` cannot count.
    #[error("{}: active parameters unknown", path.display())]
    UnknownParameters {
        /// The model file.
        path: PathBuf,
    },
    /// An unknown stage name.
    #[error("unknown stage {0:?} (stages: {stages})", stages = STAGES.join(", "))]
    UnknownStage(String),
    /// A stage's `stage.json` from an earlier run does not parse.
    #[error("{}: not a stage result ({source}); rerun that stage with `--fresh`, or delete the file", path.display())]
    StageFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The plane's figure or tables could not be written.
    #[error("writing the plane: {0}")]
    Plane(#[source] BoxError),
    /// A study failed (its crate's own error is the source).
    #[error("stage {stage}: {source}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// The study's error.
        #[source]
        source: BoxError,
    },
}

/// `Result` with [`StudiesError`].
pub type Result<T, E = StudiesError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StudiesError + '_ {
    move |source| StudiesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SmolLM2-135M's active parameters (`lm`'s count on the fetched GGUF: the tied embedding
/// counted once, as the LM head) — used for the synthetic stand-in's costs.
const SMOLLM2_ACTIVE: u64 = 134_515_008;
/// Gemma 3 270M's, the same way.
const GEMMA3_ACTIVE: u64 = 268_098_176;
/// MiniLM-L6's encoder parameters a token passes through (6 layers × (4·384² + 2·384·1536)),
/// for the query router's own FLOPs.
const MINILM_ACTIVE: f64 = 10_616_832.0;
/// MiniLM reads at most this many tokens.
const MINILM_MAX_TOKENS: f64 = 256.0;

/// The stages, in run order.
pub const STAGES: [&str; 7] = [
    "query", "token", "expert", "routing", "routellm", "code", "scaling",
];

/// What to run and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Synthetic defaults for the centre experiment and the MF studies, small scales
    /// everywhere (seconds).
    pub quick: bool,
    /// Output folder (each stage in a sub-folder).
    pub out: PathBuf,
    /// `shared/data`; `None`: found by [`datasets::shared_data_dir`].
    pub data: Option<PathBuf>,
    /// Full mode: the `lm_eval` outputs of the two models, `harness/smollm2` and
    /// `harness/gemma3` (lambada_openai and hellaswag per-sample files).
    pub harness: PathBuf,
    /// Full mode: a `guided_decode` output folder (its `summary.json`, task `lambada_gen`).
    pub guided: PathBuf,
    /// Full mode: a `bh_moe` output folder (its `logs/`, finished or not).
    pub bh: PathBuf,
    /// Full mode: the `bh_moe` testbed folder (for the active parameters).
    pub testbed: PathBuf,
    /// Seed of every random process.
    pub seed: u64,
    /// Rerun finished stages.
    pub fresh: bool,
    /// Run only these stages (empty: all); the others are read from earlier runs when there,
    /// else left out.
    pub stages: Vec<String>,
    /// Stage and study progress on stderr.
    pub progress: bool,
}

impl Default for Config {
    /// The full mode with the documented default folders (`out/eval11`, `out/gd12`,
    /// `out/bh13full`, `out/bh13/testbed`), output in `out/reproduce`, seed 0, quiet.
    fn default() -> Self {
        Self {
            quick: false,
            out: PathBuf::from("out/reproduce"),
            data: None,
            harness: PathBuf::from("out/eval11"),
            guided: PathBuf::from("out/gd12"),
            bh: PathBuf::from("out/bh13full"),
            testbed: PathBuf::from("out/bh13/testbed"),
            seed: 0,
            fresh: false,
            stages: Vec::new(),
            progress: false,
        }
    }
}

/// What a stage leaves behind: its markdown section and its points on the plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// Section title.
    pub title: String,
    /// Markdown body (headings nested under the section; figure links relative to the output
    /// folder).
    pub markdown: String,
    /// Points on the plane.
    pub points: Vec<PlanePoint>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl StageResult {
    /// A stage's result before it is timed (the runner sets [`StageResult::seconds`]).
    fn new(title: impl Into<String>, markdown: String, points: Vec<PlanePoint>) -> Self {
        Self {
            title: title.into(),
            markdown,
            points,
            seconds: 0.0,
        }
    }
}

/// Every stage's result and the plane they make together.
#[derive(Debug, Clone)]
pub struct Report {
    /// Whether the centre experiment ran on synthetic stand-ins.
    pub quick: bool,
    /// The stages run or kept, in order.
    pub stages: Vec<StageResult>,
    /// Every stage's points.
    pub plane: Plane,
    /// Wall time of [`run`], seconds.
    pub seconds: f64,
}

impl Report {
    /// `report.md`: the mode, the plane's figure and table, then each stage's section.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# Compute-aware inference, reproduced\n\n");
        md.push_str(if self.quick {
            "Mode: `--quick` — the centre experiment runs on **synthetic** stand-ins (seeded; not evidence about real models).\n\n"
        } else {
            "Mode: full — real data and models.\n\n"
        });
        md.push_str("![every router on one plane](plane.svg)\n\nMarkers: ◆ a model alone, ● query level, ▲ token level, ■ expert level.\n\n");
        md.push_str(&self.plane.to_markdown());
        for r in &self.stages {
            md.push_str(&format!(
                "\n## {} ({:.1} s)\n\n{}\n",
                r.title, r.seconds, r.markdown
            ));
        }
        md
    }

    /// Writes `report.md`, `plane.svg` and `plane.json` into `dir`.
    ///
    /// # Errors
    /// [`StudiesError::Io`] or [`StudiesError::Plane`], naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        self.plane
            .write(dir, "plane")
            .map_err(|e| StudiesError::Plane(Box::new(e)))?;
        let report = dir.join("report.md");
        std::fs::write(&report, self.to_markdown()).map_err(io(&report))
    }
}

/// Runs the selected stages (skipping those finished before unless [`Config::fresh`]) and
/// collects the plane.
///
/// # Errors
/// [`StudiesError::UnknownStage`] for a bad [`Config::stages`] name; a stage's failure as
/// [`StudiesError::Stage`] (or [`StudiesError::Missing`] for a missing full-mode input);
/// [`StudiesError::StageFile`] / [`StudiesError::Io`] for the stage files.
pub fn run(cfg: &Config) -> Result<Report> {
    if let Some(bad) = cfg.stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
        return Err(StudiesError::UnknownStage(bad.clone()));
    }
    let t = Instant::now();
    let data = cfg.data.clone().or_else(datasets::shared_data_dir);
    let data = data.as_deref();
    let stages: Vec<StageResult> = [
        stage(cfg, "query", |dir| query_level(cfg, dir))?,
        stage(cfg, "token", |dir| token_level(cfg, dir, data))?,
        stage(cfg, "expert", |dir| expert_level(cfg, dir, data))?,
        stage(cfg, "routing", |dir| routing_eval(dir, data))?,
        stage(cfg, "routellm", |dir| routellm(cfg, dir, data))?,
        stage(cfg, "code", |dir| code_study(cfg, dir, data))?,
        stage(cfg, "scaling", |dir| scaling(cfg, dir, data))?,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut plane = Plane::new(if cfg.quick {
        "One cost–quality plane (--quick: synthetic centre experiment)"
    } else {
        "One cost–quality plane: SmolLM2-135M and Gemma 3 270M, routed at three levels"
    });
    for r in &stages {
        plane.extend(r.points.iter().cloned());
    }
    Ok(Report {
        quick: cfg.quick,
        stages,
        plane,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Runs `f` unless `dir/stage.json` is there (and `fresh` is off); stores its result.
fn stage(
    cfg: &Config,
    name: &'static str,
    f: impl FnOnce(&Path) -> std::result::Result<StageResult, BoxError>,
) -> Result<Option<StageResult>> {
    let dir = cfg.out.join(name);
    let file = dir.join("stage.json");
    let selected = cfg.stages.is_empty() || cfg.stages.iter().any(|s| s == name);
    // An earlier run's result: none when the file is absent, an error when it is unreadable
    // or malformed (never silently left out of the report).
    let earlier = || -> Result<Option<StageResult>> {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&file)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StudiesError::StageFile {
                path: file.clone(),
                source,
            })
    };
    if !selected {
        return earlier();
    }
    if !cfg.fresh
        && let Some(done) = earlier()?
    {
        if cfg.progress {
            eprintln!("[{name}] done before ({:.1} s), kept", done.seconds);
        }
        return Ok(Some(done));
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    if cfg.progress {
        eprintln!("[{name}] running");
    }
    let t = Instant::now();
    let mut r = f(&dir).map_err(|e| match e.downcast::<StudiesError>() {
        Ok(own) => *own,
        Err(source) => StudiesError::Stage {
            stage: name,
            source,
        },
    })?;
    r.seconds = t.elapsed().as_secs_f64();
    let text = serde_json::to_string_pretty(&r).map_err(|e| StudiesError::Stage {
        stage: name,
        source: Box::new(e),
    })?;
    std::fs::write(&file, text).map_err(io(&file))?;
    if cfg.progress {
        eprintln!("[{name}] {:.1} s", r.seconds);
    }
    Ok(Some(r))
}

/// Benchmark names on the plane for the harness's task names.
fn bench_names() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("lambada_openai".to_string(), "LAMBADA".to_string()),
        ("hellaswag".to_string(), "HellaSwag".to_string()),
    ])
}

/// Strong shares of the query-level curves: every 10%.
fn shares() -> Vec<f64> {
    (0..=10).map(|i| f64::from(i) / 10.0).collect()
}

fn query_level(cfg: &Config, dir: &Path) -> Result<StageResult, BoxError> {
    let opts = HarnessRouterOptions {
        seed: cfg.seed,
        ..HarnessRouterOptions::default()
    };
    let (report, weak, strong, router_flops, synthetic) = if cfg.quick {
        let table = synthetic_outcomes(
            "SmolLM2-135M",
            "Gemma-3-270M",
            &[("lambada_openai", 93.0, 90.0), ("hellaswag", 330.0, 320.0)],
            500,
            cfg.seed,
        )?;
        let embedder = mf_router::embed_cache::HashEmbedder::new(64);
        let r = run_on_table(&table, "SmolLM2-135M", "Gemma-3-270M", &opts, &embedder)?;
        (
            r,
            ModelCost::local(SMOLLM2_ACTIVE),
            ModelCost::local(GEMMA3_ACTIVE),
            0.0,
            true,
        )
    } else {
        let (w, s) = (cfg.harness.join("smollm2"), cfg.harness.join("gemma3"));
        for d in [&w, &s] {
            if !d.is_dir() {
                return Err(StudiesError::Missing {
                    path: d.clone(),
                    command: format!(
                        "lm_eval --tasks lambada_openai,hellaswag --limit 1000 --out {}",
                        d.display()
                    ),
                    flag: "--harness",
                }
                .into());
            }
        }
        let runs = vec![
            ("SmolLM2-135M".to_string(), w),
            ("Gemma-3-270M".to_string(), s),
        ];
        let table = evals::harness::load_outcomes("harness", &runs)?;
        let encoder = lm::models::bert::SentenceEncoder::from_dir(
            lm::locate::minilm_dir()?,
            &burn::tensor::Device::flex(),
        )?;
        let r = run_on_table(&table, "SmolLM2-135M", "Gemma-3-270M", &opts, &encoder)?;
        let mean_tokens = r
            .decisions
            .iter()
            .map(|d| d.weak_tokens.min(MINILM_MAX_TOKENS))
            .sum::<f64>()
            / r.decisions.len().max(1) as f64;
        let (weak, strong) = model_costs()?;
        (r, weak, strong, 2.0 * MINILM_ACTIVE * mean_tokens, false)
    };
    report.write(dir)?;
    let points: Vec<PlanePoint> = report
        .plane_points(&weak, &strong, router_flops, &shares(), &bench_names())?
        .into_iter()
        .map(|p| p.synthetic(synthetic))
        .collect();
    Ok(StageResult::new(
        format!(
            "Query level: MF router on the harness outcomes{}",
            if synthetic { " (synthetic)" } else { "" }
        ),
        nest(&report.markdown(), "query"),
        points,
    ))
}

/// The two models' costs from the fetched GGUFs (their active parameters).
fn model_costs() -> Result<(ModelCost, ModelCost), BoxError> {
    use lm::LanguageModel;
    let dev = burn::tensor::Device::flex();
    let mut out = Vec::new();
    for path in [lm::locate::smollm2_gguf()?, lm::locate::gemma3_gguf()?] {
        let m = lm::CausalLm::open_with(&path, &dev, lm::Engine::Quantized)?;
        let p = m
            .active_parameters()
            .ok_or_else(|| StudiesError::UnknownParameters { path: path.clone() })?;
        out.push(ModelCost::local(p));
    }
    Ok((out[0], out[1]))
}

fn token_level(cfg: &Config, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use guided_decode::study::{OracleSource, StudyOptions, StudyReport, run_study_on};
    let (report, synthetic) = if cfg.quick {
        let small = guided_decode::testing::tiny_model(40, 1);
        let oracle = guided_decode::testing::tiny_model(40, 2);
        let items = guided_decode::testing::synthetic_items(&oracle, 30, cfg.seed)?;
        let mut opts = StudyOptions::new(
            dir,
            data.map(Path::to_path_buf).unwrap_or_default(),
            vec![evals::harness::Task::LambadaGen],
        );
        opts.seed = cfg.seed;
        opts.configs = Some(
            [
                "small",
                "oracle",
                "entropy:1x1",
                "entropy:2x1",
                "maxprob:0.5x1",
                "random:2x1",
                "random:4x1",
            ]
            .iter()
            .map(|s| guided_decode::study::HelpConfig::parse(s))
            .collect::<Result<_, _>>()?,
        );
        let r = run_study_on(
            &small,
            OracleSource::Model(&oracle),
            &[(evals::harness::Task::LambadaGen, items)],
            &opts,
        )?;
        (r, true)
    } else {
        let summary = cfg.guided.join("summary.json");
        if !summary.is_file() {
            return Err(StudiesError::Missing {
                path: summary,
                command: format!(
                    "guided_decode --tasks lambada_gen --out {}",
                    cfg.guided.display()
                ),
                flag: "--guided",
            }
            .into());
        }
        let r = StudyReport::load(&summary)?;
        r.write(dir)?;
        (r, false)
    };
    // The same two models as the query level, under the same names.
    let rename = |name: String| {
        if synthetic {
            name
        } else if name == report.small {
            "SmolLM2-135M".to_string()
        } else if name == report.oracle {
            "Gemma-3-270M".to_string()
        } else {
            name
        }
    };
    let points = report
        .plane_points("lambada_gen", "LAMBADA (generation)")
        .into_iter()
        .map(|mut p| {
            p.router = rename(std::mem::take(&mut p.router));
            p.synthetic(synthetic)
        })
        .collect();
    Ok(StageResult::new(
        format!(
            "Token level: guided decoding{}",
            if synthetic {
                " (synthetic: tiny random models)"
            } else {
                ""
            }
        ),
        nest(&report.to_markdown(), "token"),
        points,
    ))
}

fn expert_level(cfg: &Config, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use bh_moe::study::pipeline::{ModelSource, StudyPlan, run};
    use bh_moe::study::{Dataset, load_experiments, plane_points, seed_grid};
    if cfg.quick {
        let golden = data
            .and_then(Path::parent)
            .map(|s| s.join("golden/olmoe_tiny/hf"))
            .filter(|p| p.is_dir());
        let mut plan = StudyPlan::new(ModelSource::Synthetic(golden));
        plan.data_dir = data.map(Path::to_path_buf);
        plan.datasets = vec![Dataset::Lambada, Dataset::Hellaswag];
        plan.limit = 10;
        plan.grid = seed_grid(&[2, 4, 8], &[8], &[0.3, 0.5]);
        plan.top_p = false;
        plan.window = 64;
        plan.calibration_tokens = 2_048;
        plan.seed = cfg.seed;
        plan.output = dir.to_path_buf();
        plan.progress = false;
        let report = run(&plan, &burn::tensor::Device::flex(), &mut |m| {
            if cfg.progress {
                eprintln!("  {m}")
            }
        })?;
        let points = report
            .plane_points()
            .into_iter()
            .map(|p| p.synthetic(true))
            .collect();
        return Ok(StageResult::new(
            "Expert level: BH vs top-k (synthetic: the tiny OLMoE on synthetic text)",
            nest(&bh_moe::study::report::markdown(&report), "expert"),
            points,
        ));
    }
    if !cfg.bh.join("logs").is_dir() {
        return Err(StudiesError::Missing {
            path: cfg.bh.join("logs"),
            command: format!("bh_moe --out {}", cfg.bh.display()),
            flag: "--bh",
        }
        .into());
    }
    let mut experiments = load_experiments(&cfg.bh)?;
    let testbed = bh_moe::testbed::Testbed::load(&cfg.testbed)?;
    let dense = lm::CausalLm::open_with(
        &lm::locate::smollm2_gguf()?,
        &burn::tensor::Device::flex(),
        lm::Engine::Quantized,
    )?;
    let spec = testbed.spec(dense.spec())?;
    bh_moe::study::fill_active_parameters(&mut experiments, &spec);
    let points = plane_points(&experiments);
    let mut md = format!(
        "{} experiments read from `{}` (LAMBADA and HellaSwag `acc` — the per-item correctness the query router learns from — against FLOPs per item at the measured mean k):\n\n| experiment | dataset | items | mean k | accuracy | GFLOPs/item |\n|---|---|---|---|---|---|\n",
        experiments.len(),
        cfg.bh.display()
    );
    for e in &experiments {
        if let Some(acc) = e.task_metrics.get("acc") {
            md.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.3} | {:.2} |\n",
                e.config,
                e.dataset.name(),
                e.samples,
                e.mean_k,
                acc,
                e.flops_per_item().unwrap_or(f64::NAN) / 1e9
            ));
        }
    }
    Ok(StageResult::new(
        "Expert level: BH vs top-k on the SmolLM2 MoE testbed",
        md,
        points,
    ))
}

/// RouteLLM- and RouterBench-style routing evaluation (`evals::routing::route_eval`): every
/// real-data preset when the data is there (seconds), else the synthetic study. RouterBench's
/// N-model sweeps (per-prompt USD costs) go on the plane.
fn routing_eval(dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use evals::routing::route_eval::{Preset, SectionReport, Source, StudyConfig, run};
    let source = match data {
        Some(d) => Source::Presets {
            presets: vec![Preset::All],
            data_dir: Some(d.to_path_buf()),
        },
        None => Source::Synthetic {
            seed: evals::routing::route_eval::DEFAULT_SYNTHETIC_SEED,
        },
    };
    let report = run(&StudyConfig {
        source,
        ..StudyConfig::default()
    })?;
    report.write(dir)?;
    let mut points = Vec::new();
    for s in &report.sections {
        if let (Some(task), SectionReport::Multi(m)) =
            (s.slug.strip_prefix("routerbench-"), &s.report)
        {
            let task = task.split('-').next().unwrap_or(task).to_uppercase();
            points.extend(evals::plane::multi_points(
                m,
                &format!("{task} (RouterBench, 11 models)"),
            ));
        }
    }
    Ok(StageResult::new(
        format!(
            "Query level on public data: RouteLLM and RouterBench routing evaluation{}",
            if data.is_none() { " (synthetic)" } else { "" }
        ),
        nest(&report.to_markdown(), "routing"),
        points,
    ))
}

/// The MF source: the data folder, or (`--quick`, or no data) the seeded synthetic task.
fn mf_source(cfg: &Config, data: Option<&Path>, n_items: usize) -> mf_router::study::Source {
    mf_router::study::Source::pick(
        cfg.quick || data.is_none(),
        data.map(Path::to_path_buf),
        n_items,
    )
}

/// RouteLLM's MF router on RouteLLM's MMLU/GSM8K outcomes and RouterBench's 11 models
/// (`mf_router::study::routellm`); `--quick`: the synthetic task. RouterBench's
/// willingness-to-pay sweep (per-prompt USD) goes on the plane.
fn routellm(cfg: &Config, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use mf_router::study::routellm::{RouteLlmConfig, run};
    let source = mf_source(cfg, data, 3_000);
    let synthetic = source.is_synthetic();
    let encoder = source.minilm(cfg.progress)?;
    let report = run(
        &RouteLlmConfig {
            source,
            quick: cfg.quick,
            ..RouteLlmConfig::default()
        },
        encoder.as_ref(),
    )?;
    report.write(dir)?;
    // RouterBench's costs are USD per prompt; the synthetic task's are made-up units, kept
    // off the dollar axis.
    let points = match (&report.multi, synthetic) {
        (Some(m), false) => {
            evals::plane::multi_points(&m.report, "RouterBench (3 zero-shot slices, 11 models)")
        }
        _ => Vec::new(),
    };
    Ok(StageResult::new(
        format!(
            "Query level: RouteLLM's matrix-factorisation router{}",
            if synthetic { " (synthetic task)" } else { "" }
        ),
        nest(&report.to_markdown(), "routellm"),
        points,
    ))
}

/// The MBPP small/large routing study (`mf_router::study::code`); `--quick`: the synthetic
/// task.
fn code_study(cfg: &Config, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use mf_router::study::code::{CodeConfig, run};
    let source = mf_source(cfg, data, 400);
    let synthetic = source.is_synthetic();
    let encoder = source.minilm(cfg.progress)?;
    let report = run(
        &CodeConfig {
            source,
            ..CodeConfig::default()
        },
        encoder.as_ref(),
    )?;
    report.write(dir)?;
    Ok(StageResult::new(
        format!(
            "Query level: the MBPP small/large classifier-router study{}",
            if synthetic { " (synthetic task)" } else { "" }
        ),
        nest(&report.to_markdown(), "code"),
        Vec::new(),
    ))
}

/// The scaling-law pipeline (`scaling_fit::study`): Chinchilla, over-training and Pythia on
/// the real runs when the data is there, else the seeded synthetic ladder. Not a router: its
/// forecasts are in the report, not on the plane.
fn scaling(cfg: &Config, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use scaling_fit::study::{Source, StudyConfig, run};
    let config = StudyConfig {
        source: match data {
            Some(d) => Source::Data(d.to_path_buf()),
            None => Source::Synthetic { seed: cfg.seed },
        },
        bootstrap: if cfg.quick { 50 } else { 200 },
        bootstrap_seed: cfg.seed,
        // --quick: the 243-start sub-grid instead of the paper's 4 500 starts.
        grid: if cfg.quick {
            scaling_fit::InitGrid::coarse()
        } else {
            scaling_fit::InitGrid::hoffmann()
        },
        ..StudyConfig::default()
    };
    let report = run(&config)?;
    report.write(dir)?;
    Ok(StageResult::new(
        format!(
            "What a bigger training run buys: scaling laws{}",
            if data.is_none() {
                " (synthetic ladder)"
            } else {
                ""
            }
        ),
        nest(&report.to_markdown(), "scaling"),
        Vec::new(),
    ))
}

/// Nests a stage's report under a section of `report.md`: headings one level down, figure
/// links made relative to the top folder (`curves.svg` → `token/curves.svg`).
fn nest(md: &str, stage: &str) -> String {
    md.lines()
        .map(|l| {
            let l = if l.starts_with('#') {
                format!("##{l}")
            } else {
                l.to_string()
            };
            let mut out = String::with_capacity(l.len());
            let mut rest = l.as_str();
            while let Some(i) = rest.find("](") {
                out.push_str(&rest[..i + 2]);
                rest = &rest[i + 2..];
                let end = rest.find(')').unwrap_or(rest.len());
                let target = &rest[..end];
                if target.ends_with(".svg") && !target.contains('/') {
                    out.push_str(stage);
                    out.push('/');
                }
            }
            out.push_str(rest);
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nest_moves_headings_and_links() {
        let md = "# A\n![f](curves.svg) and [x](sub/a.svg)\n## B";
        assert_eq!(
            nest(md, "token"),
            "### A\n![f](token/curves.svg) and [x](sub/a.svg)\n#### B"
        );
    }

    #[test]
    fn unknown_stage_and_missing_inputs_are_typed() {
        let out = std::env::temp_dir().join(format!("studies-test-{}", std::process::id()));
        let cfg = Config {
            out: out.clone(),
            stages: vec!["plane".into()],
            progress: false,
            ..Config::default()
        };
        assert!(matches!(run(&cfg), Err(StudiesError::UnknownStage(s)) if s == "plane"));
        let cfg = Config {
            stages: vec!["token".into()],
            guided: out.join("no-such-run"),
            ..cfg
        };
        let err = run(&cfg).unwrap_err();
        assert!(
            matches!(
                &err,
                StudiesError::Missing {
                    flag: "--guided",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("guided_decode --tasks lambada_gen")
        );
        // A torn stage.json of a stage not selected is an error naming it, not a lost section.
        std::fs::create_dir_all(out.join("scaling")).unwrap();
        std::fs::write(out.join("scaling/stage.json"), "{\"title\": ").unwrap();
        let cfg = Config {
            stages: vec!["code".into()],
            quick: true,
            ..cfg
        };
        let err = run(&cfg).unwrap_err();
        assert!(
            matches!(&err, StudiesError::StageFile { path, .. } if path.ends_with("scaling/stage.json")),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(out);
    }
}
