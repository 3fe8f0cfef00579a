//! Metrics with lm-eval's definitions (`lm_eval/api/metrics.py`, `lm_eval/api/task.py`).

use lm::ContinuationScore;

use super::multiple_choice::McItem;

/// Index of the largest value, the lowest index on ties (numpy `argmax`). `0` when empty.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Best minus second-best value (`0` with fewer than two values).
pub fn margin(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s[0] - s[1]
}

/// The scored multiple-choice item (lm-eval `process_results` for `multiple_choice`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct McScore {
    /// Log-likelihood of each choice.
    pub loglik: Vec<f64>,
    /// Whether each choice is the greedy continuation.
    pub is_greedy: Vec<bool>,
    /// Length of each choice in Unicode code points (`completion_len`).
    pub char_len: Vec<usize>,
    /// `argmax(loglik)`.
    pub pred_acc: usize,
    /// `argmax(loglik / char_len)`.
    pub pred_acc_norm: usize,
    /// `pred_acc == gold`.
    pub acc: bool,
    /// `pred_acc_norm == gold`.
    pub acc_norm: bool,
}

/// Scores an item from its choices' [`ContinuationScore`]s (in choice order).
pub fn score_multiple_choice(item: &McItem, scores: &[ContinuationScore]) -> McScore {
    let loglik: Vec<f64> = scores.iter().map(|s| s.logprob).collect();
    let char_len: Vec<usize> = item.choices.iter().map(|c| c.chars().count()).collect();
    let per_char: Vec<f64> = loglik
        .iter()
        .zip(&char_len)
        .map(|(l, &n)| l / n.max(1) as f64)
        .collect();
    let pred_acc = argmax(&loglik);
    let pred_acc_norm = argmax(&per_char);
    McScore {
        is_greedy: scores.iter().map(|s| s.is_greedy).collect(),
        acc: pred_acc == item.gold,
        acc_norm: pred_acc_norm == item.gold,
        loglik,
        char_len,
        pred_acc,
        pred_acc_norm,
    }
}

/// Arithmetic mean (`0` for an empty slice).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Standard error of the mean with the sample standard deviation (lm-eval `mean_stderr`:
/// `sample_stddev(arr) / sqrt(len(arr))`). `0` with fewer than two values.
pub fn mean_stderr(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 2 {
        return 0.0;
    }
    let m = mean(v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

/// lm-eval `perplexity`: `exp(-mean(loglik))` over items.
pub fn perplexity(logliks: &[f64]) -> f64 {
    (-mean(logliks)).exp()
}

/// lm-eval `weighted_perplexity`: `exp(-Σ loglik / Σ weight)` (weights = words or bytes).
pub fn weighted_perplexity(loglik_sum: f64, weight_sum: f64) -> f64 {
    (-loglik_sum / weight_sum).exp()
}

/// lm-eval `bits_per_byte`: `-(Σ loglik / Σ bytes) / ln 2`.
pub fn bits_per_byte(loglik_sum: f64, bytes: f64) -> f64 {
    -(loglik_sum / bytes) / std::f64::consts::LN_2
}

/// Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001
/// recommend it over the normal approximation for small `n` and extreme rates): the 95%
/// interval with `z = 1.959964`. `(0, 1)` for `n = 0`.
pub fn wilson_interval(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Area under the ROC curve of `scores` for the binary `labels` (higher score = positive):
/// the Mann–Whitney probability that a random positive outscores a random negative, ties
/// counted one half (Hanley & McNeil 1982; `sklearn.metrics.roc_auc_score`). `None` when
/// either class is empty or a score is not finite.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mid-ranks (1-based) over tie groups, summed over the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Brown, Cai & DasGupta (2001) style check: 0/10 → [0, 0.2775]; 5/10 → [0.2366, 0.7634].
        let (lo, hi) = wilson_interval(0, 10);
        assert!(lo.abs() < 1e-12 && (hi - 0.277_5).abs() < 1e-4, "{lo} {hi}");
        let (lo, hi) = wilson_interval(5, 10);
        assert!(
            (lo - 0.236_6).abs() < 1e-4 && (hi - 0.763_4).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn auroc_counts_pairs_and_ties() {
        // Perfect separation, reversed, and sklearn's example (0.75).
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(
            auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        // All tied: one half.
        assert_eq!(auroc(&[1.0, 1.0, 1.0], &[true, false, true]), Some(0.5));
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auroc(&[f64::NAN, 2.0], &[true, false]), None);
    }

    #[test]
    fn acc_norm_uses_code_points_and_ties_go_low() {
        let item = McItem::from_choices("q", vec!["aé".into(), "bbbb".into()], 1, true);
        let sc = |l: f64| ContinuationScore {
            logprob: l,
            is_greedy: false,
            token_logprobs: vec![],
        };
        let s = score_multiple_choice(&item, &[sc(-2.0), sc(-3.0)]);
        assert_eq!(s.char_len, vec![2, 4]);
        assert_eq!((s.pred_acc, s.pred_acc_norm), (0, 1));
        assert!(!s.acc && s.acc_norm);
        assert_eq!(argmax(&[1.0, 1.0]), 0);
        assert!((mean_stderr(&[0.0, 1.0]) - 0.5).abs() < 1e-12);
        assert!((bits_per_byte(-2.0 * std::f64::consts::LN_2, 2.0) - 1.0).abs() < 1e-12);
    }
}
