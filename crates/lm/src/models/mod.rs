//! Model families and their loaders.
//!
//! | module | what |
//! |---|---|
//! | [`transformer`] | the one decoder-only transformer every text family runs on (exact f32 on any burn device), described by a [`transformer::TransformerSpec`] |
//! | [`llama`] | Llama 2/3 and SmolLM2: `config.json` / GGUF metadata → spec, GGUF names, Llama 3 RoPE scaling |
//! | [`gemma3`] | Gemma 3: sandwich norms, q/k norms, GeGLU, sliding-window local layers with their own RoPE base |
//! | [`olmoe`] | OLMoE: mixture-of-experts MLPs (router + SwiGLU experts, selection rule as a parameter), whole-vector q/k norms; HF per-expert, fused and sharded checkpoints, GGUF merged experts |
//! | [`gguf_loader`] | GGUF tensors → Hugging Face names, shared by the families |
//! | [`hf_dir`] | Hugging Face directories (`config.json`, `model.safetensors`), Llama export |
//! | [`causal_lm`] | [`causal_lm::CausalLm`]: model + tokenizer, [`causal_lm::CausalLm::open`] for any supported file |
//! | [`bert`] | the BERT encoder and the MiniLM sentence encoder (f32, and [`bert::int8`] on the CPU) |

pub mod bert;
pub mod causal_lm;
pub mod gemma3;
pub mod gguf_loader;
pub mod hf_dir;
pub mod llama;
pub mod olmoe;
pub mod transformer;
