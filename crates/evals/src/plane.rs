//! The unified cost–quality plane: every router of every level — which model answers a query,
//! when a small model asks an oracle for tokens, how many experts a token uses — as points of
//! quality against compute per query, in FLOPs and in dollars.
//!
//! Costs come from the workspace's one cost model ([`routing_core::cost`]): FLOPs ≈ 2 × active
//! parameters × tokens processed for local models (Kaplan et al. 2020, §2.1); published
//! per-million-token prices for API models. A local model's dollars are its FLOPs at a stated
//! compute price ([`ComputePrice`], default: an accelerator rented at $2.50 an hour sustaining
//! 400 TFLOP/s), so local and API routers share the dollar axis; the price is an assumption the
//! report prints, not a measurement.
//!
//! A [`PlanePoint`] carries its [`Level`] (query, token, expert, or a single model on its own),
//! the benchmark whose quality it reports and the router's setting; points of one router on
//! one benchmark form a curve. [`Plane::figure`] draws two panels — FLOPs and dollars per
//! query, both log-scaled — with one colour per benchmark and one marker shape per level.
//!
//! ```
//! use evals::plane::{Level, Plane, PlanePoint, RoutedItem, threshold_sweep};
//!
//! // Four items: the router's score, each model's outcome and FLOPs on the item.
//! let items = [
//!     RoutedItem { score: 0.9, weak_quality: 0.0, strong_quality: 1.0, weak_flops: 1e9, strong_flops: 3e9 },
//!     RoutedItem { score: 0.2, weak_quality: 1.0, strong_quality: 1.0, weak_flops: 1e9, strong_flops: 3e9 },
//!     RoutedItem { score: 0.7, weak_quality: 0.0, strong_quality: 1.0, weak_flops: 1e9, strong_flops: 3e9 },
//!     RoutedItem { score: 0.1, weak_quality: 1.0, strong_quality: 0.0, weak_flops: 1e9, strong_flops: 3e9 },
//! ];
//! let sweep = threshold_sweep(&items, &[0.0, 0.5, 1.0], 0.0)?;
//! assert_eq!(sweep[1].quality, 1.0); // the two items only the strong model gets right go to it
//! assert_eq!(sweep[1].flops, 2e9);
//!
//! let mut plane = Plane::new("toy");
//! for s in &sweep {
//!     plane.push(PlanePoint::new("toy", "MF", Level::Query, format!("{:.0}% strong", 100.0 * s.strong_share), s.quality)
//!         .with_flops(s.flops));
//! }
//! assert!(plane.figure().render().contains("FLOPs per query"));
//! # Ok::<(), evals::EvalError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use figure::{Grid, LegendPos, Marker, Plot, Scale};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::routing::MultiReport;

/// The granularity a router decides at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One model answering everything (the ends of every router's range).
    Model,
    /// Which model answers a query (mf-router).
    Query,
    /// When a small model hands tokens to an oracle (guided-decode).
    Token,
    /// How many experts a token uses (bh-moe).
    Expert,
}

impl Level {
    /// `"model"`, `"query"`, `"token"`, `"expert"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Query => "query",
            Self::Token => "token",
            Self::Expert => "expert",
        }
    }

    /// The figure's marker for the level.
    pub fn marker(self) -> Marker {
        match self {
            Self::Model => Marker::Diamond,
            Self::Query => Marker::Circle,
            Self::Token => Marker::Triangle,
            Self::Expert => Marker::Square,
        }
    }
}

/// The price of local compute, turning FLOPs into dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ComputePrice {
    /// Dollars per hour of the accelerator.
    pub dollars_per_hour: f64,
    /// FLOP/s it sustains on inference.
    pub flops_per_second: f64,
}

impl Default for ComputePrice {
    /// An accelerator rented at $2.50 an hour sustaining 400 TFLOP/s (about 40% of an H100's
    /// dense BF16 peak): an assumption, printed with every report that uses it.
    fn default() -> Self {
        Self {
            dollars_per_hour: 2.5,
            flops_per_second: 4e14,
        }
    }
}

impl ComputePrice {
    /// Dollars per FLOP.
    pub fn dollars_per_flop(&self) -> f64 {
        self.dollars_per_hour / 3600.0 / self.flops_per_second
    }

    /// Dollars for `flops`.
    pub fn dollars(&self, flops: f64) -> f64 {
        flops * self.dollars_per_flop()
    }
}

/// One router setting on the plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanePoint {
    /// The benchmark whose quality `quality` is (`LAMBADA`, `HellaSwag`, `MBPP`, …).
    pub benchmark: String,
    /// The router or model (`MF`, `entropy`, `BH`, `SmolLM2-135M`, …).
    pub router: String,
    /// Its level.
    pub level: Level,
    /// The setting (`40% strong`, `τ = 2.5`, `α = 0.4, max k = 16`, …).
    pub setting: String,
    /// Quality (accuracy or pass rate, in `[0, 1]`).
    pub quality: f64,
    /// Compute per query, FLOPs (`None` when a model's size is unknown).
    pub flops: Option<f64>,
    /// Money per query, dollars (`None` when no price is known).
    pub dollars: Option<f64>,
    /// Whether the point comes from synthetic data (the `--quick` defaults).
    pub synthetic: bool,
}

impl PlanePoint {
    /// A point without costs yet.
    pub fn new(
        benchmark: impl Into<String>,
        router: impl Into<String>,
        level: Level,
        setting: impl Into<String>,
        quality: f64,
    ) -> Self {
        Self {
            benchmark: benchmark.into(),
            router: router.into(),
            level,
            setting: setting.into(),
            quality,
            flops: None,
            dollars: None,
            synthetic: false,
        }
    }

    /// Sets the FLOPs per query.
    pub fn with_flops(mut self, flops: f64) -> Self {
        self.flops = Some(flops);
        self
    }

    /// Sets the dollars per query.
    pub fn with_dollars(mut self, dollars: f64) -> Self {
        self.dollars = Some(dollars);
        self
    }

    /// Marks the point as synthetic.
    pub fn synthetic(mut self, yes: bool) -> Self {
        self.synthetic = yes;
        self
    }

    fn series_key(&self) -> (String, Level, String) {
        (self.benchmark.clone(), self.level, self.router.clone())
    }
}

/// One item as a pair router sees it: its score and each model's outcome and compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutedItem {
    /// The router's score (higher = send to the strong model).
    pub score: f64,
    /// The weak model's quality on the item.
    pub weak_quality: f64,
    /// The strong model's quality on the item.
    pub strong_quality: f64,
    /// The weak model's FLOPs on the item.
    pub weak_flops: f64,
    /// The strong model's FLOPs on the item.
    pub strong_flops: f64,
}

/// A pair router at one strong-model share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Share of items sent to the strong model.
    pub strong_share: f64,
    /// Mean quality.
    pub quality: f64,
    /// Mean FLOPs per item, the router's own included.
    pub flops: f64,
}

/// A pair router's quality and compute at each strong share in `shares`: the `round(share ·
/// n)` highest-scored items go to the strong model (RouteLLM's rank rule; ties by item order),
/// every item also paying `router_flops` for the router itself.
///
/// # Errors
/// No items, a share outside `[0, 1]`, or a non-finite score, outcome or cost.
pub fn threshold_sweep(
    items: &[RoutedItem],
    shares: &[f64],
    router_flops: f64,
) -> Result<Vec<SweepPoint>> {
    if items.is_empty() {
        return Err(EvalError::param("items", "threshold sweep over no items"));
    }
    for (i, it) in items.iter().enumerate() {
        let vals = [
            it.score,
            it.weak_quality,
            it.strong_quality,
            it.weak_flops,
            it.strong_flops,
        ];
        if vals.iter().any(|v| !v.is_finite()) {
            return Err(EvalError::param(
                "items",
                format!("item {i} has a non-finite score, outcome or cost"),
            ));
        }
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].score.total_cmp(&items[a].score).then(a.cmp(&b)));
    let n = items.len() as f64;
    shares
        .iter()
        .map(|&share| {
            if !(0.0..=1.0).contains(&share) {
                return Err(EvalError::param(
                    "shares",
                    format!("strong share {share} outside [0, 1]"),
                ));
            }
            let k = (share * n).round() as usize;
            let (mut q, mut f) = (0.0, 0.0);
            for (rank, &i) in order.iter().enumerate() {
                let it = &items[i];
                if rank < k {
                    q += it.strong_quality;
                    f += it.strong_flops;
                } else {
                    q += it.weak_quality;
                    f += it.weak_flops;
                }
            }
            Ok(SweepPoint {
                strong_share: k as f64 / n,
                quality: q / n,
                flops: f / n + router_flops,
            })
        })
        .collect()
}

/// An N-model willingness-to-pay evaluation ([`MultiReport`], e.g. RouterBench with its
/// per-prompt USD costs) on the plane as `benchmark`: each single model as a [`Level::Model`]
/// point and each swept router's distinct (cost, quality) points as [`Level::Query`] points,
/// the report's costs taken as dollars per query. The oracle (an upper bound, not a router) is
/// left out, and a report with no other router gives no points. Only for tables whose costs
/// are dollars.
pub fn multi_points(report: &MultiReport, benchmark: &str) -> Vec<PlanePoint> {
    if report.routers.iter().all(|(name, _, _)| name == "oracle") {
        return Vec::new();
    }
    let mut out: Vec<PlanePoint> = report
        .models
        .iter()
        .map(|(name, cq)| {
            PlanePoint::new(benchmark, name.as_str(), Level::Model, "alone", cq.quality)
                .with_dollars(cq.cost)
        })
        .collect();
    for (name, sweep, _aiq) in &report.routers {
        if name == "oracle" {
            continue;
        }
        let mut seen: Vec<(f64, f64)> = Vec::new();
        for w in sweep {
            let key = (w.point.cost, w.point.quality);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            out.push(
                PlanePoint::new(
                    benchmark,
                    name.as_str(),
                    Level::Query,
                    format!("λ = {:.3e}", w.lambda),
                    w.point.quality,
                )
                .with_dollars(w.point.cost),
            );
        }
    }
    out
}

/// Points of every level, with the compute price that priced the local ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plane {
    /// Figure title.
    pub title: String,
    /// The points.
    pub points: Vec<PlanePoint>,
    /// The compute price behind local models' dollars.
    pub compute_price: ComputePrice,
}

impl Plane {
    /// An empty plane at the default [`ComputePrice`].
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            points: Vec::new(),
            compute_price: ComputePrice::default(),
        }
    }

    /// Adds a point; a point with FLOPs and no dollars is priced at [`Self::compute_price`].
    pub fn push(&mut self, mut p: PlanePoint) {
        if p.dollars.is_none() {
            p.dollars = p.flops.map(|f| self.compute_price.dollars(f));
        }
        self.points.push(p);
    }

    /// Adds many points.
    pub fn extend(&mut self, points: impl IntoIterator<Item = PlanePoint>) {
        for p in points {
            self.push(p);
        }
    }

    /// The points grouped into series (benchmark, level, router), each sorted by compute.
    fn series(&self) -> BTreeMap<(String, Level, String), Vec<&PlanePoint>> {
        let mut out: BTreeMap<_, Vec<&PlanePoint>> = BTreeMap::new();
        for p in &self.points {
            out.entry(p.series_key()).or_default().push(p);
        }
        for v in out.values_mut() {
            v.sort_by(|a, b| {
                a.flops
                    .unwrap_or(0.0)
                    .total_cmp(&b.flops.unwrap_or(0.0))
                    .then(
                        a.dollars
                            .unwrap_or(0.0)
                            .total_cmp(&b.dollars.unwrap_or(0.0)),
                    )
            });
        }
        out
    }

    fn panel(&self, dollars: bool) -> Plot {
        let (title, x_label) = if dollars {
            (
                "quality against dollars per query",
                "dollars per query (log)",
            )
        } else {
            ("quality against FLOPs per query", "FLOPs per query (log)")
        };
        let mut p = Plot::new(title, x_label, "quality (accuracy / pass rate)");
        p.x_scale = Scale::Log;
        p.width = 660.0;
        p.height = 520.0;
        p.legend_pos = if dollars {
            LegendPos::Outside
        } else {
            LegendPos::BottomRight
        };
        let benchmarks: Vec<String> = {
            let mut b: Vec<String> = self.points.iter().map(|p| p.benchmark.clone()).collect();
            b.dedup();
            let mut seen = Vec::new();
            for x in b {
                if !seen.contains(&x) {
                    seen.push(x);
                }
            }
            seen
        };
        let models_in = |b: &str| {
            self.points
                .iter()
                .filter(|p| p.benchmark == b && p.level == Level::Model)
                .count()
        };
        let colour = |b: &str| {
            figure::color(benchmarks.iter().position(|x| x == b).unwrap_or(0)).to_string()
        };
        let mut seen: BTreeMap<(String, Level), usize> = BTreeMap::new();
        for ((bench, level, router), pts) in self.series() {
            let xy: Vec<(f64, f64, &str)> = pts
                .iter()
                .filter_map(|p| {
                    let x = if dollars { p.dollars } else { p.flops };
                    x.filter(|v| *v > 0.0)
                        .map(|x| (x, p.quality, p.setting.as_str()))
                })
                .collect();
            if xy.is_empty() {
                continue;
            }
            let c = colour(&bench);
            let xs: Vec<f64> = xy.iter().map(|t| t.0).collect();
            let ys: Vec<f64> = xy.iter().map(|t| t.1).collect();
            let synthetic = pts.iter().any(|p| p.synthetic);
            // Routers get a legend entry (in the dollar panel's column); single models are
            // labelled on the plot instead, unless a benchmark has too many to read.
            let label = if dollars && level != Level::Model {
                format!(
                    "{bench} · {} · {router}{}",
                    level.name(),
                    if synthetic { " (synthetic)" } else { "" }
                )
            } else {
                String::new()
            };
            // Routers sharing a benchmark and a level alternate solid and dashed lines.
            let nth = *seen
                .entry((bench.clone(), level))
                .and_modify(|n| *n += 1)
                .or_insert(0);
            if xs.len() > 1 && level != Level::Model {
                p.line_markers(&xs, &ys, &c, &label, nth % 2 == 1, level.marker());
            } else {
                p.markers(&xs, &ys, &c, &label, level.marker(), 4.0);
            }
            if level == Level::Model && models_in(&bench) <= 3 {
                p.labels(&xs, &ys, std::slice::from_ref(&router), &c);
            }
        }
        if !dollars {
            // The marker key: one entry per level present.
            let mut levels: Vec<Level> = self.points.iter().map(|p| p.level).collect();
            levels.sort();
            levels.dedup();
            for l in levels {
                p.markers(
                    &[],
                    &[],
                    "#555",
                    &format!("{} level", l.name()),
                    l.marker(),
                    4.0,
                );
            }
        }
        p
    }

    /// The figure: FLOPs and dollars per query side by side.
    pub fn figure(&self) -> Grid {
        Grid::new(&self.title, 2)
            .with(self.panel(false))
            .with(self.panel(true))
    }

    /// The points as a markdown table, grouped by benchmark.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Local compute priced at ${:.2}/hour for {:.0} TFLOP/s sustained (${:.3e} per FLOP); API models at their published per-token prices.\n",
            self.compute_price.dollars_per_hour,
            self.compute_price.flops_per_second / 1e12,
            self.compute_price.dollars_per_flop()
        );
        let _ = writeln!(
            s,
            "| benchmark | level | router | setting | quality | GFLOPs/query | $ per 1M queries |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for ((bench, level, router), pts) in self.series() {
            for p in pts {
                let _ = writeln!(
                    s,
                    "| {bench}{} | {} | {router} | {} | {:.3} | {} | {} |",
                    if p.synthetic { " (synthetic)" } else { "" },
                    level.name(),
                    p.setting,
                    p.quality,
                    p.flops.map_or("–".into(), |f| format!("{:.2}", f / 1e9)),
                    p.dollars.map_or("–".into(), |d| format!("{:.4}", d * 1e6)),
                );
            }
        }
        s
    }

    /// Writes `<stem>.svg` and `<stem>.json` into `dir`.
    ///
    /// # Errors
    /// [`EvalError::Io`] naming the file.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        let svg = dir.join(format!("{stem}.svg"));
        self.figure().save(&svg)?;
        let json = dir.join(format!("{stem}.json"));
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| EvalError::param("plane", format!("not serialisable: {e}")))?;
        std::fs::write(&json, text).map_err(|source| EvalError::Io { path: json, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(score: f64, w: f64, s: f64) -> RoutedItem {
        RoutedItem {
            score,
            weak_quality: w,
            strong_quality: s,
            weak_flops: 1.0,
            strong_flops: 4.0,
        }
    }

    #[test]
    fn sweep_ends_are_the_single_models() {
        let items = [
            item(0.5, 1.0, 0.0),
            item(0.1, 0.0, 1.0),
            item(0.9, 0.0, 1.0),
        ];
        let s = threshold_sweep(&items, &[0.0, 1.0 / 3.0, 1.0], 0.5).unwrap();
        assert_eq!(s[0].quality, 1.0 / 3.0);
        assert_eq!(s[0].flops, 1.5);
        assert_eq!(s[2].quality, 2.0 / 3.0);
        assert_eq!(s[2].flops, 4.5);
        // One item to the strong model: the highest score (item 2, which only it gets right).
        assert_eq!(s[1].quality, 2.0 / 3.0);
        assert_eq!(s[1].flops, 2.5);
    }

    #[test]
    fn bad_sweeps_are_typed_errors() {
        assert!(threshold_sweep(&[], &[0.5], 0.0).is_err());
        assert!(threshold_sweep(&[item(0.5, 1.0, 0.0)], &[1.5], 0.0).is_err());
        let msg = threshold_sweep(&[item(f64::NAN, 1.0, 0.0)], &[0.5], 0.0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("item 0"), "{msg}");
    }

    #[test]
    fn local_points_are_priced_and_drawn_per_level() {
        let mut plane = Plane::new("t");
        plane.push(PlanePoint::new("L", "small", Level::Model, "", 0.3).with_flops(2.5e10));
        plane.push(PlanePoint::new("L", "api", Level::Model, "", 0.5).with_dollars(1e-3));
        plane.push(PlanePoint::new("L", "BH", Level::Expert, "a", 0.28).with_flops(2e10));
        let d = plane.points[0].dollars.unwrap();
        assert!((d - 2.5e10 * 2.5 / 3600.0 / 4e14).abs() < 1e-20);
        assert_eq!(plane.points[1].flops, None);
        let svg = plane.figure().render();
        assert!(svg.contains("expert level") && svg.contains(">small<"));
        let md = plane.to_markdown();
        assert!(
            md.contains("| L | expert | BH | a | 0.280 | 20.00 | 0.0347 |"),
            "{md}"
        );
    }
}
