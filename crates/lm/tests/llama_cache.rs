//! KV-cache behaviour of the Llama forward pass on a small random model (no files needed):
//! incremental decoding equals a full pass, left-padded batches equal single sequences, and
//! rolling the cache back reproduces the same logits.

use burn::tensor::Device;
use lm::nn::tensor_io::read_f32;
use lm::{HostWeights, LlamaConfig, LmError, LogitsAt, Transformer};

fn tiny() -> (LlamaConfig, Transformer) {
    let cfg = LlamaConfig {
        vocab_size: 37,
        hidden_size: 24,
        intermediate_size: 40,
        num_hidden_layers: 3,
        num_attention_heads: 6,
        num_key_value_heads: 2,
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 64,
        tie_word_embeddings: false,
        bos_token_id: Some(1),
        eos_token_id: vec![2],
    };
    let spec = cfg.spec().unwrap();
    let w = HostWeights::random(&spec, 7, 0.4, 0.1);
    let model = Transformer::new(spec, &w, &Device::flex()).unwrap();
    (cfg, model)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn incremental_decoding_equals_full_pass() {
    let (cfg, m) = tiny();
    let seq: Vec<u32> = vec![3, 17, 5, 9, 30, 2, 11, 4];
    let mut cache = m.new_cache(1);
    let full = read_f32(
        m.forward(std::slice::from_ref(&seq), &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    let mut cache = m.new_cache(1);
    let mut inc = read_f32(
        m.forward(&[seq[..5].to_vec()], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    for &t in &seq[5..] {
        inc.extend(read_f32(m.forward(&[vec![t]], &mut cache, LogitsAt::Last).unwrap()).unwrap());
    }
    assert_eq!(cache.len(), seq.len());
    assert!(max_diff(&full, &inc) < 1e-5, "{}", max_diff(&full, &inc));
    assert_eq!(full.len(), seq.len() * cfg.vocab_size);
}

#[test]
fn left_padded_batch_equals_single_sequences() {
    let (cfg, m) = tiny();
    let a: Vec<u32> = vec![3, 17, 5, 9, 30, 2];
    let b: Vec<u32> = vec![8, 1, 12];
    let single = |s: &[u32]| {
        let mut c = m.new_cache(1);
        read_f32(m.forward(&[s.to_vec()], &mut c, LogitsAt::All).unwrap()).unwrap()
    };
    let (la, lb) = (single(&a), single(&b));
    let mut cache = m.new_cache(2);
    cache.set_padding(vec![0, 3]);
    let padded_b: Vec<u32> = [0, 0, 0].iter().chain(&b).copied().collect();
    let out = read_f32(
        m.forward(&[a.clone(), padded_b], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    let v = cfg.vocab_size;
    let row_a = &out[..6 * v];
    let row_b = &out[6 * v + 3 * v..];
    assert!(max_diff(row_a, &la) < 1e-5);
    assert!(max_diff(row_b, &lb) < 1e-5, "{}", max_diff(row_b, &lb));
    // Continue both sequences by one token with the shared cache.
    let next = read_f32(
        m.forward(&[vec![7], vec![7]], &mut cache, LogitsAt::Last)
            .unwrap(),
    )
    .unwrap();
    let mut ca = a.clone();
    ca.push(7);
    let mut cb = b.clone();
    cb.push(7);
    assert!(max_diff(&next[..v], &single(&ca)[6 * v..]) < 1e-5);
    assert!(max_diff(&next[v..], &single(&cb)[3 * v..]) < 1e-5);
}

#[test]
fn rollback_reproduces_logits() {
    let (_, m) = tiny();
    let mut cache = m.new_cache(1);
    m.forward(&[vec![3, 17, 5, 9]], &mut cache, LogitsAt::Last)
        .unwrap();
    let first = read_f32(
        m.forward(&[vec![21, 22]], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    m.forward(&[vec![30, 31, 32]], &mut cache, LogitsAt::Last)
        .unwrap();
    cache.truncate(4);
    let again = read_f32(
        m.forward(&[vec![21, 22]], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    assert!(max_diff(&first, &again) < 1e-6);
    assert_eq!(cache.len(), 6);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (_, m) = tiny();
    let mut cache = m.new_cache(1);
    assert!(matches!(
        m.forward(&[vec![99]], &mut cache, LogitsAt::Last),
        Err(LmError::TokenOutOfRange { id: 99, .. })
    ));
    assert!(matches!(
        m.forward(&[vec![1; 65]], &mut cache, LogitsAt::Last),
        Err(LmError::SequenceTooLong { .. })
    ));
    assert!(
        m.forward(&[vec![1, 2], vec![1]], &mut m.new_cache(2), LogitsAt::Last)
            .is_err()
    );
}
