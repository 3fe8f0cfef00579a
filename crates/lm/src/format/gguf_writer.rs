//! Building GGUF files in memory ([`GgufWriter`]), the inverse of [`crate::format::gguf::GgufHeader::parse`].
//!
//! Writes the layout of ggml's `docs/gguf.md` (version 3, little-endian): header, metadata, tensor
//! infos, padding to the alignment, then each tensor's data padded to the alignment, the way
//! `gguf-py`'s `GGUFWriter` lays files out.

use crate::error::{LmError, Result};
use crate::format::ggml_type::GgmlType;
use crate::format::gguf::{
    ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC, MetadataArray, MetadataValue, align_up,
};

/// Builds GGUF files in memory: for tests, examples and small exports.
///
/// Writes version 3, little-endian, with tensors laid out contiguously at aligned offsets, the
/// layout [`GgufHeader::parse`](crate::format::gguf::GgufHeader::parse) reads.
///
/// ```
/// use lm::format::gguf::{GgufHeader, GgufWriter, MetadataValue};
/// use lm::GgmlType;
///
/// let mut w = GgufWriter::new();
/// w.add_metadata("general.architecture", MetadataValue::String("llama".into()));
/// w.add_tensor("x", &[2], GgmlType::F32, [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect())?;
/// let bytes = w.to_bytes()?;
/// let h = GgufHeader::parse(&bytes)?;
/// assert_eq!(h.architecture()?, "llama");
/// # Ok::<(), lm::LmError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    alignment: Option<u32>,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty writer with the default alignment (32).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the alignment and records it as `general.alignment` (must be a power of two).
    ///
    /// # Errors
    /// [`LmError::BadAlignment`].
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self> {
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(LmError::BadAlignment {
                alignment: alignment.into(),
            });
        }
        self.alignment = Some(alignment);
        Ok(self)
    }

    /// Appends a metadata entry (keys are written in insertion order; duplicates are written
    /// as given, which the reader rejects).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: MetadataValue) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Appends a tensor with dimensions `dims` (ggml order) and raw `data`.
    ///
    /// # Errors
    /// [`LmError::WrongByteLength`] when `data` does not match `dims` and `ggml_type`.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let n = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| LmError::DimsOverflow {
                tensor: name.clone(),
                dims: dims.to_vec(),
            })?;
        let expected = ggml_type.n_bytes(n);
        if expected != Some(data.len() as u64) {
            return Err(LmError::WrongByteLength {
                ggml_type: ggml_type.name(),
                n_elements: usize::try_from(n).unwrap_or(usize::MAX),
                expected: expected.and_then(|e| usize::try_from(e).ok()).unwrap_or(0),
                got: data.len(),
            });
        }
        self.tensors.push((name, dims.to_vec(), ggml_type, data));
        Ok(self)
    }

    /// Serialises the file.
    ///
    /// # Errors
    /// [`LmError::DimsOverflow`] if offsets overflow (only for absurd inputs).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let alignment = u64::from(self.alignment.unwrap_or(DEFAULT_ALIGNMENT as u32));
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        let has_alignment_key = self.metadata.iter().any(|(k, _)| k == ALIGNMENT_KEY);
        let extra = usize::from(self.alignment.is_some() && !has_alignment_key);
        out.extend_from_slice(&((self.metadata.len() + extra) as u64).to_le_bytes());
        if extra == 1 {
            write_string(&mut out, ALIGNMENT_KEY);
            write_value(&mut out, &MetadataValue::U32(alignment as u32), true);
        }
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            write_value(&mut out, value, true);
        }
        let mut offset: u64 = 0;
        for (name, dims, ty, data) in &self.tensors {
            write_string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset.checked_add(data.len() as u64))
                .and_then(|e| align_up(e, alignment))
                .ok_or_else(|| LmError::DimsOverflow {
                    tensor: name.clone(),
                    dims: dims.clone(),
                })?;
        }
        pad_to(&mut out, alignment);
        for (_, _, _, data) in &self.tensors {
            out.extend_from_slice(data);
            pad_to(&mut out, alignment);
        }
        Ok(out)
    }
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    while !(out.len() as u64).is_multiple_of(alignment) {
        out.push(0);
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &MetadataValue, with_type: bool) {
    if with_type {
        out.extend_from_slice(&value.value_type().id().to_le_bytes());
    }
    match value {
        MetadataValue::U8(v) => out.push(*v),
        MetadataValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Bool(v) => out.push(u8::from(*v)),
        MetadataValue::String(s) => write_string(out, s),
        MetadataValue::Array(a) => write_array(out, a),
        MetadataValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn write_array(out: &mut Vec<u8>, a: &MetadataArray) {
    out.extend_from_slice(&a.element_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        MetadataArray::U8(v) => out.extend_from_slice(v),
        MetadataArray::I8(v) => le!(v),
        MetadataArray::U16(v) => le!(v),
        MetadataArray::I16(v) => le!(v),
        MetadataArray::U32(v) => le!(v),
        MetadataArray::I32(v) => le!(v),
        MetadataArray::F32(v) => le!(v),
        MetadataArray::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        MetadataArray::String(v) => v.iter().for_each(|s| write_string(out, s)),
        MetadataArray::Array(v) => v.iter().for_each(|inner| write_array(out, inner)),
        MetadataArray::U64(v) => le!(v),
        MetadataArray::I64(v) => le!(v),
        MetadataArray::F64(v) => le!(v),
    }
}
