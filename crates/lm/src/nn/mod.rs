//! Building blocks on burn tensors shared by the models: rotary embeddings, the KV cache, and
//! moving values between host vectors and tensors.

pub mod kv_cache;
pub mod rope;
pub mod tensor_io;
