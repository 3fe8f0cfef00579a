//! `harness_router` — an MF query router trained on the workspace's own `lm_eval` outcomes of a
//! weak and a strong model (the study is `mf_router::harness_router`; this binary parses flags,
//! loads MiniLM and writes the report and the checkpoint `serve --router` loads).
//!
//! ```text
//! cargo run --release -p examples --bin lm_eval -- --tasks lambada_openai,hellaswag --limit 1000 --out out/eval11/smollm2
//! cargo run --release -p examples --bin lm_eval -- --model .models/unpacked/gemma3-270m/gemma-3-270m-q4_k_m.gguf \
//!     --tasks lambada_openai,hellaswag --limit 1000 --out out/eval11/gemma3
//! cargo run --release -p examples --bin harness_router -- \
//!     --weak smollm2=out/eval11/smollm2 --strong gemma3=out/eval11/gemma3 --out out/harness_router
//! ```

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;

use clap::Parser;
use mf_router::harness_router::{HarnessRouterOptions, run};

/// Trains an MF router on two models' lm_eval per-sample outcomes and evaluates it RouteLLM-style.
#[derive(Parser, Debug)]
#[command(name = "harness_router", version)]
struct Args {
    /// The weak model: NAME=FOLDER (an lm_eval output folder).
    #[arg(long, value_parser = named_dir)]
    weak: (String, PathBuf),
    /// The strong model: NAME=FOLDER.
    #[arg(long, value_parser = named_dir)]
    strong: (String, PathBuf),
    /// Output folder.
    #[arg(long, default_value = "out/harness_router")]
    out: PathBuf,
    /// Split, training and random-band seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Strong-model share the checkpoint's threshold is calibrated for.
    #[arg(long, default_value_t = 0.5)]
    strong_share: f64,
}

fn named_dir(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, d)) if !n.is_empty() && !d.is_empty() => Ok((n.to_string(), PathBuf::from(d))),
        _ => Err(format!("`{s}` is not NAME=FOLDER")),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    cli::run(|| go(&args))
}

fn go(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let encoder = lm::models::bert::SentenceEncoder::from_dir(
        lm::locate::minilm_dir()?,
        &burn::tensor::Device::flex(),
    )?;
    let opts = HarnessRouterOptions {
        seed: args.seed,
        strong_share: args.strong_share,
        ..HarnessRouterOptions::default()
    };
    let t = std::time::Instant::now();
    let report = run(
        (&args.weak.0, &args.weak.1),
        (&args.strong.0, &args.strong.1),
        &opts,
        &encoder,
    )?;
    report.write(&args.out)?;
    print!("{}", report.markdown());
    eprintln!(
        "wrote {} in {:.1} s",
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
