//! The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained
//! on Code", §2.1 and Figure 3; lm-eval `code_eval`'s `estimate_pass_at_k`).

/// `pass@k = 1 − C(n − c, k) / C(n, k)` for `n` samples of which `c` pass, computed as
/// `1 − Π_{i = n−c+1}^{n} (1 − k / i)` for numerical stability. `1.0` when `n − c < k`.
/// `k` must be in `1..=n`; `None` otherwise (or when `c > n`).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let prod: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    Some(1.0 - prod)
}

/// Mean pass@k over problems given `(n, c)` per problem. `None` unless every problem supports
/// `k` (`1 ≤ k ≤ n` and `c ≤ n`): lm-eval / HF `code_eval` report only the `k` that all problems
/// support, and averaging over a subset would bias the mean. `None` for no problems.
pub fn mean_pass_at_k(counts: &[(usize, usize)], k: usize) -> Option<f64> {
    let v: Vec<f64> = counts
        .iter()
        .map(|&(n, c)| pass_at_k(n, c, k))
        .collect::<Option<_>>()?;
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn matches_the_combinatorial_definition() {
        for n in 1..15u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let exact = if n - c < k {
                        1.0
                    } else {
                        1.0 - binom(n - c, k) / binom(n, k)
                    };
                    let got = pass_at_k(n as usize, c as usize, k as usize).unwrap();
                    assert!((got - exact).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
        assert!((pass_at_k(10, 3, 1).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 0, 6), None);
        assert_eq!(mean_pass_at_k(&[(2, 1), (2, 2)], 1), Some(0.75));
        // A problem that cannot support k (or has more passes than samples) voids the mean.
        assert_eq!(mean_pass_at_k(&[(2, 1), (5, 2)], 3), None);
        assert_eq!(mean_pass_at_k(&[(2, 3), (2, 2)], 1), None);
        assert_eq!(mean_pass_at_k(&[], 1), None);
    }
}
