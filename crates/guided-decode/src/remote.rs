//! A remote oracle: any OpenAI-compatible `/v1/completions` endpoint (vLLM, TGI, llama.cpp's
//! server) — how users run an 8B or 70B oracle.
//!
//! Each call posts `{"model", "prompt": prompt + completion, "max_tokens": k, "temperature": 0}`
//! (plus `"logprobs"` when asked, and any server-specific fields of
//! [`RemoteConfig::extra_body`]) and reads `choices[0].text`, `choices[0].finish_reason`
//! (`"stop"` → the oracle stopped) and `usage` (prompt and completion token counts, for the
//! accounting). The hand-off is by text ([`Handoff::Text`]).
//!
//! Failures are typed ([`RemoteErrorKind`]): a refused or unreachable connection, a timeout, an
//! HTTP error status, a malformed response. Connection failures, timeouts and 5xx statuses are
//! retried (`retries` times, 200 ms · 2ⁱ apart); 4xx are not. The API key is read from an
//! environment variable named in the configuration, sent as a bearer token, and never appears in
//! errors, logs or `Debug` output.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{GuidedError, RemoteErrorKind, Result};
use crate::oracle::{Handoff, Oracle, OracleReply};

/// Where and how to reach a remote oracle.
#[derive(Clone, PartialEq)]
pub struct RemoteConfig {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The `model` field of each request.
    pub model: String,
    /// Name of the environment variable holding the API key (`None`: no key sent).
    pub api_key_env: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries after a connection failure, a timeout or a 5xx status.
    pub retries: usize,
    /// Ask for this many top log-probabilities per token (`None`: not asked).
    pub logprobs: Option<u32>,
    /// Parameters of the remote model, for FLOPs accounting, when known.
    pub active_parameters: Option<u64>,
    /// Server-specific fields added to every request body (a JSON object), e.g.
    /// `{"repeat_penalty": 1.0}` for llama.cpp's servers, whose default repeat penalty of 1.1
    /// would otherwise bend greedy decoding.
    pub extra_body: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("logprobs", &self.logprobs)
            .field("extra_body", &self.extra_body)
            .finish()
    }
}

impl RemoteConfig {
    /// A configuration with a 60 s timeout, 2 retries, no key and no log-probs.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            timeout: Duration::from_secs(60),
            retries: 2,
            logprobs: None,
            active_parameters: None,
            extra_body: serde_json::Map::new(),
        }
    }

    /// Reads the command-line form `NAME=URL[,model=M][,key_env=VAR][,params=N][,timeout=S]`:
    /// the name the endpoint is known by, and its configuration (`model` defaults to `NAME`,
    /// `key_env` names the environment variable holding the API key — never the key itself,
    /// `params` its active parameters for FLOPs, `timeout` seconds per request, finite and
    /// above 0). Anything else is [`GuidedError::InvalidOption`] naming the field.
    ///
    /// ```
    /// use guided_decode::RemoteConfig;
    ///
    /// let (name, cfg) =
    ///     RemoteConfig::from_spec("big=http://127.0.0.1:8080/v1,key_env=BIG_KEY,timeout=2.5")?;
    /// assert_eq!((name.as_str(), cfg.model.as_str()), ("big", "big"));
    /// assert_eq!(cfg.api_key_env.as_deref(), Some("BIG_KEY"));
    /// assert_eq!(cfg.timeout, std::time::Duration::from_millis(2500));
    /// assert!(RemoteConfig::from_spec("big=http://x/v1,timeout=-1").is_err());
    /// # Ok::<(), guided_decode::GuidedError>(())
    /// ```
    pub fn from_spec<'a>(spec: &'a str) -> Result<(String, Self)> {
        // The spec is not echoed whole: a misplaced secret must not reach a log.
        let bad = |reason: String| GuidedError::InvalidOption {
            name: "remote",
            reason,
        };
        let pair = |i: usize, s: &'a str| {
            s.split_once('=')
                .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| {
                    bad(format!(
                        "comma-separated part {} is not KEY=VALUE (NAME=URL[,model=M][,key_env=VAR][,params=N][,timeout=S])",
                        i + 1
                    ))
                })
        };
        let (name, url) = pair(0, spec.split(',').next().unwrap_or_default())?;
        let mut cfg = Self::new(url, name);
        for (i, part) in spec.split(',').enumerate().skip(1) {
            let (k, v) = pair(i, part)?;
            match k {
                "model" => cfg.model = v.into(),
                "key_env" => cfg.api_key_env = Some(v.into()),
                "params" => {
                    cfg.active_parameters = Some(v.parse().map_err(|_| {
                        bad(format!("`{name}`: params=`{v}` is not a whole number"))
                    })?)
                }
                "timeout" => {
                    let secs = v
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                        .ok_or_else(|| {
                            bad(format!(
                                "`{name}`: timeout=`{v}` is not a number of seconds above 0"
                            ))
                        })?;
                    cfg.timeout = Duration::from_secs_f64(secs);
                }
                other => {
                    return Err(bad(format!(
                        "`{name}`: unknown field `{other}` (model, key_env, params, timeout)"
                    )));
                }
            }
        }
        Ok((name.to_string(), cfg))
    }
}

/// A blocking client of an OpenAI-compatible server: POSTs JSON to `{base_url}{path}` with the
/// configured timeout, retries and bearer key, and classifies failures ([`RemoteErrorKind`]).
/// [`RemoteOracle`] and the `serve` crate's remote backends are built on it. Clones share the
/// connection pool and the key.
#[derive(Clone)]
pub struct OpenAiClient {
    cfg: RemoteConfig,
    base: String,
    agent: ureq::Agent,
    api_key: Option<String>,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("cfg", &self.cfg)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl OpenAiClient {
    /// Connects lazily (the first call opens the connection).
    ///
    /// # Errors
    /// A base URL that is not `http://` or `https://`, or a named key variable that is unset.
    pub fn new(cfg: RemoteConfig) -> Result<Self> {
        Self::with_environment(cfg, &|var| std::env::var(var).ok())
    }

    /// As [`OpenAiClient::new`], reading the key variable through `env` (a process's
    /// environment by default; tests and embedders pass their own lookup).
    ///
    /// # Errors
    /// As [`OpenAiClient::new`].
    pub fn with_environment(
        cfg: RemoteConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let base = cfg.base_url.trim_end_matches('/').to_string();
        let Some(rest) = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
        else {
            return Err(GuidedError::InvalidOption {
                name: "base_url",
                reason: format!("`{base}` is not an http:// or https:// URL"),
            });
        };
        // The URL appears in errors and reports, so it must not carry a secret: credentials
        // come from `api_key_env`. (The message does not repeat the URL.)
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains('@') || rest.contains('?') {
            return Err(GuidedError::InvalidOption {
                name: "base_url",
                reason: "user information or a query string in the URL: give credentials through `api_key_env`".into(),
            });
        }
        let api_key = match &cfg.api_key_env {
            None => None,
            Some(var) => Some(env(var).ok_or_else(|| GuidedError::InvalidOption {
                name: "api_key_env",
                reason: format!("environment variable {var} is not set"),
            })?),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            base,
            cfg,
            agent,
            api_key,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    /// A typed error about `path` (the URL is named; the key never is).
    pub fn error(
        &self,
        path: &str,
        kind: RemoteErrorKind,
        detail: impl Into<String>,
    ) -> GuidedError {
        GuidedError::Remote {
            url: format!("{}{path}", self.base),
            kind,
            detail: detail.into(),
        }
    }

    /// One POST, classified; `Ok((status, body))` for any HTTP answer.
    fn post_once(&self, path: &str, body: &Value) -> Result<(u16, String)> {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        match req.send_json(body) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp
                    .into_body()
                    .read_to_string()
                    .map_err(|e| self.classify(path, e))?;
                Ok((status, text))
            }
            Err(e) => Err(self.classify(path, e)),
        }
    }

    fn classify(&self, path: &str, e: ureq::Error) -> GuidedError {
        let kind = match &e {
            ureq::Error::Timeout(_) => RemoteErrorKind::Timeout,
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                RemoteErrorKind::Connection
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                RemoteErrorKind::Timeout
            }
            ureq::Error::Io(_) => RemoteErrorKind::Connection,
            _ => RemoteErrorKind::Protocol,
        };
        self.error(path, kind, e.to_string())
    }

    /// POSTs `body` (the configured `extra_body` fields added) to `{base_url}{path}` (`path`
    /// like `/completions`), with retries; returns the parsed JSON of a 2xx answer.
    ///
    /// # Errors
    /// [`GuidedError::Remote`]: connection failures and timeouts (after the retries), non-2xx
    /// statuses (with the first 200 characters of the answer), answers that are not JSON.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let mut body = body.clone();
        for (key, value) in &self.cfg.extra_body {
            body[key.as_str()] = value.clone();
        }
        let mut attempt = 0;
        loop {
            let outcome = self.post_once(path, &body);
            let retryable = match &outcome {
                Ok((status, _)) => *status >= 500,
                Err(GuidedError::Remote { kind, .. }) => {
                    matches!(kind, RemoteErrorKind::Connection | RemoteErrorKind::Timeout)
                }
                Err(_) => false,
            };
            if retryable && attempt < self.cfg.retries {
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
                attempt += 1;
                continue;
            }
            let (status, text) = outcome?;
            if !(200..300).contains(&status) {
                let snippet: String = text.chars().take(200).collect();
                return Err(self.error(path, RemoteErrorKind::HttpStatus(status), snippet));
            }
            return serde_json::from_str(&text).map_err(|e| {
                self.error(
                    path,
                    RemoteErrorKind::MalformedResponse,
                    format!(
                        "not JSON ({e}): {}",
                        text.chars().take(200).collect::<String>()
                    ),
                )
            });
        }
    }
}

/// An OpenAI-compatible completions endpoint as an [`Oracle`].
#[derive(Debug)]
pub struct RemoteOracle {
    client: OpenAiClient,
    /// Log-probabilities of the last reply's tokens, when asked for.
    pub last_logprobs: Option<Vec<f32>>,
}

const COMPLETIONS: &str = "/completions";

impl RemoteOracle {
    /// Connects lazily (the first call opens the connection).
    ///
    /// # Errors
    /// A base URL that is not `http://` or `https://`, or a named key variable that is unset.
    pub fn new(cfg: RemoteConfig) -> Result<Self> {
        Self::with_environment(cfg, &|var| std::env::var(var).ok())
    }

    /// As [`RemoteOracle::new`], reading the key variable through `env` (a process's
    /// environment by default; tests and embedders pass their own lookup).
    ///
    /// # Errors
    /// As [`RemoteOracle::new`].
    pub fn with_environment(
        cfg: RemoteConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        Ok(Self {
            client: OpenAiClient::with_environment(cfg, env)?,
            last_logprobs: None,
        })
    }

    /// An oracle on a client already built (its key already read; a server's remote backend
    /// lends its own).
    pub fn from_client(client: OpenAiClient) -> Self {
        Self {
            client,
            last_logprobs: None,
        }
    }

    fn error(&self, kind: RemoteErrorKind, detail: impl Into<String>) -> GuidedError {
        self.client.error(COMPLETIONS, kind, detail)
    }
}

impl Oracle for RemoteOracle {
    fn name(&self) -> &str {
        &self.client.config().model
    }

    fn handoff(&self) -> Handoff {
        Handoff::Text
    }

    fn continue_ids(&mut self, _context: &[u32], _k: usize) -> Result<OracleReply> {
        Err(GuidedError::InvalidOption {
            name: "handoff",
            reason: "a remote oracle exchanges text, not ids".into(),
        })
    }

    fn continue_text(&mut self, prompt: &str, completion: &str, k: usize) -> Result<OracleReply> {
        let t = Instant::now();
        let mut body = json!({
            "model": self.client.config().model,
            "prompt": format!("{prompt}{completion}"),
            "max_tokens": k,
            "temperature": 0,
        });
        if let Some(n) = self.client.config().logprobs {
            body["logprobs"] = json!(n);
        }
        let v = self.client.post(COMPLETIONS, &body)?;
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| self.error(RemoteErrorKind::MalformedResponse, "no `choices[0]`"))?;
        let text = choice
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.error(
                    RemoteErrorKind::MalformedResponse,
                    "`choices[0].text` is not a string",
                )
            })?
            .to_string();
        let stopped = choice.get("finish_reason").and_then(Value::as_str) == Some("stop");
        // The token counts are the call's cost: a reply without them is refused rather than
        // counted as free.
        let usage = |key: &str| {
            v.get("usage")
                .and_then(|u| u.get(key))
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    self.error(
                        RemoteErrorKind::MalformedResponse,
                        format!("no `usage.{key}` count"),
                    )
                })
        };
        let (generated, read_tokens) = (usage("completion_tokens")?, usage("prompt_tokens")?);
        self.last_logprobs = choice
            .get("logprobs")
            .and_then(|l| l.get("token_logprobs"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_f64)
                    .map(|x| x as f32)
                    .collect()
            });
        Ok(OracleReply {
            tokens: Vec::new(),
            generated,
            text,
            read_tokens,
            stopped,
            wall: t.elapsed(),
        })
    }

    fn reset(&mut self) {
        self.last_logprobs = None;
    }

    fn active_parameters(&self) -> Option<u64> {
        self.client.config().active_parameters
    }
}
