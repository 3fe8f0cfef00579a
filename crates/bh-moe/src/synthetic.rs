//! Seeded synthetic inputs for examples, tests and benches when no model is at hand: router
//! logits ([`router_logits`]), a byte-level tokenizer ([`byte_tokenizer`]) and a tiny random
//! OLMoE ([`tiny_olmoe`]).
//!
//! Each token's logits are i.i.d. standard normal (Box–Muller over ChaCha8), and a random
//! number `r ∈ 1..=8` of its experts — drawn uniformly without replacement — get `+3`: a few
//! experts stand out by a varying amount, so adaptive selectors have something to adapt to.
//! Not a model of any real router.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `tokens × experts` logits, token-major (`logits[t * experts + e]`), reproducible from `seed`.
///
/// # Panics
/// When `experts` is 0.
pub fn router_logits(tokens: usize, experts: usize, seed: u64) -> Vec<f32> {
    assert!(experts > 0, "experts must be at least 1");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(tokens * experts);
    for _ in 0..tokens {
        let row = out.len();
        for _ in 0..experts {
            out.push(standard_normal(&mut rng) as f32);
        }
        let hot = rng.random_range(1..=experts.min(8));
        for e in sample(&mut rng, experts, hot) {
            out[row + e] += 3.0;
        }
    }
    out
}

fn standard_normal(rng: &mut impl Rng) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_shaped_and_roughly_standard() {
        let a = router_logits(200, 64, 1);
        assert_eq!(a.len(), 200 * 64);
        assert_eq!(a, router_logits(200, 64, 1));
        assert_ne!(a, router_logits(200, 64, 2));
        // Mean ≈ 3 · E[r]/64 = 3 · 4.5/64 ≈ 0.21 over 12,800 draws.
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / a.len() as f64;
        assert!((mean - 0.21).abs() < 0.05, "{mean}");
        assert!(a.iter().all(|x| x.is_finite()));
    }
}

/// A byte-level tokenizer (GPT-2's byte-to-character map, no merges): ids 0–255 are the 256
/// bytes, so any text encodes and decodes losslessly with a 256-token vocabulary. For tiny
/// models without a tokenizer of their own (`shared/golden/olmoe_tiny`, whose GGUF vocabulary
/// is placeholder tokens).
pub fn byte_tokenizer() -> tokenizers::Tokenizer {
    // GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
    let mut extra = 0u32;
    let vocab: serde_json::Map<String, serde_json::Value> = (0u32..256)
        .map(|b| {
            let printable =
                (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
            let c = if printable {
                char::from_u32(b)
            } else {
                extra += 1;
                char::from_u32(255 + extra)
            }
            .expect("valid code point");
            (c.to_string(), serde_json::Value::from(b))
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    });
    json.to_string()
        .parse()
        .expect("a valid byte-level tokenizer")
}

/// A tiny random OLMoE (3 layers, width 64, 4 heads, 16 experts of 32, top-4,
/// `norm_topk_prob = false`, vocabulary 320) with weights drawn from `seed`: the stand-in when
/// not even `shared/golden/olmoe_tiny` is at hand.
pub fn tiny_olmoe(seed: u64) -> (lm::OlmoeConfig, lm::HostWeights) {
    let cfg = lm::OlmoeConfig {
        vocab_size: 320,
        hidden_size: 64,
        intermediate_size: 32,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 1024,
        num_experts: 16,
        num_experts_per_tok: 4,
        norm_topk_prob: false,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_id: Vec::new(),
    };
    let spec = cfg.spec().expect("a consistent configuration");
    let weights = lm::HostWeights::random(&spec, seed, 0.3, 0.2);
    (cfg, weights)
}

#[cfg(test)]
mod byte_tests {
    #[test]
    fn byte_tokenizer_round_trips_any_text() {
        let t = super::byte_tokenizer();
        for text in [
            "plain words",
            "naïve — ünïcödé\n\ttabs",
            " leading space",
            "",
        ] {
            let ids = t.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(ids.len(), text.len());
            assert!(ids.iter().all(|&i| i < 256));
            assert_eq!(t.decode(&ids, false).unwrap(), text);
        }
    }
}
