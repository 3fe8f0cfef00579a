//! Guided generation: the small model writes, a [`HelpPolicy`] decides before every step
//! whether the [`Oracle`] writes the next `k` tokens instead, and every token is accounted for.
//!
//! One step, at generated position `p` (small-model tokens after the prompt):
//! 1. the small model's next-token distribution gives the [`TokenSignal`] (entropy, max
//!    probability; one pass over the logits, timed as the policy layer's cost);
//! 2. the policy answers; on [`HelpDecision::Continue`] the small model samples a token and
//!    reads it; on [`HelpDecision::AskOracle`] the oracle continues for up to `k` of its tokens
//!    (capped by the remaining budget when it shares the tokenizer) and the small model reads
//!    them (by id, or re-tokenising the completion: [`crate::oracle`]; a re-tokenised
//!    completion that runs past the budget is cut at it);
//! 3. generation ends at a stop token of either model or after `max_new_tokens` small-model
//!    tokens of completion.

use std::time::Instant;

use lm::generate::sampling::signal;
use lm::{Decoder, LanguageModel, Sampler, SamplingConfig};
use routing_core::token::{HelpDecision, HelpPolicy, TokenSignal};

use crate::error::{GuidedError, Result};
use crate::oracle::{Handoff, Oracle, common_prefix};

/// Options of [`guided_generate`].
#[derive(Debug, Clone)]
pub struct GuidedOptions {
    /// Completion budget in small-model tokens.
    pub max_new_tokens: usize,
    /// The small model's sampling (greedy by default).
    pub sampling: SamplingConfig,
    /// Item index: seeds the policy's per-item draw ([`HelpPolicy::reset`]).
    pub item: u64,
    /// Stop strings: generation ends once the completion's text contains one, and the text is
    /// cut before it (lm-eval's `until`, Hugging Face's stop strings).
    pub until: Vec<String>,
}

impl Default for GuidedOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: SamplingConfig::greedy(),
            item: 0,
            until: Vec::new(),
        }
    }
}

/// One oracle call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OracleCall {
    /// Generated position (small-model tokens) at which it was made.
    pub position: usize,
    /// Tokens asked for.
    pub asked: usize,
    /// Oracle tokens written.
    pub written: usize,
    /// Small-model tokens the completion grew by (after re-tokenising, for text hand-offs).
    pub small_tokens_added: usize,
    /// The small model's entropy at the call.
    pub entropy: f32,
    /// The small model's max probability at the call.
    pub max_prob: f32,
    /// Whether the completion's text after the hand-off is exactly the text before it plus
    /// the oracle's text (no character lost or duplicated at the token boundary).
    pub exact_handoff: bool,
}

/// Token, call, time and compute accounting of one generation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Accounting {
    /// Tokens the small model sampled.
    pub small_generated: usize,
    /// Tokens the small model read as input (prompt, oracle hand-offs, re-reads after
    /// rollbacks) — not its own sampled tokens, which count once, in `small_generated` —
    /// per item as if it ran alone: the prompt in full even when a decoder kept across items
    /// read only part of it. Each model processes `read + generated` tokens (±1 per call).
    pub small_read: usize,
    /// Oracle calls.
    pub oracle_calls: usize,
    /// Tokens the oracle wrote.
    pub oracle_generated: usize,
    /// Tokens the oracle read (its first call's context in full, then incrementally).
    pub oracle_read: usize,
    /// Small-model tokens re-read after text hand-offs rolled back a re-tokenised boundary.
    pub refed_after_handoff: usize,
    /// Seconds in the small model (prefill, steps, hand-off reads).
    pub small_s: f64,
    /// Seconds in the oracle.
    pub oracle_s: f64,
    /// Seconds in the policy layer (signal and decision).
    pub policy_s: f64,
    /// Seconds in the small model's own steps (a subset of `small_s`: no prefill, no
    /// hand-off reads), for the policy layer's cost per step.
    pub small_step_s: f64,
    /// `2 × active parameters × tokens processed` of the small model, when its size is known.
    pub small_flops: Option<f64>,
    /// The same for the oracle.
    pub oracle_flops: Option<f64>,
}

impl Accounting {
    /// Share of the completion's small-model tokens that came from the oracle.
    pub fn oracle_share(&self, completion_tokens: usize) -> f64 {
        if completion_tokens == 0 {
            return 0.0;
        }
        let from_oracle = completion_tokens.saturating_sub(self.small_generated);
        from_oracle as f64 / completion_tokens as f64
    }

    /// Dollars at per-million-token prices (input = tokens read, output = tokens written) of
    /// each model.
    pub fn dollars(&self, small: TokenPrices, oracle: TokenPrices) -> f64 {
        small.cost(self.small_read, self.small_generated)
            + oracle.cost(self.oracle_read, self.oracle_generated)
    }
}

/// Prices per million tokens (the workspace's one cost model, [`routing_core::cost`]).
pub use routing_core::cost::TokenPrices;

/// Why a guided generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GuidedStop {
    /// The small model emitted a stop token.
    SmallStop,
    /// The oracle emitted a stop token.
    OracleStop,
    /// The budget was spent.
    MaxTokens,
    /// The small model's context window is full.
    ContextFull,
    /// The completion's text contains a stop string.
    StopString,
}

/// The small model's distribution before one of its own steps.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepSignal {
    /// Generated position (small-model tokens of completion before the step).
    pub position: usize,
    /// The token the small model wrote.
    pub token: u32,
    /// Entropy of its next-token distribution, nats.
    pub entropy: f32,
    /// Its max probability.
    pub max_prob: f32,
}

/// The result of [`guided_generate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GuidedGeneration {
    /// The completion's small-model ids (stop token included when one ended it), counted
    /// after the part of the prompt's ids that survived: when a text hand-off re-tokenised a
    /// prompt-final space together with the completion, the merged token is included.
    pub tokens: Vec<u32>,
    /// The completion's text (the decoded sequence after the decoded prompt), cut before the
    /// first stop string.
    pub text: String,
    /// Why it stopped.
    pub stop: GuidedStop,
    /// The oracle calls, in order.
    pub calls: Vec<OracleCall>,
    /// The small model's signal at each of its own steps, in order (the meta-analysis: where
    /// the first mistake sits and how uncertain the small model was there).
    pub steps: Vec<StepSignal>,
    /// Accounting.
    pub accounting: Accounting,
}

/// Generates a completion of `prompt` with `small`, handing tokens to `oracle` when `policy`
/// says so.
///
/// # Errors
/// Model, tokenizer and sampling errors; a zero token budget.
pub fn guided_generate<S: LanguageModel>(
    small: &S,
    oracle: &mut dyn Oracle,
    policy: &mut dyn HelpPolicy,
    prompt: &str,
    opts: &GuidedOptions,
) -> Result<GuidedGeneration> {
    guided_with(&mut Decoder::empty(small), oracle, policy, prompt, opts)
}

/// [`guided_generate`] with the small model's decoder kept across items: it keeps the prompt
/// prefix it shares with its previous item (a few-shot block is read once per run).
///
/// # Errors
/// As [`guided_generate`].
pub fn guided_with<S: LanguageModel>(
    dec: &mut Decoder<'_, S>,
    oracle: &mut dyn Oracle,
    policy: &mut dyn HelpPolicy,
    prompt: &str,
    opts: &GuidedOptions,
) -> Result<GuidedGeneration> {
    if opts.max_new_tokens == 0 {
        return Err(GuidedError::InvalidOption {
            name: "max_new_tokens",
            reason: "must be at least 1".into(),
        });
    }
    let small = dec.model();
    let mut acc = Accounting::default();
    policy.reset(opts.item);
    oracle.reset();
    let mut sampler = Sampler::new(opts.sampling.clone())?;
    let stop_tokens = small.stop_tokens().to_vec();

    let t = Instant::now();
    let prompt_ids = small.encode_prompt(prompt)?;
    let n_prompt = prompt_ids.len();
    // Reads are counted per item as if it ran alone: the prompt in full, even when the
    // decoder kept it (or a few-shot block) from the previous item and reads less.
    dec.sync(&prompt_ids)?;
    acc.small_read += n_prompt;
    acc.small_s += t.elapsed().as_secs_f64();

    // The completion is defined on text: a text hand-off re-tokenises `prompt + completion`,
    // and a prompt ending in a space may then merge with the completion's first word, so the
    // token boundary between prompt and completion can move; the text boundary cannot.
    let n_prefix = small.prefix_tokens().len().min(n_prompt);
    let prompt_text = small.decode(&prompt_ids[n_prefix..])?;
    let completion_of = |ids: &[u32]| -> Result<String> {
        let full = small.decode(&ids[n_prefix.min(ids.len())..])?;
        Ok(match full.strip_prefix(prompt_text.as_str()) {
            Some(rest) => rest.to_string(),
            None => small.decode(&ids[n_prompt.min(ids.len())..])?,
        })
    };
    // Stop strings are looked for in the text of the ids after the prompt's surviving ids
    // (cheap per step; the final text is cut on the exact completion).
    let mut kept_prompt = n_prompt;
    let hits_stop = |ids: &[u32], kept: usize| -> Result<bool> {
        if opts.until.is_empty() {
            return Ok(false);
        }
        let text = small.decode(&ids[kept.min(ids.len())..])?;
        Ok(opts.until.iter().any(|u| text.contains(u.as_str())))
    };
    let mut calls = Vec::new();
    let mut steps = Vec::new();
    let mut completion_text = String::new();
    let mut force_small = false;
    let stop = loop {
        let generated = dec.tokens().len().saturating_sub(n_prompt);
        if generated >= opts.max_new_tokens {
            break GuidedStop::MaxTokens;
        }
        if dec.tokens().len() >= small.max_positions() {
            break GuidedStop::ContextFull;
        }
        let t = Instant::now();
        let sig = signal(dec.logits());
        let (entropy, max_prob) = (sig.entropy, sig.max_prob);
        let signal = TokenSignal {
            position: generated,
            entropy,
            max_prob,
        };
        // After a hand-off that added nothing (an empty reply that is not a stop), the small
        // model takes the next step itself: asking again with the same context would get the
        // same empty reply, forever.
        let decision = if std::mem::take(&mut force_small) {
            HelpDecision::Continue
        } else {
            policy.decide(&signal)
        };
        acc.policy_s += t.elapsed().as_secs_f64();
        match decision {
            HelpDecision::Continue => {
                let t = Instant::now();
                let info = dec.step_with(&mut sampler, &sig)?;
                acc.small_generated += 1;
                steps.push(StepSignal {
                    position: generated,
                    token: info.token,
                    entropy,
                    max_prob,
                });
                if stop_tokens.contains(&info.token) {
                    acc.small_s += t.elapsed().as_secs_f64();
                    acc.small_step_s += t.elapsed().as_secs_f64();
                    break GuidedStop::SmallStop;
                }
                let hit = hits_stop(dec.tokens(), kept_prompt)?;
                acc.small_s += t.elapsed().as_secs_f64();
                acc.small_step_s += t.elapsed().as_secs_f64();
                if hit {
                    break GuidedStop::StopString;
                }
            }
            HelpDecision::AskOracle { tokens: 0 } => {
                return Err(GuidedError::InvalidOption {
                    name: "tokens",
                    reason: format!("policy `{}` asked the oracle for 0 tokens", policy.name()),
                });
            }
            HelpDecision::AskOracle { tokens } => {
                // Within the budget and the small model's context window.
                let remaining = (opts.max_new_tokens - generated)
                    .min(small.max_positions() - dec.tokens().len());
                let before = dec.tokens().len();
                let reply = match oracle.handoff() {
                    Handoff::Ids => oracle.continue_ids(dec.tokens(), tokens.min(remaining))?,
                    Handoff::Text => {
                        completion_text = completion_of(dec.tokens())?;
                        // k of the oracle's own tokens (cut at the budget in small-model
                        // tokens after re-tokenising), never more than the whole budget.
                        oracle.continue_text(
                            prompt,
                            &completion_text,
                            tokens.min(opts.max_new_tokens),
                        )?
                    }
                };
                acc.oracle_s += reply.wall.as_secs_f64();
                acc.oracle_calls += 1;
                acc.oracle_generated += reply.generated;
                acc.oracle_read += reply.read_tokens;
                let t = Instant::now();
                // Whether the small model's completion is exactly the text before the call
                // plus the oracle's (text hand-offs; judged before any cut at the budget), and
                // whether the hand-off was cut there.
                let mut exact_handoff = true;
                let mut cut = false;
                match oracle.handoff() {
                    Handoff::Ids => {
                        // A stop token ends the completion; the small model need not read it.
                        let content =
                            &reply.tokens[..reply.tokens.len() - usize::from(reply.stopped)];
                        dec.feed(content)?;
                        acc.small_read += content.len();
                        force_small = content.is_empty() && !reply.stopped;
                    }
                    Handoff::Text => {
                        let mut target = small
                            .encode_prompt(&format!("{prompt}{completion_text}{}", reply.text))?;
                        exact_handoff =
                            completion_of(&target)? == format!("{completion_text}{}", reply.text);
                        // The oracle wrote k of its own tokens; re-tokenised, they can run past
                        // the budget in small-model tokens: the completion is cut there.
                        let cap = (n_prompt + opts.max_new_tokens).min(small.max_positions());
                        if target.len() > cap {
                            target.truncate(cap);
                            cut = true;
                        }
                        let keep = common_prefix(dec.tokens(), &target);
                        acc.refed_after_handoff += dec.tokens().len() - keep;
                        acc.small_read += dec.sync(&target)?;
                        force_small = reply.text.is_empty() && !reply.stopped;
                        kept_prompt = kept_prompt.min(common_prefix(dec.tokens(), &prompt_ids));
                    }
                }
                let hit = hits_stop(dec.tokens(), kept_prompt)?;
                acc.small_s += t.elapsed().as_secs_f64();
                calls.push(OracleCall {
                    position: generated,
                    asked: tokens,
                    written: reply.generated,
                    small_tokens_added: dec.tokens().len().saturating_sub(before),
                    entropy,
                    max_prob,
                    exact_handoff,
                });
                if reply.stopped && !cut {
                    break GuidedStop::OracleStop;
                }
                if hit {
                    break GuidedStop::StopString;
                }
            }
        }
    };
    // Ids after the part of the prompt that survived re-tokenisation.
    let kept = common_prefix(dec.tokens(), &prompt_ids);
    let tokens = dec.tokens()[kept..].to_vec();
    let mut text = completion_of(dec.tokens())?;
    if let Some(cut) = evals::harness::generation::cut_at_stop(&text, &opts.until) {
        text.truncate(cut);
    }
    acc.small_flops = small
        .active_parameters()
        .map(|p| 2.0 * p as f64 * (acc.small_read + acc.small_generated) as f64);
    acc.oracle_flops = oracle
        .active_parameters()
        .map(|p| 2.0 * p as f64 * (acc.oracle_read + acc.oracle_generated) as f64);
    Ok(GuidedGeneration {
        tokens,
        text,
        stop,
        calls,
        steps,
        accounting: acc,
    })
}
