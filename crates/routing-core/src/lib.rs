//! Routing decisions: which model should answer this prompt (query level), when a small model
//! should hand tokens to an oracle (token level, [`mod@token`]), and which experts of a
//! mixture-of-experts layer process a token (expert level, [`mod@expert`]).
//!
//! This crate owns the decision, not the measurement (that is `evals`) nor training (that is
//! `mf-router`). It provides:
//! * the token-level [`token::HelpPolicy`] trait and its policies (never, oracle only, random
//!   `c × k`, entropy and max-probability triggers), tensor-free so that any engine drives them;
//! * the expert-level [`expert::ExpertSelector`] trait (one token's router logits at one layer →
//!   experts and combine weights, written into a reused [`expert::ExpertChoice`]) and the
//!   reference [`expert::TopK`] router with HF transformers' OLMoE/Mixtral semantics; the
//!   adaptive selectors (Benjamini–Hochberg, top-p) live in `bh-moe`;
//! * the router traits [`PairRouter`] (weak/strong pair: one score per prompt) and
//!   [`MultiRouter`] (N models: expected quality per model);
//! * the one cost model ([`mod@cost`]: FLOPs ≈ 2 × active parameters × tokens; dollars at
//!   per-million-token prices);
//! * threshold calibration for a target strong-call share ([`calibrate`], RouteLLM's
//!   `(1 − share)` quantile rule) and willingness-to-pay routing among N models ([`wtp`]);
//! * reference routers ([`mod@reference`]): seeded random, oracle, always-weak/always-strong,
//!   precomputed scores from an external router, and the N-model oracle.
//!
//! ```
//! use datasets::{OutcomeTable, PromptMeta, ScoreKind};
//! use routing_core::{PairRouter, RandomRouter, calibrate_threshold, decide};
//!
//! let prompts: Vec<PromptMeta> = (0..100).map(|i| PromptMeta::new(format!("q{i}"))).collect();
//! let scores = RandomRouter::new(42).score(&prompts)?;
//! let threshold = calibrate_threshold(&scores, 0.3)?; // 30% of calls to the strong model
//! let strong = decide(&scores, threshold)
//!     .iter()
//!     .filter(|d| **d == routing_core::PairDecision::Strong)
//!     .count();
//! assert_eq!(strong, 30);
//! # Ok::<(), routing_core::RoutingError>(())
//! ```

pub mod calibrate;
pub mod cost;
pub mod error;
pub mod expert;
pub mod reference;
pub mod router;
pub mod token;
pub mod wtp;

pub use calibrate::{SortedScores, calibrate_threshold, quantile_sorted};
pub use error::{Result, RoutingError};
pub use reference::{
    ConstantRouter, OracleMultiRouter, OracleRouter, PrecomputedRouter, RandomRouter,
};
pub use router::{MultiRouter, PairDecision, PairRouter, QualityMatrix, decide};
pub use wtp::{lambda_grid, route_willingness_to_pay};
