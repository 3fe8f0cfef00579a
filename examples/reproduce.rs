//! `reproduce` — the workspace's studies in one command, and every router on one cost–quality
//! plane (the composition is the `studies` crate; this binary parses flags and writes).
//!
//! ```text
//! cargo run --release -p examples --bin reproduce -- --quick     # seconds, anywhere
//! cargo run --release -p examples --bin reproduce                # real data, models, long runs
//! ```
//!
//! `--quick` runs the centre experiment (SmolLM2-135M and Gemma 3 270M routed at the query,
//! token and expert levels) and the MF studies on seeded synthetic stand-ins, marked as such;
//! the full mode composes the long real-model runs from their output folders (`--harness`,
//! `--guided`, `--bh`; a missing one is an error naming the command that produces it). Each
//! stage writes its folder and a `stage.json` under `--out`; a rerun skips finished stages.
//! Output: `report.md`, `plane.svg`, `plane.json` (docs/reproduce.md).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;

use clap::Parser;

/// All studies and the unified cost–quality plane.
#[derive(Parser, Debug)]
#[command(name = "reproduce", version)]
struct Args {
    /// Synthetic defaults for the centre experiment, small scales everywhere (seconds).
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
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(studies::STAGES))]
    stages: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    cli::run(|| {
        let config = studies::Config {
            quick: args.quick,
            out: args.out.clone(),
            data: args.data.clone(),
            harness: args.harness.clone(),
            guided: args.guided.clone(),
            bh: args.bh.clone(),
            testbed: args.testbed.clone(),
            seed: args.seed,
            fresh: args.fresh,
            stages: args.stages.clone(),
            progress: true,
        };
        let report = studies::run(&config)?;
        report.write(&config.out)?;
        eprintln!(
            "{} points on the plane; {} in {:.1} s",
            report.plane.points.len(),
            config.out.join("report.md").display(),
            report.seconds
        );
        Ok::<(), Box<studies::StudiesError>>(())
    })
}
