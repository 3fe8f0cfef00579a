//! Typed records and loaders for the data every experiment in this workspace runs on.
//!
//! The central type is [`OutcomeTable`]: prompts × models → score in `[0, 1]`, with optional
//! per-prompt cost, prompt ids and text, split and group labels. Loaders turn the real
//! published formats into it, reject malformed input with errors that name the file, line and
//! field, and report every row they skip by rule in a [`LoadReport`].
//!
//! ```
//! use datasets::{OutcomeTable, PromptMeta, ScoreKind};
//!
//! let table = OutcomeTable::new(
//!     "toy",
//!     ScoreKind::Binary,
//!     vec!["weak".into(), "strong".into()],
//!     vec![PromptMeta::new("q1"), PromptMeta::new("q2")],
//!     vec![0.0, 1.0, 1.0, 1.0],
//!     None,
//! )?;
//! assert_eq!(table.mean_score(table.model_index("strong")?), 1.0);
//! # Ok::<(), datasets::DatasetError>(())
//! ```
//!
//! Modules:
//! * [`outcome`]: the outcome table, the long-format builder, load reports;
//! * [`code`]: per-item code-generation outcomes (test cases, perfect solutions);
//! * [`csvio`]: line-aware CSV reading shared by the loaders;
//! * [`generic`]: the workspace's own outcome-table CSV and router-score CSV formats;
//! * [`locate`]: finding the shared real-data folder (`../shared/data`, or `CAI_DATA_DIR`);
//! * [`scaling`]: scaling-run tables (Chinchilla/Epoch, Gadre et al. over-training, Pythia evals, generic CSV/JSON);
//! * [`routellm`]: RouteLLM MMLU / GSM8K per-question correctness (Mixtral vs GPT-4);
//! * [`routerbench`]: RouterBench zero-shot slices (11 models, per-prompt cost in USD);
//! * [`routerdc`]: RouterDC graded per-question scores of 7 open models;
//! * [`arena`]: Arena-Bench v1 GPT-4 judge scores (15 models, normalised 1–10 ratings);
//! * [`mbpp_study`]: per-item JSONL outputs of the MBPP routing study → code outcomes;
//! * [`progress`]: a stderr progress bar (done/total, items/s, ETA) for long loops;
//! * [`synthetic`]: seeded synthetic outcome tables from an item-response model.

pub mod code;
pub mod csvio;
pub mod error;
pub mod generic;
pub mod outcome;
pub mod progress;
pub mod shard;

pub mod arena;
pub mod locate;
pub mod mbpp_study;
pub mod routellm;
pub mod routerbench;
pub mod routerdc;
pub mod scaling;
pub mod synthetic;

pub use code::{CodeCell, CodeMetric, CodeOutcomes};
pub use error::{DatasetError, Result};
pub use generic::{load_outcome_csv, load_scores_csv, write_outcome_csv};
pub use outcome::{
    LoadReport, Loaded, LongFormatBuilder, OutcomeTable, PromptMeta, ScoreKind, SkipCount,
};

pub use arena::{ArenaOptions, MtBenchQuestion, load_arena_judgments, read_mt_bench_questions};
pub use locate::{require_shared_data, shared_data_dir};
pub use mbpp_study::load_code_outputs;
pub use routellm::{RouteLlmOptions, load_routellm_gsm8k, load_routellm_mmlu};
pub use routerbench::{
    FragmentPolicy, RouterBenchOptions, load_routerbench_slice, load_routerbench_slice_with,
};
pub use routerdc::{load_routerdc, load_routerdc_dir};
pub use synthetic::{SyntheticConfig, SyntheticModel, SyntheticOutcomes};
