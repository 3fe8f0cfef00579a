//! The language-model trait shared by the benchmark harness, guided decoding and MoE work,
//! and the scoring functions built on it.
//!
//! A model implements four primitives ([`LanguageModel`]): a cache, padding, truncation and a
//! forward pass over a batch of equal-length (left-padded) rows. Everything else is generic:
//! * [`token_logprobs`] — teacher-forced `log p(tᵢ | t₍<ᵢ₎)` of a sequence;
//! * [`loglikelihood`] — batched `log p(continuation | context)` with lm-evaluation-harness
//!   semantics (the continuation's tokens scored after the context; `is_greedy` when each of
//!   them is the argmax; left truncation to the context window);
//! * [`mod@crate::generate`] — step-wise decoding with the cache, sampling and generation.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use tokenizers::Tokenizer;

use crate::error::{LmError, Result};
use crate::models::transformer::LogitsAt;
use crate::nn::tensor_io::{read_f32, read_i64};

/// A causal language model with a KV cache.
pub trait LanguageModel {
    /// The model's decoding cache.
    type Cache;

    /// A short name (for reports).
    fn name(&self) -> &str;

    /// The tokenizer.
    fn tokenizer(&self) -> &Tokenizer;

    /// Vocabulary size (logit width).
    fn vocab_size(&self) -> usize;

    /// Tokens that end a generation (EOS and friends).
    fn stop_tokens(&self) -> &[u32];

    /// Tokens every input starts with: BOS for models whose tokenizer adds it (Gemma, Llama 3),
    /// nothing for SmolLM2. [`Self::encode`] never adds them; scoring and generation put them
    /// in front of the context (lm-evaluation-harness does the same for Gemma).
    fn prefix_tokens(&self) -> &[u32] {
        &[]
    }

    /// Parameters a token passes through (embedding lookup excluded, LM head included), for
    /// FLOPs accounting (`≈ 2 ×` this per token); `None` when unknown.
    fn active_parameters(&self) -> Option<u64> {
        None
    }

    /// The beginning-of-sequence token, if the model has one (lm-eval's `prefix_token_id`
    /// for rolling perplexity windows falls back to EOS without it).
    fn bos_token(&self) -> Option<u32> {
        None
    }

    /// Maximum positions (context window).
    fn max_positions(&self) -> usize;

    /// A fresh cache for `batch` sequences.
    fn new_cache(&self, batch: usize) -> Self::Cache;

    /// Sets per-sequence left padding on an empty cache.
    fn set_padding(&self, cache: &mut Self::Cache, pad: Vec<usize>);

    /// Slots in the cache.
    fn cache_len(&self, cache: &Self::Cache) -> usize;

    /// Rolls the cache back to `len` slots.
    fn truncate(&self, cache: &mut Self::Cache, len: usize);

    /// Feeds `tokens` (`batch` rows of equal length) and returns logits `[batch, t | 1, vocab]`.
    fn forward(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut Self::Cache,
        at: LogitsAt,
    ) -> Result<Tensor<3>>;

    /// Encodes text without special tokens.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer()
            .encode(text, false)
            .map_err(|source| LmError::Tokenizers {
                context: "encoding",
                source,
            })?
            .get_ids()
            .to_vec())
    }

    /// [`Self::prefix_tokens`] followed by [`Self::encode`]: the ids a prompt is fed as.
    fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.prefix_tokens().to_vec();
        ids.extend(self.encode(text)?);
        Ok(ids)
    }

    /// Decodes ids to text (special tokens kept, as the reference decodes them).
    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer()
            .decode(ids, false)
            .map_err(|source| LmError::Tokenizers {
                context: "decoding",
                source,
            })
    }
}

/// The score of one continuation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContinuationScore {
    /// `Σ log p(continuation token | everything before it)`, natural log.
    pub logprob: f64,
    /// Whether every continuation token is the model's argmax (greedy) choice.
    pub is_greedy: bool,
    /// Per-token log-probabilities.
    pub token_logprobs: Vec<f32>,
}

/// Teacher-forced log-probabilities `log p(tᵢ | t₍<ᵢ₎)` for `i ≥ 1` (length `len − 1`).
pub fn token_logprobs<M: LanguageModel>(model: &M, tokens: &[u32]) -> Result<Vec<f32>> {
    if tokens.len() < 2 {
        return Ok(Vec::new());
    }
    let scores = loglikelihood(model, &[(tokens[..1].to_vec(), tokens[1..].to_vec())], 1)?;
    Ok(scores
        .into_iter()
        .next()
        .map(|s| s.token_logprobs)
        .unwrap_or_default())
}

/// Scores `(context, continuation)` pairs in batches of `batch_size`.
///
/// lm-evaluation-harness semantics (`HFLM._loglikelihood_tokens`): the model reads
/// `(context ++ continuation)[..−1]`, truncated from the left to the context window, and the
/// continuation's tokens are scored at the last `len(continuation)` positions. An empty
/// continuation is an error; an empty context is allowed only if the continuation has at least
/// two tokens (the first token cannot be scored without context).
pub fn loglikelihood<M: LanguageModel>(
    model: &M,
    requests: &[(Vec<u32>, Vec<u32>)],
    batch_size: usize,
) -> Result<Vec<ContinuationScore>> {
    let max = model.max_positions();
    let mut out = Vec::with_capacity(requests.len());
    // Sort by length (longest first) so that batches carry little padding; restore order after.
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(requests[i].0.len() + requests[i].1.len()));
    let mut results: Vec<Option<ContinuationScore>> = vec![None; requests.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut conts = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let (ctx, cont) = &requests[i];
            if cont.is_empty() || ctx.len() + cont.len() < 2 {
                return Err(LmError::InvalidModelConfig {
                    path: "loglikelihood".into(),
                    detail: format!("request {i}: continuation empty or nothing to condition on"),
                });
            }
            if cont.len() > max {
                return Err(LmError::SequenceTooLong {
                    len: cont.len(),
                    max,
                });
            }
            let mut seq: Vec<u32> = ctx.iter().chain(cont.iter()).copied().collect();
            seq.pop();
            let seq = seq[seq.len().saturating_sub(max)..].to_vec();
            rows.push(seq);
            conts.push(cont.clone());
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        let pad: Vec<usize> = rows.iter().map(|r| t - r.len()).collect();
        let padded: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| {
                std::iter::repeat_n(0u32, t - r.len())
                    .chain(r.iter().copied())
                    .collect()
            })
            .collect();
        let mut cache = model.new_cache(padded.len());
        model.set_padding(&mut cache, pad);
        let logits = model.forward(&padded, &mut cache, LogitsAt::All)?; // [b, t, V]
        let b = padded.len();
        // Targets: the continuation occupies the last len(cont) positions of each row.
        let mut target = vec![0i64; b * t];
        for (s, cont) in conts.iter().enumerate() {
            for (k, &tok) in cont.iter().enumerate() {
                target[s * t + (t - cont.len() + k)] = i64::from(tok);
            }
        }
        let lp = log_softmax(logits, 2);
        let idx = Tensor::<3, Int>::from_data(TensorData::new(target, [b, t, 1]), &lp.device());
        let picked = read_f32(lp.clone().gather(2, idx))?;
        let argmax = read_i64(lp.argmax(2))?;
        for (s, (&i, cont)) in chunk.iter().zip(&conts).enumerate() {
            let first = t - cont.len();
            let token_logprobs: Vec<f32> = (first..t).map(|p| picked[s * t + p]).collect();
            let is_greedy = (first..t)
                .zip(cont)
                .all(|(p, &tok)| argmax[s * t + p] == i64::from(tok));
            results[i] = Some(ContinuationScore {
                logprob: token_logprobs.iter().map(|&x| f64::from(x)).sum(),
                is_greedy,
                token_logprobs,
            });
        }
    }
    for r in results {
        out.push(r.ok_or_else(|| LmError::TensorRead {
            detail: "a request was not scored".into(),
        })?);
    }
    Ok(out)
}

/// How closely two models (two executors of one file, say) agree on teacher-forced
/// log-probabilities: [`agreement`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// The token windows scored (each read from an empty cache).
    pub windows: Vec<Vec<u32>>,
    /// `log p(tᵢ | t₍<ᵢ₎)` of the reference model, per window (tokens 1..).
    pub reference: Vec<Vec<f32>>,
    /// The same for the candidate.
    pub candidate: Vec<Vec<f32>>,
    /// Mean `|Δ log p|` over all scored tokens.
    pub mean_abs_delta: f64,
    /// Largest `|Δ log p|`.
    pub max_abs_delta: f64,
    /// Token perplexity `exp(−mean log p)` of the reference.
    pub ppl_reference: f64,
    /// The same for the candidate.
    pub ppl_candidate: f64,
}

/// Scores `tokens` in consecutive windows of `window` tokens with both models and compares
/// the log-probabilities ([`token_logprobs`] per window).
///
/// # Errors
/// Model errors; a window shorter than 2 tokens or no tokens at all.
pub fn agreement<A: LanguageModel, B: LanguageModel>(
    reference: &A,
    candidate: &B,
    tokens: &[u32],
    window: usize,
) -> Result<Agreement> {
    if window < 2 || tokens.len() < 2 {
        return Err(LmError::InvalidModelConfig {
            path: "agreement".into(),
            detail: format!(
                "{} tokens in windows of {window}: nothing to score",
                tokens.len()
            ),
        });
    }
    let windows: Vec<Vec<u32>> = tokens
        .chunks(window)
        .filter(|w| w.len() >= 2)
        .map(<[u32]>::to_vec)
        .collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for w in &windows {
        a.push(token_logprobs(reference, w)?);
        b.push(token_logprobs(candidate, w)?);
    }
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(&x, &y)| (f64::from(x), f64::from(y)))
        .collect();
    let n = pairs.len() as f64;
    let mean_abs_delta = pairs.iter().map(|(x, y)| (x - y).abs()).sum::<f64>() / n;
    let max_abs_delta = pairs.iter().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let ppl_reference = (-pairs.iter().map(|p| p.0).sum::<f64>() / n).exp();
    let ppl_candidate = (-pairs.iter().map(|p| p.1).sum::<f64>() / n).exp();
    Ok(Agreement {
        windows,
        reference: a,
        candidate: b,
        mean_abs_delta,
        max_abs_delta,
        ppl_reference,
        ppl_candidate,
    })
}
