//! Counters behind `/metrics`, in Prometheus' text exposition format (version 0.0.4).
//!
//! Per model: requests by outcome (`ok`, `error`, `rejected`, `cancelled`), prompt and completion tokens,
//! FLOPs and dollars spent ([`routing_core::cost`]), routing decisions (`router-mf-*`: which
//! backend answered), oracle calls and tokens (`guided-*`), and a latency histogram; per
//! server: requests in flight and HTTP errors by status and type. Models asked for by a
//! dynamic name (`router-mf-0.37`) are counted under their family (`router-mf-*`), so a client
//! cannot grow the label set without bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::api::GenOutput;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered.
    Ok,
    /// The backend failed.
    Error,
    /// The backend refused the request as the client's fault (a prompt longer than the
    /// model's context, …): a 400, not a backend failure.
    Rejected,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct ModelStats {
    outcomes: BTreeMap<Outcome, u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    flops: f64,
    dollars: f64,
    routed: BTreeMap<String, u64>,
    oracle_calls: u64,
    oracle_tokens: u64,
    buckets: [u64; LATENCY_BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    models: Mutex<BTreeMap<String, ModelStats>>,
    http_errors: Mutex<BTreeMap<(u16, &'static str), u64>>,
    in_flight: AtomicI64,
}

/// Escapes a label value (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Requests in flight now.
    pub fn in_flight_now(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records a finished request of `model` (its metrics key).
    pub fn record(
        &self,
        model: &str,
        outcome: Outcome,
        out: Option<&GenOutput>,
        latency: Duration,
    ) {
        let mut models = self
            .models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = models.entry(model.to_string()).or_default();
        *s.outcomes.entry(outcome).or_default() += 1;
        if let Some(o) = out {
            s.prompt_tokens += o.prompt_tokens as u64;
            s.completion_tokens += o.completion_tokens as u64;
            s.flops += o.cost.flops.unwrap_or(0.0);
            s.dollars += o.cost.dollars;
            if let Some(r) = &o.routed_to {
                *s.routed.entry(r.clone()).or_default() += 1;
            }
            if let Some((calls, tokens)) = o.oracle {
                s.oracle_calls += calls as u64;
                s.oracle_tokens += tokens as u64;
            }
        }
        let secs = latency.as_secs_f64();
        for (b, &le) in s.buckets.iter_mut().zip(&LATENCY_BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        s.latency_sum += secs;
        s.latency_count += 1;
    }

    /// Records an error answer.
    pub fn record_http_error(&self, status: u16, kind: &'static str) {
        let mut e = self
            .http_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *e.entry((status, kind)).or_default() += 1;
    }

    /// Requests of `model` that ended with `outcome` (for tests and status pages).
    pub fn count(&self, model: &str, outcome: Outcome) -> u64 {
        let models = self
            .models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        models
            .get(model)
            .and_then(|s| s.outcomes.get(&outcome).copied())
            .unwrap_or(0)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let models = self
            .models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let per = |f: &dyn Fn(&ModelStats) -> String| -> Vec<(String, String)> {
            models
                .iter()
                .map(|(m, s)| (format!("model=\"{}\"", label(m)), f(s)))
                .collect()
        };
        family(
            "llm_requests_total",
            "counter",
            "Requests answered, by model and outcome.",
            models
                .iter()
                .flat_map(|(m, s)| {
                    s.outcomes.iter().map(move |(o, n)| {
                        (
                            format!("model=\"{}\",outcome=\"{}\"", label(m), o.as_str()),
                            n.to_string(),
                        )
                    })
                })
                .collect(),
        );
        family(
            "llm_prompt_tokens_total",
            "counter",
            "Prompt tokens read.",
            per(&|s| s.prompt_tokens.to_string()),
        );
        family(
            "llm_completion_tokens_total",
            "counter",
            "Completion tokens written.",
            per(&|s| s.completion_tokens.to_string()),
        );
        family(
            "llm_flops_total",
            "counter",
            "Compute spent: 2 x active parameters x tokens, summed over the models that ran.",
            per(&|s| format!("{:e}", s.flops)),
        );
        family(
            "llm_dollars_total",
            "counter",
            "Money spent at the configured per-million-token prices.",
            per(&|s| format!("{}", s.dollars)),
        );
        family(
            "llm_routed_total",
            "counter",
            "Query-routing decisions: the backend a router-mf model sent requests to.",
            models
                .iter()
                .flat_map(|(m, s)| {
                    s.routed.iter().map(move |(t, n)| {
                        (
                            format!("model=\"{}\",target=\"{}\"", label(m), label(t)),
                            n.to_string(),
                        )
                    })
                })
                .collect(),
        );
        family(
            "llm_oracle_calls_total",
            "counter",
            "Oracle calls of guided models.",
            per(&|s| s.oracle_calls.to_string()),
        );
        family(
            "llm_oracle_tokens_total",
            "counter",
            "Tokens the oracle wrote for guided models.",
            per(&|s| s.oracle_tokens.to_string()),
        );
        let mut hist = Vec::new();
        for (m, s) in &models {
            for (&le, &n) in LATENCY_BUCKETS.iter().zip(&s.buckets) {
                hist.push((format!("model=\"{}\",le=\"{le}\"", label(m)), n.to_string()));
            }
            hist.push((
                format!("model=\"{}\",le=\"+Inf\"", label(m)),
                s.latency_count.to_string(),
            ));
        }
        let _ = writeln!(
            out,
            "# HELP llm_request_duration_seconds Request latency, first byte of the request to last byte of the answer.\n# TYPE llm_request_duration_seconds histogram"
        );
        for (labels, v) in hist {
            let _ = writeln!(out, "llm_request_duration_seconds_bucket{{{labels}}} {v}");
        }
        for (m, s) in &models {
            let _ = writeln!(
                out,
                "llm_request_duration_seconds_sum{{model=\"{}\"}} {}",
                label(m),
                s.latency_sum
            );
            let _ = writeln!(
                out,
                "llm_request_duration_seconds_count{{model=\"{}\"}} {}",
                label(m),
                s.latency_count
            );
        }
        let _ = writeln!(
            out,
            "# HELP llm_requests_in_flight Requests being answered now.\n# TYPE llm_requests_in_flight gauge\nllm_requests_in_flight {}",
            self.in_flight_now()
        );
        let errors = self
            .http_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let _ = writeln!(
            out,
            "# HELP llm_http_errors_total Error answers, by HTTP status and error type.\n# TYPE llm_http_errors_total counter"
        );
        for ((status, kind), n) in errors {
            let _ = writeln!(
                out,
                "llm_http_errors_total{{status=\"{status}\",type=\"{kind}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Cost, FinishReason};

    #[test]
    fn exposition_counts_tokens_costs_routes_and_latency() {
        let m = Metrics::default();
        let out = GenOutput {
            text: "x".into(),
            prompt_tokens: 3,
            completion_tokens: 2,
            finish: FinishReason::Stop,
            cost: Cost {
                flops: Some(1e9),
                dollars: 0.5,
            },
            routed_to: Some("big".into()),
            router_score: Some(0.7),
            oracle: None,
        };
        m.record(
            "router-mf-*",
            Outcome::Ok,
            Some(&out),
            Duration::from_millis(30),
        );
        m.record(
            "router-mf-*",
            Outcome::Ok,
            Some(&out),
            Duration::from_secs(2),
        );
        m.record_http_error(404, "invalid_request_error");
        let text = m.render();
        assert!(
            text.contains("llm_requests_total{model=\"router-mf-*\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("llm_prompt_tokens_total{model=\"router-mf-*\"} 6"));
        assert!(text.contains("llm_flops_total{model=\"router-mf-*\"} 2e9"));
        assert!(text.contains("llm_dollars_total{model=\"router-mf-*\"} 1"));
        assert!(text.contains("llm_routed_total{model=\"router-mf-*\",target=\"big\"} 2"));
        assert!(
            text.contains(
                "llm_request_duration_seconds_bucket{model=\"router-mf-*\",le=\"0.05\"} 1"
            )
        );
        assert!(
            text.contains(
                "llm_request_duration_seconds_bucket{model=\"router-mf-*\",le=\"+Inf\"} 2"
            )
        );
        assert!(
            text.contains("llm_http_errors_total{status=\"404\",type=\"invalid_request_error\"} 1")
        );
        assert_eq!(m.count("router-mf-*", Outcome::Ok), 2);
        let _g = m.in_flight();
        assert_eq!(m.in_flight_now(), 1);
    }
}
