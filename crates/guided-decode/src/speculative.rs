//! Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): the exact comparison for
//! token-level help — the small model drafts `γ` tokens, the oracle checks them in one pass,
//! and the output follows the oracle's own distribution.
//!
//! One round, with the target's cache holding every committed token but the last (`last`):
//! 1. the draft samples `x₁ … x_γ` with probabilities `q_i`;
//! 2. the target reads `last, x₁ … x_γ` in one forward pass, giving `p₀ … p_γ`;
//! 3. for `i = 1 … γ`: accept `x_i` with probability `min(1, p_{i−1}(x_i) / q_i(x_i))`
//!    (at temperature 0: iff `x_i` is the target's argmax); at the first rejection draw the
//!    correction from `norm(max(0, p_{i−1} − q_i))` (argmax of `p_{i−1}`) and end the round;
//!    if all are accepted, draw a bonus token from `p_γ`;
//! 4. both caches roll back to the committed tokens.
//!
//! Each round commits between 1 and `γ + 1` tokens for one target pass. Both models sample at
//! the same temperature; the theorem makes the output distribution the target's at that
//! temperature (tested with a chi-square test in `tests/`).

use std::time::Instant;

use lm::{Decoder, LanguageModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{GuidedError, Result};

/// Options of [`speculative_generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpeculativeOptions {
    /// Draft tokens per round (`γ ≥ 1`).
    pub gamma: usize,
    /// Completion budget.
    pub max_new_tokens: usize,
    /// Sampling temperature of both models; 0 = greedy.
    pub temperature: f32,
    /// Seed of the acceptance and sampling draws.
    pub seed: u64,
    /// Stop strings: generation ends after the round whose tokens complete one (the caller
    /// cuts the text before it).
    pub until: Vec<String>,
}

/// The output and statistics of [`speculative_generate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpeculativeOutput {
    /// Completion ids (a stop token included when one ended it).
    pub tokens: Vec<u32>,
    /// Draft tokens proposed.
    pub drafted: usize,
    /// Draft tokens accepted.
    pub accepted: usize,
    /// Target forward passes (rounds).
    pub target_passes: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl SpeculativeOutput {
    /// Accepted share of the drafted tokens.
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Committed tokens per target pass.
    pub fn tokens_per_pass(&self) -> f64 {
        if self.target_passes == 0 {
            0.0
        } else {
            self.tokens.len() as f64 / self.target_passes as f64
        }
    }
}

/// `softmax(logits / t)` in f64 (`t > 0`).
fn probs(logits: &[f32], t: f32) -> Vec<f64> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f64> = logits
        .iter()
        .map(|&x| ((f64::from(x) - f64::from(m)) / f64::from(t)).exp())
        .collect();
    let z: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= z);
    p
}

/// Index of the largest value (the lowest index on ties, NaNs passed over, as `lm`'s greedy
/// sampler; vectorised).
pub(crate) fn argmax(v: &[f32]) -> usize {
    lm::kernels::softmax::argmax_first(v).0
}

/// Draws an index from the (unnormalised, non-negative) weights `w`.
fn draw(w: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let z: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * z;
    for (i, &x) in w.iter().enumerate() {
        if u < x {
            return i;
        }
        u -= x;
    }
    w.iter().rposition(|&x| x > 0.0).unwrap_or(0)
}

/// Whether the text of `ids` contains one of `until`.
pub(crate) fn contains_stop<M: LanguageModel>(
    model: &M,
    ids: &[u32],
    until: &[String],
) -> Result<bool> {
    if until.is_empty() {
        return Ok(false);
    }
    let text = model.decode(ids)?;
    Ok(until.iter().any(|u| text.contains(u.as_str())))
}

/// Checks that two models share a vocabulary, then brings `target` to every prompt token but
/// the last (which each verification pass reads first) and `draft` to the whole prompt; both
/// keep what they share with their previous item (a few-shot block is read once). Returns the
/// last prompt token.
pub(crate) fn prime_pair<D: LanguageModel, T: LanguageModel>(
    draft: &mut Decoder<'_, D>,
    target: &mut Decoder<'_, T>,
    prompt: &[u32],
) -> Result<u32> {
    if draft.model().vocab_size() != target.model().vocab_size() {
        return Err(GuidedError::VocabularyMismatch {
            draft: draft.model().vocab_size(),
            target: target.model().vocab_size(),
        });
    }
    let Some((&last, head)) = prompt.split_last() else {
        return Err(GuidedError::InvalidOption {
            name: "prompt",
            reason: "the prompt is empty".into(),
        });
    };
    target.sync(head)?;
    draft.sync(prompt)?;
    Ok(last)
}

/// Generates with `draft` proposing and `target` verifying (see the module docs).
///
/// # Errors
/// Different vocabularies, `γ = 0`, an empty prompt, a negative or non-finite temperature,
/// model errors.
pub fn speculative_generate<D: LanguageModel, T: LanguageModel>(
    draft: &D,
    target: &T,
    prompt: &[u32],
    opts: &SpeculativeOptions,
) -> Result<SpeculativeOutput> {
    speculative_with(
        &mut Decoder::empty(draft),
        &mut Decoder::empty(target),
        prompt,
        opts,
    )
}

/// [`speculative_generate`] with decoders kept across items (each keeps the prompt prefix it
/// shares with its previous item).
///
/// # Errors
/// As [`speculative_generate`].
pub fn speculative_with<D: LanguageModel, T: LanguageModel>(
    dec: &mut Decoder<'_, D>,
    target_dec: &mut Decoder<'_, T>,
    prompt: &[u32],
    opts: &SpeculativeOptions,
) -> Result<SpeculativeOutput> {
    if opts.gamma == 0 {
        return Err(GuidedError::InvalidOption {
            name: "gamma",
            reason: "γ must be at least 1".into(),
        });
    }
    if !(opts.temperature.is_finite() && opts.temperature >= 0.0) {
        return Err(GuidedError::InvalidOption {
            name: "temperature",
            reason: format!("{} is not a finite value ≥ 0", opts.temperature),
        });
    }
    let started = Instant::now();
    let greedy = opts.temperature == 0.0;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let target = target_dec.model();
    let stops = target.stop_tokens().to_vec();

    // The verifier holds every committed token but the last, `last`.
    let mut last = prime_pair(dec, target_dec, prompt)?;
    let mut out: Vec<u32> = Vec::new();
    let (mut drafted, mut accepted, mut passes) = (0, 0, 0);

    'rounds: while out.len() < opts.max_new_tokens {
        let gamma = opts.gamma.min(opts.max_new_tokens - out.len());
        // 1. Draft.
        let mut xs = Vec::with_capacity(gamma);
        let mut qs: Vec<Vec<f64>> = Vec::with_capacity(gamma);
        for _ in 0..gamma {
            let logits = dec.logits();
            let x = if greedy {
                qs.push(Vec::new());
                argmax(logits)
            } else {
                let q = probs(logits, opts.temperature);
                let x = draw(&q, &mut rng);
                qs.push(q);
                x
            } as u32;
            xs.push(x);
            dec.feed(&[x])?;
            if stops.contains(&x) {
                break;
            }
        }
        drafted += xs.len();
        // 2. Verify in one pass.
        let mut input = vec![last];
        input.extend(&xs);
        let committed_before = target_dec.tokens().len();
        let logits = target_dec.feed_all(&input)?;
        passes += 1;
        let v = target.vocab_size();
        let row = |i: usize| &logits[i * v..(i + 1) * v];
        // 3. Accept / correct.
        let mut n_ok = 0;
        let mut next: Option<u32> = None;
        for (i, &x) in xs.iter().enumerate() {
            let ok = if greedy {
                argmax(row(i)) as u32 == x
            } else {
                let p = probs(row(i), opts.temperature);
                let ratio = p[x as usize] / qs[i][x as usize];
                rng.random::<f64>() < ratio.min(1.0)
            };
            if ok {
                n_ok += 1;
                continue;
            }
            next = Some(if greedy {
                argmax(row(i)) as u32
            } else {
                let p = probs(row(i), opts.temperature);
                let residual: Vec<f64> = p
                    .iter()
                    .zip(&qs[i])
                    .map(|(a, b)| (a - b).max(0.0))
                    .collect();
                draw(&residual, &mut rng) as u32
            });
            break;
        }
        accepted += n_ok;
        let next = match next {
            Some(t) => t,
            None if greedy => argmax(row(xs.len())) as u32,
            None => draw(&probs(row(xs.len()), opts.temperature), &mut rng) as u32,
        };
        // 4. Commit and roll both caches back to the committed tokens.
        for &x in &xs[..n_ok] {
            out.push(x);
            if stops.contains(&x) || out.len() >= opts.max_new_tokens {
                break 'rounds;
            }
        }
        target_dec.rewind(committed_before + 1 + n_ok, row(n_ok))?;
        // The draft keeps its committed tokens and reads `next` in the same pass that drops
        // the rejected drafts.
        let keep = dec.tokens().len() - (xs.len() - n_ok);
        let mut committed = dec.tokens()[..keep].to_vec();
        committed.push(next);
        dec.sync(&committed)?;
        out.push(next);
        last = next;
        if stops.contains(&next) || contains_stop(target, &out, &opts.until)? {
            break;
        }
    }
    out.truncate(opts.max_new_tokens);
    Ok(SpeculativeOutput {
        tokens: out,
        drafted,
        accepted,
        target_passes: passes,
        seconds: started.elapsed().as_secs_f64(),
    })
}
