//! `shared/golden/gguf_dequant.json` and `gguf_dequant_more.json` (llama.cpp's `gguf-py`
//! de-quantisation) reproduced bit for bit.

mod common;

use lm::{GgmlType, format::dequant};

#[test]
fn dequantization_matches_llama_cpp_bit_for_bit() {
    check_golden_file(
        "gguf_dequant.json",
        &[
            GgmlType::F16,
            GgmlType::BF16,
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
        ],
    );
}

#[test]
fn more_dequantization_matches_llama_cpp_bit_for_bit() {
    check_golden_file(
        "gguf_dequant_more.json",
        &[
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q5_K,
            GgmlType::Q3_K,
            GgmlType::Q2_K,
        ],
    );
}

/// Checks every case of golden file `file` bit for bit and that it covers `types`; skips (as
/// [`common::golden_json`] does) when the golden folder is absent.
fn check_golden_file(file: &str, types: &[GgmlType]) {
    let Some(golden) = common::golden_json(file) else {
        return;
    };
    let cases = golden["cases"].as_array().expect("cases array");
    assert!(!cases.is_empty());
    let mut seen = Vec::new();
    for case in cases {
        let name = case["type"].as_str().unwrap();
        let type_id = u32::try_from(case["type_id"].as_u64().unwrap()).unwrap();
        let ty = GgmlType::from_id(type_id).unwrap_or_else(|| panic!("unknown type id {type_id}"));
        assert_eq!(ty.name().to_uppercase(), name.to_uppercase());
        assert_eq!(
            ty.block_size(),
            case["block_size"].as_u64().unwrap(),
            "{name} block size"
        );
        assert_eq!(
            ty.type_size(),
            case["type_size"].as_u64().unwrap(),
            "{name} type size"
        );
        let bytes = common::base64_decode(case["bytes_b64"].as_str().unwrap());
        let n = usize::try_from(case["n_values"].as_u64().unwrap()).unwrap();
        let expected: Vec<f32> = case["dequantized"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(expected.len(), n);

        let got = dequant::dequantize(ty, &bytes, n).unwrap();
        assert_eq!(got.len(), n);
        let mut max_abs = 0.0f32;
        let mut mismatches = 0;
        for (g, e) in got.iter().zip(&expected) {
            max_abs = max_abs.max((g - e).abs());
            if g.to_bits() != e.to_bits() && !(g.is_nan() && e.is_nan()) {
                mismatches += 1;
            }
        }
        println!("{name}: {n} values, {mismatches} not bit-identical, max abs diff {max_abs:e}");
        assert_eq!(mismatches, 0, "{name}: max abs diff {max_abs:e}");
        seen.push(ty);
    }
    for ty in types {
        assert!(seen.contains(ty), "{file} lacks {ty}");
    }
}

#[test]
fn f32_is_a_plain_copy() {
    let values = [0.0f32, -1.5, f32::MAX, f32::MIN_POSITIVE, 1e-40];
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let got = dequant::dequantize(GgmlType::F32, &bytes, values.len()).unwrap();
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
