//! `lm_eval` — lm-evaluation-harness-compatible benchmarks over a language model.
//!
//! ```text
//! cargo run --release -p examples --bin lm_eval -- --tasks hellaswag,arc_easy --limit 100
//! cargo run --release -p examples --bin lm_eval -- --model path/to/model.gguf --tasks mmlu \
//!     --offset 0 --limit 20 --batch-size 1 --out out/lm_eval
//! ```
//!
//! `--model` is a GGUF file or a Hugging Face directory of any supported family (Llama, SmolLM2,
//! Gemma 3; default: SmolLM2-135M-Instruct
//! from the model cache). Tasks: hellaswag, arc_easy, arc_challenge, piqa, winogrande,
//! lambada_openai, lambada_gen (LAMBADA as greedy generation, first-word exact match), mmlu,
//! `mmlu_<subject>`, gsm8k, math500, wikitext2, humaneval, mbpp.
//! Writes `samples_<task>.jsonl` (resumable: items already there are skipped), `results.json`
//! and `results.md` into `--out` (`--output` is the older spelling), and prints the markdown
//! table.
//!
//! Sharded runs (docs/sharding.md): `--shard i/N --out DIR_i` runs every N-th item; then
//! `--merge DIR_0,…,DIR_{N-1} --out DIR` writes the results a single run gives.

#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use evals::harness::{RunConfig, Task, run};
use lm::CausalLm;

type BoxError = Box<dyn std::error::Error>;

/// lm-evaluation-harness-compatible benchmarks over a language model.
#[derive(Parser, Debug)]
#[command(
    name = "lm_eval",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// A GGUF file or a Hugging Face directory [default: SmolLM2-135M-Instruct from the model
    /// cache].
    #[arg(long, value_name = "GGUF_OR_DIR")]
    model: Option<PathBuf>,
    /// Tasks, comma-separated: hellaswag, arc_easy, arc_challenge, piqa, winogrande,
    /// lambada_openai, lambada_gen, mmlu, mmlu_SUBJECT, gsm8k, math500, wikitext2, humaneval,
    /// mbpp.
    #[arg(
        long,
        default_value = "hellaswag",
        value_delimiter = ',',
        action = ArgAction::Set,
        value_parser = cli::task
    )]
    tasks: Vec<Task>,
    /// Items per task (per MMLU subject) [default: all].
    #[arg(long)]
    limit: Option<usize>,
    /// First item of each task (per MMLU subject).
    #[arg(long, default_value_t = RunConfig::default().offset)]
    offset: usize,
    /// 1: prefix-cache scoring; more: left-padded batches of this many requests.
    #[arg(long, default_value_t = RunConfig::default().batch_size)]
    batch_size: usize,
    /// Seed recorded in the summary (the tasks themselves are deterministic).
    #[arg(long, default_value_t = RunConfig::default().seed)]
    seed: u64,
    /// lm-eval's max_length: the context window for truncation and rolling windows.
    #[arg(long, default_value_t = RunConfig::default().max_length)]
    max_length: usize,
    /// Generation budget of MATH and code tasks [default: each task's lm-eval budget, MATH and
    /// MBPP 256, HumanEval 1024].
    #[arg(long)]
    max_gen_toks: Option<usize>,
    /// Output folder (samples, results.json, results.md).
    #[arg(long = "out", alias = "output", default_value_os_t = RunConfig::default().output)]
    out: PathBuf,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu", value_parser = cli::checked_by(backend::device))]
    device: String,
    /// Engine.
    #[arg(long, default_value = "f32", value_parser = cli::engine())]
    engine: lm::Engine,
    /// No progress bar on stderr.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    sharding: cli::ShardArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| evaluate(args))
}

fn evaluate(args: Args) -> Result<(), BoxError> {
    if !args.sharding.merge.is_empty() {
        let summaries = evals::harness::merge(&args.sharding.merge, &args.out)?;
        print!("{}", evals::harness::record::markdown_table(&summaries));
        eprintln!(
            "merged {} shards into {}",
            args.sharding.merge.len(),
            args.out.display()
        );
        return Ok(());
    }
    let cfg = RunConfig {
        tasks: args.tasks,
        limit: args.limit,
        offset: args.offset,
        seed: args.seed,
        batch_size: args.batch_size,
        max_length: args.max_length,
        output: args.out,
        progress: !args.no_progress,
        max_gen_toks: args.max_gen_toks,
        shard: args.sharding.shard,
        ..RunConfig::default()
    };
    let dev = backend::device(&args.device)?;
    let path = match args.model {
        Some(p) => p,
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open_with(&path, &dev, args.engine)?;
    eprintln!(
        "model {} from {}",
        lm::LanguageModel::name(&model),
        path.display()
    );
    let summaries = run(&model, &cfg)?;
    for s in &summaries {
        if s.items_per_s > 0.0 {
            eprintln!(
                "{}: {} items this run in {:.1}s ({:.3} items/s)",
                s.task,
                (s.items_per_s * s.wall_s).round(),
                s.wall_s,
                s.items_per_s
            );
        }
    }
    print!("{}", evals::harness::record::markdown_table(&summaries));
    eprintln!("wrote {}", cfg.output.display());
    Ok(())
}
