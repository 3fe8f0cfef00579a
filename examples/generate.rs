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

use lm::tokenizer::{ChatFormat, ChatMessage};
use lm::{CausalLm, GenerateOptions, LanguageModel, SamplingConfig, generate};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut prompt = None;
    let mut chat = false;
    let mut model_path: Option<String> = None;
    let mut opts = GenerateOptions::default();
    let mut device = "cpu".to_string();
    let mut engine = lm::Engine::F32;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--chat" => {
                chat = true;
                prompt = Some(val()?);
            }
            "--model" | "--gguf" | "--hf-dir" => model_path = Some(val()?),
            "--max-tokens" => opts.max_new_tokens = val()?.parse()?,
            "--temperature" => opts.sampling.temperature = val()?.parse()?,
            "--top-k" => opts.sampling.top_k = Some(val()?.parse()?),
            "--top-p" => opts.sampling.top_p = Some(val()?.parse()?),
            "--seed" => opts.sampling.seed = val()?.parse()?,
            "--stop" => opts.stop_strings.push(val()?),
            "--device" => device = val()?,
            "--engine" => engine = lm::Engine::parse(&val()?)?,
            "-h" | "--help" => {
                println!(
                    "usage: generate [--chat] PROMPT [--model GGUF_OR_DIR] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STR]... [--device {}]",
                    backend::available().join("|")
                );
                return Ok(());
            }
            _ if prompt.is_none() => prompt = Some(a),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let _: &SamplingConfig = &opts.sampling;
    let device = backend::device(&device)?;
    let t = std::time::Instant::now();
    let path = match model_path {
        Some(p) => std::path::PathBuf::from(p),
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open_with(&path, &device, engine)?;
    eprintln!(
        "loaded {} in {:.2} s",
        model.name(),
        t.elapsed().as_secs_f64()
    );
    let text = prompt.unwrap_or_else(|| "The capital of France is".into());
    let text = if chat {
        // The model's own chat format, told by its special tokens (ChatML for SmolLM2).
        let format = ChatFormat::detect(model.tokenizer()).unwrap_or(ChatFormat::ChatMl);
        format.render(&[ChatMessage::user(text)], true)
    } else {
        text
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
