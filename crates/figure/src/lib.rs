//! The workspace's one figure module: dependency-free SVG panels and multi-panel grids.
//!
//! A [`Plot`] is one panel: linear or base-10 log axes (decade ticks with minor ticks), lines
//! (solid or dashed), markers of five shapes, per-point text labels, shaded bands, dotted
//! reference lines, notes under the title and a legend in a corner or in a column beside the
//! plot. A [`Grid`] lays panels out in rows and columns under one title. Output is a standalone
//! SVG string that browsers, Markdown viewers and `rsvg-convert` render; nothing is installed.
//!
//! Every report figure of the workspace — routing curves (`evals`), guided-decoding curves,
//! scaling-law fits, the unified cost–quality plane — is drawn with it. (Why not `plotters`:
//! `docs/figures.md` records the comparison.)
//!
//! ```
//! use figure::{Grid, LegendPos, Marker, Plot, Scale, color};
//!
//! let mut p = Plot::new("loss vs compute", "compute (FLOPs)", "loss");
//! p.x_scale = Scale::Log;
//! p.line(&[1e18, 1e20], &[3.0, 2.5], color(0), "fit");
//! p.markers(&[1e18, 1e19, 1e20], &[3.0, 2.7, 2.5], color(0), "runs", Marker::Circle, 4.0);
//! p.labels(&[1e20], &[2.5], &["largest".to_string()], color(0));
//! let svg = p.render();
//! assert!(svg.starts_with("<svg") && svg.contains("loss vs compute"));
//!
//! let mut q = Plot::new("accuracy vs share", "share", "accuracy");
//! q.legend_pos = LegendPos::Outside;
//! q.styled_line(&[0.0, 1.0], &[0.3, 0.4], color(1), "random", 2.0, true);
//! let grid = Grid::new("two panels", 2).with(p).with(q);
//! assert_eq!(grid.render().matches("clipPath id=").count(), 2);
//! ```

use std::fmt::Write as _;

use std::path::{Path, PathBuf};

/// Writing a figure failed.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The file could not be written.
    #[error("cannot write figure {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`FigureError`].
pub type Result<T> = std::result::Result<T, FigureError>;

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| FigureError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (non-positive values are dropped).
    Log,
}

/// Corner of the plot area that holds the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendPos {
    /// Top right (default).
    TopRight,
    /// Top left.
    TopLeft,
    /// Bottom right.
    BottomRight,
    /// Bottom left.
    BottomLeft,
    /// In a column to the right of the plot area (the figure widens to fit the longest
    /// entry; the plot area keeps its size).
    Outside,
}

/// Point marker shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Diagonal cross (used for fitted optima).
    Cross,
    /// Filled diamond (used for held-out runs).
    Diamond,
    /// Filled upward triangle.
    Triangle,
    /// Filled square.
    Square,
}

#[derive(Debug, Clone)]
enum Item {
    Line {
        x: Vec<f64>,
        y: Vec<f64>,
        color: String,
        width: f64,
        dash: bool,
    },
    Points {
        x: Vec<f64>,
        y: Vec<f64>,
        color: String,
        marker: Marker,
        size: f64,
    },
    Band {
        x: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        color: String,
    },
    HLine {
        y: f64,
        color: String,
    },
    VLine {
        x: f64,
        color: String,
    },
    Labels {
        x: Vec<f64>,
        y: Vec<f64>,
        text: Vec<String>,
        color: String,
    },
    Bars {
        x: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        width: f64,
        color: String,
    },
    Cells {
        values: Vec<Vec<Option<f64>>>,
        text: Vec<Vec<String>>,
        range: (f64, f64),
    },
}

#[derive(Debug, Clone)]
struct LegendEntry {
    label: String,
    color: String,
    kind: LegendKind,
}

#[derive(Debug, Clone, Copy)]
enum LegendKind {
    Line(bool),
    Marker(Marker),
    LineMarker(bool, Marker),
    Band,
    Bar,
}

/// One plot panel.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Title above the panel.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// x scale.
    pub x_scale: Scale,
    /// y scale.
    pub y_scale: Scale,
    /// Total width in pixels.
    pub width: f64,
    /// Total height in pixels.
    pub height: f64,
    /// Fixed x range (data units); `None` = from the data.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (data units); `None` = from the data.
    pub y_range: Option<(f64, f64)>,
    /// Legend corner.
    pub legend_pos: LegendPos,
    /// Category names along x, drawn at x = 0, 1, … in place of numeric ticks (empty: a
    /// numeric axis). Long names are drawn slanted.
    pub x_categories: Vec<String>,
    /// Category names along y, drawn at y = 0, 1, … from the bottom (empty: a numeric axis).
    pub y_categories: Vec<String>,
    items: Vec<Item>,
    legend: Vec<LegendEntry>,
    notes: Vec<String>,
}

/// A qualitative palette (Tableau 10).
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The `i`-th palette colour (cycling).
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

impl Plot {
    /// An empty 720×480 panel with linear axes.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            width: 720.0,
            height: 480.0,
            x_range: None,
            y_range: None,
            legend_pos: LegendPos::TopRight,
            x_categories: Vec::new(),
            y_categories: Vec::new(),
            items: Vec::new(),
            legend: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn push_legend(&mut self, label: &str, color: &str, kind: LegendKind) {
        if !label.is_empty() {
            self.legend.push(LegendEntry {
                label: label.into(),
                color: color.into(),
                kind,
            });
        }
    }

    /// A solid polyline; an empty label keeps it out of the legend.
    pub fn line(&mut self, x: &[f64], y: &[f64], color: &str, label: &str) -> &mut Self {
        self.styled_line(x, y, color, label, 2.0, false)
    }

    /// A polyline with explicit width and dashing.
    pub fn styled_line(
        &mut self,
        x: &[f64],
        y: &[f64],
        color: &str,
        label: &str,
        width: f64,
        dash: bool,
    ) -> &mut Self {
        self.items.push(Item::Line {
            x: x.to_vec(),
            y: y.to_vec(),
            color: color.into(),
            width,
            dash,
        });
        self.push_legend(label, color, LegendKind::Line(dash));
        self
    }

    /// A polyline with a marker at each point, one legend entry for both.
    pub fn line_markers(
        &mut self,
        x: &[f64],
        y: &[f64],
        color: &str,
        label: &str,
        dash: bool,
        marker: Marker,
    ) -> &mut Self {
        self.styled_line(x, y, color, "", 2.0, dash)
            .markers(x, y, color, "", marker, 3.5);
        self.push_legend(label, color, LegendKind::LineMarker(dash, marker));
        self
    }

    /// Circles.
    pub fn points(&mut self, x: &[f64], y: &[f64], color: &str, label: &str) -> &mut Self {
        self.markers(x, y, color, label, Marker::Circle, 4.0)
    }

    /// Markers of a given shape and radius.
    pub fn markers(
        &mut self,
        x: &[f64],
        y: &[f64],
        color: &str,
        label: &str,
        marker: Marker,
        size: f64,
    ) -> &mut Self {
        self.items.push(Item::Points {
            x: x.to_vec(),
            y: y.to_vec(),
            color: color.into(),
            marker,
            size,
        });
        self.push_legend(label, color, LegendKind::Marker(marker));
        self
    }

    /// A shaded band between `lo` and `hi` (e.g. a bootstrap interval).
    pub fn band(
        &mut self,
        x: &[f64],
        lo: &[f64],
        hi: &[f64],
        color: &str,
        label: &str,
    ) -> &mut Self {
        self.items.push(Item::Band {
            x: x.to_vec(),
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            color: color.into(),
        });
        self.push_legend(label, color, LegendKind::Band);
        self
    }

    /// A dotted horizontal reference line (e.g. chance accuracy).
    pub fn hline(&mut self, y: f64, color: &str, label: &str) -> &mut Self {
        self.items.push(Item::HLine {
            y,
            color: color.into(),
        });
        self.push_legend(label, color, LegendKind::Line(true));
        self
    }

    /// A dotted vertical reference line (e.g. the fit/held-out boundary).
    pub fn vline(&mut self, x: f64, color: &str, label: &str) -> &mut Self {
        self.items.push(Item::VLine {
            x,
            color: color.into(),
        });
        self.push_legend(label, color, LegendKind::Line(true));
        self
    }

    /// Text labels beside points (`text[i]` at `(x[i], y[i])`, up and to the right, or at
    /// the first free spot around the point when an earlier label is there; points within 4 px
    /// of each other share one label, `"a, b"`); no legend entry. Labels past the end of
    /// `text` are not drawn.
    pub fn labels(&mut self, x: &[f64], y: &[f64], text: &[String], color: &str) -> &mut Self {
        self.items.push(Item::Labels {
            x: x.to_vec(),
            y: y.to_vec(),
            text: text.to_vec(),
            color: color.into(),
        });
        self
    }

    /// A line of text printed under the title.
    pub fn note(&mut self, text: &str) -> &mut Self {
        self.notes.push(text.into());
        self
    }

    /// Bars (or bar segments, for stacked bars): bar `i` spans `lo[i]..hi[i]` on y, centred on
    /// `x[i]`, `width` data units wide; drawn under lines and markers.
    pub fn bars(
        &mut self,
        x: &[f64],
        lo: &[f64],
        hi: &[f64],
        width: f64,
        color: &str,
        label: &str,
    ) -> &mut Self {
        self.items.push(Item::Bars {
            x: x.to_vec(),
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            width,
            color: color.into(),
        });
        self.push_legend(label, color, LegendKind::Bar);
        self
    }

    /// A heat map over category axes: `values[r][c]` colours the cell of row `rows[r]` (row 0
    /// at the bottom) and column `cols[c]` from white (`range.0`) to dark blue (`range.1`);
    /// `text[r][c]`, when given, is written in the cell. `None` leaves a cell blank. Sets
    /// [`Plot::x_categories`] and [`Plot::y_categories`].
    pub fn heat_map(
        &mut self,
        cols: &[String],
        rows: &[String],
        values: &[Vec<Option<f64>>],
        text: &[Vec<String>],
        range: (f64, f64),
    ) -> &mut Self {
        self.x_categories = cols.to_vec();
        self.y_categories = rows.to_vec();
        self.items.push(Item::Cells {
            values: values.to_vec(),
            text: text.to_vec(),
            range,
        });
        self
    }

    fn data_range(&self, axis_x: bool) -> (f64, f64) {
        let cats = if axis_x {
            &self.x_categories
        } else {
            &self.y_categories
        };
        if !cats.is_empty() {
            return (-0.5, cats.len() as f64 - 0.5);
        }
        let scale = if axis_x { self.x_scale } else { self.y_scale };
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut take = |v: f64| {
            if v.is_finite() && (scale == Scale::Linear || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        };
        for it in &self.items {
            match it {
                Item::Line { x, y, .. } | Item::Points { x, y, .. } => {
                    for &v in if axis_x { x } else { y } {
                        take(v);
                    }
                }
                Item::Band {
                    x, lo: l, hi: h, ..
                } => {
                    if axis_x {
                        x.iter().for_each(|&v| take(v));
                    } else {
                        l.iter().chain(h).for_each(|&v| take(v));
                    }
                }
                Item::Bars {
                    x,
                    lo: l,
                    hi: h,
                    width,
                    ..
                } => {
                    if axis_x {
                        x.iter().for_each(|&v| {
                            take(v - width / 2.0);
                            take(v + width / 2.0)
                        });
                    } else {
                        l.iter().chain(h).for_each(|&v| take(v));
                    }
                }
                Item::HLine { y, .. } if !axis_x => take(*y),
                Item::VLine { x, .. } if axis_x => take(*x),
                _ => {}
            }
        }
        if !lo.is_finite() {
            return if scale == Scale::Log {
                (1.0, 10.0)
            } else {
                (0.0, 1.0)
            };
        }
        if hi <= lo {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            return (lo - pad, hi + pad);
        }
        match scale {
            Scale::Linear => {
                let pad = 0.05 * (hi - lo);
                (lo - pad, hi + pad)
            }
            Scale::Log => {
                let pad = 0.05 * (hi.log10() - lo.log10());
                (10f64.powf(lo.log10() - pad), 10f64.powf(hi.log10() + pad))
            }
        }
    }

    /// Width of the legend box: swatch, gap and the longest label.
    fn legend_width(&self) -> f64 {
        let longest = self
            .legend
            .iter()
            .map(|e| e.label.chars().count())
            .max()
            .unwrap_or(0);
        14.0 + 28.0 + 6.6 * longest as f64
    }

    /// The rendered size: `width × height`, plus the legend column for
    /// [`LegendPos::Outside`].
    pub fn size(&self) -> (f64, f64) {
        (self.width + self.outside_column(), self.height)
    }

    fn outside_column(&self) -> f64 {
        if self.legend_pos == LegendPos::Outside && !self.legend.is_empty() {
            self.legend_width() + 36.0
        } else {
            0.0
        }
    }

    /// Renders the panel as a standalone SVG document.
    pub fn render(&self) -> String {
        let (w, h) = self.size();
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
        );
        self.body(&mut s, "plot");
        s.push_str("</svg>\n");
        s
    }

    /// The panel's elements (no `<svg>` wrapper), its clip path named `id`.
    fn body(&self, s: &mut String, id: &str) {
        let longest = |c: &[String]| c.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let (xcat, ycat) = (longest(&self.x_categories), longest(&self.y_categories));
        let ml = 78.0 + (6.5 * ycat as f64 - 60.0).max(0.0);
        let mr = 20.0;
        let (w, h) = (self.width, self.height);
        // Category names that do not fit their slot are slanted 40°, below the axis.
        let slant = !self.x_categories.is_empty()
            && 6.5 * xcat as f64 > (w - ml - mr) / self.x_categories.len() as f64;
        let (mt, mb) = (
            48.0 + 14.0 * self.notes.len() as f64,
            56.0 + if slant { 4.2 * xcat as f64 } else { 0.0 },
        );
        let (pw, ph) = (w - ml - mr, h - mt - mb);
        let xr = self.x_range.unwrap_or_else(|| self.data_range(true));
        let yr = self.y_range.unwrap_or_else(|| self.data_range(false));
        let xa = Axis::new(self.x_scale, xr);
        let ya = Axis::new(self.y_scale, yr);
        let px = |v: f64| ml + xa.frac(v) * pw;
        let py = |v: f64| mt + (1.0 - ya.frac(v)) * ph;
        let ok_x = |v: f64| v.is_finite() && (self.x_scale == Scale::Linear || v > 0.0);
        let ok_y = |v: f64| v.is_finite() && (self.y_scale == Scale::Linear || v > 0.0);

        let _ = writeln!(
            s,
            r#"<rect width="{}" height="{h}" fill="white"/>"#,
            w + self.outside_column()
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(&self.title)
        );
        for (i, n) in self.notes.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                w / 2.0,
                40.0 + 14.0 * i as f64,
                esc(n)
            );
        }
        let _ = writeln!(
            s,
            r#"<defs><clipPath id="{id}"><rect x="{ml}" y="{mt}" width="{pw}" height="{ph}"/></clipPath></defs>"#
        );
        // Grid and ticks (category axes: names, no grid lines).
        for (i, l) in self.x_categories.iter().enumerate() {
            let x = px(i as f64);
            let y = mt + ph + 14.0;
            if slant {
                // Slanted up to the tick, so names run left under the plot, never past its
                // right edge.
                let _ = writeln!(
                    s,
                    r#"<text transform="translate({:.2} {:.2}) rotate(-40)" font-size="11" text-anchor="end">{}</text>"#,
                    x + 4.0,
                    y - 4.0,
                    esc(l)
                );
            } else {
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.2}" y="{:.2}" text-anchor="middle">{}</text>"#,
                    y + 2.0,
                    esc(l)
                );
            }
        }
        for (i, l) in self.y_categories.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{:.2}" y="{:.2}" text-anchor="end">{}</text>"#,
                ml - 6.0,
                py(i as f64) + 4.0,
                esc(l)
            );
        }
        let x_ticks = if self.x_categories.is_empty() {
            xa.ticks()
        } else {
            Vec::new()
        };
        let y_ticks = if self.y_categories.is_empty() {
            ya.ticks()
        } else {
            Vec::new()
        };
        for (v, label, major) in x_ticks {
            let x = px(v);
            let (stroke, op) = if major { ("#ccc", 1.0) } else { ("#eee", 1.0) };
            let _ = writeln!(
                s,
                r#"<line x1="{x:.2}" y1="{mt}" x2="{x:.2}" y2="{:.2}" stroke="{stroke}" stroke-opacity="{op}"/>"#,
                mt + ph
            );
            if let Some(l) = label {
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.2}" y="{:.2}" text-anchor="middle">{l}</text>"#,
                    mt + ph + 16.0
                );
            }
        }
        for (v, label, major) in y_ticks {
            let y = py(v);
            let stroke = if major { "#ccc" } else { "#eee" };
            let _ = writeln!(
                s,
                r#"<line x1="{ml}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="{stroke}"/>"#,
                ml + pw
            );
            if let Some(l) = label {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.2}" y="{:.2}" text-anchor="end">{l}</text>"#,
                    ml - 6.0,
                    y + 4.0
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}" text-anchor="middle">{}</text>"#,
            ml + pw / 2.0,
            h - 14.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="18" y="{:.2}" text-anchor="middle" transform="rotate(-90 18 {:.2})">{}</text>"#,
            mt + ph / 2.0,
            mt + ph / 2.0,
            esc(&self.y_label)
        );
        let _ = writeln!(s, r#"<g clip-path="url(#{id})">"#);
        for it in &self.items {
            match it {
                Item::Bars {
                    x,
                    lo,
                    hi,
                    width,
                    color,
                } => {
                    for ((&c, &a), &b) in x.iter().zip(lo).zip(hi) {
                        if !(ok_x(c) && ok_y(a) && ok_y(b)) {
                            continue;
                        }
                        let (x0, x1) = (px(c - width / 2.0), px(c + width / 2.0));
                        let (y0, y1) = (py(a.max(b)), py(a.min(b)));
                        let _ = writeln!(
                            s,
                            r#"<rect x="{:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}" fill="{color}"/>"#,
                            x0.min(x1),
                            (x1 - x0).abs(),
                            (y1 - y0).max(0.0)
                        );
                    }
                }
                Item::Cells {
                    values,
                    text,
                    range,
                } => {
                    let (cw, ch) = (
                        pw / self.x_categories.len().max(1) as f64,
                        ph / self.y_categories.len().max(1) as f64,
                    );
                    for (r, row) in values.iter().enumerate() {
                        for (c, v) in row.iter().enumerate() {
                            let Some(v) = v.filter(|v| v.is_finite()) else {
                                continue;
                            };
                            let t = if range.1 > range.0 {
                                ((v - range.0) / (range.1 - range.0)).clamp(0.0, 1.0)
                            } else {
                                0.5
                            };
                            let (x, y) = (px(c as f64) - cw / 2.0, py(r as f64) - ch / 2.0);
                            let _ = writeln!(
                                s,
                                r#"<rect x="{x:.2}" y="{y:.2}" width="{cw:.2}" height="{ch:.2}" fill="{}" stroke="white"/>"#,
                                heat_color(t)
                            );
                            if let Some(label) = text.get(r).and_then(|row| row.get(c)) {
                                let _ = writeln!(
                                    s,
                                    r#"<text x="{:.2}" y="{:.2}" text-anchor="middle" fill="{}">{}</text>"#,
                                    x + cw / 2.0,
                                    y + ch / 2.0 + 4.0,
                                    if t > 0.55 { "white" } else { "black" },
                                    esc(label)
                                );
                            }
                        }
                    }
                }
                Item::Band { x, lo, hi, color } => {
                    let mut pts = Vec::new();
                    for i in 0..x.len() {
                        if ok_x(x[i]) && ok_y(lo[i]) {
                            pts.push(format!("{:.2},{:.2}", px(x[i]), py(lo[i])));
                        }
                    }
                    for i in (0..x.len()).rev() {
                        if ok_x(x[i]) && ok_y(hi[i]) {
                            pts.push(format!("{:.2},{:.2}", px(x[i]), py(hi[i])));
                        }
                    }
                    let _ = writeln!(
                        s,
                        r#"<polygon points="{}" fill="{color}" fill-opacity="0.2" stroke="none"/>"#,
                        pts.join(" ")
                    );
                }
                Item::Line {
                    x,
                    y,
                    color,
                    width,
                    dash,
                } => {
                    let pts: Vec<String> = x
                        .iter()
                        .zip(y)
                        .filter(|(a, b)| ok_x(**a) && ok_y(**b))
                        .map(|(a, b)| format!("{:.2},{:.2}", px(*a), py(*b)))
                        .collect();
                    let d = if *dash {
                        r#" stroke-dasharray="6 4""#
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{d}/>"#,
                        pts.join(" ")
                    );
                }
                Item::HLine { y, color } if ok_y(*y) => {
                    let _ = writeln!(
                        s,
                        r#"<line x1="{ml}" y1="{0:.2}" x2="{1:.2}" y2="{0:.2}" stroke="{color}" stroke-dasharray="2 3"/>"#,
                        py(*y),
                        ml + pw
                    );
                }
                Item::VLine { x, color } if ok_x(*x) => {
                    let _ = writeln!(
                        s,
                        r#"<line x1="{0:.2}" y1="{mt}" x2="{0:.2}" y2="{1:.2}" stroke="{color}" stroke-dasharray="2 3"/>"#,
                        px(*x),
                        mt + ph
                    );
                }
                _ => {}
            }
        }
        let _ = writeln!(s, "</g>");
        // Markers and labels outside the clip: a point on the frame is drawn whole, a label
        // may run past it; points outside the axis ranges are not drawn.
        let inside = |a: f64, b: f64| {
            ok_x(a) && ok_y(b) && {
                let (fx, fy) = (xa.frac(a), ya.frac(b));
                (-1e-9..=1.0 + 1e-9).contains(&fx) && (-1e-9..=1.0 + 1e-9).contains(&fy)
            }
        };
        // Boxes of the labels drawn so far: each new label takes the first free spot around
        // its point.
        let mut taken: Vec<[f64; 4]> = Vec::new();
        for it in &self.items {
            match it {
                Item::Points {
                    x,
                    y,
                    color,
                    marker,
                    size,
                } => {
                    for (a, b) in x.iter().zip(y) {
                        if inside(*a, *b) {
                            s.push_str(&marker_svg(*marker, px(*a), py(*b), *size, color));
                        }
                    }
                }
                Item::Labels { x, y, text, color } => {
                    let at: Vec<(f64, f64, &str)> = x
                        .iter()
                        .zip(y)
                        .zip(text)
                        .filter(|((a, b), _)| inside(**a, **b))
                        .map(|((a, b), t)| (px(*a), py(*b), t.as_str()))
                        .collect();
                    for (x, y, t) in merge_coincident(&at) {
                        let (lx, ly, anchor) = place_label(x, y, &t, [ml, w, mt + ph], &mut taken);
                        let _ = writeln!(
                            s,
                            r#"<text x="{lx:.2}" y="{ly:.2}" font-size="10" fill="{color}" text-anchor="{anchor}">{}</text>"#,
                            esc(&t)
                        );
                    }
                }
                _ => {}
            }
        }
        // Legend, in the chosen corner of the panel.
        if !self.legend.is_empty() {
            let lw = self.legend_width();
            let lh = 8.0 + 16.0 * self.legend.len() as f64;
            let (lx, ly) = match self.legend_pos {
                LegendPos::TopRight => (ml + pw - lw - 8.0, mt + 8.0),
                LegendPos::TopLeft => (ml + 8.0, mt + 8.0),
                LegendPos::BottomRight => (ml + pw - lw - 8.0, mt + ph - lh - 8.0),
                LegendPos::BottomLeft => (ml + 8.0, mt + ph - lh - 8.0),
                LegendPos::Outside => (ml + pw + mr + 24.0, mt),
            };
            let _ = writeln!(
                s,
                r##"<rect x="{lx:.2}" y="{ly:.2}" width="{lw:.2}" height="{lh:.2}" fill="white" fill-opacity="0.85" stroke="#999"/>"##
            );
            for (i, e) in self.legend.iter().enumerate() {
                let cy = ly + 12.0 + 16.0 * i as f64;
                let x0 = lx + 8.0;
                swatch(s, e, x0, cy);
                let _ = writeln!(
                    s,
                    r#"<text x="{:.2}" y="{:.2}">{}</text>"#,
                    x0 + 28.0,
                    cy + 4.0,
                    esc(&e.label)
                );
            }
        }
    }

    /// Renders and writes the panel to `path`.
    ///
    /// # Errors
    /// [`FigureError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file(path, &self.render())
    }
}

/// Panels in rows and columns under one title, as one SVG.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Title above all panels (empty: none).
    pub title: String,
    /// Panels per row (at least 1).
    pub cols: usize,
    /// The panels, row by row.
    pub panels: Vec<Plot>,
    legend: Vec<LegendEntry>,
}

impl Grid {
    /// An empty grid of `cols` panels per row.
    pub fn new(title: &str, cols: usize) -> Self {
        Self {
            title: title.into(),
            cols: cols.max(1),
            panels: Vec::new(),
            legend: Vec::new(),
        }
    }

    /// Adds a panel.
    pub fn with(mut self, panel: Plot) -> Self {
        self.panels.push(panel);
        self
    }

    fn with_entry(mut self, label: &str, color: &str, kind: LegendKind) -> Self {
        self.legend.push(LegendEntry {
            label: label.into(),
            color: color.into(),
            kind,
        });
        self
    }

    /// Adds a marker entry to the legend row under the panels (one legend for all panels).
    pub fn legend_marker(self, label: &str, color: &str, marker: Marker) -> Self {
        self.with_entry(label, color, LegendKind::Marker(marker))
    }

    /// Adds a line entry (dashed or solid) to the legend row under the panels.
    pub fn legend_line(self, label: &str, color: &str, dash: bool) -> Self {
        self.with_entry(label, color, LegendKind::Line(dash))
    }

    /// Adds a bar (filled square) entry to the legend row under the panels.
    pub fn legend_bar(self, label: &str, color: &str) -> Self {
        self.with_entry(label, color, LegendKind::Bar)
    }

    /// The legend row's entries placed left to right, wrapping at `width`: (entry, x, line).
    fn legend_layout(&self, width: f64) -> Vec<(&LegendEntry, f64, usize)> {
        let (mut x, mut line) = (24.0, 0);
        let mut out = Vec::new();
        for e in &self.legend {
            let w = 22.0 + 8.0 + 6.6 * e.label.chars().count() as f64 + 24.0;
            if x + w > width && x > 24.0 {
                x = 24.0;
                line += 1;
            }
            out.push((e, x, line));
            x += w;
        }
        out
    }

    /// Renders the grid: each column as wide as its widest panel, each row as tall as its
    /// tallest.
    pub fn render(&self) -> String {
        let cols = self.cols.min(self.panels.len()).max(1);
        let rows = self.panels.len().div_ceil(cols);
        let mut cw = vec![0.0f64; cols];
        let mut rh = vec![0.0f64; rows];
        for (i, p) in self.panels.iter().enumerate() {
            let (pw, ph) = p.size();
            cw[i % cols] = cw[i % cols].max(pw);
            rh[i / cols] = rh[i / cols].max(ph);
        }
        let top = if self.title.is_empty() { 0.0 } else { 34.0 };
        let w: f64 = cw.iter().sum();
        let legend = self.legend_layout(w);
        let legend_h = legend
            .last()
            .map_or(0.0, |&(_, _, l)| 10.0 + 20.0 * (l + 1) as f64);
        let panels_h = top + rh.iter().sum::<f64>();
        let h = panels_h + legend_h;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        if top > 0.0 {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="24" text-anchor="middle" font-size="17" font-weight="bold">{}</text>"#,
                w / 2.0,
                esc(&self.title)
            );
        }
        for (i, p) in self.panels.iter().enumerate() {
            let x: f64 = cw[..i % cols].iter().sum();
            let y = top + rh[..i / cols].iter().sum::<f64>();
            let _ = writeln!(s, r#"<g transform="translate({x} {y})">"#);
            p.body(&mut s, &format!("panel{i}"));
            s.push_str("</g>\n");
        }
        for (e, x, line) in legend {
            let cy = panels_h + 14.0 + 20.0 * line as f64;
            swatch(&mut s, e, x, cy);
            let _ = writeln!(
                s,
                r#"<text x="{:.2}" y="{:.2}">{}</text>"#,
                x + 28.0,
                cy + 4.0,
                esc(&e.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// Renders and writes the grid to `path`.
    ///
    /// # Errors
    /// [`FigureError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file(path, &self.render())
    }
}

/// A legend line segment, 22 px from `x0` at height `cy`, dashed or solid.
fn line_swatch(s: &mut String, dash: bool, color: &str, x0: f64, cy: f64) {
    let d = if dash {
        r#" stroke-dasharray="4 3""#
    } else {
        ""
    };
    let _ = writeln!(
        s,
        r#"<line x1="{x0:.2}" y1="{cy:.2}" x2="{:.2}" y2="{cy:.2}" stroke="{color}" stroke-width="2"{d}/>"#,
        x0 + 22.0
    );
}

/// A legend entry's swatch, 22 px wide from `x0`, centred on `cy`.
fn swatch(s: &mut String, e: &LegendEntry, x0: f64, cy: f64) {
    match e.kind {
        LegendKind::Line(dash) => line_swatch(s, dash, &e.color, x0, cy),
        LegendKind::Marker(m) => s.push_str(&marker_svg(m, x0 + 11.0, cy, 4.0, &e.color)),
        LegendKind::LineMarker(dash, m) => {
            line_swatch(s, dash, &e.color, x0, cy);
            s.push_str(&marker_svg(m, x0 + 11.0, cy, 3.5, &e.color));
        }
        LegendKind::Bar => {
            let _ = writeln!(
                s,
                r#"<rect x="{:.2}" y="{:.2}" width="12" height="12" fill="{}"/>"#,
                x0 + 5.0,
                cy - 6.0,
                e.color
            );
        }
        LegendKind::Band => {
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.2}" y="{:.2}" width="22" height="10" fill="{}" fill-opacity="0.25"/>"#,
                cy - 5.0,
                e.color
            );
        }
    }
}

/// The heat-map colour at `t` in `[0, 1]`: white to dark blue (ColorBrewer "Blues" ends).
fn heat_color(t: f64) -> String {
    let (a, b) = ([247.0, 251.0, 255.0], [8.0, 48.0, 107.0]);
    let c: Vec<u8> = (0..3)
        .map(|i| (a[i] + (b[i] - a[i]) * t).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn marker_svg(m: Marker, x: f64, y: f64, r: f64, color: &str) -> String {
    match m {
        Marker::Circle => {
            format!(
                r#"<circle cx="{x:.2}" cy="{y:.2}" r="{r}" fill="{color}" fill-opacity="0.85"/>"#
            ) + "\n"
        }
        Marker::Cross => {
            format!(
                r#"<path d="M{:.2},{:.2}L{:.2},{:.2}M{:.2},{:.2}L{:.2},{:.2}" stroke="{color}" stroke-width="2.5"/>"#,
                x - r * 1.5,
                y - r * 1.5,
                x + r * 1.5,
                y + r * 1.5,
                x - r * 1.5,
                y + r * 1.5,
                x + r * 1.5,
                y - r * 1.5
            ) + "\n"
        }
        Marker::Diamond => {
            format!(
                r#"<path d="M{x:.2},{:.2}L{:.2},{y:.2}L{x:.2},{:.2}L{:.2},{y:.2}Z" fill="{color}" stroke="black" stroke-width="0.8"/>"#,
                y - r * 1.6,
                x + r * 1.6,
                y + r * 1.6,
                x - r * 1.6
            ) + "\n"
        }
        Marker::Triangle => {
            format!(
                r#"<path d="M{x:.2},{:.2}L{:.2},{:.2}L{:.2},{:.2}Z" fill="{color}" stroke="black" stroke-width="0.6"/>"#,
                y - r * 1.5,
                x + r * 1.4,
                y + r * 1.0,
                x - r * 1.4,
                y + r * 1.0
            ) + "\n"
        }
        Marker::Square => {
            format!(
                r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{color}" stroke="black" stroke-width="0.6"/>"#,
                x - r * 1.1,
                y - r * 1.1,
                r * 2.2,
                r * 2.2
            ) + "\n"
        }
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn new(scale: Scale, (lo, hi): (f64, f64)) -> Self {
        match scale {
            Scale::Linear => Self { scale, lo, hi },
            Scale::Log => Self {
                scale,
                lo: lo.max(f64::MIN_POSITIVE).log10(),
                hi: hi.max(f64::MIN_POSITIVE).log10(),
            },
        }
    }

    fn frac(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        };
        (t - self.lo) / (self.hi - self.lo)
    }

    /// (value, label, is_major) ticks inside the range.
    fn ticks(&self) -> Vec<(f64, Option<String>, bool)> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step((self.hi - self.lo) / 6.0);
                let mut v = (self.lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + 1e-9 * step {
                    let label = fmt_linear(v, step);
                    out.push((v, Some(label), true));
                    v += step;
                }
                out
            }
            Scale::Log => {
                let span = self.hi - self.lo;
                let mut out = Vec::new();
                let (d0, d1) = (self.lo.floor() as i32, self.hi.ceil() as i32);
                let every = ((span / 8.0).ceil() as i32).max(1);
                for d in d0..=d1 {
                    for m in 1..10 {
                        let lv = d as f64 + (m as f64).log10();
                        if lv < self.lo - 1e-12 || lv > self.hi + 1e-12 {
                            continue;
                        }
                        let v = 10f64.powf(lv);
                        if m == 1 {
                            let label = (d.rem_euclid(every) == 0).then(|| fmt_pow10(d));
                            out.push((v, label, true));
                        } else if span < 1.2 && matches!(m, 2 | 5) {
                            out.push((v, Some(fmt_log_minor(v)), false));
                        } else if span < 4.0 {
                            out.push((v, None, false));
                        }
                    }
                }
                if out.iter().filter(|t| t.1.is_some()).count() < 2 {
                    // Under a decade with no 1/2/5 mark inside: evenly spaced values, labelled,
                    // at their log positions.
                    let (lo, hi) = (10f64.powf(self.lo), 10f64.powf(self.hi));
                    let ticks = nice_ticks(lo, hi, 4);
                    let step = ticks.get(1).map_or(hi - lo, |b| b - ticks[0]);
                    out.retain(|t| t.1.is_none());
                    out.extend(
                        ticks
                            .into_iter()
                            .filter(|&v| v > 0.0)
                            .map(|v| (v, Some(fmt_linear(v, step)), true)),
                    );
                }
                out
            }
        }
    }
}

/// "Nice" tick positions (multiples of 1, 2 or 5 × 10^k) covering `[lo, hi]`, about `target`
/// of them (for figures drawn by hand, such as a heat map's axes).
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || raw.is_infinite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let n = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    n * p
}

/// A tick label with as many digits as the tick step needs; values of a million or more, or
/// under a thousandth, in scientific form (`3.3e13`).
fn fmt_linear(v: f64, step: f64) -> String {
    let v = if v.abs() < 1e-12 * step { 0.0 } else { v };
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        let digits = (a.log10().floor() - step.log10().floor()).clamp(0.0, 6.0) as usize;
        let t = format!("{v:.digits$e}");
        return t;
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn fmt_pow10(d: i32) -> String {
    match d {
        0 => "1".into(),
        1 => "10".into(),
        _ => format!("1e{d}"),
    }
}

fn fmt_log_minor(v: f64) -> String {
    let e = v.log10().floor() as i32;
    let m = (v / 10f64.powi(e)).round();
    format!("{m}e{e}")
}

/// Approximate width of a 10-px label (SVG has no text metrics; 5.6 px a character).
fn label_width(t: &str) -> f64 {
    5.6 * t.chars().count() as f64
}

/// Labels whose points lie within 4 px of an earlier one's are joined to it
/// (`"a, b"`): coincident points (configurations with the same result) get one readable
/// label instead of text printed over text.
fn merge_coincident(at: &[(f64, f64, &str)]) -> Vec<(f64, f64, String)> {
    let mut out: Vec<(f64, f64, String)> = Vec::new();
    for &(x, y, t) in at {
        match out
            .iter_mut()
            .find(|(a, b, _)| (a - x).abs() <= 4.0 && (b - y).abs() <= 4.0)
        {
            Some((_, _, text)) => {
                text.push_str(", ");
                text.push_str(t);
            }
            None => out.push((x, y, t.to_string())),
        }
    }
    out
}

/// Where the label `t` of the point at pixel `(x, y)` goes: the first of twelve spots around
/// the point (up-right, down-right, up-left, down-left, then one line further out, then two
/// lines up) whose box overlaps no box in `taken` and stays inside `[left, right]` (the plot
/// frame's left edge, where the y tick labels end, and the panel's right edge) and above
/// `bottom` (the frame's lower edge, where the x tick labels begin); the first spot that fits
/// those edges if every one is taken. Returns the text's anchor point and `text-anchor`, and
/// adds its box to `taken`.
fn place_label(
    x: f64,
    y: f64,
    t: &str,
    [left, right, bottom]: [f64; 3],
    taken: &mut Vec<[f64; 4]>,
) -> (f64, f64, &'static str) {
    let wd = label_width(t);
    let spot = |dx: f64, dy: f64| -> (f64, f64, &'static str, [f64; 4]) {
        let (lx, ly) = (x + dx, y + dy);
        if dx > 0.0 {
            (lx, ly, "start", [lx, ly - 9.0, lx + wd, ly + 2.0])
        } else {
            (lx, ly, "end", [lx - wd, ly - 9.0, lx, ly + 2.0])
        }
    };
    let spots = [
        (5.0, -5.0),
        (5.0, 13.0),
        (-5.0, -5.0),
        (-5.0, 13.0),
        (5.0, -17.0),
        (5.0, 25.0),
        (-5.0, -17.0),
        (-5.0, 25.0),
        (5.0, -29.0),
        (-5.0, -29.0),
        (5.0, -41.0),
        (-5.0, -41.0),
    ];
    let fits = |b: &[f64; 4]| left <= b[0] && b[2] <= right && b[3] <= bottom;
    let free = |b: &[f64; 4]| {
        !taken
            .iter()
            .any(|o| b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3])
    };
    let candidates: Vec<_> = spots.iter().map(|&(dx, dy)| spot(dx, dy)).collect();
    let (lx, ly, anchor, bx) = candidates
        .iter()
        .find(|c| fits(&c.3) && free(&c.3))
        .or_else(|| candidates.iter().find(|c| fits(&c.3)))
        .copied()
        .unwrap_or(candidates[2]);
    taken.push(bx);
    (lx, ly, anchor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_item_kinds() {
        let mut p = Plot::new("t", "x", "y");
        p.x_scale = Scale::Log;
        p.line(&[1e18, 1e22], &[3.0, 2.0], color(0), "law")
            .band(
                &[1e18, 1e22],
                &[2.9, 1.9],
                &[3.1, 2.1],
                color(0),
                "95% band",
            )
            .markers(&[1e21], &[2.2], color(3), "held out", Marker::Diamond, 5.0)
            .hline(2.0, "#000", "floor")
            .vline(1e20, "#000", "");
        let s = p.render();
        assert!(s.contains("<polygon") && s.contains("<polyline") && s.contains("1e20"));
        assert!(s.contains("held out") && s.ends_with("</svg>\n"));
    }

    #[test]
    fn labels_shapes_outside_legend_and_grid() {
        let mut p = Plot::new("a < b", "x", "y");
        p.markers(&[1.0], &[1.0], color(0), "tri", Marker::Triangle, 4.0)
            .markers(&[2.0], &[2.0], color(1), "sq", Marker::Square, 4.0)
            .labels(&[1.0], &[1.0], &["gpt & co".into()], color(0));
        let inside = p.size().0;
        p.legend_pos = LegendPos::Outside;
        assert!(p.size().0 > inside, "the legend column widens the figure");
        let s = p.render();
        assert!(s.contains("a &lt; b") && s.contains("gpt &amp; co"));
        assert!(s.contains(r#"text-anchor="start">gpt &amp; co"#));
        let mut edge = Plot::new("edge", "x", "y");
        edge.points(&[0.0, 1.0], &[0.0, 1.0], color(0), "").labels(
            &[1.0],
            &[1.0],
            &["a long label at the right edge".into()],
            color(0),
        );
        assert!(edge.render().contains(r#"text-anchor="end">a long label"#));
        assert!(s.contains("<rect x=") && s.matches("<path d=").count() >= 2);
        let g = Grid::new("both", 2).with(p.clone()).with(p).render();
        assert!(g.contains(r#"clipPath id="panel0""#) && g.contains(r#"clipPath id="panel1""#));
        assert!(g.contains("translate(") && !g.contains(r#"url(#plot)"#));
    }

    /// The number in attribute `k` (e.g. `" x=\""`) of an SVG element's line.
    fn attr(line: &str, k: &str) -> f64 {
        let rest = &line[line.find(k).expect(k) + k.len()..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    }

    /// The box of the drawn label `t`, from its anchor, size and alignment.
    fn label_box(svg: &str, t: &str) -> [f64; 4] {
        let tag = svg
            .lines()
            .find(|l| l.ends_with(&format!(">{t}</text>")))
            .unwrap_or_else(|| panic!("label {t} drawn: {svg}"));
        let (lx, ly, wd) = (attr(tag, " x=\""), attr(tag, " y=\""), label_width(t));
        if tag.contains(r#"text-anchor="end""#) {
            [lx - wd, ly - 9.0, lx, ly + 2.0]
        } else {
            [lx, ly - 9.0, lx + wd, ly + 2.0]
        }
    }

    /// A plot of labelled points on `[0, 1] × [0, y_max]`, rendered.
    fn labelled(x: &[f64], y: &[f64], text: &[&str], y_max: f64) -> String {
        let mut p = Plot::new("t", "x", "y");
        p.x_range = Some((0.0, 1.0));
        p.y_range = Some((0.0, y_max));
        let text: Vec<String> = text.iter().map(|t| t.to_string()).collect();
        p.points(x, y, color(0), "").labels(x, y, &text, color(0));
        p.render()
    }

    #[test]
    fn coincident_labels_merge_and_near_ones_do_not_overlap() {
        // Three configurations with the same result, two more a hair apart.
        let s = labelled(
            &[0.5, 0.5, 0.5, 0.2, 0.21],
            &[0.5, 0.5, 0.5, 0.2, 0.2],
            &["c50_k10", "c100_k10", "c100_k5", "c20_k5", "c10_k10"],
            1.0,
        );
        assert!(s.contains(">c50_k10, c100_k10, c100_k5</text>"), "{s}");
        // The two near points' labels: boxes from the text's anchor, size and alignment.
        let boxes: Vec<[f64; 4]> = ["c20_k5", "c10_k10"]
            .iter()
            .map(|t| label_box(&s, t))
            .collect();
        let (a, b) = (boxes[0], boxes[1]);
        let overlap = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
        assert!(!overlap, "{a:?} overlaps {b:?}");
        // Without the placement, both would sit up and to the right of nearly the same spot.
        assert!(
            (a[1] - b[1]).abs() >= 11.0 || (a[0] - b[0]).abs() >= label_width("c20_k5"),
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn labels_of_points_on_the_bottom_frame_stay_inside_it() {
        // An all-zero accuracy curve: every point on the frame's lower edge, where the x-axis
        // tick labels are drawn; no label may go below it or left of the frame (the y tick
        // labels), and crowded labels stack upwards without overlapping.
        // A label beside the corner point first, so the corner's own label must not go left.
        let text = [
            "c10_k2", "small", "c20_k2", "c50_k2", "c100_k2", "c100_k5", "oracle",
        ];
        let s = labelled(
            &[0.02, 0.0, 0.1, 0.12, 0.4, 0.41, 1.0],
            &[0.0; 7],
            &text,
            0.05,
        );
        // The marker furthest left is the point at (0, 0): the frame's lower-left corner.
        let (frame_left, frame_bottom) = s
            .lines()
            .filter(|l| l.starts_with("<circle"))
            .map(|l| (attr(l, " cx=\""), attr(l, " cy=\"")))
            .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a });
        let boxes: Vec<[f64; 4]> = text
            .iter()
            .map(|t| {
                let b = label_box(&s, t);
                assert!(b[3] <= frame_bottom, "{t}: {b:?} below {frame_bottom}");
                assert!(b[0] >= frame_left, "{t}: {b:?} left of {frame_left}");
                b
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for (b, t) in boxes[i + 1..].iter().zip(&text[i + 1..]) {
                let overlap = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
                assert!(!overlap, "{}: {a:?} overlaps {t}: {b:?}", text[i]);
            }
        }
    }

    #[test]
    fn bars_heat_map_categories_and_grid_legend() {
        let mut b = Plot::new("bars", "", "k");
        b.x_categories = vec!["top-k 8 experts".into(), "BH α=0.30 max 64".into()];
        b.bars(&[0.0, 1.0], &[0.0, 0.0], &[8.0, 3.5], 0.7, color(0), "k̄");
        assert!(
            !b.render().contains("rotate(-40)"),
            "names that fit stay level"
        );
        b.width = 260.0;
        let s = b.render();
        assert_eq!(
            s.matches(r#"width="12" height="12""#).count(),
            1,
            "one bar swatch"
        );
        assert!(s.contains("rotate(-40)"), "long category names are slanted");
        assert!(s.contains("BH α=0.30 max 64") && !s.contains(">0.5<"));
        let mut h = Plot::new("heat", "α", "max_k");
        h.heat_map(
            &["0.3".into(), "0.4".into()],
            &["8".into(), "64".into()],
            &[vec![Some(0.0), None], vec![Some(0.5), Some(1.0)]],
            &[
                vec!["lo".into(), "x".into()],
                vec!["mid".into(), "hi".into()],
            ],
            (0.0, 1.0),
        );
        let s = h.render();
        assert!(s.contains("#f7fbff") && s.contains("#08306b"), "range ends");
        assert!(s.contains(">lo<") && s.contains(">hi<") && !s.contains(">x<"));
        assert!(
            s.contains(r#"fill="white">hi<"#),
            "light text on dark cells"
        );
        let g = Grid::new("g", 2)
            .with(b)
            .with(h)
            .legend_marker("BH", color(1), Marker::Circle)
            .legend_line("top-k", "#333", true)
            .legend_bar("share", color(2))
            .render();
        assert!(g.contains(">BH<") && g.contains(">top-k<") && g.contains(">share<"));
    }

    #[test]
    fn save_names_the_file() {
        let err = Plot::new("t", "x", "y")
            .save(Path::new("/nonexistent-dir/f.svg"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/f.svg"));
    }

    #[test]
    fn ticks_are_nice() {
        let t = nice_ticks(0.0, 1.0, 5);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        assert!(nice_ticks(1.0, 1.0, 5).is_empty());
    }

    #[test]
    fn narrow_log_axis_gets_labels() {
        let a = Axis::new(Scale::Log, (251.0, 268.0));
        let labels: Vec<String> = a.ticks().into_iter().filter_map(|t| t.1).collect();
        assert!(labels.len() >= 2, "{labels:?}");
        assert!(
            labels
                .iter()
                .all(|l| l.parse::<f64>().is_ok_and(|v| (251.0..=268.0).contains(&v)))
        );
        // A wide axis keeps its decade labels.
        let wide = Axis::new(Scale::Log, (1.0, 1e4));
        assert!(wide.ticks().iter().any(|t| t.1.as_deref() == Some("1e3")));
    }

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(fmt_linear(3.3e13, 1e12), "3.3e13");
        assert_eq!(fmt_linear(2.5e-5, 5e-6), "2.5e-5");
        assert_eq!(fmt_linear(0.25, 0.05), "0.25");
        assert_eq!(fmt_linear(1500.0, 500.0), "1500");
        assert_eq!(fmt_linear(0.0, 1e12), "0");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.13), 0.1);
        assert_eq!(nice_step(0.3), 0.2);
        assert_eq!(nice_step(4.0), 5.0);
    }
}
