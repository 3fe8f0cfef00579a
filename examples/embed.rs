//! Sentence embeddings with all-MiniLM-L6-v2: sentences → unit vectors → cosine-similarity matrix.
//!
//! ```text
//! cargo run --release -p examples --bin embed -- "first sentence" "second sentence" ...
//! cargo run --release -p examples --bin embed -- --bench [--peer] [--rounds N] [--threads T]
//! ```
//!
//! Without sentences a built-in list is used. `--bench` times batches of 32 over a fixed set of
//! 256 generated sentences (several rounds after a warm-up) and prints sentences/s; `--peer` also
//! runs `crates/lm/peer/minilm_st.py` (sentence-transformers on PyTorch CPU, same thread count) on
//! the same sentences in the same run, prints its rate, the ratio, and the largest difference
//! between the two sets of embeddings; `--json FILE` writes the report. The measurement is
//! `lm::bench::embed` (library code); this binary parses arguments, picks the device and
//! prints. The model is found by `lm::locate::minilm_dir()` (`bash scripts/fetch_models.sh`).
//!
//! Allocation matters: every burn op allocates its output, and with glibc's allocator blocks above
//! the mmap threshold come back from the kernel as fresh zeroed pages each time (one thread:
//! 33 → 52 sentences/s when they were kept in the heap). The example binaries therefore use
//! mimalloc (`examples/common/alloc.rs`).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::Device;
use clap::Parser;
use lm::bench::embed::{self as bench, EmbedBenchConfig, SentenceTransformersPeer};
use lm::models::bert::{DEFAULT_MAX_BATCH, SentenceEncoder, cosine_similarity};

const BUILT_IN: [&str; 8] = [
    "A man is playing a guitar on stage.",
    "Someone is performing music in front of an audience.",
    "The cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun.",
    "What is the capital of France?",
    "Paris is the largest city in France.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Stock markets fell sharply after the announcement.",
];

/// Sentence embeddings with all-MiniLM-L6-v2: sentences → unit vectors → cosine similarities.
#[derive(Parser, Debug)]
#[command(
    name = "embed",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// Sentences to embed [default: a built-in list of 8].
    sentences: Vec<String>,
    /// Time batches over 256 generated sentences (or --texts) instead of printing similarities.
    #[arg(long)]
    bench: bool,
    /// With --bench: also run sentence-transformers (`crates/lm/peer/minilm_st.py`) on the same
    /// sentences and compare.
    #[arg(long)]
    peer: bool,
    /// With --bench: timed rounds after the warm-up (0 counts as 1).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Threads [default: all cores] (0 counts as 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Sentences per batch (0 counts as 1).
    #[arg(long, default_value_t = DEFAULT_MAX_BATCH)]
    batch: usize,
    /// With --bench: the texts to time, one per line [default: 256 generated sentences].
    #[arg(long, value_name = "FILE")]
    texts: Option<PathBuf>,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu", value_parser = cli::checked_by(backend::device))]
    device: String,
    /// The MiniLM folder [default: found by `lm::locate::minilm_dir()`].
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Compare with sentence-transformers' golden file (minilm_embeddings.json) and fail above
    /// 1e-4.
    #[arg(long, value_name = "FILE")]
    golden: Option<PathBuf>,
    /// With --bench: write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn print_matrix(sentences: &[&str], vectors: &[Vec<f32>]) {
    println!("cosine similarity:");
    print!("     ");
    for j in 0..sentences.len() {
        print!("{j:>7}");
    }
    println!();
    for (i, a) in vectors.iter().enumerate() {
        print!("{i:>4} ");
        for b in vectors {
            print!("{:>7.3}", cosine_similarity(a, b));
        }
        println!();
    }
    for (i, s) in sentences.iter().enumerate() {
        println!("{i:>4}: {s}");
    }
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    args.rounds = args.rounds.max(1);
    args.threads = args.threads.map(|t| t.max(1));
    args.batch = args.batch.max(1);
    cli::run(|| embed(&args))
}

fn embed(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = backend::device(&args.device)?;
    let cpu = device == Device::flex();
    let dir = match &args.model {
        Some(d) => d.clone(),
        None => lm::locate::minilm_dir()?,
    };
    let t0 = Instant::now();
    let mut encoder = SentenceEncoder::from_dir(&dir, &device)?.with_max_batch(args.batch);
    if let Some(t) = args.threads {
        encoder = encoder.with_threads(t);
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    eprintln!(
        "loaded {} in {:.2}s ({threads} threads)",
        dir.display(),
        t0.elapsed().as_secs_f64()
    );

    if let Some(golden) = &args.golden {
        let comparison = bench::compare_golden(&encoder, golden)?;
        print!("{}", comparison.to_markdown());
        if !comparison.passed() {
            return Err(format!(
                "{}: golden embeddings differ by {:e} > {:e}",
                args.device, comparison.worst, comparison.tolerance
            )
            .into());
        }
        return Ok(());
    }

    if !args.bench {
        let sentences: Vec<&str> = if args.sentences.is_empty() {
            BUILT_IN.to_vec()
        } else {
            args.sentences.iter().map(String::as_str).collect()
        };
        let t = Instant::now();
        let vectors = encoder.embed(&sentences)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{} sentences → {}-dim vectors in {:.3}s ({:.1} sentences/s)",
            sentences.len(),
            encoder.dim(),
            secs,
            sentences.len() as f64 / secs
        );
        print_matrix(&sentences, &vectors);
        return Ok(());
    }

    let texts = match &args.texts {
        Some(path) => bench::read_texts(path)?,
        None => bench::bench_sentences(),
    };
    let config = EmbedBenchConfig {
        batch: args.batch,
        rounds: args.rounds,
        // The int8 path is a CPU path; on another device only the f32 path is timed.
        int8: cpu,
    };
    let peer = args.peer.then(|| SentenceTransformersPeer {
        model_dir: dir.clone(),
        threads,
    });
    let report = bench::run(
        &encoder,
        &texts,
        &config,
        &args.device,
        threads,
        peer.as_ref(),
    )?;
    print!("{}", report.to_markdown());
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
