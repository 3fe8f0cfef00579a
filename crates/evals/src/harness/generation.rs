//! Generation tasks: GSM8K (5-shot, `generate_until`) and MATH-500, with greedy decoding
//! through the [`Scorer`]'s prefix cache (the few-shot prefix is read once per run).
//!
//! Definitions: lm-eval `lm_eval/tasks/gsm8k/gsm8k.yaml` (prompt `"Question: {{question}}\nAnswer:"`,
//! target = the full reference answer, `until` stop strings, `max_gen_toks` 256, `strict-match` and
//! `flexible-extract` filters, `exact_match` with `ignore_case` and `regexes_to_ignore`) and
//! `lm_eval/tasks/hendrycks_math` / `minerva_math` (`extract_answer`, `is_equiv`).

use lm::LanguageModel;

use super::data::{Gsm8kRow, MathRow};
use super::error::{HarnessError, Result};
use super::scorer::Scorer;

/// GSM8K stop strings: lm-eval v3's `until` plus `"\n\n"` (as its older versions and the
/// goldens have it).
pub const GSM8K_UNTIL: [&str; 4] = ["Question:", "</s>", "<|im_end|>", "\n\n"];

/// GSM8K generation budget (lm-eval `max_gen_toks`).
pub const GSM8K_MAX_GEN_TOKS: usize = 256;

/// GSM8K few-shot prefix: for each shot `"Question: " + q + "\nAnswer: " + answer + "\n\n"`.
/// The shots are the first `shots` train rows (lm-eval samples them with seed 1234; fixed here
/// so that the prompt is reproducible, as in the goldens).
pub fn gsm8k_prefix(train: &[Gsm8kRow], shots: usize) -> String {
    train
        .iter()
        .take(shots)
        .map(|r| format!("Question: {}\nAnswer: {}\n\n", r.question, r.answer))
        .collect()
}

/// GSM8K prompt: prefix + `"Question: " + question + "\nAnswer:"` (no trailing space).
pub fn gsm8k_prompt(prefix: &str, row: &Gsm8kRow) -> String {
    format!("{prefix}Question: {}\nAnswer:", row.question)
}

/// MATH prompt (minerva-style zero-shot): `"Problem:\n" + problem + "\n\nSolution:"`.
pub fn math_prompt(row: &MathRow) -> String {
    format!("Problem:\n{}\n\nSolution:", row.problem)
}

/// Why greedy generation stopped (the goldens' `stop_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The argmax was a stop token (EOS; not kept).
    Eos,
    /// The decoded text contains a stop string.
    StopString,
    /// The token budget was spent.
    MaxNewTokens,
    /// The context window is full.
    ContextFull,
}

/// A greedy generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GreedyGeneration {
    /// Generated ids (the stop-string token included, EOS excluded).
    pub tokens: Vec<u32>,
    /// `decode(tokens, skip_special_tokens = true)`, uncut.
    pub raw_decoded: String,
    /// `raw_decoded` cut before the first occurrence of any stop string.
    pub text: String,
    /// Why it stopped.
    pub stop: StopReason,
    /// Top-1 minus top-2 logit at each step (one extra entry when EOS was chosen).
    pub top2_margins: Vec<f32>,
}

/// Cuts `text` before the earliest occurrence of any of `until`; `None` when none occurs.
pub fn cut_at_stop(text: &str, until: &[String]) -> Option<usize> {
    until.iter().filter_map(|s| text.find(s.as_str())).min()
}

fn top2(row: &[f32]) -> (usize, f32) {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    let second = row
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &x)| x)
        .fold(f32::NEG_INFINITY, f32::max);
    (best, row[best] - second)
}

/// Greedy decoding (argmax, lowest id on ties) of `prompt` until a stop token of the model
/// (not kept), a stop string in the decoded continuation (`skip_special_tokens = true`), or
/// `max_new_tokens` — HF `generate` with lm-eval's `StopSequencesCriteria`.
pub fn greedy_until<M: LanguageModel>(
    scorer: &mut Scorer<'_, M>,
    prompt: &[u32],
    until: &[String],
    max_new_tokens: usize,
) -> Result<GreedyGeneration> {
    let model = scorer.model();
    let decode = |ids: &[u32]| -> Result<String> {
        model
            .tokenizer()
            .decode(ids, true)
            .map_err(|e| HarnessError::invalid("decode", e.to_string()))
    };
    let mut seq = prompt.to_vec();
    let mut tokens = Vec::new();
    let mut margins = Vec::new();
    let mut raw = String::new();
    let mut stop = StopReason::MaxNewTokens;
    while tokens.len() < max_new_tokens {
        if seq.len() >= scorer.max_length() {
            stop = StopReason::ContextFull;
            break;
        }
        let logits = scorer.logits_tail(&seq, 1)?;
        let (tok, margin) = top2(&logits);
        margins.push(margin);
        let tok = tok as u32;
        if model.stop_tokens().contains(&tok) {
            stop = StopReason::Eos;
            break;
        }
        tokens.push(tok);
        seq.push(tok);
        raw = decode(&tokens)?;
        if cut_at_stop(&raw, until).is_some() {
            stop = StopReason::StopString;
            break;
        }
    }
    if tokens.is_empty() {
        raw.clear();
    }
    let text = match cut_at_stop(&raw, until) {
        Some(c) => raw[..c].to_string(),
        None => raw.clone(),
    };
    Ok(GreedyGeneration {
        tokens,
        raw_decoded: raw,
        text,
        stop,
        top2_margins: margins,
    })
}
