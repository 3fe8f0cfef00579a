//! `reproduce` — the workspace's studies in one command, and every router on one cost–quality
//! plane.
//!
//! ```text
//! cargo run --release -p examples --bin reproduce -- --quick     # minutes, anywhere
//! cargo run --release -p examples --bin reproduce                # real data, models, long runs
//! ```
//!
//! The plane's centre is one experiment at all three levels on the same benchmarks and the
//! same two models, SmolLM2-135M (cheap) and Gemma 3 270M (strong), on LAMBADA and HellaSwag:
//! * **query level** — an MF router trained on the two models' own `lm_eval` per-sample
//!   outcomes (`mf_router::harness_router`; test items, every 10% of strong share);
//! * **token level** (LAMBADA) — guided decoding of SmolLM2 with Gemma as the oracle
//!   (`guided_decode::study`: entropy, max-probability and random triggers);
//! * **expert level** — the SmolLM2 mixture-of-experts testbed at its Benjamini–Hochberg and
//!   top-k settings (`bh_moe::study`).
//!
//! Around it, the other studies run and report in their own sections (and on the plane where
//! they have a cost per query): RouteLLM-style routing evaluation (`evals::routing`), the
//! scaling-law pipeline (`scaling_fit::study`).
//!
//! `--quick` uses embedded synthetic defaults (seeded; documented as synthetic in every
//! table and on the figure) for the centre experiment — synthetic harness outcomes for the
//! query level, tiny random models on synthetic items for the token level, the tiny OLMoE on
//! synthetic text for the expert level — and the real data for the fast studies when
//! `../shared/data` is there. The full mode reads the long real-model runs from their output
//! folders (`--harness`, `--guided`, `--bh`; each names the command that produces it) and
//! trains the query router with MiniLM.
//!
//! Each stage writes its folder under `--out` and a `stage.json`; a rerun skips finished
//! stages (`--fresh` reruns all). Output: `report.md`, `plane.svg`, `plane.json`.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/mf.rs"]
mod mf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use evals::plane::{Plane, PlanePoint};
use mf_router::harness_router::{HarnessRouterOptions, run_on_table, synthetic_outcomes};
use routing_core::cost::ModelCost;
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// All studies and the unified cost–quality plane.
#[derive(Parser, Debug)]
#[command(name = "reproduce", version)]
struct Args {
    /// Synthetic defaults for the centre experiment, small scales everywhere (minutes).
    #[arg(long)]
    quick: bool,
    /// Output folder.
    #[arg(long, default_value = "out/reproduce")]
    out: PathBuf,
    /// shared/data. Default: found above the current folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Full mode: the lm_eval outputs of the two models, FOLDER/smollm2 and FOLDER/gemma3
    /// (lambada_openai and hellaswag per-sample files).
    #[arg(long, default_value = "out/eval11")]
    harness: PathBuf,
    /// Full mode: a guided_decode output folder (its summary.json, task lambada_gen).
    #[arg(long, default_value = "out/gd12")]
    guided: PathBuf,
    /// Full mode: a bh_moe output folder (its logs/, finished or not).
    #[arg(long, default_value = "out/bh13full")]
    bh: PathBuf,
    /// Full mode: the bh_moe testbed folder (for the active parameters of older summaries).
    #[arg(long, default_value = "out/bh13/testbed")]
    testbed: PathBuf,
    /// Seed of every random process.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rerun finished stages.
    #[arg(long)]
    fresh: bool,
    /// Run only these stages (comma-separated; the others are read from earlier runs when
    /// there, else left out).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(STAGES))]
    stages: Vec<String>,
}

/// The stages, in run order.
const STAGES: [&str; 7] = [
    "query", "token", "expert", "routing", "routellm", "code", "scaling",
];

/// What a stage leaves behind: its markdown section and its points on the plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StageResult {
    /// Section title.
    title: String,
    /// Markdown body.
    markdown: String,
    /// Points on the plane.
    points: Vec<PlanePoint>,
    /// Wall time, seconds.
    seconds: f64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    cli::run(|| go(&args))
}

/// Runs `f` unless `dir/stage.json` is there (and `--fresh` is off); stores its result.
fn stage(
    args: &Args,
    name: &str,
    f: impl FnOnce(&Path) -> Result<StageResult, BoxError>,
) -> Result<Option<StageResult>, BoxError> {
    let dir = args.out.join(name);
    let file = dir.join("stage.json");
    let selected = args.stages.is_empty() || args.stages.iter().any(|s| s == name);
    if !selected {
        return Ok(std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok()));
    }
    if !args.fresh
        && let Ok(text) = std::fs::read_to_string(&file)
    {
        let done: StageResult = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a stage result ({e}); rerun with --fresh",
                file.display()
            )
        })?;
        eprintln!("[{name}] done before ({:.1} s), kept", done.seconds);
        return Ok(Some(done));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!("[{name}] running");
    let t = Instant::now();
    let mut r = f(&dir)?;
    r.seconds = t.elapsed().as_secs_f64();
    std::fs::write(&file, serde_json::to_string_pretty(&r)?)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!("[{name}] {:.1} s", r.seconds);
    Ok(Some(r))
}

fn go(args: &Args) -> Result<(), BoxError> {
    let t = Instant::now();
    let data = args.data.clone().or_else(datasets::shared_data_dir);
    let results: Vec<StageResult> = [
        stage(args, "query", |dir| query_level(args, dir))?,
        stage(args, "token", |dir| token_level(args, dir, data.as_deref()))?,
        stage(args, "expert", |dir| {
            expert_level(args, dir, data.as_deref())
        })?,
        stage(args, "routing", |dir| routing_eval(dir, data.as_deref()))?,
        stage(args, "routellm", |dir| routellm(args, dir, data.as_deref()))?,
        stage(args, "code", |dir| code_study(args, dir, data.as_deref()))?,
        stage(args, "scaling", |dir| scaling(args, dir, data.as_deref()))?,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut plane = Plane::new(if args.quick {
        "One cost–quality plane (--quick: synthetic centre experiment)"
    } else {
        "One cost–quality plane: SmolLM2-135M and Gemma 3 270M, routed at three levels"
    });
    for r in &results {
        plane.extend(r.points.iter().cloned());
    }
    plane.write(&args.out, "plane")?;
    let mut md = String::from("# Compute-aware inference, reproduced\n\n");
    md.push_str(if args.quick {
        "Mode: `--quick` — the centre experiment runs on **synthetic** stand-ins (seeded; not evidence about real models).\n\n"
    } else {
        "Mode: full — real data and models.\n\n"
    });
    md.push_str("![every router on one plane](plane.svg)\n\nMarkers: ◆ a model alone, ● query level, ▲ token level, ■ expert level.\n\n");
    md.push_str(&plane.to_markdown());
    for r in &results {
        md.push_str(&format!(
            "\n## {} ({:.1} s)\n\n{}\n",
            r.title, r.seconds, r.markdown
        ));
    }
    let report = args.out.join("report.md");
    std::fs::write(&report, md).map_err(|e| format!("{}: {e}", report.display()))?;
    eprintln!(
        "{} points on the plane; {} in {:.1} s",
        plane.points.len(),
        report.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
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

fn query_level(args: &Args, dir: &Path) -> Result<StageResult, BoxError> {
    let opts = HarnessRouterOptions {
        seed: args.seed,
        ..HarnessRouterOptions::default()
    };
    let (report, weak, strong, router_flops, synthetic) = if args.quick {
        let table = synthetic_outcomes(
            "SmolLM2-135M",
            "Gemma-3-270M",
            &[("lambada_openai", 93.0, 90.0), ("hellaswag", 330.0, 320.0)],
            500,
            args.seed,
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
        let (w, s) = (args.harness.join("smollm2"), args.harness.join("gemma3"));
        for d in [&w, &s] {
            if !d.is_dir() {
                return Err(format!(
                    "{} is missing: run `lm_eval --tasks lambada_openai,hellaswag --limit 1000 --out {}` (see examples/harness_router.rs), or pass --harness",
                    d.display(),
                    d.display()
                )
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
    Ok(StageResult {
        title: format!(
            "Query level: MF router on the harness outcomes{}",
            if synthetic { " (synthetic)" } else { "" }
        ),
        markdown: nest(&report.markdown(), "query"),
        points,
        seconds: 0.0,
    })
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
            .ok_or_else(|| format!("{}: active parameters unknown", path.display()))?;
        out.push(ModelCost::local(p));
    }
    Ok((out[0], out[1]))
}

fn token_level(args: &Args, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use guided_decode::study::{OracleSource, StudyOptions, StudyReport, run_study_on};
    let (report, synthetic) = if args.quick {
        let small = guided_decode::testing::tiny_model(40, 1);
        let oracle = guided_decode::testing::tiny_model(40, 2);
        let items = guided_decode::testing::synthetic_items(&oracle, 30, args.seed)?;
        let mut opts = StudyOptions::new(
            dir,
            data.map(Path::to_path_buf).unwrap_or_default(),
            vec![evals::harness::Task::LambadaGen],
        );
        opts.seed = args.seed;
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
        let summary = args.guided.join("summary.json");
        if !summary.is_file() {
            return Err(format!(
                "{} is missing: run `guided_decode --tasks lambada_gen --out {}` (docs/guided.md), or pass --guided",
                summary.display(),
                args.guided.display()
            )
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
    Ok(StageResult {
        title: format!(
            "Token level: guided decoding{}",
            if synthetic {
                " (synthetic: tiny random models)"
            } else {
                ""
            }
        ),
        markdown: nest(&report.to_markdown(), "token"),
        points,
        seconds: 0.0,
    })
}

fn expert_level(args: &Args, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use bh_moe::study::pipeline::{ModelSource, StudyPlan, run};
    use bh_moe::study::{Dataset, load_experiments, plane_points, seed_grid};
    if args.quick {
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
        plan.seed = args.seed;
        plan.output = dir.to_path_buf();
        plan.progress = false;
        let report = run(&plan, &burn::tensor::Device::flex(), &mut |m| {
            eprintln!("  {m}")
        })?;
        let points = report
            .plane_points()
            .into_iter()
            .map(|p| p.synthetic(true))
            .collect();
        return Ok(StageResult {
            title: "Expert level: BH vs top-k (synthetic: the tiny OLMoE on synthetic text)".into(),
            markdown: nest(&bh_moe::study::report::markdown(&report), "expert"),
            points,
            seconds: 0.0,
        });
    }
    let mut experiments = load_experiments(&args.bh).map_err(|e| {
        format!(
            "{e}: run `bh_moe --out {}` first (docs/bh_moe.md), or pass --bh",
            args.bh.display()
        )
    })?;
    let testbed = bh_moe::testbed::Testbed::load(&args.testbed)?;
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
        args.bh.display()
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
    Ok(StageResult {
        title: "Expert level: BH vs top-k on the SmolLM2 MoE testbed".into(),
        markdown: md,
        points,
        seconds: 0.0,
    })
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
    Ok(StageResult {
        title: format!(
            "Query level on public data: RouteLLM and RouterBench routing evaluation{}",
            if data.is_none() { " (synthetic)" } else { "" }
        ),
        markdown: nest(&report.to_markdown(), "routing"),
        points,
        seconds: 0.0,
    })
}

/// The MF source: the data folder, or (`--quick`, or no data) the seeded synthetic task.
fn mf_source(args: &Args, data: Option<&Path>, n_items: usize) -> mf_router::study::Source {
    mf::source(
        args.quick || data.is_none(),
        data.map(Path::to_path_buf),
        n_items,
    )
}

/// RouteLLM's MF router on RouteLLM's MMLU/GSM8K outcomes and RouterBench's 11 models
/// (`mf_router::study::routellm`); `--quick`: the synthetic task. RouterBench's
/// willingness-to-pay sweep (per-prompt USD) goes on the plane.
fn routellm(args: &Args, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use mf_router::study::routellm::{RouteLlmConfig, run};
    let source = mf_source(args, data, 3_000);
    let synthetic = source.is_synthetic();
    let encoder = mf::minilm(&source)?;
    let report = run(
        &RouteLlmConfig {
            source,
            quick: args.quick,
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
    Ok(StageResult {
        title: format!(
            "Query level: RouteLLM's matrix-factorisation router{}",
            if synthetic { " (synthetic task)" } else { "" }
        ),
        markdown: nest(&report.to_markdown(), "routellm"),
        points,
        seconds: 0.0,
    })
}

/// The MBPP small/large routing study (`mf_router::study::code`); `--quick`: the synthetic
/// task.
fn code_study(args: &Args, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use mf_router::study::code::{CodeConfig, run};
    let source = mf_source(args, data, 400);
    let synthetic = source.is_synthetic();
    let encoder = mf::minilm(&source)?;
    let report = run(
        &CodeConfig {
            source,
            ..CodeConfig::default()
        },
        encoder.as_ref(),
    )?;
    report.write(dir)?;
    Ok(StageResult {
        title: format!(
            "Query level: the MBPP small/large classifier-router study{}",
            if synthetic { " (synthetic task)" } else { "" }
        ),
        markdown: nest(&report.to_markdown(), "code"),
        points: Vec::new(),
        seconds: 0.0,
    })
}

/// The scaling-law pipeline (`scaling_fit::study`): Chinchilla, over-training and Pythia on
/// the real runs when the data is there, else the seeded synthetic ladder. Not a router: its
/// forecasts are in the report, not on the plane.
fn scaling(args: &Args, dir: &Path, data: Option<&Path>) -> Result<StageResult, BoxError> {
    use scaling_fit::study::{Source, StudyConfig, run};
    let config = StudyConfig {
        source: match data {
            Some(d) => Source::Data(d.to_path_buf()),
            None => Source::Synthetic { seed: args.seed },
        },
        bootstrap: if args.quick { 50 } else { 200 },
        bootstrap_seed: args.seed,
        // --quick: the 243-start sub-grid instead of the paper's 4 500 starts.
        grid: if args.quick {
            scaling_fit::InitGrid::coarse()
        } else {
            scaling_fit::InitGrid::hoffmann()
        },
        ..StudyConfig::default()
    };
    let report = run(&config)?;
    report.write(dir)?;
    Ok(StageResult {
        title: format!(
            "What a bigger training run buys: scaling laws{}",
            if data.is_none() {
                " (synthetic ladder)"
            } else {
                ""
            }
        ),
        markdown: nest(&report.to_markdown(), "scaling"),
        points: Vec::new(),
        seconds: 0.0,
    })
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
