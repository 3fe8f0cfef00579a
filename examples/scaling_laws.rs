//! `scaling_laws` — fit and forecast scaling laws on real scaling runs (or a synthetic ladder).
//!
//! ```text
//! cargo run --release -p examples --bin scaling_laws                         # real data if found
//! cargo run --release -p examples --bin scaling_laws -- --synthetic          # seeded synthetic ladder
//! cargo run --release -p examples --bin scaling_laws -- --data DIR --out out/scaling --boot 400
//! cargo run --release -p examples --bin scaling_laws -- --approach3-bench    # timing JSON only
//! ```
//!
//! With a data folder (`--data`, else `CAI_DATA_DIR`, else a `shared/data` beside the workspace)
//! the study fits Epoch AI's Chinchilla runs (IsoFLOP parabolas, Approach 2 and 3 with bootstrap
//! intervals, held-out forecasts), Gadre et al.'s over-training runs and Pythia's loss → accuracy
//! maps; without one, a seeded synthetic ladder drawn from the Chinchilla paper's law runs the
//! same pipeline against the truth. The study itself is `scaling_fit::study` (see its docs).
//!
//! Output: `report.md`, `summary.json` and SVG figures in `--out` (default `out/scaling_laws`);
//! timings on stdout.

#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use scaling_fit::study::{self, Source, StudyConfig};

/// Fits and forecasts scaling laws on real scaling runs (or a seeded synthetic ladder).
#[derive(Parser, Debug)]
#[command(
    name = "scaling_laws",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace; without
    /// one, the synthetic ladder runs].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir)]
    data: Option<PathBuf>,
    /// Output folder (report.md, summary.json, SVG figures).
    #[arg(long, value_name = "DIR", default_value = "out/scaling_laws")]
    out: PathBuf,
    /// Bootstrap replicates of the Approach-3 intervals, at least 1 (the asymptotic-law bands
    /// use at least 500).
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    boot: usize,
    /// Run the seeded synthetic ladder even when a data folder exists.
    #[arg(long)]
    synthetic: bool,
    /// Only time the Approach-3 fit (all cores, then one) and print JSON; needs the data folder.
    #[arg(long = "approach3-bench")]
    bench: bool,
}

/// `--boot`: a count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| fit(&args))
}

fn fit(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let source = if args.synthetic {
        Source::Synthetic { seed: 0 }
    } else {
        args.data.clone().map_or(Source::Auto, Source::Data)
    }
    .resolve();
    if args.bench {
        let Source::Data(dir) = &source else {
            return Err("--approach3-bench needs the data folder (chinchilla_scaling)".into());
        };
        println!("{}", study::approach3_bench(dir)?.to_json_line());
        return Ok(());
    }
    let config = StudyConfig {
        source,
        bootstrap: args.boot,
        ..StudyConfig::default()
    };
    // Progress and timings are printed as they happen.
    let report = study::run_with_log(&config, &mut |line| println!("{line}"))?;
    report.write(&args.out)?;
    println!("wrote {}", args.out.join("report.md").display());
    Ok(())
}
