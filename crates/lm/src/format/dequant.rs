//! De-quantisation of ggml tensor data to f32.
//!
//! Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.
//! The block layouts are those of the `block_*` structs in ggml's `src/ggml-common.h`, and the
//! arithmetic is that of the `dequantize_row_*` functions in `src/ggml-quants.c` (and of
//! `gguf-py`'s `gguf/quants.py`), operation for operation in f32, so the results are
//! bit-identical to llama.cpp's reference de-quantisation:
//!
//! | type | values/block | bytes/block | layout | value |
//! |------|-----|-----|--------|-------|
//! | Q8_0 | 32 | 34 | `d: f16, qs: [i8; 32]` | `qs[j] * d` |
//! | Q4_0 | 32 | 18 | `d: f16, qs: [u8; 16]` | `(nibble - 8) * d`; low nibbles are values 0..16, high 16..32 |
//! | Q4_1 | 32 | 20 | `d: f16, m: f16, qs: [u8; 16]` | `nibble * d + m`, same nibble order |
//! | Q5_0 | 32 | 22 | `d: f16, qh: [u8; 4], qs: [u8; 16]` | `(q - 16) * d`; nibbles as Q4_0, bit `j` of `qh` (u32) is bit 4 of value `j` |
//! | Q5_1 | 32 | 24 | `d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]` | `q * d + m`, 5-bit `q` as Q5_0 |
//! | Q2_K | 256 | 84 | `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16` | `(d * sc) * q - (dmin * m)` per 16-value sub-block, 4-bit `sc`, `m`, 2-bit `q` |
//! | Q3_K | 256 | 110 | `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16` | `(d * (sc - 32)) * (q - 4 * !hbit)` per 16-value sub-block, 6-bit `sc`, 2-bit `q` |
//! | Q4_K | 256 | 144 | `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]` | `(d * sc) * q - (dmin * m)` per 32-value sub-block, 6-bit `sc`, `m` |
//! | Q5_K | 256 | 176 | `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]` | as Q4_K with a 5th bit per value from `qh` |
//! | Q6_K | 256 | 210 | `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16` | `(d * sc) * (q - 32)` per 16-value sub-block, 6-bit `q` |
//!
//! All multi-byte fields are little-endian.

use crate::error::{LmError, Result};
use crate::format::ggml_type::GgmlType;

/// Converts IEEE 754 binary16 bits to f32 (exact: every f16 is representable as f32).
///
/// Handles zeros, subnormals, infinities and NaNs (the NaN payload is kept), like ggml's
/// `GGML_FP16_TO_FP32`.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let mant = u32::from(bits & 0x3ff);
    let magnitude = match exp {
        // Zero and subnormals: mant * 2^-24, exact in f32.
        0 => (mant as f32) * (1.0 / 16_777_216.0),
        // Infinity and NaN.
        0x1f => f32::from_bits(0x7f80_0000 | (mant << 13)),
        // Normal: re-bias the exponent from 15 to 127.
        _ => f32::from_bits(((exp + 112) << 23) | (mant << 13)),
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// Converts bfloat16 bits to f32 (the bits are the upper half of the f32).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Reads a little-endian f16 at `block[at..at + 2]`; callers pass blocks of the right length.
fn f16_at(block: &[u8], at: usize) -> f32 {
    match block.get(at..at + 2) {
        Some(&[lo, hi]) => f16_to_f32(u16::from_le_bytes([lo, hi])),
        _ => f32::NAN,
    }
}

/// Whether [`dequantize`] supports `ggml_type`.
pub fn is_supported(ggml_type: GgmlType) -> bool {
    matches!(
        ggml_type,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::Q8_0
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
    )
}

/// De-quantises `n_elements` values of `ggml_type` stored in `bytes` to f32.
///
/// `bytes` must hold exactly `n_elements / block_size` blocks.
///
/// # Errors
/// [`LmError::UnsupportedDequant`] for types other than those listed in the module docs,
/// [`LmError::NotBlockMultiple`] when `n_elements` is not a whole number of blocks, and
/// [`LmError::WrongByteLength`] when `bytes` has the wrong length.
///
/// # Example
/// ```
/// use lm::{format::dequant::dequantize, GgmlType};
/// // One Q8_0 block: scale d = 0.5 (f16 0x3800), then 32 signed quants.
/// let mut block = vec![0x00, 0x38];
/// block.extend((0..32).map(|i| (i as i8 - 16) as u8));
/// let x = dequantize(GgmlType::Q8_0, &block, 32)?;
/// assert_eq!(x[0], -8.0);
/// assert_eq!(x[31], 7.5);
/// # Ok::<(), lm::LmError>(())
/// ```
pub fn dequantize(ggml_type: GgmlType, bytes: &[u8], n_elements: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; checked_len(ggml_type, bytes, n_elements)?];
    dequantize_into(ggml_type, bytes, &mut out)?;
    Ok(out)
}

/// The index of the first NaN or infinite value of `v`, if any. Chunks are tested with an
/// integer test on the exponent bits that the compiler vectorises (53 ms for SmolLM2's 135 M
/// values on one loaded core, ~10 GB/s), and only a chunk that fails is searched.
pub fn first_non_finite(v: &[f32]) -> Option<usize> {
    const EXP: u32 = 0x7f80_0000;
    const CHUNK: usize = 4096;
    v.chunks(CHUNK).enumerate().find_map(|(c, chunk)| {
        let bad = chunk
            .iter()
            .fold(false, |acc, x| acc | (x.to_bits() & EXP == EXP));
        bad.then(|| {
            chunk
                .iter()
                .position(|x| !x.is_finite())
                .map(|i| c * CHUNK + i)
        })
        .flatten()
    })
}

/// Checks `bytes` against `n_elements` and returns `n_elements`.
fn checked_len(ggml_type: GgmlType, bytes: &[u8], n_elements: usize) -> Result<usize> {
    if !is_supported(ggml_type) {
        return Err(LmError::UnsupportedDequant {
            ggml_type: ggml_type.name(),
        });
    }
    // Block and type sizes are at most 256 and 292, so these conversions are lossless.
    let block_size = ggml_type.block_size() as usize;
    let type_size = ggml_type.type_size() as usize;
    if !n_elements.is_multiple_of(block_size) {
        return Err(LmError::NotBlockMultiple {
            ggml_type: ggml_type.name(),
            n_elements,
            block_size,
        });
    }
    let expected = (n_elements / block_size).checked_mul(type_size);
    if expected != Some(bytes.len()) {
        return Err(LmError::WrongByteLength {
            ggml_type: ggml_type.name(),
            n_elements,
            expected: expected.unwrap_or(usize::MAX),
            got: bytes.len(),
        });
    }
    Ok(n_elements)
}

/// De-quantises into `out`, whose length gives the element count.
///
/// # Errors
/// As [`dequantize`].
pub fn dequantize_into(ggml_type: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    checked_len(ggml_type, bytes, out.len())?;
    let type_size = ggml_type.type_size() as usize;
    let block_size = ggml_type.block_size() as usize;
    let blocks = bytes
        .chunks_exact(type_size)
        .zip(out.chunks_exact_mut(block_size));
    match ggml_type {
        GgmlType::F32 => blocks.for_each(|(b, y)| {
            if let (&[a, b, c, d], [y]) = (b, y) {
                *y = f32::from_le_bytes([a, b, c, d]);
            }
        }),
        GgmlType::F16 => blocks.for_each(|(b, y)| {
            if let (&[lo, hi], [y]) = (b, y) {
                *y = f16_to_f32(u16::from_le_bytes([lo, hi]));
            }
        }),
        GgmlType::BF16 => blocks.for_each(|(b, y)| {
            if let (&[lo, hi], [y]) = (b, y) {
                *y = bf16_to_f32(u16::from_le_bytes([lo, hi]));
            }
        }),
        GgmlType::Q8_0 => blocks.for_each(|(b, y)| block_q8_0(b, y)),
        GgmlType::Q4_0 => blocks.for_each(|(b, y)| block_q4_0(b, y)),
        GgmlType::Q4_1 => blocks.for_each(|(b, y)| block_q4_1(b, y)),
        GgmlType::Q5_0 => blocks.for_each(|(b, y)| block_q5_0(b, y)),
        GgmlType::Q5_1 => blocks.for_each(|(b, y)| block_q5_1(b, y)),
        GgmlType::Q2_K => blocks.for_each(|(b, y)| block_q2_k(b, y)),
        GgmlType::Q3_K => blocks.for_each(|(b, y)| block_q3_k(b, y)),
        GgmlType::Q4_K => blocks.for_each(|(b, y)| block_q4_k(b, y)),
        GgmlType::Q5_K => blocks.for_each(|(b, y)| block_q5_k(b, y)),
        GgmlType::Q6_K => blocks.for_each(|(b, y)| block_q6_k(b, y)),
        other => {
            return Err(LmError::UnsupportedDequant {
                ggml_type: other.name(),
            });
        }
    }
    Ok(())
}

/// `block_q8_0 { ggml_half d; int8_t qs[32]; }` → `y[j] = qs[j] * d` (`dequantize_row_q8_0`).
fn block_q8_0(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let qs = block.get(2..).unwrap_or_default();
    for (y, &q) in y.iter_mut().zip(qs) {
        *y = f32::from(q as i8) * d;
    }
}

/// `block_q4_0 { ggml_half d; uint8_t qs[16]; }`: byte `j` holds value `j` in its low nibble and
/// value `j + 16` in its high nibble, each offset by 8 (`dequantize_row_q4_0`).
fn block_q4_0(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let qs = block.get(2..).unwrap_or_default();
    let (lo, hi) = y.split_at_mut(16);
    for ((&q, y0), y1) in qs.iter().zip(lo).zip(hi) {
        *y0 = f32::from((q & 0x0f) as i8 - 8) * d;
        *y1 = f32::from((q >> 4) as i8 - 8) * d;
    }
}

/// `block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }`: nibbles as in Q4_0, unsigned,
/// `y = q * d + m` (multiply, then add: two f32 roundings, as in `dequantize_row_q4_1`).
fn block_q4_1(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qs = block.get(4..).unwrap_or_default();
    let (lo, hi) = y.split_at_mut(16);
    for ((&q, y0), y1) in qs.iter().zip(lo).zip(hi) {
        *y0 = f32::from(q & 0x0f) * d + m;
        *y1 = f32::from(q >> 4) * d + m;
    }
}

/// The 32 5-bit quants of a Q5_0/Q5_1 block from `qh` (4 bytes, a little-endian u32 whose bit
/// `j` is bit 4 of value `j`) and `qs` (16 bytes, nibbles ordered as in Q4_0).
fn q5_quants(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = match qh {
        &[a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    };
    let mut q = [0u8; 32];
    for (j, &b) in qs.iter().enumerate().take(16) {
        let h0 = ((qh >> j) & 1) as u8;
        let h1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (b & 0x0f) | (h0 << 4);
        q[j + 16] = (b >> 4) | (h1 << 4);
    }
    q
}

/// `block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }` → `y = (q - 16) * d` with the
/// 5-bit `q` of [`q5_quants`] (`dequantize_row_q5_0`).
fn block_q5_0(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let q = q5_quants(
        block.get(2..6).unwrap_or_default(),
        block.get(6..).unwrap_or_default(),
    );
    for (y, &q) in y.iter_mut().zip(&q) {
        *y = f32::from(q as i8 - 16) * d;
    }
}

/// `block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }` → `y = q * d + m`
/// (multiply, then add, as in `dequantize_row_q5_1`).
fn block_q5_1(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let q = q5_quants(
        block.get(4..8).unwrap_or_default(),
        block.get(8..).unwrap_or_default(),
    );
    for (y, &q) in y.iter_mut().zip(&q) {
        *y = f32::from(q) * d + m;
    }
}

/// `block_q2_K { uint8_t scales[16]; uint8_t qs[64]; ggml_half d; ggml_half dmin; }`
/// (`dequantize_row_q2_K`): 256 values in 2 halves of 128; half `h` reads `qs[32h..32h + 32]`,
/// and value `128h + 32s + l` (`s` in 0..4, `l` in 0..32) is bits `2s..2s + 2` of `qs[32h + l]`.
/// Each 16-value sub-block `i` has scale `scales[i] & 15` and min `scales[i] >> 4`;
/// `y = (d * sc) * q - (dmin * m)`.
fn block_q2_k(block: &[u8], y: &mut [f32]) {
    let sc_all = block.get(0..16).unwrap_or_default();
    let qs_all = block.get(16..80).unwrap_or_default();
    let d = f16_at(block, 80);
    let dmin = f16_at(block, 82);
    for (h, (qs, y)) in qs_all
        .chunks_exact(32)
        .zip(y.chunks_exact_mut(128))
        .enumerate()
    {
        for (s, y) in y.chunks_exact_mut(32).enumerate() {
            for (l, y) in y.iter_mut().enumerate() {
                let (Some(&b), Some(&sc)) = (qs.get(l), sc_all.get(8 * h + 2 * s + l / 16)) else {
                    continue;
                };
                let dl = d * f32::from(sc & 0x0f);
                let ml = dmin * f32::from(sc >> 4);
                *y = dl * f32::from((b >> (2 * s)) & 3) - ml;
            }
        }
    }
}

/// The 16 signed 6-bit sub-block scales of a Q3_K block from its 12 packed bytes: scale `i`
/// has its low 4 bits in the low (`i < 8`) or high (`i >= 8`) nibble of byte `i % 8`, and its
/// top 2 bits at bits `2 * (i / 4)` of byte `8 + i % 4`; the stored value is offset by 32.
fn scales_q3_k(q: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, out) in out.iter_mut().enumerate() {
        let lo = (q[i % 8] >> (4 * (i / 8))) & 0x0f;
        let hi = (q[8 + i % 4] >> (2 * (i / 4))) & 3;
        *out = (lo | (hi << 4)) as i8 - 32;
    }
    out
}

/// `block_q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d; }`
/// (`dequantize_row_q3_K`): value `128h + 32s + l` (`h` in 0..2, `s` in 0..4, `l` in 0..32)
/// takes bits `2s..2s + 2` of `qs[32h + l]` and bit `4h + s` of `hmask[l]`, and is that 2-bit
/// value minus 4 when the `hmask` bit is clear; 16-value sub-block `i` has scale
/// [`scales_q3_k`]`[i]`; `y = (d * sc) * q`.
fn block_q3_k(block: &[u8], y: &mut [f32]) {
    let hmask = block.get(0..32).unwrap_or_default();
    let qs_all = block.get(32..96).unwrap_or_default();
    let mut packed = [0u8; 12];
    if let Some(s) = block.get(96..108) {
        packed.copy_from_slice(s);
    }
    let scales = scales_q3_k(&packed);
    let d = f16_at(block, 108);
    for (h, (qs, y)) in qs_all
        .chunks_exact(32)
        .zip(y.chunks_exact_mut(128))
        .enumerate()
    {
        for (s, y) in y.chunks_exact_mut(32).enumerate() {
            let bit = 4 * h + s;
            for (l, y) in y.iter_mut().enumerate() {
                let (Some(&b), Some(&m), Some(&sc)) =
                    (qs.get(l), hmask.get(l), scales.get(8 * h + 2 * s + l / 16))
                else {
                    continue;
                };
                let low = ((b >> (2 * s)) & 3) as i8;
                let q = if (m >> bit) & 1 == 1 { low } else { low - 4 };
                *y = (d * f32::from(sc)) * f32::from(q);
            }
        }
    }
}

/// The `j`-th (0..8) 6-bit scale and min of a Q4_K block's 12 packed bytes
/// (`get_scale_min_k4` in `ggml-quants.c`): bytes 0..4 hold scales 0..4 in their low 6 bits,
/// bytes 4..8 mins 0..4; bytes 8..12 hold the low 4 bits of scales (low nibble) and mins (high
/// nibble) 4..8, whose top 2 bits are the top 2 bits of bytes 0..4 (scales) and 4..8 (mins).
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let d = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (d, m)
    }
}

/// `block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }`
/// (`dequantize_row_q4_K`): 256 values in 4 chunks of 64; chunk `c` reads `qs[32c..32c + 32]`,
/// low nibbles are sub-block `2c`, high nibbles sub-block `2c + 1`;
/// `y = (d * sc) * q - (dmin * m)`.
fn block_q4_k(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let mut scales = [0u8; 12];
    if let Some(s) = block.get(4..16) {
        scales.copy_from_slice(s);
    }
    let qs = block.get(16..144).unwrap_or_default();
    for (c, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, &scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, &scales);
        let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
        let (d2, min2) = (d * f32::from(sc2), dmin * f32::from(m2));
        let (lo, hi) = y.split_at_mut(32);
        for ((&q, y0), y1) in q.iter().zip(lo).zip(hi) {
            *y0 = d1 * f32::from(q & 0x0f) - min1;
            *y1 = d2 * f32::from(q >> 4) - min2;
        }
    }
}

/// `block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }`
/// (`dequantize_row_q5_K`): as Q4_K (scales and mins from [`scale_min_k4`], chunk `c` of 64
/// values reading `qs[32c..32c + 32]`), with bit 4 of value `64c + 32k + l` (`k` in 0..2, `l` in
/// 0..32) taken from bit `2c + k` of `qh[l]`; `y = (d * sc) * q - (dmin * m)`.
fn block_q5_k(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let mut scales = [0u8; 12];
    if let Some(s) = block.get(4..16) {
        scales.copy_from_slice(s);
    }
    let qh = block.get(16..48).unwrap_or_default();
    let qs = block.get(48..176).unwrap_or_default();
    for (c, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, &scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, &scales);
        let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
        let (d2, min2) = (d * f32::from(sc2), dmin * f32::from(m2));
        let (lo, hi) = y.split_at_mut(32);
        for (((&q, &h), y0), y1) in q.iter().zip(qh).zip(lo).zip(hi) {
            let q0 = (q & 0x0f) | (((h >> (2 * c)) & 1) << 4);
            let q1 = (q >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
            *y0 = d1 * f32::from(q0) - min1;
            *y1 = d2 * f32::from(q1) - min2;
        }
    }
}

/// `block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }`
/// (`dequantize_row_q6_K`): 256 values in 2 halves of 128; half `h` reads `ql[64h..64h + 64]`,
/// `qh[32h..32h + 32]`, `scales[8h..8h + 8]`. For `l` in 0..32 the four values `l`, `l + 32`,
/// `l + 64`, `l + 96` take the low nibble of `ql[l]`, of `ql[l + 32]`, the high nibble of `ql[l]`,
/// of `ql[l + 32]`, each with 2 more bits from `qh[l]` (bits 0-1, 2-3, 4-5, 6-7), minus 32;
/// scale index `l / 16 + {0, 2, 4, 6}`; `y = (d * sc) * q`.
fn block_q6_k(block: &[u8], y: &mut [f32]) {
    let d = f16_at(block, 208);
    let ql_all = block.get(0..128).unwrap_or_default();
    let qh_all = block.get(128..192).unwrap_or_default();
    let sc_all = block.get(192..208).unwrap_or_default();
    for (((ql, qh), sc), y) in ql_all
        .chunks_exact(64)
        .zip(qh_all.chunks_exact(32))
        .zip(sc_all.chunks_exact(8))
        .zip(y.chunks_exact_mut(128))
    {
        for l in 0..32 {
            let (Some(&a), Some(&b), Some(&h)) = (ql.get(l), ql.get(l + 32), qh.get(l)) else {
                continue;
            };
            let q1 = ((a & 0x0f) | ((h & 3) << 4)) as i8 - 32;
            let q2 = ((b & 0x0f) | (((h >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((a >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((b >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32;
            let is = l / 16;
            for (k, q) in [q1, q2, q3, q4].into_iter().enumerate() {
                let s = sc.get(is + 2 * k).map_or(0.0, |&s| f32::from(s as i8));
                if let Some(y) = y.get_mut(l + 32 * k) {
                    *y = d * s * f32::from(q);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_value_is_found_in_any_chunk() {
        let mut v = vec![1.5f32; 10_000];
        assert_eq!(first_non_finite(&v), None);
        assert_eq!(first_non_finite(&[]), None);
        v[9_999] = f32::NEG_INFINITY;
        assert_eq!(first_non_finite(&v), Some(9_999));
        v[4_100] = f32::NAN;
        assert_eq!(first_non_finite(&v), Some(4_100));
        v[3] = f32::INFINITY;
        assert_eq!(first_non_finite(&v), Some(3));
        // The largest finite value and subnormals pass.
        assert_eq!(first_non_finite(&[f32::MAX, -f32::MAX, 1e-45, 0.0]), None);
    }

    #[test]
    fn f16_special_values() {
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8); // smallest subnormal, 2^-24
        assert_eq!(f16_to_f32(0x03ff), 6.097_555e-5); // largest subnormal
        assert_eq!(f16_to_f32(0x0400), 6.103_515_6e-5); // smallest normal, 2^-14
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn f16_matches_an_independent_formula_for_every_finite_value() {
        for bits in 0..=u16::MAX {
            let exp = i32::from((bits >> 10) & 0x1f);
            let mant = f64::from(bits & 0x3ff);
            if exp == 0x1f {
                continue;
            }
            let mag = if exp == 0 {
                mant * 2f64.powi(-24)
            } else {
                (1.0 + mant / 1024.0) * 2f64.powi(exp - 15)
            };
            let want = if bits >> 15 == 1 { -mag } else { mag };
            assert_eq!(f64::from(f16_to_f32(bits)), want, "bits {bits:#06x}");
        }
    }

    #[test]
    fn bf16_is_upper_half() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn q4_0_nibble_order() {
        // d = 1.0; byte j = low nibble j % 16, high nibble 15 - j % 16.
        let mut block = vec![0x00, 0x3c];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize(GgmlType::Q4_0, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(y[j], j as f32 - 8.0);
            assert_eq!(y[j + 16], (15 - j) as f32 - 8.0);
        }
    }

    #[test]
    fn q6_k_constant_block() {
        // All quants 32 (-> 0) except value 0 = 33 (-> 1); scales 2; d = 0.5.
        let mut block = vec![0u8; 210];
        for b in &mut block[128..192] {
            *b = 0b1010_1010; // 2 in every 2-bit field -> +32
        }
        block[0] = 1; // value 0: low nibble 1 -> q = 33 - 32 = 1
        for s in &mut block[192..208] {
            *s = 2;
        }
        block[208..210].copy_from_slice(&0x3800u16.to_le_bytes());
        let y = dequantize(GgmlType::Q6_K, &block, 256).unwrap();
        assert_eq!(y[0], 1.0);
        assert!(y[1..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn q4_k_scale_unpacking() {
        // Scales 1..=8, mins 0 for j < 4; exercise the packed upper scales.
        let mut s = [0u8; 12];
        s[0] = 1 | (1 << 6); // scale 0 = 1, top bits of scale 4 = 1
        s[8] = 0x05; // scale 4 low nibble 5, min 4 low nibble 0
        assert_eq!(scale_min_k4(0, &s), (1, 0));
        assert_eq!(scale_min_k4(4, &s), (5 | (1 << 4), 0));
    }

    #[test]
    fn q5_0_high_bits() {
        // d = 1.0; all nibbles 0; qh bit j set for odd j -> values 16 (-> 0) at odd j, -16 at even.
        let mut block = vec![0x00, 0x3c];
        block.extend(0xaaaa_aaaau32.to_le_bytes());
        block.extend([0u8; 16]);
        let y = dequantize(GgmlType::Q5_0, &block, 32).unwrap();
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, if j % 2 == 1 { 0.0 } else { -16.0 }, "value {j}");
        }
    }

    #[test]
    fn q3_k_scale_unpacking() {
        // Scale i stored as i + 20 (low nibble in byte i % 8, top 2 bits in byte 8 + i % 4).
        let mut packed = [0u8; 12];
        for i in 0..16 {
            let v = (i + 20) as u8;
            packed[i % 8] |= (v & 0x0f) << (4 * (i / 8));
            packed[8 + i % 4] |= (v >> 4) << (2 * (i / 4));
        }
        let scales = scales_q3_k(&packed);
        for (i, &s) in scales.iter().enumerate() {
            assert_eq!(i32::from(s), i as i32 + 20 - 32);
        }
    }

    #[test]
    fn truncated_k_quant_buffers_are_errors() {
        for ty in [
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q2_K,
            GgmlType::Q3_K,
            GgmlType::Q5_K,
        ] {
            let n = ty.block_size() as usize * 2;
            let full = vec![0u8; ty.type_size() as usize * 2];
            assert_eq!(dequantize(ty, &full, n).unwrap().len(), n, "{ty}");
            for cut in [1, ty.type_size() as usize, full.len()] {
                assert!(
                    matches!(
                        dequantize(ty, &full[..full.len() - cut], n),
                        Err(LmError::WrongByteLength { .. })
                    ),
                    "{ty} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn length_errors() {
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 34], 31),
            Err(LmError::NotBlockMultiple { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 33], 32),
            Err(LmError::WrongByteLength { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::Q8_K, &[0; 292], 256),
            Err(LmError::UnsupportedDequant { .. })
        ));
        assert!(dequantize(GgmlType::F32, &[], 0).unwrap().is_empty());
    }
}
