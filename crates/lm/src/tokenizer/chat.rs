//! Chat formats: ChatML (SmolLM2), Llama 3 and Gemma, detected from the vocabulary; the Llama 3
//! template and its stop tokens.

use tokenizers::Tokenizer;

use crate::error::{LmError, Result};

/// One message of a chat: a role (`system`, `user`, `assistant`, ...) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The speaker's role, written into the header (`<|start_header_id|>{role}<|end_header_id|>`).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Llama 3's beginning-of-text token.
pub const LLAMA3_BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
/// Llama 3's end-of-text token (ends a document; a stop token).
pub const LLAMA3_END_OF_TEXT: &str = "<|end_of_text|>";
/// Llama 3's end-of-turn token (ends each chat message; a stop token).
pub const LLAMA3_EOT: &str = "<|eot_id|>";
/// Opens a Llama 3 message header.
pub const LLAMA3_START_HEADER: &str = "<|start_header_id|>";
/// Closes a Llama 3 message header.
pub const LLAMA3_END_HEADER: &str = "<|end_header_id|>";

/// Renders `messages` in the Llama 3 chat format, as Llama 3 Instruct's chat template does:
///
/// ```text
/// <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>...
/// ```
///
/// with each content trimmed of surrounding whitespace (the template's `| trim`), followed, when
/// `add_generation_prompt`, by the header of the assistant's reply,
/// `<|start_header_id|>assistant<|end_header_id|>\n\n`.
///
/// The text starts with `<|begin_of_text|>`, so encode it without the post-processor
/// (`tokenizer.encode(prompt, false)`) to avoid a second BOS; the special tokens in it are
/// matched as single tokens either way.
///
/// ```
/// use lm::tokenizer::{ChatMessage, llama3_chat_prompt};
///
/// let prompt = llama3_chat_prompt(&[ChatMessage::user("Hi!")], true);
/// assert_eq!(
///     prompt,
///     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>\
///      <|start_header_id|>assistant<|end_header_id|>\n\n"
/// );
/// ```
pub fn llama3_chat_prompt(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::from(LLAMA3_BEGIN_OF_TEXT);
    for m in messages {
        out.push_str(LLAMA3_START_HEADER);
        out.push_str(&m.role);
        out.push_str(LLAMA3_END_HEADER);
        out.push_str("\n\n");
        out.push_str(m.content.trim());
        out.push_str(LLAMA3_EOT);
    }
    if add_generation_prompt {
        out.push_str(LLAMA3_START_HEADER);
        out.push_str("assistant");
        out.push_str(LLAMA3_END_HEADER);
        out.push_str("\n\n");
    }
    out
}

/// The ids Llama 3 generation stops at: `<|eot_id|>` (end of a chat turn), then
/// `<|end_of_text|>`, looked up in `tokenizer`'s vocabulary (added tokens included).
///
/// # Errors
/// [`LmError::TokenNotInVocabulary`] naming the first token that is missing.
pub fn llama3_stop_ids(tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    [LLAMA3_EOT, LLAMA3_END_OF_TEXT]
        .iter()
        .map(|&token| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| LmError::TokenNotInVocabulary {
                    token: token.to_string(),
                    purpose: "Llama 3 stop ids",
                })
        })
        .collect()
}

/// A chat format, picked from the special tokens a vocabulary has ([`ChatFormat::detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` (SmolLM2, Qwen).
    ChatMl,
    /// Llama 3 ([`llama3_chat_prompt`]).
    Llama3,
    /// `<start_of_turn>{role}\n{content}<end_of_turn>\n`, the assistant's role named `model`
    /// (Gemma).
    Gemma,
}

impl ChatFormat {
    /// The format whose special tokens `tokenizer` has (Llama 3's headers, Gemma's turns,
    /// ChatML's `<|im_start|>`), or `None`.
    pub fn detect(tokenizer: &Tokenizer) -> Option<Self> {
        let has = |t: &str| tokenizer.token_to_id(t).is_some();
        if has(LLAMA3_START_HEADER) && has(LLAMA3_EOT) {
            Some(Self::Llama3)
        } else if has("<start_of_turn>") && has("<end_of_turn>") {
            Some(Self::Gemma)
        } else if has("<|im_start|>") && has("<|im_end|>") {
            Some(Self::ChatMl)
        } else {
            None
        }
    }

    /// Renders `messages` (and, when `add_generation_prompt`, the opening of the assistant's
    /// turn) *without* a leading BOS: feed the text with
    /// [`crate::LanguageModel::encode_prompt`], which prepends BOS where the model wants one.
    pub fn render(self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        match self {
            Self::Llama3 => llama3_chat_prompt(messages, add_generation_prompt)
                [LLAMA3_BEGIN_OF_TEXT.len()..]
                .to_string(),
            Self::ChatMl => {
                let mut out = String::new();
                for m in messages {
                    out.push_str(&format!(
                        "<|im_start|>{}\n{}<|im_end|>\n",
                        m.role, m.content
                    ));
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
                out
            }
            Self::Gemma => {
                let mut out = String::new();
                for m in messages {
                    let role = if m.role == "assistant" {
                        "model"
                    } else {
                        &m.role
                    };
                    out.push_str(&format!(
                        "<start_of_turn>{role}\n{}<end_of_turn>\n",
                        m.content.trim()
                    ));
                }
                if add_generation_prompt {
                    out.push_str("<start_of_turn>model\n");
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_chat_prompt_renders_the_template() {
        let messages = [
            ChatMessage::system("You are terse."),
            ChatMessage::user("  What is 2+2? \n"),
            ChatMessage::assistant("4"),
            ChatMessage::new("ipython", "{}"),
        ];
        assert_eq!(
            llama3_chat_prompt(&messages, false),
            "<|begin_of_text|>\
             <|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>\
             <|start_header_id|>ipython<|end_header_id|>\n\n{}<|eot_id|>"
        );
        assert_eq!(
            llama3_chat_prompt(&[], true),
            "<|begin_of_text|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn formats_render_without_bos() {
        let m = [ChatMessage::user(" Hi "), ChatMessage::assistant("Yo")];
        assert_eq!(
            ChatFormat::Gemma.render(&m, true),
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            ChatFormat::ChatMl.render(&m[..1], true),
            "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(
            ChatFormat::Llama3
                .render(&m, false)
                .starts_with(LLAMA3_START_HEADER)
        );
    }
}
