//! RouterBench zero-shot slices (11 models, 0/1 correctness and per-prompt cost in USD).
//!
//! Source: `shuhao02/RouterDC` `datasets/routerbench_zs/{slice}_{train,test}.csv`, the
//! RouterBench 0-shot data re-split by the RouterDC authors (see
//! `routerbench_routerdc/SOURCE.md`). Columns: an unnamed pandas index (empty header name,
//! ignored), `sample_id`, `prompt` (often multi-line quoted text), `eval_name`, one 0/1
//! performance column per model, `<model>|model_response`, `<model>|total_cost`,
//! `oracle_model_to_route_to`.
//!
//! The model list is read from the header: every column `c` for which a column
//! `c|total_cost` exists, in header order. Scores are the performance cells
//! ([`ScoreKind::Binary`]); costs are the `|total_cost` cells.
//!
//! **Empty performance cells.** In the ARC-Challenge slice, 14 `sample_id`s occur twice
//! (28 rows): one row holds only `gpt-3.5-turbo-1106`'s result (evaluated on a prompt string
//! with a doubled list entry, at about twice the cost) and the other row holds the other ten
//! models' results. SOURCE.md's "14 rows" counts ids, not rows; six of the pairs straddle the
//! train/test split. [`FragmentPolicy`] chooses what to do with such rows:
//! * [`FragmentPolicy::Skip`] (default): every row with an empty performance cell is skipped
//!   under [`RULE_EMPTY_CELL`] (ARC-C: 28 rows skipped, 1,456 prompts left);
//! * [`FragmentPolicy::Merge`]: rows sharing a `sample_id` whose non-empty cells are
//!   disjoint and together complete are merged into one prompt (each model's score and cost
//!   come from the row holding its score; text and split from the row holding most scores);
//!   the absorbed rows are counted under [`RULE_MERGED`]. ARC-C then has 1,470 prompts and
//!   per-model accuracies equal to the per-column means over non-empty cells.
//!
//! Either way, rows still incomplete are skipped under [`RULE_EMPTY_CELL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::csvio::{CsvFile, parse_binary, parse_f64};
use crate::error::{DatasetError, Result};
use crate::outcome::{LoadReport, Loaded, OutcomeTable, PromptMeta, ScoreKind};

/// The slices present in the shared data (`<slice>_{train,test}.csv`).
pub const ROUTERBENCH_SLICES: [&str; 3] = ["arc_challenge", "mbpp", "winograde"];
/// Skip rule for rows with an empty performance cell.
pub const RULE_EMPTY_CELL: &str = "empty performance cell";
/// Skip rule for rows absorbed into another row with the same `sample_id` (merge policy).
pub const RULE_MERGED: &str = "fragment merged into the first row with the same sample_id";

/// What to do with rows whose performance cells are partly empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FragmentPolicy {
    /// Skip every row with an empty performance cell.
    #[default]
    Skip,
    /// Merge complementary rows that share a `sample_id`; skip what stays incomplete.
    Merge,
}

/// Options of the RouterBench loader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterBenchOptions {
    /// Handling of rows with empty performance cells.
    pub fragments: FragmentPolicy,
}

/// Loads one RouterBench slice (`"arc_challenge"`, `"mbpp"` or `"winograde"`), train and
/// test files together, with the default options ([`FragmentPolicy::Skip`]).
///
/// `dir` is the `routerbench_zs` folder (or its parent, `routerbench_routerdc`). Prompt ids
/// are the `sample_id`s, the text is `prompt`, the group is `eval_name`, and the split is
/// `train`/`test` from the file name. Train rows come first.
pub fn load_routerbench_slice(dir: &Path, slice: &str) -> Result<Loaded<OutcomeTable>> {
    load_routerbench_slice_with(dir, slice, &RouterBenchOptions::default())
}

/// [`load_routerbench_slice`] with explicit options.
pub fn load_routerbench_slice_with(
    dir: &Path,
    slice: &str,
    opts: &RouterBenchOptions,
) -> Result<Loaded<OutcomeTable>> {
    let base = if dir.join("routerbench_zs").is_dir() {
        dir.join("routerbench_zs")
    } else {
        dir.to_path_buf()
    };
    let files: Vec<(PathBuf, &str)> = ["train", "test"]
        .iter()
        .map(|s| (base.join(format!("{slice}_{s}.csv")), *s))
        .collect();
    let refs: Vec<(&Path, Option<&str>)> =
        files.iter().map(|(p, s)| (p.as_path(), Some(*s))).collect();
    let mut loaded = load_routerbench_files(&refs, opts)?;
    loaded.report.origin = base
        .join(format!("{slice}_{{train,test}}.csv"))
        .display()
        .to_string();
    loaded.data = loaded.data.with_name(format!("routerbench-{slice}"));
    Ok(loaded)
}

/// Loads RouterBench-format CSV files (same model columns in each) into one table. Each
/// file comes with the split label given to its rows (`None`: no split).
pub fn load_routerbench_files(
    files: &[(&Path, Option<&str>)],
    opts: &RouterBenchOptions,
) -> Result<Loaded<OutcomeTable>> {
    let origin = files
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let mut report = LoadReport::new(origin.clone());
    let mut models: Option<(Vec<String>, String)> = None;
    let mut rows: Vec<Row> = Vec::new();
    for (path, split) in files {
        let (file_models, file_rows) = read_file(path, *split)?;
        match &models {
            None => models = Some((file_models, path.display().to_string())),
            Some((first, first_path)) if *first != file_models => {
                return Err(DatasetError::PromptSetMismatch {
                    origin,
                    details: format!(
                        "model columns of {} ({}) differ from those of {first_path} ({})",
                        path.display(),
                        file_models.join(", "),
                        first.join(", ")
                    ),
                });
            }
            Some(_) => {}
        }
        report.rows_read += file_rows.len();
        rows.extend(file_rows);
    }
    let Some((models, _)) = models else {
        return Err(DatasetError::Empty {
            origin,
            what: "list of files".into(),
        });
    };
    let rows = match opts.fragments {
        FragmentPolicy::Skip => rows,
        FragmentPolicy::Merge => merge_fragments(rows, &mut report)?,
    };
    let k = models.len();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut prompts = Vec::new();
    let mut scores = Vec::new();
    let mut costs = Vec::new();
    for row in rows {
        if row.perf.iter().any(Option::is_none) {
            report.skip(
                RULE_EMPTY_CELL,
                format!("{} ({}:{})", row.meta.id, row.origin, row.line),
            );
            continue;
        }
        let here = format!("{}:{}", row.origin, row.line);
        if let Some(first) = seen.insert(row.meta.id.clone(), here) {
            return Err(DatasetError::DuplicatePrompt {
                origin: row.origin,
                id: format!("{} (first seen at {first})", row.meta.id),
                line: Some(row.line),
            });
        }
        scores.extend(row.perf.iter().map(|p| p.unwrap_or(0.0)));
        costs.extend(row.cost.iter().map(|c| c.unwrap_or(0.0)));
        debug_assert_eq!(row.perf.len(), k);
        prompts.push(row.meta);
    }
    let table = OutcomeTable::new(
        "routerbench",
        ScoreKind::Binary,
        models,
        prompts,
        scores,
        Some(costs),
    )?;
    Ok(Loaded {
        data: table,
        report,
    })
}

/// One parsed CSV row; `perf[m]` is `None` when the performance cell is empty.
struct Row {
    meta: PromptMeta,
    perf: Vec<Option<f64>>,
    cost: Vec<Option<f64>>,
    origin: String,
    line: u64,
}

/// Reads one file: its model list (header order) and rows.
fn read_file(path: &Path, split: Option<&str>) -> Result<(Vec<String>, Vec<Row>)> {
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let c_id = csv.column("sample_id")?;
    let c_prompt = csv.column("prompt")?;
    let c_group = csv.try_column("eval_name");
    let header = csv.header().to_vec();
    let mut models = Vec::new();
    let mut perf_cols = Vec::new();
    let mut cost_cols = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() || h.contains('|') {
            continue;
        }
        if let Some(c) = csv.try_column(&format!("{h}|total_cost")) {
            models.push(h.clone());
            perf_cols.push(i);
            cost_cols.push(c);
        }
    }
    if models.is_empty() {
        return Err(DatasetError::MissingColumn {
            origin,
            column: "<model> with a matching <model>|total_cost".into(),
            available: header.join(", "),
        });
    }
    // A model named by a `<model>|…` column must have its score and its cost: otherwise it
    // would silently drop out of the model list.
    for h in &header {
        let Some((model, _)) = h.split_once('|') else {
            continue;
        };
        for needed in [model.to_string(), format!("{model}|total_cost")] {
            if csv.try_column(&needed).is_none() {
                return Err(DatasetError::MissingColumn {
                    origin,
                    column: format!("{needed} (column {h} names model {model})"),
                    available: header.join(", "),
                });
            }
        }
    }
    let mut rows = Vec::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let id = cell(c_id).trim();
        if id.is_empty() {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "sample_id",
                "",
                "empty sample id",
            ));
        }
        let mut meta = PromptMeta::new(id).with_text(cell(c_prompt));
        if let Some(s) = split {
            meta = meta.with_split(s);
        }
        if let Some(g) = c_group.map(cell).filter(|g| !g.is_empty()) {
            meta = meta.with_group(g);
        }
        let mut perf = Vec::with_capacity(models.len());
        let mut cost = Vec::with_capacity(models.len());
        for (m, name) in models.iter().enumerate() {
            let raw = cell(perf_cols[m]);
            if raw.trim().is_empty() {
                perf.push(None);
                cost.push(None);
                continue;
            }
            perf.push(Some(parse_binary(&origin, line, name, raw)?));
            let field = format!("{name}|total_cost");
            let c = parse_f64(&origin, line, &field, cell(cost_cols[m]))?;
            if c < 0.0 {
                return Err(DatasetError::invalid(
                    &origin,
                    line,
                    field,
                    cell(cost_cols[m]),
                    "negative cost",
                ));
            }
            cost.push(Some(c));
        }
        rows.push(Row {
            meta,
            perf,
            cost,
            origin: origin.clone(),
            line,
        });
    }
    Ok((models, rows))
}

/// Merges incomplete rows that share a sample id (see the module docs). Complete rows pass
/// through unchanged; merged prompts take the position of their first fragment.
fn merge_fragments(rows: Vec<Row>, report: &mut LoadReport) -> Result<Vec<Row>> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.perf.iter().any(Option::is_none) {
            groups.entry(r.meta.id.clone()).or_default().push(i);
        }
    }
    let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
    let mut leaders: Vec<usize> = groups.values().map(|g| g[0]).collect();
    leaders.sort_unstable();
    for lead in leaders {
        let Some(id) = slots[lead].as_ref().map(|r| r.meta.id.clone()) else {
            continue;
        };
        let members = groups.get(&id).cloned().unwrap_or_default();
        if members.len() < 2 {
            continue;
        }
        let frags: Vec<&Row> = members.iter().filter_map(|&i| slots[i].as_ref()).collect();
        let (Some(first), Some(second)) = (frags.first(), frags.get(1)) else {
            continue;
        };
        let k = first.perf.len();
        let mut perf = vec![None; k];
        let mut cost = vec![None; k];
        let mut overlap = false;
        for f in &frags {
            for m in 0..k.min(f.perf.len()) {
                if f.perf[m].is_some() {
                    overlap |= perf[m].is_some();
                    perf[m] = f.perf[m];
                    cost[m] = f.cost[m];
                }
            }
        }
        if overlap {
            return Err(DatasetError::DuplicatePrompt {
                origin: second.origin.clone(),
                id: format!("{id} (fragments hold scores for the same model)"),
                line: Some(second.line),
            });
        }
        if perf.iter().any(Option::is_none) {
            continue; // stays incomplete: each fragment is skipped later under RULE_EMPTY_CELL
        }
        let richest = members
            .iter()
            .copied()
            .max_by_key(|&i| {
                let n = slots[i]
                    .as_ref()
                    .map_or(0, |r| r.perf.iter().filter(|p| p.is_some()).count());
                // prefer the earliest row among equals
                (n, std::cmp::Reverse(i))
            })
            .unwrap_or(lead);
        let meta = slots[richest]
            .as_ref()
            .map(|r| r.meta.clone())
            .unwrap_or_else(|| PromptMeta::new(id.clone()));
        for &i in &members {
            if i != lead
                && let Some(r) = slots[i].take()
            {
                report.skip(RULE_MERGED, format!("{id} ({}:{})", r.origin, r.line));
            }
        }
        if let Some(r) = slots[lead].as_mut() {
            r.meta = meta;
            r.perf = perf;
            r.cost = cost;
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("routerbench-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    const HEADER: &str = ",sample_id,prompt,eval_name,a,b,a|model_response,b|model_response,a|total_cost,b|total_cost,oracle_model_to_route_to\n";

    #[test]
    fn merges_complementary_fragments() {
        let p = write(
            "frag.csv",
            &format!(
                "{HEADER}0,x.1,\"long\nlong\",t,,1.0,r,r,0.2,0.1,b\n1,x.2,q,t,0.0,1.0,r,r,0.1,0.1,b\n2,x.1,short,t,1.0,,r,r,0.1,0.2,a\n"
            ),
        );
        let files = [(p.as_path(), Some("train"))];
        let skip = load_routerbench_files(&files, &RouterBenchOptions::default()).unwrap();
        assert_eq!(skip.data.n_prompts(), 1);
        assert_eq!(skip.report.total_skipped(), 2);
        let merge = load_routerbench_files(
            &files,
            &RouterBenchOptions {
                fragments: FragmentPolicy::Merge,
            },
        )
        .unwrap();
        let t = merge.data;
        assert_eq!(t.n_prompts(), 2);
        assert_eq!(t.prompts()[0].id, "x.1");
        assert_eq!(t.scores_of(0), &[1.0, 1.0]);
        assert_eq!(t.costs_of(0), Some(&[0.1, 0.1][..]));
        // on ties the earliest fragment's metadata wins
        assert_eq!(t.prompts()[0].text.as_deref(), Some("long\nlong"));
        assert_eq!(merge.report.skipped[0].rule, RULE_MERGED);
    }

    #[test]
    fn a_model_missing_its_score_or_cost_column_is_an_error_naming_it() {
        // `b` has a response column but no cost column; `c` a cost column but no score column.
        for (header, missing) in [
            (
                ",sample_id,prompt,a,b,a|model_response,b|model_response,a|total_cost\n",
                "b|total_cost",
            ),
            (
                ",sample_id,prompt,a,a|total_cost,c|total_cost\n",
                "c (column c|total_cost",
            ),
        ] {
            let p = write("cols.csv", &format!("{header}0,x.1,q,1.0,1.0,r,r,0.1\n"));
            let e = load_routerbench_files(&[(p.as_path(), None)], &RouterBenchOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("cols.csv") && e.contains(missing), "{e}");
        }
    }

    #[test]
    fn duplicate_complete_rows_are_an_error() {
        let p = write(
            "dup.csv",
            &format!("{HEADER}0,x.1,q,t,1.0,1.0,r,r,0.1,0.1,a\n1,x.1,q,t,1.0,0.0,r,r,0.1,0.1,a\n"),
        );
        let e = load_routerbench_files(&[(p.as_path(), None)], &RouterBenchOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dup.csv") && e.contains("x.1") && e.contains("line 3"),
            "{e}"
        );
    }
}
