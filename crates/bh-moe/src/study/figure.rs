//! The seed's nine panels in one SVG (3 × 3), drawn without dependencies:
//!
//! | | | |
//! |---|---|---|
//! | 1 perplexity vs k̄ (top-k line, BH and top-p points) | 2 task accuracy vs k̄ | 3 mean experts per configuration |
//! | 4 α-sensitivity heat map (`max_k` × α: average accuracy, k̄ in the cell) | 5 Pareto frontier: accuracy vs k̄ | 6 floor / middle / ceiling shares |
//! | 7 expert utilisation and Gini | 8 mean k per layer | 9 speed vs quality |

use std::fmt::Write as _;

use super::report::{ConfigRow, config_rows};
use super::{RoutingConfig, StudyReport};

const W: f64 = 1560.0;
const H: f64 = 1300.0;
const PW: f64 = 520.0;
const PH: f64 = 420.0;
const TOPK: &str = "#333333";
const TOPP: &str = "#d62728";
const ALPHA: [&str; 4] = ["#9ecae1", "#4292c6", "#2171b5", "#08306b"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 1e6 || a < 1e-3 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

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

/// One panel's plot area and data ranges.
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xr: (f64, f64),
    yr: (f64, f64),
    log_y: bool,
}

impl Panel {
    fn new(col: usize, row: usize, xr: (f64, f64), yr: (f64, f64), log_y: bool) -> Self {
        let pad = |(a, b): (f64, f64)| {
            if !(a.is_finite() && b.is_finite()) {
                (0.0, 1.0)
            } else if b > a {
                let m = 0.06 * (b - a);
                (a - m, b + m)
            } else {
                (a - 0.5 - a.abs() * 0.1, b + 0.5 + b.abs() * 0.1)
            }
        };
        let yr = if log_y && yr.0 > 0.0 {
            let (a, b) = pad((yr.0.ln(), yr.1.ln()));
            (a.exp(), b.exp())
        } else {
            pad(yr)
        };
        Self {
            x0: col as f64 * PW + 70.0,
            y0: row as f64 * PH + 40.0,
            w: PW - 100.0,
            h: PH - 110.0,
            xr: pad(xr),
            yr,
            log_y: log_y && yr.0 > 0.0,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.x0 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * self.w
    }

    fn py(&self, y: f64) -> f64 {
        let t = if self.log_y {
            (y.ln() - self.yr.0.ln()) / (self.yr.1.ln() - self.yr.0.ln())
        } else {
            (y - self.yr.0) / (self.yr.1 - self.yr.0)
        };
        self.y0 + self.h - t * self.h
    }

    /// Frame, title, axis labels and ticks (`xticks`: `None` for numeric ticks, `Some` for
    /// category labels at x = 0, 1, …).
    fn frame(
        &self,
        s: &mut String,
        title: &str,
        xlabel: &str,
        ylabel: &str,
        cats: Option<&[String]>,
    ) {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
            self.x0, self.y0, self.w, self.h
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            self.x0 + self.w / 2.0,
            self.y0 - 12.0,
            esc(title)
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            self.x0 + self.w / 2.0,
            self.y0 + self.h + if cats.is_some() { 62.0 } else { 34.0 },
            esc(xlabel)
        );
        let _ = write!(
            s,
            r#"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
            self.x0 - 50.0,
            self.y0 + self.h / 2.0,
            esc(ylabel)
        );
        let yt = if self.log_y {
            let (a, b) = (
                self.yr.0.log10().floor() as i32,
                self.yr.1.log10().ceil() as i32,
            );
            let mut t: Vec<f64> = Vec::new();
            for e in a..=b {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * 10f64.powi(e);
                    if v >= self.yr.0 && v <= self.yr.1 {
                        t.push(v);
                    }
                }
            }
            if t.len() < 3 {
                // A narrow range: evenly spaced values, drawn at their log positions.
                t = ::figure::nice_ticks(self.yr.0, self.yr.1, 4);
            }
            t
        } else {
            ::figure::nice_ticks(self.yr.0, self.yr.1, 5)
        };
        for v in yt {
            let y = self.py(v);
            let _ = write!(
                s,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                self.x0,
                self.x0 + self.w,
                self.x0 - 4.0,
                y + 4.0,
                fmt(v)
            );
        }
        match cats {
            None => {
                for v in ::figure::nice_ticks(self.xr.0, self.xr.1, 6) {
                    let x = self.px(v);
                    let _ = write!(
                        s,
                        r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
                        self.y0 + self.h + 16.0,
                        fmt(v)
                    );
                }
            }
            Some(labels) => {
                for (i, l) in labels.iter().enumerate() {
                    let x = self.px(i as f64);
                    let y = self.y0 + self.h + 8.0;
                    let _ = write!(
                        s,
                        r#"<text transform="translate({x:.1},{y:.1}) rotate(50)" font-size="9">{}</text>"#,
                        esc(l)
                    );
                }
            }
        }
    }

    fn polyline(&self, s: &mut String, pts: &[(f64, f64)], color: &str, dashed: bool) {
        if pts.len() < 2 {
            return;
        }
        let d: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{}/>"#,
            d.join(" "),
            if dashed {
                r#" stroke-dasharray="5,4""#
            } else {
                ""
            }
        );
    }

    fn marker(&self, s: &mut String, x: f64, y: f64, color: &str, shape: &str) {
        let (cx, cy) = (self.px(x), self.py(y));
        match shape {
            "square" => {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{color}"/>"#,
                    cx - 4.5,
                    cy - 4.5
                );
            }
            "triangle" => {
                let _ = write!(
                    s,
                    r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{color}"/>"#,
                    cx,
                    cy - 6.0,
                    cx - 5.5,
                    cy + 4.5,
                    cx + 5.5,
                    cy + 4.5
                );
            }
            _ => {
                let _ = write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4.5" fill="{color}"/>"#
                );
            }
        }
    }

    fn bar(&self, s: &mut String, x: f64, width: f64, y_lo: f64, y_hi: f64, color: &str) {
        let (a, b) = (self.py(y_lo), self.py(y_hi));
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
            self.px(x) - width / 2.0,
            b.min(a),
            width,
            (a - b).abs()
        );
    }
}

fn shape(r: &RoutingConfig) -> &'static str {
    match r {
        RoutingConfig::TopK { .. } => "square",
        RoutingConfig::TopP { .. } => "triangle",
        RoutingConfig::Bh { .. } => "circle",
    }
}

fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        })
}

/// Quality against k̄: the top-k line plus every configuration as a marker.
fn quality_panel(
    s: &mut String,
    p: &Panel,
    rows: &[ConfigRow],
    value: &dyn Fn(&ConfigRow) -> Option<f64>,
) {
    let mut line: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| matches!(r.routing, RoutingConfig::TopK { .. }))
        .filter_map(|r| value(r).map(|v| (r.mean_k, v)))
        .collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    p.polyline(s, &line, TOPK, true);
    for r in rows {
        if let Some(v) = value(r) {
            p.marker(s, r.mean_k, v, color(&r.routing), shape(&r.routing));
        }
    }
}

fn legend(s: &mut String) {
    let mut x = 70.0;
    let y = H - 12.0;
    let mut item = |s: &mut String, label: &str, c: &str, shape: &str| {
        match shape {
            "square" => {
                let _ = write!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{c}"/>"#,
                    y - 9.0
                );
            }
            "triangle" => {
                let _ = write!(
                    s,
                    r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{c}"/>"#,
                    x + 5.0,
                    y - 10.0,
                    x,
                    y,
                    x + 10.0,
                    y
                );
            }
            _ => {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{c}"/>"#,
                    x + 5.0,
                    y - 4.0
                );
            }
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{y:.1}" font-size="12">{}</text>"#,
            x + 15.0,
            esc(label)
        );
        x += 30.0 + 7.0 * label.len() as f64;
    };
    item(s, "top-k baseline (dashed: top-k line)", TOPK, "square");
    for (i, a) in ["0.30", "0.40", "0.50", "0.60"].iter().enumerate() {
        item(s, &format!("BH α = {a}"), ALPHA[i], "circle");
    }
    item(s, "top-p (matched k̄)", TOPP, "triangle");
}

/// The 3 × 3 figure as a standalone SVG.
pub fn nine_panels(report: &StudyReport) -> String {
    let rows = config_rows(report);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    );
    let e = report.num_experts as f64;
    let kr = (0.0, e);

    // 1. Perplexity.
    let pr = range(rows.iter().filter_map(|r| r.perplexity));
    let p1 = Panel::new(0, 0, kr, pr, true);
    p1.frame(
        &mut s,
        "1 · WikiText-2 perplexity",
        "mean experts per token k̄",
        "word perplexity (log)",
        None,
    );
    quality_panel(&mut s, &p1, &rows, &|r| r.perplexity);

    // 2. Task accuracy.
    let ar = range(
        rows.iter()
            .filter_map(|r| r.avg_task_accuracy.map(|a| 100.0 * a)),
    );
    let p2 = Panel::new(1, 0, kr, ar, false);
    p2.frame(
        &mut s,
        "2 · Task accuracy (LAMBADA, HellaSwag)",
        "mean experts per token k̄",
        "average accuracy %",
        None,
    );
    quality_panel(&mut s, &p2, &rows, &|r| {
        r.avg_task_accuracy.map(|a| 100.0 * a)
    });

    // 3. Mean experts per configuration.
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.config.replace("experts", ""))
        .collect();
    let p3 = Panel::new(
        2,
        0,
        (0.0, rows.len().saturating_sub(1) as f64),
        (0.0, e),
        false,
    );
    p3.frame(&mut s, "3 · Mean experts per token", "", "k̄", Some(&names));
    let bw = (p3.w / rows.len().max(1) as f64 * 0.7).max(2.0);
    for (i, r) in rows.iter().enumerate() {
        p3.bar(&mut s, i as f64, bw, 0.0, r.mean_k, color(&r.routing));
    }

    // 4. α-sensitivity heat map.
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
    let p4 = Panel::new(0, 1, (0.0, 1.0), (0.0, 1.0), false);
    let cell_w = p4.w / alphas.len().max(1) as f64;
    let cell_h = p4.h / max_ks.len().max(1) as f64;
    let accs = range(
        rows.iter()
            .filter(|r| matches!(r.routing, RoutingConfig::Bh { .. }))
            .filter_map(|r| r.avg_task_accuracy),
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" text-anchor="middle">4 · α sensitivity (BH): avg accuracy, k̄</text>"#,
        p4.x0 + p4.w / 2.0,
        p4.y0 - 12.0
    );
    for (i, mk) in max_ks.iter().enumerate() {
        for (j, a) in alphas.iter().enumerate() {
            let Some(r) = rows.iter().find(|r| matches!(r.routing, RoutingConfig::Bh { alpha, max_k, .. } if max_k == *mk && (alpha - a).abs() < 1e-9)) else { continue };
            let t = match (r.avg_task_accuracy, accs.1 > accs.0) {
                (Some(v), true) => (v - accs.0) / (accs.1 - accs.0),
                (Some(_), false) => 0.5,
                _ => 0.0,
            };
            let (cr, cg, cb) = (255.0 - 200.0 * t, 255.0 - 120.0 * t, 255.0 - 40.0 * t);
            let x = p4.x0 + j as f64 * cell_w;
            let y = p4.y0 + (max_ks.len() - 1 - i) as f64 * cell_h;
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="rgb({cr:.0},{cg:.0},{cb:.0})" stroke="white"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="{}">{} · k̄ {:.1}</text>"##,
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0,
                if t > 0.6 { "white" } else { "black" },
                r.avg_task_accuracy
                    .map_or("–".into(), |v| format!("{:.1}%", 100.0 * v)),
                r.mean_k
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">max_k {mk}</text>"#,
            p4.x0 - 4.0,
            p4.y0 + (max_ks.len() - 1 - i) as f64 * cell_h + cell_h / 2.0 + 4.0
        );
    }
    for (j, a) in alphas.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">α = {a:.2}</text>"#,
            p4.x0 + (j as f64 + 0.5) * cell_w,
            p4.y0 + p4.h + 16.0
        );
    }

    // 5. Pareto frontier: fewer experts and higher accuracy.
    let p5 = Panel::new(1, 1, kr, ar, false);
    p5.frame(
        &mut s,
        "5 · Pareto frontier: quality vs experts",
        "mean experts per token k̄",
        "average accuracy %",
        None,
    );
    let mut pts: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.avg_task_accuracy.map(|a| (r.mean_k, 100.0 * a)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for &(k, a) in &pts {
        if frontier.last().is_none_or(|&(_, b)| a > b) {
            frontier.push((k, a));
        }
    }
    p5.polyline(&mut s, &frontier, "#2ca02c", false);
    for r in &rows {
        if let Some(a) = r.avg_task_accuracy {
            p5.marker(
                &mut s,
                r.mean_k,
                100.0 * a,
                color(&r.routing),
                shape(&r.routing),
            );
        }
    }

    // 6. Floor / middle / ceiling.
    let p6 = Panel::new(
        2,
        1,
        (0.0, rows.len().saturating_sub(1) as f64),
        (0.0, 1.0),
        false,
    );
    p6.frame(
        &mut s,
        "6 · Floor / middle / ceiling share",
        "",
        "share of (token, layer)",
        Some(&names),
    );
    for (i, r) in rows.iter().enumerate() {
        let (f, c) = if matches!(r.routing, RoutingConfig::TopK { .. }) {
            (0.0, 1.0)
        } else {
            (r.floor_hit_rate, r.ceiling_hit_rate)
        };
        p6.bar(&mut s, i as f64, bw, 0.0, f, "#fdae6b");
        p6.bar(&mut s, i as f64, bw, f, 1.0 - c, "#c6dbef");
        p6.bar(&mut s, i as f64, bw, 1.0 - c, 1.0, "#3182bd");
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11">orange: at min_k · light: between · dark: at max_k</text>"##,
        p6.x0,
        p6.y0 + p6.h + 75.0
    );

    // 7. Utilisation and Gini (first dataset's usage, all layers).
    let p7 = Panel::new(
        0,
        2,
        (0.0, rows.len().saturating_sub(1) as f64),
        (0.0, 1.0),
        false,
    );
    p7.frame(
        &mut s,
        "7 · Expert utilisation (bars) and Gini (dots)",
        "",
        "share / Gini",
        Some(&names),
    );
    for (i, r) in rows.iter().enumerate() {
        let exps: Vec<_> = report
            .experiments
            .iter()
            .filter(|e| e.config == r.config)
            .collect();
        let util = exps
            .iter()
            .map(|e| e.metrics.expert_utilization)
            .sum::<f64>()
            / exps.len().max(1) as f64;
        let gini =
            exps.iter().map(|e| e.metrics.gini_coefficient).sum::<f64>() / exps.len().max(1) as f64;
        p7.bar(&mut s, i as f64, bw, 0.0, util, color(&r.routing));
        p7.marker(&mut s, i as f64, gini, "#e6550d", "circle");
    }

    // 8. Mean k per layer for the top-k baselines and the max_k = E BH configurations.
    let layers = report
        .experiments
        .first()
        .map_or(0, |e| e.per_layer_mean_k.len());
    let p8 = Panel::new(
        1,
        2,
        (0.0, layers.saturating_sub(1) as f64),
        (0.0, e),
        false,
    );
    p8.frame(
        &mut s,
        "8 · Mean experts per layer",
        "layer",
        "k̄ at the layer",
        None,
    );
    for r in &rows {
        let keep = match r.routing {
            RoutingConfig::TopK { .. } | RoutingConfig::TopP { .. } => true,
            RoutingConfig::Bh { max_k, .. } => max_k as f64 == e,
        };
        if !keep {
            continue;
        }
        let exps: Vec<_> = report
            .experiments
            .iter()
            .filter(|x| x.config == r.config)
            .collect();
        let pts: Vec<(f64, f64)> = (0..layers)
            .map(|l| {
                (
                    l as f64,
                    exps.iter()
                        .map(|x| x.per_layer_mean_k.get(l).copied().unwrap_or(0.0))
                        .sum::<f64>()
                        / exps.len().max(1) as f64,
                )
            })
            .collect();
        p8.polyline(
            &mut s,
            &pts,
            color(&r.routing),
            matches!(r.routing, RoutingConfig::TopK { .. }),
        );
    }

    // 9. Speed vs quality.
    let sr = range(rows.iter().map(|r| r.tokens_per_second));
    let p9 = Panel::new(2, 2, sr, ar, false);
    p9.frame(
        &mut s,
        "9 · Speed vs quality",
        "tokens / s (CPU)",
        "average accuracy %",
        None,
    );
    for r in &rows {
        if let Some(a) = r.avg_task_accuracy {
            p9.marker(
                &mut s,
                r.tokens_per_second,
                100.0 * a,
                color(&r.routing),
                shape(&r.routing),
            );
        }
    }
    legend(&mut s);
    s.push_str("</svg>");
    s
}
