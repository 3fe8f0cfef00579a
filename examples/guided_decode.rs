//! `guided_decode` — the guided-inference study (seed 003): a small model that asks an oracle
//! for `k` tokens, `c` times at random or when it is uncertain, on real tasks.
//!
//! ```text
//! # SmolLM2-135M-Instruct helped by Gemma 3 270M on 100 GSM8K problems, the default grid:
//! cargo run --release -p examples --bin guided_decode -- --tasks gsm8k --limit 100
//! # Chosen configurations, LAMBADA as generation:
//! cargo run --release -p examples --bin guided_decode -- --tasks lambada_gen --limit 1000 \
//!     --configs small,oracle,random:2x2,entropy:2x1,maxprob:0.5x1
//! # The seed's exact setting (Llama 3.2 1B helped by Llama 3.1 8B on MATH), with their GGUFs:
//! cargo run --release -p examples --bin guided_decode -- --small Llama-3.2-1B.gguf \
//!     --oracle Llama-3.1-8B.gguf --tasks math500 --limit 100 \
//!     --configs small,oracle,random:10x5,random:20x5,random:50x5,random:100x2,random:100x5,random:100x10
//! # An oracle served by any OpenAI-compatible server (vLLM, TGI, llama.cpp):
//! cargo run --release -p examples --bin guided_decode -- --remote-oracle http://127.0.0.1:8080/v1 \
//!     --remote-model gemma --remote-extra '{"repeat_penalty": 1.0}' --tasks lambada_gen --limit 50
//! # Exact speculative decoding and BiLD need a shared tokenizer: SmolLM2's Q8 engine drafting
//! # for SmolLM2 in float32 (the F32 copy from crates/guided-decode/peer/dequantize_gguf.py):
//! cargo run --release -p examples --bin guided_decode -- --oracle smollm2-f32.gguf \
//!     --oracle-engine f32 --tasks lambada_gen --limit 200 --configs oracle,spec:2,spec:4,bild:0.6/2
//! # No data or models: tiny random models on synthetic items (seeded, documented as synthetic):
//! cargo run --release -p examples --bin guided_decode -- --synthetic
//! ```
//!
//! Configurations (`--configs`, comma-separated): `small`, `oracle`, `random:CxK`,
//! `entropy:TAUxK`, `maxprob:TAUxK`, `bild:F/R`, `spec:G` (the last two need a shared
//! tokenizer). Writes `items/<task>/<config>.jsonl` (resumable), `report.md`, `summary.json`
//! and SVG figures into `--out` (default `out/guided_decode`; `--output` is the older spelling),
//! and prints the report.
//! `--report-only` summarises the logs without generating (the items every configuration has
//! finished), e.g. while a long run is stopped.

#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser};
use evals::harness::Task;
use guided_decode::study::{HelpConfig, OracleSource, StudyOptions, run_study, run_study_on};
use guided_decode::{RemoteConfig, TokenPrices};
use lm::CausalLm;

type BoxError = Box<dyn std::error::Error>;

/// The guided-inference study: a small model that asks an oracle for `k` tokens, `c` times at
/// random or when it is uncertain, on real tasks.
#[derive(Parser, Debug)]
#[command(
    name = "guided_decode",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The small model: a GGUF file or a Hugging Face directory [default: SmolLM2-135M-Instruct
    /// from the model cache].
    #[arg(long, value_name = "GGUF_OR_DIR")]
    small: Option<PathBuf>,
    /// The oracle model: a GGUF file or a Hugging Face directory [default: Gemma 3 270M from the
    /// model cache].
    #[arg(long, value_name = "GGUF_OR_DIR")]
    oracle: Option<PathBuf>,
    /// An oracle served by an OpenAI-compatible server at this base URL (instead of --oracle).
    #[arg(long, value_name = "URL", requires = "remote_model")]
    remote_oracle: Option<String>,
    /// The remote oracle's model name.
    #[arg(long, value_name = "NAME")]
    remote_model: Option<String>,
    /// Environment variable holding the remote server's API key [default: none].
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// Extra fields of every remote request, as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = json_object)]
    remote_extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whole-request timeout of the remote oracle, in seconds.
    #[arg(long, value_name = "S", default_value_t = 120)]
    remote_timeout: u64,
    /// The remote oracle's active parameters (for the cost accounting) [default: unknown].
    #[arg(long, value_name = "N")]
    remote_params: Option<u64>,
    /// Tasks, comma-separated: lambada_gen, gsm8k, math500.
    #[arg(
        long,
        default_value = "lambada_gen",
        value_delimiter = ',',
        action = ArgAction::Set,
        value_parser = cli::task
    )]
    tasks: Vec<Task>,
    /// Items per task [default: all; 50 with --synthetic].
    #[arg(long)]
    limit: Option<usize>,
    /// First item of each task.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Configurations, comma-separated: small, oracle, random:CxK, entropy:TAUxK, maxprob:TAUxK,
    /// bild:F/R, spec:G [default: the default grid of each task].
    #[arg(
        long,
        value_delimiter = ',',
        action = ArgAction::Set,
        value_parser = help_config
    )]
    configs: Option<Vec<HelpConfig>>,
    /// Seed of the random calls (and of the synthetic items).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The random calls' horizon L [default: the task's token budget].
    #[arg(long, value_name = "L")]
    horizon: Option<usize>,
    /// MATH-500 token budget (lm-eval's `hendrycks_math500`: the harness default, 256).
    #[arg(long, default_value_t = guided_decode::study::MATH_MAX_TOKENS)]
    math_max_tokens: usize,
    /// Prices in $ per million tokens [default: 0,0,0,0].
    #[arg(
        long,
        value_name = "SMALL_IN,SMALL_OUT,ORACLE_IN,ORACLE_OUT",
        value_parser = prices
    )]
    prices: Option<(TokenPrices, TokenPrices)>,
    /// Engine of the small model (and of the oracle unless --oracle-engine).
    #[arg(long, default_value = "quantized", value_parser = cli::engine())]
    engine: lm::Engine,
    /// Engine of the oracle [default: as --engine].
    #[arg(long, value_name = "ENGINE", value_parser = cli::engine())]
    oracle_engine: Option<lm::Engine>,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu", value_parser = cli::checked_by(backend::device))]
    device: String,
    /// Skip the meta-analysis.
    #[arg(long)]
    no_meta: bool,
    /// Only summarise the logs (the items every configuration has finished); no generation.
    #[arg(long)]
    report_only: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    no_progress: bool,
    /// Output folder (left at the default, out/guided_decode_synthetic with --synthetic).
    #[arg(long = "out", alias = "output", default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// Tiny random models on synthetic items; no data or models needed (also the fallback when
    /// either is missing).
    #[arg(long)]
    synthetic: bool,
    #[command(flatten)]
    sharding: cli::ShardArgs,
}

/// `--out`'s default; with `--synthetic` it becomes `out/guided_decode_synthetic`.
const DEFAULT_OUT: &str = "out/guided_decode";

/// `--configs`: one configuration ([`HelpConfig::parse`]).
fn help_config(s: &str) -> Result<HelpConfig, String> {
    HelpConfig::parse(s).map_err(|e| match e {
        guided_decode::GuidedError::InvalidOption { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `--remote-extra`: a JSON object.
fn json_object(s: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("must be a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// `--prices`: four numbers, the small model's and the oracle's input and output prices.
fn prices(s: &str) -> Result<(TokenPrices, TokenPrices), String> {
    match TokenPrices::parse_pairs(s, 2).map_err(|e| e.to_string())?[..] {
        [small, oracle] => Ok((small, oracle)),
        _ => Err(format!("`{s}`: SMALL_IN,SMALL_OUT,ORACLE_IN,ORACLE_OUT")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| study(args))
}

fn study(args: Args) -> Result<(), BoxError> {
    let mut opts = StudyOptions::new(&args.out, PathBuf::new(), Vec::new());
    opts.progress = !args.no_progress;
    opts.limit = args.limit;
    opts.offset = args.offset;
    opts.configs = args.configs;
    opts.seed = args.seed;
    opts.horizon = args.horizon;
    opts.math_max_tokens = args.math_max_tokens;
    if let Some((small, oracle)) = args.prices {
        opts.small_prices = small;
        opts.oracle_prices = oracle;
    }
    opts.meta = !args.no_meta;
    opts.report_only = args.report_only;
    opts.shard = args.sharding.shard;
    let merge = |opts: &mut StudyOptions| -> Result<(), BoxError> {
        if !args.sharding.merge.is_empty() {
            guided_decode::merge_logs(&args.sharding.merge, &opts.out_dir)?;
            opts.report_only = true;
            eprintln!(
                "merged {} shards into {}",
                args.sharding.merge.len(),
                opts.out_dir.display()
            );
        }
        Ok(())
    };
    let (small_path, oracle_path, engine, synthetic) =
        (args.small, args.oracle, args.engine, args.synthetic);
    let remote = args.remote_oracle.map(|url| {
        let model = args.remote_model.unwrap_or_default(); // clap requires it with --remote-oracle
        let mut cfg = RemoteConfig::new(url, model);
        cfg.api_key_env = args.api_key_env;
        cfg.timeout = Duration::from_secs(args.remote_timeout);
        cfg.active_parameters = args.remote_params;
        if let Some(extra) = args.remote_extra {
            cfg.extra_body = extra;
        }
        cfg
    });
    let dev = backend::device(&args.device)?;

    // No data or no models (or asked for): tiny random models on synthetic items.
    let data = evals::harness::data::data_dir().ok();
    let small_found = small_path
        .clone()
        .map(Ok)
        .unwrap_or_else(lm::locate::smollm2_gguf);
    if synthetic || data.is_none() || small_found.is_err() {
        if !synthetic {
            eprintln!(
                "shared data or SmolLM2 not found ({}): running the synthetic study instead (scripts/fetch_models.sh fetches the models)",
                match (&data, &small_found) {
                    (None, _) => "no ../shared/data".to_string(),
                    (_, Err(e)) => e.to_string(),
                    _ => String::new(),
                }
            );
        }
        let small = guided_decode::testing::tiny_model(40, 1);
        let oracle = guided_decode::testing::tiny_model(40, 2);
        let items =
            guided_decode::testing::synthetic_items(&oracle, opts.limit.unwrap_or(50), opts.seed)?;
        if opts.out_dir == std::path::Path::new(DEFAULT_OUT) {
            opts.out_dir = "out/guided_decode_synthetic".into();
        }
        merge(&mut opts)?;
        let report = run_study_on(
            &small,
            OracleSource::Model(&oracle),
            &[(Task::LambadaGen, items)],
            &opts,
        )?;
        println!("{}", report.to_markdown());
        eprintln!(
            "(synthetic: tiny random models; written to {})",
            opts.out_dir.display()
        );
        return Ok(());
    }
    opts.data_dir = data.expect("checked above");
    opts.tasks = args.tasks;
    merge(&mut opts)?;
    let small_path = small_found?;
    let small = CausalLm::open_with(&small_path, &dev, engine)?;
    eprintln!(
        "small model {} from {}",
        lm::LanguageModel::name(&small),
        small_path.display()
    );
    let report = match remote {
        Some(cfg) => run_study(&small, OracleSource::<CausalLm>::Remote(cfg), &opts)?,
        None => {
            let path = match oracle_path {
                Some(p) => p,
                None => lm::locate::gemma3_gguf()?,
            };
            let oracle = CausalLm::open_with(&path, &dev, args.oracle_engine.unwrap_or(engine))?;
            eprintln!(
                "oracle {} from {}",
                lm::LanguageModel::name(&oracle),
                path.display()
            );
            run_study(&small, OracleSource::Model(&oracle), &opts)?
        }
    };
    println!("{}", report.to_markdown());
    eprintln!("report, summary and figures in {}", opts.out_dir.display());
    Ok(())
}
