//! Routing measurement on the cost–quality plane.
//!
//! * [`curve`] — pair-router curves over a grid of strong-call shares;
//! * [`metrics`] — PGR, APGR, CPT, AUC, Hybrid-LLM quality drop (paper and code variants);
//! * [`random`] — the seeded random-router band (mean and spread over seeds);
//! * [`multi`] — N-model willingness-to-pay sweeps, non-decreasing hulls, AIQ;
//! * [`report`] — ready-made pair / N-model / study reports (tables and figures);
//! * [`study`] — the MBPP study's performance-gap vs cost-advantage table;
//! * [`route_eval`] — the whole routing-evaluation study of the `route_eval` example
//!   (synthetic default, real-data presets, custom tables) as one report.

pub mod curve;
pub mod metrics;
pub mod multi;
pub mod random;
pub mod report;
pub mod route_eval;
pub mod study;

pub use curve::{CurvePoint, PairCurve, PairEvaluator, PairOutcomes, ShareRule, share_grid};
pub use metrics::{ApgrMethod, CptMethod, pgr, trapezoid};
pub use multi::{CostQuality, WtpPoint, aiq, nondecreasing_hull, single_model_points, wtp_sweep};
pub use random::{RandomBand, random_band};
pub use report::{CurveSummary, MultiReport, PairReport, PairReportOptions, StudyReport};
pub use study::{MeanStd, StudyRow, random_routing_study};
