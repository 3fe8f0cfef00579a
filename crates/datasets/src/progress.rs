//! Progress of long loops on stderr: an [`indicatif`] bar on a terminal, plain log lines
//! elsewhere.
//!
//! Shared by every long loop of the workspace (the benchmark harness, the embedding cache, the
//! guided-decoding and bh-moe studies), so that they all report progress the same way:
//!
//! * **stderr is a terminal**: an `indicatif` bar redrawn in place (label, bar, done/total,
//!   items/s, ETA, elapsed), sized to the terminal and rate-limited by indicatif;
//! * **stderr is a file or a pipe** (`nohup`, CI logs, `2> run.log`): one plain line at each
//!   10% of the work and at least every 60 s, then a last line at the end — no carriage
//!   returns or escape codes in the log, and a log stays a few lines long however long the run.
//!
//! ```
//! use datasets::progress::Progress;
//! let mut p = Progress::new("items", 4, false); // disabled: every call is a no-op
//! p.advance(3);
//! assert_eq!(p.done(), 3);
//! assert!(p.line().starts_with("items [##################------] 3/4"));
//! p.finish();
//! ```

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain (non-terminal) progress line is written at least.
const PLAIN_EVERY: Duration = Duration::from_secs(60);

/// Where a progress report goes.
#[derive(Debug)]
enum Sink {
    /// Nothing is drawn.
    Off,
    /// An indicatif bar on the terminal.
    Bar(ProgressBar),
    /// Plain lines: the last tenth reported, when the last line was written, lines written.
    Lines {
        tenth: usize,
        last: Instant,
        written: usize,
    },
}

/// Progress of one task: an indicatif bar on a terminal, plain lines in a log.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    start: Instant,
    sink: Sink,
}

impl Progress {
    /// A bar for `total` items; `enabled = false` makes every call a no-op (the counters still
    /// count). Whether stderr is a terminal picks the bar or the plain lines.
    pub fn new(label: impl Into<String>, total: usize, enabled: bool) -> Self {
        let sink = if !enabled {
            Sink::Off
        } else if std::io::stderr().is_terminal() {
            Sink::Bar(terminal_bar(total, ProgressDrawTarget::stderr()))
        } else {
            Sink::Lines {
                tenth: 0,
                last: Instant::now(),
                written: 0,
            }
        };
        let label = label.into();
        if let Sink::Bar(b) = &sink {
            b.set_prefix(label.clone());
        }
        Self {
            label,
            total,
            done: 0,
            start: Instant::now(),
            sink,
        }
    }

    /// Items done so far.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Items per second since the start.
    pub fn rate(&self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        if s > 0.0 { self.done as f64 / s } else { 0.0 }
    }

    /// Marks `n` more items done and reports (the bar redraws; a plain line is written when a
    /// new tenth of the work is crossed or a minute has passed).
    pub fn advance(&mut self, n: usize) {
        self.done += n;
        match &mut self.sink {
            Sink::Off => {}
            Sink::Bar(b) => b.inc(n as u64),
            Sink::Lines {
                tenth,
                last,
                written,
            } => {
                let now = (self.done * 10).checked_div(self.total).unwrap_or(10);
                if now > *tenth || last.elapsed() >= PLAIN_EVERY {
                    *tenth = now.max(*tenth);
                    *last = Instant::now();
                    *written += 1;
                } else {
                    return;
                }
                let line = self.line();
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// The progress as text, e.g. `hellaswag [############------------] 50/100 2.31 it/s ETA
    /// 0:21 elapsed 0:21` (the form of the plain log lines).
    pub fn line(&self) -> String {
        let width = 24;
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        let rate = self.rate();
        let eta = if rate > 0.0 {
            format_secs(self.total.saturating_sub(self.done) as f64 / rate)
        } else {
            "?".into()
        };
        format!(
            "{} [{}{}] {}/{} {:.2} it/s ETA {} elapsed {}",
            self.label,
            "#".repeat(filled.min(width)),
            "-".repeat(width - filled.min(width)),
            self.done,
            self.total,
            rate,
            eta,
            format_secs(self.start.elapsed().as_secs_f64())
        )
    }

    /// Ends the report: the bar stays on screen at its final state; in a log, a last line is
    /// written unless the last one already showed the end.
    pub fn finish(&mut self) {
        let line = self.line();
        match &mut self.sink {
            Sink::Off => {}
            Sink::Bar(b) => {
                // indicatif leaves the cursor after the finished bar: end its line so that
                // what is printed next starts on its own.
                b.finish();
                let _ = writeln!(std::io::stderr().lock());
            }
            Sink::Lines { tenth, written, .. } => {
                if *tenth < 10 || self.done < self.total {
                    *written += 1;
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
                *tenth = 10;
            }
        }
    }
}

/// The terminal bar's look: the label, a 24-cell bar, done/total, rate, ETA and elapsed time,
/// the fields of [`Progress::line`].
fn terminal_bar(total: usize, target: ProgressDrawTarget) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:24}] {pos}/{len} {rate} ETA {eta} elapsed {elapsed}",
    )
    .expect("the template is a constant checked by a test")
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.2} it/s", state.per_sec());
        },
    )
    .progress_chars("#>-");
    ProgressBar::with_draw_target(Some(total as u64), target).with_style(style)
}

/// `h:mm:ss` or `m:ss`.
pub fn format_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_time_format() {
        let mut p = Progress::new("t", 4, false);
        p.advance(2);
        assert!(p.line().starts_with("t [############------------] 2/4"));
        assert_eq!(format_secs(3725.0), "1:02:05");
        assert_eq!(format_secs(65.0), "1:05");
    }

    #[test]
    fn terminal_bar_template_renders() {
        // A hidden target still runs the template, so a bad template would fail here.
        let b = terminal_bar(10, ProgressDrawTarget::hidden());
        b.set_prefix("x");
        b.inc(3);
        assert_eq!(b.position(), 3);
        assert_eq!(b.length(), Some(10));
        b.finish();
    }

    #[test]
    fn plain_lines_every_tenth() {
        // In tests stderr is captured (not a terminal): the plain-line sink.
        let mut p = Progress::new("t", 100, true);
        if std::io::stderr().is_terminal() {
            return; // run by hand in a terminal: the bar is drawn instead
        }
        for _ in 0..100 {
            p.advance(1);
        }
        // One line per tenth, none extra at the end.
        assert!(matches!(
            p.sink,
            Sink::Lines {
                tenth: 10,
                written: 10,
                ..
            }
        ));
        p.finish();
        assert!(matches!(p.sink, Sink::Lines { written: 10, .. }));
        // Stopped early: finish writes the last state.
        let mut q = Progress::new("q", 100, true);
        q.advance(15);
        q.finish();
        assert!(matches!(
            q.sink,
            Sink::Lines {
                tenth: 10,
                written: 2,
                ..
            }
        ));
    }
}
