//! `guided-decode`: a small language model that asks an oracle for `k` tokens while it
//! generates — the token level of the workspace's routing (query level: `mf-router` /
//! `routing-core`; expert level: `bh-moe`).
//!
//! * [`oracle`]: the [`Oracle`] trait (continue `prompt + partial completion` by up to `k`
//!   tokens) and the in-process [`ModelOracle`], with id-level hand-off for a shared tokenizer
//!   and text-level hand-off (re-tokenising, longest-common-prefix rollback) between different
//!   ones; [`RemoteOracle`] calls any OpenAI-compatible `/v1/completions` server (vLLM, TGI,
//!   llama.cpp) with timeouts, retries and typed errors;
//! * [`guided`]: [`guided_generate`] — the generation loop that asks a
//!   [`routing_core::token::HelpPolicy`] before every small-model step (never, oracle only,
//!   random `c × k`, entropy and max-probability triggers live in `routing-core`), with
//!   per-item accounting of tokens, calls, time, FLOPs and dollars;
//! * [`bild`]: Big Little Decoder fallback (small model's max probability below a threshold)
//!   and rollback (large-model cross-entropy of a recent small-model token above a threshold);
//! * [`speculative`]: exact speculative decoding (greedy and the rejection rule for sampling),
//!   the comparison that keeps the oracle's distribution.
//!
//! ```
//! use burn::tensor::Device;
//! use guided_decode::{GuidedOptions, ModelOracle, guided_generate};
//! use routing_core::token::RandomCalls;
//!
//! // Two tiny random models over one 40-word vocabulary stand in for a small model and its
//! // oracle (any `lm::LanguageModel` works: SmolLM2 and Gemma 3 in the examples).
//! let small = guided_decode::testing::tiny_model(40, 1);
//! let big = guided_decode::testing::tiny_model(40, 2);
//! let mut oracle = ModelOracle::same_tokenizer(&big);
//! // Two calls of 3 tokens at positions drawn from the first 8, seeded.
//! let mut policy = RandomCalls::new(2, 3, 8, 7)?;
//! let opts = GuidedOptions { max_new_tokens: 16, ..Default::default() };
//! let g = guided_generate(&small, &mut oracle, &mut policy, "w3 w7 w1", &opts)?;
//! assert_eq!(g.accounting.oracle_calls, g.calls.len());
//! assert!(g.tokens.len() <= 16);
//! # let _ = Device::flex();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bild;
pub mod error;
pub mod guided;
pub mod oracle;
pub mod remote;
pub mod speculative;
pub mod study;
pub mod testing;

pub use bild::{BildOptions, BildOutput, bild_generate, bild_with};
pub use error::{GuidedError, RemoteErrorKind, Result};
pub use guided::{
    Accounting, GuidedGeneration, GuidedOptions, GuidedStop, OracleCall, StepSignal, TokenPrices,
    guided_generate, guided_with,
};
pub use oracle::{Handoff, ModelOracle, Oracle, OracleReply};
pub use remote::{OpenAiClient, RemoteConfig, RemoteOracle};
pub use speculative::{
    SpeculativeOptions, SpeculativeOutput, speculative_generate, speculative_with,
};
pub use study::{HelpConfig, OracleSource, StudyOptions, StudyReport, merge_logs, run_study};
