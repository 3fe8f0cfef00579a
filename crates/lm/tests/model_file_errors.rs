//! Corrupt or inconsistent model files give typed errors naming the key or tensor:
//! an unknown architecture (GGUF and Hugging Face), head counts that do not fit the tensors,
//! a missing metadata key, an optional key of the wrong type, a file that does not parse (named),
//! a config without `model_type`, a header of another architecture (the file named once opened),
//! and a NaN block scale (named at load by both engines).

mod common;

use burn::tensor::Device;
use lm::format::gguf::GgufWriter;
use lm::{CausalLm, GgufHeader, LmError, MetadataValue};

/// The tiny Llama 3 GGUF rewritten with `edit` applied to its metadata.
fn rewritten(
    edit: impl Fn(&str, &MetadataValue) -> Option<MetadataValue>,
    tag: &str,
) -> Option<std::path::PathBuf> {
    let dir = common::golden_dir_or_skip()?;
    let bytes = std::fs::read(dir.join("llama3_tiny/llama3-tiny-f32.gguf")).unwrap();
    let header = GgufHeader::parse(&bytes).unwrap();
    let mut writer = GgufWriter::new();
    for e in header.metadata() {
        if let Some(v) = edit(&e.key, &e.value) {
            writer.add_metadata(e.key.clone(), v);
        }
    }
    for info in header.tensors() {
        let data = header.tensor_data(&bytes, info).unwrap().to_vec();
        writer
            .add_tensor(&info.name, &info.dims, info.ggml_type, data)
            .unwrap();
    }
    let path = std::env::temp_dir().join(format!("lm-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    Some(path)
}

#[test]
fn an_unknown_gguf_architecture_lists_the_supported_ones() {
    let Some(path) = rewritten(
        |k, v| {
            Some(if k == "general.architecture" {
                MetadataValue::String("mamba".into())
            } else {
                v.clone()
            })
        },
        "mamba",
    ) else {
        return;
    };
    let err = CausalLm::open(&path, &Device::flex()).unwrap_err();
    std::fs::remove_file(&path).ok();
    match &err {
        LmError::UnsupportedArchitecture {
            key,
            found,
            supported,
            ..
        } => {
            assert_eq!((*key, found.as_str()), ("general.architecture", "mamba"));
            assert!(supported.contains("llama") && supported.contains("gemma3"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn head_counts_that_do_not_fit_the_tensors_name_the_tensor() {
    let Some(path) = rewritten(
        |k, v| {
            Some(if k == "llama.attention.head_count" {
                MetadataValue::U32(4)
            } else {
                v.clone()
            })
        },
        "heads",
    ) else {
        return;
    };
    let file = lm::GgufFile::open(&path).unwrap();
    let err = lm::models::llama::load_gguf(&file, "heads.gguf").unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&err, LmError::WeightShape { name, .. } if name == "blk.0.attn_q.weight"),
        "{err}"
    );
}

#[test]
fn a_missing_metadata_key_is_named() {
    let Some(path) = rewritten(
        |k, v| (k != "llama.block_count").then(|| v.clone()),
        "nolayers",
    ) else {
        return;
    };
    let err = CausalLm::open(&path, &Device::flex()).unwrap_err();
    // The quantized engine reads the tokenizer first, which this tiny file lacks: another
    // missing key, named with the file as well.
    let quantized = CausalLm::open_with(&path, &Device::flex(), lm::Engine::Quantized).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&err, LmError::InFile { path: p, source } if p == &path
            && matches!(&**source, LmError::MissingKey { key } if key == "llama.block_count")),
        "{err}"
    );
    assert!(
        matches!(&quantized, LmError::InFile { path: p, source } if p == &path
            && matches!(&**source, LmError::MissingKey { .. })),
        "{quantized}"
    );
    for e in [&err, &quantized] {
        assert!(e.to_string().contains("nolayers"), "{e}");
    }
}

#[test]
fn an_optional_key_of_the_wrong_type_is_an_error_not_a_default() {
    // A RoPE base stored as an integer would silently become the default 10,000.
    let Some(path) = rewritten(
        |k, v| {
            Some(if k == "llama.rope.freq_base" {
                MetadataValue::U32(500_000)
            } else {
                v.clone()
            })
        },
        "ropeint",
    ) else {
        return;
    };
    let err = CausalLm::open(&path, &Device::flex()).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&err, LmError::InFile { path: p, source } if p == &path
            && matches!(&**source, LmError::WrongValueType { key, .. } if key == "llama.rope.freq_base")),
        "{err}"
    );
}

#[test]
fn a_file_that_does_not_parse_is_named() {
    let path = std::env::temp_dir().join(format!("lm-notgguf-{}.gguf", std::process::id()));
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00truncated").unwrap();
    let err = lm::GgufFile::open(&path).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&err, LmError::InFile { path: p, source } if p == &path
            && matches!(**source, LmError::CountTooLarge { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("lm-notgguf-"), "{err}");
}

#[test]
fn hf_directories_of_unknown_or_untyped_models_are_errors() {
    let dir = std::env::temp_dir().join(format!("lm-neox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt_neox"}"#).unwrap();
    let err = CausalLm::open(&dir, &Device::flex()).unwrap_err();
    assert!(
        matches!(&err, LmError::UnsupportedArchitecture { key: "model_type", found, .. } if found == "gpt_neox"),
        "{err}"
    );
    std::fs::write(dir.join("config.json"), r#"{"hidden_size": 8}"#).unwrap();
    let err = CausalLm::open(&dir, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model_type") && err.contains("config.json"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_header_of_another_architecture_names_the_file_once_opened() {
    // `config_from_gguf` reads a header without knowing its path; the open paths name the file.
    let Some(dir) = common::golden_dir_or_skip() else {
        return;
    };
    let path = dir.join("llama3_tiny/llama3-tiny-f32.gguf");
    let bytes = std::fs::read(&path).unwrap();
    let header = GgufHeader::parse(&bytes).unwrap();
    let err = lm::models::gemma3::config_from_gguf(&header).unwrap_err();
    assert!(
        matches!(&err, LmError::InvalidModelConfig { detail, .. } if detail.contains("`llama`")),
        "{err}"
    );
    let named = err.metadata_in_file(&path);
    assert!(
        matches!(&named, LmError::InvalidModelConfig { path: p, .. } if p == &path),
        "{named}"
    );
    assert!(
        named.to_string().contains("llama3-tiny-f32.gguf"),
        "{named}"
    );
    // An error that names its file already is left as it is.
    let other = LmError::InvalidModelConfig {
        path: "config.json".into(),
        detail: "x".into(),
    };
    assert!(matches!(other.metadata_in_file(&path),
        LmError::InvalidModelConfig { path: p, .. } if p == std::path::Path::new("config.json")));
}

#[test]
fn a_nan_block_scale_is_named_by_both_engines_at_load() {
    // SmolLM2 with the scale of the first block of `blk.0.attn_q.weight` set to a NaN: the
    // quantized engine finds it in the blocks, the f32 engine in the de-quantised values.
    let Some(src) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let mut bytes = std::fs::read(&src).unwrap();
    let header = GgufHeader::parse(&bytes).unwrap();
    let info = header.tensor("blk.0.attn_q.weight").unwrap();
    assert!(
        matches!(
            info.ggml_type,
            lm::GgmlType::Q4_0 | lm::GgmlType::Q4_1 | lm::GgmlType::Q8_0
        ),
        "{:?}",
        info.ggml_type
    );
    let at = header.tensor_data(&bytes, info).unwrap().as_ptr() as usize - bytes.as_ptr() as usize;
    bytes[at..at + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    let path = std::env::temp_dir().join(format!("lm-nanscale-{}.gguf", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    let quantized = CausalLm::open_with(&path, &Device::flex(), lm::Engine::Quantized).unwrap_err();
    let f32 = CausalLm::open_with(&path, &Device::flex(), lm::Engine::F32).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(
        matches!(&quantized, LmError::NonFiniteWeight { path: p, name, index: 0 }
            if p == &path && name == "blk.0.attn_q.weight"),
        "{quantized}"
    );
    assert!(
        matches!(&f32, LmError::NonFiniteWeight { name, .. }
            if name == "model.layers.0.self_attn.q_proj.weight"),
        "{f32}"
    );
    assert!(f32.to_string().contains("lm-nanscale"), "{f32}");
}
