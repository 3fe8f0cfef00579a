//! Next-token selection: greedy, temperature, top-k and nucleus (top-p) sampling, seeded.
//!
//! Order of operations follows Hugging Face's logits processors: temperature scaling, then
//! top-k, then top-p (Holtzman et al. 2020: the smallest set of most likely tokens whose
//! probability reaches `p`), then a draw from the renormalised distribution. Every step also
//! reports signals of the *model's* distribution (before temperature/truncation): the chosen
//! token's log-probability, the entropy and the largest probability — the quantities guided
//! decoding uses to decide when to ask a bigger model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{LmError, Result};

/// How to pick the next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Temperature; `0` means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens with cumulative probability `>= p`.
    pub top_p: Option<f32>,
    /// Seed of the sampling stream.
    pub seed: u64,
}

impl SamplingConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }

    /// Temperature sampling with a seed.
    pub fn temperature(t: f32, seed: u64) -> Self {
        Self {
            temperature: t,
            seed,
            ..Self::greedy()
        }
    }

    /// Validates the parameters.
    pub fn check(&self) -> Result<()> {
        let bad = |detail: String| LmError::InvalidModelConfig {
            path: "sampling".into(),
            detail,
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(bad(format!(
                "temperature {} must be finite and >= 0",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(bad("top_k must be at least 1".into()));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(bad(format!("top_p {p} must be in (0, 1]")));
        }
        Ok(())
    }
}

/// What one decoding step chose, and how sure the model was.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepInfo {
    /// The chosen token.
    pub token: u32,
    /// `log p(token)` under the model's (untempered) distribution.
    pub logprob: f32,
    /// Entropy of the model's distribution, nats.
    pub entropy: f32,
    /// Largest probability of the model's distribution.
    pub max_prob: f32,
}

/// A seeded sampler.
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplingConfig,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler for `cfg` (validated).
    pub fn new(cfg: SamplingConfig) -> Result<Self> {
        cfg.check()?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplingConfig {
        &self.cfg
    }

    /// Picks a token from `logits` and reports the distribution's signals.
    ///
    /// # Errors
    /// [`LmError::TensorRead`] when `logits` is empty or holds a NaN.
    pub fn sample(&mut self, logits: &[f32]) -> Result<StepInfo> {
        check_logits(logits)?;
        self.pick(logits, &signal(logits))
    }

    /// [`Sampler::sample`] for a caller that has already computed `sig = signal(logits)` (a
    /// help policy reads it before the step): the same token and [`StepInfo`], without a
    /// second pass over the vocabulary.
    ///
    /// # Errors
    /// As [`Sampler::sample`].
    pub fn sample_with(&mut self, logits: &[f32], sig: &Signal) -> Result<StepInfo> {
        check_logits(logits)?;
        self.pick(logits, sig)
    }

    fn pick(&mut self, logits: &[f32], sig: &Signal) -> Result<StepInfo> {
        let token = if self.cfg.temperature == 0.0 {
            sig.argmax
        } else {
            self.draw(logits)
        };
        Ok(StepInfo {
            token: token as u32,
            logprob: sig.logprob(logits[token]),
            entropy: sig.entropy,
            max_prob: sig.max_prob,
        })
    }

    fn draw(&mut self, logits: &[f32]) -> usize {
        let t = self.cfg.temperature as f64;
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if let Some(k) = self.cfg.top_k {
            idx.truncate(k.min(idx.len()));
        }
        let top = f64::from(logits[idx[0]]);
        let mut probs: Vec<f64> = idx
            .iter()
            .map(|&i| ((f64::from(logits[i]) - top) / t).exp())
            .collect();
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
        if let Some(p) = self.cfg.top_p {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|&q| {
                    acc += q;
                    acc >= f64::from(p)
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            idx.truncate(keep);
            let z: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|q| *q /= z);
        }
        let u: f64 = self.rng.random();
        let mut acc = 0.0;
        for (k, &q) in probs.iter().enumerate() {
            acc += q;
            if u < acc {
                return idx[k];
            }
        }
        idx[probs.len() - 1]
    }
}

/// [`LmError::TensorRead`] for an empty row or one holding a NaN. The test has no early exit
/// per element, so that it vectorises (a 49k-entry row in a few µs; `any` took ~30).
fn check_logits(logits: &[f32]) -> Result<()> {
    let nan = logits
        .chunks(256)
        .any(|c| c.iter().fold(false, |acc, x| acc | x.is_nan()));
    if logits.is_empty() || nan {
        return Err(LmError::TensorRead {
            detail: "logits are empty or contain NaN".into(),
        });
    }
    Ok(())
}

/// What a next-token distribution tells a policy: [`signal`]'s result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// Entropy of softmax(logits), nats.
    pub entropy: f32,
    /// Its largest probability.
    pub max_prob: f32,
    /// Index of the largest logit (the lowest on ties).
    pub argmax: usize,
    /// The largest logit.
    pub max_logit: f32,
    /// `ln Σ exp(logit − max_logit)`.
    pub log_z: f32,
}

impl Signal {
    /// The log-probability of a token with logit `x`.
    pub fn logprob(&self, x: f32) -> f32 {
        x - self.max_logit - self.log_z
    }
}

/// Entropy, max probability and argmax of softmax(`logits`) in two passes and no allocation
/// (`H = ln Z − Σ (x − m)·e^{x−m} / Z`, `p_max = 1/Z` with `Z = Σ e^{x−m}`): the per-step
/// signal of guided decoding, cheap next to a model step (~50 µs for a 49k vocabulary, ~240
/// µs for 262k, on one core of this project's 2-core machine: `cargo bench -p benches --bench
/// kernels -- signal`).
/// Agrees with [`distribution`] to ~10⁻⁵.
pub fn signal(logits: &[f32]) -> Signal {
    let (argmax, m) = crate::kernels::softmax::argmax_first(logits);
    let (z, s) = crate::kernels::softmax::sums(logits, m);
    let log_z = z.ln();
    Signal {
        entropy: (log_z - s / z).max(0.0) as f32,
        max_prob: (1.0 / z) as f32,
        argmax,
        max_logit: m,
        log_z: log_z as f32,
    }
}

/// Log-probabilities, entropy (nats), max probability and argmax of softmax(`logits`).
pub fn distribution(logits: &[f32]) -> (Vec<f32>, f32, f32, usize) {
    let mut argmax = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[argmax] {
            argmax = i;
        }
    }
    let m = f64::from(logits[argmax]);
    let z: f64 = logits.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    let lz = z.ln();
    let logprobs: Vec<f32> = logits
        .iter()
        .map(|&x| (f64::from(x) - m - lz) as f32)
        .collect();
    let entropy: f64 = logprobs
        .iter()
        .map(|&lp| {
            let p = f64::from(lp).exp();
            if p > 0.0 { -p * f64::from(lp) } else { 0.0 }
        })
        .sum();
    (logprobs, entropy as f32, (1.0 / z) as f32, argmax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_with_a_precomputed_signal_is_sampling() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for cfg in [
            SamplingConfig::greedy(),
            SamplingConfig::temperature(0.8, 5),
            SamplingConfig {
                top_k: Some(40),
                top_p: Some(0.9),
                ..SamplingConfig::temperature(1.2, 9)
            },
        ] {
            let (mut a, mut b) = (
                Sampler::new(cfg.clone()).unwrap(),
                Sampler::new(cfg).unwrap(),
            );
            for _ in 0..50 {
                let logits: Vec<f32> = (0..1000).map(|_| rng.random_range(-4.0..4.0)).collect();
                let sig = signal(&logits);
                assert_eq!(
                    a.sample(&logits).unwrap(),
                    b.sample_with(&logits, &sig).unwrap()
                );
            }
        }
        let sig = signal(&[0.0, 1.0]);
        let mut s = Sampler::new(SamplingConfig::greedy()).unwrap();
        assert!(s.sample_with(&[0.0, f32::NAN], &sig).is_err());
        assert!(s.sample_with(&[], &sig).is_err());
    }

    #[test]
    fn the_fast_signal_agrees_with_the_full_distribution() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (n, scale) in [
            (49_152, 3.0f32),
            (262_144, 8.0),
            (13, 0.1),
            (5, 40.0),
            (1, 1.0),
        ] {
            let logits: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            let (lp, h, p, a) = distribution(&logits);
            let s = signal(&logits);
            assert_eq!(s.argmax, a);
            assert!(
                (s.entropy - h).abs() < 2e-5 * h.max(1.0),
                "{n}: {} vs {h}",
                s.entropy
            );
            assert!(
                (s.max_prob - p).abs() < 1e-6 * p.max(1e-3) + 1e-9,
                "{n}: {} vs {p}",
                s.max_prob
            );
            assert!((s.logprob(logits[7 % n]) - lp[7 % n]).abs() < 1e-4);
        }
        // A one-hot distribution: zero entropy, probability one.
        let s = signal(&[0.0, 200.0, 0.0]);
        assert_eq!(s.argmax, 1);
        assert!(s.entropy.abs() < 1e-6 && (s.max_prob - 1.0).abs() < 1e-6);
    }

    #[test]
    fn greedy_picks_argmax_and_reports_signals() {
        let mut s = Sampler::new(SamplingConfig::greedy()).unwrap();
        let step = s.sample(&[0.0, 2.0, 1.0]).unwrap();
        assert_eq!(step.token, 1);
        let z = 1.0f32 + 2f32.exp() + 1f32.exp();
        assert!((step.max_prob - 2f32.exp() / z).abs() < 1e-6);
        assert!((step.logprob - (2.0 - z.ln())).abs() < 1e-6);
        let uniform = s.sample(&[0.0; 4]).unwrap();
        assert!((uniform.entropy - 4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_repeat() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut a = Sampler::new(SamplingConfig {
            top_k: Some(1),
            ..SamplingConfig::temperature(1.0, 3)
        })
        .unwrap();
        let greedy = Sampler::new(SamplingConfig::greedy())
            .unwrap()
            .sample(&logits)
            .unwrap()
            .token;
        assert_eq!(a.sample(&logits).unwrap().token, greedy);
        let draw = |seed| {
            let mut s = Sampler::new(SamplingConfig::temperature(1.0, seed)).unwrap();
            (0..20)
                .map(|_| s.sample(&logits).unwrap().token)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn top_p_keeps_the_nucleus_only() {
        // p = 0.5 keeps only the dominant token (probability ≈ 0.84).
        let logits = [5.0f32, 3.0, 1.0, 0.0];
        let mut s = Sampler::new(SamplingConfig {
            top_p: Some(0.5),
            ..SamplingConfig::temperature(1.0, 1)
        })
        .unwrap();
        assert!((0..100).all(|_| s.sample(&logits).unwrap().token == 0));
        assert!(
            Sampler::new(SamplingConfig {
                top_p: Some(1.5),
                ..SamplingConfig::greedy()
            })
            .is_err()
        );
        assert!(s.sample(&[f32::NAN]).is_err());
        // A NaN past the first chunk of the vectorised test, and in the last partial one.
        for at in [300, 999] {
            let mut row = vec![0.5f32; 1000];
            row[at] = f32::NAN;
            assert!(s.sample(&row).is_err(), "NaN at {at}");
        }
        assert!(s.sample(&vec![0.5f32; 1000]).is_ok());
    }

    #[test]
    fn temperature_sampling_matches_the_distribution() {
        let logits = [0.0f32, (3f32).ln()]; // p = [0.25, 0.75]
        let mut s = Sampler::new(SamplingConfig::temperature(1.0, 11)).unwrap();
        let ones = (0..20_000)
            .filter(|_| s.sample(&logits).unwrap().token == 1)
            .count();
        let share = ones as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }
}
