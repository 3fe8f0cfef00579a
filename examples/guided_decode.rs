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
//! and SVG figures into `--output` (default `out/guided_decode`), and prints the report.
//! `--report-only` summarises the logs without generating (the items every configuration has
//! finished), e.g. while a long run is stopped.

#[path = "common/backend.rs"]
mod backend;

use std::path::PathBuf;
use std::time::Duration;

use evals::harness::Task;
use guided_decode::study::{HelpConfig, OracleSource, StudyOptions, run_study, run_study_on};
use guided_decode::{RemoteConfig, TokenPrices};
use lm::CausalLm;

type BoxError = Box<dyn std::error::Error>;

const HELP: &str = "guided_decode [--small GGUF] [--oracle GGUF | --remote-oracle URL --remote-model NAME [--api-key-env VAR] [--remote-extra JSON] [--remote-timeout S] [--remote-params N]] [--tasks lambada_gen,gsm8k,math500] [--limit N] [--offset N] [--configs a,b,...] [--seed N] [--horizon L] [--math-max-tokens N] [--prices SMALL_IN,SMALL_OUT,ORACLE_IN,ORACLE_OUT] [--engine quantized|quantized-x2|f32] [--oracle-engine E] [--device cpu] [--no-meta] [--report-only] [--no-progress] [--output DIR] [--synthetic]";

fn main() -> Result<(), BoxError> {
    let mut small_path: Option<PathBuf> = None;
    let mut oracle_path: Option<PathBuf> = None;
    let mut remote: Option<RemoteConfig> = None;
    let (mut remote_url, mut remote_model) = (None::<String>, None::<String>);
    let (mut api_key_env, mut remote_extra, mut remote_timeout) = (None, None::<String>, 120u64);
    let mut remote_params: Option<u64> = None;
    let mut tasks = "lambada_gen".to_string();
    let mut configs: Option<String> = None;
    let mut device = "cpu".to_string();
    let mut engine = lm::Engine::Quantized;
    let mut oracle_engine: Option<lm::Engine> = None;
    let mut synthetic = false;
    let mut opts = StudyOptions::new("out/guided_decode", PathBuf::new(), Vec::new());
    opts.progress = true;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--small" => small_path = Some(val()?.into()),
            "--oracle" => oracle_path = Some(val()?.into()),
            "--remote-oracle" => remote_url = Some(val()?),
            "--remote-model" => remote_model = Some(val()?),
            "--api-key-env" => api_key_env = Some(val()?),
            "--remote-extra" => remote_extra = Some(val()?),
            "--remote-timeout" => remote_timeout = val()?.parse()?,
            "--remote-params" => remote_params = Some(val()?.parse()?),
            "--tasks" => tasks = val()?,
            "--limit" => opts.limit = Some(val()?.parse()?),
            "--offset" => opts.offset = val()?.parse()?,
            "--configs" => configs = Some(val()?),
            "--seed" => opts.seed = val()?.parse()?,
            "--horizon" => opts.horizon = Some(val()?.parse()?),
            "--math-max-tokens" => opts.math_max_tokens = val()?.parse()?,
            "--prices" => {
                let v: Vec<f64> = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
                let [si, so, oi, oo] = v[..] else {
                    return Err("--prices takes four numbers: SMALL_IN,SMALL_OUT,ORACLE_IN,ORACLE_OUT ($ per million tokens)".into());
                };
                opts.small_prices = TokenPrices {
                    input_per_million: si,
                    output_per_million: so,
                };
                opts.oracle_prices = TokenPrices {
                    input_per_million: oi,
                    output_per_million: oo,
                };
            }
            "--engine" => engine = lm::Engine::parse(&val()?)?,
            "--oracle-engine" => oracle_engine = Some(lm::Engine::parse(&val()?)?),
            "--device" => device = val()?,
            "--no-meta" => opts.meta = false,
            "--report-only" => opts.report_only = true,
            "--no-progress" => opts.progress = false,
            "--output" => opts.out_dir = val()?.into(),
            "--synthetic" => synthetic = true,
            "-h" | "--help" => {
                eprintln!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{HELP}").into()),
        }
    }
    if let Some(c) = &configs {
        opts.configs = Some(
            c.split(',')
                .filter(|s| !s.is_empty())
                .map(HelpConfig::parse)
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(url) = remote_url {
        let model = remote_model.ok_or("--remote-oracle needs --remote-model")?;
        let mut cfg = RemoteConfig::new(url, model);
        cfg.api_key_env = api_key_env;
        cfg.timeout = Duration::from_secs(remote_timeout);
        cfg.active_parameters = remote_params;
        if let Some(extra) = remote_extra {
            match serde_json::from_str::<serde_json::Value>(&extra)? {
                serde_json::Value::Object(map) => cfg.extra_body = map,
                _ => return Err("--remote-extra must be a JSON object".into()),
            }
        }
        remote = Some(cfg);
    }
    let dev = backend::device(&device)?;

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
        if opts.out_dir == PathBuf::from("out/guided_decode") {
            opts.out_dir = "out/guided_decode_synthetic".into();
        }
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
    opts.tasks = tasks
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Task::parse)
        .collect::<Result<_, _>>()?;
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
            let oracle = CausalLm::open_with(&path, &dev, oracle_engine.unwrap_or(engine))?;
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
