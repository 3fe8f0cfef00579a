//! The seed's nine panels in one SVG (3 × 3), drawn with the workspace's figure crate:
//!
//! | | | |
//! |---|---|---|
//! | 1 perplexity vs k̄ (top-k line, BH and top-p points) | 2 task accuracy vs k̄ | 3 mean experts per configuration |
//! | 4 α-sensitivity heat map (`max_k` × α: average accuracy, k̄ in the cell) | 5 Pareto frontier: accuracy vs k̄ | 6 floor / middle / ceiling shares |
//! | 7 expert utilisation and Gini | 8 mean k per layer | 9 speed vs quality |
//!
//! Colour says the rule (grey top-k, blue shades BH by α, red top-p), marker shape says it
//! again (square, circle, triangle); one legend under the grid serves every panel.

use ::figure::{Grid, Marker, Plot, Scale};

use super::report::{ConfigRow, config_rows};
use super::{RoutingConfig, StudyReport};

const TOPK: &str = "#333333";
const TOPP: &str = "#d62728";
const ALPHA: [&str; 4] = ["#9ecae1", "#4292c6", "#2171b5", "#08306b"];
const FRONTIER: &str = "#2ca02c";
const GINI: &str = "#e6550d";

/// Colour of a configuration: grey top-k, red top-p, blue shades by α for BH.
fn color(r: &RoutingConfig) -> &'static str {
    match r {
        RoutingConfig::TopK { .. } => TOPK,
        RoutingConfig::TopP { .. } => TOPP,
        RoutingConfig::Bh { alpha, .. } => {
            let i = ((alpha - 0.3) / 0.1).round().clamp(0.0, 3.0) as usize;
            ALPHA[i]
        }
    }
}

fn shape(r: &RoutingConfig) -> Marker {
    match r {
        RoutingConfig::TopK { .. } => Marker::Square,
        RoutingConfig::TopP { .. } => Marker::Triangle,
        RoutingConfig::Bh { .. } => Marker::Circle,
    }
}

fn is_top_k(r: &ConfigRow) -> bool {
    matches!(r.routing, RoutingConfig::TopK { .. })
}

fn panel(title: &str, x_label: &str, y_label: &str) -> Plot {
    let mut p = Plot::new(title, x_label, y_label);
    p.width = 540.0;
    p.height = 440.0;
    p
}

/// Quality against k̄: the top-k line (dashed) plus every configuration as a marker.
fn quality_panel(
    title: &str,
    y_label: &str,
    rows: &[ConfigRow],
    experts: f64,
    value: &dyn Fn(&ConfigRow) -> Option<f64>,
) -> Plot {
    let mut p = panel(title, "mean experts per token k̄", y_label);
    p.x_range = Some((0.0, experts * 1.04));
    let mut line: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| is_top_k(r))
        .filter_map(|r| value(r).map(|v| (r.mean_k, v)))
        .collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (x, y): (Vec<f64>, Vec<f64>) = line.into_iter().unzip();
    p.styled_line(&x, &y, TOPK, "", 1.5, true);
    markers(&mut p, rows, &|r| value(r).map(|v| (r.mean_k, v)));
    p
}

/// One marker per configuration at `at(row)`, in its colour and shape.
fn markers(p: &mut Plot, rows: &[ConfigRow], at: &dyn Fn(&ConfigRow) -> Option<(f64, f64)>) {
    for r in rows {
        if let Some((x, y)) = at(r) {
            p.markers(&[x], &[y], color(&r.routing), "", shape(&r.routing), 5.0);
        }
    }
}

/// A bar panel over the configurations (category axis).
fn bar_panel(title: &str, y_label: &str, names: &[String], y_max: f64) -> Plot {
    let mut p = panel(title, "", y_label);
    p.x_categories = names.to_vec();
    p.y_range = Some((0.0, y_max));
    p
}

/// Mean over the configuration's experiments (datasets) of `f`.
fn mean_over(
    report: &StudyReport,
    config: &str,
    f: &dyn Fn(&super::ExperimentSummary) -> f64,
) -> f64 {
    let v: Vec<f64> = report
        .experiments
        .iter()
        .filter(|e| e.config == config)
        .map(f)
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The 3 × 3 figure as a standalone SVG.
pub fn nine_panels(report: &StudyReport) -> String {
    let rows = config_rows(report);
    let e = report.num_experts as f64;
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.config.replace("experts", ""))
        .collect();
    let acc = |r: &ConfigRow| r.avg_task_accuracy.map(|a| 100.0 * a);

    // 1–2. Quality against k̄.
    let mut p1 = quality_panel(
        "1 · WikiText-2 perplexity",
        "word perplexity (log)",
        &rows,
        e,
        &|r| r.perplexity,
    );
    p1.y_scale = Scale::Log;
    let p2 = quality_panel(
        "2 · Task accuracy (LAMBADA, HellaSwag)",
        "average accuracy %",
        &rows,
        e,
        &acc,
    );

    // 3. Mean experts per configuration.
    let mut p3 = bar_panel("3 · Mean experts per token", "k̄", &names, e * 1.04);
    for (i, r) in rows.iter().enumerate() {
        p3.bars(&[i as f64], &[0.0], &[r.mean_k], 0.7, color(&r.routing), "");
    }

    // 4. α-sensitivity heat map over the BH grid.
    let mut max_ks: Vec<usize> = Vec::new();
    let mut alphas: Vec<f64> = Vec::new();
    for r in &rows {
        if let RoutingConfig::Bh { alpha, max_k, .. } = r.routing {
            if !max_ks.contains(&max_k) {
                max_ks.push(max_k);
            }
            if !alphas.iter().any(|a| (a - alpha).abs() < 1e-9) {
                alphas.push(alpha);
            }
        }
    }
    max_ks.sort_unstable();
    alphas.sort_by(f64::total_cmp);
    let bh_acc: Vec<f64> = rows
        .iter()
        .filter(|r| matches!(r.routing, RoutingConfig::Bh { .. }))
        .filter_map(|r| r.avg_task_accuracy)
        .collect();
    let range = bh_acc
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (mut values, mut text) = (Vec::new(), Vec::new());
    for mk in &max_ks {
        let (mut vr, mut tr) = (Vec::new(), Vec::new());
        for a in &alphas {
            let row = rows.iter().find(|r| {
                matches!(r.routing, RoutingConfig::Bh { alpha, max_k, .. }
                    if max_k == *mk && (alpha - a).abs() < 1e-9)
            });
            vr.push(row.and_then(|r| r.avg_task_accuracy));
            tr.push(row.map_or(String::new(), |r| {
                let a = r
                    .avg_task_accuracy
                    .map_or("–".into(), |v| format!("{:.1}%", 100.0 * v));
                format!("{a} · k̄ {:.1}", r.mean_k)
            }));
        }
        values.push(vr);
        text.push(tr);
    }
    let mut p4 = panel("4 · α sensitivity (BH): avg accuracy, k̄", "α", "max_k");
    p4.heat_map(
        &alphas.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>(),
        &max_ks.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        &values,
        &text,
        range,
    );
    if range.0.is_finite() {
        p4.note(&format!(
            "white {:.1}% → dark blue {:.1}% (average task accuracy)",
            100.0 * range.0,
            100.0 * range.1
        ));
    }

    // 5. Pareto frontier: fewer experts and higher accuracy.
    let mut p5 = panel(
        "5 · Pareto frontier: quality vs experts",
        "mean experts per token k̄",
        "average accuracy %",
    );
    p5.x_range = Some((0.0, e * 1.04));
    let mut pts: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| acc(r).map(|a| (r.mean_k, a)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for &(k, a) in &pts {
        if frontier.last().is_none_or(|&(_, b)| a > b) {
            frontier.push((k, a));
        }
    }
    let (fx, fy): (Vec<f64>, Vec<f64>) = frontier.into_iter().unzip();
    p5.line(&fx, &fy, FRONTIER, "Pareto frontier");
    p5.legend_pos = ::figure::LegendPos::BottomRight;
    markers(&mut p5, &rows, &|r| acc(r).map(|a| (r.mean_k, a)));

    // 6. Floor / middle / ceiling, stacked.
    let mut p6 = bar_panel(
        "6 · Floor / middle / ceiling share",
        "share of (token, layer)",
        &names,
        1.0,
    );
    let xs: Vec<f64> = (0..rows.len()).map(|i| i as f64).collect();
    let (floor, ceil): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .map(|r| {
            if is_top_k(r) {
                (0.0, 1.0)
            } else {
                (r.floor_hit_rate, r.ceiling_hit_rate)
            }
        })
        .unzip();
    let zeros = vec![0.0; rows.len()];
    let ones = vec![1.0; rows.len()];
    let top: Vec<f64> = ceil.iter().map(|c| 1.0 - c).collect();
    p6.bars(&xs, &zeros, &floor, 0.7, "#fdae6b", "")
        .bars(&xs, &floor, &top, 0.7, "#c6dbef", "")
        .bars(&xs, &top, &ones, 0.7, "#3182bd", "")
        .note("orange: at min_k · light: between · dark: at max_k");

    // 7. Utilisation (bars) and Gini (dots), averaged over the datasets.
    let mut p7 = bar_panel(
        "7 · Expert utilisation (bars) and Gini (dots)",
        "share / Gini",
        &names,
        1.04,
    );
    for (i, r) in rows.iter().enumerate() {
        let util = mean_over(report, &r.config, &|x| x.metrics.expert_utilization);
        p7.bars(&[i as f64], &[0.0], &[util], 0.7, color(&r.routing), "");
    }
    let gini: Vec<f64> = rows
        .iter()
        .map(|r| mean_over(report, &r.config, &|x| x.metrics.gini_coefficient))
        .collect();
    p7.markers(&xs, &gini, GINI, "", Marker::Circle, 4.0);

    // 8. Mean k per layer: the top-k and top-p rules and the BH settings with max_k = E.
    let layers = report
        .experiments
        .first()
        .map_or(0, |x| x.per_layer_mean_k.len());
    let mut p8 = panel("8 · Mean experts per layer", "layer", "k̄ at the layer");
    p8.y_range = Some((0.0, e * 1.04));
    for r in &rows {
        let keep = match r.routing {
            RoutingConfig::TopK { .. } | RoutingConfig::TopP { .. } => true,
            RoutingConfig::Bh { max_k, .. } => max_k as f64 == e,
        };
        if !keep {
            continue;
        }
        let x: Vec<f64> = (0..layers).map(|l| l as f64).collect();
        let y: Vec<f64> = (0..layers)
            .map(|l| {
                mean_over(report, &r.config, &|x| {
                    x.per_layer_mean_k.get(l).copied().unwrap_or(0.0)
                })
            })
            .collect();
        p8.styled_line(&x, &y, color(&r.routing), "", 2.0, is_top_k(r));
    }

    // 9. Speed vs quality.
    let mut p9 = panel(
        "9 · Speed vs quality",
        "tokens / s (CPU)",
        "average accuracy %",
    );
    markers(&mut p9, &rows, &|r| {
        acc(r).map(|a| (r.tokens_per_second, a))
    });

    let mut grid = Grid::new("", 3)
        .with(p1)
        .with(p2)
        .with(p3)
        .with(p4)
        .with(p5)
        .with(p6)
        .with(p7)
        .with(p8)
        .with(p9)
        .legend_marker("top-k baseline (dashed: top-k line)", TOPK, Marker::Square);
    for (i, a) in ["0.30", "0.40", "0.50", "0.60"].iter().enumerate() {
        grid = grid.legend_marker(&format!("BH α = {a}"), ALPHA[i], Marker::Circle);
    }
    grid.legend_marker("top-p (matched k̄)", TOPP, Marker::Triangle)
        .render()
}
