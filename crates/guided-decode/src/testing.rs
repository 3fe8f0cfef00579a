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

/// Synthetic `lambada_gen`-shaped items for the tiny models (seeded, documented as synthetic):
/// each prompt is 6 random words of the vocabulary and its "last word" is `oracle`'s greedy
/// next word, so the oracle alone scores 100% and the small model scores its agreement with
/// the oracle — the shape of a real study, runnable without data or model files.
///
/// # Errors
/// Model errors.
pub fn synthetic_items<M: lm::LanguageModel>(
    oracle: &M,
    n: usize,
    seed: u64,
) -> crate::Result<Vec<evals::harness::Item>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let vocab = oracle.vocab_size();
    let mut dec = lm::Decoder::empty(oracle);
    let mut items = Vec::with_capacity(n);
    for idx in 0..n {
        let words: Vec<String> = (0..6)
            .map(|_| format!("w{}", rng.random_range(1..vocab)))
            .collect();
        let prompt = words.join(" ");
        dec.sync(&oracle.encode_prompt(&prompt)?)?;
        let next = crate::speculative::argmax(dec.logits()) as u32;
        let word = oracle.decode(&[next])?.trim().to_string();
        items.push(evals::harness::Item::new(
            "lambada_gen",
            idx,
            evals::harness::ItemKind::LastWord { prompt, word },
        ));
    }
    Ok(items)
}

/// Twenty varied prompts (prose, code, arithmetic, accents, an emoji, leading whitespace) for
/// the real-model checks: text hand-offs, remote-oracle agreement.
pub const PROMPTS: [&str; 20] = [
    "The capital of France is",
    "def add(a, b):\n    return",
    "Once upon a time, in a small village,",
    "Question: What is 12 times 7?\nAnswer:",
    "The mitochondria is",
    "Translate to French: good morning →",
    "In 1969, Neil Armstrong",
    "Café crème, naïve façade — ",
    "She opened the door and saw",
    "The best way to learn programming is",
    "1, 2, 3, 5, 8, 13,",
    "The weather today is",
    "import numpy as np\nx =",
    "Emoji test 🙂 and",
    "A haiku about autumn:\n",
    "The quick brown fox",
    "Water boils at",
    "My favourite book is",
    "  Leading spaces and\ttabs",
    "The theory of relativity states that",
];
