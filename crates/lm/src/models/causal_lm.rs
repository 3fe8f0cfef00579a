//! [`CausalLm`]: any supported model file with its tokenizer, implementing [`LanguageModel`];
//! [`CausalLm::open`] is the one entry point from a path.
//!
//! | file | how the family is read | families |
//! |---|---|---|
//! | GGUF (`*.gguf`) | `general.architecture` | `llama` (Llama 2/3, SmolLM2), `gemma3` |
//! | Hugging Face directory | `config.json` → `model_type` | `llama`, `gemma3_text` / `gemma3` |
//!
//! Anything else is [`LmError::UnsupportedArchitecture`] listing what is supported.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::error::{LmError, Result};
use crate::format::gguf::GgufFile;
use crate::language_model::LanguageModel;
use crate::models::transformer::{HostWeights, LogitsAt, Transformer, TransformerSpec};
use crate::nn::kv_cache::KvCache;
use crate::tokenizer::{load_tokenizer_json, tokenizer_from_gguf};

/// GGUF `general.architecture` values [`CausalLm::open`] builds.
pub const SUPPORTED_GGUF_ARCHITECTURES: &[&str] = &["llama", "gemma3"];
/// Hugging Face `model_type` values [`CausalLm::open`] builds.
pub const SUPPORTED_HF_MODEL_TYPES: &[&str] = &["llama", "gemma3_text", "gemma3"];

/// End-of-turn tokens that stop generation besides the configured EOS, when the vocabulary
/// has them (Llama 3's `<|eot_id|>` / `<|end_of_text|>`, Gemma's `<end_of_turn>`, ChatML's
/// `<|im_end|>`).
pub const END_OF_TURN_TOKENS: &[&str] = &[
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|im_end|>",
];

/// A causal language model ready to score and generate.
#[derive(Debug, Clone)]
pub struct CausalLm {
    name: String,
    model: Transformer,
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
        let mut stop = eos.to_vec();
        for t in END_OF_TURN_TOKENS {
            if let Some(id) = tokenizer.token_to_id(t) {
                if !stop.contains(&id) && (id as usize) < spec.vocab_size {
                    stop.push(id);
                }
            }
        }
        let prefix = tokenizer
            .encode("", true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default();
        Ok(Self {
            name: name.into(),
            model: Transformer::new(spec, weights, device)?,
            tokenizer,
            stop,
            prefix,
            bos,
        })
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
        let name = header
            .get_str("general.name")
            .map(str::to_string)
            .unwrap_or_else(|_| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
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

    /// The underlying model.
    pub fn model(&self) -> &Transformer {
        &self.model
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
    type Cache = KvCache;

    fn name(&self) -> &str {
        &self.name
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn vocab_size(&self) -> usize {
        self.model.spec().vocab_size
    }

    fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    fn prefix_tokens(&self) -> &[u32] {
        &self.prefix
    }

    fn active_parameters(&self) -> Option<u64> {
        Some(self.model.spec().active_parameter_count())
    }

    fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    fn max_positions(&self) -> usize {
        self.model.spec().max_positions
    }

    fn new_cache(&self, batch: usize) -> KvCache {
        self.model.new_cache(batch)
    }

    fn set_padding(&self, cache: &mut KvCache, pad: Vec<usize>) {
        cache.set_padding(pad);
    }

    fn cache_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn truncate(&self, cache: &mut KvCache, len: usize) {
        cache.truncate(len);
    }

    fn forward(&self, tokens: &[Vec<u32>], cache: &mut KvCache, at: LogitsAt) -> Result<Tensor<3>> {
        self.model.forward(tokens, cache, at)
    }
}
