//! `routellm_mf` — RouteLLM's matrix-factorisation router (Ong et al. 2024, §4.2) trained on
//! golden-label battles from real outcomes, evaluated RouteLLM-style against random and
//! oracle routers, plus an N-model (RouterBench, 11 models) willingness-to-pay evaluation.
//! The study itself is `mf_router::study::routellm`; this binary parses flags, loads MiniLM
//! and writes the report.
//!
//! ```text
//! cargo run --release -p examples --bin routellm_mf                 # full run (uses the cache)
//! cargo run --release -p examples --bin routellm_mf -- --quick      # 2 seeds, fewer epochs
//! cargo run --release -p examples --bin routellm_mf -- --synthetic  # no data, no MiniLM (seconds)
//! ```
//!
//! Needs `../shared/data` (or `CAI_DATA_DIR`) and the MiniLM files (`bash scripts/fetch_models.sh`),
//! unless `--synthetic`. Query embeddings are cached in `out/embed-cache/all-MiniLM-L6-v2.mfemb`
//! (`--cache`); the first run embeds ≈18k prompts (minutes on two cores), later runs read the
//! cache. Experiments: MMLU held-out questions, GSM8K (out of distribution), MMLU held-out
//! subjects, N models (RouterBench), speed — see `mf_router::study::routellm`.
//!
//! Output: `report.md`, SVG figures, `summary.json` and a checkpoint in `--out`
//! (default `out/routellm_mf`).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mf_router::study::routellm;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// RouteLLM's matrix-factorisation router: trained on golden-label battles, evaluated
/// RouteLLM-style, plus an N-model willingness-to-pay evaluation.
#[derive(Parser, Debug)]
#[command(
    name = "routellm_mf",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir, conflicts_with = "synthetic")]
    data: Option<PathBuf>,
    /// Output folder (report.md, SVG figures, summary.json, checkpoint).
    #[arg(long, value_name = "DIR", default_value = "out/routellm_mf")]
    out: PathBuf,
    /// The MiniLM embedding cache.
    #[arg(long, value_name = "FILE", default_value = mf_router::study::DEFAULT_CACHE)]
    cache: PathBuf,
    /// Seeds of every experiment [default: 5; 2 with --quick].
    #[arg(long)]
    seeds: Option<u64>,
    /// Training epochs at most [default: 30; 10 with --quick].
    #[arg(long)]
    epochs: Option<usize>,
    /// MMLU subjects held out for the held-out-subjects experiment.
    #[arg(long, default_value_t = 10)]
    held_out_subjects: usize,
    /// Skip the N-model (RouterBench) evaluation.
    #[arg(long)]
    skip_multi: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Early-stopping patience in epochs.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// A quick run: 2 seeds and 10 epochs unless --seeds / --epochs say otherwise.
    #[arg(long)]
    quick: bool,
    /// Run on seeded synthetic outcomes and embeddings (not real data): no data folder, no
    /// MiniLM, seconds.
    #[arg(long)]
    synthetic: bool,
    /// Items of the synthetic question set.
    #[arg(long, value_name = "N", default_value_t = 2000, requires = "synthetic")]
    synthetic_items: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| body(args))
}

fn body(args: Args) -> Result<(), BoxError> {
    let source = mf_router::study::Source::pick(args.synthetic, args.data, args.synthetic_items);
    let config = routellm::RouteLlmConfig {
        source,
        cache: args.cache,
        seeds: args.seeds,
        epochs: args.epochs,
        quick: args.quick,
        held_out_subjects: args.held_out_subjects,
        skip_multi: args.skip_multi,
        lr: args.lr,
        patience: args.patience,
        progress: true,
    };
    let encoder = config.source.minilm(true)?;
    let report = routellm::run(&config, encoder.as_ref())?;
    report.write(&args.out)?;
    println!("{}", report.to_markdown());
    eprintln!("wrote {}", args.out.join("report.md").display());
    Ok(())
}
