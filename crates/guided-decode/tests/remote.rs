//! The remote oracle against real HTTP servers on 127.0.0.1 (a scripted server on a real
//! socket, one per test): a well-formed completion (request body and bearer key checked), a
//! guided generation through it, and each failure as its typed error — no server listening,
//! a timeout, an HTTP 500 (retried), malformed JSON, a completion without its token counts —
//! with the API key never in the message, and a URL carrying credentials refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use guided_decode::testing::tiny_model;
use guided_decode::{
    GuidedError, GuidedOptions, Oracle, RemoteConfig, RemoteErrorKind, RemoteOracle,
    guided_generate,
};
use routing_core::token::RandomCalls;

/// What the scripted server does with one request.
#[derive(Clone)]
enum Reply {
    /// Status and body.
    Send(u16, String),
    /// Wait this long, then close.
    Stall(Duration),
}

/// Serves the scripted replies in order (the last one repeats), recording each request's
/// headers and body. Returns the base URL and the log.
fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    thread::spawn(move || {
        // One thread per connection, so that a stalled request does not hold up a retry.
        for (i, stream) in listener.incoming().enumerate().take(32) {
            let Ok(stream) = stream else { return };
            let reply = replies[i.min(replies.len() - 1)].clone();
            let seen = Arc::clone(&seen);
            thread::spawn(move || answer(stream, reply, &seen));
        }
    });
    (url, log)
}

/// Reads one request (headers and a `Content-Length` body), logs it, and replies.
fn answer(mut stream: std::net::TcpStream, reply: Reply, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok();
    seen.lock()
        .unwrap()
        .push(format!("{head}\n{}", String::from_utf8_lossy(&body)));
    match reply {
        Reply::Send(status, text) => {
            let msg = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            stream.write_all(msg.as_bytes()).ok();
        }
        Reply::Stall(d) => thread::sleep(d),
    }
}

fn completion(text: &str, finish: &str) -> Reply {
    Reply::Send(
        200,
        serde_json::json!({
            "id": "cmpl-1", "object": "text_completion", "model": "big",
            "choices": [{"index": 0, "text": text, "finish_reason": finish,
                         "logprobs": {"token_logprobs": [-0.5, -1.25]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        })
        .to_string(),
    )
}

fn config(url: &str) -> RemoteConfig {
    let mut c = RemoteConfig::new(url, "big");
    c.timeout = Duration::from_millis(800);
    c.retries = 1;
    c
}

fn kind(e: GuidedError) -> RemoteErrorKind {
    match e {
        GuidedError::Remote { kind, .. } => kind,
        other => panic!("{other}"),
    }
}

#[test]
fn a_completion_is_read_with_its_usage_and_the_key_is_sent_but_never_shown() {
    let (url, log) = serve(vec![completion(" w4 w5", "length")]);
    let mut cfg = config(&url);
    cfg.api_key_env = Some("GUIDED_TEST_KEY".into());
    cfg.logprobs = Some(1);
    let mut oracle =
        RemoteOracle::with_environment(cfg, &env_with("GUIDED_TEST_KEY", "sk-secret-123")).unwrap();
    assert!(!format!("{oracle:?}").contains("sk-secret-123"));
    let r = oracle.continue_text("w1 w2", " w3", 2).unwrap();
    assert_eq!(r.text, " w4 w5");
    assert_eq!((r.generated, r.read_tokens, r.stopped), (2, 7, false));
    assert_eq!(oracle.last_logprobs, Some(vec![-0.5, -1.25]));
    let request = log.lock().unwrap()[0].clone();
    assert!(request.starts_with("POST /v1/completions"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-secret-123")
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split("\n\n").last().unwrap().trim()).unwrap();
    assert_eq!(body["prompt"], "w1 w2 w3");
    assert_eq!(body["max_tokens"], 2);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["model"], "big");
}

#[test]
fn guided_generation_runs_through_a_remote_oracle() {
    let (url, _) = serve(vec![completion(" w4 w5", "length")]);
    let small = tiny_model(12, 1);
    let mut oracle = RemoteOracle::new(config(&url)).unwrap();
    let mut policy = RandomCalls::new(2, 2, 6, 3).unwrap();
    let g = guided_generate(
        &small,
        &mut oracle,
        &mut policy,
        "w1 w2 w3",
        &GuidedOptions {
            max_new_tokens: 12,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(g.calls.len(), 2);
    assert!(g.calls.iter().all(|c| c.exact_handoff && c.written == 2));
    assert_eq!(g.accounting.oracle_generated, 4);
    assert_eq!(g.accounting.oracle_read, 14);
    assert!(g.text.contains("w4 w5"), "{}", g.text);
}

#[test]
fn failures_are_typed_and_the_key_stays_secret() {
    // No server: bind a port, then close it.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let mut cfg = config(&closed);
    cfg.api_key_env = Some("GUIDED_TEST_KEY2".into());
    let e = RemoteOracle::with_environment(cfg, &env_with("GUIDED_TEST_KEY2", "sk-hidden-456"))
        .unwrap()
        .continue_text("a", "", 2)
        .unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains("sk-hidden-456"), "{msg}");
    assert_eq!(kind(e), RemoteErrorKind::Connection);

    // A server that never answers in time.
    let (url, log) = serve(vec![Reply::Stall(Duration::from_secs(3))]);
    let e = RemoteOracle::new(config(&url))
        .unwrap()
        .continue_text("a", "", 2)
        .unwrap_err();
    assert_eq!(kind(e), RemoteErrorKind::Timeout);
    assert_eq!(log.lock().unwrap().len(), 2, "one retry after a timeout");

    // HTTP 500 twice (retried once), then the error.
    let (url, log) = serve(vec![Reply::Send(500, r#"{"error": "boom"}"#.into())]);
    let e = RemoteOracle::new(config(&url))
        .unwrap()
        .continue_text("a", "", 2)
        .unwrap_err();
    assert_eq!(kind(e), RemoteErrorKind::HttpStatus(500));
    assert_eq!(log.lock().unwrap().len(), 2);

    // HTTP 400: not retried.
    let (url, log) = serve(vec![Reply::Send(400, r#"{"error": "bad"}"#.into())]);
    let e = RemoteOracle::new(config(&url))
        .unwrap()
        .continue_text("a", "", 2)
        .unwrap_err();
    assert_eq!(kind(e), RemoteErrorKind::HttpStatus(400));
    assert_eq!(log.lock().unwrap().len(), 1);

    // Malformed answers: not JSON, JSON without a completion, and a completion without its
    // token counts (its cost: refused rather than counted as free).
    for body in [
        "{not json",
        r#"{"choices": []}"#,
        r#"{"choices": [{"text": 3}]}"#,
        r#"{"choices": [{"text": "x", "finish_reason": "length"}]}"#,
        r#"{"choices": [{"text": "x", "finish_reason": "length"}], "usage": {"prompt_tokens": 1}}"#,
    ] {
        let (url, _) = serve(vec![Reply::Send(200, body.into())]);
        let e = RemoteOracle::new(config(&url))
            .unwrap()
            .continue_text("a", "", 2)
            .unwrap_err();
        assert_eq!(kind(e), RemoteErrorKind::MalformedResponse, "{body}");
    }

    // Configuration errors name the option.
    assert!(RemoteOracle::new(RemoteConfig::new("ftp://x", "m")).is_err());
    // A secret in the URL would reach errors and reports: refused, without repeating it.
    for url in [
        "http://user:hunter2@127.0.0.1:9/v1",
        "https://127.0.0.1:9/v1?key=hunter2",
    ] {
        let e = RemoteOracle::new(RemoteConfig::new(url, "m"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("base_url") && !e.contains("hunter2"), "{e}");
    }
    let mut unset = RemoteConfig::new("http://127.0.0.1:9/v1", "m");
    unset.api_key_env = Some("GUIDED_TEST_KEY_UNSET".into());
    assert!(
        RemoteOracle::new(unset)
            .unwrap_err()
            .to_string()
            .contains("GUIDED_TEST_KEY_UNSET")
    );
}

/// A process environment holding one variable.
fn env_with(key: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
    move |k| (k == key).then(|| value.to_string())
}

#[test]
fn remote_specs_are_read_field_by_field_and_bad_ones_name_the_field() {
    let (name, cfg) = RemoteConfig::from_spec(
        "oracle=http://127.0.0.1:9/v1, model=llama-8b ,key_env=ORACLE_KEY,params=8000000000,timeout=0.5",
    )
    .unwrap();
    assert_eq!(name, "oracle");
    assert_eq!(cfg.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(cfg.model, "llama-8b");
    assert_eq!(cfg.api_key_env.as_deref(), Some("ORACLE_KEY"));
    assert_eq!(cfg.active_parameters, Some(8_000_000_000));
    assert_eq!(cfg.timeout, std::time::Duration::from_millis(500));
    for (spec, reason) in [
        ("http://127.0.0.1:9/v1", "part 1 is not KEY=VALUE"),
        ("=http://x/v1", "part 1 is not KEY=VALUE"),
        ("o=http://x/v1,model=", "part 2 is not KEY=VALUE"),
        ("o=http://x/v1,sk-secret", "part 2 is not KEY=VALUE"),
        ("o=http://x/v1,params=8B", "params=`8B`"),
        ("o=http://x/v1,timeout=NaN", "timeout=`NaN`"),
        ("o=http://x/v1,timeout=0", "timeout=`0`"),
        ("o=http://x/v1,timeout=-3", "timeout=`-3`"),
        ("o=http://x/v1,api_key=secret", "unknown field `api_key`"),
    ] {
        let err = RemoteConfig::from_spec(spec).unwrap_err();
        assert!(
            matches!(err, GuidedError::InvalidOption { name: "remote", .. }),
            "{err}"
        );
        assert!(err.to_string().contains(reason), "{err} lacks {reason}");
        assert!(!err.to_string().contains("secret"), "{err} shows a secret");
    }
}
