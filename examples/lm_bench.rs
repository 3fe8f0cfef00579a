//! `lm_bench` — prefill and decode throughput of any supported model (`--model GGUF_OR_DIR`).
//!
//! ```text
//! cargo run --release -p examples --bin lm_bench                     # SmolLM2, CPU, all cells
//! cargo run --release -p examples --bin lm_bench -- --json out/lm_bench.json --decode 32
//! # the quantized executor against llama.cpp, interleaved, 3 repetitions, ratios printed:
//! cargo run --release -p examples --bin lm_bench -- --engine quantized --peer --reps 3
//! # teacher-forced agreement with the f32 engine on 20,000 WikiText-2 tokens:
//! cargo run --release -p examples --bin lm_bench -- --engine quantized --agree 20000
//! ```
//!
//! Cells: batch 1 and 8 × prompts of 128 and 512 tokens. Prefill reads the prompts in one
//! forward pass (logits at the last position, as generation does); decode then feeds one token
//! per sequence per step for `--decode` steps through the KV cache. Throughput counts tokens of
//! all sequences. Prompts are windows of WikiText-2 (`../shared/data/wikitext2/wiki.test.raw`)
//! or, without the data folder, of a built-in paragraph. The measurement is
//! `lm::bench::throughput` (library code: `ThroughputReport` with its markdown and JSON); this
//! binary parses arguments, picks the device, prints progress on standard error and the report
//! on standard output.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use lm::bench::throughput::{self, LlamaCppPeer, ThroughputConfig};
use lm::{CausalLm, LanguageModel};

type BoxError = Box<dyn std::error::Error>;

/// Prefill and decode throughput of any supported model.
#[derive(Parser, Debug)]
#[command(
    name = "lm_bench",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// A GGUF file or a Hugging Face directory [default: SmolLM2-135M-Instruct from the model
    /// cache].
    #[arg(long, alias = "gguf", alias = "hf-dir", value_name = "GGUF_OR_DIR")]
    model: Option<PathBuf>,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu", value_parser = cli::checked_by(backend::device))]
    device: String,
    /// Engine.
    #[arg(long, default_value = "f32", value_parser = cli::engine())]
    engine: lm::Engine,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "1,8", value_delimiter = ',', action = ArgAction::Set)]
    batches: Vec<usize>,
    /// Prompt lengths in tokens, comma-separated.
    #[arg(long, default_value = "128,512", value_delimiter = ',', action = ArgAction::Set)]
    lengths: Vec<usize>,
    /// Decode steps per cell.
    #[arg(long, default_value_t = 32)]
    decode: usize,
    /// Repetitions of every cell (interleaved with llama.cpp under --peer).
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// Also run llama.cpp (`crates/lm/peer/llama_cpp_bench.py`) on the same file and prompt
    /// lengths, and print the ratios.
    #[arg(long)]
    peer: bool,
    /// Write the cells (and llama.cpp's) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Instead of timing: teacher-forced agreement with the f32 engine on N WikiText-2 tokens.
    #[arg(long, value_name = "N")]
    agree: Option<usize>,
    /// Write the --agree result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    agree_json: Option<PathBuf>,
    /// Integer tiles of the quantized engine: best (what the CPU has: AMX panels for batches
    /// of 8 and more where present), avx2, vnni256 or vnni512 (no AMX).
    #[arg(long, default_value = "best")]
    tiles: lm::kernels::qdot::Tiles,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| bench(args))
}

fn bench(args: Args) -> Result<(), BoxError> {
    let Args {
        model: model_path,
        device,
        engine,
        batches,
        lengths,
        decode,
        reps,
        peer,
        json,
        agree,
        agree_json,
        tiles,
    } = args;
    lm::kernels::qdot::use_tiles(tiles);
    let dev = backend::device(&device)?;
    let path = match model_path {
        Some(p) => p,
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open_with(&path, &dev, engine)?;
    let (text, source) = throughput::bench_text(datasets::shared_data_dir().as_deref())?;
    let corpus = model.encode(&text)?;
    eprintln!("corpus: {} tokens of {source}", corpus.len());
    if let Some(n) = agree {
        // Teacher-forced agreement of this engine with the exact f32 engine on the same file.
        let exact = CausalLm::open_with(&path, &dev, lm::Engine::F32)?;
        let n = n.min(corpus.len());
        let a = lm::agreement(&exact, &model, &corpus[..n], 1024)?;
        println!(
            "agreement with f32 over {n} {source} tokens (windows of 1024): mean |Δ log p| {:.4}, max {:.3}; perplexity f32 {:.4}, {} {:.4} ({:+.3}%)",
            a.mean_abs_delta,
            a.max_abs_delta,
            a.ppl_reference,
            engine.name(),
            a.ppl_candidate,
            (a.ppl_candidate / a.ppl_reference - 1.0) * 100.0
        );
        if let Some(p) = &agree_json {
            let j = serde_json::json!({"windows": a.windows, "f32": a.reference,
                "candidate": a.candidate, "engine": engine.name(),
                "mean_abs_delta": a.mean_abs_delta, "max_abs_delta": a.max_abs_delta,
                "ppl_f32": a.ppl_reference, "ppl_candidate": a.ppl_candidate});
            std::fs::write(p, serde_json::to_string(&j)?)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            println!("wrote {}", p.display());
        }
        return Ok(());
    }

    let config = ThroughputConfig {
        batches,
        lengths,
        decode,
        reps,
    };
    let peer = peer.then(|| LlamaCppPeer {
        gguf: path.clone(),
        threads: lm::kernels::pool::global().threads(),
    });
    eprintln!(
        "model {} on {device}, {} engine; decode {decode} steps",
        model.name(),
        engine.name()
    );
    // Progress on standard error as the cells are measured; the report on standard output.
    eprint!("{}", throughput::cell_table_header());
    let report = throughput::run(
        &model,
        &corpus,
        &config,
        &device,
        peer.as_ref(),
        |c, is_peer| {
            let who = if is_peer { " llama.cpp" } else { "" };
            eprintln!("{}{who}", throughput::cell_row(c).trim_end());
        },
    )?;
    print!("{}", report.to_markdown());
    if let Some(p) = json {
        report.write_json(&p)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
