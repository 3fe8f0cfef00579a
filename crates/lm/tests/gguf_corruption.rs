//! Corrupted GGUF files are rejected with typed errors and never panic.
//!
//! A synthetic file holding every metadata value type and tensors of several ggml types is
//! corrupted in targeted ways (each must give a specific error), truncated at every offset, and
//! mutated at random (seeded) thousands of times under `catch_unwind`; the real SmolLM2 file is
//! truncated and mutated too when it is present.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use lm::format::gguf::{GgufHeader, GgufWriter, MetadataArray, MetadataValue};
use lm::{GgmlType, GgufFile, LmError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn synthetic_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set_alignment(32).unwrap();
    let values = [
        (
            "general.architecture",
            MetadataValue::String("llama".into()),
        ),
        ("v.u8", MetadataValue::U8(7)),
        ("v.i8", MetadataValue::I8(-7)),
        ("v.u16", MetadataValue::U16(700)),
        ("v.i16", MetadataValue::I16(-700)),
        ("v.u32", MetadataValue::U32(70_000)),
        ("v.i32", MetadataValue::I32(-70_000)),
        ("v.f32", MetadataValue::F32(0.25)),
        ("v.bool", MetadataValue::Bool(true)),
        ("v.u64", MetadataValue::U64(1 << 40)),
        ("v.i64", MetadataValue::I64(-(1 << 40))),
        ("v.f64", MetadataValue::F64(0.125)),
        (
            "v.strings",
            MetadataValue::Array(MetadataArray::String(vec!["a b".into(), "ĠĠ".into()])),
        ),
        (
            "v.nested",
            MetadataValue::Array(MetadataArray::Array(vec![
                MetadataArray::I32(vec![1, 2, 3]),
                MetadataArray::Bool(vec![true]),
            ])),
        ),
    ];
    for (k, v) in values {
        w.add_metadata(k, v);
    }
    let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    w.add_tensor("t.f32", &[3, 2], GgmlType::F32, f32s).unwrap();
    let mut q8 = Vec::new();
    for _ in 0..2 {
        q8.extend_from_slice(&[0x00, 0x3c]);
        q8.extend((0..32u8).map(|i| i.wrapping_mul(7)));
    }
    w.add_tensor("t.q8_0", &[64], GgmlType::Q8_0, q8).unwrap();
    let mut q4k = vec![0u8; 288];
    q4k[0..2].copy_from_slice(&[0x00, 0x3c]);
    q4k[144..146].copy_from_slice(&[0x00, 0x38]);
    w.add_tensor("t.q4_k", &[256, 2], GgmlType::Q4_K, q4k)
        .unwrap();
    w.add_tensor(
        "t.f16",
        &[5],
        GgmlType::F16,
        vec![0x00, 0x3c, 0, 0, 0, 0xbc, 1, 0, 0xff, 0x7b],
    )
    .unwrap();
    w
}

fn synthetic() -> Vec<u8> {
    synthetic_writer().to_bytes().unwrap()
}

/// Byte position of the value (after the type tag) of metadata `key`.
fn value_pos(h: &GgufHeader, key: &str) -> usize {
    let e = h.metadata().iter().find(|e| e.key == key).unwrap();
    e.offset as usize + 8 + key.len() + 4
}

/// Byte position of the type tag of metadata `key`.
fn type_pos(h: &GgufHeader, key: &str) -> usize {
    value_pos(h, key) - 4
}

/// Byte positions of a tensor info's (n_dims, dims, ggml type, offset) fields.
fn tensor_fields(h: &GgufHeader, name: &str) -> (usize, usize, usize, usize) {
    let t = h.tensor(name).unwrap();
    let n_dims = t.info_offset as usize + 8 + name.len();
    let dims = n_dims + 4;
    let ty = dims + 8 * t.dims.len();
    (n_dims, dims, ty, ty + 4)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Parses and, when that succeeds, de-quantises every tensor: the full read path.
fn read_all(bytes: &[u8]) -> Result<usize, LmError> {
    let h = GgufHeader::parse(bytes)?;
    let mut n = 0;
    for t in h.tensors() {
        let data = h.tensor_data(bytes, t)?;
        n += lm::format::dequant::dequantize(t.ggml_type, data, t.n_elements as usize)?.len();
    }
    Ok(n)
}

/// The Debug name of an error's variant.
fn variant(e: &LmError) -> String {
    let s = format!("{e:?}");
    s.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_synthetic_file_is_valid() {
    let bytes = synthetic();
    let h = GgufHeader::parse(&bytes).unwrap();
    assert_eq!(h.metadata().len(), 15);
    assert_eq!(h.tensors().len(), 4);
    assert_eq!(read_all(&bytes).unwrap(), 6 + 64 + 512 + 5);
}

#[test]
fn targeted_corruptions_give_the_expected_errors() {
    let clean = synthetic();
    let h = GgufHeader::parse(&clean).unwrap();
    let (f32_ndims, f32_dims, f32_type, _) = tensor_fields(&h, "t.f32");
    let (_, q8_dims, q8_type, q8_off) = tensor_fields(&h, "t.q8_0");
    let (_, q4k_dims, _, _) = tensor_fields(&h, "t.q4_k");
    let (_, _, _, f16_off) = tensor_fields(&h, "t.f16");
    let first_key = h.metadata()[0].offset as usize;
    let arch_value = value_pos(&h, "general.architecture");
    let strings_value = value_pos(&h, "v.strings");
    let nested_value = value_pos(&h, "v.nested");
    let last = h.tensors().last().unwrap();
    let data_end = (h.data_offset() + last.offset + last.n_bytes) as usize;

    type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
    let variants: Vec<(&str, &str, Corrupt)> = vec![
        ("empty file", "Truncated", Box::new(|b| b.clear())),
        ("3 bytes", "Truncated", Box::new(|b| b.truncate(3))),
        (
            "header cut inside tensor count",
            "Truncated",
            Box::new(|b| b.truncate(12)),
        ),
        ("flipped magic byte", "BadMagic", Box::new(|b| b[0] ^= 0x20)),
        (
            "old GGML magic",
            "BadMagic",
            Box::new(|b| b[..4].copy_from_slice(b"GGML")),
        ),
        (
            "version 1",
            "UnsupportedVersion",
            Box::new(|b| put_u32(b, 4, 1)),
        ),
        (
            "version 4",
            "UnsupportedVersion",
            Box::new(|b| put_u32(b, 4, 4)),
        ),
        (
            "big-endian version",
            "UnsupportedVersion",
            Box::new(|b| put_u32(b, 4, 3u32.swap_bytes())),
        ),
        (
            "tensor count u64::MAX",
            "CountTooLarge",
            Box::new(|b| put_u64(b, 8, u64::MAX)),
        ),
        (
            "tensor count 2^40",
            "CountTooLarge",
            Box::new(|b| put_u64(b, 8, 1 << 40)),
        ),
        (
            "KV count 2^62",
            "CountTooLarge",
            Box::new(|b| put_u64(b, 16, 1 << 62)),
        ),
        (
            "key length u64::MAX",
            "CountTooLarge",
            Box::new(move |b| put_u64(b, first_key, u64::MAX)),
        ),
        (
            "key length one past the end",
            "CountTooLarge",
            Box::new(move |b| {
                let rest = (b.len() - first_key - 8 + 1) as u64;
                put_u64(b, first_key, rest)
            }),
        ),
        (
            "unknown value type 13",
            "UnknownValueType",
            Box::new({
                let at = type_pos(&h, "v.u8");
                move |b| put_u32(b, at, 13)
            }),
        ),
        (
            "unknown value type u32::MAX",
            "UnknownValueType",
            Box::new({
                let at = type_pos(&h, "v.f64");
                move |b| put_u32(b, at, u32::MAX)
            }),
        ),
        (
            "unknown array element type",
            "UnknownValueType",
            Box::new(move |b| put_u32(b, strings_value, 99)),
        ),
        (
            "array length 2^60",
            "CountTooLarge",
            Box::new(move |b| put_u64(b, strings_value + 4, 1 << 60)),
        ),
        (
            "nested array length u64::MAX",
            "CountTooLarge",
            Box::new(move |b| put_u64(b, nested_value + 4 + 8 + 4, u64::MAX)),
        ),
        (
            "string value length 2^50",
            "CountTooLarge",
            Box::new(move |b| put_u64(b, arch_value, 1 << 50)),
        ),
        (
            "invalid UTF-8 in a string value",
            "InvalidUtf8",
            Box::new(move |b| b[arch_value + 8] = 0xff),
        ),
        (
            "bool value 2",
            "InvalidBool",
            Box::new({
                let at = value_pos(&h, "v.bool");
                move |b| b[at] = 2
            }),
        ),
        (
            "alignment 0",
            "BadAlignment",
            Box::new({
                let at = value_pos(&h, "general.alignment");
                move |b| put_u32(b, at, 0)
            }),
        ),
        (
            "alignment 48",
            "BadAlignment",
            Box::new({
                let at = value_pos(&h, "general.alignment");
                move |b| put_u32(b, at, 48)
            }),
        ),
        (
            "alignment stored as i32",
            "WrongValueType",
            Box::new({
                let at = type_pos(&h, "general.alignment");
                move |b| put_u32(b, at, 5)
            }),
        ),
        (
            "unknown ggml type 4",
            "UnknownGgmlType",
            Box::new(move |b| put_u32(b, f32_type, 4)),
        ),
        (
            "unknown ggml type 1000",
            "UnknownGgmlType",
            Box::new(move |b| put_u32(b, q8_type, 1000)),
        ),
        (
            "5 dimensions",
            "BadDimCount",
            Box::new(move |b| put_u32(b, f32_ndims, 5)),
        ),
        (
            "n_dims u32::MAX",
            "BadDimCount",
            Box::new(move |b| put_u32(b, f32_ndims, u32::MAX)),
        ),
        (
            "a zero dimension",
            "EmptyTensor",
            Box::new(move |b| put_u64(b, f32_dims + 8, 0)),
        ),
        (
            "dimension product overflows",
            "DimsOverflow",
            Box::new(move |b| {
                put_u64(b, f32_dims, 1 << 62);
                put_u64(b, f32_dims + 8, 1 << 62);
            }),
        ),
        (
            "dimension above i64::MAX",
            "DimsOverflow",
            Box::new(move |b| put_u64(b, f32_dims + 8, u64::MAX)),
        ),
        (
            "Q8_0 row of 33 values",
            "RowNotBlockMultiple",
            Box::new(move |b| put_u64(b, q8_dims, 33)),
        ),
        (
            "misaligned tensor offset",
            "MisalignedTensor",
            Box::new(move |b| {
                let v = u64::from_le_bytes(b[q8_off..q8_off + 8].try_into().unwrap());
                put_u64(b, q8_off, v + 1)
            }),
        ),
        (
            "tensor offset beyond the file",
            "UnexpectedTensorOffset",
            Box::new(move |b| put_u64(b, f16_off, 1 << 40)),
        ),
        (
            "tensor offset u64::MAX - 31 (aligned)",
            "UnexpectedTensorOffset",
            Box::new(move |b| put_u64(b, f16_off, u64::MAX - 31)),
        ),
        (
            "overlapping tensors",
            "UnexpectedTensorOffset",
            Box::new(move |b| put_u64(b, q8_off, 0)),
        ),
        (
            "tensor larger than the data left",
            "TensorOutOfBounds",
            Box::new(move |b| put_u64(b, q4k_dims + 8, 64)),
        ),
        (
            "file cut inside the last tensor",
            "TensorOutOfBounds",
            Box::new(move |b| b.truncate(data_end - 1)),
        ),
        (
            "tensor data section missing",
            "TensorOutOfBounds",
            Box::new({
                let at = h.data_offset() as usize;
                move |b| b.truncate(at)
            }),
        ),
        (
            "duplicate key",
            "DuplicateKey",
            Box::new(|b| {
                let mut w = synthetic_writer();
                w.add_metadata("v.u8", MetadataValue::U8(1));
                *b = w.to_bytes().unwrap();
            }),
        ),
        (
            "duplicate tensor name",
            "DuplicateTensor",
            Box::new(|b| {
                let mut w = synthetic_writer();
                w.add_tensor("t.f32", &[1], GgmlType::F32, vec![0; 4])
                    .unwrap();
                *b = w.to_bytes().unwrap();
            }),
        ),
        (
            "arrays nested 17 deep",
            "NestingTooDeep",
            Box::new(|b| {
                let mut a = MetadataArray::U8(vec![1]);
                for _ in 0..lm::format::gguf::MAX_ARRAY_NESTING {
                    a = MetadataArray::Array(vec![a]);
                }
                let mut w = synthetic_writer();
                w.add_metadata("deep", MetadataValue::Array(a));
                *b = w.to_bytes().unwrap();
            }),
        ),
    ];

    let mut failures = Vec::new();
    for (name, expected, corrupt) in &variants {
        let mut bytes = clean.clone();
        corrupt(&mut bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| read_all(&bytes)));
        match outcome {
            Err(_) => failures.push(format!("{name}: PANICKED")),
            Ok(Ok(_)) => failures.push(format!("{name}: accepted")),
            Ok(Err(e)) if variant(&e) != *expected => {
                failures.push(format!("{name}: expected {expected}, got {e:?}"))
            }
            Ok(Err(e)) => println!("{name}: {e}"),
        }
    }
    println!("{} targeted corruptions checked", variants.len());
    assert!(variants.len() >= 20);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_truncation_is_an_error() {
    let clean = synthetic();
    let h = GgufHeader::parse(&clean).unwrap();
    let last = h.tensors().last().unwrap();
    let data_end = (h.data_offset() + last.offset + last.n_bytes) as usize;
    let mut panics = 0;
    for cut in 0..data_end {
        match catch_unwind(|| GgufHeader::parse(&clean[..cut])) {
            Err(_) => panics += 1,
            Ok(r) => assert!(r.is_err(), "truncation at {cut} of {data_end} was accepted"),
        }
    }
    // Only the padding after the last tensor may go.
    for cut in data_end..=clean.len() {
        assert!(GgufHeader::parse(&clean[..cut]).is_ok());
    }
    println!("{data_end} truncations rejected");
    assert_eq!(panics, 0);
}

/// Applies one random mutation (seeded) to `bytes`.
fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, region: usize) {
    let region = region.min(bytes.len()).max(1);
    match rng.random_range(0..6) {
        0 => {
            // Flip 1-4 random bits.
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..region);
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => {
            // Overwrite a random byte.
            let at = rng.random_range(0..region);
            bytes[at] = rng.random();
        }
        2 => {
            // Overwrite 8 bytes with a random or extreme u64 (a length, count or offset).
            let at = rng.random_range(0..region.saturating_sub(8).max(1));
            let v: u64 = match rng.random_range(0..4) {
                0 => rng.random(),
                1 => u64::MAX - rng.random_range(0..64),
                2 => rng.random_range(0..1024),
                _ => 1 << rng.random_range(0..64),
            };
            let end = (at + 8).min(bytes.len());
            bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
        }
        3 => {
            // Truncate.
            let at = rng.random_range(0..bytes.len());
            bytes.truncate(at);
        }
        4 => {
            // Delete a short range.
            let at = rng.random_range(0..region);
            let end = (at + rng.random_range(1..16)).min(bytes.len());
            bytes.drain(at..end);
        }
        _ => {
            // Insert random bytes.
            let at = rng.random_range(0..region);
            let n = rng.random_range(1..16);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, junk);
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let clean = synthetic();
    let header_len = GgufHeader::parse(&clean).unwrap().data_offset() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(0x6767_7566);
    let (mut rejected, mut accepted, mut panics) = (0u32, 0u32, 0u32);
    let iterations = 20_000;
    for i in 0..iterations {
        let mut bytes = clean.clone();
        // Mostly the header (where structure lives), sometimes anywhere; 1-3 mutations stacked.
        let region = if i % 4 == 0 { clean.len() } else { header_len };
        for _ in 0..rng.random_range(1..=3) {
            if bytes.is_empty() {
                break;
            }
            mutate(&mut rng, &mut bytes, region);
        }
        match catch_unwind(AssertUnwindSafe(|| read_all(&bytes))) {
            Err(_) => panics += 1,
            Ok(Err(_)) => rejected += 1,
            Ok(Ok(_)) => accepted += 1,
        }
    }
    println!(
        "{iterations} mutated files: {rejected} rejected, {accepted} still valid (e.g. data bytes changed), {panics} panics"
    );
    assert_eq!(panics, 0);
    assert!(rejected > iterations / 2, "only {rejected} rejected");
}

#[test]
fn the_real_smollm2_file_survives_truncation_and_mutation() {
    let Some(path) = common::smollm2_gguf_or_skip() else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let header_len = file.header().data_offset() as usize;
    let mut bytes = file.bytes().to_vec();
    let len = bytes.len();

    // Truncations: at 64 spread offsets through the header and at 16 through the data.
    let mut panics = 0;
    let cuts = (0..64)
        .map(|i| i * header_len / 64)
        .chain((0..16).map(|i| header_len + i * (len - header_len - 64) / 16));
    let mut n_cuts = 0;
    for cut in cuts {
        match catch_unwind(|| GgufHeader::parse(&bytes[..cut])) {
            Err(_) => panics += 1,
            Ok(r) => assert!(r.is_err(), "truncation at {cut} accepted"),
        }
        n_cuts += 1;
    }

    // In-place mutations of the header region, restored after each try (no 90 MB copies).
    let mut rng = ChaCha8Rng::seed_from_u64(135);
    let (mut rejected, mut accepted) = (0, 0);
    let iterations = 300;
    for i in 0..iterations {
        // Half the tries hit the first 4 KiB (header, counts, general.* keys) or the tensor
        // infos at the end of the header; the rest anywhere in the header.
        let tensor_infos = file.header().tensors()[0].info_offset as usize;
        let at = match i % 3 {
            0 => rng.random_range(0..4096),
            1 => rng.random_range(tensor_infos..header_len),
            _ => rng.random_range(0..header_len),
        };
        let width = rng.random_range(1..=8).min(len - at);
        let saved: Vec<u8> = bytes[at..at + width].to_vec();
        for b in &mut bytes[at..at + width] {
            *b = rng.random();
        }
        match catch_unwind(AssertUnwindSafe(|| GgufHeader::parse(&bytes))) {
            Err(_) => panics += 1,
            Ok(Err(_)) => rejected += 1,
            Ok(Ok(_)) => accepted += 1,
        }
        bytes[at..at + width].copy_from_slice(&saved);
    }
    assert_eq!(bytes, file.bytes());
    println!(
        "SmolLM2: {n_cuts} truncations rejected; {iterations} header mutations: {rejected} rejected, {accepted} still valid; {panics} panics"
    );
    assert_eq!(panics, 0);
}
