//! Scaling-law fits for planning training compute: IsoFLOP parabolas, the compute-optimal
//! frontier, asymptotic power laws, the Chinchilla parametric law, bootstrap forecast intervals
//! and loss → accuracy maps, with hand-written SVG figures.
//!
//! Every fit is a small problem type plus a solver; argmin provides the optimisers (L-BFGS for
//! the Chinchilla law, Nelder–Mead for the sigmoid), statrs the Student-t quantiles. Degenerate
//! input (one compute bucket, too few points, NaN, non-positive values) is a typed
//! [`FitError`], never a NaN parameter.
//!
//! ```
//! use scaling_fit::{
//!     ChinchillaLaw, LadderSpec, bucket_by_rounding, fit_frontier, fit_isoflops, generate_ladder,
//! };
//!
//! // A noise-free IsoFLOP ladder drawn from the Chinchilla paper's law …
//! let mut spec = LadderSpec::default_with_seed(0);
//! spec.noise_sd = 0.0;
//! let runs = generate_ladder(&spec)?;
//! // … one parabola per compute bucket, then power laws through the optima (Approach 2).
//! let fits = fit_isoflops(&bucket_by_rounding(&runs, 2)?, 3)?;
//! let frontier = fit_frontier(&fits)?;
//! let (a_true, _) = ChinchillaLaw::HOFFMANN_2022.frontier_exponents();
//! assert!((frontier.a() - a_true).abs() < 0.02);
//! # Ok::<(), scaling_fit::FitError>(())
//! ```
//!
//! Modules:
//! * [`points`]: runs (N, D, C, loss), validation, compute buckets;
//! * [`isoflop`]: per-bucket parabolas with clipped optima and one-sided curvatures;
//! * [`frontier`]: power laws N_opt(C), D_opt(C) through bucket optima (Approach 2);
//! * [`asymptotic`]: loss(C) = L∞ + A·C^(−α), per curve or with a shared floor;
//! * [`chinchilla`]: L(N, D) = E + A/N^α + B/D^β by Huber/L-BFGS over the 4 500-start grid
//!   (Approach 3), and its efficient frontier;
//! * [`mod@bootstrap`]: seeded parallel resampling and percentile intervals;
//! * [`sigmoid`]: Richards curve from loss to accuracy with a chance floor, and its inverse;
//! * [`synthetic`]: seeded ladders from known laws;
//! * [`study`]: the whole study (Chinchilla, over-training, Pythia, or a synthetic ladder) as
//!   one call, returning a typed report with its Markdown, JSON summary and figures;
//! * figures through the workspace's one figure crate, `figure` (log/linear axes, lines,
//!   points, bands and legends as SVG);
//! * [`linreg`]: least-squares lines and quadratics.
//!
//! Cargo features: none.
//!
//! References: Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models"
//! (arXiv:2203.15556); Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt"
//! (arXiv:2404.10102); Gadre et al. (2024), "Language models scale reliably with over-training
//! and on downstream tasks" (arXiv:2403.08540).

pub mod asymptotic;
pub mod bootstrap;
pub mod chinchilla;
pub mod error;
pub mod frontier;
pub mod isoflop;
pub mod linreg;
pub mod points;
pub mod sigmoid;
pub mod study;
pub mod synthetic;

pub use asymptotic::{
    AsymptoticConfig, AsymptoticLaw, SharedAsymptotic, fit_asymptotic, fit_asymptotic_shared,
};
pub use bootstrap::{BootstrapConfig, BootstrapSamples, Interval, bootstrap};
pub use chinchilla::{
    ChinchillaConfig, ChinchillaFit, ChinchillaLaw, InitGrid, fit_chinchilla, fit_chinchilla_from,
};
pub use error::{FitError, Result};
pub use frontier::{Frontier, PowerLaw, fit_frontier};
pub use isoflop::{IsoFlopFit, fit_isoflop, fit_isoflops};
pub use points::{ComputeBucket, RunPoint, bucket_by_budgets, bucket_by_rounding, validate_points};
pub use sigmoid::{RichardsConfig, RichardsCurve, fit_richards};
pub use synthetic::{LadderSpec, generate_ladder, optimal_runs};
