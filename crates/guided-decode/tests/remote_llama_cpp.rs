//! The remote oracle against a real, independent OpenAI-compatible server: llama-cpp-python's
//! `llama_cpp.server`, started by `peer/llama_cpp_server.sh` on 127.0.0.1 and serving the same
//! GGUF the in-process oracle runs — SmolLM2 de-quantised to F32 by `peer/dequantize_gguf.py`,
//! so that both sides compute in float32 on identical weights (on the Q4_1 file each side
//! quantises activations its own way, and about one greedy continuation in four parts within
//! 8 tokens at a near-tie). On the 20 prompts of `testing::PROMPTS`, alone and after a partial
//! completion, greedy 8-token continuations through [`RemoteOracle`] equal those of the
//! in-process [`ModelOracle`]; once the server is stopped, the same oracle gives the typed
//! connection error.
//!
//! Skips (with a note) when the GGUF or llama-cpp-python's server is not installed — the peer
//! is a Python package this workspace does not require (`pip install 'llama-cpp-python[server]'`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guided_decode::testing::PROMPTS;
use guided_decode::{
    GuidedError, ModelOracle, Oracle, RemoteConfig, RemoteErrorKind, RemoteOracle,
};
use lm::{CausalLm, Engine};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer_available() -> bool {
    Command::new("python3")
        .args(["-c", "import llama_cpp.server.app"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start(gguf: &std::path::Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("peer/llama_cpp_server.sh");
    let child = Command::new("bash")
        .arg(script)
        .arg(gguf)
        .arg(port.to_string())
        .arg("smollm2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs the peer script");
    let mut server = Server(child);
    let base = format!("http://127.0.0.1:{port}/v1");
    let t = Instant::now();
    loop {
        if ureq::get(&format!("{base}/models")).call().is_ok() {
            break;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the peer server exited: {status}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the peer server did not start in 90 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    (server, base)
}

#[test]
fn remote_llama_cpp_server_matches_the_in_process_oracle() {
    let Ok(gguf) = lm::locate::smollm2_gguf() else {
        eprintln!("skipping: SmolLM2 GGUF not fetched (scripts/fetch_models.sh)");
        return;
    };
    if !peer_available() {
        eprintln!("skipping: llama-cpp-python's server is not installed");
        return;
    }
    // The F32 copy, made once per machine.
    let f32_copy = std::env::temp_dir().join("cai-smollm2-135m-instruct-f32.gguf");
    if !f32_copy.is_file() {
        let script = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("peer/dequantize_gguf.py");
        let partial = f32_copy.with_extension("partial");
        let ok = Command::new("python3")
            .arg(script)
            .arg(&gguf)
            .arg(&partial)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "dequantize_gguf.py failed");
        std::fs::rename(&partial, &f32_copy).unwrap();
    }
    let (server, base) = start(&f32_copy);
    let model = CausalLm::open_with(&f32_copy, &burn::tensor::Device::flex(), Engine::F32).unwrap();
    let mut local = ModelOracle::text(&model);
    let mut cfg = RemoteConfig::new(&base, "smollm2");
    cfg.extra_body.insert("repeat_penalty".into(), 1.0.into());
    let mut remote = RemoteOracle::new(cfg).unwrap();
    let mut same = 0;
    for prompt in PROMPTS {
        // A prompt alone, and the prompt with a partial completion after a hand-off.
        for completion in ["", " and"] {
            let a = local.continue_text(prompt, completion, 8).unwrap();
            let b = remote.continue_text(prompt, completion, 8).unwrap();
            if a.text == b.text {
                same += 1;
            } else {
                eprintln!(
                    "differs on {prompt:?}+{completion:?}: local {:?} remote {:?}",
                    a.text, b.text
                );
            }
            assert_eq!(b.generated, if b.stopped { b.generated } else { 8 });
        }
    }
    eprintln!("{same}/40 continuations identical");
    assert_eq!(
        same, 40,
        "the remote oracle must continue exactly as the in-process one"
    );
    drop(server);
    let e = remote
        .continue_text("The capital of France is", "", 4)
        .unwrap_err();
    assert!(
        matches!(
            e,
            GuidedError::Remote {
                kind: RemoteErrorKind::Connection,
                ..
            }
        ),
        "{e}"
    );
}
