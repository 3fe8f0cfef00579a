//! OpenAI's wire format: the request bodies of `/v1/completions` and `/v1/chat/completions`,
//! their validation into a [`GenRequest`], and the response and stream-chunk JSON.
//!
//! Fields the server does not use (`user`, `presence_penalty`, …) are accepted and ignored, as
//! vLLM and llama.cpp's server do; fields whose meaning it cannot honour (`n > 1`, `logprobs`,
//! `best_of`, `echo`, `suffix`, `logit_bias`, `tools`, a `response_format` other than text)
//! are refused with a 400 naming the field, never silently dropped. A value of the wrong type
//! is a 400 naming its field too.

use lm::SamplingConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Limits every request is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens_cap: usize,
    /// `max_tokens` of a completion request that gives none (OpenAI's completions default is
    /// 16); a chat request without one runs to `max_tokens_cap`.
    pub default_max_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tokens_cap: 1024,
            default_max_tokens: 16,
        }
    }
}

/// A string or a list of strings (`prompt`, `stop`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// A list.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the request's `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// The fields both endpoints share.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// Model id.
    pub model: String,
    /// Budget of new tokens.
    pub max_tokens: Option<u64>,
    /// Chat's newer name for `max_tokens`.
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature in `[0, 2]`; 0 = greedy. Default 1, as OpenAI's.
    pub temperature: Option<f32>,
    /// Nucleus mass in `(0, 1]`.
    pub top_p: Option<f32>,
    /// Keep the `top_k` most likely tokens (vLLM's extension).
    pub top_k: Option<u64>,
    /// Sampling seed (default 0: every process random in this workspace takes a seed).
    pub seed: Option<u64>,
    /// Stop strings (at most 4, as OpenAI's).
    pub stop: Option<OneOrMany>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Stream options.
    pub stream_options: Option<StreamOptions>,
    /// Completions per prompt: only 1.
    pub n: Option<u64>,
    /// Not supported (400 when set).
    pub logprobs: Option<Value>,
    /// Not supported (400 when set).
    pub best_of: Option<u64>,
    /// Not supported (400 when true).
    pub echo: Option<bool>,
    /// Not supported (400 when a non-empty string).
    pub suffix: Option<String>,
    /// Not supported (400 when a non-empty map).
    pub logit_bias: Option<Value>,
    /// Tool calling is not supported (400 when a non-empty list).
    pub tools: Option<Value>,
    /// Structured output is not supported (400 unless `{"type": "text"}`).
    pub response_format: Option<Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The prompt: a string, or a list holding one string.
    pub prompt: OneOrMany,
    /// The shared fields.
    #[serde(flatten)]
    pub common: Common,
}

/// A chat message's content: a string or a list of `{"type": "text", "text"}` parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts (only text parts are accepted).
    Parts(Vec<Value>),
}

/// One chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageIn {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: Option<Content>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<MessageIn>,
    /// The shared fields.
    #[serde(flatten)]
    pub common: Common,
}

/// What to continue: raw text, or a conversation each backend renders in its model's chat
/// format.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A completion prompt.
    Text(String),
    /// Chat messages (`developer` is read as `system`).
    Chat(Vec<lm::tokenizer::ChatMessage>),
}

impl Input {
    /// The text a query router reads: the prompt, or the last message's content (as
    /// RouteLLM's server routes chat requests).
    pub fn routing_text(&self) -> &str {
        match self {
            Self::Text(t) => t,
            Self::Chat(m) => m.last().map(|m| m.content.as_str()).unwrap_or(""),
        }
    }
}

/// A validated request, as backends see it.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    /// What to continue.
    pub input: Input,
    /// Budget of new tokens (≥ 1, ≤ the server's cap).
    pub max_tokens: usize,
    /// Sampling.
    pub sampling: SamplingConfig,
    /// Stop strings.
    pub stop: Vec<String>,
}

/// A validated request plus how to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The requested model id.
    pub model: String,
    /// What the backend runs.
    pub request: GenRequest,
    /// Answer as server-sent events.
    pub stream: bool,
    /// Send usage in a last stream chunk.
    pub include_usage: bool,
}

/// Parses a JSON body into `T`, naming the position or field serde stopped at.
///
/// # Errors
/// A 400 with serde's message (`missing field `model` at line 1 column 20`).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let syntax = |e: serde_json::Error| ApiError {
        param: None,
        ..ApiError::invalid("", format!("The body is not valid JSON: {e}."))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        if e.is_syntax() || e.is_eof() {
            return syntax(e);
        }
        // The field serde stopped at (`max_tokens`, `messages[0].role`); `.` is the body
        // itself (a missing field names itself in the message). The shared fields are
        // flattened into each request, which hides their path: they are read alone to find
        // it.
        let param = (path != ".").then_some(path).or_else(|| {
            let mut de = serde_json::Deserializer::from_slice(body);
            serde_path_to_error::deserialize::<_, Common>(&mut de)
                .err()
                .map(|e| e.path().to_string())
                .filter(|p| p != ".")
        });
        ApiError {
            param,
            ..ApiError::invalid(
                "",
                format!("The body does not match the request schema: {e}."),
            )
        }
    })?;
    // Nothing but whitespace may follow the object.
    de.end().map_err(syntax)?;
    Ok(value)
}

impl Common {
    fn validate(&self, input: Input, limits: &Limits) -> Result<Validated, ApiError> {
        if self.model.is_empty() {
            return Err(ApiError::invalid("model", "`model` is empty."));
        }
        if let Some(n) = self.n.filter(|&n| n != 1) {
            return Err(ApiError::invalid(
                "n",
                format!("n = {n}: only n = 1 is supported."),
            ));
        }
        if self
            .logprobs
            .as_ref()
            .is_some_and(|v| !v.is_null() && *v != json!(false))
        {
            return Err(ApiError::invalid(
                "logprobs",
                "`logprobs` is not supported.",
            ));
        }
        if self.best_of.is_some_and(|b| b != 1) {
            return Err(ApiError::invalid("best_of", "`best_of` is not supported."));
        }
        if self.echo == Some(true) {
            return Err(ApiError::invalid("echo", "`echo` is not supported."));
        }
        if self.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid("suffix", "`suffix` is not supported."));
        }
        let non_empty = |v: &Option<Value>| {
            v.as_ref().is_some_and(|v| match v {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            })
        };
        if non_empty(&self.logit_bias) {
            return Err(ApiError::invalid(
                "logit_bias",
                "`logit_bias` is not supported.",
            ));
        }
        if non_empty(&self.tools) {
            return Err(ApiError::invalid("tools", "tool calling is not supported."));
        }
        if self
            .response_format
            .as_ref()
            .is_some_and(|v| !v.is_null() && *v != json!({"type": "text"}))
        {
            return Err(ApiError::invalid(
                "response_format",
                "only `{\"type\": \"text\"}` is supported.",
            ));
        }
        // Report whichever name the request used.
        let (asked, budget_field) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) => (Some(m), "max_completion_tokens"),
            (None, m) => (m, "max_tokens"),
        };
        let max_tokens = match asked {
            // OpenAI's chat endpoint has no small default: a chat answer runs to the cap.
            None if matches!(input, Input::Chat(_)) => limits.max_tokens_cap,
            None => limits.default_max_tokens.min(limits.max_tokens_cap),
            Some(0) => {
                return Err(ApiError::invalid(
                    budget_field,
                    format!("{budget_field} must be at least 1."),
                ));
            }
            Some(m) if m > limits.max_tokens_cap as u64 => {
                return Err(ApiError::invalid(
                    budget_field,
                    format!(
                        "{budget_field} = {m} exceeds this server's limit of {}.",
                        limits.max_tokens_cap
                    ),
                ));
            }
            Some(m) => m as usize,
        };
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature = {temperature} is outside [0, 2]."),
            ));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p = {p} is outside (0, 1]."),
            ));
        }
        let top_k = match self.top_k {
            None => None,
            Some(0) => return Err(ApiError::invalid("top_k", "top_k must be at least 1.")),
            Some(k) => Some(usize::try_from(k).unwrap_or(usize::MAX)),
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        if stop.len() > 4 {
            return Err(ApiError::invalid("stop", "At most 4 stop strings."));
        }
        if stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid("stop", "Stop strings must not be empty."));
        }
        let sampling = SamplingConfig {
            temperature,
            top_k,
            top_p: self.top_p.filter(|&p| p < 1.0),
            seed: self.seed.unwrap_or(0),
        };
        Ok(Validated {
            model: self.model.clone(),
            request: GenRequest {
                input,
                max_tokens,
                sampling,
                stop,
            },
            stream: self.stream,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
        })
    }
}

impl CompletionRequest {
    /// Checks the request against `limits`.
    ///
    /// # Errors
    /// A 400 naming the field at fault.
    pub fn validate(&self, limits: &Limits) -> Result<Validated, ApiError> {
        let prompt = match &self.prompt {
            OneOrMany::One(p) => p.clone(),
            OneOrMany::Many(v) if v.len() == 1 => v[0].clone(),
            OneOrMany::Many(v) => {
                return Err(ApiError::invalid(
                    "prompt",
                    format!(
                        "{} prompts in one request: send one prompt per request.",
                        v.len()
                    ),
                ));
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::invalid("prompt", "`prompt` is empty."));
        }
        self.common.validate(Input::Text(prompt), limits)
    }
}

impl ChatRequest {
    /// Checks the request against `limits`.
    ///
    /// # Errors
    /// A 400 naming the message or field at fault.
    pub fn validate(&self, limits: &Limits) -> Result<Validated, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid("messages", "`messages` is empty."));
        }
        let mut out = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        format!(
                            "Role `{other}` is not supported (system, developer, user, assistant)."
                        ),
                    ));
                }
            };
            let content = match &m.content {
                None => String::new(),
                Some(Content::Text(t)) => t.clone(),
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.iter().enumerate() {
                        match (
                            p.get("type").and_then(Value::as_str),
                            p.get("text").and_then(Value::as_str),
                        ) {
                            (Some("text"), Some(t)) => text.push_str(t),
                            _ => {
                                return Err(ApiError::invalid(
                                    format!("messages[{i}].content[{j}]"),
                                    "Only text content parts are supported.",
                                ));
                            }
                        }
                    }
                    text
                }
            };
            out.push(lm::tokenizer::ChatMessage::new(role, content));
        }
        self.common.validate(Input::Chat(out), limits)
    }
}

/// Why a completion ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// The token budget or the context window.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Compute and money one request spent ([`routing_core::cost`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    /// `2 × active parameters × tokens`, summed over the models that ran; `None` when a
    /// model's size is unknown (a remote API).
    pub flops: Option<f64>,
    /// Dollars at the configured per-million-token prices.
    pub dollars: f64,
}

/// What a backend produced for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOutput {
    /// The completion's text (no stop token or stop string).
    pub text: String,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens of the completion.
    pub completion_tokens: usize,
    /// Why it ended.
    pub finish: FinishReason,
    /// What it cost.
    pub cost: Cost,
    /// The backend that answered, when a router chose it.
    pub routed_to: Option<String>,
    /// The router's score (P(strong needed)), when a router chose.
    pub router_score: Option<f32>,
    /// Oracle calls and the tokens the oracle wrote, for guided models.
    pub oracle: Option<(usize, usize)>,
}

impl GenOutput {
    /// The response's `usage`: OpenAI's three counts plus `cost` (FLOPs, dollars) and, when
    /// they apply, `routed_to`, `router_score`, `oracle_calls`, `oracle_tokens`.
    pub fn usage(&self) -> Value {
        let mut u = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": {"flops": self.cost.flops, "dollars": self.cost.dollars},
        });
        if let Some(r) = &self.routed_to {
            u["routed_to"] = json!(r);
        }
        if let Some(s) = self.router_score {
            u["router_score"] = json!(s);
        }
        if let Some((calls, tokens)) = self.oracle {
            u["oracle_calls"] = json!(calls);
            u["oracle_tokens"] = json!(tokens);
        }
        u
    }
}

/// Which endpoint a response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`.
    Completions,
    /// `/v1/chat/completions`.
    Chat,
}

impl Endpoint {
    /// The id prefix (`cmpl-`, `chatcmpl-`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::Completions => "cmpl-",
            Self::Chat => "chatcmpl-",
        }
    }

    /// A whole (non-streamed) response.
    pub fn response(self, id: &str, created: u64, model: &str, out: &GenOutput) -> Value {
        let choice = match self {
            Self::Completions => json!({
                "index": 0, "text": out.text, "logprobs": null,
                "finish_reason": out.finish.as_str(),
            }),
            Self::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": out.text},
                "logprobs": null,
                "finish_reason": out.finish.as_str(),
            }),
        };
        json!({
            "id": id,
            "object": match self { Self::Completions => "text_completion", Self::Chat => "chat.completion" },
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": out.usage(),
        })
    }

    /// A stream chunk: a text piece (`finish = None`), the last piece with its finish reason,
    /// or (chat) the opening chunk with the assistant role (`role = true`).
    pub fn chunk(
        self,
        id: &str,
        created: u64,
        model: &str,
        text: &str,
        finish: Option<FinishReason>,
        role: bool,
    ) -> Value {
        let finish = finish.map(FinishReason::as_str);
        let choice = match self {
            Self::Completions => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
            }
            Self::Chat => {
                let delta = if role {
                    json!({"role": "assistant", "content": ""})
                } else if finish.is_some() && text.is_empty() {
                    json!({})
                } else {
                    json!({"content": text})
                };
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
        };
        json!({
            "id": id,
            "object": match self { Self::Completions => "text_completion", Self::Chat => "chat.completion.chunk" },
            "created": created,
            "model": model,
            "choices": [choice],
        })
    }

    /// The usage chunk `stream_options.include_usage` asks for (no choices).
    pub fn usage_chunk(self, id: &str, created: u64, model: &str, out: &GenOutput) -> Value {
        json!({
            "id": id,
            "object": match self { Self::Completions => "text_completion", Self::Chat => "chat.completion.chunk" },
            "created": created,
            "model": model,
            "choices": [],
            "usage": out.usage(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(body: &str) -> Result<Validated, ApiError> {
        parse_body::<CompletionRequest>(body.as_bytes())?.validate(&Limits::default())
    }

    #[test]
    fn completion_requests_are_validated_field_by_field() {
        let v =
            completion(r#"{"model":"m","prompt":"hi","max_tokens":5,"temperature":0,"stop":"\n"}"#)
                .unwrap();
        assert_eq!(v.request.max_tokens, 5);
        assert_eq!(v.request.sampling.temperature, 0.0);
        assert_eq!(v.request.stop, vec!["\n".to_string()]);
        assert_eq!(
            completion(r#"{"model":"m","prompt":["hi"]}"#)
                .unwrap()
                .request
                .max_tokens,
            16
        );
        let param = |b: &str| completion(b).unwrap_err().param;
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","max_tokens":100000}"#).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","max_tokens":0}"#).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","temperature":3}"#).as_deref(),
            Some("temperature")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","top_p":0}"#).as_deref(),
            Some("top_p")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","n":2}"#).as_deref(),
            Some("n")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":"hi","logprobs":3}"#).as_deref(),
            Some("logprobs")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":["a","b"]}"#).as_deref(),
            Some("prompt")
        );
        assert_eq!(
            param(r#"{"model":"m","prompt":""}"#).as_deref(),
            Some("prompt")
        );
        let e = completion(r#"{"model":"m","prompt":"hi""#).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let e = completion(r#"{"prompt":"hi"}"#).unwrap_err();
        assert!(e.message.contains("missing field `model`"), "{}", e.message);
    }

    #[test]
    fn chat_requests_name_the_message_at_fault() {
        let chat = |b: &str| {
            parse_body::<ChatRequest>(b.as_bytes()).and_then(|r| r.validate(&Limits::default()))
        };
        let v = chat(r#"{"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":3}"#).unwrap();
        assert_eq!(v.request.max_tokens, 3);
        assert_eq!(v.request.input.routing_text(), "hi");
        let e = chat(r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e =
            chat(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#)
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));
        assert_eq!(
            chat(r#"{"model":"m","messages":[]}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("messages")
        );
    }
}
