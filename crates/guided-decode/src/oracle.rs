//! Oracles: models that continue `prompt + partial completion` for up to `k` tokens.
//!
//! The seed study's `oracle_infer(prompt, partial_completion, new_tokens=k)`. Two hand-offs:
//!
//! * **by id** ([`Handoff::Ids`]) when the oracle shares the small model's tokenizer: the
//!   oracle reads the small model's exact ids and its tokens are fed back as they are;
//! * **by text** ([`Handoff::Text`]) between different tokenizers (SmolLM2 ↔ Gemma): the oracle
//!   re-tokenises `prompt + completion` as the seed does, and the small model re-tokenises
//!   the completion with the oracle's text appended, keeping the longest common prefix of ids
//!   and rolling back the rest (so a word split across the hand-off is re-read whole, and no
//!   character is lost or duplicated).
//!
//! [`ModelOracle`] is the in-process oracle: it keeps its KV cache across calls (and items)
//! and only reads what changed since its last call.

use std::time::{Duration, Instant};

use lm::{Decoder, LanguageModel};

use crate::error::Result;

/// How an oracle and the small model exchange tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Handoff {
    /// Same tokenizer: ids are exchanged as they are.
    Ids,
    /// Different tokenizers: text is exchanged and re-tokenised.
    Text,
}

/// What one oracle call produced and cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OracleReply {
    /// The oracle's new tokens (its own ids; empty for a remote oracle, which returns text).
    pub tokens: Vec<u32>,
    /// How many tokens the oracle wrote (`tokens.len()`, or a remote server's
    /// `usage.completion_tokens`).
    pub generated: usize,
    /// Their text.
    pub text: String,
    /// Context tokens the oracle read for this call (its prefill; an item's first call counts
    /// its whole context, later calls only what their cache did not hold).
    pub read_tokens: usize,
    /// Whether the oracle emitted a stop token (kept in `tokens`).
    pub stopped: bool,
    /// Wall time of the call.
    #[serde(skip)]
    pub wall: Duration,
}

/// A model that continues a partial completion (greedy).
pub trait Oracle {
    /// A short name for reports.
    fn name(&self) -> &str;

    /// How this oracle hands tokens to the small model.
    fn handoff(&self) -> Handoff;

    /// Continues `context` — the small model's ids (prompt prefix, prompt, completion so far) —
    /// by up to `k` tokens. Only for [`Handoff::Ids`].
    ///
    /// # Errors
    /// Model errors; a text-only oracle returns an error.
    fn continue_ids(&mut self, context: &[u32], k: usize) -> Result<OracleReply>;

    /// Continues the text `prompt + completion` by up to `k` of the oracle's tokens.
    ///
    /// # Errors
    /// Model or tokenizer errors.
    fn continue_text(&mut self, prompt: &str, completion: &str, k: usize) -> Result<OracleReply>;

    /// Starts a new item. An in-process oracle keeps its cache, so that the next call reads
    /// only what differs from its last context.
    fn reset(&mut self);

    /// Starts a new item whose prompt begins with `shared_prefix` (a task's few-shot block,
    /// `None` for none), so that the item's numbers do not depend on the item before it: an
    /// in-process oracle brings its cache to that block computed alone
    /// ([`lm::Decoder::start_from`]); others just [`Oracle::reset`].
    ///
    /// # Errors
    /// Model or tokenizer errors.
    fn start_item(&mut self, shared_prefix: Option<&str>) -> Result<()> {
        let _ = shared_prefix;
        self.reset();
        Ok(())
    }

    /// Parameters a token passes through (FLOPs accounting), if known.
    fn active_parameters(&self) -> Option<u64>;
}

/// An in-process [`LanguageModel`] as the oracle, greedy, with its cache kept across the calls
/// of an item.
pub struct ModelOracle<'m, M: LanguageModel> {
    model: &'m M,
    handoff: Handoff,
    decoder: Decoder<'m, M>,
    /// No call since [`Oracle::reset`]: the next call's context counts in full.
    fresh_item: bool,
}

impl<'m, M: LanguageModel> ModelOracle<'m, M> {
    /// An oracle exchanging ids with a small model that has the same tokenizer.
    pub fn same_tokenizer(model: &'m M) -> Self {
        Self {
            model,
            handoff: Handoff::Ids,
            decoder: Decoder::empty(model),
            fresh_item: true,
        }
    }

    /// An oracle exchanging text with a small model of another tokenizer.
    pub fn text(model: &'m M) -> Self {
        Self {
            model,
            handoff: Handoff::Text,
            decoder: Decoder::empty(model),
            fresh_item: true,
        }
    }

    /// Brings the decoder to exactly `context` (what it shares with its previous context
    /// kept, the rest rolled back and read) and returns how many tokens were read.
    /// The count is per item as if it ran alone: an item's first call counts its whole
    /// context, even when the cache kept part of it from the previous item.
    fn sync(&mut self, context: &[u32]) -> Result<usize> {
        let read = self.decoder.sync(context)?;
        let fresh = std::mem::replace(&mut self.fresh_item, false);
        Ok(if fresh { context.len() } else { read })
    }

    /// Greedy continuation of the synchronised decoder by up to `k` tokens.
    fn extend(&mut self, k: usize) -> Result<(Vec<u32>, bool)> {
        let stop = self.model.stop_tokens().to_vec();
        let d = &mut self.decoder;
        // `k` comes from callers (a server's request): no allocation sized by it.
        let mut out = Vec::new();
        for i in 0..k {
            // Greedy: only the argmax is needed, not the whole distribution.
            let t = crate::speculative::argmax(d.logits()) as u32;
            out.push(t);
            if stop.contains(&t) {
                return Ok((out, true));
            }
            // The last token is not read: the next call's context decides what follows it
            // (and often re-tokenises it), so reading it now would be wasted.
            if i + 1 < k {
                d.feed(&[t])?;
            }
        }
        Ok((out, false))
    }
}

impl<M: LanguageModel> Oracle for ModelOracle<'_, M> {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn handoff(&self) -> Handoff {
        self.handoff
    }

    fn continue_ids(&mut self, context: &[u32], k: usize) -> Result<OracleReply> {
        let t = Instant::now();
        let read = self.sync(context)?;
        let (tokens, stopped) = self.extend(k)?;
        let text = self.model.decode(&tokens)?;
        Ok(OracleReply {
            generated: tokens.len(),
            tokens,
            text,
            read_tokens: read,
            stopped,
            wall: t.elapsed(),
        })
    }

    fn continue_text(&mut self, prompt: &str, completion: &str, k: usize) -> Result<OracleReply> {
        let t = Instant::now();
        let context = self.model.encode_prompt(&format!("{prompt}{completion}"))?;
        let read = self.sync(&context)?;
        let (tokens, stopped) = self.extend(k)?;
        // The text the new tokens add: decode with the context so that leading spaces and
        // multi-byte characters split across tokens come out right.
        // A final stop token ends the completion; its text (e.g. `<eos>`) is not part of it.
        let content = &tokens[..tokens.len() - usize::from(stopped)];
        let before = self.model.decode(&context)?;
        let mut all = context.clone();
        all.extend(content);
        let after = self.model.decode(&all)?;
        let text = match after.strip_prefix(before.as_str()) {
            Some(rest) => rest.to_string(),
            None => self.model.decode(content)?,
        };
        Ok(OracleReply {
            generated: tokens.len(),
            tokens,
            text,
            read_tokens: read,
            stopped,
            wall: t.elapsed(),
        })
    }

    fn reset(&mut self) {
        self.fresh_item = true;
        // The cache is kept: the next call reads only what differs from the last context (a
        // few-shot block shared by every item is read once).
    }

    fn start_item(&mut self, shared_prefix: Option<&str>) -> Result<()> {
        self.fresh_item = true;
        let block = match shared_prefix {
            Some(p) => self.model.encode_prompt(p)?,
            None => Vec::new(),
        };
        self.decoder.start_from(&block)?;
        Ok(())
    }

    fn active_parameters(&self) -> Option<u64> {
        self.model.active_parameters()
    }
}

/// Length of the longest common prefix.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
