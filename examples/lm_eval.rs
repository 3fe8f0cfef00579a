//! `lm_eval` — lm-evaluation-harness-compatible benchmarks over a language model.
//!
//! ```text
//! cargo run --release -p examples --bin lm_eval -- --tasks hellaswag,arc_easy --limit 100
//! cargo run --release -p examples --bin lm_eval -- --model path/to/model.gguf --tasks mmlu \
//!     --offset 0 --limit 20 --batch-size 1 --output out/lm_eval
//! ```
//!
//! `--model` is a GGUF file or a Hugging Face directory of any supported family (Llama, SmolLM2,
//! Gemma 3; default: SmolLM2-135M-Instruct
//! from the model cache). Tasks: hellaswag, arc_easy, arc_challenge, piqa, winogrande,
//! lambada_openai, lambada_gen (LAMBADA as greedy generation, first-word exact match), mmlu,
//! `mmlu_<subject>`, gsm8k, math500, wikitext2, humaneval, mbpp.
//! Writes `samples_<task>.jsonl` (resumable: items already there are skipped), `results.json`
//! and `results.md` into `--output`, and prints the markdown table.

#[path = "common/backend.rs"]
mod backend;

use std::path::PathBuf;

use evals::harness::{RunConfig, Task, run};
use lm::CausalLm;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut cfg = RunConfig::default();
    let mut model_path: Option<PathBuf> = None;
    let mut device = "cpu".to_string();
    let mut engine = lm::Engine::F32;
    let mut tasks = "hellaswag".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model_path = Some(val()?.into()),
            "--tasks" => tasks = val()?,
            "--limit" => cfg.limit = Some(val()?.parse()?),
            "--offset" => cfg.offset = val()?.parse()?,
            "--batch-size" => cfg.batch_size = val()?.parse()?,
            "--seed" => cfg.seed = val()?.parse()?,
            "--max-length" => cfg.max_length = val()?.parse()?,
            "--max-gen-toks" => cfg.max_gen_toks = val()?.parse()?,
            "--output" => cfg.output = val()?.into(),
            "--device" => device = val()?,
            "--engine" => engine = lm::Engine::parse(&val()?)?,
            "--no-progress" => cfg.progress = false,
            "-h" | "--help" => {
                eprintln!(
                    "lm_eval --model <gguf|hf dir> --tasks a,b --limit N --offset N --batch-size N --output DIR [--device cpu] [--engine f32|quantized] [--seed N] [--max-length N] [--max-gen-toks N] [--no-progress]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    cfg.tasks = tasks
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Task::parse)
        .collect::<Result<_, _>>()?;
    let dev = backend::device(&device)?;
    let path = match model_path {
        Some(p) => p,
        None => lm::locate::smollm2_gguf()?,
    };
    let model = CausalLm::open_with(&path, &dev, engine)?;
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
