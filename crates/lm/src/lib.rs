//! `lm`: the language-model engine shared by the router, guided decoding, MoE work and the
//! benchmark harness.
//!
//! This first part reads model files: a defensive GGUF reader, de-quantisation of the common
//! ggml types to f32, tokenizers (Hugging Face `tokenizer.json`, and the byte-level and
//! SentencePiece BPE tokenizers stored in GGUF metadata), and locating the real test models
//! fetched by `scripts/fetch_models.sh`.
//!
//! ```
//! use lm::gguf::{GgufHeader, GgufWriter, MetadataValue};
//! use lm::{dequant, GgmlType};
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
//! # Modules
//! - [`gguf`]: GGUF v2/v3 reader ([`GgufHeader`], [`GgufFile`]).
//! - [`gguf_writer`]: building GGUF files in memory ([`gguf::GgufWriter`]).
//! - [`ggml_type`]: ggml tensor types with their block sizes ([`GgmlType`]).
//! - [`dequant`]: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K to f32,
//!   bit-identical to llama.cpp.
//! - [`tokenizer`]: `tokenizer.json` loading, [`tokenizer::tokenizer_from_gguf`] (GPT-2, Llama 3
//!   and SentencePiece/Gemma tokenizers from GGUF metadata) and the Llama 3 chat format
//!   ([`tokenizer::llama3_chat_prompt`], [`tokenizer::llama3_stop_ids`]).
//! - [`locate`]: where the fetched models are ([`locate::smollm2_gguf`], [`locate::minilm_dir`],
//!   [`locate::gemma3_gguf`], [`locate::llama3_tokenizer_json`]).
//! - [`weights`]: safetensors weights by Hugging Face name, with shape and key checks
//!   ([`SafetensorsWeights`]).
//! - [`bert`]: the BERT encoder and the all-MiniLM-L6-v2 [`SentenceEncoder`] (mean pooling, L2
//!   normalisation, batched [`SentenceEncoder::embed`]).
//! - [`bert_int8`]: the same encoder with int8 linear layers for CPU inference
//!   ([`SentenceEncoder::quantized`]): no padding, every step multi-threaded, ~3–5× the f32
//!   path's throughput at cosine > 0.99 to it.
//! - [`qgemm`]: int8 matrix products with dynamic per-row activation quantisation;
//!   [`kernels`]: its AVX-512 VNNI tile and the run-time-dispatched f32 loops (the workspace's one
//!   module with `unsafe`, each use behind a CPU-feature check).
//! - [`error`]: the crate's [`LmError`].
//!
//! # Features
//! `wgpu`, `vulkan`, `cuda`: burn's GPU backends (with fusion and autotuning); library code takes
//! a `&Device` and never picks one. The CPU backend `flex` is always on, with its `rayon`
//! (multi-threaded gemm and attention) and `simd` parts. The `tokenizers` dependency is built
//! without default features (pure-Rust `fancy-regex`, no oniguruma C build).

pub mod bert;
pub mod bert_int8;
pub mod causal_lm;
pub mod dequant;
pub mod error;
pub mod gemma3;
pub mod generate;
pub mod ggml_type;
pub mod gguf;
pub mod gguf_model;
pub mod gguf_writer;
pub mod hf_dir;
pub mod kernels;
pub mod kv_cache;
pub mod language_model;
pub mod llama;
pub mod locate;
pub mod qgemm;
pub mod rope;
pub mod sampling;
pub mod tensor_io;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use bert::{BertConfig, BertModel, SentenceEncoder};
pub use error::{LmError, Result};
pub use generate::{Decoder, GenerateOptions, Generation, StopReason, generate};
pub use ggml_type::GgmlType;
pub use gguf::{GgufFile, GgufHeader, MetadataArray, MetadataValue, TensorInfo};
pub use language_model::{ContinuationScore, LanguageModel, loglikelihood, token_logprobs};
pub use causal_lm::CausalLm;
pub use gemma3::Gemma3Config;
pub use llama::LlamaConfig;
pub use transformer::{HostTensor, HostWeights, LogitsAt, Transformer, TransformerSpec};
pub use sampling::{Sampler, SamplingConfig, StepInfo};
pub use weights::SafetensorsWeights;
