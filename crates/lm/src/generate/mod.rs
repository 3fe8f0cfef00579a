//! Step-wise decoding with the KV cache, and text generation with stop strings.
//!
//! [`Decoder`] is the primitive guided decoding builds on: it keeps a single sequence's cache
//! and its last logits, can sample a step, feed tokens chosen elsewhere (an oracle's), and roll
//! back. [`generate`] drives it to produce text until EOS, a stop string or a token budget.

pub mod sampling;

use std::time::Instant;

use crate::error::{LmError, Result};
use crate::generate::sampling::{Sampler, SamplingConfig, StepInfo};
use crate::language_model::LanguageModel;
use crate::models::transformer::LogitsAt;
use crate::nn::tensor_io::read_f32;

/// Incremental decoding of one sequence.
pub struct Decoder<'m, M: LanguageModel> {
    model: &'m M,
    cache: M::Cache,
    tokens: Vec<u32>,
    logits: Vec<f32>,
    /// Tokens whose cache entries [`Decoder::start_from`] computed in one pass from an empty
    /// cache (still held while `tokens` starts with them).
    head: Vec<u32>,
}

impl<'m, M: LanguageModel> Decoder<'m, M> {
    /// Starts a sequence by reading `prompt` (prefill). The prompt must not be empty.
    pub fn new(model: &'m M, prompt: &[u32]) -> Result<Self> {
        if prompt.is_empty() {
            return Err(LmError::InvalidModelConfig {
                path: "decoder".into(),
                detail: "empty prompt".into(),
            });
        }
        let mut d = Self {
            model,
            cache: model.new_cache(1),
            tokens: Vec::new(),
            logits: Vec::new(),
            head: Vec::new(),
        };
        d.feed(prompt)?;
        Ok(d)
    }

    /// A decoder that has read nothing yet (no logits until [`Self::feed`] or [`Self::sync`]):
    /// the start of a decoder kept across items, so that a shared prompt prefix (a few-shot
    /// block) is read once.
    pub fn empty(model: &'m M) -> Self {
        Self {
            model,
            cache: model.new_cache(1),
            tokens: Vec::new(),
            logits: Vec::new(),
            head: Vec::new(),
        }
    }

    /// Brings the decoder to exactly `tokens`: the longest common prefix with what it has read
    /// is kept, the rest dropped from the cache, and the new tail read in one pass. Returns how
    /// many tokens were read (one when `tokens` is a strict prefix of what was read: its last
    /// token is re-read for the logits). An empty `tokens` empties the decoder.
    ///
    /// # Errors
    /// Model errors.
    pub fn sync(&mut self, tokens: &[u32]) -> Result<usize> {
        if tokens.is_empty() {
            self.cut(0);
            self.logits.clear();
            return Ok(0);
        }
        let keep = self
            .tokens
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if keep == 0 {
            self.cut(0);
            self.feed(tokens)?;
            return Ok(tokens.len());
        }
        if keep == tokens.len() {
            if keep == self.tokens.len() {
                return Ok(0);
            }
            // Nothing new to read: the logits after `tokens` need a re-read of its last one.
            self.rollback(self.tokens.len() - keep)?;
            return Ok(1);
        }
        // New tokens follow: cut the cache at the common prefix and read them; their pass
        // gives the logits.
        self.cut(keep);
        self.feed(&tokens[keep..])?;
        Ok(tokens.len() - keep)
    }

    /// Reads `tokens` and returns the next-token logits after each of them (row-major,
    /// `tokens.len() × vocab`); the last row becomes [`Self::logits`]. One forward pass: the
    /// verification step of speculative decoding and BiLD.
    ///
    /// # Errors
    /// Model errors.
    pub fn feed_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let logits = read_f32(self.model.forward(
            &[tokens.to_vec()],
            &mut self.cache,
            LogitsAt::All,
        )?)?;
        let v = logits.len() / tokens.len();
        self.logits = logits[logits.len() - v..].to_vec();
        self.tokens.extend_from_slice(tokens);
        Ok(logits)
    }

    /// Forgets every token after the first `len`, taking `logits` as the next-token logits
    /// after them — a row [`Self::feed_all`] returned for position `len − 1` — so that no
    /// token is re-read (unlike [`Self::rollback`]).
    ///
    /// # Errors
    /// `len` zero or beyond the tokens read, or `logits` of the wrong length.
    pub fn rewind(&mut self, len: usize, logits: &[f32]) -> Result<()> {
        if len == 0 || len > self.tokens.len() || logits.len() != self.model.vocab_size() {
            return Err(LmError::InvalidModelConfig {
                path: "decoder".into(),
                detail: format!(
                    "rewind to {len} of {} tokens with {} logits (vocabulary {})",
                    self.tokens.len(),
                    logits.len(),
                    self.model.vocab_size()
                ),
            });
        }
        self.cut(len);
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        Ok(())
    }

    /// The model.
    pub fn model(&self) -> &'m M {
        self.model
    }

    /// Tokens read so far (prompt and generated).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Next-token logits after the tokens read so far.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Reads tokens chosen elsewhere (e.g. by an oracle) and updates the next-token logits.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let logits = self
            .model
            .forward(&[tokens.to_vec()], &mut self.cache, LogitsAt::Last)?;
        self.logits = read_f32(logits)?;
        self.tokens.extend_from_slice(tokens);
        Ok(())
    }

    /// Samples the next token, reads it, and reports the step.
    pub fn step(&mut self, sampler: &mut Sampler) -> Result<StepInfo> {
        let info = sampler.sample(&self.logits)?;
        self.feed(&[info.token])?;
        Ok(info)
    }

    /// [`Decoder::step`] with `sig = signal(self.logits())` already computed by the caller
    /// ([`Sampler::sample_with`]): guided decoding's policy reads the signal first.
    pub fn step_with(&mut self, sampler: &mut Sampler, sig: &sampling::Signal) -> Result<StepInfo> {
        let info = sampler.sample_with(&self.logits, sig)?;
        self.feed(&[info.token])?;
        Ok(info)
    }

    /// Forgets the last `n` tokens (cache rolled back, logits recomputed from the token before).
    pub fn rollback(&mut self, n: usize) -> Result<()> {
        let keep = self.tokens.len().saturating_sub(n).max(1);
        if keep == self.tokens.len() {
            return Ok(());
        }
        let last = self.tokens[keep - 1];
        self.cut(keep - 1);
        self.feed(&[last])
    }

    /// Drops every token after the first `len` from the cache (and forgets a head it cuts into).
    fn cut(&mut self, len: usize) {
        self.model.truncate(&mut self.cache, len);
        self.tokens.truncate(len);
        if len < self.head.len() {
            self.head.clear();
        }
    }

    /// Brings the decoder to exactly `block` — a prefix every item of a task starts with (a
    /// few-shot block) — in a way that does not depend on what it read before: all but the
    /// last token of `block` read in one pass from an empty cache (done once, then kept while
    /// nothing cuts into it), then the last token alone for the logits. An empty `block`
    /// empties the decoder. Items started this way get the same numbers in a single run and
    /// in any shard of it; [`Decoder::sync`] from a previous item keeps the longest common
    /// prefix instead, computed in chunks that depend on that item (equal up to float
    /// rounding, not bit for bit).
    ///
    /// # Errors
    /// Model errors.
    pub fn start_from(&mut self, block: &[u32]) -> Result<()> {
        let Some((&last, head)) = block.split_last() else {
            self.cut(0);
            self.logits.clear();
            return Ok(());
        };
        if !self.head.is_empty() && self.head == head && self.tokens.starts_with(head) {
            self.cut(head.len());
        } else {
            self.cut(0);
            self.head.clear();
            if !head.is_empty() {
                self.feed(head)?;
                self.head = head.to_vec();
            }
        }
        self.feed(&[last])
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StopReason {
    /// The model emitted a stop token (kept in the output, as Hugging Face does).
    StopToken,
    /// The text contains a stop string (the text is cut before it).
    StopString,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The caller stopped it ([`generate_stream`]'s callback returned `false`).
    Cancelled,
}

/// Options of [`generate`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Budget of new tokens.
    pub max_new_tokens: usize,
    /// Strings that end generation (not included in the returned text).
    pub stop_strings: Vec<String>,
    /// Token selection.
    pub sampling: SamplingConfig,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            stop_strings: Vec::new(),
            sampling: SamplingConfig::greedy(),
        }
    }
}

/// A generation and its timings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    /// Generated token ids (including a final stop token, if any).
    pub tokens: Vec<u32>,
    /// Decoded text of the generated tokens, cut at a stop string.
    pub text: String,
    /// Per-step signals.
    pub steps: Vec<StepInfo>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Seconds spent reading the prompt.
    pub prefill_secs: f64,
    /// Seconds spent generating.
    pub decode_secs: f64,
}

impl Generation {
    /// Generated tokens per second (decode phase).
    pub fn tokens_per_sec(&self) -> f64 {
        if self.decode_secs > 0.0 {
            self.tokens.len() as f64 / self.decode_secs
        } else {
            0.0
        }
    }
}

/// Generates a continuation of `prompt` (token ids).
pub fn generate<M: LanguageModel>(
    model: &M,
    prompt: &[u32],
    opts: &GenerateOptions,
) -> Result<Generation> {
    generate_stream(model, prompt, opts, &mut |_| true)
}

/// [`generate`], handing the completion's text to `on_text` piece by piece as it is produced
/// (what a server streams). The pieces concatenate to [`Generation::text`] without a final
/// stop token's text (`<|im_end|>`): text that could still become a stop string, and bytes of
/// an unfinished UTF-8 character (a trailing `U+FFFD`), are held back until they are settled.
/// `on_text` returns `false` to stop generation ([`StopReason::Cancelled`]: a client went
/// away); the returned [`Generation`] then holds what was made so far.
///
/// ```no_run
/// use lm::{CausalLm, GenerateOptions, LanguageModel, generate_stream};
/// let model = CausalLm::open(lm::locate::smollm2_gguf()?, &burn::tensor::Device::flex())?;
/// let prompt = model.encode_prompt("The capital of France is")?;
/// let mut streamed = String::new();
/// let g = generate_stream(&model, &prompt, &GenerateOptions::default(), &mut |piece: &str| {
///     streamed.push_str(piece);
///     true
/// })?;
/// assert_eq!(streamed, g.text);
/// # Ok::<(), lm::LmError>(())
/// ```
pub fn generate_stream<M: LanguageModel>(
    model: &M,
    prompt: &[u32],
    opts: &GenerateOptions,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Generation> {
    let mut sampler = Sampler::new(opts.sampling.clone())?;
    let t0 = Instant::now();
    let mut dec = Decoder::new(model, prompt)?;
    let prefill_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut tokens = Vec::new();
    let mut steps = Vec::new();
    let mut stop = StopReason::MaxTokens;
    let mut text = String::new();
    // Bytes of `text` already handed to `on_text`.
    let mut sent = 0;
    while tokens.len() < opts.max_new_tokens {
        if dec.tokens().len() >= model.max_positions() {
            stop = StopReason::ContextFull;
            break;
        }
        let info = sampler.sample(dec.logits())?;
        tokens.push(info.token);
        steps.push(info);
        if model.stop_tokens().contains(&info.token) {
            stop = StopReason::StopToken;
            break;
        }
        text = model.decode(&tokens)?;
        if let Some(cut) = opts
            .stop_strings
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(cut);
            stop = StopReason::StopString;
            break;
        }
        let settled = settled_len(&text, &opts.stop_strings);
        if settled > sent {
            if !on_text(&text[sent..settled]) {
                stop = StopReason::Cancelled;
                break;
            }
            sent = settled;
        }
        if tokens.len() < opts.max_new_tokens {
            dec.feed(&[info.token])?;
        }
    }
    if stop == StopReason::StopToken {
        text = model.decode(&tokens[..tokens.len() - 1])?;
    }
    if stop != StopReason::Cancelled && text.len() > sent && text.is_char_boundary(sent) {
        on_text(&text[sent..]);
    }
    if stop == StopReason::StopToken {
        // As Hugging Face returns it: the stop token's text included.
        text = model.decode(&tokens)?;
    }
    Ok(Generation {
        tokens,
        text,
        steps,
        stop,
        prompt_tokens: prompt.len(),
        prefill_secs,
        decode_secs: t1.elapsed().as_secs_f64(),
    })
}

/// Length of the prefix of `text` that can be shown: without trailing replacement characters
/// (an unfinished multi-byte character) and without a suffix that is the start of a stop
/// string.
fn settled_len(text: &str, stop_strings: &[String]) -> usize {
    let mut end = text.trim_end_matches('\u{FFFD}').len();
    for s in stop_strings {
        // The longest proper prefix of `s` that `text[..end]` ends with.
        let cuts: Vec<usize> = s.char_indices().skip(1).map(|(i, _)| i).collect();
        for &i in cuts.iter().rev() {
            if text[..end].ends_with(&s[..i]) {
                end = end.min(text[..end].len() - i);
                break;
            }
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::settled_len;

    #[test]
    fn settled_text_holds_back_stop_prefixes_and_unfinished_characters() {
        let stops = vec!["\n\n".to_string(), "Question:".to_string()];
        assert_eq!(settled_len("Paris is", &stops), 8);
        // A single newline could start "\n\n": held back.
        assert_eq!(settled_len("Paris\n", &stops), 5);
        // "Ques" could start "Question:": held back, the longest such suffix.
        assert_eq!(settled_len("Paris. Ques", &stops), 7);
        // An unfinished multi-byte character decodes to U+FFFD: held back.
        assert_eq!(settled_len("caf\u{FFFD}", &[]), 3);
        assert_eq!(settled_len("", &stops), 0);
    }
}
