//! `generate` — prompt → text with a Llama-family model, with tokens/s.
//!
//! ```text
//! cargo run --release -p examples --bin generate -- "The capital of France is"
//! cargo run --release -p examples --bin generate -- --chat "What is 2+2?" --max-tokens 64 --temperature 0.7 --seed 1
//! ```
//!
//! The model is SmolLM2-135M-Instruct from `scripts/fetch_models.sh` unless `--gguf FILE` or
//! `--hf-dir DIR` names another. `--chat` wraps the prompt in the ChatML template SmolLM2 was
//! tuned with.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/backend.rs"]
mod backend;

use lm::{GenerateOptions, LanguageModel, CausalLm, SamplingConfig, generate};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut prompt = None;
    let mut chat = false;
    let mut gguf = None;
    let mut hf_dir = None;
    let mut opts = GenerateOptions::default();
    let mut device = "cpu".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--chat" => {
                chat = true;
                prompt = Some(val()?);
            }
            "--gguf" => gguf = Some(val()?),
            "--hf-dir" => hf_dir = Some(val()?),
            "--max-tokens" => opts.max_new_tokens = val()?.parse()?,
            "--temperature" => opts.sampling.temperature = val()?.parse()?,
            "--top-k" => opts.sampling.top_k = Some(val()?.parse()?),
            "--top-p" => opts.sampling.top_p = Some(val()?.parse()?),
            "--seed" => opts.sampling.seed = val()?.parse()?,
            "--stop" => opts.stop_strings.push(val()?),
            "--device" => device = val()?,
            "-h" | "--help" => {
                println!(
                    "usage: generate [--chat] PROMPT [--gguf FILE | --hf-dir DIR] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STR]... [--device {}]",
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
    let model = match (gguf, hf_dir) {
        (_, Some(dir)) => CausalLm::from_hf_dir(dir, &device)?,
        (Some(f), None) => CausalLm::from_gguf(f, &device)?,
        (None, None) => CausalLm::from_gguf(lm::locate::smollm2_gguf()?, &device)?,
    };
    eprintln!(
        "loaded {} in {:.2} s",
        model.name(),
        t.elapsed().as_secs_f64()
    );
    let text = prompt.unwrap_or_else(|| "The capital of France is".into());
    let text = if chat {
        format!("<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")
    } else {
        text
    };
    let ids = model.encode(&text)?;
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
