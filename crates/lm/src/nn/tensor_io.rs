//! Moving values between host vectors and burn tensors, with typed errors.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{LmError, Result};

/// Uploads row-major `values` with `shape`.
pub fn upload<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Uploads integer ids as a 1-D int tensor.
pub fn upload_ids(ids: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = ids.len();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

/// Reads a float tensor back as row-major f32 values.
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| LmError::TensorRead {
            detail: format!("{e:?}"),
        })
}

/// Reads an int tensor back as i64 values.
pub fn read_i64<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .try_into_vec_as::<i64>()
        .map_err(|e| LmError::TensorRead {
            detail: format!("{e:?}"),
        })
}
