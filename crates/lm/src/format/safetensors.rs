//! Reading model weights from `.safetensors` files by their Hugging Face parameter names.
//!
//! [`SafetensorsWeights`] owns the file's bytes and hands out burn tensors by name:
//!
//! - every request names the shape it expects, and a different shape is an
//!   [`LmError::WeightShape`] naming the key, rather than a silent broadcast later;
//! - F32, F16 and BF16 are converted to f32 (other dtypes give [`LmError::UnsupportedWeightDtype`]);
//! - PyTorch's `nn.Linear` stores its weight as `[out, in]` and computes `x @ W^T`; burn code here
//!   computes `x @ W` with `W` as `[in, out]`. [`SafetensorsWeights::linear_weight`] does that
//!   transpose explicitly (a real copy, so the result is contiguous for the matmul);
//! - the loader records which keys were taken: [`SafetensorsWeights::check_keys`] compares the
//!   file's keys with the set a model expects before loading, and [`SafetensorsWeights::finish`]
//!   reports every key that was never taken. Both give one [`LmError::WeightKeys`] listing all
//!   missing and unexpected names at once.
//!
//! ```
//! use burn::tensor::Device;
//! use lm::format::safetensors::SafetensorsWeights;
//!
//! // A two-tensor file built in memory: a Linear layer with 3 inputs and 2 outputs.
//! let w: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [out = 2, in = 3]
//! let b: Vec<f32> = vec![0.5, -0.5];
//! let bytes = lm::format::safetensors::f32_safetensors(&[("fc.weight", &[2, 3], &w), ("fc.bias", &[2], &b)])?;
//!
//! let device = Device::flex();
//! let mut weights = SafetensorsWeights::from_bytes(bytes, "in-memory")?;
//! weights.check_keys(["fc.weight", "fc.bias"])?;
//! let wt = weights.linear_weight("fc.weight", 3, 2, &device)?; // [in = 3, out = 2]
//! assert_eq!(wt.into_data().try_into_vec::<f32>().unwrap(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
//! // `fc.bias` was never taken: finishing names it.
//! let err = weights.finish().unwrap_err().to_string();
//! assert!(err.contains("fc.bias"), "{err}");
//! # Ok::<(), lm::LmError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{LmError, Result};

/// Where one tensor's data lies in the file and what it holds.
#[derive(Debug, Clone)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range in the whole file buffer.
    start: usize,
    end: usize,
}

/// A `.safetensors` file held in memory, handing out f32 tensors by Hugging Face name and
/// tracking which names were taken. See the [module docs](self).
#[derive(Debug)]
pub struct SafetensorsWeights {
    source: PathBuf,
    bytes: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    taken: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

impl SafetensorsWeights {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`LmError::Io`] when it cannot be read, [`LmError::Safetensors`] when it is not a valid
    /// safetensors file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Parses a safetensors file already in memory; `source` names it in error messages.
    ///
    /// # Errors
    /// [`LmError::Safetensors`] when the header is invalid or the data does not match it.
    pub fn from_bytes(bytes: Vec<u8>, source: impl Into<PathBuf>) -> Result<Self> {
        let source = source.into();
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|e| LmError::Safetensors {
                path: source.clone(),
                source: Box::new(e),
            })?;
        // `read_metadata` checked that the data section ends exactly at the end of the buffer and
        // that the offsets tile it; offsets are relative to the data section after the header.
        let data_start = 8 + header_len;
        let entries = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let entry = Entry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                (name, entry)
            })
            .collect();
        Ok(Self {
            source,
            bytes,
            entries,
            taken: BTreeSet::new(),
            ignored: BTreeSet::new(),
        })
    }

    /// The file this was read from (or the name given to [`Self::from_bytes`]).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// All tensor names in the file, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the file holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The stored shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// Marks `name` as known but not needed (a buffer such as BERT's `embeddings.position_ids`,
    /// or a head the model does not run): it is then neither unexpected in [`Self::check_keys`]
    /// nor reported by [`Self::finish`].
    pub fn ignore(&mut self, name: &str) {
        self.ignored.insert(name.to_string());
    }

    /// Compares the file's keys with the keys a model will take, before loading anything.
    ///
    /// # Errors
    /// [`LmError::WeightKeys`] listing every expected key that is absent and every key in the
    /// file that is neither expected nor [ignored](Self::ignore).
    pub fn check_keys<I, S>(&self, expected: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let expected: BTreeSet<String> = expected
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let missing: Vec<String> = expected
            .iter()
            .filter(|k| !self.entries.contains_key(*k))
            .cloned()
            .collect();
        let unexpected: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !expected.contains(*k) && !self.ignored.contains(*k))
            .cloned()
            .collect();
        self.keys_result(missing, unexpected)
    }

    /// Ends loading: every key in the file must have been taken or [ignored](Self::ignore).
    ///
    /// # Errors
    /// [`LmError::WeightKeys`] naming the keys that were never taken.
    pub fn finish(self) -> Result<()> {
        let unexpected: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !self.taken.contains(*k) && !self.ignored.contains(*k))
            .cloned()
            .collect();
        self.keys_result(Vec::new(), unexpected)
    }

    fn keys_result(&self, missing: Vec<String>, unexpected: Vec<String>) -> Result<()> {
        if missing.is_empty() && unexpected.is_empty() {
            Ok(())
        } else {
            Err(LmError::WeightKeys {
                path: self.source.clone(),
                missing,
                unexpected,
            })
        }
    }

    /// The values of `name` as f32 in row-major order, after checking its shape is `expected`.
    /// Marks the key as taken.
    ///
    /// # Errors
    /// [`LmError::WeightNotFound`], [`LmError::WeightShape`] or
    /// [`LmError::UnsupportedWeightDtype`].
    pub fn take_f32(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| LmError::WeightNotFound {
                path: self.source.clone(),
                name: name.to_string(),
            })?;
        if entry.shape != expected {
            return Err(LmError::WeightShape {
                path: self.source.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let raw = &self.bytes[entry.start..entry.end];
        let values: Vec<f32> = match entry.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            other => {
                return Err(LmError::UnsupportedWeightDtype {
                    path: self.source.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        self.taken.insert(name.to_string());
        Ok(values)
    }

    /// The tensor `name` with shape `expected`, as f32 on `device`. Marks the key as taken.
    ///
    /// # Errors
    /// As [`Self::take_f32`].
    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let values = self.take_f32(name, &expected)?;
        Ok(Tensor::from_data(TensorData::new(values, expected), device))
    }

    /// A PyTorch `nn.Linear` weight, stored `[out, in]`, returned transposed as `[in, out]` (so
    /// that `x.matmul(w)` computes PyTorch's `x @ W^T`). Marks the key as taken.
    ///
    /// # Errors
    /// As [`Self::take_f32`]; the stored shape must be `[d_out, d_in]`.
    pub fn linear_weight(
        &mut self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let stored = self.take_f32(name, &[d_out, d_in])?;
        let transposed = transpose(&stored, d_out, d_in);
        Ok(Tensor::from_data(
            TensorData::new(transposed, [d_in, d_out]),
            device,
        ))
    }
}

/// Row-major `[rows, cols]` → row-major `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// IEEE 754 half precision bits to f32 (exact: every f16 is representable).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24; normalise it.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Serialises f32 tensors `(name, shape, values)` into safetensors bytes: for tests, examples
/// and exporting small models.
///
/// # Errors
/// [`LmError::WeightShape`] when a shape's element count differs from its values' length;
/// [`LmError::Safetensors`] when serialisation fails.
pub fn f32_safetensors(tensors: &[(&str, &[usize], &[f32])]) -> Result<Vec<u8>> {
    let mut views = Vec::with_capacity(tensors.len());
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, shape, values) in tensors {
        if shape.iter().product::<usize>() != values.len() {
            return Err(LmError::WeightShape {
                path: PathBuf::from("<serialising>"),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: vec![values.len()],
            });
        }
        buffers.push(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
    }
    for ((name, shape, _), bytes) in tensors.iter().zip(&buffers) {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), bytes)
            .map_err(|e| LmError::Safetensors {
                path: PathBuf::from("<serialising>"),
                source: Box::new(e),
            })?;
        views.push((name.to_string(), view));
    }
    safetensors::serialize(views, None).map_err(|e| LmError::Safetensors {
        path: PathBuf::from("<serialising>"),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0200), 2f32.powi(-15));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn half_dtypes_are_widened() {
        let f16_bytes: Vec<u8> = [0x3c00u16, 0xc000]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = [0x3f80u16, 0xc040]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let views = vec![
            (
                "h".to_string(),
                safetensors::tensor::TensorView::new(Dtype::F16, vec![2], &f16_bytes).unwrap(),
            ),
            (
                "b".to_string(),
                safetensors::tensor::TensorView::new(Dtype::BF16, vec![2], &bf16_bytes).unwrap(),
            ),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let mut w = SafetensorsWeights::from_bytes(bytes, "mem").unwrap();
        assert_eq!(w.take_f32("h", &[2]).unwrap(), [1.0, -2.0]);
        assert_eq!(w.take_f32("b", &[2]).unwrap(), [1.0, -3.0]);
        w.finish().unwrap();
    }

    #[test]
    fn key_and_shape_errors_name_the_keys() {
        let bytes = f32_safetensors(&[("a", &[2], &[1.0, 2.0]), ("extra", &[1], &[0.0])]).unwrap();
        let mut w = SafetensorsWeights::from_bytes(bytes, "mem").unwrap();
        match w.check_keys(["a", "b"]) {
            Err(LmError::WeightKeys {
                missing,
                unexpected,
                ..
            }) => {
                assert_eq!(missing, ["b"]);
                assert_eq!(unexpected, ["extra"]);
            }
            other => panic!("expected WeightKeys, got {other:?}"),
        }
        assert!(matches!(
            w.take_f32("a", &[3]),
            Err(LmError::WeightShape { ref name, .. }) if name == "a"
        ));
        assert!(matches!(
            w.take_f32("b", &[2]),
            Err(LmError::WeightNotFound { ref name, .. }) if name == "b"
        ));
        w.ignore("extra");
        w.check_keys(["a"]).unwrap();
        w.take_f32("a", &[2]).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn corrupt_files_are_errors() {
        let bytes = f32_safetensors(&[("a", &[2], &[1.0, 2.0])]).unwrap();
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            assert!(SafetensorsWeights::from_bytes(bytes[..cut].to_vec(), "mem").is_err());
        }
    }
}
