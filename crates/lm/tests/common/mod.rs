//! Helpers shared by the integration tests: finding the real models and the golden files, and
//! decoding base64 without a dependency.
#![allow(dead_code)]

use std::path::PathBuf;

/// Whether the tests run under CI (which fetches the models first, so absence is a failure).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Reports a missing input: panics under CI, else prints a skip note.
fn skip_or_panic<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("CI is set but {what}");
    }
    eprintln!("skipping: {what}");
    None
}

/// The SmolLM2 GGUF, or `None` (with a printed note) when it has not been fetched.
pub fn smollm2_gguf_or_skip() -> Option<PathBuf> {
    match lm::locate::smollm2_gguf() {
        Ok(p) => Some(p),
        Err(e) => skip_or_panic(&e.to_string()),
    }
}

/// The Gemma 3 270M GGUF, or `None` (with a printed note) when it has not been fetched.
pub fn gemma3_gguf_or_skip() -> Option<PathBuf> {
    match lm::locate::gemma3_gguf() {
        Ok(p) => Some(p),
        Err(e) => skip_or_panic(&e.to_string()),
    }
}

/// The Llama 3.2 `tokenizer.json`, or `None` (with a printed note) when it has not been fetched.
pub fn llama3_tokenizer_json_or_skip() -> Option<PathBuf> {
    match lm::locate::llama3_tokenizer_json() {
        Ok(p) => Some(p),
        Err(e) => skip_or_panic(&e.to_string()),
    }
}

/// The all-MiniLM-L6-v2 folder, or `None` (with a printed note) when it has not been fetched.
pub fn minilm_dir_or_skip() -> Option<PathBuf> {
    match lm::locate::minilm_dir() {
        Ok(p) => Some(p),
        Err(e) => skip_or_panic(&e.to_string()),
    }
}

/// `$CAI_GOLDEN_DIR` when set (e.g. a copy of the golden files on a GPU machine), else
/// `shared/golden` beside the workspace root (found walking up from this crate), or `None`.
pub fn golden_dir_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("CAI_GOLDEN_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            manifest_dir()
                .ancestors()
                .map(|a| a.join("shared").join("golden"))
                .find(|p| p.is_dir())
        });
    match found {
        Some(p) => Some(p),
        None => skip_or_panic("no shared/golden folder beside the workspace"),
    }
}

/// This package's folder: as cargo gives it when running the test, else as compiled (a build
/// cache shared between checkouts may hold a binary compiled at another checkout's path).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// `$CAI_DATA_DIR` when set, else `shared/data` beside the workspace root, or `None`.
pub fn shared_data_dir() -> Option<PathBuf> {
    std::env::var_os("CAI_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            manifest_dir()
                .ancestors()
                .map(|a| a.join("shared").join("data"))
                .find(|p| p.is_dir())
        })
}

/// The device the model tests run on: `$LM_TEST_DEVICE` (`cpu`, or `wgpu`/`vulkan` when `lm`
/// is built with that feature), default burn's CPU `flex`. Lets the golden tests run unchanged
/// on a GPU machine (`cargo test -p lm --features vulkan`).
pub fn test_device() -> burn::tensor::Device {
    let name = std::env::var("LM_TEST_DEVICE").unwrap_or_default();
    match name.as_str() {
        "" | "cpu" | "flex" => burn::tensor::Device::flex(),
        #[cfg(feature = "wgpu")]
        "wgpu" => burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "vulkan")]
        "vulkan" => burn::tensor::Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        other => panic!("LM_TEST_DEVICE={other}: not compiled in (build lm with that feature)"),
    }
}

/// Reads and parses a golden JSON file.
pub fn golden_json(name: &str) -> Option<serde_json::Value> {
    let path = golden_dir_or_skip()?.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())))
}

/// Standard base64 (with `=` padding) to bytes.
pub fn base64_decode(s: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("invalid base64 character {c:?}"),
        }
    }
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | if c == b'=' { 0 } else { sextet(c) };
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    out
}
