//! Gemma 3's forward pass on a tiny random model (no files needed): with a sliding window of 3
//! on the local layers, incremental decoding far past the window equals a full pass, a
//! left-padded batch equals single sequences, the window changes the logits (so it is really
//! applied), and a Hugging Face directory written from the same weights (norms stored as `w`,
//! not `1 + w`; transformers-5 config) loads to the same logits.

use burn::tensor::Device;
use lm::format::safetensors::f32_safetensors;
use lm::nn::tensor_io::read_f32;
use lm::{Gemma3Config, HostWeights, LogitsAt, Transformer};

fn config() -> Gemma3Config {
    Gemma3Config {
        vocab_size: 23,
        hidden_size: 16,
        intermediate_size: 24,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 1_000_000.0,
        rope_local_base_freq: 10_000.0,
        sliding_window: 3,
        global_layers: vec![false, false, true, false],
        query_pre_attn_scalar: 8.0,
        max_position_embeddings: 64,
        bos_token_id: Some(2),
        eos_token_id: vec![1],
    }
}

fn weights(cfg: &Gemma3Config) -> HostWeights {
    HostWeights::random(&cfg.spec().unwrap(), 11, 0.6, 0.2)
}

fn model(cfg: &Gemma3Config, w: &HostWeights) -> Transformer {
    Transformer::new(cfg.spec().unwrap(), w, &Device::flex()).unwrap()
}

fn full(m: &Transformer, seq: &[u32]) -> Vec<f32> {
    let mut c = m.new_cache(1);
    read_f32(m.forward(&[seq.to_vec()], &mut c, LogitsAt::All).unwrap()).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const SEQ: [u32; 12] = [2, 17, 5, 9, 20, 3, 11, 4, 8, 13, 21, 6];

#[test]
fn incremental_decoding_past_the_window_equals_a_full_pass() {
    let cfg = config();
    let m = model(&cfg, &weights(&cfg));
    let all = full(&m, &SEQ);
    let mut cache = m.new_cache(1);
    let mut inc = read_f32(
        m.forward(&[SEQ[..2].to_vec()], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    for &t in &SEQ[2..] {
        inc.extend(read_f32(m.forward(&[vec![t]], &mut cache, LogitsAt::Last).unwrap()).unwrap());
    }
    assert!(max_diff(&all, &inc) < 1e-5, "{}", max_diff(&all, &inc));

    // The window matters: the same weights with full attention everywhere differ after
    // position 3 but not before.
    let mut spec = cfg.spec().unwrap();
    spec.layers.iter_mut().for_each(|l| l.window = None);
    let wide = Transformer::new(spec, &weights(&cfg), &Device::flex()).unwrap();
    let other = full(&wide, &SEQ);
    let v = cfg.vocab_size;
    assert!(max_diff(&all[..3 * v], &other[..3 * v]) < 1e-6);
    assert!(max_diff(&all[3 * v..], &other[3 * v..]) > 1e-3);
}

#[test]
fn left_padded_batch_equals_single_sequences() {
    let cfg = config();
    let m = model(&cfg, &weights(&cfg));
    let a = SEQ[..8].to_vec();
    let b = SEQ[3..6].to_vec();
    let (la, lb) = (full(&m, &a), full(&m, &b));
    let mut cache = m.new_cache(2);
    cache.set_padding(vec![0, 5]);
    let padded_b: Vec<u32> = [0; 5].iter().chain(&b).copied().collect();
    let out = read_f32(
        m.forward(&[a.clone(), padded_b], &mut cache, LogitsAt::All)
            .unwrap(),
    )
    .unwrap();
    let v = cfg.vocab_size;
    assert!(max_diff(&out[..8 * v], &la) < 1e-5);
    assert!(max_diff(&out[8 * v + 5 * v..], &lb) < 1e-5);
}

#[test]
fn a_hugging_face_directory_loads_to_the_same_model() {
    let cfg = config();
    let w = weights(&cfg);
    let dir = std::env::temp_dir().join(format!("gemma3-tiny-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Hugging Face stores Gemma's norm weights as `w` (the model computes `1 + w`).
    let shifted: Vec<(String, Vec<usize>, Vec<f32>)> = w
        .tensors
        .iter()
        .map(|(n, t)| {
            let data = if n.ends_with("norm.weight") {
                t.data.iter().map(|x| x - 1.0).collect()
            } else {
                t.data.clone()
            };
            (n.clone(), t.shape.clone(), data)
        })
        .collect();
    let views: Vec<(&str, &[usize], &[f32])> = shifted
        .iter()
        .map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice()))
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        f32_safetensors(&views).unwrap(),
    )
    .unwrap();
    let config_json = serde_json::json!({
        "model_type": "gemma3_text", "vocab_size": 23, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
        "rms_norm_eps": 1e-6, "sliding_window": 3, "query_pre_attn_scalar": 8,
        "max_position_embeddings": 64,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}
        },
        "bos_token_id": 2, "eos_token_id": 1
    });
    std::fs::write(dir.join("config.json"), config_json.to_string()).unwrap();
    let (hf_cfg, hf_w) = lm::models::gemma3::load_hf_weights(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(hf_cfg, cfg);
    let d = max_diff(
        &full(&model(&cfg, &w), &SEQ),
        &full(&model(&hf_cfg, &hf_w), &SEQ),
    );
    assert!(d < 1e-5, "{d}");
}
