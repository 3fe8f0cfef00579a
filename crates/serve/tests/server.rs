//! The server end to end on 127.0.0.1, through real HTTP clients (ureq, and raw TCP for the
//! disconnect): tiny random models stand in for SmolLM2 and Gemma (the `serve` example and
//! `scripts/serve_check.py` run the real ones).
//!
//! One server per test binary, shared: a weak and a strong local model, an MF router between
//! them (trained here on a toy table with the model-free hashing embedder), guided models, a
//! remote backend that is this same server (so the remote path is exercised for real, with a
//! bearer key read through an injected environment), and a remote backend on a dead port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datasets::{OutcomeTable, PromptMeta, ScoreKind};
use guided_decode::{GuidedOptions, ModelOracle, OpenAiClient, RemoteConfig, guided_generate};
use lm::{GenerateOptions, LanguageModel, SamplingConfig};
use mf_router::battles::{BattleOptions, TiePolicy, golden_battles};
use mf_router::checkpoint::{Checkpoint, LoadedRouter};
use mf_router::embed_cache::{EmbeddingMatrix, HashEmbedder, TextEmbedder};
use mf_router::mf::{MfConfig, train_mf};
use routing_core::PairDecision;
use routing_core::token::EntropyTrigger;
use serde_json::{Value, json};
use serve::{
    AppState, LocalBackend, OracleBackend, Registry, RemoteBackend, ServerConfig, serve_on,
};

const KEY: &str = "sk-test-0123456789";

/// A router trained on a toy table: "hard …" prompts need the strong model.
fn router() -> LoadedRouter<HashEmbedder> {
    let texts: Vec<String> = (0..80)
        .map(|i| {
            if i % 2 == 0 {
                format!("hard proof {i}")
            } else {
                format!("easy sum {i}")
            }
        })
        .collect();
    let prompts: Vec<PromptMeta> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| PromptMeta::new(format!("q{i}")).with_text(t.clone()))
        .collect();
    let scores: Vec<f64> = (0..80)
        .flat_map(|i| if i % 2 == 0 { [0.0, 1.0] } else { [1.0, 0.0] })
        .collect();
    let table = OutcomeTable::new(
        "toy",
        ScoreKind::Binary,
        vec!["small".into(), "big".into()],
        prompts,
        scores,
        None,
    )
    .unwrap();
    let embedder = HashEmbedder::new(64);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = EmbeddingMatrix::from_rows(64, &embedder.embed_texts(&refs).unwrap()).unwrap();
    let (battles, _) =
        golden_battles(&table, None, &BattleOptions::golden(TiePolicy::Drop)).unwrap();
    let config = MfConfig {
        model_dim: 16,
        epochs: 40,
        lr: 1e-2,
        patience: None,
        ..MfConfig::default()
    };
    let (model, _) = train_mf(&config, table.models(), &emb, &battles, &[]).unwrap();
    let ck = Checkpoint::mf(model, "small", "big", embedder.model_id())
        .unwrap()
        .with_threshold(0.5, None);
    LoadedRouter::new(ck, embedder).unwrap()
}

struct Fixture {
    base: String,
    state: Arc<AppState>,
}

fn tiny(seed: u64) -> lm::CausalLm {
    guided_decode::testing::tiny_model(40, seed)
}

/// Starts a server on a free port of 127.0.0.1 in a thread with its own runtime.
fn start(config: ServerConfig, registry: Registry) -> (String, Arc<AppState>) {
    let state = AppState::new(config, registry);
    let (tx, rx) = std::sync::mpsc::channel();
    let st = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve_on(listener, st, std::future::pending())
                .await
                .unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), state)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // The upstream: a plain server with the same weak model, behind the same key.
        let mut up = Registry::new();
        up.add(Arc::new(
            LocalBackend::new("small", vec![tiny(1)], Default::default()).unwrap(),
        ))
        .unwrap();
        let upstream_config = ServerConfig {
            api_key: Some(KEY.into()),
            ..ServerConfig::default()
        };
        let (upstream, _) = start(upstream_config, up);

        let small = Arc::new(
            LocalBackend::new("small", vec![tiny(1), tiny(1)], Default::default()).unwrap(),
        );
        let big = Arc::new(LocalBackend::new("big", vec![tiny(2)], Default::default()).unwrap());
        let mut reg = Registry::new();
        reg.add(small.clone()).unwrap();
        reg.add(big.clone()).unwrap();
        let env = |var: &str| (var == "UPSTREAM_KEY").then(|| KEY.to_string());
        let mut remote_cfg = RemoteConfig::new(format!("{upstream}/v1"), "small");
        remote_cfg.api_key_env = Some("UPSTREAM_KEY".into());
        let client = OpenAiClient::with_environment(remote_cfg, &env).unwrap();
        reg.add(Arc::new(RemoteBackend::new(
            "upstream",
            client,
            Default::default(),
        )))
        .unwrap();
        // A dead backend: a port that was bound and released.
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut dead_cfg = RemoteConfig::new(format!("http://127.0.0.1:{dead_port}/v1"), "x");
        dead_cfg.retries = 0;
        dead_cfg.timeout = Duration::from_secs(2);
        reg.add(Arc::new(RemoteBackend::new(
            "dead",
            OpenAiClient::new(dead_cfg).unwrap(),
            Default::default(),
        )))
        .unwrap();
        reg.set_router(
            Arc::new(Mutex::new(router())),
            small.clone(),
            big.clone(),
            &[],
        )
        .unwrap();
        reg.set_guided(small, OracleBackend::Local(big), &["entropy:1x2"])
            .unwrap();
        let config = ServerConfig {
            api_key: Some(KEY.into()),
            max_body_bytes: 64 * 1024,
            ..ServerConfig::default()
        };
        let (base, state) = start(config, reg);
        Fixture { base, state }
    })
}

/// One POST; `(status, JSON body)` for any answer.
fn post(path: &str, body: &Value) -> (u16, Value) {
    post_raw(path, body.to_string().into_bytes(), Some(KEY))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn post_raw(path: &str, body: Vec<u8>, key: Option<&str>) -> (u16, Value) {
    let f = fixture();
    let mut req = agent()
        .post(&format!("{}{path}", f.base))
        .header("Content-Type", "application/json");
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    let resp = req.send(&body[..]).unwrap();
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn get(path: &str) -> (u16, String) {
    let f = fixture();
    let resp = agent()
        .get(&format!("{}{path}", f.base))
        .header("Authorization", &format!("Bearer {KEY}"))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_to_string().unwrap())
}

/// The streamed events' data fields, in order.
fn stream_events(path: &str, body: &Value) -> Vec<String> {
    let f = fixture();
    let resp = agent()
        .post(&format!("{}{path}", f.base))
        .header("Authorization", &format!("Bearer {KEY}"))
        .send_json(body)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let reader = BufReader::new(resp.into_body().into_reader());
    reader
        .lines()
        .map(Result::unwrap)
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

fn completion(model: &str, prompt: &str, max_tokens: usize) -> Value {
    json!({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0})
}

fn library_text(seed: u64, prompt: &str, max_tokens: usize) -> String {
    let m = tiny(seed);
    let ids = m.encode_prompt(prompt).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: max_tokens,
        stop_strings: vec![],
        sampling: SamplingConfig::greedy(),
    };
    lm::generate(&m, &ids, &opts).unwrap().text
}

#[test]
fn models_health_and_metrics_are_served() {
    let (status, body) = get("/v1/models");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for want in [
        "small",
        "big",
        "upstream",
        "dead",
        "router-mf-0.5",
        "guided-entropy:1x2",
    ] {
        assert!(ids.contains(&want), "{want} not in {ids:?}");
    }
    // /health needs no key.
    let resp = agent()
        .get(&format!("{}/health", fixture().base))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    post("/v1/completions", &completion("small", "w1 w2", 3));
    let (status, text) = get("/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE llm_requests_total counter"), "{text}");
    assert!(
        text.contains("llm_completion_tokens_total{model=\"small\"}"),
        "{text}"
    );
    assert!(text.contains("llm_request_duration_seconds_bucket{model=\"small\",le=\"+Inf\"}"));
}

#[test]
fn completions_equal_the_library_and_carry_cost() {
    for prompt in ["w1 w2 w3", "w7", "w9 w9 w4 w30"] {
        let (status, v) = post("/v1/completions", &completion("small", prompt, 8));
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["model"], "small");
        assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(v["choices"][0]["text"], library_text(1, prompt, 8));
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        let u = &v["usage"];
        let (p, c) = (
            u["prompt_tokens"].as_u64().unwrap(),
            u["completion_tokens"].as_u64().unwrap(),
        );
        assert_eq!(c, 8);
        assert_eq!(u["total_tokens"].as_u64().unwrap(), p + c);
        let params = tiny(1).active_parameters().unwrap() as f64;
        assert_eq!(
            u["cost"]["flops"].as_f64().unwrap(),
            2.0 * params * (p + c) as f64
        );
    }
    // A stop string ends the text before it.
    let full = library_text(1, "w1 w2 w3", 8);
    let stop = full.split(' ').nth(2).unwrap().to_string();
    let (_, v) = post(
        "/v1/completions",
        &json!({"model": "small", "prompt": "w1 w2 w3", "max_tokens": 8, "temperature": 0, "stop": [format!(" {stop}")]}),
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["text"],
        full[..full.find(&format!(" {stop}")).unwrap()]
    );
}

#[test]
fn streaming_concatenates_to_the_whole_answer() {
    let whole = post("/v1/completions", &completion("small", "w3 w4", 12)).1;
    let mut body = completion("small", "w3 w4", 12);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = stream_events("/v1/completions", &body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).and_then(|ch| ch["text"].as_str()))
        .collect();
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());
    assert!(chunks.len() > 3, "streamed in pieces: {}", chunks.len());
    let ids: std::collections::BTreeSet<&str> =
        chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id per stream");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 12);

    // Chat: the role first, then content deltas, then the finish reason.
    let body = json!({"model": "small", "messages": [{"role": "user", "content": "w5 w6"}],
        "max_tokens": 6, "temperature": 0, "stream": true});
    let events = stream_events("/v1/chat/completions", &body);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = events[1..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let whole = post(
        "/v1/chat/completions",
        &json!({"model": "small", "messages": [{"role": "user", "content": "w5 w6"}], "max_tokens": 6, "temperature": 0}),
    )
    .1;
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        streamed,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
}

#[test]
fn router_decisions_match_the_library() {
    let lib = router();
    let prompts = [
        "hard proof 3",
        "easy sum 5",
        "hard proof of 41",
        "easy sum please",
        "w1 w2",
    ];
    for threshold in [0.5, 0.2, 0.9] {
        let lib = LoadedRouter::new(lib.checkpoint().clone(), HashEmbedder::new(64))
            .unwrap()
            .with_threshold(threshold);
        for p in prompts {
            let (status, v) = post(
                "/v1/completions",
                &completion(&format!("router-mf-{threshold}"), p, 2),
            );
            assert_eq!(status, 200, "{v}");
            let want = lib.route(p).unwrap();
            let got = v["usage"]["routed_to"].as_str().unwrap();
            assert_eq!(
                got,
                if want == PairDecision::Strong {
                    "big"
                } else {
                    "small"
                },
                "{p} at {threshold}"
            );
            let score = lib.score(&[p]).unwrap()[0];
            assert_eq!(v["usage"]["router_score"].as_f64().unwrap() as f32, score);
        }
    }
    let (_, text) = get("/metrics");
    assert!(
        text.contains("llm_routed_total{model=\"router-mf-0.5\",target=\"big\"}"),
        "{text}"
    );
    assert!(
        text.contains("llm_routed_total{model=\"router-mf-*\""),
        "dynamic thresholds counted under the family"
    );
}

#[test]
fn guided_models_equal_the_library_loop() {
    let prompt = "w2 w8 w11";
    let (status, v) = post(
        "/v1/completions",
        &completion("guided-entropy:1x2", prompt, 10),
    );
    assert_eq!(status, 200, "{v}");
    let (small, big) = (tiny(1), tiny(2));
    let mut oracle = ModelOracle::same_tokenizer(&big);
    let mut policy = EntropyTrigger::new(1.0, 2, None).unwrap();
    let opts = GuidedOptions {
        max_new_tokens: 10,
        ..Default::default()
    };
    let g = guided_generate(&small, &mut oracle, &mut policy, prompt, &opts).unwrap();
    assert_eq!(v["choices"][0]["text"], g.text);
    assert_eq!(
        v["usage"]["oracle_calls"].as_u64().unwrap() as usize,
        g.accounting.oracle_calls
    );
    assert!(
        g.accounting.oracle_calls > 0,
        "the trigger fires on a random model"
    );
    // Any policy by name; an invalid one is an unknown model.
    let (status, v) = post(
        "/v1/completions",
        &completion("guided-maxprob:0.5x1", prompt, 4),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = post("/v1/completions", &completion("guided-spec:4", prompt, 4));
    assert_eq!(status, 404, "{v}");
}

#[test]
fn remote_backends_pass_through_and_fail_cleanly() {
    let direct = post("/v1/completions", &completion("small", "w4 w5", 6)).1;
    let (status, via) = post("/v1/completions", &completion("upstream", "w4 w5", 6));
    assert_eq!(status, 200, "{via}");
    assert_eq!(via["choices"][0]["text"], direct["choices"][0]["text"]);
    assert_eq!(via["usage"]["completion_tokens"], 6);
    // Chat through the remote's /chat/completions.
    let (status, v) = post(
        "/v1/chat/completions",
        &json!({"model": "upstream", "messages": [{"role": "user", "content": "w1"}], "max_tokens": 3, "temperature": 0}),
    );
    assert_eq!(status, 200, "{v}");
    // A dead backend: 502 naming the backend, never a key, and the server goes on.
    let (status, v) = post("/v1/completions", &completion("dead", "w1", 2));
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["type"], "server_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("`dead`"),
        "{v}"
    );
    assert!(!v.to_string().contains(KEY));
    assert_eq!(
        post("/v1/completions", &completion("small", "w1", 2)).0,
        200
    );
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_goes_on() {
    let check = |(status, v): (u16, Value), want: u16, param: Option<&str>| {
        assert_eq!(status, want, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert!(v["error"]["type"].is_string(), "{v}");
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{v}");
        }
        assert!(!v.to_string().contains(KEY), "the key is never echoed");
    };
    // Malformed JSON, a body of the wrong shape, a wrong type.
    check(
        post_raw(
            "/v1/completions",
            b"{\"model\": \"small\", \"prompt\": ".to_vec(),
            Some(KEY),
        ),
        400,
        None,
    );
    check(post("/v1/completions", &json!({"prompt": "w1"})), 400, None);
    check(
        post("/v1/completions", &json!({"model": "small", "prompt": 7})),
        400,
        Some("prompt"),
    );
    // A mistyped field is named by its path.
    for (body, field) in [
        (
            json!({"model": "small", "prompt": "w1", "max_tokens": -1}),
            "max_tokens",
        ),
        (
            json!({"model": "small", "prompt": "w1", "max_tokens": "10"}),
            "max_tokens",
        ),
        (json!({"model": "small", "prompt": "w1", "stop": 5}), "stop"),
        (
            json!({"model": "small", "messages": [{"role": 3, "content": "w1"}]}),
            "messages[0].role",
        ),
    ] {
        let path = if body.get("messages").is_some() {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        };
        check(post(path, &body), 400, Some(field));
    }
    // Fields whose meaning the server cannot honour are refused, naming them; their empty
    // forms are accepted.
    for (field, value) in [
        ("suffix", json!("end")),
        ("logit_bias", json!({"5": 100})),
        ("tools", json!([{"type": "function"}])),
        ("response_format", json!({"type": "json_object"})),
    ] {
        let mut body = completion("small", "w1", 2);
        body[field] = value;
        check(post("/v1/completions", &body), 400, Some(field));
    }
    let mut body = completion("small", "w1", 2);
    body["logit_bias"] = json!({});
    body["response_format"] = json!({"type": "text"});
    assert_eq!(post("/v1/completions", &body).0, 200);
    // The budget's error names the field the request used.
    check(
        post(
            "/v1/chat/completions",
            &json!({"model": "small", "messages": [{"role": "user", "content": "w1"}], "max_completion_tokens": 0}),
        ),
        400,
        Some("max_completion_tokens"),
    );
    // Limits.
    check(
        post(
            "/v1/completions",
            &json!({"model": "small", "prompt": "w1", "max_tokens": 5000}),
        ),
        400,
        Some("max_tokens"),
    );
    let big = format!(
        "{{\"model\": \"small\", \"prompt\": \"{}\"}}",
        "w1 ".repeat(40_000)
    );
    let (status, v) = post_raw("/v1/completions", big.into_bytes(), Some(KEY));
    check((status, v.clone()), 413, None);
    assert_eq!(v["error"]["code"], "request_too_large");
    // A prompt longer than the model's window (512 positions): the client's fault, counted as
    // rejected, not as a backend failure.
    let rejected = fixture()
        .state
        .metrics()
        .count("small", serve::Outcome::Rejected);
    check(
        post(
            "/v1/completions",
            &completion("small", &"w1 ".repeat(600), 4),
        ),
        400,
        Some("prompt"),
    );
    assert!(
        fixture()
            .state
            .metrics()
            .count("small", serve::Outcome::Rejected)
            > rejected
    );
    // Streamed, the same request gets the same status: the stream had not begun.
    let mut body = completion("small", &"w1 ".repeat(600), 4);
    body["stream"] = json!(true);
    check(post("/v1/completions", &body), 400, Some("prompt"));
    // Unknown model, unknown route.
    let (status, v) = post("/v1/completions", &completion("gpt-7", "w1", 2));
    check((status, v.clone()), 404, Some("model"));
    assert_eq!(v["error"]["code"], "model_not_found");
    check(post("/v1/embeddings", &json!({})), 404, None);
    // Keys: missing, wrong (also one that shares a prefix with the right one).
    for key in [None, Some("sk-wrong"), Some("sk-test-01234567899")] {
        let (status, v) = post_raw(
            "/v1/completions",
            completion("small", "w1", 2).to_string().into_bytes(),
            key,
        );
        check((status, v.clone()), 401, None);
        assert_eq!(v["error"]["code"], "invalid_api_key");
    }
    let resp = agent()
        .get(&format!("{}/metrics", fixture().base))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "metrics need the key too");
    // Still serving.
    assert_eq!(
        post("/v1/completions", &completion("small", "w1", 2)).0,
        200
    );
    let (_, text) = get("/metrics");
    assert!(
        text.contains("llm_http_errors_total{status=\"401\",type=\"authentication_error\"}"),
        "{text}"
    );
}

#[test]
fn a_client_that_disconnects_mid_stream_stops_its_generation() {
    let f = fixture();
    let before = f.state.metrics().count("big", serve::Outcome::Cancelled);
    let addr = f.base.trim_start_matches("http://");
    let body = json!({"model": "big", "prompt": "w1", "max_tokens": 500, "temperature": 0, "stream": true}).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read until the first event, then hang up.
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains("data: ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream began");
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let t = Instant::now();
    while f.state.metrics().count("big", serve::Outcome::Cancelled) == before {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the generation was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(post("/v1/completions", &completion("big", "w1", 2)).0, 200);
}

#[test]
fn a_request_whose_client_disconnects_is_still_counted() {
    let f = fixture();
    let count = || {
        let m = f.state.metrics();
        m.count("big", serve::Outcome::Cancelled) + m.count("big", serve::Outcome::Ok)
    };
    let before = count();
    let addr = f.base.trim_start_matches("http://");
    let body =
        json!({"model": "big", "prompt": "w2", "max_tokens": 300, "temperature": 0}).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    drop(s);
    // Stopped at its next token or finished, the request's cost reaches the metrics.
    let t = Instant::now();
    while count() == before {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the request was never recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn concurrent_requests_never_mix_up_answers() {
    let prompts: Vec<String> = (0..12)
        .map(|i| format!("w{} w{}", i + 1, 2 * i + 3))
        .collect();
    let want: Vec<String> = prompts.iter().map(|p| library_text(1, p, 6)).collect();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (prompts, want) = (prompts.clone(), want.clone());
            std::thread::spawn(move || {
                for r in 0..12 {
                    let i = (t * 5 + r) % prompts.len();
                    let (status, v) = post("/v1/completions", &completion("small", &prompts[i], 6));
                    assert_eq!(status, 200, "{v}");
                    assert_eq!(v["choices"][0]["text"], want[i], "answer of prompt {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn constant_time_comparison_is_equality() {
    assert!(serve::constant_time_eq(b"abc", b"abc"));
    assert!(!serve::constant_time_eq(b"abc", b"abd"));
    assert!(!serve::constant_time_eq(b"abc", b"abcd"));
    assert!(!serve::constant_time_eq(b"", b"a"));
    assert!(serve::constant_time_eq(b"", b""));
}
