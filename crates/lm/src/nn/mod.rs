//! Building blocks on burn tensors shared by the models: rotary embeddings, the KV cache, the
//! mixture-of-experts block, and moving values between host vectors and tensors.

pub mod kv_cache;
pub mod moe;
pub mod rope;
pub mod tensor_io;
