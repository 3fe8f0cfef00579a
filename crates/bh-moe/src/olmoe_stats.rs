//! Expert-load statistics of the real OLMoE-1B-7B (and Mixtral-8x7B) from the OLMoE paper's
//! routing data (`shared/data/moe_routing_olmoe/expert_counts.csv`: tokens routed to each
//! expert at layers 0, 7 and 15 on six domains, top-k and top-1), with the same load metrics
//! the study computes on its own runs ([`crate::metrics::expert_utilization`],
//! [`crate::metrics::gini`]) — so the testbed's expert usage can be read beside a real MoE's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BhMoeError, Result};
use crate::metrics;

/// Load metrics of one (model, domain, selection, layer) count vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStat {
    /// `olmoe-1b-7b`, `mixtral-8x7b`, …
    pub model: String,
    /// `arxiv`, `book`, `c4`, `github`, `wikipedia`, `tulu`.
    pub domain: String,
    /// `topk_all` (every top-k assignment) or `top1`.
    pub selection: String,
    /// Layer.
    pub layer: usize,
    /// Experts in the layer (the model's expert count).
    pub experts: usize,
    /// Tokens × assignments counted.
    pub total: u64,
    /// Share of experts with any token.
    pub utilization: f64,
    /// Gini coefficient of the counts.
    pub gini: f64,
    /// Largest expert's share of the assignments.
    pub max_share: f64,
}

fn field_error(path: &Path, line: usize, field: &str, reason: impl Into<String>) -> BhMoeError {
    BhMoeError::Field {
        path: path.to_path_buf(),
        field: format!("line {line}: {field}"),
        reason: reason.into(),
    }
}

/// Reads `expert_counts.csv` and computes [`LoadStat`]s. The expert count of a model is its
/// largest expert id + 1 (64 for OLMoE, 8 for Mixtral); experts absent from a layer's rows
/// count as 0.
///
/// # Errors
/// A missing file, a missing column, or a malformed value — naming the file, line and field.
pub fn load_stats(path: &Path) -> Result<Vec<LoadStat>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| BhMoeError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let headers = rdr
        .headers()
        .map_err(|e| field_error(path, 1, "header", e.to_string()))?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| field_error(path, 1, name, "column missing"))
    };
    let (cm, cd, cs, cl, ce, cc) = (
        col("model")?,
        col("domain")?,
        col("selection")?,
        col("layer")?,
        col("expert")?,
        col("count")?,
    );
    type Key = (String, String, String, usize);
    let mut counts: BTreeMap<Key, BTreeMap<usize, u64>> = BTreeMap::new();
    let mut experts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| field_error(path, line, "row", e.to_string()))?;
        let get = |c: usize, name: &str| -> Result<&str> {
            rec.get(c)
                .ok_or_else(|| field_error(path, line, name, "missing"))
        };
        let num = |c: usize, name: &str| -> Result<u64> {
            let v = get(c, name)?;
            v.trim().parse::<u64>().map_err(|_| {
                field_error(
                    path,
                    line,
                    name,
                    format!("`{v}` is not a non-negative integer"),
                )
            })
        };
        let model = get(cm, "model")?.to_string();
        let expert = num(ce, "expert")? as usize;
        let e = experts.entry(model.clone()).or_insert(0);
        *e = (*e).max(expert + 1);
        *counts
            .entry((
                model,
                get(cd, "domain")?.to_string(),
                get(cs, "selection")?.to_string(),
                num(cl, "layer")? as usize,
            ))
            .or_default()
            .entry(expert)
            .or_insert(0) += num(cc, "count")?;
    }
    Ok(counts
        .into_iter()
        .map(|((model, domain, selection, layer), by_expert)| {
            let e = experts[&model];
            let mut v = vec![0u64; e];
            for (x, c) in by_expert {
                v[x] += c;
            }
            let total: u64 = v.iter().sum();
            LoadStat {
                utilization: metrics::expert_utilization(std::slice::from_ref(&v)),
                gini: metrics::gini(&v),
                max_share: v.iter().copied().max().unwrap_or(0) as f64 / total.max(1) as f64,
                model,
                domain,
                selection,
                layer,
                experts: e,
                total,
            }
        })
        .collect())
}

/// `data_dir/moe_routing_olmoe/expert_counts.csv`.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("moe_routing_olmoe/expert_counts.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("olmoe-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.csv");
        std::fs::write(
            &p,
            "model,domain,selection,layer,expert,count\nm,d,topk_all,0,0,3\nm,d,topk_all,0,1,1\nm,d,topk_all,0,3,0\n",
        )
        .unwrap();
        let s = load_stats(&p).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].experts, 4);
        assert_eq!(s[0].utilization, 0.5);
        assert_eq!(s[0].max_share, 0.75);
        // Counts 0, 0, 1, 3: 2(3 + 12)/(4·4) − 5/4 = 30/16 − 20/16 = 0.625.
        assert!((s[0].gini - 0.625).abs() < 1e-12);
        std::fs::write(
            &p,
            "model,domain,selection,layer,expert,count\nm,d,t,0,x,3\n",
        )
        .unwrap();
        let e = load_stats(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("expert"), "{e}");
        std::fs::write(&p, "model,domain,layer,expert,count\n").unwrap();
        assert!(
            load_stats(&p)
                .unwrap_err()
                .to_string()
                .contains("selection")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
