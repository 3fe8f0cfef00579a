//! The workspace's own interchange formats: a wide outcome-table CSV and a router-score CSV.
//!
//! **Outcome table CSV** — one row per prompt:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `id` | yes | unique prompt id |
//! | `text`, `split`, `group` | no | prompt text, split label, group label |
//! | `cost:<model>` | no (all or none) | per-prompt cost of `<model>` |
//! | any other column | ≥ 1 | a model's score in `[0, 1]` |
//!
//! A table whose scores are all 0/1 loads as [`ScoreKind::Binary`], otherwise as graded.
//!
//! **Router score CSV** — `id,score`: one finite score per prompt id, as written by an
//! external router so that `evals` can score it against the oracle and random baselines.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use crate::csvio::{CsvFile, parse_f64};
use crate::error::{DatasetError, Result};
use crate::outcome::{OutcomeTable, PromptMeta, ScoreKind};

const META: [&str; 4] = ["id", "text", "split", "group"];

/// Loads an outcome table from the wide CSV format described in the module docs.
pub fn load_outcome_csv(path: &Path) -> Result<OutcomeTable> {
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let id_col = csv.column("id")?;
    let text_col = csv.try_column("text");
    let split_col = csv.try_column("split");
    let group_col = csv.try_column("group");
    let header = csv.header().to_vec();
    let model_cols: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| !META.contains(&h.as_str()) && !h.starts_with("cost:"))
        .map(|(i, h)| (i, h.clone()))
        .collect();
    if model_cols.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "set of model columns (every column is id/text/split/group/cost:*)".into(),
        });
    }
    // A cost column must name a model column (a typo would otherwise drop its costs).
    if let Some(stray) = header.iter().find(|h| {
        h.strip_prefix("cost:")
            .is_some_and(|m| !model_cols.iter().any(|(_, name)| name == m))
    }) {
        return Err(DatasetError::invalid(
            &origin,
            1,
            "header",
            stray,
            "a cost column whose model has no score column",
        ));
    }
    let cost_cols: Vec<Option<usize>> = model_cols
        .iter()
        .map(|(_, m)| csv.try_column(&format!("cost:{m}")))
        .collect();
    let n_cost = cost_cols.iter().flatten().count();
    if n_cost != 0 && n_cost != model_cols.len() {
        let missing: Vec<&str> = model_cols
            .iter()
            .zip(&cost_cols)
            .filter(|(_, c)| c.is_none())
            .map(|((_, m), _)| m.as_str())
            .collect();
        return Err(DatasetError::MissingColumn {
            origin,
            column: format!("cost:{}", missing[0]),
            available: header.join(", "),
        });
    }
    let mut prompts = Vec::new();
    let mut scores = Vec::new();
    let mut costs = Vec::new();
    let mut seen = HashSet::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        let id = rec.get(id_col).unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "id",
                "",
                "empty prompt id",
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(DatasetError::DuplicatePrompt {
                origin,
                id,
                line: Some(line),
            });
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        prompts.push(PromptMeta {
            id,
            text: get(text_col),
            split: get(split_col),
            group: get(group_col),
        });
        for ((c, m), cc) in model_cols.iter().zip(&cost_cols) {
            let raw = rec.get(*c).unwrap_or_default();
            let s = parse_f64(&origin, line, m, raw)?;
            if !(0.0..=1.0).contains(&s) {
                return Err(DatasetError::invalid(
                    &origin,
                    line,
                    m,
                    raw,
                    "score outside [0, 1]",
                ));
            }
            scores.push(s);
            if let Some(cc) = cc {
                let field = format!("cost:{m}");
                let raw = rec.get(*cc).unwrap_or_default();
                let v = parse_f64(&origin, line, &field, raw)?;
                if v < 0.0 {
                    return Err(DatasetError::invalid(
                        &origin,
                        line,
                        &field,
                        raw,
                        "negative cost",
                    ));
                }
                costs.push(v);
            }
        }
    }
    let kind = if scores.iter().all(|&s| s == 0.0 || s == 1.0) {
        ScoreKind::Binary
    } else {
        ScoreKind::Graded
    };
    OutcomeTable::new(
        origin,
        kind,
        model_cols.into_iter().map(|(_, m)| m).collect(),
        prompts,
        scores,
        (n_cost > 0).then_some(costs),
    )
}

/// Writes a table in the wide CSV format (round-trips through [`load_outcome_csv`]).
pub fn write_outcome_csv(table: &OutcomeTable, path: &Path) -> Result<()> {
    let io = |e: std::io::Error| DatasetError::io(path, e);
    let csv_err = |e: csv::Error| DatasetError::io(path, std::io::Error::other(e));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut header: Vec<String> = META.iter().map(|s| s.to_string()).collect();
    header.extend(table.models().iter().cloned());
    if table.has_costs() {
        header.extend(table.models().iter().map(|m| format!("cost:{m}")));
    }
    w.write_record(&header).map_err(csv_err)?;
    for (p, meta) in table.prompts().iter().enumerate() {
        let mut row = vec![
            meta.id.clone(),
            meta.text.clone().unwrap_or_default(),
            meta.split.clone().unwrap_or_default(),
            meta.group.clone().unwrap_or_default(),
        ];
        row.extend(table.scores_of(p).iter().map(|s| s.to_string()));
        if let Some(c) = table.costs_of(p) {
            row.extend(c.iter().map(|s| s.to_string()));
        }
        w.write_record(&row).map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| DatasetError::io(path, std::io::Error::other(e.to_string())))?
        .flush()
        .map_err(io)
}

/// Loads `id,score` router scores; ids must be unique and scores finite.
pub fn load_scores_csv(path: &Path) -> Result<Vec<(String, f64)>> {
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let (id_col, score_col) = (csv.column("id")?, csv.column("score")?);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        let id = rec.get(id_col).unwrap_or_default().to_string();
        if !seen.insert(id.clone()) {
            return Err(DatasetError::DuplicatePrompt {
                origin,
                id,
                line: Some(line),
            });
        }
        let s = parse_f64(
            &origin,
            line,
            "score",
            rec.get(score_col).unwrap_or_default(),
        )?;
        out.push((id, s));
    }
    if out.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "score list".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("generic-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn round_trips_with_costs() {
        let p = tmp(
            "t.csv",
            "id,split,weak,strong,cost:weak,cost:strong\na,train,0,1,1,10\nb,test,1,1,1,10\n",
        );
        let t = load_outcome_csv(&p).unwrap();
        assert_eq!(t.kind(), ScoreKind::Binary);
        assert_eq!(t.mean_cost(1), Some(10.0));
        let out = p.with_file_name("out.csv");
        write_outcome_csv(&t, &out).unwrap();
        let back = load_outcome_csv(&out).unwrap();
        assert_eq!(back.score_matrix(), t.score_matrix());
        assert_eq!(back.cost_matrix(), t.cost_matrix());
        assert_eq!(back.prompts()[1].split.as_deref(), Some("test"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let p = tmp("bad.csv", "id,m1,m2\na,0.5,0.2\nb,0.5,1.7\n");
        let e = load_outcome_csv(&p).unwrap_err().to_string();
        assert!(e.contains("bad.csv:3") && e.contains("m2"), "{e}");
        let p = tmp("nan.csv", "id,m1\na,NaN\n");
        assert!(
            load_outcome_csv(&p)
                .unwrap_err()
                .to_string()
                .contains("nan.csv:2")
        );
        let p = tmp("cost.csv", "id,m1,m2,cost:m1\na,0,1,3\n");
        assert!(
            load_outcome_csv(&p)
                .unwrap_err()
                .to_string()
                .contains("cost:m2")
        );
        // A cost column for a model that has no score column (a typo) is not ignored.
        let p = tmp("stray.csv", "id,m1,cost:m_1\na,0,3\n");
        let e = load_outcome_csv(&p).unwrap_err().to_string();
        assert!(e.contains("stray.csv") && e.contains("cost:m_1"), "{e}");
        let p = tmp("dup.csv", "id,score\na,0.1\na,0.2\n");
        assert!(
            load_scores_csv(&p)
                .unwrap_err()
                .to_string()
                .contains("line 3")
        );
    }
}
