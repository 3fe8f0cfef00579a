//! The Hugging Face loading path on real weights: SmolLM2's GGUF is exported to an HF-layout
//! directory (HF names, Q/K un-permuted to rotate-half, f32 safetensors), loaded back through
//! the safetensors path, and both models must give the same logits.

mod common;

use burn::tensor::Device;
use lm::models::hf_dir::export_llama;
use lm::models::llama::load_gguf;
use lm::nn::tensor_io::read_f32;
use lm::tokenizer::tokenizer_from_gguf;
use lm::{CausalLm, GgufFile, LanguageModel, LogitsAt};

#[test]
fn gguf_and_exported_hf_directory_give_the_same_logits() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let device = Device::flex();
    let file = GgufFile::open(&path).unwrap();
    let (cfg, weights) = load_gguf(&file, "smollm2").unwrap();
    let tokenizer = tokenizer_from_gguf(file.header()).unwrap();
    let dir = std::env::temp_dir().join(format!("smollm2-hf-{}", std::process::id()));
    export_llama(&cfg, &weights, &tokenizer, &dir).unwrap();
    drop(weights);

    let from_gguf = CausalLm::from_gguf(&path, &device).unwrap();
    let from_hf = CausalLm::from_hf_dir(&dir, &device).unwrap();
    let mut worst = 0f32;
    for prompt in ["The capital of France is", "def add(a, b):\n    return"] {
        let ids = from_gguf.encode(prompt).unwrap();
        assert_eq!(ids, from_hf.encode(prompt).unwrap());
        let run = |m: &CausalLm| {
            let mut c = m.new_cache(1);
            read_f32(
                m.forward(std::slice::from_ref(&ids), &mut c, LogitsAt::All)
                    .unwrap(),
            )
            .unwrap()
        };
        let (a, b) = (run(&from_gguf), run(&from_hf));
        worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(worst, f32::max);
    }
    eprintln!("GGUF vs exported HF directory: max |logit diff| = {worst:e}");
    assert!(worst <= 1e-5, "{worst}");

    // A directory whose weights do not match its config is an error naming the keys.
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text.replace("\"num_hidden_layers\": 30", "\"num_hidden_layers\": 29"),
    )
    .unwrap();
    let err = CausalLm::from_hf_dir(&dir, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.29"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
