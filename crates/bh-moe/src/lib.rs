//! Adaptive expert counts for mixture-of-experts layers: how many experts fire for each token.
//!
//! The expert level of the workspace's routing (beside query routing and token-level help in
//! `routing-core`): an OLMoE-style router scores `E` experts per token and layer; instead of a
//! fixed top-`k`, the selectors here choose `k` per token.
//!
//! * [`BhSelector`] — Benjamini–Hochberg routing: p-values `p_e = 1 − F_l(logit_e)` under a
//!   per-layer null distribution `F_l` (a Gaussian KDE of calibration logits), BH step-up at
//!   level `α`, `k̂` clamped to `[min_k, max_k]`. Since `p` is monotone in the logit, the chosen
//!   experts are always the top-`k̂` by logit: **BH only chooses `k̂`** ([`mod@bh`]).
//! * [`TopP`] — the smallest set of experts whose softmax mass reaches `p`.
//! * [`routing_core::expert::TopK`] — the fixed-`k` baseline with HF transformers' semantics.
//!
//! All three implement [`routing_core::expert::ExpertSelector`]: one token's logits at one
//! layer in, experts (descending logit; ties to the lower index) and combine weights out, into
//! a reused [`routing_core::expert::ExpertChoice`] — no tensors, no allocation per token.
//!
//! | module | contents |
//! |---|---|
//! | [`mod@kde`] | [`GaussianKde`] (scipy `gaussian_kde` semantics: Scott/Silverman/scalar factor, `ddof = 1`), exact pdf/cdf, [`CdfTable`] (tabulated CDF with a stated error bound), seeded subsampling, JSON files with provenance ([`KdeFile`]) |
//! | [`mod@olmoe_stats`] | expert-load statistics (utilisation, Gini) of the real OLMoE-1B-7B from the OLMoE paper's routing data |
//! | [`mod@metrics`] | the seed's 16 metrics, each a documented function |
//! | [`mod@bh`] | the step-up procedure, [`BhConfig`] and `k̂` |
//! | [`mod@select`] | [`BhSelector`], [`TopP`], [`UnitWeights`] |
//! | [`mod@study`] | the seed's study: grid × datasets through `evals`, 16 metrics, JSON + Parquet logs, results table, 9-panel figure, report |
//! | [`mod@routed`] | [`routed::RoutedLm`]: an MoE model under any selector as an `lm::LanguageModel` (harness scoring), recording every routing decision |
//! | [`mod@synthetic`] | seeded synthetic router logits |
//! | [`mod@testbed`] | a dense SwiGLU model split into experts (balanced k-means) with ridge-fitted routers: the real-weights testbed |
//!
//! No cargo features. The OLMoE model itself lives in `lm`; benchmark scoring in `evals`.
//!
//! ```
//! use bh_moe::{BhConfig, BhSelector, GaussianKde, KdeOptions, synthetic};
//! use routing_core::expert::{ExpertChoice, ExpertSelector};
//!
//! // Calibration: 200 tokens × 64 experts of seeded synthetic router logits for one layer,
//! // pooled over experts, subsampled to 4,000 for the fit.
//! let calibration: Vec<f64> = synthetic::router_logits(200, 64, 7)
//!     .iter()
//!     .map(|&z| f64::from(z))
//!     .collect();
//! let options = KdeOptions { max_samples: Some(4_000), seed: 1, ..KdeOptions::default() };
//! let kde = GaussianKde::fit_with(&calibration, &options)?;
//! let null = kde.tabulate(64)?; // CDF table, |error| ≤ 7.4e-6
//! assert!(null.max_error() < 1e-5);
//!
//! // BH at α = 0.3 with 1 to 16 experts per token; one null per layer (here one layer).
//! let mut bh = BhSelector::new(vec![null], BhConfig::new(0.3, 1, 16)?)?;
//! let token = synthetic::router_logits(1, 64, 99);
//! let mut choice = ExpertChoice::with_capacity(64);
//! bh.select(0, &token, &mut choice)?;
//! assert!((1..=16).contains(&choice.len()));
//! assert!((choice.weight_sum() - 1.0).abs() < 1e-5); // renormalised by default
//! // The chosen experts are the top-k̂ by logit.
//! let mut by_logit: Vec<usize> = (0..64).collect();
//! by_logit.sort_by(|&a, &b| token[b].total_cmp(&token[a]));
//! assert_eq!(choice.experts, by_logit[..choice.len()]);
//! # Ok::<(), bh_moe::BhMoeError>(())
//! ```

pub mod bh;
pub mod error;
pub mod kde;
pub mod metrics;
pub mod olmoe_stats;
pub mod routed;
pub mod select;
pub mod study;
pub mod synthetic;
pub mod testbed;

pub use bh::{BhConfig, rejections, step_up, step_up_sorted};
pub use error::{BhMoeError, Result};
pub use kde::{
    Bandwidth, CdfTable, GaussianKde, KdeFile, KdeOptions, KdeRecord, NullDistribution, Provenance,
};
pub use routing_core::expert::CombineWeights;
pub use select::{BhSelector, TopP, UnitWeights};
