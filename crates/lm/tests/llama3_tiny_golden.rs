//! Llama 3 against transformers on `shared/golden/llama3_tiny` (a tiny random model with the
//! `llama3` RoPE scaling, factor 32): the Hugging Face directory with either config style and
//! the GGUF (permuted Q/K, `rope_freqs.weight`) must reproduce every logit within 1e-4,
//! including a sequence that starts at position 9000 — past the original 8,192-token context,
//! where the scaling changes the angles — and the greedy continuation.

mod common;

use lm::models::hf_dir::load_llama;
use lm::nn::tensor_io::read_f32;
use lm::{GgufFile, HostWeights, LlamaConfig, LmError, LogitsAt, Transformer};

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Max |Δlogit| over every case, and the greedy continuation.
fn check(model: &Transformer, golden: &serde_json::Value, what: &str) -> f32 {
    let mut worst = 0f32;
    for case in golden["cases"].as_array().unwrap() {
        let ids = u32s(&case["input_ids"]);
        let mut cache = model.new_cache(1);
        cache.set_position_offset(case["start_position"].as_u64().unwrap() as usize);
        let got = read_f32(model.forward(&[ids], &mut cache, LogitsAt::All).unwrap()).unwrap();
        let want: Vec<f32> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{what}");
        worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(worst, f32::max);
    }
    // Greedy decoding with the cache, one token a step.
    let g = &golden["greedy"];
    let mut cache = model.new_cache(1);
    let mut step = u32s(&g["input_ids"]);
    let mut out = Vec::new();
    for _ in 0..u32s(&g["generated"]).len() {
        let logits = read_f32(model.forward(&[step], &mut cache, LogitsAt::Last).unwrap()).unwrap();
        let next = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap() as u32;
        out.push(next);
        step = vec![next];
    }
    assert_eq!(out, u32s(&g["generated"]), "{what}: greedy continuation");
    eprintln!("{what}: max |Δlogit| = {worst:.2e}");
    worst
}

fn build(cfg: &LlamaConfig, w: &HostWeights) -> Transformer {
    Transformer::new(cfg.spec().unwrap(), w, &common::test_device()).unwrap()
}

#[test]
fn llama3_tiny_matches_transformers_from_hf_and_gguf() {
    let Some(dir) = common::golden_dir_or_skip() else {
        return;
    };
    let Some(golden) = common::golden_json("llama3_tiny/golden.json") else {
        return;
    };
    let root = dir.join("llama3_tiny");

    // transformers-5 config (`rope_parameters`).
    let (cfg, w) = load_llama(&root.join("hf")).unwrap();
    assert!(matches!(
        cfg.rope_scaling,
        Some(lm::nn::rope::RopeScaling::Llama3 { .. })
    ));
    assert!(check(&build(&cfg, &w), &golden, "HF, rope_parameters") <= 1e-4);

    // Published-checkpoint config (`rope_theta` + `rope_scaling`): same model.
    let tmp = std::env::temp_dir().join(format!("llama3-v4-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(
        root.join("hf/config_v4_style.json"),
        tmp.join("config.json"),
    )
    .unwrap();
    std::fs::copy(
        root.join("hf/model.safetensors"),
        tmp.join("model.safetensors"),
    )
    .unwrap();
    let (cfg4, w4) = load_llama(&tmp).unwrap();
    assert_eq!(cfg4.rope_scaling, cfg.rope_scaling);
    assert!(check(&build(&cfg4, &w4), &golden, "HF, rope_scaling") <= 1e-4);
    std::fs::remove_dir_all(&tmp).ok();

    // GGUF: permuted Q/K rows and `rope_freqs.weight`, which must equal the golden divisors.
    let file = GgufFile::open(root.join("llama3-tiny-f32.gguf")).unwrap();
    let (gcfg, gw) = lm::models::llama::load_gguf(&file, "llama3-tiny-f32.gguf").unwrap();
    match &gcfg.rope_scaling {
        Some(lm::nn::rope::RopeScaling::FreqFactors(f)) => {
            let want: Vec<f32> = golden["rope_freqs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(f, &want);
        }
        other => panic!("GGUF rope scaling {other:?}"),
    }
    assert!(check(&build(&gcfg, &gw), &golden, "GGUF") <= 1e-4);
}

#[test]
fn a_llama3_gguf_without_rope_freqs_is_an_error_naming_it() {
    let Some(dir) = common::golden_dir_or_skip() else {
        return;
    };
    let bytes = std::fs::read(dir.join("llama3_tiny/llama3-tiny-f32.gguf")).unwrap();
    let header = lm::GgufHeader::parse(&bytes).unwrap();
    // Rewrite the file without `rope_freqs.weight`.
    let mut writer = lm::format::gguf::GgufWriter::new();
    for entry in header.metadata() {
        writer.add_metadata(entry.key.clone(), entry.value.clone());
    }
    for info in header.tensors() {
        if info.name != "rope_freqs.weight" {
            let data = header.tensor_data(&bytes, info).unwrap().to_vec();
            writer
                .add_tensor(&info.name, &info.dims, info.ggml_type, data)
                .unwrap();
        }
    }
    let path = std::env::temp_dir().join(format!("llama3-no-freqs-{}.gguf", std::process::id()));
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let err = lm::models::llama::load_gguf(&file, "no-freqs.gguf").unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&err, LmError::WeightKeys { missing, .. } if missing == &["rope_freqs.weight"]),
        "{err}"
    );
}
