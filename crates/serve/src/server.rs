//! The HTTP side: [`ServerConfig`], the model [`Registry`], the axum [`app`] and [`run`].
//!
//! Routes: `GET /health` (no key needed), `GET /v1/models`, `POST /v1/completions`,
//! `POST /v1/chat/completions` (both with `"stream": true` as server-sent events ending in
//! `data: [DONE]`), `GET /metrics`.
//!
//! Safety by default: the server binds to 127.0.0.1; with a key configured every route but
//! `/health` needs `Authorization: Bearer <key>` (compared in constant time; 401 otherwise);
//! bodies over `max_body_bytes` get a 413 and `max_tokens` over the cap a 400; at most
//! `max_in_flight` requests are served or queued at once (503 beyond). Generation runs on
//! tokio's blocking pool: a backend that fails or panics answers that one request with a 5xx
//! and the server goes on; a client that disconnects mid-stream stops its generation at the
//! next token.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{
    self, ChatRequest, CompletionRequest, Endpoint, GenOutput, GenRequest, Limits, Validated,
};
use crate::backend::{
    Backend, GUIDED_PREFIX, GuidedBackend, LocalBackend, OracleBackend, PromptScorer,
    ROUTER_PREFIX, RoutedBackend,
};
use crate::error::{ApiError, BackendError, ServeError};
use crate::metrics::{Metrics, Outcome};

/// How the server listens and what it accepts.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1:8080`: this machine only).
    pub bind: SocketAddr,
    /// Bearer key clients must send (`None`: no key needed). Never logged.
    pub api_key: Option<String>,
    /// Largest request body, bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Requests served or queued at once; more get a 503 (default 256).
    pub max_in_flight: usize,
    /// `max_tokens` limits.
    pub limits: Limits,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_key: None,
            max_body_bytes: 1 << 20,
            max_in_flight: 256,
            limits: Limits::default(),
        }
    }
}

/// A pair router's parts, for `router-mf-<threshold>` names with any threshold.
struct RouterFamily {
    scorer: Arc<dyn PromptScorer>,
    weak: Arc<dyn Backend>,
    strong: Arc<dyn Backend>,
}

/// A guided pair's parts, for `guided-<policy>` names with any policy.
struct GuidedFamily {
    small: Arc<LocalBackend>,
    oracle: OracleBackend,
}

/// The served models: fixed ids, plus the `router-mf-*` and `guided-*` families resolved
/// from the requested name.
#[derive(Default)]
pub struct Registry {
    models: BTreeMap<String, Arc<dyn Backend>>,
    router: Option<RouterFamily>,
    guided: Option<GuidedFamily>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .field("router", &self.router.is_some())
            .field("guided", &self.guided.is_some())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a backend under its id.
    ///
    /// # Errors
    /// [`ServeError::DuplicateModel`].
    pub fn add(&mut self, backend: Arc<dyn Backend>) -> Result<(), ServeError> {
        let id = backend.id().to_string();
        if self.models.contains_key(&id) {
            return Err(ServeError::DuplicateModel { id });
        }
        self.models.insert(id, backend);
        Ok(())
    }

    /// A registered backend.
    ///
    /// # Errors
    /// [`ServeError::UnknownModel`] naming `option` (the flag or field that named it).
    pub fn get(&self, id: &str, option: &str) -> Result<Arc<dyn Backend>, ServeError> {
        self.models
            .get(id)
            .cloned()
            .ok_or_else(|| ServeError::UnknownModel {
                option: option.into(),
                id: id.into(),
                known: self.models.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Serves `router-mf-<threshold>` for every threshold a request names, routing between
    /// `weak` and `strong` with `scorer`; lists `router-mf-<t>` for each of `listed` (and the
    /// scorer's calibrated threshold, when it has one) in `/v1/models`.
    ///
    /// # Errors
    /// [`ServeError::DuplicateModel`] when a listed id is taken.
    pub fn set_router(
        &mut self,
        scorer: Arc<dyn PromptScorer>,
        weak: Arc<dyn Backend>,
        strong: Arc<dyn Backend>,
        listed: &[f64],
    ) -> Result<(), ServeError> {
        let mut thresholds = listed.to_vec();
        thresholds.extend(scorer.calibrated_threshold());
        for t in thresholds {
            let r = RoutedBackend::new(scorer.clone(), t, weak.clone(), strong.clone());
            if !self.models.contains_key(r.id()) {
                self.add(Arc::new(r))?;
            }
        }
        self.router = Some(RouterFamily {
            scorer,
            weak,
            strong,
        });
        Ok(())
    }

    /// Serves `guided-<policy>` for every policy a request names (`guided-entropy:2.5x1`),
    /// with `small` generating and `oracle` helping; lists `guided-<p>` for each of `listed`.
    ///
    /// # Errors
    /// An invalid listed policy, a taken id, or a small model that is also the oracle.
    pub fn set_guided(
        &mut self,
        small: Arc<LocalBackend>,
        oracle: OracleBackend,
        listed: &[&str],
    ) -> Result<(), ServeError> {
        if let OracleBackend::Local(o) = &oracle
            && Arc::ptr_eq(o, &small)
        {
            return Err(ServeError::InvalidOption {
                name: "guided oracle".into(),
                reason: format!("`{}` cannot be its own oracle", small.id()),
            });
        }
        for p in listed {
            self.add(Arc::new(GuidedBackend::new(
                p,
                small.clone(),
                oracle.clone(),
            )?))?;
        }
        self.guided = Some(GuidedFamily { small, oracle });
        Ok(())
    }

    /// The ids `/v1/models` lists, with their kind.
    pub fn list(&self) -> Vec<(String, &'static str)> {
        self.models
            .values()
            .map(|b| (b.id().to_string(), b.kind()))
            .collect()
    }

    /// The backend for a requested model id, and the key its metrics are counted under.
    ///
    /// # Errors
    /// A 404 for an id that is neither registered nor a valid `router-mf-<threshold>` /
    /// `guided-<policy>` name of a configured family.
    pub fn resolve(&self, id: &str) -> Result<(Arc<dyn Backend>, String), ApiError> {
        if let Some(b) = self.models.get(id) {
            return Ok((b.clone(), id.to_string()));
        }
        if let (Some(r), Some(t)) = (&self.router, id.strip_prefix(ROUTER_PREFIX))
            && let Some(threshold) = t.parse::<f64>().ok().filter(|x| x.is_finite())
        {
            let b = RoutedBackend::new(
                r.scorer.clone(),
                threshold,
                r.weak.clone(),
                r.strong.clone(),
            );
            return Ok((Arc::new(b), format!("{ROUTER_PREFIX}*")));
        }
        if let (Some(g), Some(p)) = (&self.guided, id.strip_prefix(GUIDED_PREFIX))
            && let Ok(b) = GuidedBackend::new(p, g.small.clone(), g.oracle.clone())
        {
            return Ok((Arc::new(b), format!("{GUIDED_PREFIX}*")));
        }
        Err(ApiError::unknown_model(id))
    }
}

/// What the handlers share.
pub struct AppState {
    config: ServerConfig,
    registry: Registry,
    metrics: Metrics,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .finish()
    }
}

impl AppState {
    /// State for `registry` under `config`.
    pub fn new(config: ServerConfig, registry: Registry) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            registry,
            metrics: Metrics::default(),
            next_id: AtomicU64::new(1),
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Equality of two byte strings in time that depends on their lengths only, not on where
/// they differ (a key cannot be guessed byte by byte from response times).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

async fn auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let err = match given {
            None => Some(ApiError::unauthorized(true)),
            Some(g) if !constant_time_eq(g.trim().as_bytes(), key.as_bytes()) => {
                Some(ApiError::unauthorized(false))
            }
            Some(_) => None,
        };
        if let Some(e) = err {
            return fail(&state, e);
        }
    }
    next.run(req).await
}

fn fail(state: &AppState, e: ApiError) -> Response {
    state
        .metrics
        .record_http_error(e.status.as_u16(), e.kind.as_str());
    e.into_response()
}

/// The axum application for `state` (mount it, or hand it to [`run`]).
pub fn app(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/health", get(health))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// Binds `config.bind` and serves `registry` until `shutdown` resolves.
///
/// # Errors
/// [`ServeError::Io`] when the address cannot be bound or serving fails.
pub async fn run(
    config: ServerConfig,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let bind = config.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| ServeError::Io {
            context: format!("binding {bind}"),
            source,
        })?;
    serve_on(listener, AppState::new(config, registry), shutdown).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `kill`, Slurm and Kubernetes send): the
/// `shutdown` future [`run`] takes, so a server finishes the requests in flight and returns.
/// Where SIGTERM cannot be watched, Ctrl-C alone.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves `state` on an already bound listener (tests bind `127.0.0.1:0`).
///
/// # Errors
/// [`ServeError::Io`] when serving fails.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError::Io {
            context: "serving".into(),
            source,
        })
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "models": state.registry.models.len(),
        "in_flight": state.metrics.in_flight_now(),
    }))
}

async fn not_found(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let e = ApiError {
        status: StatusCode::NOT_FOUND,
        code: Some("not_found"),
        param: None,
        ..ApiError::invalid(
            "",
            format!("No route {} {}.", req.method(), req.uri().path()),
        )
    };
    fail(&state, e)
}

async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let data: Vec<_> = state
        .registry
        .list()
        .into_iter()
        .map(|(id, kind)| json!({"id": id, "object": "model", "created": 0, "owned_by": kind}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limits = state.config.limits;
    let v =
        read_body(body).and_then(|b| api::parse_body::<CompletionRequest>(&b)?.validate(&limits));
    answer(state, Endpoint::Completions, v).await
}

async fn chat(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let limits = state.config.limits;
    let v = read_body(body).and_then(|b| api::parse_body::<ChatRequest>(&b)?.validate(&limits));
    answer(state, Endpoint::Chat, v).await
}

fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        ApiError {
            status,
            code: (status == StatusCode::PAYLOAD_TOO_LARGE).then_some("request_too_large"),
            param: None,
            ..ApiError::invalid(
                "",
                format!("Could not read the request body: {}.", r.body_text()),
            )
        }
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn answer(
    state: Arc<AppState>,
    endpoint: Endpoint,
    v: Result<Validated, ApiError>,
) -> Response {
    let t0 = Instant::now();
    let v = match v {
        Ok(v) => v,
        Err(e) => return fail(&state, e),
    };
    let (backend, key) = match state.registry.resolve(&v.model) {
        Ok(b) => b,
        Err(e) => return fail(&state, e),
    };
    let Ok(permit) = state.slots.clone().try_acquire_owned() else {
        return fail(&state, ApiError::overloaded(state.config.max_in_flight));
    };
    let id = format!(
        "{}{}",
        endpoint.id_prefix(),
        state.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let created = now_secs();
    if v.stream {
        return stream(state, endpoint, v, backend, key, id, created, permit, t0).await;
    }
    let st = state.clone();
    let req = v.request.clone();
    // A client that disconnects drops this handler's future, and with it `_cancel`: the
    // generation stops at its next token, and its cost is still recorded (in the blocking
    // task, which runs to its end either way).
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _flight = st.metrics.in_flight();
        let result = generate_caught(&*backend, &req, &mut |_| !cancelled.load(Ordering::Relaxed));
        let outcome = match (&result, cancelled.load(Ordering::Relaxed)) {
            (_, true) => Outcome::Cancelled,
            (Ok(_), false) => Outcome::Ok,
            (Err(e), false) => outcome_of(e),
        };
        st.metrics
            .record(&key, outcome, result.as_ref().ok(), t0.elapsed());
        result
    })
    .await;
    let result = match joined {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::internal(
            "The backend failed while generating (its task was cancelled).".to_string(),
        )),
    };
    match result {
        Ok(out) => Json(endpoint.response(&id, created, &v.model, &out)).into_response(),
        Err(e) => fail(&state, e),
    }
}

/// Sets its flag when dropped (a request's future dropped by a disconnecting client).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// [`Backend::generate`] with a panic turned into [`BackendError::Internal`].
fn generate_caught(
    backend: &dyn Backend,
    req: &GenRequest,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<GenOutput, BackendError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.generate(req, on_text)
    }))
    .unwrap_or_else(|_| {
        Err(BackendError::Internal {
            backend: backend.id().to_string(),
            detail: "it panicked".into(),
        })
    })
}

/// How long a stream waits for a client that reads nothing before treating it as gone: the
/// generating thread holds a model replica while it waits.
const STALLED_READER: Duration = Duration::from_secs(60);

/// Sends one event's data from the generating thread; `false` when the client is gone, or has
/// read nothing for [`STALLED_READER`] while the channel stayed full.
fn send_or_give_up(tx: &mpsc::Sender<String>, data: String) -> bool {
    let start = Instant::now();
    let mut data = data;
    loop {
        match tx.try_send(data) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(d)) => {
                if start.elapsed() > STALLED_READER {
                    return false;
                }
                data = d;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// How a failed request counts in the metrics: the client's fault or the backend's.
fn outcome_of(e: &BackendError) -> Outcome {
    match e {
        BackendError::Invalid { .. } => Outcome::Rejected,
        BackendError::Upstream { .. } | BackendError::Internal { .. } => Outcome::Error,
    }
}

/// Streams a request's answer as server-sent events. The response (its 200 and headers) goes
/// out only when the backend has produced its first text or finished: a request that fails
/// before that (a prompt longer than the model's window, a remote backend that is down) gets
/// its own status, as a non-streaming request does; a failure after the stream began is an
/// error event.
#[allow(clippy::too_many_arguments)]
async fn stream(
    state: Arc<AppState>,
    endpoint: Endpoint,
    v: Validated,
    backend: Arc<dyn Backend>,
    key: String,
    id: String,
    created: u64,
    permit: tokio::sync::OwnedSemaphorePermit,
    t0: Instant,
) -> Response {
    // The generating thread sends each event's data, formatted; the stream only wraps them.
    let (tx, rx) = mpsc::channel::<String>(64);
    let st = state.clone();
    let req = v.request.clone();
    let model = v.model.clone();
    let include_usage = v.include_usage;
    if endpoint == Endpoint::Chat {
        let opening = endpoint
            .chunk(&id, created, &model, "", None, true)
            .to_string();
        // The channel is empty and open: this cannot fail.
        let _ = tx.try_send(opening);
    }
    // Whether the stream began (first text, or a finished generation), or the error that
    // came before it.
    let (began_tx, began_rx) = tokio::sync::oneshot::channel::<Result<(), BackendError>>();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _flight = st.metrics.in_flight();
        let mut gone = false;
        let mut began = Some(began_tx);
        let result = generate_caught(&*backend, &req, &mut |piece| {
            if let Some(b) = began.take() {
                // The handler waits for this; if it is gone, so is the client.
                gone = b.send(Ok(())).is_err();
                if gone {
                    return false;
                }
            }
            let chunk = endpoint.chunk(&id, created, &model, piece, None, false);
            gone = !send_or_give_up(&tx, chunk.to_string());
            !gone
        });
        let outcome = match (&result, gone) {
            (_, true) => Outcome::Cancelled,
            (Ok(_), false) => Outcome::Ok,
            (Err(e), false) => outcome_of(e),
        };
        st.metrics
            .record(&key, outcome, result.as_ref().ok(), t0.elapsed());
        if gone {
            return;
        }
        // Failed before any text: the handler answers with the error's own status.
        let result = match (began.take(), result) {
            (Some(b), Err(e)) => {
                let _ = b.send(Err(e));
                return;
            }
            (Some(b), Ok(out)) => {
                if b.send(Ok(())).is_err() {
                    return;
                }
                Ok(out)
            }
            (None, r) => r,
        };
        let mut last = Vec::new();
        match result {
            Ok(out) => {
                last.push(
                    endpoint
                        .chunk(&id, created, &model, "", Some(out.finish), false)
                        .to_string(),
                );
                if include_usage {
                    last.push(endpoint.usage_chunk(&id, created, &model, &out).to_string());
                }
            }
            // A failure after the stream began: an error event (as OpenAI's API sends it).
            Err(e) => {
                let e = ApiError::from(e);
                st.metrics
                    .record_http_error(e.status.as_u16(), e.kind.as_str());
                last.push(e.body().to_string());
            }
        }
        last.push("[DONE]".into());
        for data in last {
            if !send_or_give_up(&tx, data) {
                break;
            }
        }
    });
    match began_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return fail(&state, ApiError::from(e)),
        Err(_) => {
            return fail(
                &state,
                ApiError::internal("The backend failed before its stream began.".to_string()),
            );
        }
    }
    let events =
        ReceiverStream::new(rx).map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
