//! The seed's meta-analysis: on items the small model gets wrong and the oracle right, where
//! does the small model first write a token the oracle would not have written, and was the
//! small model uncertain there?
//!
//! For every step `p` of the small model's own (greedy) completion, the oracle is asked for
//! one greedy token after `prompt + completion[..p]` (teacher forcing on the small model's
//! path). With a shared tokenizer the label "the oracle would pick a different token" is id
//! inequality; across tokenizers it is text disagreement — neither token's text is a prefix
//! of the other's (`" 12"` and `" 1"` agree: a coarser tokenizer may take more characters in
//! one token); a step whose small-model token adds no text of its own (part of a multi-byte
//! character) gets no label. The first disagreeing step is the first divergence. Each signal's
//! AUROC for the label is measured over every labelled step of these items (entropy: higher =
//! more likely to differ; max probability: lower = more likely).

use std::path::Path;

use evals::harness::Item;
use evals::harness::metrics::auroc;
use lm::LanguageModel;
use serde::{Deserialize, Serialize};

use super::config::HelpConfig;
use super::log::ItemRecord;
use super::{Models, StudyOptions};
use crate::error::Result;

/// The labels of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaItem {
    /// Item index.
    pub idx: usize,
    /// Per small-model step: `Some(true)` when the oracle would write a different token,
    /// `None` when the step has no text of its own.
    pub differs: Vec<Option<bool>>,
    /// The first step labelled `Some(true)`.
    pub first_divergence: Option<usize>,
}

/// A histogram over fixed bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin lower edges (the last bin is open above).
    pub edges: Vec<f64>,
    /// Share of the values in each bin.
    pub at_divergence: Vec<f64>,
    /// The same for every other labelled step.
    pub elsewhere: Vec<f64>,
}

/// The meta-analysis of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaSummary {
    /// Items the small model gets wrong and the oracle right.
    pub items: usize,
    /// Of those, items with a divergence.
    pub diverging: usize,
    /// Labelled steps (all items).
    pub labelled_steps: usize,
    /// Share of labelled steps where the oracle would pick a different token.
    pub differ_rate: f64,
    /// Mean step of the first divergence (0 when no item diverges).
    pub first_divergence_mean: f64,
    /// Median step of the first divergence (`None` when no item diverges).
    pub first_divergence_median: Option<f64>,
    /// Mean first-divergence step as a share of the completion length.
    pub first_divergence_relative: f64,
    /// Mean entropy at the first divergence / at every other labelled step.
    pub entropy_at_divergence: f64,
    /// Mean entropy elsewhere.
    pub entropy_elsewhere: f64,
    /// Mean max probability at the first divergence.
    pub max_prob_at_divergence: f64,
    /// Mean max probability elsewhere.
    pub max_prob_elsewhere: f64,
    /// AUROC of entropy for "the oracle would pick a different token".
    pub auroc_entropy: Option<f64>,
    /// AUROC of `1 − max probability` for the same label.
    pub auroc_max_prob: Option<f64>,
    /// Entropy histograms (nats).
    pub entropy_hist: Histogram,
    /// Max-probability histograms.
    pub max_prob_hist: Histogram,
}

fn histogram(edges: &[f64], at: &[f64], rest: &[f64]) -> Histogram {
    let share = |v: &[f64]| -> Vec<f64> {
        let mut counts = vec![0.0; edges.len()];
        for &x in v {
            let b = edges.iter().rposition(|&e| x >= e).unwrap_or(0);
            counts[b] += 1.0;
        }
        let n = v.len().max(1) as f64;
        counts.iter().map(|c| c / n).collect()
    };
    Histogram {
        edges: edges.to_vec(),
        at_divergence: share(at),
        elsewhere: share(rest),
    }
}

/// Labels one item (see the module docs).
fn label_item<S: LanguageModel, O: LanguageModel>(
    models: &Models<'_, S, O>,
    oracle: &mut dyn crate::oracle::Oracle,
    prompt: &str,
    shared_prefix: Option<&str>,
    small: &ItemRecord,
) -> Result<Vec<Option<bool>>> {
    let m = models.small;
    let prompt_ids = m.encode_prompt(prompt)?;
    let tokens: Vec<u32> = small.steps.iter().map(|s| s.1).collect();
    let stops = m.stop_tokens();
    let prompt_text = m.decode(&prompt_ids)?;
    let text_of = |n: usize| -> Result<String> {
        let mut ids = prompt_ids.clone();
        ids.extend(&tokens[..n]);
        let full = m.decode(&ids)?;
        Ok(full
            .strip_prefix(prompt_text.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| full.clone()))
    };
    oracle.start_item(shared_prefix)?;
    let mut out = Vec::with_capacity(tokens.len());
    let mut before = String::new();
    for p in 0..tokens.len() {
        let label = if models.shared_vocabulary {
            let mut ctx = prompt_ids.clone();
            ctx.extend(&tokens[..p]);
            let reply = oracle.continue_ids(&ctx, 1)?;
            Some(reply.tokens.first() != Some(&tokens[p]))
        } else {
            let after = if stops.contains(&tokens[p]) {
                before.clone()
            } else {
                text_of(p + 1)?
            };
            let own = after
                .strip_prefix(before.as_str())
                .unwrap_or("")
                .to_string();
            let reply = oracle.continue_text(prompt, &before, 1)?;
            let label = if stops.contains(&tokens[p]) {
                // The small model stops: the oracle agrees when it stops too.
                Some(!reply.stopped)
            } else if own.is_empty() {
                None
            } else if reply.text.is_empty() {
                Some(true)
            } else {
                Some(!(reply.text.starts_with(&own) || own.starts_with(&reply.text)))
            };
            before = after;
            label
        };
        out.push(label);
    }
    Ok(out)
}

/// The small model's records of the items it gets wrong and the oracle gets right: the
/// meta-analysis's subjects.
pub(crate) fn subjects<'a>(
    small: &'a [ItemRecord],
    oracle: &[ItemRecord],
) -> impl Iterator<Item = &'a ItemRecord> {
    let oracle_right: std::collections::BTreeSet<usize> = oracle
        .iter()
        .filter(|r| r.correct > 0.0)
        .map(|r| r.idx)
        .collect();
    small
        .iter()
        .filter(move |r| r.correct == 0.0 && oracle_right.contains(&r.idx))
}

/// Runs (or resumes) the meta-analysis of one task and summarises it; `None` when the small
/// or oracle runs are not in the configuration list or no item qualifies.
pub(crate) fn run_meta<S: LanguageModel, O: LanguageModel>(
    models: &Models<'_, S, O>,
    items: &[Item],
    per_config: &[(HelpConfig, Vec<ItemRecord>)],
    dir: &Path,
    opts: &StudyOptions,
) -> Result<Option<MetaSummary>> {
    let find = |c: HelpConfig| per_config.iter().find(|(k, _)| *k == c).map(|(_, r)| r);
    let (Some(small), Some(oracle)) = (find(HelpConfig::Small), find(HelpConfig::Oracle)) else {
        return Ok(None);
    };
    let targets: Vec<&ItemRecord> = subjects(small, oracle)
        .filter(|r| !r.steps.is_empty())
        .collect();
    if targets.is_empty() {
        return Ok(None);
    }
    // Resume from the log.
    let path = dir.join("meta.jsonl");
    // An item whose labels do not fit its current record (a log from another run) is
    // labelled again.
    let steps_of: std::collections::BTreeMap<usize, usize> =
        targets.iter().map(|r| (r.idx, r.steps.len())).collect();
    let mut done: std::collections::BTreeMap<usize, MetaItem> = Default::default();
    for (_, m) in super::log::read_appended::<MetaItem>(&path)? {
        if steps_of.get(&m.idx) == Some(&m.differs.len()) {
            done.insert(m.idx, m);
        }
    }
    let mut oracle_box = models.oracle()?;
    let mut bar = datasets::progress::Progress::new(
        "meta-analysis",
        targets
            .iter()
            .filter(|r| !done.contains_key(&r.idx))
            .count(),
        opts.progress,
    );
    for rec in &targets {
        if done.contains_key(&rec.idx) || opts.report_only {
            continue;
        }
        let item = items
            .iter()
            .find(|it| it.idx == rec.idx)
            .expect("record of a run item");
        let spec = item
            .generation_spec(Some(opts.math_max_tokens))
            .expect("a generation item");
        let differs = label_item(
            models,
            &mut *oracle_box,
            spec.prompt,
            item.shared_prefix.as_deref(),
            rec,
        )?;
        let first_divergence = differs.iter().position(|d| *d == Some(true));
        let m = MetaItem {
            idx: rec.idx,
            differs,
            first_divergence,
        };
        super::log::append_line(&path, &m)?;
        done.insert(m.idx, m);
        bar.advance(1);
    }
    bar.finish();

    let (mut firsts, mut rel) = (Vec::new(), Vec::new());
    let (mut ent_at, mut ent_else, mut mp_at, mut mp_else) = (vec![], vec![], vec![], vec![]);
    let (mut scores_h, mut scores_p, mut labels) = (vec![], vec![], vec![]);
    let targets: Vec<&ItemRecord> = targets
        .into_iter()
        .filter(|r| done.contains_key(&r.idx))
        .collect();
    if targets.is_empty() {
        return Ok(None);
    }
    for rec in &targets {
        let m = &done[&rec.idx];
        for (p, d) in m.differs.iter().enumerate() {
            let Some(d) = *d else { continue };
            let (_, _, h, pmax) = rec.steps[p];
            scores_h.push(f64::from(h));
            scores_p.push(1.0 - f64::from(pmax));
            labels.push(d);
            if Some(p) == m.first_divergence {
                ent_at.push(f64::from(h));
                mp_at.push(f64::from(pmax));
            } else {
                ent_else.push(f64::from(h));
                mp_else.push(f64::from(pmax));
            }
        }
        if let Some(f) = m.first_divergence {
            firsts.push(f as f64);
            rel.push(f as f64 / rec.steps.len().max(1) as f64);
        }
    }
    let mean = evals::harness::metrics::mean;
    let mut sorted = firsts.clone();
    sorted.sort_by(f64::total_cmp);
    let median = match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    };
    let differ = labels.iter().filter(|&&l| l).count();
    let ent_edges: Vec<f64> = (0..12).map(|i| f64::from(i) * 0.5).collect();
    let mp_edges: Vec<f64> = (0..10).map(|i| f64::from(i) * 0.1).collect();
    Ok(Some(MetaSummary {
        items: targets.len(),
        diverging: firsts.len(),
        labelled_steps: labels.len(),
        differ_rate: differ as f64 / labels.len().max(1) as f64,
        first_divergence_mean: mean(&firsts),
        first_divergence_median: median,
        first_divergence_relative: mean(&rel),
        entropy_at_divergence: mean(&ent_at),
        entropy_elsewhere: mean(&ent_else),
        max_prob_at_divergence: mean(&mp_at),
        max_prob_elsewhere: mean(&mp_else),
        auroc_entropy: auroc(&scores_h, &labels),
        auroc_max_prob: auroc(&scores_p, &labels),
        entropy_hist: histogram(&ent_edges, &ent_at, &ent_else),
        max_prob_hist: histogram(&mp_edges, &mp_at, &mp_else),
    }))
}
