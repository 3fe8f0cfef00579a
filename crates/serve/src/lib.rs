//! `serve`: the workspace's routing behind an OpenAI-compatible HTTP API.
//!
//! Any OpenAI client (the `openai` Python package, `curl`, LangChain) talks to it: `GET
//! /v1/models`, `POST /v1/completions` and `/v1/chat/completions` (streaming as server-sent
//! events), plus `GET /health` and Prometheus-style `GET /metrics`. Behind each model id is a
//! [`Backend`]:
//!
//! | model id | backend | what happens |
//! |---|---|---|
//! | any name you give | [`LocalBackend`] | an `lm` model (GGUF or Hugging Face, quantized CPU executor or f32 on any burn device) |
//! | any name you give | [`RemoteBackend`] | another OpenAI-compatible server (vLLM, TGI, llama.cpp): how a strong model is scaled out |
//! | `router-mf-<threshold>` | [`RoutedBackend`] | query level: RouteLLM's MF router scores the prompt; strong backend when the score ≥ threshold (any threshold, by name) |
//! | `guided-<policy>` | [`GuidedBackend`] | token level: a local small model asks an oracle for `k` tokens when the policy (`entropy:2.5x1`, `maxprob:0.5x1`, `random:2x2`) says so |
//!
//! Every answer's `usage` carries, besides OpenAI's token counts, the request's `cost` (FLOPs
//! = 2 × active parameters × tokens; dollars at configured per-million-token prices:
//! [`routing_core::cost`]) and, for routed and guided models, `routed_to` / `router_score` and
//! `oracle_calls` / `oracle_tokens`; `/metrics` sums them per model.
//!
//! Safe by default: [`ServerConfig`] binds 127.0.0.1, can require a bearer key (constant-time
//! comparison), bounds bodies, `max_tokens` and requests in flight, answers bad requests with
//! OpenAI-style error JSON and the right status, and keeps serving when a backend fails.
//! Remote backends read their API keys from the environment and never log or echo them.
//!
//! ```
//! use std::sync::Arc;
//! use serve::{LocalBackend, Registry, ServerConfig, AppState};
//!
//! # let rt = tokio::runtime::Runtime::new()?;
//! # rt.block_on(async {
//! // A tiny random model stands in for SmolLM2 (`CausalLm::open` loads real ones).
//! let model = guided_decode::testing::tiny_model(40, 1);
//! let mut registry = Registry::new();
//! registry.add(Arc::new(LocalBackend::new("tiny", vec![model], Default::default())?))?;
//! let state = AppState::new(ServerConfig::default(), registry);
//!
//! // Serve on a free local port until the test ends.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/v1/completions", listener.local_addr()?);
//! tokio::spawn(serve::serve_on(listener, state, std::future::pending()));
//!
//! // Any OpenAI client works; here a blocking HTTP call off the runtime's threads.
//! let reply: serde_json::Value = tokio::task::spawn_blocking(move || {
//!     ureq::post(&url)
//!         .send_json(serde_json::json!({"model": "tiny", "prompt": "w1 w2", "max_tokens": 4, "temperature": 0}))?
//!         .into_body()
//!         .read_json::<serde_json::Value>()
//! })
//! .await??;
//! assert_eq!(reply["object"], "text_completion");
//! assert_eq!(reply["usage"]["completion_tokens"], 4);
//! assert!(reply["usage"]["cost"]["flops"].as_f64().unwrap() > 0.0);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! Modules: [`api`] (wire format and validation), [`backend`], [`server`] (routes, limits,
//! authentication, streaming), [`metrics`], [`error`].

pub mod api;
pub mod backend;
pub mod error;
pub mod metrics;
pub mod server;

pub use api::{Cost, FinishReason, GenOutput, GenRequest, Input, Limits};
pub use backend::{
    Backend, GuidedBackend, LocalBackend, OracleBackend, PromptScorer, RemoteBackend, RoutedBackend,
};
pub use error::{ApiError, BackendError, ServeError};
pub use metrics::{Metrics, Outcome};
pub use server::{
    AppState, Registry, ServerConfig, app, constant_time_eq, run, serve_on, shutdown_signal,
};
