//! `route_eval` — score query routers on the cost–quality plane, RouteLLM- and RouterBench-style.
//!
//! ```text
//! cargo run --release -p examples --bin route_eval                      # synthetic default
//! cargo run --release -p examples --bin route_eval -- --preset all      # real data (../shared/data)
//! cargo run --release -p examples --bin route_eval -- --table outcomes.csv --weak a --strong b \
//!     --router mine=my_scores.csv --out out/mine
//! ```
//!
//! Presets (real data, found through `CAI_DATA_DIR` or a `shared/data` folder beside the
//! workspace): `mmlu` and `gsm8k` (RouteLLM: Mixtral vs GPT-4), `routerbench-mbpp`,
//! `routerbench-arc`, `routerbench-winogrande` (11 models with per-prompt USD cost: pair view
//! Mixtral vs GPT-4, N-model AIQ view, and the MBPP study table), `arena` (Arena-Bench v1 judge
//! scores, answer length as cost proxy), `routerdc` (RouterDC's 7 models, graded), `all`. With no preset and
//! no table, the embedded **synthetic** default runs (seeded item-response model; see
//! `datasets::synthetic`), so the first command works anywhere.
//!
//! The study is `evals::routing::route_eval`; this binary parses flags, runs it, writes the
//! report and prints its table.
//!
//! Output: a table on stdout; `report.md`, SVG figures and `summary.json` in `--out`
//! (default `out/route_eval`).

#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use evals::routing::route_eval::{Preset, RouterScores, Source, StudyConfig, run};

/// Scores query routers on the cost–quality plane, RouteLLM- and RouterBench-style.
#[derive(Parser, Debug)]
#[command(
    name = "route_eval",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// Preset; all but synthetic read the data folder [default: synthetic, unless --table].
    #[arg(long, value_parser = PossibleValuesParser::new(Preset::NAMES).try_map(|s| s.parse::<Preset>()))]
    preset: Option<Preset>,
    /// An outcome table (CSV) to evaluate instead of a preset.
    #[arg(long, value_name = "OUTCOMES.csv")]
    table: Option<PathBuf>,
    /// With --table: the weak model [default: the table's lowest mean score].
    #[arg(long, value_name = "MODEL")]
    weak: Option<String>,
    /// With --table: the strong model [default: the table's highest mean score].
    #[arg(long, value_name = "MODEL")]
    strong: Option<String>,
    /// A router's precomputed scores, NAME=SCORES.csv (repeatable).
    #[arg(long = "router", value_name = "NAME=SCORES.csv", value_parser = router)]
    routers: Vec<(String, PathBuf)>,
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir)]
    data: Option<PathBuf>,
    /// Output folder (report.md, SVG figures, summary.json).
    #[arg(long, value_name = "DIR", default_value = "out/route_eval")]
    out: PathBuf,
    /// Seeds of the random-router band.
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// Grid resolution: strong-call shares 0, 1/N, …, 1.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// Random-routing trials per share in the MBPP-style study tables.
    #[arg(long, default_value_t = 10)]
    trials: usize,
}

/// `--router NAME=FILE`.
fn router(v: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = v
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FILE, got {v}"))?;
    Ok((name.to_string(), PathBuf::from(path)))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| evaluate(args))
}

fn evaluate(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let source = match (args.table, args.preset) {
        (Some(path), _) => Source::Table {
            path,
            weak: args.weak,
            strong: args.strong,
        },
        (None, Some(p)) => Source::preset(p, args.data),
        (None, None) => StudyConfig::default().source,
    };
    let config = StudyConfig {
        source,
        routers: (args.routers.into_iter())
            .map(|(name, path)| RouterScores { name, path })
            .collect(),
        grid: args.grid,
        random_seeds: args.seeds,
        trials: args.trials,
    };
    let report = run(&config)?;
    print!("{}", report.stdout_table());
    let md = report.write(&args.out)?;
    println!("\nwrote {}", md.display());
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}
