//! Measurement for compute-aware inference: how much quality each unit of compute buys.
//!
//! This release covers routing measurement ([`routing`]): cost–quality curves of pair routers
//! on any grid of strong-call shares, PGR/APGR/CPT/AUC as RouteLLM defines them (paper and
//! code variants, named), the random-router band, the oracle, N-model willingness-to-pay
//! sweeps with RouterBench's convex-hull AIQ and zero router, Hybrid-LLM's quality drop, the
//! MBPP study's performance-gap table, and SVG figures (drawn with the workspace's `figure` crate);
//! [`plane`] puts routers of every level on one cost–quality plane.
//!
//! [`harness`] is an lm-evaluation-harness-compatible benchmark runner over
//! [`lm::LanguageModel`] (HellaSwag, ARC, PIQA, WinoGrande, LAMBADA, MMLU, GSM8K, MATH,
//! WikiText-2, HumanEval, MBPP) whose per-sample outputs load as a routing outcome table.
//!
//! ```
//! use datasets::{OutcomeTable, PromptMeta, ScoreKind};
//! use evals::routing::{ApgrMethod, PairEvaluator, PairOutcomes, ShareRule, share_grid};
//! use routing_core::{OracleRouter, PairRouter};
//!
//! let table = OutcomeTable::new(
//!     "toy",
//!     ScoreKind::Binary,
//!     vec!["weak".into(), "strong".into()],
//!     (0..4).map(|i| PromptMeta::new(format!("q{i}"))).collect(),
//!     vec![0., 1., 1., 1., 0., 0., 0., 1.],
//!     None,
//! )?;
//! let outcomes = PairOutcomes::from_table(&table, "weak", "strong")?;
//! let oracle = OracleRouter::new(&table, "weak", "strong")?;
//! let scores = oracle.score(table.prompts())?;
//! let curve = PairEvaluator::new(&scores, &outcomes)?.curve("oracle", &share_grid(4), &ShareRule::Rank)?;
//! assert!(curve.apgr(ApgrMethod::Area)? > 0.5);
//! # Ok::<(), evals::EvalError>(())
//! ```

pub mod error;
pub mod harness;
pub mod plane;
pub mod report;
pub mod routing;

pub use error::{EvalError, Result};
