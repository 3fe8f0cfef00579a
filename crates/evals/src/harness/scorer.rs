//! Log-likelihood scoring through the [`LanguageModel`] trait.
//!
//! Two strategies give the same numbers (within float noise, < 1e-4 per log-likelihood):
//! * [`ScoringMode::PrefixCache`] (batch size 1): consecutive requests that share a token prefix
//!   (the choices of one item, the few-shot prefix of MMLU, the contexts of WinoGrande) reuse
//!   the KV cache — the cache is rolled back to the common prefix and only the rest is fed.
//!   Requests with the same model input (MMLU's `" A"`…`" D"`) reuse the logits outright, as
//!   lm-eval's `Collator` does for one-token continuations. Fastest on a CPU.
//! * [`ScoringMode::Batched`]: [`lm::loglikelihood`] over left-padded batches sorted by length,
//!   exactly lm-eval's `HFLM._loglikelihood_tokens` layout. Best where batches are cheap (GPU).
//!
//! Both apply lm-eval's truncation `inp = (ctx + cont)[-(max_length + 1):][:-1]`.

use lm::{ContinuationScore, LanguageModel, LogitsAt, nn::tensor_io::read_f32};

use super::error::{HarnessError, Result};
use super::request::TokenRequest;

/// How requests go through the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringMode {
    /// Batch 1 with KV-cache reuse across requests sharing a prefix.
    PrefixCache,
    /// Left-padded batches of this many rows ([`lm::loglikelihood`]).
    Batched(usize),
}

impl ScoringMode {
    /// `PrefixCache` for a batch size of 1 (or 0), `Batched(n)` otherwise.
    pub fn from_batch_size(n: usize) -> Self {
        if n <= 1 {
            Self::PrefixCache
        } else {
            Self::Batched(n)
        }
    }
}

/// Feeding more than this many tokens whose logits are not needed goes through a separate
/// forward pass with logits at the last position only (saves the LM head on long contexts).
const SPLIT_FEED_AT: usize = 64;

/// Scores [`TokenRequest`]s, keeping a KV cache between calls in [`ScoringMode::PrefixCache`].
pub struct Scorer<'m, M: LanguageModel> {
    model: &'m M,
    mode: ScoringMode,
    max_length: usize,
    cache: Option<M::Cache>,
    cached: Vec<u32>,
    last: Option<(Vec<u32>, usize, Vec<f32>)>,
    tokens_fed: usize,
    /// The block [`Scorer::begin_item`] last computed alone (its KV is a prefix of the cache).
    block: Vec<u32>,
}

impl<'m, M: LanguageModel> Scorer<'m, M> {
    /// A scorer with lm-eval's `max_length` (2048 in the goldens; at most the model's window).
    pub fn new(model: &'m M, mode: ScoringMode, max_length: usize) -> Self {
        Self {
            model,
            mode,
            max_length: max_length.min(model.max_positions()).max(1),
            cache: None,
            cached: Vec::new(),
            last: None,
            tokens_fed: 0,
            block: Vec::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &'m M {
        self.model
    }

    /// Tokens fed through the model so far (a cost measure).
    pub fn tokens_fed(&self) -> usize {
        self.tokens_fed
    }

    /// The effective `max_length`.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Starts an item: the KV cache is rolled back to `block` (a few-shot block every item of
    /// the task starts with; empty for none), computed alone in one forward pass the first
    /// time. What the item then feeds does not depend on the items before it, so its scores
    /// are the same in a single run and in any shard of it (`--shard`). Without this, the
    /// cache would keep the longest prefix shared with the previous item, computed in chunks
    /// that depend on that item — equal up to float rounding, not bit for bit.
    ///
    /// A no-op in [`ScoringMode::Batched`], whose left-padded batches already depend on which
    /// items share a batch.
    ///
    /// # Errors
    /// Model errors while computing the block.
    pub fn begin_item(&mut self, block: &[u32]) -> Result<()> {
        if self.mode != ScoringMode::PrefixCache {
            return Ok(());
        }
        self.last = None;
        let block = &block[..block.len().min(self.max_length.saturating_sub(1))];
        let kept = match self.cache.as_mut() {
            Some(c)
                if !block.is_empty() && self.block == block && self.cached.starts_with(block) =>
            {
                self.model.truncate(c, block.len());
                true
            }
            _ => false,
        };
        if kept {
            self.cached.truncate(block.len());
            return Ok(());
        }
        let mut cache = self.model.new_cache(1);
        self.cached.clear();
        self.block.clear();
        if !block.is_empty() {
            let r = self
                .model
                .forward(&[block.to_vec()], &mut cache, LogitsAt::Last);
            if let Err(e) = r {
                self.cache = None;
                return Err(e.into());
            }
            self.tokens_fed += block.len();
            self.cached.extend_from_slice(block);
            self.block = block.to_vec();
        }
        self.cache = Some(cache);
        Ok(())
    }

    /// Scores each request: `Σ log p(cont | ctx)`, greedy flag, per-token log-probabilities.
    pub fn score(&mut self, requests: &[TokenRequest]) -> Result<Vec<ContinuationScore>> {
        let trimmed: Vec<(Vec<u32>, Vec<u32>)> = requests
            .iter()
            .map(|r| self.truncate(r))
            .collect::<Result<_>>()?;
        match self.mode {
            ScoringMode::Batched(b) => {
                self.tokens_fed += trimmed
                    .iter()
                    .map(|(c, k)| c.len() + k.len() - 1)
                    .sum::<usize>();
                Ok(lm::loglikelihood(self.model, &trimmed, b)?)
            }
            ScoringMode::PrefixCache => trimmed
                .iter()
                .map(|(ctx, cont)| self.score_one(ctx, cont))
                .collect(),
        }
    }

    /// lm-eval's left truncation: keep the last `max_length + 1` tokens of `ctx ++ cont`.
    fn truncate(&self, r: &TokenRequest) -> Result<(Vec<u32>, Vec<u32>)> {
        if r.cont.is_empty() || r.ctx.len() + r.cont.len() < 2 {
            return Err(HarnessError::invalid(
                "request",
                "empty continuation or nothing to condition on",
            ));
        }
        if r.cont.len() > self.max_length {
            return Err(HarnessError::invalid(
                "request",
                format!(
                    "continuation of {} tokens exceeds max_length {}",
                    r.cont.len(),
                    self.max_length
                ),
            ));
        }
        let keep_ctx = (self.max_length + 1 - r.cont.len()).min(r.ctx.len());
        Ok((r.ctx[r.ctx.len() - keep_ctx..].to_vec(), r.cont.clone()))
    }

    fn score_one(&mut self, ctx: &[u32], cont: &[u32]) -> Result<ContinuationScore> {
        let mut input: Vec<u32> = ctx.iter().chain(cont).copied().collect();
        input.pop();
        let m = cont.len();
        let v = self.model.vocab_size();
        let reuse = matches!(&self.last, Some((inp, rows, _)) if *inp == input && *rows >= m);
        if !reuse {
            let logits = self.logits_tail(&input, m)?;
            self.last = Some((input.clone(), m, logits));
        }
        let (_, rows, logits) = self.last.as_ref().expect("set above");
        let base = rows - m;
        let mut token_logprobs = Vec::with_capacity(m);
        let mut is_greedy = true;
        for (k, &tok) in cont.iter().enumerate() {
            let row = &logits[(base + k) * v..(base + k + 1) * v];
            let (lp, argmax) = log_softmax_at(row, tok as usize);
            token_logprobs.push(lp);
            is_greedy &= argmax == tok as usize;
        }
        Ok(ContinuationScore {
            logprob: token_logprobs.iter().map(|&x| f64::from(x)).sum(),
            is_greedy,
            token_logprobs,
        })
    }

    /// Logits `[m, V]` (row-major) at the last `m` positions of `input` (batch 1), feeding only
    /// what the KV cache does not already hold: the cache keeps the longest common prefix of
    /// `input` and the previous call's input. Greedy generation calls this once per step with
    /// the growing sequence, which feeds one token per step.
    pub fn logits_tail(&mut self, input: &[u32], m: usize) -> Result<Vec<f32>> {
        if m == 0 || m > input.len() || input.len() > self.max_length {
            return Err(HarnessError::invalid(
                "logits_tail",
                format!(
                    "{m} rows of an input of {} tokens (max_length {})",
                    input.len(),
                    self.max_length
                ),
            ));
        }
        let r = self.forward_tail(input, m);
        if r.is_err() {
            // The cache may be half-updated: start afresh next time.
            self.cache = None;
            self.cached.clear();
        }
        r
    }

    fn forward_tail(&mut self, input: &[u32], m: usize) -> Result<Vec<f32>> {
        let n = input.len();
        let lcp = self
            .cached
            .iter()
            .zip(input)
            .take_while(|(a, b)| a == b)
            .count();
        let reuse = lcp.min(n - m);
        let cache = match self.cache.as_mut() {
            Some(c) => {
                self.model.truncate(c, reuse);
                c
            }
            None => {
                self.cache = Some(self.model.new_cache(1));
                self.cached.clear();
                self.cache.as_mut().expect("just set")
            }
        };
        let reuse = if self.cached.is_empty() { 0 } else { reuse };
        self.cached.truncate(reuse);
        let mut start = reuse;
        if n - m - start >= SPLIT_FEED_AT {
            let head = input[start..n - m].to_vec();
            self.model.forward(&[head], cache, LogitsAt::Last)?;
            self.tokens_fed += n - m - start;
            self.cached.extend_from_slice(&input[start..n - m]);
            start = n - m;
        }
        let tail = input[start..].to_vec();
        let logits = self.model.forward(&[tail], cache, LogitsAt::All)?;
        self.tokens_fed += n - start;
        self.cached.extend_from_slice(&input[start..]);
        let rows = logits.dims()[1];
        Ok(read_f32(logits.slice_dim(1, rows - m..rows))?)
    }
}

/// `(log_softmax(row)[target], argmax(row))`, the argmax taking the lowest index on ties
/// (numpy/torch). The normaliser is accumulated in f64 and the result rounded to f32.
pub fn log_softmax_at(row: &[f32], target: usize) -> (f32, usize) {
    let mut argmax = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[argmax] {
            argmax = i;
        }
    }
    let mx = f64::from(row[argmax]);
    let z: f64 = row.iter().map(|&x| (f64::from(x) - mx).exp()).sum();
    ((f64::from(row[target]) - mx - z.ln()) as f32, argmax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_and_first_argmax() {
        let (lp, am) = log_softmax_at(&[1.0, 3.0, 3.0], 0);
        let z = 1f64.exp() + 2.0 * 3f64.exp();
        assert!((f64::from(lp) - (1.0 - z.ln())).abs() < 1e-6);
        assert_eq!(am, 1);
    }
}
