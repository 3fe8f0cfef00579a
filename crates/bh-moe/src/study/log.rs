//! The per-token routing log: columnar Parquet written with polars, plus a JSON sidecar.
//!
//! One row per (sample, token, layer):
//!
//! | column | type | content |
//! |---|---|---|
//! | `sample` | u32 | item index within the dataset slice |
//! | `token` | u32 | position within the sample, in the order tokens were fed |
//! | `layer` | u32 | MoE layer |
//! | `k` | u32 | experts selected |
//! | `experts` | `list<u32>` | the selected experts, descending router logit |
//! | `weights` | `list<f32>` | their combine weights |
//! | `router_logits` | `list<f32>`, nullable | all `E` router logits, for the first tokens of each sample |
//! | `p_values` | `list<f64>`, nullable | BH p-values `1 − F_l(logit_e)` for the same tokens (BH configurations) |
//!
//! Read it with `polars.read_parquet(path)` or `pandas.read_parquet(path)`.

use std::path::Path;

use polars::prelude::*;

use crate::error::{BhMoeError, Result};
use crate::kde::CdfTable;
use crate::routed::RouteRow;

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> BhMoeError {
    BhMoeError::Parquet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Writes `rows` to `path` as Parquet (zstd). `nulls`: the per-layer null distributions, to
/// add p-values beside the logged router logits (BH configurations); `None` leaves the column
/// null.
///
/// # Errors
/// [`BhMoeError::Parquet`] / [`BhMoeError::Io`] naming the file.
pub fn write_routing_parquet(
    path: &Path,
    rows: &[RouteRow],
    nulls: Option<&[CdfTable]>,
) -> Result<u64> {
    let n = rows.len();
    let total: usize = rows.iter().map(|r| r.experts.len()).sum();
    let mut experts = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
        "experts".into(),
        n,
        total,
        DataType::UInt32,
    );
    let mut weights = ListPrimitiveChunkedBuilder::<Float32Type>::new(
        "weights".into(),
        n,
        total,
        DataType::Float32,
    );
    let mut logits = ListPrimitiveChunkedBuilder::<Float32Type>::new(
        "router_logits".into(),
        n,
        0,
        DataType::Float32,
    );
    let mut pvalues =
        ListPrimitiveChunkedBuilder::<Float64Type>::new("p_values".into(), n, 0, DataType::Float64);
    let mut scratch: Vec<u32> = Vec::new();
    let mut pv: Vec<f64> = Vec::new();
    for r in rows {
        scratch.clear();
        scratch.extend(r.experts.iter().map(|&e| u32::from(e)));
        experts.append_slice(&scratch);
        weights.append_slice(&r.weights);
        match &r.logits {
            Some(z) => {
                logits.append_slice(z);
                match nulls.and_then(|t| t.get(r.layer as usize)) {
                    Some(null) => {
                        pv.clear();
                        pv.extend(z.iter().map(|&x| null.sf(f64::from(x))));
                        pvalues.append_slice(&pv);
                    }
                    None => pvalues.append_null(),
                }
            }
            None => {
                logits.append_null();
                pvalues.append_null();
            }
        }
    }
    let col_u32 = |name: &str, f: &dyn Fn(&RouteRow) -> u32| -> Column {
        Series::new(name.into(), rows.iter().map(f).collect::<Vec<u32>>()).into_column()
    };
    let columns = vec![
        col_u32("sample", &|r| r.sample),
        col_u32("token", &|r| r.token),
        col_u32("layer", &|r| u32::from(r.layer)),
        col_u32("k", &|r| r.experts.len() as u32),
        experts.finish().into_series().into_column(),
        weights.finish().into_series().into_column(),
        logits.finish().into_series().into_column(),
        pvalues.finish().into_series().into_column(),
    ];
    let mut df = DataFrame::new(n, columns).map_err(|e| parquet_error(path, e))?;
    let file = std::fs::File::create(path).map_err(|source| BhMoeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| parquet_error(path, e))
}

/// Reads the `k` column (and row count) of a routing log back — for checks and tests.
///
/// # Errors
/// [`BhMoeError::Parquet`] naming the file.
pub fn read_routing_k(path: &Path) -> Result<Vec<u32>> {
    let file = std::fs::File::open(path).map_err(|source| BhMoeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| parquet_error(path, e))?;
    let k = df.column("k").map_err(|e| parquet_error(path, e))?;
    let k = k.u32().map_err(|e| parquet_error(path, e))?;
    Ok(k.into_no_null_iter().collect())
}
