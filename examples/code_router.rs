//! `code_router` — the MBPP routing study (seed notebook 000) on RouterBench's MBPP slice:
//! random-routing baseline vs a classifier router (MLP head on frozen MiniLM embeddings,
//! soft win-rate targets, EMA weights) at validation-tuned thresholds, plus the oracle. The
//! study itself is `mf_router::study::code`; this binary parses flags, loads MiniLM and writes
//! the report.
//!
//! ```text
//! cargo run --release -p examples --bin code_router
//! cargo run --release -p examples --bin code_router -- --synthetic   # no data, no MiniLM
//! ```
//!
//! Data: `routerbench_routerdc/mbpp_{train,test}.csv` under `--data` (default: `CAI_DATA_DIR`,
//! else a `shared/data` beside the workspace), unless `--synthetic`.
//!
//! Output: `report.md`, one SVG per pair, `summary.json`, a checkpoint per pair, in `--out`
//! (default `out/code_router`). Embeddings come from the same cache as `routellm_mf`.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mf_router::study::code;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The MBPP routing study: random routing vs a classifier router on MiniLM embeddings.
#[derive(Parser, Debug)]
#[command(
    name = "code_router",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir, conflicts_with = "synthetic")]
    data: Option<PathBuf>,
    /// Output folder (report.md, SVG figures, summary.json, checkpoints).
    #[arg(long, value_name = "DIR", default_value = "out/code_router")]
    out: PathBuf,
    /// The MiniLM embedding cache (shared with routellm_mf).
    #[arg(long, value_name = "FILE", default_value = mf_router::study::DEFAULT_CACHE)]
    cache: PathBuf,
    /// Training seeds of the classifier router (0..N).
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Trials of the random-routing baseline.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Run on seeded synthetic outcomes and embeddings (not real data): no data folder, no
    /// MiniLM, seconds.
    #[arg(long)]
    synthetic: bool,
    /// Items of the synthetic task.
    #[arg(long, value_name = "N", default_value_t = 400, requires = "synthetic")]
    synthetic_items: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| body(args))
}

fn body(args: Args) -> Result<(), BoxError> {
    let source = mf_router::study::Source::pick(args.synthetic, args.data, args.synthetic_items);
    let config = code::CodeConfig {
        source,
        cache: args.cache,
        seeds: args.seeds,
        trials: args.trials,
        progress: true,
    };
    let encoder = config.source.minilm(true)?;
    let report = code::run(&config, encoder.as_ref())?;
    report.write(&args.out)?;
    println!("{}", report.to_markdown());
    Ok(())
}
