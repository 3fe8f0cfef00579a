//! The seed's 16 metrics of an expert-routing configuration, each a documented function.
//!
//! Notation: a run routes `T` (token, layer) pairs; pair `i` selects `kᵢ` experts out of `E`;
//! `k̄ = (1/T) Σ kᵢ`; `u_{l,e}` counts the tokens that selected expert `e` at layer `l`.
//!
//! | # | metric | function |
//! |---|---|---|
//! | 1 | perplexity | [`perplexity`] (the harness's WikiText-2 word perplexity is passed through) |
//! | 2 | average task accuracy | [`average_accuracy`] |
//! | 3 | expert activation ratio | [`activation_ratio`] |
//! | 4 | FLOPs reduction | [`flops_reduction`] (a parameter count, not the seed's heuristic) |
//! | 5 | tokens / s | [`tokens_per_second`] |
//! | 6 | latency ms / token | [`latency_ms_per_token`] |
//! | 7 | expert utilisation | [`expert_utilization`] |
//! | 8 | Gini coefficient of expert usage | [`gini`], [`mean_gini`] |
//! | 9 | adaptive range | [`adaptive_range`] |
//! | 10 | selection entropy (normalised) | [`selection_entropy`] |
//! | 11 | ceiling hit rate | [`hit_rate`] at `max_k` |
//! | 12 | floor hit rate | [`hit_rate`] at `min_k` |
//! | 13 | layer expert variance | [`layer_expert_variance`] |
//! | 14 | layer consistency | [`layer_consistency`] |
//! | 15 | expert overlap | [`prefix_jaccard`] |
//! | 16 | output determinism | [`output_determinism`] |

/// Perplexity from a total log-likelihood (natural log) over `count` units (tokens, words):
/// `exp(−Σ log p / count)`. `None` for no units.
pub fn perplexity(total_loglik: f64, count: f64) -> Option<f64> {
    (count > 0.0).then(|| (-total_loglik / count).exp())
}

/// Mean of the task accuracies given (LAMBADA `acc`, HellaSwag `acc_norm`…): `(1/n) Σ accⱼ`;
/// `None` when there are none.
pub fn average_accuracy(accuracies: &[f64]) -> Option<f64> {
    (!accuracies.is_empty()).then(|| accuracies.iter().sum::<f64>() / accuracies.len() as f64)
}

/// Standard error of [`average_accuracy`] over independent item sets, from each task's own
/// standard error (the harness's `acc_stderr` / `acc_norm_stderr`, the binomial
/// `√(p(1 − p)/(n − 1))`): `SE = (1/m) √(Σⱼ SEⱼ²)` for `m` tasks; `None` when there are none.
pub fn average_accuracy_se(stderrs: &[f64]) -> Option<f64> {
    (!stderrs.is_empty())
        .then(|| stderrs.iter().map(|s| s * s).sum::<f64>().sqrt() / stderrs.len() as f64)
}

/// Expert activation ratio `k̄ / E`: the share of the experts a token uses on average.
pub fn activation_ratio(mean_k: f64, experts: usize) -> f64 {
    mean_k / experts as f64
}

/// FLOPs reduction against a baseline that uses `baseline_k` experts per token:
/// `1 − C(k̄) / C(k_base)` with `C(k) = shared + k · per_expert`, the parameters one token
/// multiplies through (`shared`: attention, norms, routers and LM head — everything but the
/// experts; `per_expert`: one expert's parameters summed over the MoE layers). Forward FLOPs
/// per token are `≈ 2 · C(k)`, so the ratio is the FLOPs ratio; attention over the context
/// is the same for every configuration and left out. Positive: fewer FLOPs than the baseline.
pub fn flops_reduction(shared: f64, per_expert: f64, mean_k: f64, baseline_k: f64) -> f64 {
    1.0 - (shared + mean_k * per_expert) / (shared + baseline_k * per_expert)
}

/// Throughput: tokens fed per second of wall time.
pub fn tokens_per_second(tokens: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}

/// Latency: milliseconds of wall time per token fed, `1000 · seconds / tokens`.
pub fn latency_ms_per_token(tokens: u64, seconds: f64) -> f64 {
    if tokens > 0 {
        1000.0 * seconds / tokens as f64
    } else {
        0.0
    }
}

/// Expert utilisation: the share of experts chosen at least once, averaged over layers:
/// `(1/L) Σ_l |{e : u_{l,e} > 0}| / E`.
pub fn expert_utilization(usage: &[Vec<u64>]) -> f64 {
    if usage.is_empty() {
        return 0.0;
    }
    usage
        .iter()
        .map(|u| u.iter().filter(|&&c| c > 0).count() as f64 / u.len().max(1) as f64)
        .sum::<f64>()
        / usage.len() as f64
}

/// Gini coefficient of usage counts `x₁ ≤ … ≤ x_n` (sorted ascending):
/// `G = 2 Σᵢ i·xᵢ / (n Σᵢ xᵢ) − (n + 1)/n` — 0 for perfectly even use, `1 − 1/n` when one
/// expert takes everything. 0 for no usage.
pub fn gini(counts: &[u64]) -> f64 {
    let n = counts.len();
    let total: u64 = counts.iter().sum();
    if n == 0 || total == 0 {
        return 0.0;
    }
    let mut x = counts.to_vec();
    x.sort_unstable();
    let weighted: f64 = x
        .iter()
        .enumerate()
        .map(|(i, &c)| (i + 1) as f64 * c as f64)
        .sum();
    2.0 * weighted / (n as f64 * total as f64) - (n as f64 + 1.0) / n as f64
}

/// [`gini`] of each layer's expert usage, averaged over layers.
pub fn mean_gini(usage: &[Vec<u64>]) -> f64 {
    if usage.is_empty() {
        return 0.0;
    }
    usage.iter().map(|u| gini(u)).sum::<f64>() / usage.len() as f64
}

/// Adaptive range `max kᵢ − min kᵢ` over all (token, layer) pairs (0 for a fixed `k`).
pub fn adaptive_range(ks: &[u16]) -> u16 {
    match (ks.iter().max(), ks.iter().min()) {
        (Some(a), Some(b)) => a - b,
        _ => 0,
    }
}

/// Normalised selection entropy: with `p_k` the share of pairs that selected `k` experts
/// (`k = 1..=max_k`), `H = −Σ p_k ln p_k / ln(max_k)` ∈ [0, 1]; 0 for a fixed `k` or
/// `max_k ≤ 1`.
pub fn selection_entropy(ks: &[u16], max_k: usize) -> f64 {
    if ks.is_empty() || max_k <= 1 {
        return 0.0;
    }
    let mut hist = vec![0u64; max_k + 1];
    for &k in ks {
        hist[(k as usize).min(max_k)] += 1;
    }
    let n = ks.len() as f64;
    let h: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum();
    h / (max_k as f64).ln()
}

/// Share of pairs with exactly `k` experts: the ceiling hit rate at `k = max_k`, the floor hit
/// rate at `k = min_k`.
pub fn hit_rate(ks: &[u16], k: usize) -> f64 {
    if ks.is_empty() {
        return 0.0;
    }
    ks.iter().filter(|&&x| x as usize == k).count() as f64 / ks.len() as f64
}

/// Layer expert variance: the population variance over layers of each layer's mean `k`,
/// `(1/L) Σ_l (k̄_l − mean_l k̄_l)²`.
pub fn layer_expert_variance(per_layer_mean: &[f64]) -> f64 {
    let n = per_layer_mean.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let mean = per_layer_mean.iter().sum::<f64>() / n;
    per_layer_mean
        .iter()
        .map(|m| (m - mean).powi(2))
        .sum::<f64>()
        / n
}

/// Pearson correlation of two equal-length series; `None` when either is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Layer consistency: the mean over adjacent layer pairs `(l, l+1)` of the Pearson correlation,
/// across tokens, of the tokens' expert counts at the two layers. Pairs where either layer's
/// count is constant (always, for top-k) have no correlation and are skipped; `None` when no
/// pair has one.
pub fn layer_consistency(ks_by_layer: &[Vec<f64>]) -> Option<f64> {
    let rs: Vec<f64> = ks_by_layer
        .windows(2)
        .filter_map(|w| pearson(&w[0], &w[1]))
        .collect();
    (!rs.is_empty()).then(|| rs.iter().sum::<f64>() / rs.len() as f64)
}

/// Jaccard similarity `|A ∩ B| / |A ∪ B|` of a token's selected set `A` (size `k`) with the
/// top-`k_ref` baseline's set `B` on the same router logits. Every selector here (top-k, top-p,
/// BH) selects a prefix of the same logit ranking, so `A ∩ B` is the shorter prefix and
/// `J = min(k, k_ref) / max(k, k_ref)`; the expert-overlap metric is its mean over pairs.
pub fn prefix_jaccard(k: usize, k_ref: usize) -> f64 {
    let (lo, hi) = (k.min(k_ref), k.max(k_ref));
    if hi == 0 { 1.0 } else { lo as f64 / hi as f64 }
}

/// Output determinism: the share of outputs (per-sample log-likelihoods, say) that are
/// bitwise identical between two runs of the same inputs. 1 for a deterministic engine.
pub fn output_determinism(first: &[f64], second: &[f64]) -> f64 {
    let n = first.len().min(second.len());
    if n == 0 {
        return 1.0;
    }
    first
        .iter()
        .zip(second)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count() as f64
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_values() {
        assert!((perplexity(-2.0 * 10f64.ln(), 2.0).unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(perplexity(0.0, 0.0), None);
        assert_eq!(average_accuracy(&[0.5, 0.7]), Some(0.6));
        // √(0.03² + 0.04²) / 2 = 0.05 / 2.
        let se = average_accuracy_se(&[0.03, 0.04]).unwrap();
        assert!((se - 0.025).abs() < 1e-12);
        assert_eq!(average_accuracy_se(&[]), None);
        assert_eq!(activation_ratio(16.0, 64), 0.25);
        // shared 100, 10 per expert: k̄ 4 vs baseline 8 → 1 − 140/180.
        assert!((flops_reduction(100.0, 10.0, 4.0, 8.0) - (1.0 - 140.0 / 180.0)).abs() < 1e-12);
        assert_eq!(tokens_per_second(100, 4.0), 25.0);
        assert_eq!(latency_ms_per_token(100, 4.0), 40.0);
        assert_eq!(
            expert_utilization(&[vec![1, 0, 3, 0], vec![1, 1, 1, 1]]),
            0.75
        );
        assert_eq!(gini(&[5, 5, 5, 5]), 0.0);
        assert!((gini(&[0, 0, 0, 8]) - 0.75).abs() < 1e-12); // 1 − 1/n
        // Hand-worked: x = 1, 2, 3 → 2(1 + 4 + 9)/(3·6) − 4/3 = 28/18 − 24/18 = 2/9.
        assert!((gini(&[3, 1, 2]) - 2.0 / 9.0).abs() < 1e-12);
        assert_eq!(adaptive_range(&[3, 8, 1, 5]), 7);
        assert_eq!(selection_entropy(&[4, 4, 4], 8), 0.0);
        // Two counts, equally often, max_k 4: ln 2 / ln 4 = 0.5.
        assert!((selection_entropy(&[1, 4, 1, 4], 4) - 0.5).abs() < 1e-12);
        assert_eq!(hit_rate(&[1, 8, 8, 3], 8), 0.5);
        assert_eq!(hit_rate(&[1, 8, 8, 3], 1), 0.25);
        assert!((layer_expert_variance(&[2.0, 4.0]) - 1.0).abs() < 1e-12);
        let r = layer_consistency(&[
            vec![1.0, 2.0, 3.0],
            vec![2.0, 4.0, 6.0],
            vec![3.0, 2.0, 1.0],
        ])
        .unwrap();
        assert!(r.abs() < 1e-12, "{r}"); // +1 then −1
        assert_eq!(layer_consistency(&[vec![8.0, 8.0], vec![8.0, 8.0]]), None);
        assert_eq!(prefix_jaccard(4, 8), 0.5);
        assert_eq!(prefix_jaccard(8, 8), 1.0);
        assert_eq!(output_determinism(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
    }
}
