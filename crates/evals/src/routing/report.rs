//! Ready-made routing reports: the tables and figures a routing paper shows, from an outcome
//! table and router scores. Examples call these so that they stay thin.
//!
//! * [`PairReport`] — RouteLLM's view of a weak/strong pair: random band, oracle and any
//!   routers on the strong-call-share axis, with APGR/CPT/AUC/quality-drop table and figure.
//! * [`MultiReport`] — RouterBench's view of N models with costs: single models, zero router,
//!   oracle and routers on the cost axis, with AIQ.
//! * [`StudyReport`] — the MBPP study's random-routing performance-gap table and figure.

use datasets::{CodeOutcomes, OutcomeTable};
use routing_core::{MultiRouter, OracleMultiRouter, OracleRouter, PairRouter};

use crate::error::Result;
use crate::report::{MarkdownTable, fmt_opt};
use crate::routing::curve::{PairCurve, PairEvaluator, PairOutcomes, ShareRule, share_grid};
use crate::routing::metrics::{ApgrMethod, CptMethod};
use crate::routing::multi::{
    CostQuality, WtpPoint, aiq, hull_value, nondecreasing_hull, single_model_points, wtp_sweep,
};
use crate::routing::random::{RandomBand, random_band};
use crate::routing::study::{StudyRow, random_routing_study};
use figure::{LegendPos, Marker, Plot, Scale};

/// Options of a [`PairReport`].
#[derive(Debug, Clone)]
pub struct PairReportOptions {
    /// Grid resolution: shares `0, 1/n, …, 1` (plus the paper's 10% steps for APGR).
    pub grid: usize,
    /// Seeds of the random-router band.
    pub random_seeds: usize,
    /// First seed.
    pub base_seed: u64,
    /// Rule for the routers' curves (the oracle always uses [`ShareRule::Rank`]).
    pub rule: ShareRule,
}

impl Default for PairReportOptions {
    fn default() -> Self {
        Self {
            grid: 20,
            random_seeds: 10,
            base_seed: 0,
            rule: ShareRule::Threshold,
        }
    }
}

/// The summary metrics of one curve.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurveSummary {
    /// Router name.
    pub router: String,
    /// APGR, RouteLLM code definition (area over achieved shares).
    pub apgr_area: f64,
    /// APGR, RouteLLM paper definition (mean over 10%, …, 100%).
    pub apgr_mean: f64,
    /// CPT(50%), interpolated (code).
    pub cpt50: Option<f64>,
    /// CPT(80%), interpolated (code).
    pub cpt80: Option<f64>,
    /// CPT(50%), minimum achieved share (paper).
    pub cpt50_min: Option<f64>,
    /// CPT(80%), minimum achieved share (paper).
    pub cpt80_min: Option<f64>,
    /// Area under quality vs share.
    pub auc: f64,
    /// Hybrid-LLM quality drop (%) when 50% of queries go to the weak model.
    pub drop_at_50: f64,
}

impl CurveSummary {
    /// Summarises a curve that contains the 10% grid points.
    pub fn of(curve: &PairCurve) -> Result<Self> {
        Ok(Self {
            router: curve.router.clone(),
            apgr_area: curve.apgr(ApgrMethod::Area)?,
            apgr_mean: curve.apgr(ApgrMethod::MeanOfShares)?,
            cpt50: curve.cpt(0.5, CptMethod::Interpolated)?,
            cpt80: curve.cpt(0.8, CptMethod::Interpolated)?,
            cpt50_min: curve.cpt(0.5, CptMethod::MinimumShare)?,
            cpt80_min: curve.cpt(0.8, CptMethod::MinimumShare)?,
            auc: curve.auc(),
            drop_at_50: curve.quality_drop_at(0.5)?,
        })
    }
}

/// A weak/strong pair evaluated against the random band and the oracle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairReport {
    /// Title (data set and pair).
    pub title: String,
    /// Prompts evaluated.
    pub n_prompts: usize,
    /// Weak model.
    pub weak: String,
    /// Strong model.
    pub strong: String,
    /// Weak model quality.
    pub weak_quality: f64,
    /// Strong model quality.
    pub strong_quality: f64,
    /// The random band.
    pub random: RandomBand,
    /// The oracle's curve (rank rule).
    pub oracle: PairCurve,
    /// The routers' curves.
    pub routers: Vec<PairCurve>,
    /// Summaries: oracle, then routers.
    pub summaries: Vec<CurveSummary>,
}

/// Share grid with the paper's 10% points guaranteed.
fn grid_with_tenths(n: usize) -> Vec<f64> {
    let mut g = share_grid(n);
    g.extend((0..=10).map(|i| i as f64 / 10.0));
    g.sort_by(f64::total_cmp);
    g.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    g
}

impl PairReport {
    /// Evaluates `routers` (name, one score per prompt of `table`) on the pair.
    pub fn evaluate(
        title: impl Into<String>,
        table: &OutcomeTable,
        weak: &str,
        strong: &str,
        routers: &[(String, Vec<f64>)],
        opts: &PairReportOptions,
    ) -> Result<Self> {
        let outcomes = PairOutcomes::from_table(table, weak, strong)?;
        let grid = grid_with_tenths(opts.grid);
        let random = random_band(
            table.prompts(),
            &outcomes,
            &grid,
            opts.random_seeds,
            opts.base_seed,
        )?;
        let oracle_scores = OracleRouter::new(table, weak, strong)?.score(table.prompts())?;
        let oracle = PairEvaluator::new(&oracle_scores, &outcomes)?.curve(
            "oracle",
            &grid,
            &ShareRule::Rank,
        )?;
        let curves = routers
            .iter()
            .map(|(name, scores)| {
                PairEvaluator::new(scores, &outcomes)?.curve(name, &grid, &opts.rule)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut summaries = vec![CurveSummary::of(&oracle)?];
        for c in &curves {
            summaries.push(CurveSummary::of(c)?);
        }
        Ok(Self {
            title: title.into(),
            n_prompts: table.n_prompts(),
            weak: weak.to_string(),
            strong: strong.to_string(),
            weak_quality: outcomes.weak_quality(),
            strong_quality: outcomes.strong_quality(),
            random,
            oracle,
            routers: curves,
            summaries,
        })
    }

    /// The metrics table (random first, as mean ± std over seeds).
    pub fn metrics_table(&self) -> MarkdownTable {
        let mut t = MarkdownTable::new(&[
            "router",
            ">APGR (code: area)",
            ">APGR (paper: mean of 10)",
            ">CPT(50%)",
            ">CPT(80%)",
            ">CPT(50%) min",
            ">CPT(80%) min",
            ">AUC",
            ">quality drop @50% weak",
        ]);
        let r = &self.random;
        let rm = CurveSummary::of(&r.mean_curve).ok();
        t.row(vec![
            format!("random ({} seeds)", r.seeds.len()),
            format!("{:.4} ± {:.4}", r.apgr.mean, r.apgr.std),
            rm.as_ref()
                .map_or("—".into(), |s| format!("{:.4}", s.apgr_mean)),
            r.cpt50.map_or("—".into(), |c| {
                format!("{:.1}% ± {:.1}", 100.0 * c.mean, 100.0 * c.std)
            }),
            pct(rm.as_ref().and_then(|s| s.cpt80)),
            pct(rm.as_ref().and_then(|s| s.cpt50_min)),
            pct(rm.as_ref().and_then(|s| s.cpt80_min)),
            rm.as_ref().map_or("—".into(), |s| format!("{:.4}", s.auc)),
            rm.as_ref()
                .map_or("—".into(), |s| format!("{:.2}%", s.drop_at_50)),
        ]);
        for s in &self.summaries {
            t.row(vec![
                s.router.clone(),
                format!("{:.4}", s.apgr_area),
                format!("{:.4}", s.apgr_mean),
                pct(s.cpt50),
                pct(s.cpt80),
                pct(s.cpt50_min),
                pct(s.cpt80_min),
                format!("{:.4}", s.auc),
                format!("{:.2}%", s.drop_at_50),
            ]);
        }
        t
    }

    /// Quality vs strong-call share: random band, oracle, routers, single models.
    pub fn figure(&self) -> Plot {
        let r = &self.random.mean_curve;
        let xs: Vec<f64> = r.points.iter().map(|p| p.strong_share).collect();
        let ys: Vec<f64> = r.points.iter().map(|p| p.quality).collect();
        let lo: Vec<f64> = ys
            .iter()
            .zip(&self.random.quality_std)
            .map(|(y, s)| y - s)
            .collect();
        let hi: Vec<f64> = ys
            .iter()
            .zip(&self.random.quality_std)
            .map(|(y, s)| y + s)
            .collect();
        let mut p = chart(&self.title, "share of calls to the strong model", "quality");
        p.x_range = Some((0.0, 1.0));
        p.band(&xs, &lo, &hi, "#7f7f7f", "random ±1 sd")
            .styled_line(&xs, &ys, "#7f7f7f", "random (mean)", 2.0, true);
        curve(&mut p, &self.oracle, "#2ca02c");
        for (i, c) in self.routers.iter().enumerate() {
            curve(
                &mut p,
                c,
                ["#1f77b4", "#d62728", "#9467bd", "#ff7f0e"][i % 4],
            );
        }
        let (mx, my) = ([0.0, 1.0], [self.weak_quality, self.strong_quality]);
        p.markers(&mx, &my, "#000000", "single models", Marker::Diamond, 4.0)
            .labels(
                &mx,
                &my,
                &[self.weak.clone(), self.strong.clone()],
                "#000000",
            );
        p
    }

    /// Markdown section: heading, pair summary, metrics table.
    pub fn markdown(&self, figure_file: &str) -> String {
        format!(
            "## {}\n\n{} prompts; weak `{}` quality {:.4}, strong `{}` quality {:.4} (gap {:.4}).\n\n{}\n![{}]({})\n\n",
            self.title,
            self.n_prompts,
            self.weak,
            self.weak_quality,
            self.strong,
            self.strong_quality,
            self.strong_quality - self.weak_quality,
            self.metrics_table().render(),
            self.title,
            figure_file
        )
    }
}

/// A report chart: a 560-pixel plot area with the legend in a column beside it.
fn chart(title: &str, x_label: &str, y_label: &str) -> Plot {
    let mut p = Plot::new(title, x_label, y_label);
    p.width = 560.0;
    p.legend_pos = LegendPos::Outside;
    p
}

fn curve(p: &mut Plot, c: &PairCurve, color: &str) {
    let xs: Vec<f64> = c.points.iter().map(|p| p.strong_share).collect();
    let ys: Vec<f64> = c.points.iter().map(|p| p.quality).collect();
    p.line_markers(&xs, &ys, color, &c.router, false, Marker::Circle);
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// N models with costs: single models, zero router, oracle and routers, with AIQ.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultiReport {
    /// Title.
    pub title: String,
    /// Prompts.
    pub n_prompts: usize,
    /// Single models' (name, cost, quality).
    pub models: Vec<(String, CostQuality)>,
    /// AIQ cost range (cheapest, most expensive single model).
    pub cost_range: (f64, f64),
    /// AIQ of the zero router (hull of single models).
    pub zero_router_aiq: f64,
    /// Swept routers: name, sweep, AIQ. The oracle comes first.
    pub routers: Vec<(String, Vec<WtpPoint>, f64)>,
}

impl MultiReport {
    /// Evaluates the oracle and `routers` by willingness-to-pay sweeps of `n_lambdas` values.
    pub fn evaluate(
        title: impl Into<String>,
        table: &OutcomeTable,
        routers: &[&dyn MultiRouter],
        n_lambdas: usize,
    ) -> Result<Self> {
        let models = single_model_points(table)?;
        let pts: Vec<CostQuality> = models.iter().map(|(_, p)| *p).collect();
        let lo = pts.iter().map(|p| p.cost).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.cost).fold(f64::NEG_INFINITY, f64::max);
        let zero = aiq(&pts, lo, hi)?;
        let oracle = OracleMultiRouter::new(table);
        let mut all: Vec<&dyn MultiRouter> = vec![&oracle];
        all.extend_from_slice(routers);
        let routers = all
            .iter()
            .map(|r| {
                let sweep = wtp_sweep(*r, table, None, n_lambdas)?;
                let a = aiq(&sweep.iter().map(|w| w.point).collect::<Vec<_>>(), lo, hi)?;
                Ok((r.name().to_string(), sweep, a))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            title: title.into(),
            n_prompts: table.n_prompts(),
            models,
            cost_range: (lo, hi),
            zero_router_aiq: zero,
            routers,
        })
    }

    /// Markdown section with the single-model table and the AIQ table.
    pub fn markdown(&self, figure_file: &str) -> String {
        let mut m = MarkdownTable::new(&["model", ">quality", ">mean cost / prompt"]);
        for (name, p) in &self.models {
            m.row(vec![
                name.clone(),
                format!("{:.4}", p.quality),
                format!("{:.6}", p.cost),
            ]);
        }
        let mut a = MarkdownTable::new(&["router", ">AIQ", ">best quality", ">at mean cost"]);
        let best = |pts: &[CostQuality]| {
            pts.iter().copied().max_by(|x, y| {
                x.quality
                    .total_cmp(&y.quality)
                    .then(y.cost.total_cmp(&x.cost))
            })
        };
        let single: Vec<CostQuality> = self.models.iter().map(|(_, p)| *p).collect();
        let b = best(&single);
        a.row(vec![
            "zero router (single-model hull)".into(),
            format!("{:.4}", self.zero_router_aiq),
            fmt_opt(b.map(|p| p.quality), 4),
            fmt_opt(b.map(|p| p.cost), 6),
        ]);
        for (name, sweep, v) in &self.routers {
            let b = best(&sweep.iter().map(|w| w.point).collect::<Vec<_>>());
            a.row(vec![
                name.clone(),
                format!("{v:.4}"),
                fmt_opt(b.map(|p| p.quality), 4),
                fmt_opt(b.map(|p| p.cost), 6),
            ]);
        }
        format!(
            "## {}\n\n{} prompts. AIQ integrates each router's non-decreasing convex hull over the cost range [{:.6}, {:.6}] (cheapest to most expensive model) and divides by its width.\n\n{}\n{}\n![{}]({})\n\n",
            self.title,
            self.n_prompts,
            self.cost_range.0,
            self.cost_range.1,
            m.render(),
            a.render(),
            self.title,
            figure_file
        )
    }

    /// Quality vs cost (log axis): single models, zero-router hull, router hulls.
    pub fn figure(&self) -> Result<Plot> {
        let single: Vec<CostQuality> = self.models.iter().map(|(_, p)| *p).collect();
        let (lo, hi) = self.cost_range;
        // Hull segments are straight in linear cost; sample them densely so the log-axis
        // figure shows their true shape.
        let dense = |hull: &[CostQuality]| -> (Vec<f64>, Vec<f64>) {
            let start = hull.first().map_or(lo, |p| p.cost.max(lo));
            let xs: Vec<f64> = (0..=120)
                .map(|i| (start.ln() + (hi.ln() - start.ln()) * i as f64 / 120.0).exp())
                .collect();
            let ys = xs.iter().map(|&c| hull_value(hull, c.max(start))).collect();
            (xs, ys)
        };
        let hull = nondecreasing_hull(&single)?;
        let (hx, hy) = dense(&hull);
        let mut p = chart(&self.title, "mean cost per prompt (log scale)", "quality");
        p.x_scale = Scale::Log;
        p.styled_line(
            &hx,
            &hy,
            "#7f7f7f",
            &format!("zero router (AIQ {:.3})", self.zero_router_aiq),
            2.0,
            true,
        );
        for (i, (name, sweep, v)) in self.routers.iter().enumerate() {
            let h = nondecreasing_hull(&sweep.iter().map(|w| w.point).collect::<Vec<_>>())?;
            let (x, y) = dense(&h);
            p.line(
                &x,
                &y,
                ["#2ca02c", "#1f77b4", "#d62728", "#9467bd"][i % 4],
                &format!("{name} (AIQ {v:.3})"),
            );
        }
        let (mx, my): (Vec<f64>, Vec<f64>) = single.iter().map(|q| (q.cost, q.quality)).unzip();
        let names: Vec<String> = self.models.iter().map(|(n, _)| short_name(n)).collect();
        p.markers(&mx, &my, "#000000", "single models", Marker::Circle, 3.5)
            .labels(&mx, &my, &names, "#000000");
        Ok(p)
    }
}

fn short_name(n: &str) -> String {
    n.rsplit('/').next().unwrap_or(n).to_string()
}

/// The MBPP study's random-routing table for one small/large pair.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudyReport {
    /// Title.
    pub title: String,
    /// Small model.
    pub small: String,
    /// Large model.
    pub large: String,
    /// Trials per share.
    pub n_trials: usize,
    /// Rows at each small-model share.
    pub rows: Vec<StudyRow>,
}

impl StudyReport {
    /// Runs the study at 0/20/40/60/80/100% small-model share.
    pub fn evaluate(
        title: impl Into<String>,
        outcomes: &CodeOutcomes,
        small: &str,
        large: &str,
        n_trials: usize,
        seed: u64,
    ) -> Result<Self> {
        let shares = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        Ok(Self {
            title: title.into(),
            small: small.to_string(),
            large: large.to_string(),
            n_trials,
            rows: random_routing_study(outcomes, small, large, &shares, n_trials, seed)?,
        })
    }

    /// Markdown section.
    pub fn markdown(&self, figure_file: &str) -> String {
        let mut t = MarkdownTable::new(&[
            ">cost advantage (small share)",
            ">pass rate %",
            ">pass gap (pp)",
            ">perfect rate %",
            ">perfect gap (pp)",
        ]);
        for r in &self.rows {
            t.row(vec![
                format!("{:.0}%", 100.0 * r.small_share),
                format!("{:.1} ± {:.1}", r.pass_rate.mean, r.pass_rate.std),
                format!("{:+.1} ± {:.1}", r.pass_gap.mean, r.pass_gap.std),
                format!("{:.1} ± {:.1}", r.perfect_rate.mean, r.perfect_rate.std),
                format!("{:+.1} ± {:.1}", r.perfect_gap.mean, r.perfect_gap.std),
            ]);
        }
        format!(
            "## {}\n\nRandom routing: `{}` (small) vs `{}` (large); mean ± std (population) over {} seeded trials; gap = routed − large-only, percentage points.\n\n{}\n![{}]({})\n\n",
            self.title,
            self.small,
            self.large,
            self.n_trials,
            t.render(),
            self.title,
            figure_file
        )
    }

    /// Performance gap vs cost advantage with ±1 sd band.
    pub fn figure(&self) -> Plot {
        let xs: Vec<f64> = self.rows.iter().map(|r| r.small_share).collect();
        let m: Vec<f64> = self.rows.iter().map(|r| r.pass_gap.mean).collect();
        let lo: Vec<f64> = self
            .rows
            .iter()
            .map(|r| r.pass_gap.mean - r.pass_gap.std)
            .collect();
        let hi: Vec<f64> = self
            .rows
            .iter()
            .map(|r| r.pass_gap.mean + r.pass_gap.std)
            .collect();
        let pm: Vec<f64> = self.rows.iter().map(|r| r.perfect_gap.mean).collect();
        let mut p = chart(
            &self.title,
            "cost advantage (share routed to the small model)",
            "performance gap (pp)",
        );
        p.x_range = Some((0.0, 1.0));
        p.band(&xs, &lo, &hi, "#1f77b4", "pass gap ±1 sd")
            .line_markers(
                &xs,
                &m,
                "#1f77b4",
                "test-case pass rate gap",
                false,
                Marker::Circle,
            )
            .line_markers(
                &xs,
                &pm,
                "#d62728",
                "perfect-solution rate gap",
                true,
                Marker::Circle,
            );
        p
    }
}
