//! `generate` — prompt → text with any supported model (Llama, SmolLM2, Gemma 3), with tokens/s.
//!
//! ```text
//! cargo run --release -p examples --bin generate -- "The capital of France is"
//! cargo run --release -p examples --bin generate -- --chat "What is 2+2?" --max-tokens 64 --temperature 0.7 --seed 1
//! ```
//!
//! The model is SmolLM2-135M-Instruct from `scripts/fetch_models.sh` unless `--model PATH` (a
//! GGUF file or a Hugging Face directory; `--gguf` / `--hf-dir` are older spellings) names
//! another. `--chat` wraps the prompt in the model's chat format
//! (ChatML for SmolLM2, Llama 3's or Gemma's when the vocabulary has their special tokens).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lm::tokenizer::{ChatFormat, ChatMessage};
use lm::{CausalLm, GenerateOptions, LanguageModel, SamplingConfig, generate};

type BoxError = Box<dyn std::error::Error>;

/// Prompt → text with any supported model, with tokens/s.
#[derive(Parser, Debug)]
#[command(
    name = "generate",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The prompt, continued as plain text.
    #[arg(default_value = "The capital of France is")]
    prompt: String,
    /// A prompt to wrap in the model's chat format (instead of PROMPT).
    #[arg(long, value_name = "PROMPT", conflicts_with = "prompt")]
    chat: Option<String>,
    /// A GGUF file or a Hugging Face directory [default: SmolLM2-135M-Instruct from the model
    /// cache].
    #[arg(long, alias = "gguf", alias = "hf-dir", value_name = "GGUF_OR_DIR")]
    model: Option<PathBuf>,
    /// New tokens at most.
    #[arg(long, default_value_t = GenerateOptions::default().max_new_tokens)]
    max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = SamplingConfig::greedy().temperature)]
    temperature: f32,
    /// Keep only the K most likely tokens [default: all].
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Keep the smallest set of tokens with cumulative probability >= P [default: all].
    #[arg(long, value_name = "P")]
    top_p: Option<f32>,
    /// Seed of the sampling stream.
    #[arg(long, default_value_t = SamplingConfig::greedy().seed)]
    seed: u64,
    /// Stop at this string (repeatable).
    #[arg(long, value_name = "STR")]
    stop: Vec<String>,
    /// Device: cpu, or wgpu / vulkan / cuda when compiled in.
    #[arg(long, default_value = "cpu", value_parser = cli::checked_by(backend::device))]
    device: String,
    /// Engine.
    #[arg(long, default_value = "f32", value_parser = cli::engine())]
    engine: lm::Engine,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| generate_text(args))
}

fn generate_text(args: Args) -> Result<(), BoxError> {
    let opts = GenerateOptions {
        max_new_tokens: args.max_tokens,
        stop_strings: args.stop,
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
    };
    let device = backend::device(&args.device)?;
    let t = std::time::Instant::now();
    let path = match args.model {
        Some(p) => p,
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open_with(&path, &device, args.engine)?;
    eprintln!(
        "loaded {} in {:.2} s",
        model.name(),
        t.elapsed().as_secs_f64()
    );
    let text = match args.chat {
        // The model's own chat format, told by its special tokens (ChatML for SmolLM2).
        Some(text) => {
            let format = ChatFormat::detect(model.tokenizer()).unwrap_or(ChatFormat::ChatMl);
            format.render(&[ChatMessage::user(text)], true)
        }
        None => args.prompt,
    };
    let ids = model.encode_prompt(&text)?;
    let g = generate(&model, &ids, &opts)?;
    println!("{text}{}", g.text);
    eprintln!(
        "\n{} prompt tokens in {:.3} s ({:.1} tok/s); {} new tokens in {:.3} s ({:.1} tok/s); stop: {:?}",
        g.prompt_tokens,
        g.prefill_secs,
        g.prompt_tokens as f64 / g.prefill_secs.max(1e-9),
        g.tokens.len(),
        g.decode_secs,
        g.tokens_per_sec(),
        g.stop
    );
    Ok(())
}
