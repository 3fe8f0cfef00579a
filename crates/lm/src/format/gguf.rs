//! A reader (and a small writer) for GGUF, the file format of llama.cpp / ggml.
//!
//! The layout follows the specification in ggml's `docs/gguf.md` and the loader
//! `gguf_init_from_file_impl` in ggml's `src/gguf.cpp`. All numbers are little-endian:
//!
//! ```text
//! u32   magic            "GGUF" (bytes 47 47 55 46)
//! u32   version          2 or 3 (v1 used 32-bit counts; v3 only added big-endian files)
//! u64   tensor_count
//! u64   metadata_kv_count
//! metadata_kv_count × { string key; u32 value_type; value }
//! tensor_count      × { string name; u32 n_dims; u64 dims[n_dims]; u32 ggml_type; u64 offset }
//! padding to `general.alignment` (default 32)
//! tensor data; each tensor's `offset` is relative to the start of this section
//!
//! string = u64 length + UTF-8 bytes (no terminator)
//! value  = u8 | i8 | u16 | i16 | u32 | i32 | f32 | bool (1 byte) | string
//!        | array { u32 element_type; u64 count; count × value } | u64 | i64 | f64
//! ```
//!
//! `dims[0]` is the fastest-varying dimension (ggml's `ne[0]`): a PyTorch `[out, in]` weight is
//! stored with `dims = [in, out]`.
//!
//! The reader is defensive: every read is bounds-checked, every count and length is checked
//! against the bytes left *before* anything is allocated, and element counts and byte sizes use
//! checked arithmetic. Malformed input gives an [`LmError`], never a panic. On top of the
//! format itself it enforces what llama.cpp's loader enforces: unique keys and tensor names, at
//! most [`MAX_DIMS`] dimensions, rows that are whole blocks, a power-of-two alignment, and tensor
//! data stored contiguously in info order, each tensor at an aligned offset and inside the file.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::error::{LmError, Result};
use crate::format::dequant;
use crate::format::ggml_type::GgmlType;

pub use crate::format::gguf_writer::GgufWriter;

/// The four magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Alignment of the data section when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The metadata key that sets the data alignment (type u32).
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Maximum number of tensor dimensions (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// Maximum nesting depth of metadata arrays this reader accepts (guards the stack against
/// adversarial input; real files nest at most one level).
pub const MAX_ARRAY_NESTING: usize = 16;

/// Minimal encoded size of one metadata KV pair: empty key (8) + type (4) + a 1-byte value.
const MIN_KV_SIZE: u64 = 13;
/// Minimal encoded size of one tensor info: empty name (8) + n_dims (4) + type (4) + offset (8).
const MIN_TENSOR_INFO_SIZE: u64 = 24;

/// The type tag of a metadata value (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataValueType {
    /// `GGUF_TYPE_UINT8` (0).
    U8,
    /// `GGUF_TYPE_INT8` (1).
    I8,
    /// `GGUF_TYPE_UINT16` (2).
    U16,
    /// `GGUF_TYPE_INT16` (3).
    I16,
    /// `GGUF_TYPE_UINT32` (4).
    U32,
    /// `GGUF_TYPE_INT32` (5).
    I32,
    /// `GGUF_TYPE_FLOAT32` (6).
    F32,
    /// `GGUF_TYPE_BOOL` (7), one byte, 0 or 1.
    Bool,
    /// `GGUF_TYPE_STRING` (8): u64 length + UTF-8 bytes.
    String,
    /// `GGUF_TYPE_ARRAY` (9): u32 element type + u64 count + elements.
    Array,
    /// `GGUF_TYPE_UINT64` (10).
    U64,
    /// `GGUF_TYPE_INT64` (11).
    I64,
    /// `GGUF_TYPE_FLOAT64` (12).
    F64,
}

impl MetadataValueType {
    /// The type for a `gguf_type` id, `None` for ids above 12.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// The `gguf_type` id.
    pub fn id(self) -> u32 {
        match self {
            Self::U8 => 0,
            Self::I8 => 1,
            Self::U16 => 2,
            Self::I16 => 3,
            Self::U32 => 4,
            Self::I32 => 5,
            Self::F32 => 6,
            Self::Bool => 7,
            Self::String => 8,
            Self::Array => 9,
            Self::U64 => 10,
            Self::I64 => 11,
            Self::F64 => 12,
        }
    }

    /// A short lower-case name (`"u32"`, `"string"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F64 => "f64",
        }
    }

    /// The smallest number of bytes one value of this type can occupy.
    fn min_size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

impl fmt::Display for MetadataValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// u8.
    U8(u8),
    /// i8.
    I8(i8),
    /// u16.
    U16(u16),
    /// i16.
    I16(i16),
    /// u32.
    U32(u32),
    /// i32.
    I32(i32),
    /// f32.
    F32(f32),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Homogeneous array (possibly of arrays).
    Array(MetadataArray),
    /// u64.
    U64(u64),
    /// i64.
    I64(i64),
    /// f64.
    F64(f64),
}

impl MetadataValue {
    /// The value's type tag.
    pub fn value_type(&self) -> MetadataValueType {
        match self {
            Self::U8(_) => MetadataValueType::U8,
            Self::I8(_) => MetadataValueType::I8,
            Self::U16(_) => MetadataValueType::U16,
            Self::I16(_) => MetadataValueType::I16,
            Self::U32(_) => MetadataValueType::U32,
            Self::I32(_) => MetadataValueType::I32,
            Self::F32(_) => MetadataValueType::F32,
            Self::Bool(_) => MetadataValueType::Bool,
            Self::String(_) => MetadataValueType::String,
            Self::Array(_) => MetadataValueType::Array,
            Self::U64(_) => MetadataValueType::U64,
            Self::I64(_) => MetadataValueType::I64,
            Self::F64(_) => MetadataValueType::F64,
        }
    }

    /// A description of the type for messages, e.g. `"u32"` or `"array<string>"`.
    pub fn type_description(&self) -> String {
        match self {
            Self::Array(a) => format!("array<{}>", a.element_type()),
            other => other.value_type().name().to_string(),
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer value as i128 (lossless for every integer type); `None` for other types.
    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Self::U8(v) => v.into(),
            Self::I8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U64(v) => v.into(),
            Self::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// Any integer value that fits in u64 (negative values and non-integers give `None`).
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// Any integer value that fits in i64.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// An f32 or f64 value as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The bool, if this is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The array, if this is an array.
    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A metadata array, stored densely by element type.
///
/// GGUF arrays are homogeneous; an array of arrays holds inner arrays that may each have their own
/// element type.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    /// Array of u8.
    U8(Vec<u8>),
    /// Array of i8.
    I8(Vec<i8>),
    /// Array of u16.
    U16(Vec<u16>),
    /// Array of i16.
    I16(Vec<i16>),
    /// Array of u32.
    U32(Vec<u32>),
    /// Array of i32.
    I32(Vec<i32>),
    /// Array of f32.
    F32(Vec<f32>),
    /// Array of bool.
    Bool(Vec<bool>),
    /// Array of strings.
    String(Vec<String>),
    /// Array of arrays.
    Array(Vec<MetadataArray>),
    /// Array of u64.
    U64(Vec<u64>),
    /// Array of i64.
    I64(Vec<i64>),
    /// Array of f64.
    F64(Vec<f64>),
}

impl MetadataArray {
    /// The element type.
    pub fn element_type(&self) -> MetadataValueType {
        match self {
            Self::U8(_) => MetadataValueType::U8,
            Self::I8(_) => MetadataValueType::I8,
            Self::U16(_) => MetadataValueType::U16,
            Self::I16(_) => MetadataValueType::I16,
            Self::U32(_) => MetadataValueType::U32,
            Self::I32(_) => MetadataValueType::I32,
            Self::F32(_) => MetadataValueType::F32,
            Self::Bool(_) => MetadataValueType::Bool,
            Self::String(_) => MetadataValueType::String,
            Self::Array(_) => MetadataValueType::Array,
            Self::U64(_) => MetadataValueType::U64,
            Self::I64(_) => MetadataValueType::I64,
            Self::F64(_) => MetadataValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One metadata key/value pair and where it starts in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// The key, e.g. `"llama.block_count"`.
    pub key: String,
    /// The value.
    pub value: MetadataValue,
    /// Byte offset of the entry (its key's length field) in the file.
    pub offset: u64,
}

/// Description of one tensor: name, shape, element type and where its data lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `"blk.0.attn_q.weight"`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-varying (`ne[0]`).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the data section ([`GgufHeader::data_offset`]).
    pub offset: u64,
    /// Number of elements (product of `dims`; 1 for zero dimensions).
    pub n_elements: u64,
    /// Number of bytes of data.
    pub n_bytes: u64,
    /// Byte offset of this tensor info (its name's length field) in the file.
    pub info_offset: u64,
}

/// The parsed structure of a GGUF file: version, metadata, tensor infos, alignment and the
/// offset of the data section. It does not hold tensor data; see [`GgufFile`] for that.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    version: u32,
    metadata: Vec<MetadataEntry>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

/// Bounds-checked little-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let truncated = || LmError::Truncated {
            offset: self.pos as u64,
            what,
            needed: n as u64,
            available: self.remaining() as u64,
        };
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let offset = self.offset();
        let available = self.remaining() as u64;
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| LmError::Truncated {
            offset,
            what,
            needed: N as u64,
            available,
        })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a u64 count and checks that `count` items of at least `min_item_size` bytes each can
    /// fit in what is left, so that allocating `count` items is bounded by the input size.
    fn count(&mut self, what: &'static str, min_item_size: u64) -> Result<usize> {
        let offset = self.offset();
        let count = self.u64(what)?;
        let available = self.remaining() as u64;
        let fits = count
            .checked_mul(min_item_size)
            .is_some_and(|need| need <= available);
        let too_large = || LmError::CountTooLarge {
            offset,
            what,
            count,
            min_item_size,
            available,
        };
        if !fits {
            return Err(too_large());
        }
        usize::try_from(count).map_err(|_| too_large())
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        let len = self.count(what, 1)?;
        let offset = self.offset();
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| LmError::InvalidUtf8 { offset })
    }

    /// Reads `n` fixed-size little-endian elements.
    fn fixed<const N: usize, T>(
        &mut self,
        n: usize,
        what: &'static str,
        decode: fn([u8; N]) -> T,
    ) -> Result<Vec<T>> {
        let offset = self.offset();
        let available = self.remaining() as u64;
        let total = n.checked_mul(N).ok_or(LmError::CountTooLarge {
            offset,
            what,
            count: n as u64,
            min_item_size: N as u64,
            available,
        })?;
        let bytes = self.take(total, what)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                decode(a)
            })
            .collect())
    }
}

fn read_value_type(r: &mut Reader<'_>, key: &str) -> Result<MetadataValueType> {
    let offset = r.offset();
    let type_id = r.u32("metadata value type")?;
    MetadataValueType::from_id(type_id).ok_or_else(|| LmError::UnknownValueType {
        type_id,
        offset,
        key: key.to_string(),
    })
}

fn read_bool(r: &mut Reader<'_>, key: &str) -> Result<bool> {
    let offset = r.offset();
    match r.u8("bool value")? {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(LmError::InvalidBool {
            offset,
            key: key.to_string(),
            value,
        }),
    }
}

fn read_value(r: &mut Reader<'_>, ty: MetadataValueType, key: &str) -> Result<MetadataValue> {
    Ok(match ty {
        MetadataValueType::U8 => MetadataValue::U8(r.u8("u8 value")?),
        MetadataValueType::I8 => MetadataValue::I8(i8::from_le_bytes(r.array("i8 value")?)),
        MetadataValueType::U16 => MetadataValue::U16(u16::from_le_bytes(r.array("u16 value")?)),
        MetadataValueType::I16 => MetadataValue::I16(i16::from_le_bytes(r.array("i16 value")?)),
        MetadataValueType::U32 => MetadataValue::U32(r.u32("u32 value")?),
        MetadataValueType::I32 => MetadataValue::I32(i32::from_le_bytes(r.array("i32 value")?)),
        MetadataValueType::F32 => MetadataValue::F32(f32::from_le_bytes(r.array("f32 value")?)),
        MetadataValueType::Bool => MetadataValue::Bool(read_bool(r, key)?),
        MetadataValueType::String => MetadataValue::String(r.string("string value")?),
        MetadataValueType::Array => MetadataValue::Array(read_array(r, key, 1)?),
        MetadataValueType::U64 => MetadataValue::U64(r.u64("u64 value")?),
        MetadataValueType::I64 => MetadataValue::I64(i64::from_le_bytes(r.array("i64 value")?)),
        MetadataValueType::F64 => MetadataValue::F64(f64::from_le_bytes(r.array("f64 value")?)),
    })
}

/// Reads an array (element type, count, elements); `depth` is 1 for a top-level array.
fn read_array(r: &mut Reader<'_>, key: &str, depth: usize) -> Result<MetadataArray> {
    let start = r.offset();
    if depth > MAX_ARRAY_NESTING {
        return Err(LmError::NestingTooDeep {
            offset: start,
            key: key.to_string(),
            max: MAX_ARRAY_NESTING,
        });
    }
    let elem = read_value_type(r, key)?;
    let n = r.count("array length", elem.min_size())?;
    const W: &str = "array elements";
    Ok(match elem {
        MetadataValueType::U8 => MetadataArray::U8(r.fixed(n, W, |a: [u8; 1]| a[0])?),
        MetadataValueType::I8 => MetadataArray::I8(r.fixed(n, W, i8::from_le_bytes)?),
        MetadataValueType::U16 => MetadataArray::U16(r.fixed(n, W, u16::from_le_bytes)?),
        MetadataValueType::I16 => MetadataArray::I16(r.fixed(n, W, i16::from_le_bytes)?),
        MetadataValueType::U32 => MetadataArray::U32(r.fixed(n, W, u32::from_le_bytes)?),
        MetadataValueType::I32 => MetadataArray::I32(r.fixed(n, W, i32::from_le_bytes)?),
        MetadataValueType::F32 => MetadataArray::F32(r.fixed(n, W, f32::from_le_bytes)?),
        MetadataValueType::U64 => MetadataArray::U64(r.fixed(n, W, u64::from_le_bytes)?),
        MetadataValueType::I64 => MetadataArray::I64(r.fixed(n, W, i64::from_le_bytes)?),
        MetadataValueType::F64 => MetadataArray::F64(r.fixed(n, W, f64::from_le_bytes)?),
        MetadataValueType::Bool => {
            let mut v = Vec::with_capacity(n.min(MAX_PREALLOCATED));
            for _ in 0..n {
                v.push(read_bool(r, key)?);
            }
            MetadataArray::Bool(v)
        }
        MetadataValueType::String => {
            let mut v = Vec::with_capacity(n.min(MAX_PREALLOCATED));
            for _ in 0..n {
                v.push(r.string("string array element")?);
            }
            MetadataArray::String(v)
        }
        MetadataValueType::Array => {
            let mut v = Vec::with_capacity(n.min(MAX_PREALLOCATED));
            for _ in 0..n {
                v.push(read_array(r, key, depth + 1)?);
            }
            MetadataArray::Array(v)
        }
    })
}

/// The most items reserved up front for a count read from a file: the count is checked against
/// the bytes left, but one item in memory is larger than its smallest encoding (a `String`
/// against its 8-byte length), so longer lists grow as they are read.
const MAX_PREALLOCATED: usize = 4096;

/// `x` rounded up to a multiple of `alignment` (a non-zero power of two); `None` on overflow.
pub(crate) fn align_up(x: u64, alignment: u64) -> Option<u64> {
    // `alignment` is a non-zero power of two (checked by the caller).
    x.checked_add(alignment - 1).map(|v| v & !(alignment - 1))
}

fn read_tensor_info(r: &mut Reader<'_>) -> Result<TensorInfo> {
    let info_offset = r.offset();
    let name = r.string("tensor name")?;
    let n_dims = r.u32("tensor n_dims")?;
    if n_dims as usize > MAX_DIMS {
        return Err(LmError::BadDimCount {
            tensor: name,
            n_dims,
            max: MAX_DIMS,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(r.u64("tensor dimension")?);
    }
    let type_id = r.u32("tensor ggml type")?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| LmError::UnknownGgmlType {
        tensor: name.clone(),
        type_id,
        offset: info_offset,
    })?;
    let offset = r.u64("tensor data offset")?;

    // ggml stores `ne` as int64_t: every dimension must fit, and so must their product.
    let overflow = |name: &String, dims: &Vec<u64>| LmError::DimsOverflow {
        tensor: name.clone(),
        dims: dims.clone(),
    };
    if dims.contains(&0) {
        return Err(LmError::EmptyTensor { tensor: name, dims });
    }
    let mut n_elements: u64 = 1;
    for &d in &dims {
        if d > i64::MAX as u64 {
            return Err(overflow(&name, &dims));
        }
        n_elements = n_elements
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| overflow(&name, &dims))?;
    }
    let ne0 = dims.first().copied().unwrap_or(1);
    let block_size = ggml_type.block_size();
    if !ne0.is_multiple_of(block_size) {
        return Err(LmError::RowNotBlockMultiple {
            tensor: name,
            ggml_type: ggml_type.name(),
            ne0,
            block_size,
        });
    }
    let n_bytes = ggml_type
        .n_bytes(n_elements)
        .ok_or_else(|| overflow(&name, &dims))?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        n_elements,
        n_bytes,
        info_offset,
    })
}

impl GgufHeader {
    /// Parses the header, metadata and tensor infos of the GGUF file in `bytes`, and checks that
    /// every tensor's data lies, aligned and contiguous, inside `bytes`.
    ///
    /// # Errors
    /// Any malformation: see [`LmError`]'s GGUF variants.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let magic: [u8; 4] = r.array("magic")?;
        if magic != GGUF_MAGIC {
            return Err(LmError::BadMagic { found: magic });
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(LmError::UnsupportedVersion { version });
        }
        // The counts are checked against the whole rest of the file; the tensor count once more
        // when the tensor infos start.
        let n_tensors = r.count("tensor count", MIN_TENSOR_INFO_SIZE)?;
        let n_kv = r.count("metadata KV count", MIN_KV_SIZE)?;

        let mut metadata = Vec::with_capacity(n_kv.min(MAX_PREALLOCATED));
        let mut key_index = HashMap::with_capacity(n_kv.min(MAX_PREALLOCATED));
        for _ in 0..n_kv {
            let offset = r.offset();
            let key = r.string("metadata key")?;
            let ty = read_value_type(&mut r, &key)?;
            let value = read_value(&mut r, ty, &key)?;
            if key_index.contains_key(&key) {
                return Err(LmError::DuplicateKey { key, offset });
            }
            key_index.insert(key.clone(), metadata.len());
            metadata.push(MetadataEntry { key, value, offset });
        }

        let tensor_capacity = n_tensors.min(r.remaining() / MIN_TENSOR_INFO_SIZE as usize);
        let mut tensors = Vec::with_capacity(tensor_capacity);
        let mut tensor_index = HashMap::with_capacity(tensor_capacity);
        for _ in 0..n_tensors {
            let info = read_tensor_info(&mut r)?;
            if tensor_index.contains_key(&info.name) {
                return Err(LmError::DuplicateTensor {
                    name: info.name,
                    offset: info.info_offset,
                });
            }
            tensor_index.insert(info.name.clone(), tensors.len());
            tensors.push(info);
        }

        let alignment = match key_index.get(ALIGNMENT_KEY).and_then(|&i| metadata.get(i)) {
            None => DEFAULT_ALIGNMENT,
            Some(MetadataEntry {
                value: MetadataValue::U32(a),
                ..
            }) => u64::from(*a),
            Some(entry) => {
                return Err(LmError::WrongValueType {
                    key: ALIGNMENT_KEY.to_string(),
                    expected: "u32",
                    found: entry.value.type_description(),
                });
            }
        };
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(LmError::BadAlignment { alignment });
        }
        let data_offset =
            align_up(r.offset(), alignment).ok_or(LmError::BadAlignment { alignment })?;

        let file_len = bytes.len() as u64;
        let data_len = file_len.saturating_sub(data_offset);
        let mut expected: u64 = 0;
        for t in &tensors {
            if !t.offset.is_multiple_of(alignment) {
                return Err(LmError::MisalignedTensor {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    alignment,
                });
            }
            if t.offset != expected {
                return Err(LmError::UnexpectedTensorOffset {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    expected,
                });
            }
            let out_of_bounds = || LmError::TensorOutOfBounds {
                tensor: t.name.clone(),
                start: t.offset,
                size: t.n_bytes,
                data_len,
            };
            let in_bounds = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes))
                .is_some_and(|end| end <= file_len);
            if !in_bounds {
                return Err(out_of_bounds());
            }
            expected = t
                .offset
                .checked_add(t.n_bytes)
                .and_then(|e| align_up(e, alignment))
                .ok_or_else(out_of_bounds)?;
        }

        Ok(Self {
            version,
            metadata,
            key_index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file: the end of the tensor infos rounded up to the
    /// alignment.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[MetadataEntry] {
        &self.metadata
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.key_index
            .get(key)
            .and_then(|&i| self.metadata.get(i))
            .map(|e| &e.value)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.key_index.contains_key(key)
    }

    /// An optional key read with `get` (one of the typed getters): `None` when absent, and a
    /// present value of the wrong type an error rather than a silent default.
    ///
    /// # Errors
    /// As `get`, for a present key.
    pub fn optional<T>(
        &self,
        key: &str,
        get: impl Fn(&Self, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.contains_key(key) {
            get(self, key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn require(&self, key: &str) -> Result<&MetadataValue> {
        self.get(key).ok_or_else(|| LmError::MissingKey {
            key: key.to_string(),
        })
    }

    fn wrong_type(key: &str, expected: &'static str, found: &MetadataValue) -> LmError {
        LmError::WrongValueType {
            key: key.to_string(),
            expected,
            found: found.type_description(),
        }
    }

    /// The string under `key`.
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] when it is not a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong_type(key, "string", v))
    }

    /// The model's display name: `general.name`, else the stem of `path` (the file it came
    /// from).
    pub fn model_name(&self, path: &std::path::Path) -> String {
        self.get_str("general.name")
            .map(str::to_string)
            .unwrap_or_else(|_| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
    }

    /// The integer under `key` as u32. Any integer type is accepted when its value fits
    /// (writers differ on u32 vs i32 for counts).
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for non-integers and values out of
    /// range.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.require(key)?;
        v.as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| Self::wrong_type(key, "integer in u32 range", v))
    }

    /// The integer under `key` as u64 (any integer type with a non-negative value).
    ///
    /// # Errors
    /// As [`GgufHeader::get_u32`].
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| Self::wrong_type(key, "integer in u64 range", v))
    }

    /// The float under `key` (f32, or f64 narrowed to f32).
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for non-floats.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        match *v {
            MetadataValue::F32(x) => Ok(x),
            MetadataValue::F64(x) => Ok(x as f32),
            _ => Err(Self::wrong_type(key, "f32", v)),
        }
    }

    /// The bool under `key`.
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for non-bools.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| Self::wrong_type(key, "bool", v))
    }

    /// The array under `key`.
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for non-arrays.
    pub fn get_array(&self, key: &str) -> Result<&MetadataArray> {
        let v = self.require(key)?;
        v.as_array()
            .ok_or_else(|| Self::wrong_type(key, "array", v))
    }

    /// The array of strings under `key` (e.g. `tokenizer.ggml.tokens`).
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for anything but `array<string>`.
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        let v = self.require(key)?;
        match v {
            MetadataValue::Array(MetadataArray::String(s)) => Ok(s),
            _ => Err(Self::wrong_type(key, "array<string>", v)),
        }
    }

    /// The array of i32 under `key` (e.g. `tokenizer.ggml.token_type`).
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for anything but `array<i32>`.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        let v = self.require(key)?;
        match v {
            MetadataValue::Array(MetadataArray::I32(s)) => Ok(s),
            _ => Err(Self::wrong_type(key, "array<i32>", v)),
        }
    }

    /// The array of f32 under `key` (e.g. `tokenizer.ggml.scores`).
    ///
    /// # Errors
    /// [`LmError::MissingKey`], or [`LmError::WrongValueType`] for anything but `array<f32>`.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        let v = self.require(key)?;
        match v {
            MetadataValue::Array(MetadataArray::F32(s)) => Ok(s),
            _ => Err(Self::wrong_type(key, "array<f32>", v)),
        }
    }

    /// `general.architecture`, e.g. `"llama"`.
    ///
    /// # Errors
    /// As [`GgufHeader::get_str`].
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// The info of the tensor called `name`.
    ///
    /// # Errors
    /// [`LmError::TensorNotFound`].
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
            .ok_or_else(|| LmError::TensorNotFound {
                name: name.to_string(),
            })
    }

    /// The raw bytes of tensor `info` inside `file` (the whole GGUF file's bytes).
    ///
    /// # Errors
    /// [`LmError::TensorOutOfBounds`] when `file` is too short (e.g. not the buffer the header was
    /// parsed from).
    pub fn tensor_data<'a>(&self, file: &'a [u8], info: &TensorInfo) -> Result<&'a [u8]> {
        let data_len = (file.len() as u64).saturating_sub(self.data_offset);
        let oob = || LmError::TensorOutOfBounds {
            tensor: info.name.clone(),
            start: info.offset,
            size: info.n_bytes,
            data_len,
        };
        let start = self.data_offset.checked_add(info.offset).ok_or_else(oob)?;
        let end = start.checked_add(info.n_bytes).ok_or_else(oob)?;
        let start = usize::try_from(start).map_err(|_| oob())?;
        let end = usize::try_from(end).map_err(|_| oob())?;
        file.get(start..end).ok_or_else(oob)
    }
}

/// A GGUF file held in memory: the parsed [`GgufHeader`] plus the file's bytes.
///
/// The whole file is read into memory (SmolLM2-135M at Q4_1 is about 90 MB).
#[derive(Debug, Clone)]
pub struct GgufFile {
    header: GgufHeader,
    bytes: Vec<u8>,
}

impl GgufFile {
    /// Parses a GGUF file from its bytes.
    ///
    /// # Errors
    /// As [`GgufHeader::parse`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let header = GgufHeader::parse(&bytes)?;
        Ok(Self { header, bytes })
    }

    /// Reads and parses the GGUF file at `path`.
    ///
    /// # Errors
    /// [`LmError::Io`] naming the path, or any parse error inside [`LmError::InFile`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes).map_err(|e| LmError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// The parsed header (metadata lookups, tensor infos).
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// The header and the file's bytes, taken apart (to keep tensors in place).
    pub fn into_parts(self) -> (GgufHeader, Vec<u8>) {
        (self.header, self.bytes)
    }

    /// A file from a parsed header and its bytes (no re-parsing; `bytes` may be empty when
    /// only the header is needed).
    pub fn from_parts(header: GgufHeader, bytes: Vec<u8>) -> Self {
        Self { header, bytes }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw bytes of tensor `name`.
    ///
    /// # Errors
    /// [`LmError::TensorNotFound`].
    pub fn tensor_data(&self, name: &str) -> Result<&[u8]> {
        let info = self.header.tensor(name)?;
        self.header.tensor_data(&self.bytes, info)
    }

    /// Tensor `name` de-quantised to f32, in ggml element order (`dims[0]` fastest).
    ///
    /// # Errors
    /// [`LmError::TensorNotFound`], or [`LmError::UnsupportedDequant`] (inside
    /// [`LmError::InTensor`], naming the tensor) for types [`crate::format::dequant`] does not
    /// handle.
    pub fn dequantize_tensor(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.header.tensor(name)?;
        self.dequantize_info(info)
    }

    /// De-quantises the tensor described by `info` (one of [`GgufHeader::tensors`]).
    ///
    /// # Errors
    /// As [`GgufFile::dequantize_tensor`].
    pub fn dequantize_info(&self, info: &TensorInfo) -> Result<Vec<f32>> {
        let data = self.header.tensor_data(&self.bytes, info)?;
        let n = usize::try_from(info.n_elements).map_err(|_| LmError::DimsOverflow {
            tensor: info.name.clone(),
            dims: info.dims.clone(),
        })?;
        dequant::dequantize(info.ggml_type, data, n).map_err(|e| LmError::InTensor {
            tensor: info.name.clone(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_value() -> Vec<(&'static str, MetadataValue)> {
        vec![
            ("u8", MetadataValue::U8(200)),
            ("i8", MetadataValue::I8(-100)),
            ("u16", MetadataValue::U16(60_000)),
            ("i16", MetadataValue::I16(-30_000)),
            ("u32", MetadataValue::U32(4_000_000_000)),
            ("i32", MetadataValue::I32(-2_000_000_000)),
            ("f32", MetadataValue::F32(1.5e-5)),
            ("bool", MetadataValue::Bool(true)),
            ("string", MetadataValue::String("héllo".into())),
            ("u64", MetadataValue::U64(u64::MAX)),
            ("i64", MetadataValue::I64(i64::MIN)),
            ("f64", MetadataValue::F64(-2.5e300)),
            (
                "arr.str",
                MetadataValue::Array(MetadataArray::String(vec!["a".into(), "".into()])),
            ),
            (
                "arr.nested",
                MetadataValue::Array(MetadataArray::Array(vec![
                    MetadataArray::I32(vec![1, -2]),
                    MetadataArray::Bool(vec![false, true]),
                    MetadataArray::Array(vec![
                        MetadataArray::F64(vec![]),
                        MetadataArray::U8(vec![7]),
                    ]),
                ])),
            ),
            (
                "arr.u16",
                MetadataValue::Array(MetadataArray::U16(vec![1, 2, 3])),
            ),
            (
                "arr.f32",
                MetadataValue::Array(MetadataArray::F32(vec![0.5, -1.0])),
            ),
        ]
    }

    #[test]
    fn round_trips_every_value_type() {
        let mut w = GgufWriter::new();
        for (k, v) in every_value() {
            w.add_metadata(k, v);
        }
        let bytes = w.to_bytes().unwrap();
        let h = GgufHeader::parse(&bytes).unwrap();
        assert_eq!(h.version(), 3);
        assert_eq!(h.metadata().len(), every_value().len());
        for (k, v) in every_value() {
            assert_eq!(h.get(k), Some(&v), "{k}");
        }
        assert_eq!(h.get_u32("u16").unwrap(), 60_000);
        assert!(matches!(
            h.get_u32("i32"),
            Err(LmError::WrongValueType { .. })
        ));
        assert!(matches!(h.get_str("nope"), Err(LmError::MissingKey { .. })));
        assert_eq!(h.get_str_array("arr.str").unwrap(), ["a", ""]);
        let path = std::path::Path::new("/m/SmolLM2.Q4_1.gguf");
        assert_eq!(
            h.model_name(path),
            "SmolLM2.Q4_1",
            "no general.name: the file stem"
        );
        let mut named = GgufWriter::new();
        named.add_metadata("general.name", MetadataValue::String("Tiny".into()));
        let named = GgufHeader::parse(&named.to_bytes().unwrap()).unwrap();
        assert_eq!(named.model_name(path), "Tiny");
        assert_eq!(h.alignment(), DEFAULT_ALIGNMENT);
        assert_eq!(h.data_offset() % 32, 0);
    }

    #[test]
    fn reads_version_2() {
        let mut w = GgufWriter::new();
        w.add_metadata("k", MetadataValue::U64(5));
        w.add_tensor("t", &[2, 2], GgmlType::F16, vec![0; 8])
            .unwrap();
        let mut bytes = w.to_bytes().unwrap();
        bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
        let h = GgufHeader::parse(&bytes).unwrap();
        assert_eq!(h.version(), 2);
        assert_eq!(h.get_u64("k").unwrap(), 5);
        assert_eq!(h.tensor("t").unwrap().n_bytes, 8);
    }

    #[test]
    fn custom_alignment_is_honoured() {
        let mut w = GgufWriter::new();
        w.set_alignment(64).unwrap();
        w.add_tensor("a", &[3], GgmlType::F32, vec![0; 12]).unwrap();
        w.add_tensor("b", &[32], GgmlType::Q8_0, vec![0; 34])
            .unwrap();
        let bytes = w.to_bytes().unwrap();
        let h = GgufHeader::parse(&bytes).unwrap();
        assert_eq!(h.alignment(), 64);
        assert_eq!(h.tensor("b").unwrap().offset, 64);
        assert_eq!(h.data_offset() % 64, 0);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut a = MetadataArray::U8(vec![]);
        for _ in 0..MAX_ARRAY_NESTING {
            a = MetadataArray::Array(vec![a]);
        }
        let mut w = GgufWriter::new();
        w.add_metadata("deep", MetadataValue::Array(a));
        let bytes = w.to_bytes().unwrap();
        assert!(matches!(
            GgufHeader::parse(&bytes),
            Err(LmError::NestingTooDeep { .. })
        ));
    }
}
