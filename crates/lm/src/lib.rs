//! `lm`: the language-model engine shared by the router, guided decoding, MoE work and the
//! benchmark harness.
//!
//! It reads model files (a defensive GGUF reader, de-quantisation of every common ggml type,
//! safetensors, tokenizers from `tokenizer.json` or GGUF metadata), builds the model families
//! (Llama 2/3, SmolLM2, Gemma 3; the MiniLM encoder) from one path with [`CausalLm::open`], runs
//! them exactly in f32 on any burn device, and scores and generates through the
//! [`LanguageModel`] trait.
//!
//! ```
//! use lm::format::gguf::{GgufHeader, GgufWriter, MetadataValue};
//! use lm::{format::dequant, GgmlType};
//!
//! // Build a small GGUF file in memory: one metadata key and one Q8_0 tensor of 32 values.
//! let mut block = vec![0x00, 0x3c]; // f16 scale d = 1.0
//! block.extend((0..32).map(|i| (i as i8 - 16) as u8));
//! let mut writer = GgufWriter::new();
//! writer.add_metadata("general.architecture", MetadataValue::String("llama".into()));
//! writer.add_tensor("w", &[32], GgmlType::Q8_0, block)?;
//! let bytes = writer.to_bytes()?;
//!
//! // Parse it back and de-quantise the tensor.
//! let header = GgufHeader::parse(&bytes)?;
//! assert_eq!(header.architecture()?, "llama");
//! let info = header.tensor("w")?;
//! let values = dequant::dequantize(info.ggml_type, header.tensor_data(&bytes, info)?, 32)?;
//! assert_eq!(values[0], -16.0);
//! assert_eq!(values[31], 15.0);
//!
//! // Corrupt input is an error, never a panic: here the file ends inside the tensor's data.
//! let cut = header.data_offset() as usize + 10;
//! assert!(GgufHeader::parse(&bytes[..cut]).is_err());
//! # Ok::<(), lm::LmError>(())
//! ```
//!
//! # Map
//!
//! | folder | what it holds |
//! |---|---|
//! | [`format`](mod@format) | file formats: [`format::gguf`] (reader, [`format::gguf_writer`]), [`format::ggml_type`], [`format::dequant`] (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K…Q6_K, bit-identical to llama.cpp), [`format::safetensors`] |
//! | [`tokenizer`] | `tokenizer.json`, tokenizers rebuilt from GGUF metadata (GPT-2 / SmolLM2, Llama 3 `llama-bpe`, SentencePiece / Gemma), the Llama 3 chat format |
//! | [`models`] | [`models::transformer`] (the decoder every family runs on), families [`models::llama`] and [`models::gemma3`], their GGUF and Hugging Face loaders, [`CausalLm::open`] (one entry point for any supported file), [`models::bert`] (MiniLM, f32 and int8) |
//! | [`nn`] | burn building blocks: [`nn::rope`] (both layouts, Llama 3 scaling), [`nn::kv_cache`] (rollback, padding, position offset), [`nn::tensor_io`] |
//! | [`quantized`] | the quantized CPU executor: the same decoder with matrices left in their GGUF blocks and integer products ([`Engine::Quantized`]) |
//! | [`kernels`] | CPU kernels with run-time SIMD dispatch (the crate's only `unsafe`): f32 row loops, [`kernels::qgemm`] int8 products, [`kernels::qdot`] GGUF-block dot products (AVX2), [`kernels::math`] |
//! | [`generate`](mod@generate) | [`Decoder`] (step, feed, rollback), [`generate()`], [`generate::sampling`] |
//! | [`language_model`] | the [`LanguageModel`] trait and log-likelihood scoring |
//! | [`locate`] | where `scripts/fetch_models.sh` put the real models |
//! | [`bench`](mod@bench) | the benchmarks as library code: [`bench::throughput`] (prefill/decode tokens/s, llama.cpp as the peer), [`bench::embed`] (MiniLM sentences/s, sentence-transformers as the peer; the golden check) |
//! | [`error`] | [`LmError`] |
//!
//! Dependencies point one way: `format` → `tokenizer` → `nn`/`kernels` → `models` →
//! `language_model`/`generate`.
//!
//! # Features
//! `wgpu`, `vulkan`, `cuda`: burn's GPU backends (with fusion and autotuning); library code takes
//! a `&Device` and never picks one. The CPU backend `flex` is always on, with its `rayon`
//! (multi-threaded gemm and attention) and `simd` parts. The `tokenizers` dependency is built
//! without default features (pure-Rust `fancy-regex`, no oniguruma C build).

pub mod bench;
pub mod error;
pub mod format;
pub mod generate;
pub mod kernels;
pub mod language_model;
pub mod locate;
pub mod models;
pub mod nn;
pub mod quantized;
pub mod tokenizer;

pub use error::{LmError, Result};
pub use format::ggml_type::GgmlType;
pub use format::gguf::{GgufFile, GgufHeader, MetadataArray, MetadataValue, TensorInfo};
pub use format::safetensors::SafetensorsWeights;
pub use generate::sampling::{Sampler, SamplingConfig, StepInfo};
pub use generate::{Decoder, GenerateOptions, Generation, StopReason, generate, generate_stream};
pub use language_model::{
    Agreement, ContinuationScore, LanguageModel, agreement, loglikelihood, token_logprobs,
};
pub use models::bert::{BertConfig, BertModel, SentenceEncoder};
pub use models::causal_lm::{CausalLm, Engine, LmCache};
pub use models::gemma3::Gemma3Config;
pub use models::llama::LlamaConfig;
pub use models::olmoe::OlmoeConfig;
pub use models::transformer::{HostTensor, HostWeights, LogitsAt, Transformer, TransformerSpec};
