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
//! or, without the data folder, of a built-in paragraph.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{ArgAction, Parser};
use lm::{CausalLm, LanguageModel, LogitsAt, nn::tensor_io::read_f32};

type BoxError = Box<dyn std::error::Error>;

const FALLBACK: &str = "The tower is 324 metres tall, about the same height as an 81-storey building, and the tallest structure in Paris. Its base is square, measuring 125 metres on each side. During its construction, the Eiffel Tower surpassed the Washington Monument to become the tallest man-made structure in the world. ";

#[derive(Debug, serde::Serialize)]
struct Cell {
    batch: usize,
    prompt_tokens: usize,
    decode_steps: usize,
    prefill_secs: f64,
    prefill_tok_per_s: f64,
    decode_secs: f64,
    decode_tok_per_s: f64,
}

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
    let text = datasets::shared_data_dir()
        .and_then(|d| std::fs::read_to_string(d.join("wikitext2/wiki.test.raw")).ok())
        .unwrap_or_else(|| FALLBACK.repeat(200));
    let corpus = model.encode(&text[..text.len().min(400_000)])?;
    let max_len = lengths.iter().copied().max().unwrap_or(0);
    let max_b = batches.iter().copied().max().unwrap_or(1);
    if corpus.len() < max_len * max_b + 1 {
        return Err("corpus too short for the requested prompts".into());
    }
    if let Some(n) = agree {
        // Teacher-forced agreement of this engine with the exact f32 engine on the same file.
        let exact = CausalLm::open_with(&path, &dev, lm::Engine::F32)?;
        let n = n.min(corpus.len());
        let a = lm::agreement(&exact, &model, &corpus[..n], 1024)?;
        println!(
            "agreement with f32 over {n} WikiText-2 tokens (windows of 1024): mean |Δ log p| {:.4}, max {:.3}; perplexity f32 {:.4}, {} {:.4} ({:+.3}%)",
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
            std::fs::write(p, serde_json::to_string(&j)?)?;
            println!("wrote {}", p.display());
        }
        return Ok(());
    }
    // Warm-up (allocations, first-touch).
    let mut c = model.new_cache(1);
    model.forward(&[corpus[..16].to_vec()], &mut c, LogitsAt::Last)?;

    println!(
        "model {} on {device}, {} engine; decode {decode} steps",
        model.name(),
        engine.name()
    );
    println!("| batch | prompt | prefill tok/s | decode tok/s | prefill s | decode s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut cells = Vec::new();
    let mut peers: Vec<serde_json::Value> = Vec::new();
    for rep in 0..reps {
        for &n in &lengths {
            for &b in &batches {
                let cell = bench_cell(&model, &corpus, b, n, decode)?;
                println!(
                    "| {b} | {n} | {:.1} | {:.1} | {:.3} | {:.3} |",
                    cell.prefill_tok_per_s,
                    cell.decode_tok_per_s,
                    cell.prefill_secs,
                    cell.decode_secs
                );
                cells.push(cell);
            }
            if peer {
                // llama.cpp on the same file and prompt length, right after ours.
                let out = std::env::temp_dir().join(format!(
                    "lm_bench_peer_{}_{rep}_{n}.json",
                    std::process::id()
                ));
                let status = std::process::Command::new("python3")
                    .arg(
                        std::path::PathBuf::from(
                            std::env::var_os("CARGO_MANIFEST_DIR")
                                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
                        )
                        .join("../crates/lm/peer/llama_cpp_bench.py"),
                    )
                    .args([
                        "--gguf",
                        &path.display().to_string(),
                        "--lengths",
                        &n.to_string(),
                    ])
                    .args([
                        "--decode",
                        &decode.to_string(),
                        "--json",
                        &out.display().to_string(),
                    ])
                    .args([
                        "--threads",
                        &lm::kernels::pool::global().threads().to_string(),
                    ])
                    .status()?;
                if !status.success() {
                    return Err(format!("llama_cpp_bench.py failed: {status}").into());
                }
                let v: Vec<serde_json::Value> =
                    serde_json::from_str(&std::fs::read_to_string(&out)?)?;
                peers.extend(v);
            }
        }
    }
    if peer {
        println!(
            "\nratio ours / llama.cpp (batch 1, medians over {reps} interleaved repetitions):"
        );
        println!(
            "| prompt | prefill ours | prefill llama.cpp | ratio | decode ours | decode llama.cpp | ratio |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for &n in &lengths {
            let ours: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.batch == 1 && c.prompt_tokens == n)
                .collect();
            let theirs: Vec<&serde_json::Value> =
                peers.iter().filter(|c| c["prompt_tokens"] == n).collect();
            let med = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            let (pa, da) = (
                med(ours.iter().map(|c| c.prefill_tok_per_s).collect()),
                med(ours.iter().map(|c| c.decode_tok_per_s).collect()),
            );
            let (pb, db) = (
                med(theirs
                    .iter()
                    .filter_map(|c| c["prefill_tok_per_s"].as_f64())
                    .collect()),
                med(theirs
                    .iter()
                    .filter_map(|c| c["decode_tok_per_s"].as_f64())
                    .collect()),
            );
            println!(
                "| {n} | {pa:.1} | {pb:.1} | {:.2}× | {da:.1} | {db:.1} | {:.2}× |",
                pa / pb,
                da / db
            );
        }
    }
    // Batched decoding against batch 1: medians of each cell, and the median of the
    // per-repetition ratios (the two cells of a ratio ran back to back).
    let big: Vec<usize> = batches.iter().copied().filter(|&b| b > 1).collect();
    if batches.contains(&1) && !big.is_empty() {
        println!("\nbatched decode throughput against batch 1 (medians over {reps} repetitions):");
        println!(
            "| prompt | batch | decode tok/s | batch-1 decode tok/s | ratio of medians | median of per-rep ratios |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        for &n in &lengths {
            let rate = |b: usize| -> Vec<f64> {
                cells
                    .iter()
                    .filter(|c| c.batch == b && c.prompt_tokens == n)
                    .map(|c| c.decode_tok_per_s)
                    .collect()
            };
            let one = rate(1);
            for &b in &big {
                let many = rate(b);
                let ratios: Vec<f64> = many.iter().zip(&one).map(|(m, o)| m / o).collect();
                let (m1, mb) = (med(one.clone()), med(many));
                println!(
                    "| {n} | {b} | {mb:.1} | {m1:.1} | {:.2}× | {:.2}× |",
                    mb / m1,
                    med(ratios)
                );
            }
        }
    }
    if let Some(p) = json {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let j = serde_json::json!({"engine": engine.name(), "cells": cells, "llama_cpp": peers});
        std::fs::write(&p, serde_json::to_string_pretty(&j)?)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Prefill `b` windows of `n` tokens, then `decode` greedy steps.
fn bench_cell(
    model: &CausalLm,
    corpus: &[u32],
    b: usize,
    n: usize,
    decode: usize,
) -> Result<Cell, BoxError> {
    let rows: Vec<Vec<u32>> = (0..b)
        .map(|r| corpus[r * n..(r + 1) * n].to_vec())
        .collect();
    let mut cache = model.new_cache(b);
    let t = Instant::now();
    let logits = read_f32(model.forward(&rows, &mut cache, LogitsAt::Last)?)?;
    let prefill = t.elapsed().as_secs_f64();
    let v = model.vocab_size();
    let mut next: Vec<Vec<u32>> = (0..b)
        .map(|r| vec![argmax(&logits[r * v..(r + 1) * v])])
        .collect();
    let t = Instant::now();
    for _ in 0..decode {
        let logits = read_f32(model.forward(&next, &mut cache, LogitsAt::Last)?)?;
        next = (0..b)
            .map(|r| vec![argmax(&logits[r * v..(r + 1) * v])])
            .collect();
    }
    let dec = t.elapsed().as_secs_f64();
    Ok(Cell {
        batch: b,
        prompt_tokens: n,
        decode_steps: decode,
        prefill_secs: prefill,
        prefill_tok_per_s: (b * n) as f64 / prefill,
        decode_secs: dec,
        decode_tok_per_s: (b * decode) as f64 / dec,
    })
}

/// Greedy choice: the first largest logit (`lm`'s vectorised scan, as the sampler uses).
fn argmax(v: &[f32]) -> u32 {
    lm::kernels::softmax::argmax_first(v).0 as u32
}
