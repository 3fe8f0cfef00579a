//! An lm-evaluation-harness-compatible benchmark runner over [`lm::LanguageModel`].
//!
//! Reproduces EleutherAI/lm-evaluation-harness (commit `4e7e0d47`) task definitions item by
//! item — prompts, `_encode_pair` tokenisation, log-likelihood scoring, metric definitions,
//! greedy generation with stop strings and answer extraction — and writes per-sample outcomes
//! that load as a routing [`datasets::OutcomeTable`].
//!
//! ```no_run
//! use evals::harness::{RunConfig, Task, run};
//! use lm::CausalLm;
//!
//! let model = CausalLm::from_gguf(lm::locate::smollm2_gguf()?, &burn::tensor::Device::flex())?;
//! let cfg = RunConfig {
//!     tasks: vec![Task::parse("arc_easy")?, Task::parse("hellaswag")?],
//!     limit: Some(50),
//!     ..RunConfig::default()
//! };
//! for s in run(&model, &cfg)? {
//!     println!("{} n={} {:?}", s.task, s.n, s.metrics);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//! - [`task`]: the task registry ([`Task`], [`Item`]) and loading items from the data folder;
//! - [`data`]: loaders of the benchmark files in `shared/data`;
//! - [`multiple_choice`]: HellaSwag, ARC, PIQA, WinoGrande (partial scoring), MMLU 5-shot;
//! - [`perplexity`]: WikiText-2 documents, detokeniser and rolling windows; LAMBADA;
//! - [`generation`]: GSM8K/MATH prompts and greedy decoding with stop strings;
//! - [`extract`]: GSM8K strict/flexible extraction and exact match; MATH boxed answers and
//!   `is_equiv`;
//! - [`request`]: lm-eval's `_encode_pair`;
//! - [`scorer`]: batched or prefix-cached log-likelihood scoring;
//! - [`metrics`]: acc, acc_norm, perplexity, weighted perplexity, bits per byte, stderr;
//! - [`passk`]: the unbiased pass@k estimator;
//! - [`exec`]: running code against tests in a `python3` subprocess with limits;
//! - [`runner`]: offset/limit, resume, per-sample JSONL, summary JSON, markdown;
//! - [`progress`]: the stderr progress bar;
//! - [`record`]: the per-sample record and aggregation;
//! - [`outcomes`]: several models' outputs as a routing outcome table;
//! - [`error`]: the error type, [`HarnessError`].

pub mod data;
pub mod error;
pub mod exec;
pub mod extract;
pub mod generation;
pub mod metrics;
pub mod multiple_choice;
pub mod outcomes;
pub mod passk;
pub mod perplexity;
pub use datasets::progress;
pub mod record;
pub mod request;
pub mod runner;
pub mod scorer;
pub mod task;

pub use error::{HarnessError, Result};
pub use exec::{ExecConfig, ExecOutcome, ExecStatus, run_python};
pub use outcomes::{load_outcomes, outcome_table};
pub use passk::pass_at_k;
pub use record::{SampleRecord, TaskSummary};
pub use request::{TextRequest, TokenRequest, encode_pair};
pub use runner::{GenerationScore, GenerationSpec, RunConfig, merge, run, score_generation};
pub use scorer::{Scorer, ScoringMode};
pub use task::{Family, Item, ItemKind, Task};
