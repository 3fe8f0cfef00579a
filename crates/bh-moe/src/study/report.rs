//! The study's tables and report: `bh_routing_results.{csv,json}` (one row per experiment),
//! a per-configuration table across datasets, and `report.md` with a recommendation computed
//! from the numbers.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{Dataset, ExperimentSummary, RoutingConfig, StudyReport, figure, write_json};
use crate::error::{BhMoeError, Result};

/// One configuration across the datasets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigRow {
    /// File-name stem.
    pub config: String,
    /// The configuration.
    pub routing: RoutingConfig,
    /// Mean experts per (token, layer), over the datasets run (token-weighted).
    pub mean_k: f64,
    /// WikiText-2 word perplexity.
    pub perplexity: Option<f64>,
    /// LAMBADA accuracy.
    pub lambada_acc: Option<f64>,
    /// HellaSwag `acc_norm`.
    pub hellaswag_acc: Option<f64>,
    /// Mean of the task accuracies present.
    pub avg_task_accuracy: Option<f64>,
    /// Its standard error ([`crate::metrics::average_accuracy_se`] of the harness's per-task
    /// standard errors).
    pub avg_task_accuracy_se: Option<f64>,
    /// FLOPs reduction against the baseline `k`, percent (at `mean_k`).
    pub flops_reduction_pct: f64,
    /// Tokens per second over all datasets.
    pub tokens_per_second: f64,
    /// Share of (token, layer) pairs at `max_k`.
    pub ceiling_hit_rate: f64,
    /// Share at `min_k`.
    pub floor_hit_rate: f64,
    /// Share of the MoE blocks' time spent selecting.
    pub selection_time_share: f64,
    /// Milliseconds in the MoE blocks (all layers) per token fed.
    pub moe_ms_per_token: f64,
}

/// Folds the experiments into one row per configuration (in first-seen order).
pub fn config_rows(report: &StudyReport) -> Vec<ConfigRow> {
    let mut names: Vec<&str> = Vec::new();
    for e in &report.experiments {
        if !names.contains(&e.config.as_str()) {
            names.push(&e.config);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let exps: Vec<&ExperimentSummary> = report
                .experiments
                .iter()
                .filter(|e| e.config == name)
                .collect();
            let tokens: f64 = exps.iter().map(|e| e.tokens as f64).sum();
            let pairs: f64 = exps
                .iter()
                .map(|e| e.k_histogram.iter().sum::<u64>() as f64)
                .sum();
            let wmean = |f: &dyn Fn(&ExperimentSummary) -> f64| -> f64 {
                exps.iter()
                    .map(|e| f(e) * e.k_histogram.iter().sum::<u64>() as f64)
                    .sum::<f64>()
                    / pairs.max(1.0)
            };
            let get = |d: Dataset| exps.iter().find(|e| e.dataset == d);
            let lambada_acc = get(Dataset::Lambada).and_then(|e| e.metrics.task_accuracy);
            let hellaswag_acc = get(Dataset::Hellaswag).and_then(|e| e.metrics.task_accuracy);
            let accs: Vec<f64> = [lambada_acc, hellaswag_acc].into_iter().flatten().collect();
            // The harness's standard error of each task's quality metric; all or nothing.
            let stderrs: Option<Vec<f64>> = [Dataset::Lambada, Dataset::Hellaswag]
                .into_iter()
                .filter_map(get)
                .map(|e| {
                    let key = format!("{}_stderr", e.dataset.quality_metric());
                    e.task_metrics.get(&key).copied()
                })
                .collect();
            let seconds: f64 = exps.iter().map(|e| e.seconds).sum();
            let moe: f64 = exps.iter().map(|e| e.moe_seconds).sum();
            let select: f64 = exps.iter().map(|e| e.select_seconds).sum();
            ConfigRow {
                config: name.to_string(),
                routing: exps[0].routing.clone(),
                mean_k: wmean(&|e| e.mean_k),
                perplexity: get(Dataset::Wikitext).and_then(|e| e.metrics.perplexity),
                lambada_acc,
                hellaswag_acc,
                avg_task_accuracy: crate::metrics::average_accuracy(&accs),
                avg_task_accuracy_se: stderrs.and_then(|v| crate::metrics::average_accuracy_se(&v)),
                flops_reduction_pct: wmean(&|e| e.metrics.flops_reduction_pct),
                tokens_per_second: if seconds > 0.0 { tokens / seconds } else { 0.0 },
                ceiling_hit_rate: wmean(&|e| e.metrics.ceiling_hit_rate),
                floor_hit_rate: wmean(&|e| e.metrics.floor_hit_rate),
                selection_time_share: if moe > 0.0 { select / moe } else { 0.0 },
                moe_ms_per_token: if tokens > 0.0 {
                    1000.0 * moe / tokens
                } else {
                    0.0
                },
            }
        })
        .collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

/// `bh_routing_results.csv`: one row per experiment, the 16 metrics as columns.
fn results_csv(report: &StudyReport) -> String {
    let mut s = String::from(
        "config,strategy,k_or_max_k,alpha,p,dataset,samples,tokens,mean_k,perplexity,task_accuracy,expert_activation_ratio,flops_reduction_pct,tokens_per_second,latency_ms_per_token,expert_utilization,gini_coefficient,adaptive_range,selection_entropy,ceiling_hit_rate,floor_hit_rate,layer_expert_variance,layer_consistency,expert_overlap,output_determinism\n",
    );
    let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
    for e in &report.experiments {
        let m = &e.metrics;
        let p = match e.routing {
            RoutingConfig::TopP { p, .. } => Some(p),
            _ => None,
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            e.config,
            e.routing.strategy(),
            e.routing.max_k().map_or(String::new(), |k| k.to_string()),
            o(e.routing.alpha()),
            o(p),
            e.dataset.name(),
            e.samples,
            e.tokens,
            e.mean_k,
            o(m.perplexity),
            o(m.task_accuracy),
            m.expert_activation_ratio,
            m.flops_reduction_pct,
            m.tokens_per_second,
            m.latency_ms_per_token,
            m.expert_utilization,
            m.gini_coefficient,
            m.adaptive_range,
            m.selection_entropy,
            m.ceiling_hit_rate,
            m.floor_hit_rate,
            m.layer_expert_variance,
            o(m.layer_consistency),
            m.expert_overlap,
            m.output_determinism,
        );
    }
    s
}

/// Linear interpolation of the top-k baselines' `value` at mean expert count `k`
/// (`None` outside their range).
fn topk_at(rows: &[ConfigRow], k: f64, value: &dyn Fn(&ConfigRow) -> Option<f64>) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| matches!(r.routing, RoutingConfig::TopK { .. }))
        .filter_map(|r| value(r).map(|v| (r.mean_k, v)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.windows(2)
        .find(|w| w[0].0 <= k && k <= w[1].0)
        .map(|w| {
            let t = if w[1].0 > w[0].0 {
                (k - w[0].0) / (w[1].0 - w[0].0)
            } else {
                0.0
            };
            w[0].1 + t * (w[1].1 - w[0].1)
        })
}

/// The report's markdown.
pub fn markdown(report: &StudyReport) -> String {
    let rows = config_rows(report);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Adaptive expert routing: Benjamini–Hochberg vs top-k and top-p\n"
    );
    let _ = writeln!(
        s,
        "Model: **{}**, {} experts per layer. FLOPs reduction is against top-{} (per-token parameter count: attention, routers and head shared, plus k̄ experts); expert overlap is the Jaccard index against top-{}.\n",
        report.model, report.num_experts, report.baseline_k, report.reference_k
    );
    for n in &report.notes {
        let _ = writeln!(s, "- {n}");
    }
    let _ = writeln!(s, "\n![9 panels](bh_routing_figure.svg)\n");
    let _ = writeln!(
        s,
        "| configuration | k̄ | WikiText-2 word ppl | LAMBADA acc | HellaSwag acc_norm | avg acc | FLOPs −% | tokens/s | MoE ms/token | ceiling | floor | selection / MoE time |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1}% |",
            r.config,
            r.mean_k,
            opt(r.perplexity, 2),
            opt(r.lambada_acc.map(|x| 100.0 * x), 1),
            opt(r.hellaswag_acc.map(|x| 100.0 * x), 1),
            opt(r.avg_task_accuracy.map(|x| 100.0 * x), 1),
            r.flops_reduction_pct,
            r.tokens_per_second,
            r.moe_ms_per_token,
            r.ceiling_hit_rate,
            r.floor_hit_rate,
            100.0 * r.selection_time_share,
        );
    }
    // Recommendation: each adaptive configuration against the top-k line at the same k̄.
    let _ = writeln!(
        s,
        "\n## Adaptive rules against top-k at the same mean expert count\n"
    );
    let _ = writeln!(
        s,
        "Top-k's accuracy and perplexity are interpolated linearly between the baselines at the adaptive rule's k̄; a positive Δacc (or negative Δppl) means the adaptive rule buys more quality for the same expert compute. Δacc carries its 95% margin, `1.96 · √(SE_rule² + SE_top-k²)` from the harness's per-task standard errors (unpaired, so conservative).\n"
    );
    let _ = writeln!(
        s,
        "| configuration | k̄ | avg acc | top-k at k̄ | Δacc ± 95% (points) | ppl | top-k ppl at k̄ | Δppl % |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut compared: Vec<Comparison> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| !matches!(r.routing, RoutingConfig::TopK { .. }))
    {
        let acc_ref = topk_at(&rows, r.mean_k, &|x| x.avg_task_accuracy);
        let se_ref = topk_at(&rows, r.mean_k, &|x| x.avg_task_accuracy_se);
        let ppl_ref = topk_at(&rows, r.mean_k, &|x| x.perplexity);
        let dacc = r
            .avg_task_accuracy
            .zip(acc_ref)
            .map(|(a, b)| 100.0 * (a - b));
        let margin = r
            .avg_task_accuracy_se
            .zip(se_ref)
            .map(|(a, b)| 196.0 * a.hypot(b));
        let dppl = r
            .perplexity
            .zip(ppl_ref)
            .map(|(a, b)| 100.0 * (a / b - 1.0));
        if let Some(d) = dacc {
            compared.push(Comparison {
                config: r.config.clone(),
                mean_k: r.mean_k,
                flops_reduction_pct: r.flops_reduction_pct,
                dacc: d,
                margin,
                dppl,
            });
        }
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} | {} | {} | {} |",
            r.config,
            r.mean_k,
            opt(r.avg_task_accuracy.map(|x| 100.0 * x), 1),
            opt(acc_ref.map(|x| 100.0 * x), 1),
            match (dacc, margin) {
                (Some(d), Some(m)) => format!("{d:.1} ± {m:.1}"),
                (d, _) => opt(d, 1),
            },
            opt(r.perplexity, 2),
            opt(ppl_ref, 2),
            opt(dppl, 1),
        );
    }
    // Expert load beside a real MoE's.
    let _ = writeln!(s, "\n## Expert load beside the real OLMoE-1B-7B\n");
    let _ = writeln!(
        s,
        "| configuration | expert utilisation | Gini of expert usage |"
    );
    let _ = writeln!(s, "|---|---:|---:|");
    for r in &rows {
        let exps: Vec<&ExperimentSummary> = report
            .experiments
            .iter()
            .filter(|e| e.config == r.config)
            .collect();
        let n = exps.len().max(1) as f64;
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} |",
            r.config,
            exps.iter()
                .map(|e| e.metrics.expert_utilization)
                .sum::<f64>()
                / n,
            exps.iter().map(|e| e.metrics.gini_coefficient).sum::<f64>() / n
        );
    }
    if report.reference_load.is_empty() {
        let _ = writeln!(
            s,
            "\n(No OLMoE routing data found: `moe_routing_olmoe/expert_counts.csv`.)"
        );
    } else {
        let _ = writeln!(
            s,
            "\nThe OLMoE paper's routing data (tokens per expert at layers 0, 7, 15; mean over its six domains), the same metrics:\n"
        );
        let _ = writeln!(
            s,
            "| model | selection | layer | experts | utilisation | Gini | largest expert's share |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
        let mut groups: Vec<(String, String, usize)> = Vec::new();
        for l in &report.reference_load {
            let k = (l.model.clone(), l.selection.clone(), l.layer);
            if !groups.contains(&k) {
                groups.push(k);
            }
        }
        for (m, sel, layer) in groups {
            let g: Vec<_> = report
                .reference_load
                .iter()
                .filter(|l| l.model == m && l.selection == sel && l.layer == layer)
                .collect();
            let n = g.len() as f64;
            let _ = writeln!(
                s,
                "| {m} | {sel} | {layer} | {} | {:.3} | {:.3} | {:.3} |",
                g[0].experts,
                g.iter().map(|l| l.utilization).sum::<f64>() / n,
                g.iter().map(|l| l.gini).sum::<f64>() / n,
                g.iter().map(|l| l.max_share).sum::<f64>() / n
            );
        }
    }
    let _ = writeln!(s, "\n## Recommendation\n");
    let _ = writeln!(s, "{}", recommendation(&compared, report.baseline_k));
    s
}

/// One adaptive configuration against the top-k line at its mean expert count.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    config: String,
    mean_k: f64,
    flops_reduction_pct: f64,
    /// Accuracy minus top-k's at the same `k̄`, points.
    dacc: f64,
    /// 95% margin of `dacc`, points.
    margin: Option<f64>,
    /// Perplexity change against top-k at the same `k̄`, percent.
    dppl: Option<f64>,
}

/// The report's verdict: an adaptive rule is recommended only when its accuracy gain over the
/// top-k line exceeds the 95% margin and its perplexity is no worse; otherwise the rule with the
/// largest accuracy difference is named with its margin and perplexity change, and top-k stays.
fn recommendation(compared: &[Comparison], baseline_k: usize) -> String {
    let Some(best) = compared.iter().max_by(|a, b| a.dacc.total_cmp(&b.dacc)) else {
        return "Not enough configurations with task accuracy to compare against the top-k line."
            .into();
    };
    let margin = |c: &Comparison| c.margin.map_or(String::new(), |m| format!(" ± {m:.1}"));
    let ppl = |c: &Comparison| {
        c.dppl.map_or(String::new(), |p| {
            format!(", WikiText-2 perplexity {p:+.1}% against top-k at the same k̄")
        })
    };
    let significant = |c: &Comparison| c.margin.is_some_and(|m| c.dacc > m);
    let ppl_ok = |c: &Comparison| c.dppl.is_none_or(|p| p <= 0.0);
    let winner = compared
        .iter()
        .filter(|c| significant(c) && ppl_ok(c))
        .max_by(|a, b| a.dacc.total_cmp(&b.dacc));
    match winner {
        Some(c) => format!(
            "**{}** (k̄ = {:.2}, {:.1}% fewer FLOPs than top-{baseline_k}) beats top-k at the same mean expert count: {:+.1}{} points of accuracy (95%){}. Prefer it where that budget is the target.",
            c.config,
            c.mean_k,
            c.flops_reduction_pct,
            c.dacc,
            margin(c),
            ppl(c)
        ),
        None => format!(
            "No adaptive rule beats top-k at the same mean expert count beyond noise: the largest accuracy difference, **{}** (k̄ = {:.2}), is {:+.1}{} points (95%){}. Keep a fixed top-k at the budget you need; adaptive counts do not pay here.",
            best.config,
            best.mean_k,
            best.dacc,
            margin(best),
            ppl(best)
        ),
    }
}

/// Writes `bh_routing_results.csv`, `bh_routing_results.json`, `bh_routing_figure.svg` and
/// `report.md` under `dir`.
///
/// # Errors
/// I/O errors naming the file.
pub fn write_all(report: &StudyReport, dir: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BhMoeError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let csv = dir.join("bh_routing_results.csv");
    std::fs::write(&csv, results_csv(report)).map_err(io(&csv))?;
    write_json(&dir.join("bh_routing_results.json"), &report)?;
    let svg = dir.join("bh_routing_figure.svg");
    std::fs::write(&svg, figure::nine_panels(report)).map_err(io(&svg))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(report)).map_err(io(&md))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(config: &str, dacc: f64, margin: f64, dppl: f64) -> Comparison {
        Comparison {
            config: config.into(),
            mean_k: 10.0,
            flops_reduction_pct: 40.0,
            dacc,
            margin: Some(margin),
            dppl: Some(dppl),
        }
    }

    #[test]
    fn recommendation_needs_a_gain_beyond_noise_and_no_worse_perplexity() {
        // The largest gain is inside its margin: top-k stays, and the rule is named.
        let noisy = [cmp("a", 0.5, 4.0, -1.0), cmp("b", -2.0, 4.0, 10.0)];
        let r = recommendation(&noisy, 64);
        assert!(r.starts_with("No adaptive rule"), "{r}");
        assert!(r.contains("**a**") && r.contains("+0.5 ± 4.0"), "{r}");
        // A significant gain whose perplexity is worse is not recommended either.
        let worse_ppl = [cmp("a", 6.0, 4.0, 25.0)];
        assert!(recommendation(&worse_ppl, 64).starts_with("No adaptive rule"));
        // A significant gain with perplexity no worse is; the other rule is not picked.
        let real = [cmp("a", 6.0, 4.0, 25.0), cmp("b", 5.0, 4.0, -3.0)];
        let r = recommendation(&real, 64);
        assert!(r.starts_with("**b**") && r.contains("+5.0 ± 4.0"), "{r}");
        assert!(recommendation(&[], 64).starts_with("Not enough"));
    }
}
