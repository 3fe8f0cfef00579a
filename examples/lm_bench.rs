//! `lm_bench` — prefill and decode throughput of any supported model (`--model GGUF_OR_DIR`).
//!
//! ```text
//! cargo run --release -p examples --bin lm_bench                     # SmolLM2, CPU, all cells
//! cargo run --release -p examples --bin lm_bench -- --json out/lm_bench.json --decode 32
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

use std::time::Instant;

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

fn main() -> Result<(), BoxError> {
    let mut device = "cpu".to_string();
    let mut json = None;
    let mut decode = 32usize;
    let mut batches = vec![1usize, 8];
    let mut lengths = vec![128usize, 512];
    let mut gguf = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => device = val()?,
            "--json" => json = Some(val()?),
            "--decode" => decode = val()?.parse()?,
            "--batches" => {
                batches = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--lengths" => {
                lengths = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--model" | "--gguf" => gguf = Some(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let dev = backend::device(&device)?;
    let path = match gguf {
        Some(p) => p.into(),
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open(&path, &dev)?;
    let text = datasets::shared_data_dir()
        .and_then(|d| std::fs::read_to_string(d.join("wikitext2/wiki.test.raw")).ok())
        .unwrap_or_else(|| FALLBACK.repeat(200));
    let corpus = model.encode(&text[..text.len().min(400_000)])?;
    let max_len = lengths.iter().copied().max().unwrap_or(0);
    let max_b = batches.iter().copied().max().unwrap_or(1);
    if corpus.len() < max_len * max_b + 1 {
        return Err("corpus too short for the requested prompts".into());
    }
    // Warm-up (allocations, first-touch).
    let mut c = model.new_cache(1);
    model.forward(&[corpus[..16].to_vec()], &mut c, LogitsAt::Last)?;

    println!("model {} on {device}; decode {decode} steps", model.name());
    println!("| batch | prompt | prefill tok/s | decode tok/s | prefill s | decode s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut cells = Vec::new();
    for &n in &lengths {
        for &b in &batches {
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
            let cell = Cell {
                batch: b,
                prompt_tokens: n,
                decode_steps: decode,
                prefill_secs: prefill,
                prefill_tok_per_s: (b * n) as f64 / prefill,
                decode_secs: dec,
                decode_tok_per_s: (b * decode) as f64 / dec,
            };
            println!(
                "| {b} | {n} | {:.1} | {:.1} | {:.3} | {:.3} |",
                cell.prefill_tok_per_s, cell.decode_tok_per_s, prefill, dec
            );
            cells.push(cell);
        }
    }
    if let Some(p) = json {
        if let Some(dir) = std::path::Path::new(&p).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, serde_json::to_string_pretty(&cells)?)?;
        println!("wrote {p}");
    }
    Ok(())
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}
