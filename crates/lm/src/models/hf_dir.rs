//! Hugging Face model directories: `config.json` + `model.safetensors` + `tokenizer.json`.
//!
//! Loading reads the parameters by their Hugging Face names ([`HostWeights::expected`] lists
//! them with shapes for a [`TransformerSpec`]); missing or unexpected keys are one error naming
//! them. Two kinds of extra
//! keys are tolerated because Hugging Face itself writes them: `lm_head.weight` in a checkpoint
//! whose config says the head is tied (the copy is ignored), and `*.rotary_emb.inv_freq`
//! buffers (recomputed from `rope_theta`).
//!
//! Exporting (Llama) writes the same three files from host weights, in f32; together with
//! [`crate::models::llama::load_gguf`] it turns a GGUF file into a directory any Llama implementation reads
//! (Q/K rows in rotate-half order).

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{LmError, Result};
use crate::format::safetensors::{SafetensorsWeights, f32_safetensors};
use crate::models::llama::LlamaConfig;
use crate::models::transformer::{HostTensor, HostWeights, TransformerSpec};

/// Reads a text file, naming it in the error.
///
/// # Errors
/// [`LmError::Io`].
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| LmError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The `model_type` of `dir/config.json`.
///
/// # Errors
/// An unreadable file or a config without a string `model_type`.
pub fn model_type(dir: &Path) -> Result<String> {
    let path = dir.join("config.json");
    let v: serde_json::Value =
        serde_json::from_str(&read_text(&path)?).map_err(|e| LmError::InvalidModelConfig {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    v.get("model_type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| LmError::InvalidModelConfig {
            path,
            detail: "`model_type` is missing".into(),
        })
}

/// Reads and validates `dir/config.json` of a Llama model (both RoPE-scaling styles).
///
/// # Errors
/// See [`LlamaConfig::from_hf_json`].
pub fn read_llama_config(dir: &Path) -> Result<LlamaConfig> {
    let path = dir.join("config.json");
    LlamaConfig::from_hf_json(&read_text(&path)?, &path.display().to_string())
}

/// Reads every parameter `spec` needs from `dir/model.safetensors` (f32, f16 or bf16), by
/// Hugging Face name and shape. `*.rotary_emb.inv_freq` buffers and a tied model's
/// `lm_head.weight` copy are skipped; any other extra or missing key is an error naming it.
///
/// # Errors
/// [`LmError::WeightKeys`], [`LmError::WeightShape`], unreadable files.
pub fn load_weights(dir: &Path, spec: &TransformerSpec) -> Result<HostWeights> {
    let path = dir.join("model.safetensors");
    let mut file = SafetensorsWeights::open(&path)?;
    let names: Vec<String> = file.names().map(str::to_string).collect();
    for n in names {
        if n.ends_with("rotary_emb.inv_freq") || (spec.tie_word_embeddings && n == "lm_head.weight")
        {
            file.ignore(&n);
        }
    }
    let expected = HostWeights::expected(spec);
    file.check_keys(expected.iter().map(|(n, _)| n.as_str()))?;
    let mut weights = HostWeights {
        origin: path.display().to_string(),
        ..Default::default()
    };
    for (name, shape) in expected {
        let data = file.take_f32(&name, &shape)?;
        weights.tensors.insert(name, HostTensor { shape, data });
    }
    file.finish()?;
    Ok(weights)
}

/// Every tensor of a Hugging Face checkpoint as f32 host tensors under their file names:
/// `dir/model.safetensors`, or the shards `dir/model.safetensors.index.json` lists (read one at a
/// time, so the peak memory is the f32 weights plus one shard's bytes). F32, F16 and BF16 are
/// read.
///
/// The index is checked against the shards: every key must be in the shard `weight_map`
/// assigns it to, and every tensor of a shard must be assigned to that shard; shard names must
/// be plain file names inside `dir`.
///
/// # Errors
/// [`LmError::InvalidModelConfig`] naming the index and the offending key or shard, I/O and
/// safetensors errors naming the file, unsupported dtypes naming the tensor.
pub fn read_checkpoint(dir: &Path) -> Result<HostWeights> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let mut weights = HostWeights::default();
    let take_all = |file: &mut SafetensorsWeights,
                    keep: &dyn Fn(&str) -> Result<()>,
                    weights: &mut HostWeights|
     -> Result<()> {
        let names: Vec<(String, Vec<usize>)> = file
            .names()
            .map(|n| (n.to_string(), file.shape(n).unwrap_or(&[]).to_vec()))
            .collect();
        for (name, shape) in names {
            keep(&name)?;
            let data = file.take_f32(&name, &shape)?;
            weights.tensors.insert(name, HostTensor { shape, data });
        }
        Ok(())
    };
    if single.is_file() {
        weights.origin = single.display().to_string();
        let mut file = SafetensorsWeights::open(&single)?;
        take_all(&mut file, &|_| Ok(()), &mut weights)?;
        return Ok(weights);
    }
    if !index.is_file() {
        return Err(LmError::InvalidModelConfig {
            path: dir.to_path_buf(),
            detail: "neither model.safetensors nor model.safetensors.index.json is there".into(),
        });
    }
    let bad = |detail: String| LmError::InvalidModelConfig {
        path: index.clone(),
        detail,
    };
    let root: serde_json::Value =
        serde_json::from_str(&read_text(&index)?).map_err(|e| bad(e.to_string()))?;
    let map = root
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| bad("`weight_map` is missing or not an object".into()))?;
    let mut shards: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for (key, shard) in map {
        let shard = shard
            .as_str()
            .ok_or_else(|| bad(format!("weight_map[`{key}`] is not a file name")))?;
        let plain = Path::new(shard).file_name().and_then(|f| f.to_str()) == Some(shard);
        if !plain || shard == ".." || shard == "." {
            return Err(bad(format!(
                "weight_map[`{key}`] = `{shard}` is not a file name inside the directory"
            )));
        }
        shards
            .entry(shard.to_string())
            .or_default()
            .insert(key.clone());
    }
    if shards.is_empty() {
        return Err(bad("`weight_map` is empty".into()));
    }
    weights.origin = index.display().to_string();
    for (shard, keys) in &shards {
        let mut file = SafetensorsWeights::open(dir.join(shard))?;
        if let Some(key) = keys.iter().find(|k| !file.contains(k)) {
            return Err(bad(format!(
                "`{key}` is mapped to {shard}, which does not contain it"
            )));
        }
        let keep = |name: &str| -> Result<()> {
            if keys.contains(name) {
                Ok(())
            } else {
                Err(bad(format!(
                    "{shard} holds `{name}`, which weight_map does not assign to it"
                )))
            }
        };
        take_all(&mut file, &keep, &mut weights)?;
    }
    Ok(weights)
}

/// Loads the configuration and weights of a Hugging Face Llama directory.
///
/// # Errors
/// As [`read_llama_config`] and [`load_weights`].
pub fn load_llama(dir: &Path) -> Result<(LlamaConfig, HostWeights)> {
    let cfg = read_llama_config(dir)?;
    let weights = load_weights(dir, &cfg.spec()?)?;
    Ok((cfg, weights))
}

/// Writes `config.json`, `model.safetensors` (f32) and `tokenizer.json` of a Llama model into
/// `dir` (created).
///
/// # Errors
/// Weights that do not fit `cfg`, RoPE factors read from a file (they have no `config.json`
/// form), and I/O errors.
pub fn export_llama(
    cfg: &LlamaConfig,
    weights: &HostWeights,
    tokenizer: &Tokenizer,
    dir: &Path,
) -> Result<()> {
    weights.check(&cfg.spec()?)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LmError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut config = serde_json::to_value(cfg).map_err(|e| LmError::InvalidModelConfig {
        path: dir.join("config.json"),
        detail: e.to_string(),
    })?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert(
            "architectures".into(),
            serde_json::json!(["LlamaForCausalLM"]),
        );
        obj.insert("model_type".into(), serde_json::json!("llama"));
        obj.insert("torch_dtype".into(), serde_json::json!("float32"));
        obj.insert("hidden_act".into(), serde_json::json!("silu"));
    }
    let config_path = dir.join("config.json");
    std::fs::write(
        &config_path,
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    )
    .map_err(io(&config_path))?;
    let tensors: Vec<(&str, &[usize], &[f32])> = weights
        .tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice()))
        .collect();
    let bytes = f32_safetensors(&tensors)?;
    let st = dir.join("model.safetensors");
    std::fs::write(&st, bytes).map_err(io(&st))?;
    let tk = dir.join("tokenizer.json");
    tokenizer
        .save(&tk, false)
        .map_err(|source| LmError::Tokenizers {
            context: "saving tokenizer.json",
            source,
        })
}
