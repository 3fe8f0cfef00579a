//! `bh_moe` — adaptive expert counts in a mixture of experts (seed 004): Benjamini–Hochberg
//! routing against top-k and top-p, on the seed's grid, three datasets and 16 metrics.
//!
//! ```text
//! # The SmolLM2-135M testbed (64 experts of 24 neurons), 200 items per dataset, the full grid:
//! cargo run --release -p examples --bin bh_moe
//! # A quick slice:
//! cargo run --release -p examples --bin bh_moe -- --limit 20 --max-k 64 --alphas 0.3,0.5 --topk 32,64
//! # OLMoE-1B-7B itself (Hugging Face directory with tokenizer.json, or a GGUF):
//! cargo run --release -p examples --bin bh_moe -- --model path/to/OLMoE-1B-7B-0924 --reference-k 8
//! # No data or models: olmoe_tiny (or a random tiny OLMoE) on synthetic text (numbers are meaningless):
//! cargo run --release -p examples --bin bh_moe -- --synthetic
//! ```
//!
//! Writes `logs/{config}_{dataset}.json` + `…_internal_routing.parquet` (+ `.json` sidecar),
//! `bh_routing_results.{csv,json}`, `bh_routing_figure.svg`, `nulls.json` and `report.md` into
//! `--out` (default `out/bh_moe`). Finished experiments are skipped when rerun.

#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use bh_moe::study::pipeline::{ModelSource, StudyPlan, run};
use bh_moe::study::{Dataset, seed_grid};
use bh_moe::testbed::TestbedOptions;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// BH vs top-k vs top-p expert routing: the seed's 60-experiment study.
#[derive(Parser, Debug)]
#[command(name = "bh_moe", version)]
struct Args {
    /// An OLMoE checkpoint (HF directory or GGUF), or a dense SwiGLU GGUF to split into the
    /// testbed. Default: the fetched SmolLM2-135M-Instruct GGUF.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Treat --model as OLMoE (it is detected from `olmoe` in the name or config otherwise).
    #[arg(long)]
    olmoe: bool,
    /// shared/data (WikiText-2, LAMBADA, HellaSwag). Default: found above the current folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Datasets, comma-separated.
    #[arg(
        long,
        default_value = "wikitext,lambada,hellaswag",
        value_delimiter = ','
    )]
    datasets: Vec<String>,
    /// Items per dataset [default: 200; 10 with --synthetic].
    #[arg(long)]
    limit: Option<usize>,
    /// WikiText-2 documents, when fewer than --limit (each is ~4,500 tokens).
    #[arg(long)]
    wikitext_docs: Option<usize>,
    /// Top-k baselines [default: 8,16,32,64; 2,4,8,16 with --synthetic].
    #[arg(long, value_delimiter = ',')]
    topk: Option<Vec<usize>>,
    /// BH max_k values [default: as --topk].
    #[arg(long, value_delimiter = ',')]
    max_k: Option<Vec<usize>>,
    /// BH levels α.
    #[arg(long, default_value = "0.3,0.4,0.5,0.6", value_delimiter = ',')]
    alphas: Vec<f64>,
    /// Skip the top-p configurations matched to BH's mean expert counts.
    #[arg(long)]
    no_top_p: bool,
    /// Testbed: experts per layer.
    #[arg(long, default_value_t = 64)]
    experts: usize,
    /// Testbed artefact folder (built there when missing) [default: OUT/testbed].
    #[arg(long)]
    testbed: Option<PathBuf>,
    /// Calibration tokens (router fit, KDE nulls).
    #[arg(long, default_value_t = 16_384)]
    calibration_tokens: usize,
    /// Expert-overlap baseline k (default: 32 on the testbed, the model's k on OLMoE).
    #[arg(long)]
    reference_k: Option<usize>,
    /// Seed (k-means, KDE subsamples, synthetic data).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output folder.
    #[arg(long, default_value = "out/bh_moe")]
    out: PathBuf,
    /// olmoe_tiny (or a random tiny OLMoE) on synthetic text; no data or models needed.
    #[arg(long)]
    synthetic: bool,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    sharding: cli::ShardArgs,
}

fn main() -> ExitCode {
    let a = Args::parse();
    cli::run(|| study(&a))
}

fn study(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = backend::device(&a.device)?;
    if !a.sharding.merge.is_empty() {
        bh_moe::study::merge_runs(&a.sharding.merge, &a.out)?;
        eprintln!(
            "merged {} shards into {}",
            a.sharding.merge.len(),
            a.out.display()
        );
    }
    let testbed = a
        .testbed
        .clone()
        .unwrap_or_else(|| match a.sharding.merge.first() {
            Some(first) if first.join("testbed").is_dir() => first.join("testbed"),
            _ => a.out.join("testbed"),
        });
    let data = a.data.clone().or_else(datasets::shared_data_dir);
    let source = if a.synthetic {
        let golden = data
            .as_ref()
            .and_then(|d| d.parent())
            .map(|s| s.join("golden/olmoe_tiny/hf"))
            .filter(|p| p.is_dir());
        ModelSource::Synthetic(golden)
    } else {
        let model = match &a.model {
            Some(m) => m.clone(),
            None => lm::locate::smollm2_gguf()?,
        };
        let is_olmoe = a.olmoe || model.to_string_lossy().to_lowercase().contains("olmoe");
        if is_olmoe {
            ModelSource::Olmoe(model)
        } else {
            ModelSource::Testbed {
                base: model,
                dir: testbed,
                options: TestbedOptions {
                    experts: a.experts,
                    seed: a.seed,
                    ..TestbedOptions::default()
                },
            }
        }
    };
    let mut plan = StudyPlan::new(source);
    plan.data_dir = data;
    plan.datasets = a
        .datasets
        .iter()
        .map(|d| Dataset::parse(d))
        .collect::<Result<_, _>>()?;
    plan.limit = a.limit.unwrap_or(if a.synthetic { 10 } else { 200 });
    let ks = if a.synthetic {
        vec![2, 4, 8, 16]
    } else {
        vec![8, 16, 32, 64]
    };
    let topk = a.topk.clone().unwrap_or_else(|| ks.clone());
    plan.wikitext_limit = a.wikitext_docs;
    plan.grid = seed_grid(&topk, a.max_k.as_ref().unwrap_or(&topk), &a.alphas);
    plan.top_p = !a.no_top_p;
    plan.calibration_tokens = a.calibration_tokens;
    plan.seed = a.seed;
    plan.output = a.out.clone();
    plan.reference_k = a.reference_k;
    plan.progress = !a.no_progress;
    plan.shard = a.sharding.shard;
    if a.synthetic {
        plan.window = 64;
        plan.calibration_tokens = plan.calibration_tokens.min(4_096);
    }
    let start = std::time::Instant::now();
    let report = run(&plan, &device, &mut |m| eprintln!("{m}"))?;
    print!("{}", bh_moe::study::report::markdown(&report));
    eprintln!(
        "{} experiments in {:.1} s; report: {}",
        report.experiments.len(),
        start.elapsed().as_secs_f64(),
        a.out.join("report.md").display()
    );
    Ok(())
}
