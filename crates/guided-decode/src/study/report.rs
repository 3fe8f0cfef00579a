//! The study's report: per-configuration summaries, the seed's `c × k` table, trigger curves
//! with the token-level APGR, the meta-analysis, speculative-decoding speed — as markdown,
//! JSON and SVG figures.
//!
//! **Token-level APGR.** RouteLLM's APGR (Ong et al. 2024) is the area under the
//! performance-gap-recovered curve `PGR(s) = (q(s) − q_weak) / (q_strong − q_weak)` against
//! the share `s` of calls routed to the strong model. Here `s` is the **oracle-token share**
//! (the share of the completion's tokens the oracle wrote, summed over items) and `q` the
//! accuracy: a policy's points, sorted by share and anchored at the small model `(0, 0)` and
//! the oracle alone `(1, 1)`, are joined by straight lines and integrated by trapezoids. The
//! straight line between the anchors — help that converts oracle tokens into accuracy at a
//! constant rate — scores 0.5. `gain over random` is a policy's APGR minus that of the random
//! `c × k` points on the same task: the area between the policy's curve and random help's.

use std::fmt::Write as _;
use std::path::Path;

use evals::harness::Task;
use evals::harness::metrics::wilson_interval;
use evals::plane::{Level, PlanePoint};
use figure::{LegendPos, Marker, Plot};
use serde::{Deserialize, Serialize};

use super::StudyOptions;
use super::config::HelpConfig;
use super::log::ItemRecord;
use super::meta::Histogram;
use super::meta::MetaSummary;
use crate::error::{GuidedError, Result};
use crate::guided::TokenPrices;
use crate::oracle::Handoff;

/// One configuration on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// The configuration.
    pub config: HelpConfig,
    /// Its name.
    pub name: String,
    /// Items.
    pub n: usize,
    /// Correct items.
    pub correct: usize,
    /// Accuracy.
    pub accuracy: f64,
    /// Wilson 95% interval.
    pub ci: (f64, f64),
    /// Oracle-token share of the completions (summed over items).
    pub oracle_share: f64,
    /// Mean oracle calls per item.
    pub calls_per_item: f64,
    /// Mean completion tokens per item.
    pub tokens_per_item: f64,
    /// Items per second (wall time).
    pub items_per_s: f64,
    /// Mean CPU seconds per item (the process's threads), over the records that carry it
    /// (`None` when none does): unlike wall time, not inflated by other work on the cores.
    #[serde(default)]
    pub cpu_s_per_item: Option<f64>,
    /// Policy-layer time per decision over the small model's time per step of its own
    /// (signal + decision against one decode step).
    pub policy_overhead: f64,
    /// Hand-offs whose text did not join exactly.
    pub inexact_handoffs: usize,
    /// Mean tokens the small model read and wrote per item.
    pub small_tokens_per_item: f64,
    /// Mean tokens the oracle read and wrote per item.
    pub oracle_tokens_per_item: f64,
    /// `2 × parameters × tokens processed` per item, small model + oracle (`None` when a
    /// model's size is unknown, e.g. a remote oracle without `active_parameters`).
    pub flops_per_item: Option<f64>,
    /// Dollars per item at the given per-million-token prices (input = tokens read, output =
    /// tokens written, per model).
    pub dollars_per_item: f64,
    /// Speculative decoding: accepted share of drafts.
    pub acceptance: Option<f64>,
    /// Speculative decoding: committed tokens per oracle pass.
    pub tokens_per_pass: Option<f64>,
}

/// The two models' sizes and prices, for compute and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostModel {
    /// Parameters a token passes through in the small model.
    pub small_parameters: Option<u64>,
    /// The same for the oracle.
    pub oracle_parameters: Option<u64>,
    /// The small model's prices.
    pub small_prices: TokenPrices,
    /// The oracle's prices.
    pub oracle_prices: TokenPrices,
}

/// Summarises one configuration's records.
pub fn summarise(config: HelpConfig, records: &[ItemRecord], cost: &CostModel) -> ConfigSummary {
    let n = records.len();
    let correct = records.iter().filter(|r| r.correct > 0.0).count();
    let sum = |f: &dyn Fn(&ItemRecord) -> f64| records.iter().map(f).sum::<f64>();
    let tokens = sum(&|r| r.completion_tokens as f64);
    let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    let seconds = sum(&|r| r.seconds);
    let step_s = sum(&|r| r.small_step_s);
    let steps = sum(&|r| r.small_generated as f64);
    let decisions = steps + sum(&|r| r.calls as f64);
    let (drafted, accepted) = records
        .iter()
        .filter_map(|r| r.drafted_accepted)
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    let spec = matches!(config, HelpConfig::Speculative { .. });
    ConfigSummary {
        config,
        name: config.name(),
        n,
        correct,
        accuracy: per(correct as f64),
        ci: wilson_interval(correct, n),
        oracle_share: match config {
            HelpConfig::Oracle => 1.0,
            _ if tokens > 0.0 => sum(&|r| r.oracle_tokens as f64) / tokens,
            _ => 0.0,
        },
        calls_per_item: per(sum(&|r| r.calls as f64)),
        tokens_per_item: per(tokens),
        items_per_s: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        cpu_s_per_item: {
            let cpu: Vec<f64> = records.iter().filter_map(|r| r.cpu_s).collect();
            (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64)
        },
        policy_overhead: if step_s > 0.0 && decisions > 0.0 {
            (sum(&|r| r.policy_s) / decisions) / (step_s / steps)
        } else {
            0.0
        },
        inexact_handoffs: records.iter().map(|r| r.inexact_handoffs).sum(),
        small_tokens_per_item: per(sum(&|r| (r.small_read + r.small_generated) as f64)),
        oracle_tokens_per_item: per(sum(&|r| (r.oracle_read + r.oracle_generated) as f64)),
        flops_per_item: {
            let small = sum(&|r| (r.small_read + r.small_generated) as f64);
            let oracle = sum(&|r| (r.oracle_read + r.oracle_generated) as f64);
            let part = |p: Option<u64>, t: f64| {
                if t == 0.0 {
                    Some(0.0)
                } else {
                    p.map(|p| 2.0 * p as f64 * t)
                }
            };
            part(cost.small_parameters, small)
                .zip(part(cost.oracle_parameters, oracle))
                .map(|(a, b)| per(a + b))
        },
        dollars_per_item: per(records
            .iter()
            .map(|r| {
                cost.small_prices.cost(r.small_read, r.small_generated)
                    + cost.oracle_prices.cost(r.oracle_read, r.oracle_generated)
            })
            .sum()),
        acceptance: (spec && drafted > 0).then(|| accepted as f64 / drafted as f64),
        tokens_per_pass: spec.then(|| {
            let passes = sum(&|r| r.calls as f64);
            if passes > 0.0 { tokens / passes } else { 0.0 }
        }),
    }
}

/// A policy family's accuracy against oracle-token share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerCurve {
    /// `random`, `entropy`, `maxprob` or `bild`.
    pub family: String,
    /// `(oracle share, accuracy, configuration name)`, sorted by share.
    pub points: Vec<(f64, f64, String)>,
    /// Token-level APGR (module docs); `None` when the oracle is no better than the small
    /// model.
    pub apgr: Option<f64>,
    /// APGR minus random help's.
    pub gain_over_random: Option<f64>,
}

/// Token-level APGR of `points` between the anchors `small` and `oracle` accuracies.
pub fn token_apgr(points: &[(f64, f64)], small: f64, oracle: f64) -> Option<f64> {
    if oracle <= small || points.is_empty() {
        return None;
    }
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .map(|&(s, q)| (s.clamp(0.0, 1.0), (q - small) / (oracle - small)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut xs = vec![0.0];
    let mut ys = vec![0.0];
    for (s, g) in pts {
        xs.push(s);
        ys.push(g);
    }
    xs.push(1.0);
    ys.push(1.0);
    Some(evals::routing::metrics::trapezoid(&xs, &ys))
}

/// Everything measured on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Task name.
    pub task: String,
    /// Per configuration, in run order.
    pub configs: Vec<ConfigSummary>,
    /// One curve per policy family.
    pub curves: Vec<TriggerCurve>,
    /// The meta-analysis.
    pub meta: Option<MetaSummary>,
    /// Items the small model gets wrong and the oracle right — the meta-analysis's subjects —
    /// among those every configuration finished (`None` without both anchors). When there are
    /// none the report says so instead of leaving the meta-analysis out without a word.
    #[serde(default)]
    pub meta_candidates: Option<usize>,
    /// The random calls' horizon `L`.
    pub horizon: usize,
}

impl TaskReport {
    /// The summary of a configuration.
    pub fn get(&self, config: HelpConfig) -> Option<&ConfigSummary> {
        self.configs.iter().find(|c| c.config == config)
    }

    /// Whether the oracle's 95% interval lies wholly above the small model's: the gap that
    /// token-level APGR divides by is then resolved by these items. `None` without both
    /// anchors. When it is not (e.g. both near 0% on GSM8K with a pair that cannot do it),
    /// APGR values are ratios of noise, and the report says so.
    pub fn anchors_separated(&self) -> Option<bool> {
        self.anchors()
            .map(|(small, oracle)| oracle.ci.0 > small.ci.1)
    }

    /// The small-alone and oracle-alone summaries, when both were run.
    pub fn anchors(&self) -> Option<(&ConfigSummary, &ConfigSummary)> {
        Some((self.get(HelpConfig::Small)?, self.get(HelpConfig::Oracle)?))
    }
}

/// Builds a task's report from its records.
pub(crate) fn task_report(
    task: &Task,
    per_config: &[(HelpConfig, Vec<ItemRecord>)],
    meta: Option<MetaSummary>,
    opts: &StudyOptions,
    cost: &CostModel,
) -> TaskReport {
    let configs: Vec<ConfigSummary> = per_config
        .iter()
        .map(|(c, r)| summarise(*c, r, cost))
        .collect();
    let acc = |c: HelpConfig| configs.iter().find(|s| s.config == c).map(|s| s.accuracy);
    let records = |c: HelpConfig| per_config.iter().find(|(k, _)| *k == c).map(|(_, r)| r);
    let meta_candidates = records(HelpConfig::Small)
        .zip(records(HelpConfig::Oracle))
        .map(|(small, oracle)| super::meta::subjects(small, oracle).count());
    let mut curves = Vec::new();
    if let (Some(small), Some(oracle)) = (acc(HelpConfig::Small), acc(HelpConfig::Oracle)) {
        for family in ["random", "entropy", "maxprob", "bild"] {
            let mut points: Vec<(f64, f64, String)> = configs
                .iter()
                .filter(|s| s.config.family() == family)
                .map(|s| (s.oracle_share, s.accuracy, s.name.clone()))
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
            curves.push(TriggerCurve {
                family: family.into(),
                apgr: token_apgr(&xy, small, oracle),
                points,
                gain_over_random: None,
            });
        }
        let random = curves
            .iter()
            .find(|c| c.family == "random")
            .and_then(|c| c.apgr);
        for c in &mut curves {
            if c.family != "random" {
                c.gain_over_random = c.apgr.zip(random).map(|(a, r)| a - r);
            }
        }
    }
    let budget = match task {
        Task::Gsm8k => evals::harness::generation::GSM8K_MAX_GEN_TOKS,
        Task::LambadaGen => evals::harness::runner::LAMBADA_GEN_MAX_TOKS,
        _ => opts.math_max_tokens,
    };
    TaskReport {
        task: task.name(),
        configs,
        curves,
        meta,
        meta_candidates,
        horizon: opts.horizon.unwrap_or(budget),
    }
}

/// The whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// The small model.
    pub small: String,
    /// The oracle.
    pub oracle: String,
    /// How they exchange tokens.
    pub handoff: Handoff,
    /// Seed of the random calls.
    pub seed: u64,
    /// Per task.
    pub tasks: Vec<TaskReport>,
}

/// The seed's published table (Llama 3.2 1B small, 8B oracle, first 100 MATH problems).
const SEED_TABLE: [(&str, &str, &str); 8] = [
    ("0", "0", "17.05"),
    ("5", "10", "18.84"),
    ("5", "20", "30.00"),
    ("5", "50", "17.81"),
    ("2", "100", "19.72"),
    ("5", "100", "22.67"),
    ("10", "100", "20.55"),
    ("∞", "∞", "42.04"),
];

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

impl StudyReport {
    /// The report as markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Guided decoding: {} helped by {}\n",
            self.small, self.oracle
        );
        let _ = writeln!(
            s,
            "Hand-off by {}; greedy decoding; random calls seeded with {}. Accuracy with Wilson 95% intervals; *oracle share* = share of the completion's tokens the oracle wrote; *policy overhead* = policy-layer time per decision / the small model's time per decode step.\n",
            match self.handoff {
                Handoff::Ids => "token ids (shared tokenizer)",
                Handoff::Text =>
                    "text (different tokenizers: the completion is re-tokenised at every hand-off)",
            },
            self.seed
        );
        for t in &self.tasks {
            let _ = writeln!(s, "## {}\n", t.task);
            let _ = writeln!(
                s,
                "| configuration | n | accuracy % [95% CI] | oracle share % | calls/item | tokens/item | items/s | CPU s/item | policy overhead % | GFLOPs/item | $/1k items | inexact hand-offs |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
            for c in &t.configs {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} [{}, {}] | {} | {:.1} | {:.1} | {:.3} | {} | {:.2} | {} | {:.4} | {} |",
                    c.name,
                    c.n,
                    pct(c.accuracy),
                    pct(c.ci.0),
                    pct(c.ci.1),
                    pct(c.oracle_share),
                    c.calls_per_item,
                    c.tokens_per_item,
                    c.items_per_s,
                    opt(c.cpu_s_per_item, 2),
                    100.0 * c.policy_overhead,
                    opt(c.flops_per_item.map(|f| f / 1e9), 1),
                    1000.0 * c.dollars_per_item,
                    c.inexact_handoffs
                );
            }
            // The c × k table.
            let randoms: Vec<&ConfigSummary> = t
                .configs
                .iter()
                .filter(|c| c.config.family() == "random")
                .collect();
            if !randoms.is_empty() {
                let mut ks: Vec<usize> = Vec::new();
                let mut cs: Vec<usize> = Vec::new();
                for c in &randoms {
                    if let HelpConfig::Random { calls, tokens } = c.config {
                        if !ks.contains(&tokens) {
                            ks.push(tokens);
                        }
                        if !cs.contains(&calls) {
                            cs.push(calls);
                        }
                    }
                }
                ks.sort_unstable();
                cs.sort_unstable();
                let _ = writeln!(
                    s,
                    "\nRandom help, accuracy % (oracle share %), calls drawn from the first L = {} positions:\n",
                    t.horizon
                );
                let _ = write!(s, "| k \\ c |");
                for c in &cs {
                    let _ = write!(s, " {c} |");
                }
                let _ = writeln!(s, "\n|---|{}", "---|".repeat(cs.len()));
                for k in &ks {
                    let _ = write!(s, "| {k} |");
                    for c in &cs {
                        let cell = randoms.iter().find(|r| {
                            r.config
                                == HelpConfig::Random {
                                    calls: *c,
                                    tokens: *k,
                                }
                        });
                        let _ = match cell {
                            Some(r) => {
                                write!(s, " {} ({}) |", pct(r.accuracy), pct(r.oracle_share))
                            }
                            None => write!(s, " – |"),
                        };
                    }
                    let _ = writeln!(s);
                }
            }
            if !t.curves.is_empty() {
                let _ = writeln!(
                    s,
                    "\nToken-level APGR (area under PGR against oracle share, anchored at small = 0 and oracle = 1; 0.5 = the straight line):\n"
                );
                if let Some((sm, or)) = t.anchors().filter(|_| t.anchors_separated() == Some(false))
                {
                    let _ = writeln!(
                        s,
                        "**The anchors overlap**: the oracle's {:.1}% [{:.1}, {:.1}] is not above the small model's {:.1}% [{:.1}, {:.1}] (95% intervals), so the gap APGR divides by is not resolved on these items and the values below are noise.\n",
                        100.0 * or.accuracy,
                        100.0 * or.ci.0,
                        100.0 * or.ci.1,
                        100.0 * sm.accuracy,
                        100.0 * sm.ci.0,
                        100.0 * sm.ci.1
                    );
                }
                let _ = writeln!(s, "| policy | points | APGR | gain over random |");
                let _ = writeln!(s, "|---|---|---|---|");
                for c in &t.curves {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} |",
                        c.family,
                        c.points.len(),
                        opt(c.apgr, 3),
                        opt(c.gain_over_random, 3)
                    );
                }
                let _ = writeln!(
                    s,
                    "\n![accuracy against oracle share](curves_{}.svg)",
                    t.task
                );
            }
            let specs: Vec<&ConfigSummary> = t
                .configs
                .iter()
                .filter(|c| c.acceptance.is_some())
                .collect();
            if let (false, Some(oracle)) = (specs.is_empty(), t.get(HelpConfig::Oracle)) {
                let _ = writeln!(
                    s,
                    "\nSpeculative decoding (greedy: the output is the oracle's own):\n\n| γ | acceptance % | tokens per oracle pass | items/s | speed-up over the oracle alone |\n|---|---|---|---|---|"
                );
                for c in specs {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.2} | {:.3} | {:.2}× |",
                        c.name,
                        opt(c.acceptance.map(|a| 100.0 * a), 1),
                        c.tokens_per_pass.unwrap_or(0.0),
                        c.items_per_s,
                        if oracle.items_per_s > 0.0 {
                            c.items_per_s / oracle.items_per_s
                        } else {
                            0.0
                        }
                    );
                }
            }
            if let (None, Some(0)) = (&t.meta, t.meta_candidates) {
                let _ = writeln!(
                    s,
                    "\nMeta-analysis: no item the small model gets wrong and the oracle right among these {} items, so there is no first divergence to study.",
                    t.configs.first().map_or(0, |c| c.n)
                );
            }
            if let Some(m) = &t.meta {
                let _ = writeln!(
                    s,
                    "\nMeta-analysis ({} items the small model gets wrong and the oracle right; {} diverge; {} labelled steps, {:.1}% where the oracle would write a different token):\n",
                    m.items,
                    m.diverging,
                    m.labelled_steps,
                    100.0 * m.differ_rate
                );
                let _ = writeln!(
                    s,
                    "| | at the first divergence | elsewhere | AUROC for \"oracle differs\" |"
                );
                let _ = writeln!(s, "|---|---|---|---|");
                let _ = writeln!(
                    s,
                    "| entropy (nats) | {:.3} | {:.3} | {} |",
                    m.entropy_at_divergence,
                    m.entropy_elsewhere,
                    opt(m.auroc_entropy, 3)
                );
                let _ = writeln!(
                    s,
                    "| max probability | {:.3} | {:.3} | {} |",
                    m.max_prob_at_divergence,
                    m.max_prob_elsewhere,
                    opt(m.auroc_max_prob, 3)
                );
                let _ = writeln!(
                    s,
                    "\nFirst divergence at step {:.1} on average (median {}; {:.0}% of the way through the completion).\n\n![entropy at the first divergence](meta_{}.svg)\n![max probability at the first divergence](meta_maxprob_{}.svg)",
                    m.first_divergence_mean,
                    opt(m.first_divergence_median, 0),
                    100.0 * m.first_divergence_relative,
                    t.task,
                    t.task
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "## The seed's table, for comparison\n\nLlama 3.2 1B helped by Llama 3.1 8B on the first 100 MATH problems (the seed's numbers; that pair is not available here — run it with `--small` and `--oracle` pointing at their GGUFs):\n\n| k | c | accuracy % |\n|---|---|---|"
        );
        for (k, c, a) in SEED_TABLE {
            let _ = writeln!(s, "| {k} | {c} | {a} |");
        }
        s
    }

    /// The accuracy-against-share figure of one task.
    pub fn curves_chart(&self, t: &TaskReport) -> Option<Plot> {
        let small = t.get(HelpConfig::Small)?;
        let oracle = t.get(HelpConfig::Oracle)?;
        let mut p = Plot::new(
            &format!("{}: accuracy against oracle-token share", t.task),
            "oracle-token share of the completion",
            "accuracy",
        );
        p.width = 560.0;
        p.legend_pos = LegendPos::Outside;
        p.x_range = Some((0.0, 1.0));
        let ends = [small.accuracy, oracle.accuracy];
        // Accuracy from 0 up (an automatic range around an all-zero task went to −1).
        let top = t
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .chain(ends)
            .fold(0.0f64, f64::max);
        p.y_range = Some((0.0, (1.15 * top).clamp(0.05, 1.0)));
        p.styled_line(
            &[0.0, 1.0],
            &ends,
            "#7f7f7f",
            "straight line small → oracle",
            2.0,
            true,
        );
        for (i, c) in t.curves.iter().enumerate() {
            let xs: Vec<f64> = c.points.iter().map(|p| p.0).collect();
            let ys: Vec<f64> = c.points.iter().map(|p| p.1).collect();
            let colour = figure::color(i);
            if c.family == "random" {
                let labels: Vec<String> = c
                    .points
                    .iter()
                    .map(|p| p.2.trim_start_matches("random_").to_string())
                    .collect();
                p.markers(&xs, &ys, colour, "random c × k", Marker::Circle, 3.5)
                    .labels(&xs, &ys, &labels, colour);
            } else {
                p.line_markers(
                    &xs,
                    &ys,
                    colour,
                    &format!("{} trigger", c.family),
                    false,
                    Marker::Circle,
                );
            }
        }
        p.markers(&[0.0, 1.0], &ends, "#000000", "alone", Marker::Diamond, 4.0)
            .labels(
                &[0.0, 1.0],
                &ends,
                &["small".into(), "oracle".into()],
                "#000000",
            );
        Some(p)
    }

    /// The meta-analysis figure: the small model's entropy at the first divergence against
    /// elsewhere (`None` without a meta-analysis).
    pub fn meta_chart(&self, t: &TaskReport) -> Option<Plot> {
        let m = t.meta.as_ref()?;
        Some(signal_chart(
            &format!(
                "{}: entropy at the first divergence (AUROC {})",
                t.task,
                opt(m.auroc_entropy, 2)
            ),
            "small model's entropy (nats, 0.5-wide bins, the last open above)",
            &m.entropy_hist,
        ))
    }

    /// The meta-analysis figure for the other signal: the small model's maximum probability
    /// at the first divergence against elsewhere (`None` without a meta-analysis).
    pub fn meta_max_prob_chart(&self, t: &TaskReport) -> Option<Plot> {
        let m = t.meta.as_ref()?;
        Some(signal_chart(
            &format!(
                "{}: max prob. at the first divergence (AUROC {})",
                t.task,
                opt(m.auroc_max_prob, 2)
            ),
            "small model's maximum probability (0.1-wide bins)",
            &m.max_prob_hist,
        ))
    }

    /// Reads a `summary.json` that [`Self::write`] wrote.
    ///
    /// # Errors
    /// [`GuidedError::Io`] for an unreadable file, [`GuidedError::Log`] (line 1) for one that
    /// is not a study summary.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| GuidedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| GuidedError::Log {
            path: path.to_path_buf(),
            line: e.line(),
            detail: format!("not a guided-decoding summary: {e}"),
        })
    }

    /// Task `task`'s configurations on the unified cost–quality plane as `benchmark`: the
    /// small model and the oracle alone as [`Level::Model`] points (named after the models),
    /// every policy configuration as a [`Level::Token`] point of its family (`entropy`,
    /// `maxprob`, `random`, `bild`, `speculative`), with the FLOPs and dollars per item the
    /// study measured (dollars only when a model is priced; the plane prices local compute).
    pub fn plane_points(&self, task: &str, benchmark: &str) -> Vec<PlanePoint> {
        let Some(t) = self.tasks.iter().find(|t| t.task == task) else {
            return Vec::new();
        };
        t.configs
            .iter()
            .map(|c| {
                let (router, level) = match c.config {
                    HelpConfig::Small => (self.small.clone(), Level::Model),
                    HelpConfig::Oracle => (self.oracle.clone(), Level::Model),
                    other => (other.family().to_string(), Level::Token),
                };
                let mut p = PlanePoint::new(
                    benchmark,
                    router,
                    level,
                    if level == Level::Model {
                        "alone".to_string()
                    } else {
                        format!("{} ({:.0}% oracle)", c.name, 100.0 * c.oracle_share)
                    },
                    c.accuracy,
                );
                if let Some(f) = c.flops_per_item {
                    p = p.with_flops(f);
                }
                if c.dollars_per_item > 0.0 {
                    p = p.with_dollars(c.dollars_per_item);
                }
                p
            })
            .collect()
    }

    /// Writes `report.md`, `summary.json` and the figures into `dir`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GuidedError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.to_markdown()).map_err(io(&md))?;
        let js = dir.join("summary.json");
        let json = serde_json::to_string_pretty(self).expect("serialisable");
        std::fs::write(&js, json).map_err(io(&js))?;
        for t in &self.tasks {
            if let Some(c) = self.curves_chart(t) {
                c.save(&dir.join(format!("curves_{}.svg", t.task)))?;
            }
            if let Some(c) = self.meta_chart(t) {
                c.save(&dir.join(format!("meta_{}.svg", t.task)))?;
            }
            if let Some(c) = self.meta_max_prob_chart(t) {
                c.save(&dir.join(format!("meta_maxprob_{}.svg", t.task)))?;
            }
        }
        Ok(())
    }
}

/// One signal's histograms at the first divergence and at the other steps, as lines over the
/// bin centres (the open last bin drawn one width on).
fn signal_chart(title: &str, x_label: &str, h: &Histogram) -> Plot {
    let width = match h.edges.as_slice() {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    let centres: Vec<f64> = h.edges.iter().map(|e| e + width / 2.0).collect();
    let mut p = Plot::new(title, x_label, "share of steps");
    p.width = 560.0;
    p.legend_pos = LegendPos::Outside;
    let (a, b) = (figure::color(0), figure::color(3));
    p.line_markers(
        &centres,
        &h.at_divergence,
        a,
        "first divergence",
        false,
        Marker::Circle,
    )
    .line_markers(
        &centres,
        &h.elsewhere,
        b,
        "other steps",
        true,
        Marker::Circle,
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_charts_draw_both_histograms_over_bin_centres() {
        let h = Histogram {
            edges: vec![0.0, 0.1, 0.2],
            at_divergence: vec![0.5, 0.25, 0.25],
            elsewhere: vec![0.1, 0.3, 0.6],
        };
        let svg = signal_chart("t: max probability", "p", &h).render();
        for text in ["t: max probability", "first divergence", "other steps"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn token_apgr_has_known_values() {
        // On the straight line: 0.5. A step to full recovery at share 0: 1. No gain: the
        // triangle under the line from (0,0)… to (1,1) through (0.5, 0) = 0.25.
        assert!((token_apgr(&[(0.5, 0.3)], 0.2, 0.4).unwrap() - 0.5).abs() < 1e-12);
        assert!((token_apgr(&[(0.0, 0.4)], 0.2, 0.4).unwrap() - 1.0).abs() < 1e-12);
        assert!((token_apgr(&[(0.5, 0.2)], 0.2, 0.4).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(token_apgr(&[(0.5, 0.2)], 0.4, 0.4), None);
    }

    #[test]
    fn overlapping_anchors_are_flagged_and_accuracy_starts_at_zero() {
        // 200 items: the small model right on `small_right`, the oracle on `oracle_right`.
        let report = |small_right: usize, oracle_right: usize| {
            let records = |right: usize, share: usize| -> Vec<ItemRecord> {
                (0..200)
                    .map(|i| {
                        let mut r = super::super::blank();
                        r.idx = i;
                        r.correct = if i < right { 1.0 } else { 0.0 };
                        r.completion_tokens = 10;
                        r.oracle_tokens = share;
                        r.seconds = 1.0;
                        r
                    })
                    .collect()
            };
            let cost = CostModel::default();
            let random = HelpConfig::Random {
                calls: 1,
                tokens: 4,
            };
            let configs = vec![
                summarise(HelpConfig::Small, &records(small_right, 0), &cost),
                summarise(HelpConfig::Oracle, &records(oracle_right, 10), &cost),
                summarise(random, &records(small_right, 5), &cost),
            ];
            StudyReport {
                small: "s".into(),
                oracle: "o".into(),
                handoff: Handoff::Text,
                seed: 0,
                tasks: vec![TaskReport {
                    task: "gsm8k".into(),
                    configs,
                    curves: vec![TriggerCurve {
                        family: "random".into(),
                        points: vec![(0.5, small_right as f64 / 200.0, "r".into())],
                        apgr: None,
                        gain_over_random: None,
                    }],
                    meta: None,
                    meta_candidates: Some(usize::from(small_right < oracle_right)),
                    horizon: 256,
                }],
            }
        };
        // 0 against 2 of 200 (GSM8K with a pair that cannot do it): the intervals overlap.
        let near_zero = report(0, 2);
        assert_eq!(near_zero.tasks[0].anchors_separated(), Some(false));
        assert!(near_zero.to_markdown().contains("The anchors overlap"));
        // 20 against 80 of 200: resolved, no warning.
        let apart = report(20, 80);
        assert_eq!(apart.tasks[0].anchors_separated(), Some(true));
        assert!(!apart.to_markdown().contains("The anchors overlap"));
        // No item the small model gets wrong and the oracle right: the report says why there
        // is no meta-analysis.
        let none = "no item the small model gets wrong and the oracle right";
        assert!(report(0, 0).to_markdown().contains(none));
        assert!(!near_zero.to_markdown().contains(none));
        // The curves' accuracy axis starts at 0 (an all-zero task once spanned −1 to 1) and
        // ends a little above the best point.
        let y = |r: &StudyReport| r.curves_chart(&r.tasks[0]).and_then(|p| p.y_range);
        assert_eq!(y(&report(0, 0)), Some((0.0, 0.05)));
        let (lo, hi) = y(&apart).expect("a range");
        assert!(lo == 0.0 && (hi - 1.15 * 0.4).abs() < 1e-12, "{hi}");
    }

    #[test]
    fn summaries_count_shares_and_intervals() {
        let mut a = super::super::blank();
        a.correct = 1.0;
        a.completion_tokens = 10;
        a.oracle_tokens = 4;
        a.seconds = 1.0;
        a.small_s = 1.0;
        a.small_step_s = 0.5;
        a.small_generated = 6;
        a.calls = 1;
        a.policy_s = 0.01;
        a.small_read = 10;
        a.oracle_read = 3;
        a.oracle_generated = 4;
        let mut b = a.clone();
        b.correct = 0.0;
        b.oracle_tokens = 0;
        // CPU time on one record only (a log resumed across versions): the mean of those
        // that carry it.
        b.cpu_s = Some(0.8);
        let cost = CostModel {
            small_parameters: Some(100),
            oracle_parameters: Some(1000),
            small_prices: TokenPrices {
                input_per_million: 1.0,
                output_per_million: 2.0,
            },
            oracle_prices: TokenPrices {
                input_per_million: 10.0,
                output_per_million: 20.0,
            },
        };
        let s = summarise(
            HelpConfig::Random {
                calls: 1,
                tokens: 4,
            },
            &[a, b],
            &cost,
        );
        assert_eq!((s.n, s.correct), (2, 1));
        // Per item: small 10 read + 6 written, oracle 3 + 4.
        assert!(
            (s.flops_per_item.unwrap() - (2.0 * 100.0 * 16.0 + 2.0 * 1000.0 * 7.0)).abs() < 1e-9
        );
        assert!((s.dollars_per_item - (10.0 + 12.0 + 30.0 + 80.0) / 1e6).abs() < 1e-15);
        assert!((s.oracle_share - 0.2).abs() < 1e-12);
        assert!((s.items_per_s - 1.0).abs() < 1e-12);
        assert_eq!(s.cpu_s_per_item, Some(0.8));
        let none = summarise(HelpConfig::Small, &[super::super::blank()], &cost);
        assert_eq!(none.cpu_s_per_item, None);
        // 0.02 s over 14 decisions, against 1 s over 12 steps.
        assert!((s.policy_overhead - (0.02 / 14.0) / (1.0 / 12.0)).abs() < 1e-12);
        assert!(s.ci.0 < 0.5 && s.ci.1 > 0.5);
    }
}
