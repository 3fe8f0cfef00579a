//! Seeded synthetic router logits, for examples, tests and benches when no model is at hand.
//!
//! Each token's logits are i.i.d. standard normal (Box–Muller over ChaCha8), and a random
//! number `r ∈ 1..=8` of its experts — drawn uniformly without replacement — get `+3`: a few
//! experts stand out by a varying amount, so adaptive selectors have something to adapt to.
//! Not a model of any real router.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `tokens × experts` logits, token-major (`logits[t * experts + e]`), reproducible from `seed`.
///
/// # Panics
/// When `experts` is 0.
pub fn router_logits(tokens: usize, experts: usize, seed: u64) -> Vec<f32> {
    assert!(experts > 0, "experts must be at least 1");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(tokens * experts);
    for _ in 0..tokens {
        let row = out.len();
        for _ in 0..experts {
            out.push(standard_normal(&mut rng) as f32);
        }
        let hot = rng.random_range(1..=experts.min(8));
        for e in sample(&mut rng, experts, hot) {
            out[row + e] += 3.0;
        }
    }
    out
}

fn standard_normal(rng: &mut impl Rng) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_shaped_and_roughly_standard() {
        let a = router_logits(200, 64, 1);
        assert_eq!(a.len(), 200 * 64);
        assert_eq!(a, router_logits(200, 64, 1));
        assert_ne!(a, router_logits(200, 64, 2));
        // Mean ≈ 3 · E[r]/64 = 3 · 4.5/64 ≈ 0.21 over 12,800 draws.
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / a.len() as f64;
        assert!((mean - 0.21).abs() < 0.05, "{mean}");
        assert!(a.iter().all(|x| x.is_finite()));
    }
}
