//! Learned query routers trained on real outcomes: RouteLLM's matrix-factorisation router
//! (Ong et al. 2024, "RouteLLM: Learning to Route LLMs with Preference Data", §4.2) for N
//! models, and the MBPP study's encoder + MLP-head classifier router (seed notebook 000), both
//! on frozen MiniLM sentence embeddings from `lm`.
//!
//! Training is plain Rust: the models are tiny (≈50k parameters), so gradients are written
//! out by hand (derivations in [`mf`] and [`classifier`], checked against finite
//! differences) and optimised with our own [`adam`]. Everything is seeded (ChaCha8).
//!
//! ```
//! use datasets::{OutcomeTable, PromptMeta, ScoreKind};
//! use mf_router::battles::{BattleOptions, TiePolicy, golden_battles};
//! use mf_router::embed_cache::{EmbeddingMatrix, HashEmbedder, TextEmbedder};
//! use mf_router::mf::{MfConfig, train_mf};
//!
//! // Toy outcomes: the strong model is needed exactly on the "hard" prompts.
//! let texts: Vec<String> = (0..80)
//!     .map(|i| if i % 2 == 0 { format!("hard proof {i}") } else { format!("easy sum {i}") })
//!     .collect();
//! let prompts: Vec<PromptMeta> = texts
//!     .iter()
//!     .enumerate()
//!     .map(|(i, t)| PromptMeta::new(format!("q{i}")).with_text(t.clone()))
//!     .collect();
//! let scores: Vec<f64> = (0..80).flat_map(|i| if i % 2 == 0 { [0.0, 1.0] } else { [1.0, 0.0] }).collect();
//! let table = OutcomeTable::new("toy", ScoreKind::Binary, vec!["weak".into(), "strong".into()], prompts, scores, None)?;
//!
//! let embedder = HashEmbedder::new(64);
//! let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
//! let emb = EmbeddingMatrix::from_rows(64, &embedder.embed_texts(&refs)?)?;
//! let (battles, _) = golden_battles(&table, None, &BattleOptions::golden(TiePolicy::Drop))?;
//! let config = MfConfig { model_dim: 16, epochs: 40, lr: 1e-2, patience: None, ..MfConfig::default() };
//! let (model, _log) = train_mf(&config, table.models(), &emb, &battles, &[])?;
//! let p = model.pair_win_probs(&emb, 0, 1, 1)?; // P(strong beats weak | q)
//! assert!(p[0] > 0.5 && p[1] < 0.5);
//! # Ok::<(), mf_router::MfError>(())
//! ```
//!
//! Modules:
//! * [`battles`] — golden-label and judge-preference battles from outcome tables, AlpacaEval
//!   preference battles, [`TiePolicy`];
//! * [`splits`] — seeded random and held-out-group splits, no prompt text in two splits;
//! * [`embed_cache`] — the [`TextEmbedder`] trait, the on-disk embedding cache, progress bar;
//! * [`harness_router`] — a router trained on the workspace's own `lm_eval` outcomes of two
//!   models (RouteLLM's protocol on our data; the checkpoint `serve` loads);
//! * [`mf`] — the MF model, its gradient, training, and the `routing-core` router traits;
//! * [`classifier`] — the MLP head with dropout, soft targets, EMA, percentile thresholds;
//! * [`checkpoint`] — safetensors + JSON checkpoints and [`LoadedRouter`] (`route`, `score`);
//! * [`study`] — the RouteLLM MF study and the MBPP classifier study as library code (typed
//!   config → typed report → `report.md`, `summary.json`, figures, checkpoints);
//! * [`synthetic`] — seeded **synthetic** outcomes and query embeddings (not real data) that
//!   let the studies run without data files or an encoder;
//! * [`adam`] — Adam/AdamW and initialisers; [`error`] — [`MfError`].
//!
//! Cargo features: none. The encoder runs on burn's CPU backend (`Device::flex()`); binaries
//! may pass another device to [`lm::models::bert::SentenceEncoder::from_dir`].

pub mod adam;
pub mod battles;
pub mod checkpoint;
pub mod classifier;
pub mod embed_cache;
pub mod error;
pub mod harness_router;
pub mod mf;
pub mod splits;
pub mod study;
pub mod synthetic;

pub use battles::{
    Battle, BattleOptions, TiePolicy, golden_battles, load_alpaca_eval_battles, preference_battles,
};
pub use checkpoint::{Checkpoint, CheckpointConfig, LoadedRouter, RouterKind};
pub use classifier::{ClassifierConfig, ClassifierModel, percentile_thresholds, train_classifier};
pub use embed_cache::{
    CachedEmbedder, EmbedCache, EmbeddingMatrix, HashEmbedder, LookupEmbedder, TextEmbedder,
};
pub use error::{MfError, Result};
pub use mf::{MfConfig, MfModel, MfMultiRouter, MfPairRouter, train_mf};
pub use splits::{Split, group_split, random_split};
