//! What answers a request: the [`Backend`] trait and its four kinds.
//!
//! * [`LocalBackend`]: an `lm` model ([`CausalLm`]: GGUF or Hugging Face, f32 or the quantized
//!   CPU executor) in this process, as one or more replicas (each generates one request at a
//!   time; requests queue for a free replica);
//! * [`RemoteBackend`]: another OpenAI-compatible server (vLLM, TGI, llama.cpp's server) — how
//!   a strong model is scaled out;
//! * [`RoutedBackend`]: RouteLLM's query routing — an MF router scores the prompt and the
//!   request goes to the strong backend when the score reaches the threshold;
//! * [`GuidedBackend`]: token-level help — a local small model generates and asks an oracle
//!   (local or remote) for tokens when a [`HelpConfig`] policy says so.
//!
//! Backends are blocking (the server runs them on tokio's blocking pool) and report each
//! request's tokens and [`Cost`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use guided_decode::study::HelpConfig;
use guided_decode::{GuidedOptions, GuidedStop, ModelOracle, OpenAiClient, Oracle, RemoteOracle};
use lm::tokenizer::{ChatFormat, ChatMessage};
use lm::{CausalLm, GenerateOptions, LanguageModel, StopReason, generate_stream};
use routing_core::cost::ModelCost;
use routing_core::token::{EntropyTrigger, HelpPolicy, MaxProbTrigger, NeverHelp, RandomCalls};
use serde_json::{Value, json};

use crate::api::{Cost, FinishReason, GenOutput, GenRequest, Input};
use crate::error::BackendError;

/// One way of answering requests.
pub trait Backend: Send + Sync {
    /// The model id clients name.
    fn id(&self) -> &str;

    /// Who serves it, for `/v1/models`' `owned_by`: `local`, `remote`, `router`, `guided`.
    fn kind(&self) -> &'static str;

    /// Generates a completion, handing text to `on_text` as it is produced (a backend that
    /// cannot stream hands the whole text once); `on_text` returning `false` asks it to stop
    /// (the client went away).
    ///
    /// # Errors
    /// [`BackendError`]: the request does not fit this backend (400), a remote failed (502),
    /// the model failed (500).
    fn generate(
        &self,
        req: &GenRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenOutput, BackendError>;
}

/// Locks a mutex, taking over a poisoned one: the models are read-only during generation
/// (every request has its own cache), so a panic in one request leaves nothing half-written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A local model with one or more replicas.
pub struct LocalBackend {
    id: String,
    replicas: Vec<Mutex<CausalLm>>,
    next: AtomicUsize,
    cost: ModelCost,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("id", &self.id)
            .field("replicas", &self.replicas.len())
            .field("cost", &self.cost)
            .finish()
    }
}

impl LocalBackend {
    /// Serves `replicas` (identical models, loaded once each; requests queue for a free one)
    /// under `id`; the cost model's size is the model's own active parameters, its prices
    /// `prices`.
    ///
    /// # Errors
    /// [`crate::ServeError::InvalidOption`] when `replicas` is empty.
    pub fn new(
        id: impl Into<String>,
        replicas: Vec<CausalLm>,
        prices: routing_core::cost::TokenPrices,
    ) -> Result<Self, crate::ServeError> {
        if replicas.is_empty() {
            return Err(crate::ServeError::InvalidOption {
                name: "replicas".into(),
                reason: "at least one model is needed".into(),
            });
        }
        let active_parameters = replicas[0].active_parameters();
        Ok(Self {
            id: id.into(),
            replicas: replicas.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            cost: ModelCost {
                active_parameters,
                prices,
            },
        })
    }

    /// The cost model.
    pub fn cost(&self) -> ModelCost {
        self.cost
    }

    /// A free replica, or (all busy) the next one in turn, waited for.
    pub fn acquire(&self) -> MutexGuard<'_, CausalLm> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(g) = self.replicas[(start + i) % n].try_lock() {
                return g;
            }
        }
        lock(&self.replicas[start % n])
    }

    /// The prompt text a model reads: the completion prompt, or the messages in the model's
    /// chat format (told by its special tokens; ChatML otherwise, as SmolLM2's).
    pub fn render(model: &CausalLm, input: &Input) -> String {
        match input {
            Input::Text(t) => t.clone(),
            Input::Chat(messages) => ChatFormat::detect(model.tokenizer())
                .unwrap_or(ChatFormat::ChatMl)
                .render(messages, true),
        }
    }

    fn internal(&self, e: impl std::fmt::Display) -> BackendError {
        BackendError::Internal {
            backend: self.id.clone(),
            detail: e.to_string(),
        }
    }

    /// The prompt's ids, checked against the context window.
    fn prompt_ids(&self, model: &CausalLm, text: &str) -> Result<Vec<u32>, BackendError> {
        let ids = model.encode_prompt(text).map_err(|e| self.internal(e))?;
        if ids.is_empty() {
            return Err(BackendError::Invalid {
                param: "prompt",
                message: "The prompt encodes to no tokens.".into(),
            });
        }
        let window = model.max_positions();
        if ids.len() >= window {
            return Err(BackendError::Invalid {
                param: "prompt",
                message: format!(
                    "The prompt has {} tokens; model `{}` reads at most {window} (prompt + completion).",
                    ids.len(),
                    self.id
                ),
            });
        }
        Ok(ids)
    }
}

fn finish_of(stop: StopReason) -> FinishReason {
    match stop {
        StopReason::StopToken | StopReason::StopString => FinishReason::Stop,
        _ => FinishReason::Length,
    }
}

impl Backend for LocalBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    fn generate(
        &self,
        req: &GenRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenOutput, BackendError> {
        let model = self.acquire();
        let text = Self::render(&model, &req.input);
        let ids = self.prompt_ids(&model, &text)?;
        let opts = GenerateOptions {
            max_new_tokens: req.max_tokens,
            stop_strings: req.stop.clone(),
            sampling: req.sampling.clone(),
        };
        let mut streamed = String::new();
        let g = generate_stream(&*model, &ids, &opts, &mut |piece: &str| {
            streamed.push_str(piece);
            on_text(piece)
        })
        .map_err(|e| self.internal(e))?;
        let written = g.tokens.len();
        Ok(GenOutput {
            text: streamed,
            prompt_tokens: ids.len(),
            completion_tokens: written,
            finish: finish_of(g.stop),
            cost: Cost {
                flops: self.cost.flops(ids.len(), written),
                dollars: self.cost.dollars(ids.len(), written),
            },
            routed_to: None,
            router_score: None,
            oracle: None,
        })
    }
}

/// Another OpenAI-compatible server.
#[derive(Debug)]
pub struct RemoteBackend {
    id: String,
    client: OpenAiClient,
    cost: ModelCost,
}

impl RemoteBackend {
    /// Serves the remote model of `client`'s configuration under `id`, priced at `prices` (its
    /// size, for FLOPs, from the configuration's `active_parameters`).
    pub fn new(
        id: impl Into<String>,
        client: OpenAiClient,
        prices: routing_core::cost::TokenPrices,
    ) -> Self {
        let cost = ModelCost {
            active_parameters: client.config().active_parameters,
            prices,
        };
        Self {
            id: id.into(),
            client,
            cost,
        }
    }

    /// The client (configuration, key variable).
    pub fn client(&self) -> &OpenAiClient {
        &self.client
    }

    /// The cost model.
    pub fn cost(&self) -> ModelCost {
        self.cost
    }

    fn upstream(&self, detail: impl Into<String>) -> BackendError {
        BackendError::Upstream {
            backend: self.id.clone(),
            detail: detail.into(),
        }
    }
}

impl Backend for RemoteBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "remote"
    }

    fn generate(
        &self,
        req: &GenRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenOutput, BackendError> {
        let mut body = json!({
            "model": self.client.config().model,
            "max_tokens": req.max_tokens,
            "temperature": req.sampling.temperature,
            "seed": req.sampling.seed,
            "stream": false,
        });
        if let Some(p) = req.sampling.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(k) = req.sampling.top_k {
            body["top_k"] = json!(k);
        }
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let path = match &req.input {
            Input::Text(t) => {
                body["prompt"] = json!(t);
                "/completions"
            }
            Input::Chat(messages) => {
                body["messages"] = messages
                    .iter()
                    .map(|m: &ChatMessage| json!({"role": m.role, "content": m.content}))
                    .collect();
                "/chat/completions"
            }
        };
        // The error names the URL and the status, never the key (OpenAiClient's contract).
        let v = self
            .client
            .post(path, &body)
            .map_err(|e| self.upstream(e.to_string()))?;
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| self.upstream("the answer has no `choices[0]`"))?;
        let text = choice
            .get("text")
            .or_else(|| choice.get("message").and_then(|m| m.get("content")))
            .and_then(Value::as_str)
            .ok_or_else(|| self.upstream("the answer's `choices[0]` holds no text"))?
            .to_string();
        let finish = match choice.get("finish_reason").and_then(Value::as_str) {
            Some("length") => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        // The counts are the request's cost: an answer without them is refused rather than
        // billed as free.
        let usage = |key: &str| {
            v.get("usage")
                .and_then(|u| u.get(key))
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| self.upstream(format!("the answer has no `usage.{key}` count")))
        };
        let (read, written) = (usage("prompt_tokens")?, usage("completion_tokens")?);
        if !text.is_empty() {
            on_text(&text);
        }
        Ok(GenOutput {
            text,
            prompt_tokens: read,
            completion_tokens: written,
            finish,
            cost: Cost {
                flops: self.cost.flops(read, written),
                dollars: self.cost.dollars(read, written),
            },
            routed_to: None,
            router_score: None,
            oracle: None,
        })
    }
}

/// Scores a prompt for a pair router: higher = the strong model is more likely needed.
pub trait PromptScorer: Send + Sync {
    /// The score of `prompt`.
    ///
    /// # Errors
    /// A human sentence (the router's or the encoder's error).
    fn score(&self, prompt: &str) -> Result<f32, String>;

    /// The threshold the router was calibrated with, if any.
    fn calibrated_threshold(&self) -> Option<f64>;
}

impl<E: mf_router::embed_cache::TextEmbedder + Send> PromptScorer
    for Mutex<mf_router::checkpoint::LoadedRouter<E>>
{
    fn score(&self, prompt: &str) -> Result<f32, String> {
        let r = lock(self);
        r.score(&[prompt]).map(|s| s[0]).map_err(|e| e.to_string())
    }

    fn calibrated_threshold(&self) -> Option<f64> {
        lock(self).checkpoint().config.threshold
    }
}

/// RouteLLM-style query routing between a weak and a strong backend: strong when the router's
/// score `≥ threshold` (the rule of `mf_router::checkpoint::LoadedRouter::route`).
pub struct RoutedBackend {
    id: String,
    scorer: Arc<dyn PromptScorer>,
    threshold: f64,
    weak: Arc<dyn Backend>,
    strong: Arc<dyn Backend>,
}

impl std::fmt::Debug for RoutedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedBackend")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("weak", &self.weak.id())
            .field("strong", &self.strong.id())
            .finish()
    }
}

/// The id prefix of MF-routed models: `router-mf-<threshold>` (RouteLLM's naming; any
/// threshold may be asked for by name).
pub const ROUTER_PREFIX: &str = "router-mf-";

impl RoutedBackend {
    /// Routes between `weak` and `strong` at `threshold`, under the id `router-mf-<threshold>`.
    pub fn new(
        scorer: Arc<dyn PromptScorer>,
        threshold: f64,
        weak: Arc<dyn Backend>,
        strong: Arc<dyn Backend>,
    ) -> Self {
        Self {
            id: format!("{ROUTER_PREFIX}{threshold}"),
            scorer,
            threshold,
            weak,
            strong,
        }
    }

    /// The decision for `prompt`: the backend and the score.
    ///
    /// # Errors
    /// The router's failure, as a 500.
    pub fn decide(&self, prompt: &str) -> Result<(&Arc<dyn Backend>, f32), BackendError> {
        let score = self
            .scorer
            .score(prompt)
            .map_err(|detail| BackendError::Internal {
                backend: self.id.clone(),
                detail,
            })?;
        let target = if f64::from(score) >= self.threshold {
            &self.strong
        } else {
            &self.weak
        };
        Ok((target, score))
    }
}

impl Backend for RoutedBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "router"
    }

    fn generate(
        &self,
        req: &GenRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenOutput, BackendError> {
        let (target, score) = self.decide(req.input.routing_text())?;
        let mut out = target.generate(req, on_text)?;
        out.routed_to = Some(target.id().to_string());
        out.router_score = Some(score);
        Ok(out)
    }
}

/// Where a guided model's oracle runs.
#[derive(Debug, Clone)]
pub enum OracleBackend {
    /// A local model (text hand-off, or id hand-off when the vocabularies match).
    Local(Arc<LocalBackend>),
    /// A remote OpenAI-compatible completions server (text hand-off).
    Remote(Arc<RemoteBackend>),
}

/// The id prefix of guided models: `guided-<policy>` with the policy in `guided_decode`'s
/// command-line form (`guided-entropy:2.5x1`, `guided-maxprob:0.5x1`, `guided-random:2x2`,
/// `guided-small`).
pub const GUIDED_PREFIX: &str = "guided-";

/// Token-level help: a local small model that asks an oracle for tokens.
#[derive(Debug)]
pub struct GuidedBackend {
    id: String,
    config: HelpConfig,
    small: Arc<LocalBackend>,
    oracle: OracleBackend,
}

impl GuidedBackend {
    /// A guided model running `policy` (`entropy:2.5x1`, … — only the policies of
    /// [`guided_decode::guided_generate`]: small, random, entropy, max-probability).
    ///
    /// # Errors
    /// An unparsable or unsupported policy ([`crate::ServeError::InvalidOption`]).
    pub fn new(
        policy: &str,
        small: Arc<LocalBackend>,
        oracle: OracleBackend,
    ) -> Result<Self, crate::ServeError> {
        let config = Self::parse_policy(policy)?;
        Ok(Self {
            id: format!("{GUIDED_PREFIX}{policy}"),
            config,
            small,
            oracle,
        })
    }

    /// Parses a policy, refusing those a server cannot run per request.
    ///
    /// # Errors
    /// As [`GuidedBackend::new`].
    pub fn parse_policy(policy: &str) -> Result<HelpConfig, crate::ServeError> {
        let config = HelpConfig::parse(policy).map_err(|e| crate::ServeError::InvalidOption {
            name: "policy".into(),
            reason: e.to_string(),
        })?;
        match config {
            HelpConfig::Small
            | HelpConfig::Random { .. }
            | HelpConfig::Entropy { .. }
            | HelpConfig::MaxProb { .. } => Ok(config),
            _ => Err(crate::ServeError::InvalidOption {
                name: "policy".into(),
                reason: format!(
                    "`{policy}`: a guided model runs small, random:CxK, entropy:TAUxK or maxprob:TAUxK"
                ),
            }),
        }
    }

    fn policy(&self, budget: usize, seed: u64) -> Result<Box<dyn HelpPolicy>, BackendError> {
        let bad = |e: routing_core::RoutingError| BackendError::Invalid {
            param: "model",
            message: format!("policy of `{}`: {e}", self.id),
        };
        Ok(match self.config {
            HelpConfig::Random { calls, tokens } => {
                Box::new(RandomCalls::new(calls.min(budget), tokens, budget, seed).map_err(bad)?)
            }
            HelpConfig::Entropy { tau, tokens } => {
                Box::new(EntropyTrigger::new(tau, tokens, None).map_err(bad)?)
            }
            HelpConfig::MaxProb { tau, tokens } => {
                Box::new(MaxProbTrigger::new(tau, tokens, None).map_err(bad)?)
            }
            _ => Box::new(NeverHelp),
        })
    }
}

impl Backend for GuidedBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "guided"
    }

    fn generate(
        &self,
        req: &GenRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenOutput, BackendError> {
        let internal = |e: guided_decode::GuidedError| match e {
            guided_decode::GuidedError::Remote { .. } => BackendError::Upstream {
                backend: self.id.clone(),
                detail: e.to_string(),
            },
            _ => BackendError::Internal {
                backend: self.id.clone(),
                detail: e.to_string(),
            },
        };
        let mut policy = self.policy(req.max_tokens, req.sampling.seed)?;
        let opts = GuidedOptions {
            max_new_tokens: req.max_tokens,
            sampling: req.sampling.clone(),
            item: 0,
            until: req.stop.clone(),
        };
        // Lock order: small model, then oracle (the only pair of locks any request holds).
        let small = self.small.acquire();
        let prompt = LocalBackend::render(&small, &req.input);
        let prompt_ids = self.small.prompt_ids(&small, &prompt)?;
        let (g, oracle_cost) = match &self.oracle {
            OracleBackend::Local(o) => {
                let big = o.acquire();
                let mut oracle = if guided_decode::study::same_tokenizer(&*small, &*big) {
                    ModelOracle::same_tokenizer(&*big)
                } else {
                    ModelOracle::text(&*big)
                };
                let g = guided_decode::guided_generate(
                    &*small,
                    &mut oracle as &mut dyn Oracle,
                    &mut *policy,
                    &prompt,
                    &opts,
                )
                .map_err(internal)?;
                (g, o.cost())
            }
            OracleBackend::Remote(r) => {
                // The backend's own client: its key, read once, and its connections.
                let mut oracle = RemoteOracle::from_client(r.client().clone());
                let g = guided_decode::guided_generate(
                    &*small,
                    &mut oracle,
                    &mut *policy,
                    &prompt,
                    &opts,
                )
                .map_err(internal)?;
                (g, r.cost())
            }
        };
        // The completion's text without a final stop token's (`<|im_end|>`), as a local
        // model's.
        let mut text = g.text.clone();
        if matches!(g.stop, GuidedStop::SmallStop | GuidedStop::OracleStop) {
            for &t in small.stop_tokens() {
                if let Ok(s) = small.decode(&[t])
                    && !s.is_empty()
                    && text.ends_with(&s)
                {
                    text.truncate(text.len() - s.len());
                    break;
                }
            }
        }
        if !text.is_empty() {
            on_text(&text);
        }
        let a = &g.accounting;
        let small_cost = self.small.cost();
        let flops = match (small_cost.active_parameters, oracle_cost.active_parameters) {
            (Some(_), Some(_)) => Some(
                small_cost
                    .flops(a.small_read, a.small_generated)
                    .unwrap_or(0.0)
                    + oracle_cost
                        .flops(a.oracle_read, a.oracle_generated)
                        .unwrap_or(0.0),
            ),
            _ => None,
        };
        Ok(GenOutput {
            text,
            prompt_tokens: prompt_ids.len(),
            completion_tokens: g.tokens.len(),
            finish: match g.stop {
                GuidedStop::MaxTokens | GuidedStop::ContextFull => FinishReason::Length,
                _ => FinishReason::Stop,
            },
            cost: Cost {
                flops,
                dollars: a.dollars(small_cost.prices, oracle_cost.prices),
            },
            routed_to: None,
            router_score: None,
            oracle: Some((a.oracle_calls, a.oracle_generated)),
        })
    }
}
