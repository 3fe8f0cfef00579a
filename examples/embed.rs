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
//! between the two sets of embeddings. The model is found by `lm::locate::minilm_dir()`
//! (`bash scripts/fetch_models.sh`).
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

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use burn::tensor::Device;
use clap::Parser;
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
}

/// 256 deterministic sentences of 4 to ~40 words, built from word lists with a fixed LCG.
fn bench_sentences() -> Vec<String> {
    const SUBJECTS: [&str; 12] = [
        "The committee",
        "A young engineer",
        "My neighbour's dog",
        "The new transformer model",
        "Researchers at the university",
        "The old lighthouse keeper",
        "A small startup in Berlin",
        "The orchestra",
        "Our quarterly report",
        "The hiking group",
        "The city council",
        "An anonymous donor",
    ];
    const VERBS: [&str; 10] = [
        "announced",
        "quietly rejected",
        "carefully reviewed",
        "celebrated",
        "postponed",
        "described in detail",
        "questioned",
        "improved",
        "funded",
        "photographed",
    ];
    const OBJECTS: [&str; 10] = [
        "the proposal for a new bridge",
        "an unexpected result",
        "the annual budget",
        "a concert in the park",
        "the latest benchmark numbers",
        "a recipe for sourdough bread",
        "the migration of birds",
        "a long-awaited software release",
        "the rules of the tournament",
        "a map of the northern coast",
    ];
    const TAILS: [&str; 10] = [
        "",
        " yesterday",
        " after a long debate",
        " despite heavy rain and strong winds along the coast",
        " because the previous attempt had failed",
        " while most people were still asleep",
        ", which surprised everyone who had followed the story since the beginning of the year",
        " in front of a large audience",
        " without telling anyone",
        ", and the discussion that followed lasted well into the night as new questions kept coming up",
    ];
    let mut state = 0x2545_f491_u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    (0..256)
        .map(|_| {
            let mut s = format!(
                "{} {} {}{}.",
                SUBJECTS[next(SUBJECTS.len())],
                VERBS[next(VERBS.len())],
                OBJECTS[next(OBJECTS.len())],
                TAILS[next(TAILS.len())]
            );
            if next(3) == 0 {
                s.push_str(&format!(
                    " {} {} {}.",
                    SUBJECTS[next(SUBJECTS.len())],
                    VERBS[next(VERBS.len())],
                    OBJECTS[next(OBJECTS.len())]
                ));
            }
            s
        })
        .collect()
}

/// Embeds the texts of sentence-transformers' golden file (one at a time, then all together)
/// and compares them with the reference vectors: prints the worst absolute difference and fails
/// above 1e-4 (the tolerance of `shared/golden/README.md`).
fn check_golden(
    encoder: &SentenceEncoder,
    path: &Path,
    device: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    )?;
    let cases = golden["cases"]
        .as_array()
        .ok_or_else(|| format!("{}: no `cases` array", path.display()))?;
    let mut texts = Vec::new();
    let mut expected = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        texts.push(
            c["text"]
                .as_str()
                .ok_or_else(|| format!("{}: case {i} has no text", path.display()))?,
        );
        let v: Option<Vec<f32>> = c["embedding"].as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_f64())
                .map(|x| x as f32)
                .collect()
        });
        expected.push(v.ok_or_else(|| format!("{}: case {i} has no embedding", path.display()))?);
    }
    let batched = encoder.embed(&texts)?;
    let mut worst = 0.0f32;
    for (i, text) in texts.iter().enumerate() {
        let single = encoder.embed(&[*text])?.remove(0);
        let diff = |v: &[f32]| {
            v.iter()
                .zip(&expected[i])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max)
        };
        let (d1, d2) = (diff(&single), diff(&batched[i]));
        println!(
            "{device}: max|Δ| single {d1:.2e}, batched {d2:.2e}  {:?}",
            text.chars().take(40).collect::<String>()
        );
        worst = worst.max(d1).max(d2);
    }
    println!(
        "{device}: worst max abs difference over {} golden texts {worst:.3e} (tolerance 1e-4)",
        texts.len()
    );
    if worst > 1e-4 {
        return Err(format!("{device}: golden embeddings differ by {worst:e} > 1e-4").into());
    }
    Ok(())
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

fn peer_script() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
    .join("crates/lm/peer/minilm_st.py")
}

fn run_peer(
    model_dir: &Path,
    sentences: &[String],
    threads: usize,
    batch: usize,
    rounds: usize,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let file = std::env::temp_dir().join(format!("embed-bench-{}.txt", std::process::id()));
    std::fs::write(&file, sentences.join("\n") + "\n")?;
    let output = Command::new("python3")
        .arg(peer_script())
        .arg(&file)
        .arg("--model")
        .arg(model_dir)
        .args(["--threads", &threads.to_string()])
        .args(["--batch-size", &batch.to_string()])
        .args(["--rounds", &rounds.to_string()])
        .env("HF_HUB_OFFLINE", "1")
        .output()?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        return Err(format!(
            "peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
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
        return check_golden(&encoder, golden, &args.device);
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

    let owned = match &args.texts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let lines: Vec<String> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            if lines.is_empty() {
                return Err(format!("{}: no texts", path.display()).into());
            }
            lines
        }
        None => bench_sentences(),
    };
    let sentences: Vec<&str> = owned.iter().map(String::as_str).collect();
    let tokens: usize = encoder.tokenize(&sentences)?.iter().map(Vec::len).sum();
    println!(
        "bench: {} sentences ({tokens} tokens, {:.1} per sentence), batch {}, {} rounds, {threads} threads",
        sentences.len(),
        tokens as f64 / sentences.len() as f64,
        args.batch,
        args.rounds
    );
    // Batches of `batch` sentences, as the peer does; the warm-up pass gives the embeddings.
    let encode_all = |enc: &SentenceEncoder| -> lm::Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(sentences.len());
        for chunk in sentences.chunks(args.batch) {
            out.extend(enc.embed(chunk)?);
        }
        Ok(out)
    };
    let time = |enc: &SentenceEncoder| -> lm::Result<(f64, f64)> {
        let t = Instant::now();
        for _ in 0..args.rounds {
            encode_all(enc)?;
        }
        let secs = t.elapsed().as_secs_f64();
        Ok(((sentences.len() * args.rounds) as f64 / secs, secs))
    };
    let ours_vectors = encode_all(&encoder)?;
    let (ours, secs) = time(&encoder)?;
    println!(
        "ours (burn, f32, {}):{:>w$}{ours:8.1} sentences/s ({secs:.2}s)",
        args.device,
        "",
        w = 8usize.saturating_sub(args.device.len())
    );
    if !cpu {
        // The int8 path is a CPU path; on another device the bench ends here.
        return Ok(());
    }
    let int8 = encoder.clone().quantized()?;
    let int8_vectors = encode_all(&int8)?;
    let (fast, secs) = time(&int8)?;
    let cosines: Vec<f32> = int8_vectors
        .iter()
        .zip(&ours_vectors)
        .map(|(a, b)| cosine_similarity(a, b))
        .collect();
    let lowest = cosines.iter().copied().fold(1.0f32, f32::min);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    println!(
        "ours (int8, quantized):  {fast:8.1} sentences/s ({secs:.2}s; {:.2}× f32; cosine to f32 mean {mean:.5}, lowest {lowest:.5})",
        fast / ours
    );

    if args.peer {
        let peer = run_peer(&dir, &owned, threads, args.batch, args.rounds)?;
        let theirs = peer["sentences_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "sentence-transformers:   {theirs:8.1} sentences/s ({:.2}s; torch {} on {} threads)",
            peer["seconds"].as_f64().unwrap_or(f64::NAN),
            peer["versions"]["torch"].as_str().unwrap_or("?"),
            peer["threads"]
        );
        println!(
            "ratio ours / peer:       {:8.2}× (f32), {:.2}× (int8)",
            ours / theirs,
            fast / theirs
        );
        if let Some(rows) = peer["embeddings"].as_array() {
            let max_diff = rows
                .iter()
                .zip(&ours_vectors)
                .flat_map(|(row, v)| {
                    row.as_array()
                        .into_iter()
                        .flatten()
                        .zip(v)
                        .map(|(x, y)| (x.as_f64().unwrap_or(f64::NAN) as f32 - y).abs())
                })
                .fold(0.0f32, f32::max);
            println!("max |ours − peer| over all embeddings: {max_diff:.2e}");
        }
    }
    Ok(())
}
