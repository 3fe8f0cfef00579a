//! `serve` — the workspace's routing behind an OpenAI-compatible HTTP API (the logic is the
//! `serve` crate; this binary parses flags, loads models and starts it).
//!
//! ```text
//! # SmolLM2 (and Gemma 3 when fetched) from the model cache, on 127.0.0.1:8080:
//! cargo run --release -p examples --bin serve
//! # A remote strong model (vLLM), an MF router between it and SmolLM2, guided models:
//! VLLM_KEY=... cargo run --release -p examples --bin serve -- \
//!     --remote big=http://10.0.0.5:8000/v1,model=meta-llama/Llama-3.1-8B-Instruct,key_env=VLLM_KEY,params=8000000000 \
//!     --router out/routellm_mf/checkpoint --router-weak smollm2 --router-strong big \
//!     --guided-small smollm2 --guided-oracle big --guided entropy:2.5x1
//! curl -s localhost:8080/v1/completions -d '{"model":"smollm2","prompt":"The capital of France is","max_tokens":8}'
//! ```
//!
//! Ids: each `--model`/`--remote` NAME; `router-mf-<threshold>` (any threshold by name);
//! `guided-<policy>` (any policy by name). With `--api-key-env VAR` clients must send
//! `Authorization: Bearer $VAR`. `--help` lists every option with its default.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use guided_decode::{OpenAiClient, RemoteConfig};
use routing_core::cost::{PriceParseError, TokenPrices};
use serve::{
    Limits, LocalBackend, OracleBackend, Registry, RemoteBackend, ServeError, ServerConfig,
};

/// An OpenAI-compatible server for local models, remote models, MF query routing and guided
/// decoding.
#[derive(Parser, Debug)]
#[command(name = "serve", version)]
struct Args {
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0 to expose it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// A local model, NAME=PATH (a GGUF file or a Hugging Face folder); repeatable.
    /// [default: smollm2 and gemma3 from scripts/fetch_models.sh's cache, those present]
    #[arg(long = "model", value_name = "NAME=PATH")]
    models: Vec<String>,
    /// Executor of local models: quantized (integer CPU kernels), quantized-x2, quantized-f32
    /// (GGUF blocks, f32 activations), f32.
    #[arg(long, default_value = "quantized")]
    engine: String,
    /// Device of the f32 engine (cpu, or a GPU backend compiled in with its cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Copies of each local model (each answers one request at a time).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// A remote OpenAI-compatible server, NAME=BASE_URL,model=ID,key_env=VAR,params=N,
    /// timeout=SECS (the fields after the URL are optional); repeatable. The key is read from
    /// the environment variable VAR.
    // Read after parsing (RemoteConfig::from_spec), not by clap, which would echo a bad value:
    // it might hold a secret.
    #[arg(long = "remote", value_name = "NAME=URL[,..]")]
    remotes: Vec<String>,
    /// Prices, NAME=INPUT,OUTPUT in dollars per million tokens; repeatable [default: 0].
    #[arg(long = "price", value_name = "NAME=IN,OUT", value_parser = named_price)]
    prices: Vec<(String, TokenPrices)>,
    /// An MF router checkpoint folder (mf-router; MiniLM encoder from the model cache).
    #[arg(long)]
    router: Option<PathBuf>,
    /// The router's weak model (a registered NAME).
    #[arg(long, requires = "router")]
    router_weak: Option<String>,
    /// The router's strong model (a registered NAME).
    #[arg(long, requires = "router")]
    router_strong: Option<String>,
    /// Thresholds listed in /v1/models as router-mf-THRESHOLD (any other works by name too).
    #[arg(long = "router-threshold", value_delimiter = ',')]
    router_thresholds: Vec<f64>,
    /// Embed prompts with the int8 MiniLM encoder.
    #[arg(long)]
    router_int8: bool,
    /// The guided models' small model (a local NAME).
    #[arg(long)]
    guided_small: Option<String>,
    /// The guided models' oracle (a local or remote NAME).
    #[arg(long, requires = "guided_small")]
    guided_oracle: Option<String>,
    /// Policies listed in /v1/models as guided-POLICY (small, random:CxK, entropy:TAUxK,
    /// maxprob:TAUxK).
    #[arg(
        long = "guided",
        value_delimiter = ',',
        default_value = "entropy:2.5x1,maxprob:0.5x1"
    )]
    guided_policies: Vec<String>,
    /// Environment variable holding the bearer key clients must send [default: no key].
    #[arg(long)]
    api_key_env: Option<String>,
    /// Largest max_tokens a request may ask for.
    #[arg(long, default_value_t = 1024)]
    max_tokens_cap: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Requests served or queued at once (503 beyond).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
}

fn invalid(name: &str, reason: impl Into<String>) -> ServeError {
    ServeError::InvalidOption {
        name: name.into(),
        reason: reason.into(),
    }
}

fn split_pair<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str), ServeError> {
    s.split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| invalid(flag, format!("`{s}` is not NAME=VALUE")))
}

/// `--price NAME=INPUT,OUTPUT`.
fn named_price(s: &str) -> Result<(String, TokenPrices), String> {
    let (name, prices) = split_pair("--price", s).map_err(|e| e.to_string())?;
    Ok((
        name.to_string(),
        prices.parse().map_err(|e: PriceParseError| e.to_string())?,
    ))
}

/// The first `--price` given for `name`, zero when none.
fn price_of(args: &Args, name: &str) -> TokenPrices {
    args.prices
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(TokenPrices::default, |(_, p)| *p)
}

fn build(args: &Args) -> Result<Registry, Box<dyn std::error::Error>> {
    let device = backend::device(&args.device)?;
    let engine = lm::Engine::parse(&args.engine)?;
    let mut specs: Vec<(String, PathBuf)> = Vec::new();
    for m in &args.models {
        let (n, p) = split_pair("--model", m)?;
        specs.push((n.into(), PathBuf::from(p)));
    }
    if specs.is_empty() {
        specs.extend(
            lm::locate::smollm2_gguf()
                .ok()
                .map(|p| ("smollm2".to_string(), p)),
        );
        specs.extend(
            lm::locate::gemma3_gguf()
                .ok()
                .map(|p| ("gemma3".to_string(), p)),
        );
        if specs.is_empty() {
            return Err(
                "no --model given and no fetched model found (run scripts/fetch_models.sh)".into(),
            );
        }
    }
    let mut reg = Registry::new();
    let mut locals = std::collections::BTreeMap::new();
    for (name, path) in specs {
        let t = std::time::Instant::now();
        let replicas = (0..args.replicas.max(1))
            .map(|_| lm::CausalLm::open_with(&path, &device, engine))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| ServeError::Model {
                id: name.clone(),
                source: Box::new(source),
            })?;
        let b = Arc::new(LocalBackend::new(&name, replicas, price_of(args, &name))?);
        eprintln!(
            "loaded {name} ({}) in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
        reg.add(b.clone())?;
        locals.insert(name, b);
    }
    let mut remotes = std::collections::BTreeMap::new();
    for spec in &args.remotes {
        let (name, cfg) = RemoteConfig::from_spec(spec)?;
        let client = OpenAiClient::new(cfg)?;
        let b = Arc::new(RemoteBackend::new(&name, client, price_of(args, &name)));
        reg.add(b.clone())?;
        remotes.insert(name, b);
    }
    if let Some(dir) = &args.router {
        let weak = args
            .router_weak
            .as_deref()
            .ok_or_else(|| invalid("--router-weak", "needed with --router"))?;
        let strong = args
            .router_strong
            .as_deref()
            .ok_or_else(|| invalid("--router-strong", "needed with --router"))?;
        let loaded = if args.router_int8 {
            mf_router::checkpoint::load_with_minilm_int8(dir)?
        } else {
            mf_router::checkpoint::load_with_minilm(dir)?
        };
        let (w, s) = (
            reg.get(weak, "--router-weak")?,
            reg.get(strong, "--router-strong")?,
        );
        reg.set_router(Arc::new(Mutex::new(loaded)), w, s, &args.router_thresholds)?;
    }
    if let Some(small) = &args.guided_small {
        let oracle_name = args
            .guided_oracle
            .as_deref()
            .ok_or_else(|| invalid("--guided-oracle", "needed with --guided-small"))?;
        let small = locals.get(small).cloned().ok_or_else(|| {
            invalid(
                "--guided-small",
                format!("`{small}` is not a local --model"),
            )
        })?;
        let oracle = match (locals.get(oracle_name), remotes.get(oracle_name)) {
            (Some(l), _) => OracleBackend::Local(l.clone()),
            (None, Some(r)) => OracleBackend::Remote(r.clone()),
            _ => {
                return Err(invalid(
                    "--guided-oracle",
                    format!("`{oracle_name}` is not a --model or --remote NAME"),
                )
                .into());
            }
        };
        let listed: Vec<&str> = args.guided_policies.iter().map(String::as_str).collect();
        reg.set_guided(small, oracle, &listed)?;
    }
    Ok(reg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let api_key = match &args.api_key_env {
        None => None,
        Some(var) => Some(std::env::var(var).map_err(|_| {
            invalid(
                "--api-key-env",
                format!("environment variable {var} is not set"),
            )
        })?),
    };
    let registry = build(args)?;
    let ids: Vec<String> = registry.list().into_iter().map(|(id, _)| id).collect();
    let config = ServerConfig {
        bind: args.bind,
        api_key,
        max_body_bytes: args.max_body_bytes,
        max_in_flight: args.max_in_flight,
        limits: Limits {
            max_tokens_cap: args.max_tokens_cap,
            ..Limits::default()
        },
    };
    eprintln!(
        "serving {} on http://{} (key: {})",
        ids.join(", "),
        args.bind,
        if config.api_key.is_some() {
            "required"
        } else {
            "none"
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve::run(config, registry, async {
        // Ctrl-C or SIGTERM: finish the requests in flight, then exit.
        serve::shutdown_signal().await;
        eprintln!("shutting down");
    }))?;
    Ok(())
}
