//! Log-likelihood requests and their tokenisation (lm-eval `_encode_pair`).

use lm::LanguageModel;

use super::error::Result;

/// One `(context, continuation)` pair to score, as text.
///
/// lm-eval's `multiple_choice` tasks build the continuation as `target_delimiter + choice` with
/// the default delimiter `" "` (prepended to the continuation, never appended to the context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextRequest {
    /// The conditioning text.
    pub context: String,
    /// The text whose log-likelihood is measured.
    pub continuation: String,
}

impl TextRequest {
    /// A request from its two parts.
    pub fn new(context: impl Into<String>, continuation: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            continuation: continuation.into(),
        }
    }
}

/// A request as token ids: the model reads `ctx ++ cont[..len-1]` and scores `cont`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRequest {
    /// Context tokens.
    pub ctx: Vec<u32>,
    /// Continuation tokens (at least one).
    pub cont: Vec<u32>,
}

/// Moves trailing whitespace of `context` to the front of `continuation`, as lm-eval's
/// `_encode_pair` does (`n_spaces = len(context) - len(context.rstrip())`).
///
/// Python's `str.rstrip()` strips Unicode whitespace; [`char::is_whitespace`] is used here.
pub fn split_trailing_whitespace(context: &str, continuation: &str) -> (String, String) {
    let trimmed = context.trim_end_matches(char::is_whitespace);
    let moved = &context[trimmed.len()..];
    (trimmed.to_string(), format!("{moved}{continuation}"))
}

/// Tokenises a request with lm-eval's `_encode_pair` (`lm_eval/api/model.py`):
/// trailing whitespace of the context moves to the continuation, then
/// `whole = encode(context + continuation)`, `ctx = encode(context)` and
/// `cont = whole[len(ctx)..]`. The continuation is never encoded on its own. Both encodings
/// start with the model's [`LanguageModel::prefix_tokens`] (BOS for Gemma, as lm-eval's
/// `add_bos_token`, which it forces for Gemma; nothing for SmolLM2).
pub fn encode_pair<M: LanguageModel>(model: &M, req: &TextRequest) -> Result<TokenRequest> {
    let (context, continuation) = split_trailing_whitespace(&req.context, &req.continuation);
    let whole = model.encode_prompt(&format!("{context}{continuation}"))?;
    let ctx = model.encode_prompt(&context)?;
    let cont = whole.get(ctx.len()..).unwrap_or_default().to_vec();
    Ok(TokenRequest { ctx, cont })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_moves_to_the_continuation() {
        let (c, k) = split_trailing_whitespace("Answer: \n", "A");
        assert_eq!((c.as_str(), k.as_str()), ("Answer:", " \nA"));
        let (c, k) = split_trailing_whitespace("Answer:", " A");
        assert_eq!((c.as_str(), k.as_str()), ("Answer:", " A"));
    }
}
