//! Invariants of BH, top-p and top-k selection over many seeded random draws (no property-test
//! crate: ChaCha8 loops, so every failure reproduces from its seed and draw index).

use bh_moe::{
    BhConfig, BhSelector, CdfTable, CombineWeights, GaussianKde, KdeOptions, TopP, rejections,
    step_up, synthetic,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use routing_core::expert::{ExpertChoice, ExpertSelector, TopK, rank_by_logit, softmax_into};

const E: usize = 64;

/// Random p-values: a share of "signals" near 0, the rest uniform.
fn random_pvalues(rng: &mut ChaCha8Rng, m: usize) -> Vec<f64> {
    let signal = rng.random_range(0.0..0.5);
    (0..m)
        .map(|_| {
            if rng.random::<f64>() < signal {
                rng.random::<f64>() * 0.01
            } else {
                rng.random::<f64>()
            }
        })
        .collect()
}

/// A per-layer null fitted on synthetic calibration logits (one layer per seed).
fn nulls(layers: usize) -> Vec<CdfTable> {
    (0..layers)
        .map(|l| {
            let calib: Vec<f64> = synthetic::router_logits(100, E, 1_000 + l as u64)
                .iter()
                .map(|&z| f64::from(z))
                .collect();
            let options = KdeOptions {
                max_samples: Some(2_000),
                seed: l as u64,
                ..KdeOptions::default()
            };
            GaussianKde::fit_with(&calib, &options)
                .unwrap()
                .tabulate(32)
                .unwrap()
        })
        .collect()
}

/// Random logits with a varying number of standouts and varying scale (and some exact ties).
fn random_logits(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let scale = rng.random_range(0.2..3.0_f32);
    let mut z: Vec<f32> = (0..E)
        .map(|_| (rng.random::<f32>() - 0.5) * 2.0 * scale)
        .collect();
    let hot = rng.random_range(0..12);
    for _ in 0..hot {
        let e = rng.random_range(0..E);
        z[e] += rng.random_range(1.0..6.0);
    }
    if rng.random::<f32>() < 0.2 {
        // Exact ties: quantise.
        for v in &mut z {
            *v = (*v * 2.0).round() / 2.0;
        }
    }
    z
}

#[test]
fn k_hat_is_monotone_in_alpha_and_within_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let alphas = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0];
    for draw in 0..2_000 {
        let m = rng.random_range(1..=E);
        let p = random_pvalues(&mut rng, m);
        let min_k = rng.random_range(1..=m);
        let max_k = rng.random_range(min_k..=m);
        let mut previous = 0;
        for &alpha in &alphas {
            let count = step_up(&p, alpha).unwrap();
            assert!(
                count >= previous,
                "draw {draw}: α = {alpha} gives {count} < {previous}"
            );
            previous = count;
            let k = BhConfig::new(alpha, min_k, max_k).unwrap().k_hat(count);
            assert!((min_k..=max_k).contains(&k), "draw {draw}");
            // The rejected set has exactly `count` members, the `count` smallest p-values.
            let rejected = rejections(&p, alpha).unwrap();
            assert_eq!(
                rejected.iter().filter(|&&r| r).count(),
                count,
                "draw {draw}"
            );
        }
    }
}

#[test]
fn bh_selection_is_the_top_k_hat_by_logit_and_bh_rejections() {
    let layers = 3;
    let tables = nulls(layers);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut out = ExpertChoice::new();
    let mut top = ExpertChoice::new();
    let mut order = Vec::new();
    for draw in 0..1_500 {
        let z = random_logits(&mut rng);
        let layer = draw % layers;
        let alpha = rng.random_range(0.01..=1.0);
        let min_k = rng.random_range(1..=8);
        let max_k = rng.random_range(min_k..=E);
        let config = BhConfig::new(alpha, min_k, max_k).unwrap();
        let mut bh = BhSelector::new(tables.clone(), config).unwrap();
        bh.select(layer, &z, &mut out).unwrap();
        let k = out.len();
        assert!((min_k..=max_k).contains(&k), "draw {draw}");
        // The experts are the top-k̂ by logit (ties: lower index first) ...
        rank_by_logit(&z, &mut order);
        assert_eq!(out.experts, order[..k], "draw {draw}");
        // ... i.e. exactly what top-k̂ selects, weights included (both renormalised).
        TopK::new(k, true)
            .unwrap()
            .select(layer, &z, &mut top)
            .unwrap();
        assert_eq!(out, top, "draw {draw}");
        // The count is BH's on the same p-values, and within [min_k, max_k] the selected set
        // is BH's rejected set.
        let p: Vec<f64> = z.iter().map(|&x| tables[layer].sf(f64::from(x))).collect();
        assert_eq!(bh.pvalues(layer, &z).unwrap(), p);
        let count = step_up(&p, alpha).unwrap();
        assert_eq!(bh.last_discoveries(), count, "draw {draw}");
        assert_eq!(k, config.k_hat(count), "draw {draw}");
        if (min_k..=max_k).contains(&count) {
            let rejected = rejections(&p, alpha).unwrap();
            let mut chosen = vec![false; E];
            for &e in &out.experts {
                chosen[e] = true;
            }
            assert_eq!(chosen, rejected, "draw {draw}");
        }
        assert!((out.weight_sum() - 1.0).abs() < 1e-5);
        // Weight 1 (no softmax): the same experts, every weight 1.
        let mut unit = bh.clone().with_weights(CombineWeights::Unit);
        unit.select(layer, &z, &mut top).unwrap();
        assert_eq!(top.experts, out.experts, "draw {draw}");
        assert!(top.weights.iter().all(|&w| w == 1.0));
    }
}

#[test]
fn bh_with_the_exact_kde_agrees_with_its_table() {
    // The table's error (≤ 7.4e−6 at 64 steps) can flip a p-value across a BH threshold only
    // when it sits that close to it; count how often the two nulls disagree on k̂.
    let calib: Vec<f64> = synthetic::router_logits(20, E, 5)
        .iter()
        .map(|&z| f64::from(z))
        .collect();
    let kde = GaussianKde::fit(&calib, bh_moe::Bandwidth::Scott).unwrap();
    let table = kde.tabulate(64).unwrap();
    let config = BhConfig::new(0.3, 1, E).unwrap();
    let mut exact = BhSelector::new(vec![kde], config).unwrap();
    let mut tabulated = BhSelector::new(vec![table], config).unwrap();
    let (mut a, mut b) = (ExpertChoice::new(), ExpertChoice::new());
    let tokens = synthetic::router_logits(200, E, 6);
    let mut differ = 0;
    for z in tokens.chunks(E) {
        exact.select(0, z, &mut a).unwrap();
        tabulated.select(0, z, &mut b).unwrap();
        let (pe, pt) = (
            exact.pvalues(0, z).unwrap(),
            tabulated.pvalues(0, z).unwrap(),
        );
        for (pa, pb) in pe.iter().zip(&pt) {
            assert!((pa - pb).abs() <= 7.5e-6);
        }
        differ += usize::from(a.len() != b.len());
    }
    assert!(differ <= 2, "{differ} of 200 tokens");
}

#[test]
fn bh_k_hat_is_monotone_in_alpha_per_token() {
    let tables = nulls(1);
    let tokens = synthetic::router_logits(300, E, 8);
    let mut out = ExpertChoice::new();
    let alphas = [0.05, 0.1, 0.3, 0.4, 0.5, 0.6, 0.9];
    let mut selectors: Vec<BhSelector> = alphas
        .iter()
        .map(|&a| BhSelector::new(tables.clone(), BhConfig::new(a, 1, E).unwrap()).unwrap())
        .collect();
    let mut counts = std::collections::BTreeSet::new();
    for (t, z) in tokens.chunks(E).enumerate() {
        let mut previous = 0;
        for (s, alpha) in selectors.iter_mut().zip(alphas) {
            s.select(0, z, &mut out).unwrap();
            assert!(out.len() >= previous, "token {t}: α = {alpha}");
            previous = out.len();
        }
        counts.insert(previous);
    }
    // The synthetic router has 1–8 standout experts per token: BH adapts, k̂ is not constant.
    assert!(counts.len() >= 3, "{counts:?}");
}

#[test]
fn top_p_is_the_minimal_prefix_reaching_p() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut out = ExpertChoice::new();
    let mut probs = Vec::new();
    let mut order = Vec::new();
    for draw in 0..2_000 {
        let z = random_logits(&mut rng);
        let p = rng.random_range(0.01..=1.0);
        let cap = if rng.random::<bool>() {
            Some(rng.random_range(1..=E))
        } else {
            None
        };
        let weights = match rng.random_range(0..3) {
            0 => CombineWeights::Renormalised,
            1 => CombineWeights::Probabilities,
            _ => CombineWeights::Unit,
        };
        let mut s = TopP::new(p, cap).unwrap().with_weights(weights);
        s.select(0, &z, &mut out).unwrap();
        softmax_into(&z, &mut probs);
        rank_by_logit(&z, &mut order);
        let k = out.len();
        assert_eq!(out.experts, order[..k], "draw {draw}");
        let mass = |n: usize| -> f64 { order[..n].iter().map(|&e| f64::from(probs[e])).sum() };
        if let Some(c) = cap
            && k == c
        {
            // The cap binds (or coincides): every shorter prefix stays below p.
            assert!(c == 1 || mass(c - 1) < p, "draw {draw}");
        } else {
            // Reaches p (or takes everything) ...
            assert!(
                mass(k) >= p || k == E,
                "draw {draw}: mass {} < {p}",
                mass(k)
            );
            // ... and is minimal: one expert fewer does not.
            assert!(k == 1 || mass(k - 1) < p, "draw {draw}: not minimal");
        }
        match weights {
            CombineWeights::Renormalised => assert!((out.weight_sum() - 1.0).abs() < 1e-5),
            CombineWeights::Probabilities => {
                for (&e, &w) in out.experts.iter().zip(&out.weights) {
                    assert_eq!(w, probs[e]);
                }
            }
            CombineWeights::Unit => assert!(out.weights.iter().all(|&w| w == 1.0)),
        }
    }
}

#[test]
fn top_p_with_a_cap_is_min_of_cap_and_uncapped() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut a = ExpertChoice::new();
    let mut b = ExpertChoice::new();
    for _ in 0..1_000 {
        let z = random_logits(&mut rng);
        let p = rng.random_range(0.05..=1.0);
        let cap = rng.random_range(1..=E);
        TopP::new(p, None).unwrap().select(0, &z, &mut a).unwrap();
        TopP::new(p, Some(cap))
            .unwrap()
            .select(0, &z, &mut b)
            .unwrap();
        assert_eq!(b.len(), a.len().min(cap));
        assert_eq!(b.experts, a.experts[..b.len()]);
    }
}

#[test]
fn top_k_is_the_prefix_of_the_logit_order() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut out = ExpertChoice::new();
    let mut probs = Vec::new();
    let mut order = Vec::new();
    for _ in 0..1_000 {
        let z = random_logits(&mut rng);
        let k = rng.random_range(1..=E);
        let norm = rng.random::<bool>();
        TopK::new(k, norm).unwrap().select(0, &z, &mut out).unwrap();
        rank_by_logit(&z, &mut order);
        softmax_into(&z, &mut probs);
        assert_eq!(out.experts, order[..k]);
        if norm {
            assert!((out.weight_sum() - 1.0).abs() < 1e-5);
        } else {
            for (&e, &w) in out.experts.iter().zip(&out.weights) {
                assert_eq!(w, probs[e]);
            }
        }
        // Descending probabilities.
        assert!(out.experts.windows(2).all(|w| probs[w[0]] >= probs[w[1]]));
    }
}
