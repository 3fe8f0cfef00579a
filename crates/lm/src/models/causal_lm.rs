//! [`CausalLm`]: any supported model file with its tokenizer, implementing [`LanguageModel`];
//! [`CausalLm::open`] is the one entry point from a path.
//!
//! | file | how the family is read | families |
//! |---|---|---|
//! | GGUF (`*.gguf`) | `general.architecture` | `llama` (Llama 2/3, SmolLM2), `gemma3`, `olmoe` |
//! | Hugging Face directory | `config.json` → `model_type` | `llama`, `gemma3_text` / `gemma3`, `olmoe` |
//!
//! Anything else is [`LmError::UnsupportedArchitecture`] listing what is supported.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use tokenizers::Tokenizer;

use crate::error::{LmError, Result};
use crate::format::gguf::GgufFile;
use crate::language_model::LanguageModel;
use crate::models::transformer::{HostWeights, LogitsAt, Transformer, TransformerSpec};
use crate::nn::kv_cache::KvCache;
use crate::quantized::{QCache, QuantizedTransformer};
use crate::tokenizer::{load_tokenizer_json, tokenizer_from_gguf};

/// GGUF `general.architecture` values [`CausalLm::open`] builds.
pub const SUPPORTED_GGUF_ARCHITECTURES: &[&str] = &["llama", "gemma3", "olmoe"];
/// Hugging Face `model_type` values [`CausalLm::open`] builds.
pub const SUPPORTED_HF_MODEL_TYPES: &[&str] = &["llama", "gemma3_text", "gemma3", "olmoe"];

/// End-of-turn tokens that stop generation besides the configured EOS, when the vocabulary
/// has them (Llama 3's `<|eot_id|>` / `<|end_of_text|>`, Gemma's `<end_of_turn>`, ChatML's
/// `<|im_end|>`).
pub const END_OF_TURN_TOKENS: &[&str] = &[
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|im_end|>",
];

/// Which executor runs a [`CausalLm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Engine {
    /// burn, f32 weights (de-quantised at load): exact, any device.
    #[default]
    F32,
    /// The quantized CPU executor ([`crate::quantized`]): GGUF blocks and integer kernels,
    /// activations rounded to 8 bits per block and keys/values cached as half floats
    /// (llama.cpp's scheme and cache type).
    Quantized,
    /// The quantized executor with two-term (~15-bit) activations
    /// ([`crate::quantized::Precision::Q8x2`]) and a half-float cache: the f32 engine's
    /// log-probabilities to ~1e-3 nats, twice the integer work per activation row (on AMX
    /// CPUs the two rows share the tile unit's panels).
    QuantizedX2,
    /// The quantized executor with f32 activations
    /// ([`crate::quantized::Precision::F32`]): weight groups widened to f32 in registers, so
    /// log-probabilities equal the f32 engine's up to summation order; keys and values cached
    /// as half floats, as [`Engine::Quantized`] does.
    QuantizedF32,
}

impl Engine {
    /// Parses `"f32"`, `"quantized"`, `"quantized-x2"` or `"quantized-f32"`.
    ///
    /// # Errors
    /// [`LmError::InvalidModelConfig`] naming the value.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "quantized" | "q" => Ok(Self::Quantized),
            "quantized-x2" => Ok(Self::QuantizedX2),
            "quantized-f32" => Ok(Self::QuantizedF32),
            other => Err(LmError::InvalidModelConfig {
                path: "--engine".into(),
                detail: format!(
                    "unknown engine `{other}` (expected f32, quantized, quantized-x2 or quantized-f32)"
                ),
            }),
        }
    }

    /// `"f32"`, `"quantized"`, `"quantized-x2"` or `"quantized-f32"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Quantized => "quantized",
            Self::QuantizedX2 => "quantized-x2",
            Self::QuantizedF32 => "quantized-f32",
        }
    }
}

/// The executor behind a [`CausalLm`].
#[derive(Debug, Clone)]
enum Exec {
    F32(Box<Transformer>),
    Quantized(Box<QuantizedTransformer>, Device),
}

/// The cache of a [`CausalLm`]: one per executor.
#[derive(Debug, Clone)]
pub enum LmCache {
    /// The burn executor's cache.
    F32(KvCache),
    /// The quantized executor's cache.
    Quantized(QCache),
}

/// A causal language model ready to score and generate.
#[derive(Debug, Clone)]
pub struct CausalLm {
    name: String,
    model: Exec,
    tokenizer: Tokenizer,
    stop: Vec<u32>,
    prefix: Vec<u32>,
    bos: Option<u32>,
}

impl CausalLm {
    /// Assembles a model from parts. Stop tokens: `eos` plus the [`END_OF_TURN_TOKENS`] the
    /// vocabulary has; the prefix: whatever the tokenizer's post-processor adds to an empty
    /// text (BOS for Gemma and Llama 3, nothing for SmolLM2).
    ///
    /// # Errors
    /// Weights that do not fit `spec`.
    pub fn new(
        name: impl Into<String>,
        spec: TransformerSpec,
        weights: &HostWeights,
        tokenizer: Tokenizer,
        bos: Option<u32>,
        eos: &[u32],
        device: &Device,
    ) -> Result<Self> {
        let exec = Exec::F32(Box::new(Transformer::new(spec, weights, device)?));
        Ok(Self::assemble(name.into(), exec, tokenizer, bos, eos))
    }

    fn assemble(
        name: String,
        model: Exec,
        tokenizer: Tokenizer,
        bos: Option<u32>,
        eos: &[u32],
    ) -> Self {
        let vocab = match &model {
            Exec::F32(m) => m.spec().vocab_size,
            Exec::Quantized(m, _) => m.spec().vocab_size,
        };
        let mut stop = eos.to_vec();
        for t in END_OF_TURN_TOKENS {
            if let Some(id) = tokenizer.token_to_id(t)
                && !stop.contains(&id)
                && (id as usize) < vocab
            {
                stop.push(id);
            }
        }
        let prefix = crate::tokenizer::special_prefix(&tokenizer);
        Self {
            name,
            model,
            tokenizer,
            stop,
            prefix,
            bos,
        }
    }

    /// Opens a model with the chosen executor: [`Engine::F32`] as [`CausalLm::open`];
    /// [`Engine::Quantized`] reads a GGUF file with its matrices left in their blocks
    /// ([`crate::quantized`]; the logits it returns live on `device`, the work runs on the
    /// CPU).
    ///
    /// # Errors
    /// As [`CausalLm::open`]; for the quantized engine, a Hugging Face directory (it reads
    /// GGUF files only) and [`LmError::UnsupportedQuantizedTensor`] naming a tensor whose type
    /// it cannot run.
    pub fn open_with(path: impl AsRef<Path>, device: &Device, engine: Engine) -> Result<Self> {
        let path = path.as_ref();
        match engine {
            Engine::F32 => Self::open(path, device),
            Engine::Quantized | Engine::QuantizedX2 | Engine::QuantizedF32 => {
                let open = || -> Result<Self> {
                    if path.is_dir() {
                        return Err(LmError::InvalidModelConfig {
                            path: path.into(),
                            detail: "the quantized engine reads GGUF files; use the f32 engine for a Hugging Face directory".into(),
                        });
                    }
                    let origin = path.display().to_string();
                    let file = GgufFile::open(path)?;
                    let header = file.header();
                    let tokenizer = tokenizer_from_gguf(header)?;
                    let name = header.model_name(path);
                    let (model, bos, eos) = QuantizedTransformer::from_gguf_owned(file, &origin)?;
                    // Every quantized engine stores keys and values as half floats, as llama.cpp
                    // does (batched decoding over long prompts is bound by reading the cache).
                    use crate::quantized::{KvPrecision, Precision};
                    let model = match engine {
                        Engine::QuantizedX2 => model
                            .with_precision(Precision::Q8x2)
                            .with_kv_precision(KvPrecision::F16),
                        Engine::QuantizedF32 => model
                            .with_precision(Precision::F32)
                            .with_kv_precision(KvPrecision::F16),
                        _ => model
                            .with_precision(Precision::Q8)
                            .with_kv_precision(KvPrecision::F16),
                    };
                    let exec = Exec::Quantized(Box::new(model), device.clone());
                    Ok(Self::assemble(name, exec, tokenizer, bos, &eos))
                };
                open().map_err(|e| e.metadata_in_file(path))
            }
        }
    }

    /// The executor running this model.
    pub fn engine(&self) -> Engine {
        match &self.model {
            Exec::F32(_) => Engine::F32,
            Exec::Quantized(m, _) => match m.precision() {
                crate::quantized::Precision::Q8 => Engine::Quantized,
                crate::quantized::Precision::Q8x2 => Engine::QuantizedX2,
                crate::quantized::Precision::F32 => Engine::QuantizedF32,
            },
        }
    }

    /// The model's sizes and switches.
    pub fn spec(&self) -> &TransformerSpec {
        match &self.model {
            Exec::F32(m) => m.spec(),
            Exec::Quantized(m, _) => m.spec(),
        }
    }

    /// The quantized executor, when it runs this model.
    pub fn quantized(&self) -> Option<&QuantizedTransformer> {
        match &self.model {
            Exec::Quantized(m, _) => Some(m),
            Exec::F32(_) => None,
        }
    }

    /// Opens any supported model: a GGUF file (weights de-quantised to f32, tokenizer from its
    /// metadata) or a Hugging Face directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`).
    ///
    /// # Errors
    /// [`LmError::UnsupportedArchitecture`] for other families; file, tokenizer and weight
    /// errors naming the key or tensor.
    pub fn open(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            Self::from_hf_dir(path, device)
        } else {
            Self::from_gguf(path, device)
        }
    }

    /// Loads a GGUF file of a supported architecture.
    ///
    /// # Errors
    /// See [`CausalLm::open`].
    pub fn from_gguf(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        Self::gguf_model(path, device).map_err(|e| e.metadata_in_file(path))
    }

    /// [`CausalLm::from_gguf`] before its metadata errors are given the file's name.
    fn gguf_model(path: &Path, device: &Device) -> Result<Self> {
        let origin = path.display().to_string();
        let file = GgufFile::open(path)?;
        let header = file.header();
        let arch = header.architecture()?.to_string();
        let (spec, weights, bos, eos) = match arch.as_str() {
            "llama" => {
                let (cfg, w) = crate::models::llama::load_gguf(&file, &origin)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            "gemma3" => {
                let (cfg, w) = crate::models::gemma3::load_gguf(&file, &origin)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            "olmoe" => {
                let (cfg, w) = crate::models::olmoe::load_gguf(&file, &origin)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            _ => {
                return Err(LmError::UnsupportedArchitecture {
                    path: path.into(),
                    key: "general.architecture",
                    found: arch,
                    supported: SUPPORTED_GGUF_ARCHITECTURES.join(", "),
                });
            }
        };
        let tokenizer = tokenizer_from_gguf(header)?;
        let name = header.model_name(path);
        Self::new(name, spec, &weights, tokenizer, bos, &eos, device)
    }

    /// Loads a Hugging Face directory of a supported `model_type`.
    ///
    /// # Errors
    /// See [`CausalLm::open`].
    pub fn from_hf_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let model_type = crate::models::hf_dir::model_type(dir)?;
        let (spec, weights, bos, eos) = match model_type.as_str() {
            "llama" => {
                let (cfg, w) = crate::models::hf_dir::load_llama(dir)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            "gemma3_text" | "gemma3" => {
                let (cfg, w) = crate::models::gemma3::load_hf_weights(dir)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            "olmoe" => {
                let (cfg, w) = crate::models::olmoe::load_hf(dir)?;
                (cfg.spec()?, w, cfg.bos_token_id, cfg.eos_token_id)
            }
            _ => {
                return Err(LmError::UnsupportedArchitecture {
                    path: dir.into(),
                    key: "model_type",
                    found: model_type,
                    supported: SUPPORTED_HF_MODEL_TYPES.join(", "),
                });
            }
        };
        let tokenizer = load_tokenizer_json(dir.join("tokenizer.json"))?;
        let name = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::new(name, spec, &weights, tokenizer, bos, &eos, device)
    }

    /// The burn executor, when it runs this model.
    pub fn transformer(&self) -> Option<&Transformer> {
        match &self.model {
            Exec::F32(m) => Some(m),
            Exec::Quantized(..) => None,
        }
    }

    /// Replaces the stop tokens.
    pub fn with_stop_tokens(mut self, stop: Vec<u32>) -> Self {
        self.stop = stop;
        self
    }

    /// Replaces the prefix every input starts with (e.g. `vec![]` to score without BOS).
    pub fn with_prefix(mut self, prefix: Vec<u32>) -> Self {
        self.prefix = prefix;
        self
    }
}

impl LanguageModel for CausalLm {
    type Cache = LmCache;

    fn name(&self) -> &str {
        &self.name
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn vocab_size(&self) -> usize {
        self.spec().vocab_size
    }

    fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    fn prefix_tokens(&self) -> &[u32] {
        &self.prefix
    }

    fn active_parameters(&self) -> Option<u64> {
        Some(self.spec().active_parameter_count())
    }

    fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    fn max_positions(&self) -> usize {
        self.spec().max_positions
    }

    fn new_cache(&self, batch: usize) -> LmCache {
        match &self.model {
            Exec::F32(m) => LmCache::F32(m.new_cache(batch)),
            Exec::Quantized(m, _) => LmCache::Quantized(m.new_cache(batch)),
        }
    }

    fn set_padding(&self, cache: &mut LmCache, pad: Vec<usize>) {
        match cache {
            LmCache::F32(c) => c.set_padding(pad),
            LmCache::Quantized(c) => c.set_padding(pad),
        }
    }

    fn cache_len(&self, cache: &LmCache) -> usize {
        match cache {
            LmCache::F32(c) => c.len(),
            LmCache::Quantized(c) => c.len(),
        }
    }

    fn truncate(&self, cache: &mut LmCache, len: usize) {
        match cache {
            LmCache::F32(c) => c.truncate(len),
            LmCache::Quantized(c) => c.truncate(len),
        }
    }

    fn forward(&self, tokens: &[Vec<u32>], cache: &mut LmCache, at: LogitsAt) -> Result<Tensor<3>> {
        match (&self.model, cache) {
            (Exec::F32(m), LmCache::F32(c)) => m.forward(tokens, c, at),
            (Exec::Quantized(m, device), LmCache::Quantized(c)) => {
                let logits = m.forward(tokens, c, at)?;
                let b = tokens.len();
                let v = m.spec().vocab_size;
                let rows = logits.len() / (b * v);
                Ok(Tensor::from_data(
                    TensorData::new(logits, [b, rows, v]),
                    device,
                ))
            }
            _ => Err(LmError::InvalidModelConfig {
                path: "forward".into(),
                detail: "a cache of the other engine was passed".into(),
            }),
        }
    }
}
