//! Tiny random models for tests, examples and documentation: a Llama-shaped
//! [`lm::CausalLm`] over a word-level vocabulary `w0 … w{V−1}` (whitespace-separated words),
//! seeded. They make every code path of this crate runnable without model files.

use burn::tensor::Device;
use lm::{CausalLm, HostWeights, LlamaConfig};
use tokenizers::Tokenizer;

/// A word-level tokenizer of `vocab` words `w0 … w{vocab−1}`, split on whitespace (`w0` is
/// also the unknown word).
pub fn word_tokenizer(vocab: usize) -> Tokenizer {
    let words: Vec<String> = (0..vocab).map(|i| format!("\"w{i}\": {i}")).collect();
    let json = format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {{"type": "WhitespaceSplit"}},
            "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "w0"}}}}"#,
        words.join(", ")
    );
    json.parse().expect("a valid word-level tokenizer")
}

/// A tiny random Llama (2 layers, width 16, 4 heads, 2 KV heads) over [`word_tokenizer`],
/// weights drawn with `seed`; no stop token.
pub fn tiny_model(vocab: usize, seed: u64) -> CausalLm {
    let cfg = LlamaConfig {
        vocab_size: vocab,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_id: Vec::new(),
    };
    let spec = cfg.spec().expect("a valid tiny config");
    let w = HostWeights::random(&spec, seed, 1.5, 0.1);
    CausalLm::new(
        format!("tiny-{seed}"),
        spec,
        &w,
        word_tokenizer(vocab),
        None,
        &[],
        &Device::flex(),
    )
    .expect("tiny weights fit the tiny spec")
}
