//! ggml tensor types: ids, block sizes and byte sizes.
//!
//! The ids are those of `enum ggml_type` in ggml's `include/ggml.h`; block sizes and block byte
//! sizes follow the `block_*` structs of `ggml/src/ggml-common.h` (the layouts `ggml-quants.c`
//! reads) and the `type_traits` table of `ggml.c`. A tensor of `n` elements of a type with block
//! size `B` and block byte size `S` occupies `n / B * S` bytes; ggml requires the first
//! (fastest-varying) dimension to be a multiple of `B`.
//!
//! Every type ggml has defined is listed so that files holding any of them can be *read*;
//! [`crate::format::dequant`] converts a subset to f32.

use std::fmt;

/// A ggml tensor element type (`enum ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE half float.
    F16,
    /// 32 values: f16 scale `d` + 16 bytes of 4-bit quants; `x = (q - 8) * d`.
    Q4_0,
    /// 32 values: f16 scale `d`, f16 minimum `m` + 16 bytes of 4-bit quants; `x = q * d + m`.
    Q4_1,
    /// 32 values: f16 `d` + 4 bytes high bits + 16 bytes low nibbles; `x = (q - 16) * d`.
    Q5_0,
    /// 32 values: f16 `d`, f16 `m` + 4 bytes high bits + 16 bytes low nibbles; `x = q * d + m`.
    Q5_1,
    /// 32 values: f16 scale `d` + 32 signed bytes; `x = q * d`.
    Q8_0,
    /// 32 values: f16 `d`, f16 sum + 32 signed bytes (used for activations).
    Q8_1,
    /// 256-value super-block, 2-bit k-quant with 4-bit sub-block scales and mins.
    Q2_K,
    /// 256-value super-block, 3-bit k-quant with 6-bit signed sub-block scales.
    Q3_K,
    /// 256-value super-block, 4-bit k-quant with 6-bit sub-block scales and mins.
    Q4_K,
    /// 256-value super-block, 5-bit k-quant with 6-bit sub-block scales and mins.
    Q5_K,
    /// 256-value super-block, 6-bit k-quant with signed 8-bit sub-block scales.
    Q6_K,
    /// 256-value super-block, 8-bit k-quant (f32 scale; used for activations).
    Q8_K,
    /// i-quant, 2.06 bits per weight.
    IQ2_XXS,
    /// i-quant, 2.31 bits per weight.
    IQ2_XS,
    /// i-quant, 3.06 bits per weight.
    IQ3_XXS,
    /// i-quant, 1.56 bits per weight.
    IQ1_S,
    /// i-quant, 4.5 bits per weight, non-linear, 32-value blocks.
    IQ4_NL,
    /// i-quant, 3.44 bits per weight.
    IQ3_S,
    /// i-quant, 2.5 bits per weight.
    IQ2_S,
    /// i-quant, 4.25 bits per weight.
    IQ4_XS,
    /// 8-bit signed integer.
    I8,
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// 64-bit IEEE float.
    F64,
    /// i-quant, 1.75 bits per weight.
    IQ1_M,
    /// bfloat16: the upper half of an f32.
    BF16,
    /// Ternary quant, 1.69 bits per weight.
    TQ1_0,
    /// Ternary quant, 2.06 bits per weight.
    TQ2_0,
    /// Microscaling FP4: 32 values, one shared exponent byte + 16 bytes of e2m1 pairs.
    MXFP4,
}

impl GgmlType {
    /// Every known type, in id order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// The type for a ggml type id, or `None` for ids ggml never assigned or has retired
    /// (4, 5 and 31..=33, 36..=38).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The numeric id stored in GGUF tensor infos (`enum ggml_type`).
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::Q8_K => 15,
            GgmlType::IQ2_XXS => 16,
            GgmlType::IQ2_XS => 17,
            GgmlType::IQ3_XXS => 18,
            GgmlType::IQ1_S => 19,
            GgmlType::IQ4_NL => 20,
            GgmlType::IQ3_S => 21,
            GgmlType::IQ2_S => 22,
            GgmlType::IQ4_XS => 23,
            GgmlType::I8 => 24,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::I64 => 27,
            GgmlType::F64 => 28,
            GgmlType::IQ1_M => 29,
            GgmlType::BF16 => 30,
            GgmlType::TQ1_0 => 34,
            GgmlType::TQ2_0 => 35,
            GgmlType::MXFP4 => 39,
        }
    }

    /// The name ggml prints (`ggml_type_name`), e.g. `"q4_K"`.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
            GgmlType::Q8_1 => "q8_1",
            GgmlType::Q2_K => "q2_K",
            GgmlType::Q3_K => "q3_K",
            GgmlType::Q4_K => "q4_K",
            GgmlType::Q5_K => "q5_K",
            GgmlType::Q6_K => "q6_K",
            GgmlType::Q8_K => "q8_K",
            GgmlType::IQ2_XXS => "iq2_xxs",
            GgmlType::IQ2_XS => "iq2_xs",
            GgmlType::IQ3_XXS => "iq3_xxs",
            GgmlType::IQ1_S => "iq1_s",
            GgmlType::IQ4_NL => "iq4_nl",
            GgmlType::IQ3_S => "iq3_s",
            GgmlType::IQ2_S => "iq2_s",
            GgmlType::IQ4_XS => "iq4_xs",
            GgmlType::I8 => "i8",
            GgmlType::I16 => "i16",
            GgmlType::I32 => "i32",
            GgmlType::I64 => "i64",
            GgmlType::F64 => "f64",
            GgmlType::IQ1_M => "iq1_m",
            GgmlType::BF16 => "bf16",
            GgmlType::TQ1_0 => "tq1_0",
            GgmlType::TQ2_0 => "tq2_0",
            GgmlType::MXFP4 => "mxfp4",
        }
    }

    /// Values per block (`blck_size` in ggml's type traits); 1 for plain scalar types.
    pub fn block_size(self) -> u64 {
        match self {
            GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::F64
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1
            | GgmlType::IQ4_NL
            | GgmlType::MXFP4 => 32,
            GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::Q8_K
            | GgmlType::IQ2_XXS
            | GgmlType::IQ2_XS
            | GgmlType::IQ3_XXS
            | GgmlType::IQ1_S
            | GgmlType::IQ3_S
            | GgmlType::IQ2_S
            | GgmlType::IQ4_XS
            | GgmlType::IQ1_M
            | GgmlType::TQ1_0
            | GgmlType::TQ2_0 => 256,
        }
    }

    /// Bytes per block (`type_size`: `sizeof(block_*)` in `ggml-common.h`).
    pub fn type_size(self) -> u64 {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 => 2,
            GgmlType::Q4_0 => 18,  // f16 d + 16 qs
            GgmlType::Q4_1 => 20,  // f16 d, m + 16 qs
            GgmlType::Q5_0 => 22,  // f16 d + 4 qh + 16 qs
            GgmlType::Q5_1 => 24,  // f16 d, m + 4 qh + 16 qs
            GgmlType::Q8_0 => 34,  // f16 d + 32 qs
            GgmlType::Q8_1 => 36,  // f16 d, s + 32 qs
            GgmlType::Q2_K => 84,  // 16 scales + 64 qs + f16 d, dmin
            GgmlType::Q3_K => 110, // 32 hmask + 64 qs + 12 scales + f16 d
            GgmlType::Q4_K => 144, // f16 d, dmin + 12 scales + 128 qs
            GgmlType::Q5_K => 176, // f16 d, dmin + 12 scales + 32 qh + 128 qs
            GgmlType::Q6_K => 210, // 128 ql + 64 qh + 16 scales + f16 d
            GgmlType::Q8_K => 292, // f32 d + 256 qs + 16 i16 bsums
            GgmlType::IQ2_XXS => 66,
            GgmlType::IQ2_XS => 74,
            GgmlType::IQ3_XXS => 98,
            GgmlType::IQ1_S => 50,
            GgmlType::IQ4_NL => 18,
            GgmlType::IQ3_S => 110,
            GgmlType::IQ2_S => 82,
            GgmlType::IQ4_XS => 136,
            GgmlType::I8 => 1,
            GgmlType::I16 => 2,
            GgmlType::I32 => 4,
            GgmlType::I64 => 8,
            GgmlType::F64 => 8,
            GgmlType::IQ1_M => 56,
            GgmlType::BF16 => 2,
            GgmlType::TQ1_0 => 54,
            GgmlType::TQ2_0 => 66,
            GgmlType::MXFP4 => 17,
        }
    }

    /// Bytes that `n_elements` values occupy, or `None` when `n_elements` is not a whole number
    /// of blocks or the size overflows `u64`.
    pub fn n_bytes(self, n_elements: u64) -> Option<u64> {
        let block = self.block_size();
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(self.type_size())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        let mut ids: Vec<u32> = GgmlType::ALL.iter().map(|t| t.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), GgmlType::ALL.len());
        for retired in [4, 5, 31, 32, 33, 36, 37, 38, 40, u32::MAX] {
            assert_eq!(GgmlType::from_id(retired), None);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(GgmlType::Q4_K.n_bytes(512), Some(288));
        assert_eq!(GgmlType::Q6_K.n_bytes(256), Some(210));
        assert_eq!(GgmlType::Q5_0.n_bytes(64), Some(44));
        assert_eq!(GgmlType::Q5_1.n_bytes(64), Some(48));
        assert_eq!(GgmlType::Q2_K.n_bytes(512), Some(168));
        assert_eq!(GgmlType::Q3_K.n_bytes(512), Some(220));
        assert_eq!(GgmlType::Q5_K.n_bytes(512), Some(352));
        assert_eq!(GgmlType::Q8_0.n_bytes(33), None);
        assert_eq!(GgmlType::F32.n_bytes(u64::MAX), None);
    }
}
