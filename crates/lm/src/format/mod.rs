//! File formats: GGUF (read and write), ggml tensor types and their de-quantisation, and
//! safetensors weights by Hugging Face name.
//!
//! Nothing here knows about a model family: the loaders in [`crate::models`] map these files'
//! tensors onto a model's parameters.

pub mod dequant;
pub mod ggml_type;
pub mod gguf;
pub mod gguf_writer;
pub mod safetensors;
