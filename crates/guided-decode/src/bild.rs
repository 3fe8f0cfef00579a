//! Big Little Decoder (BiLD; Kim et al. 2023): fallback and rollback between a small and a
//! large model that share a vocabulary.
//!
//! * **Fallback**: the small model writes while its max probability is at least `fallback`
//!   (the paper uses ≈ 0.6 for its distillation pairs); below it, the large model is called.
//! * **Rollback**: the called large model reads, in one pass, every token the small model wrote
//!   since the last call; the first of them whose large-model cross-entropy `−log p_L(y)`
//!   exceeds `rollback` (≈ 5 nats in the paper's range) is replaced by the large model's own
//!   choice and everything after it is discarded (the small model's KV cache rolled back). If
//!   none exceeds it, the large model writes the next token from the same pass.
//!
//! Greedy decoding on both sides (the paper's setting for its speed-ups). With `fallback > 1`
//! every token comes from the large model (its own greedy output); with `fallback = 0` no call
//! is ever made (the small model's greedy output) — both tested.

use std::time::Instant;

use lm::generate::sampling::signal;
use lm::{Decoder, LanguageModel};

use crate::error::{GuidedError, Result};
use crate::speculative::{argmax, contains_stop, prime_pair};

/// BiLD's two thresholds and the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BildOptions {
    /// Call the large model when the small model's max probability is below this.
    pub fallback: f32,
    /// Replace a small-model token whose large-model cross-entropy exceeds this (nats).
    pub rollback: f32,
    /// Completion budget (tokens).
    pub max_new_tokens: usize,
    /// Stop strings: generation ends once the completion's text contains one (the caller cuts
    /// the text before it).
    pub until: Vec<String>,
}

/// The output and statistics of [`bild_generate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BildOutput {
    /// Completion ids (a stop token included when one ended it).
    pub tokens: Vec<u32>,
    /// Large-model calls (fallbacks).
    pub calls: usize,
    /// Calls that rolled back a small-model token.
    pub rollbacks: usize,
    /// Small-model tokens discarded by rollbacks (the replaced one included).
    pub discarded: usize,
    /// Tokens the small model wrote (kept or later discarded).
    pub small_generated: usize,
    /// Tokens of the completion the large model wrote.
    pub large_written: usize,
    /// Tokens the large model read (its passes' lengths).
    pub large_read: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Generates a completion of `prompt` with `small`, falling back to and rolling back with
/// `large` (see the module docs).
///
/// # Errors
/// Different vocabularies, an empty prompt, non-finite thresholds, model errors.
pub fn bild_generate<S: LanguageModel, L: LanguageModel>(
    small: &S,
    large: &L,
    prompt: &[u32],
    opts: &BildOptions,
) -> Result<BildOutput> {
    bild_with(
        &mut Decoder::empty(small),
        &mut Decoder::empty(large),
        prompt,
        opts,
    )
}

/// [`bild_generate`] with decoders kept across items (each keeps the prompt prefix it shares
/// with its previous item).
///
/// # Errors
/// As [`bild_generate`].
pub fn bild_with<S: LanguageModel, L: LanguageModel>(
    dec: &mut Decoder<'_, S>,
    large_dec: &mut Decoder<'_, L>,
    prompt: &[u32],
    opts: &BildOptions,
) -> Result<BildOutput> {
    if !opts.fallback.is_finite() || !opts.rollback.is_finite() {
        return Err(GuidedError::InvalidOption {
            name: "bild",
            reason: "the thresholds must be finite".into(),
        });
    }
    let started = Instant::now();
    let (small, large) = (dec.model(), large_dec.model());
    let stops = small.stop_tokens().to_vec();
    let is_stop = |t: u32| stops.contains(&t) || large.stop_tokens().contains(&t);
    // The verifier holds every committed token but the last, `last`.
    let mut last = prime_pair(dec, large_dec, prompt)?;
    let mut out: Vec<u32> = Vec::new();
    // `out[since..]`: written by the small model after the large model's last call.
    let mut since = 0;
    let mut o = BildOutput {
        tokens: Vec::new(),
        calls: 0,
        rollbacks: 0,
        discarded: 0,
        small_generated: 0,
        large_written: 0,
        large_read: 0,
        seconds: 0.0,
    };
    while out.len() < opts.max_new_tokens {
        let sig = signal(dec.logits());
        let (max_prob, best) = (sig.max_prob, sig.argmax);
        if max_prob >= opts.fallback {
            let t = best as u32;
            dec.feed(&[t])?;
            out.push(t);
            o.small_generated += 1;
            if is_stop(t) || contains_stop(small, &out, &opts.until)? {
                break;
            }
            continue;
        }
        // Fallback: the large model reads `last` and the small model's recent tokens.
        o.calls += 1;
        let segment = out[since..].to_vec();
        let mut input = vec![last];
        input.extend(&segment);
        o.large_read += input.len();
        let base = large_dec.tokens().len();
        let logits = large_dec.feed_all(&input)?;
        let v = large.vocab_size();
        let row = |i: usize| &logits[i * v..(i + 1) * v];
        let bad = segment.iter().enumerate().find(|&(j, &y)| {
            let r = row(j);
            -signal(r).logprob(r[y as usize]) > opts.rollback
        });
        let (next, dropped) = match bad {
            Some((j, _)) => {
                o.rollbacks += 1;
                o.discarded += segment.len() - j;
                out.truncate(since + j);
                large_dec.rewind(base + 1 + j, row(j))?;
                (argmax(row(j)) as u32, segment.len() - j)
            }
            None => (argmax(row(segment.len())) as u32, 0),
        };
        // The small model drops the replaced tokens and reads `next` in one pass.
        let mut kept = dec.tokens()[..dec.tokens().len() - dropped].to_vec();
        kept.push(next);
        dec.sync(&kept)?;
        out.push(next);
        o.large_written += 1;
        last = next;
        since = out.len();
        if is_stop(next) || contains_stop(small, &out, &opts.until)? {
            break;
        }
    }
    out.truncate(opts.max_new_tokens);
    o.tokens = out;
    o.seconds = started.elapsed().as_secs_f64();
    Ok(o)
}
