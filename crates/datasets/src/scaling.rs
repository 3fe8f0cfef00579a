//! Scaling-run tables: loaders for published scaling studies and a generic CSV/JSON runs table.
//!
//! | loader | folder | rows |
//! |---|---|---|
//! | [`load_chinchilla_epoch`] | `chinchilla_scaling/svg_extracted_data.csv` | 245 runs digitised by Epoch AI from Hoffmann et al. (2022), Fig. 4 |
//! | [`load_overtraining`] | `scaling_overtraining_gadre2024/` (`runs_summary.csv`, `evals/*.json`, `eval_metadata.csv`) | 104 runs of Gadre et al. (2024) with 8 validation losses and 46 downstream scores |
//! | [`load_pythia_evals`] | `pythia_evals/pythia_v1_zero_shot_long.csv` | 16 Pythia models × 27 checkpoints × tasks (long format) |
//! | [`load_runs_csv`], [`load_runs_json`] | any | one run per row/object, columns named by [`RunColumns`] |
//!
//! The data folder itself is found with [`crate::locate::shared_data_dir`].
//!
//! Units: parameters N, tokens D, compute C in FLOPs, loss in nats/token. When a source gives
//! only two of N, D, C the third follows from C = 6·N·D (Hoffmann et al. 2022, §3).
//!
//! Epoch's CSV holds all 245 digitised points. Five of them — the five highest losses, all at
//! ≈1e19 FLOPs with fewer tokens than parameters — lie far above every other run of their budget.
//! Refitting Approach 3 on all 245 points does not reproduce the estimates Besiroglu et al.
//! (2024) publish (β ≈ 0.45, B ≈ 1.3e4 instead of 0.366 and 2085); without those five it does
//! (E, α, β within 0.5 %). [`EpochChinchillaOptions::default`] therefore drops them, and the
//! [`LoadReport`] lists the dropped rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::csvio::{CsvFile, parse_f64};
use crate::error::{DatasetError, Result};
use crate::outcome::{LoadReport, Loaded};

/// One training run of a scaling study.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScalingRun {
    /// Run identifier (file name, row label, or `line:N`).
    pub name: String,
    /// Family the run belongs to (dataset, optimiser, marker colour, …); may be empty.
    pub group: String,
    /// Parameter count N.
    pub params: f64,
    /// Training tokens D.
    pub tokens: f64,
    /// Training compute C in FLOPs.
    pub flops: f64,
    /// Final loss.
    pub loss: f64,
    /// Any other numeric columns (other losses, downstream scores, hyper-parameters).
    pub extra: BTreeMap<String, f64>,
}

/// `path` if it is a file, else `path/default_name`.
fn resolve(path: &Path, default_name: &str) -> PathBuf {
    if path.is_dir() {
        path.join(default_name)
    } else {
        path.to_path_buf()
    }
}

fn positive(origin: &str, line: u64, field: &str, raw: &str) -> Result<f64> {
    let v = parse_f64(origin, line, field, raw)?;
    if v <= 0.0 {
        return Err(DatasetError::invalid(
            origin,
            line,
            field,
            raw,
            "must be > 0",
        ));
    }
    Ok(v)
}

/// Which of Epoch's digitised Chinchilla points to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochChinchillaOptions {
    /// Drop this many runs with the highest loss (5 reproduces Besiroglu et al. 2024).
    pub drop_highest_loss: usize,
}

impl Default for EpochChinchillaOptions {
    /// Drops the 5 highest-loss outliers, which reproduces Besiroglu et al. (2024).
    fn default() -> Self {
        Self {
            drop_highest_loss: 5,
        }
    }
}

impl EpochChinchillaOptions {
    /// Keeps all 245 points.
    pub fn all() -> Self {
        Self {
            drop_highest_loss: 0,
        }
    }
}

/// Loads Epoch AI's Chinchilla points (`svg_extracted_data.csv`, or the folder holding it).
///
/// Columns: `Model Size` → N, `Training FLOP` → C, `loss`; D = C/(6N) as in Epoch's analysis.
/// `group` is the marker colour; the SVG coordinates `x`, `y` go to `extra`. Names are `row{i}`
/// with i the 0-based data row (the pandas index of Epoch's notebook). The
/// `opts.drop_highest_loss` highest-loss rows are removed and reported.
pub fn load_chinchilla_epoch(
    path: &Path,
    opts: &EpochChinchillaOptions,
) -> Result<Loaded<Vec<ScalingRun>>> {
    let path = resolve(path, "svg_extracted_data.csv");
    let mut csv = CsvFile::open(&path)?;
    let origin = csv.origin().to_string();
    let c_n = csv.column("Model Size")?;
    let c_c = csv.column("Training FLOP")?;
    let c_l = csv.column("loss")?;
    let c_col = csv
        .try_column("hex_color")
        .or_else(|| csv.try_column("color"));
    let c_x = csv.try_column("x");
    let c_y = csv.try_column("y");
    let mut report = LoadReport::new(&origin);
    let mut runs = Vec::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        report.rows_read += 1;
        let params = positive(&origin, line, "Model Size", &rec[c_n])?;
        let flops = positive(&origin, line, "Training FLOP", &rec[c_c])?;
        let loss = positive(&origin, line, "loss", &rec[c_l])?;
        let mut extra = BTreeMap::new();
        for (col, key) in [(c_x, "svg_x"), (c_y, "svg_y")] {
            if let Some(c) = col {
                extra.insert(key.to_string(), parse_f64(&origin, line, key, &rec[c])?);
            }
        }
        runs.push(ScalingRun {
            name: format!("row{}", runs.len()),
            group: c_col.map(|c| rec[c].to_string()).unwrap_or_default(),
            params,
            tokens: flops / (6.0 * params),
            flops,
            loss,
            extra,
        });
    }
    if opts.drop_highest_loss > 0 {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&i, &j| runs[j].loss.total_cmp(&runs[i].loss));
        let mut drop: Vec<usize> = order.into_iter().take(opts.drop_highest_loss).collect();
        drop.sort_unstable();
        for &i in drop.iter().rev() {
            let r = runs.remove(i);
            report.skip(
                "highest-loss outlier (off its IsoFLOP curve)",
                format!("{} (loss {:.3})", r.name, r.loss),
            );
        }
    }
    if runs.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "Chinchilla runs".into(),
        });
    }
    Ok(Loaded { data: runs, report })
}

/// One run of Gadre et al. (2024), "Language models scale reliably with over-training and on
/// downstream tasks".
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OvertrainingRun {
    /// Run name, e.g. `c4_original-d=1024_l=24_h=8-0.25`.
    pub name: String,
    /// Training set: `c4_original`, `rpj` or `rw_original`.
    pub dataset: String,
    /// Architecture, e.g. `d=1024_l=24_h=8` or `open_lm_1b` (taken from the run name).
    pub model_config: String,
    /// Parameters N (with embeddings).
    pub params: f64,
    /// Parameters without embeddings.
    pub params_no_embed: f64,
    /// Training tokens D.
    pub tokens: f64,
    /// Token multiplier M = D / (20 N) ("chinchilla_multiplier"; M = 1 is 20 tokens/param).
    pub multiplier: f64,
    /// Compute 6·N·D.
    pub flops: f64,
    /// Validation losses by evaluation set (e.g. `eval_data/c4_val`, `val_tok_mult/paloma_c4_en`).
    pub losses: BTreeMap<String, f64>,
    /// Downstream accuracies in [0, 1] by task (from `evals/evaluation_<name>_heavy.json`).
    pub downstream: BTreeMap<String, f64>,
}

impl OvertrainingRun {
    /// As a [`ScalingRun`] with loss from evaluation set `loss_key` (e.g. `eval_data/c4_val`).
    pub fn to_scaling_run(&self, loss_key: &str) -> Option<ScalingRun> {
        let loss = *self.losses.get(loss_key)?;
        let mut extra = BTreeMap::new();
        extra.insert("multiplier".to_string(), self.multiplier);
        extra.insert("params_no_embed".to_string(), self.params_no_embed);
        Some(ScalingRun {
            name: self.name.clone(),
            group: self.dataset.clone(),
            params: self.params,
            tokens: self.tokens,
            flops: self.flops,
            loss,
            extra,
        })
    }
}

/// The over-training study: runs plus each task's random-chance accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct OvertrainingStudy {
    /// The 104 runs.
    pub runs: Vec<OvertrainingRun>,
    /// Chance accuracy in [0, 1] by task (`Random baseline` / 100 in `eval_metadata.csv`).
    pub chance: BTreeMap<String, f64>,
}

/// Loads `scaling_overtraining_gadre2024/`: `runs_summary.csv` (one row per model, one
/// `loss:<set>` column per validation set), the matching `evals/evaluation_<name>_heavy.json`
/// downstream scores (field `eval_metrics.icl`), and `eval_metadata.csv` chance levels.
/// Runs without an evals file keep an empty `downstream` map (reported as a skip rule).
pub fn load_overtraining(dir: &Path) -> Result<Loaded<OvertrainingStudy>> {
    let summary = dir.join("runs_summary.csv");
    let mut csv = CsvFile::open(&summary)?;
    let origin = csv.origin().to_string();
    let cols: Vec<usize> = [
        "name",
        "dataset",
        "model_config",
        "params",
        "params_no_embed",
        "tokens",
        "chinchilla_multiplier",
        "flops_6ND",
    ]
    .iter()
    .map(|c| csv.column(c))
    .collect::<Result<_>>()?;
    let loss_cols: Vec<(usize, String)> = csv
        .header()
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("loss:").map(|k| (i, k.to_string())))
        .collect();
    let mut report = LoadReport::new(dir.display().to_string());
    let mut runs = Vec::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        report.rows_read += 1;
        let name = rec[cols[0]].to_string();
        let mut losses = BTreeMap::new();
        for (i, key) in &loss_cols {
            if rec[*i].trim().is_empty() {
                continue;
            }
            losses.insert(key.clone(), positive(&origin, line, key, &rec[*i])?);
        }
        let evals_path = dir
            .join("evals")
            .join(format!("evaluation_{name}_heavy.json"));
        let downstream = if evals_path.is_file() {
            read_downstream(&evals_path)?
        } else {
            report.skip("no downstream evals file", format!("{origin}:{line}"));
            BTreeMap::new()
        };
        let dataset = rec[cols[1]].to_string();
        runs.push(OvertrainingRun {
            model_config: config_from_name(&name, &dataset)
                .unwrap_or_else(|| rec[cols[2]].to_string()),
            dataset,
            params: positive(&origin, line, "params", &rec[cols[3]])?,
            params_no_embed: positive(&origin, line, "params_no_embed", &rec[cols[4]])?,
            tokens: positive(&origin, line, "tokens", &rec[cols[5]])?,
            multiplier: positive(&origin, line, "chinchilla_multiplier", &rec[cols[6]])?,
            flops: positive(&origin, line, "flops_6ND", &rec[cols[7]])?,
            name,
            losses,
            downstream,
        });
    }
    if runs.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "over-training runs".into(),
        });
    }
    let chance = read_chance(&dir.join("eval_metadata.csv"), &mut report)?;
    Ok(Loaded {
        data: OvertrainingStudy { runs, chance },
        report,
    })
}

/// Run names are `{dataset}-{config}-{multiplier}`; the derived `model_config` column is
/// truncated (`open_`) for the `open_lm_1b` / `open_lm_7b` runs, so the name is the source.
fn config_from_name(name: &str, dataset: &str) -> Option<String> {
    let rest = name.strip_prefix(dataset)?.strip_prefix('-')?;
    let (config, _) = rest.rsplit_once('-')?;
    (!config.is_empty()).then(|| config.to_string())
}

fn read_downstream(path: &Path) -> Result<BTreeMap<String, f64>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| DatasetError::Json {
        origin: origin.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let icl = v
        .get("eval_metrics")
        .and_then(|m| m.get("icl"))
        .and_then(|m| m.as_object())
        .ok_or_else(|| DatasetError::Json {
            origin: origin.clone(),
            line: None,
            message: "missing object `eval_metrics.icl`".into(),
        })?;
    let mut out = BTreeMap::new();
    for (task, score) in icl {
        let s = score.as_f64().ok_or_else(|| {
            DatasetError::invalid(&origin, 1, task, score.to_string(), "not a number")
        })?;
        if !s.is_finite() {
            return Err(DatasetError::invalid(
                &origin,
                1,
                task,
                score.to_string(),
                "not finite",
            ));
        }
        out.insert(task.clone(), s);
    }
    Ok(out)
}

/// Chance accuracy by task from `eval_metadata.csv`: a task without a `Random baseline` (a
/// generative task) is counted in `report` as a skip; a repeated task, or a baseline outside
/// 0–100, is an error naming the line.
fn read_chance(path: &Path, report: &mut LoadReport) -> Result<BTreeMap<String, f64>> {
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let c_task = csv.column("Eval Task")?;
    let c_base = csv.column("Random baseline")?;
    let mut out = BTreeMap::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        let raw = rec[c_base].trim();
        let task = rec[c_task].to_string();
        if raw.is_empty() {
            report.skip(
                "task without a random baseline (no chance level)",
                format!("{origin}:{line} ({task})"),
            );
            continue;
        }
        let v = parse_f64(&origin, line, "Random baseline", raw)?;
        if !(0.0..=100.0).contains(&v) {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "Random baseline",
                raw,
                "not a percentage in 0–100",
            ));
        }
        if out.insert(task.clone(), v / 100.0).is_some() {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "Eval Task",
                &task,
                "listed twice",
            ));
        }
    }
    Ok(out)
}

/// One (model, checkpoint, task, metric) value of the Pythia zero-shot evaluations.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PythiaEval {
    /// Model name, e.g. `pythia-1.4b-deduped`.
    pub model: String,
    /// Training step of the checkpoint.
    pub step: u64,
    /// Tokens seen at the checkpoint (step × 2 097 152).
    pub tokens_seen: f64,
    /// Task, e.g. `lambada_openai`, `arc_easy`, `hendrycksTest-anatomy`.
    pub task: String,
    /// Metric: `acc`, `acc_norm` or `ppl`.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// Standard error (`None` where the source leaves it empty).
    pub stderr: Option<f64>,
}

/// Total parameter count of a Pythia model (Biderman et al. 2023, Table 1), from its name
/// (`pythia-410m`, `pythia-1b-bf16`, `pythia-6.9b-deduped`, …).
pub fn pythia_params(model: &str) -> Option<f64> {
    let size = model.strip_prefix("pythia-")?.split('-').next()?;
    Some(match size {
        "70m" => 70_426_624.0,
        "160m" => 162_322_944.0,
        "410m" => 405_334_016.0,
        "1b" => 1_011_781_632.0,
        "1.4b" => 1_414_647_808.0,
        "2.8b" => 2_775_208_960.0,
        "6.9b" => 6_857_302_016.0,
        "12b" => 11_846_072_320.0,
        _ => return None,
    })
}

/// Loads `pythia_v1_zero_shot_long.csv` (or the folder holding it).
pub fn load_pythia_evals(path: &Path) -> Result<Loaded<Vec<PythiaEval>>> {
    let path = resolve(path, "pythia_v1_zero_shot_long.csv");
    let mut csv = CsvFile::open(&path)?;
    let origin = csv.origin().to_string();
    let c: Vec<usize> = [
        "model",
        "step",
        "tokens_seen",
        "task",
        "metric",
        "value",
        "stderr",
    ]
    .iter()
    .map(|n| csv.column(n))
    .collect::<Result<_>>()?;
    let mut report = LoadReport::new(&origin);
    let mut out = Vec::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        report.rows_read += 1;
        let step = rec[c[1]].trim().parse::<u64>().map_err(|_| {
            DatasetError::invalid(&origin, line, "step", &rec[c[1]], "not an integer")
        })?;
        let stderr = if rec[c[6]].trim().is_empty() {
            None
        } else {
            Some(parse_f64(&origin, line, "stderr", &rec[c[6]])?)
        };
        out.push(PythiaEval {
            model: rec[c[0]].to_string(),
            step,
            tokens_seen: parse_f64(&origin, line, "tokens_seen", &rec[c[2]])?,
            task: rec[c[3]].to_string(),
            metric: rec[c[4]].to_string(),
            value: parse_f64(&origin, line, "value", &rec[c[5]])?,
            stderr,
        });
    }
    if out.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "Pythia evaluations".into(),
        });
    }
    Ok(Loaded { data: out, report })
}

/// Column names of a generic runs table. At least two of `params`, `tokens`, `flops` must be
/// given; the third is derived from C = 6·N·D.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunColumns {
    /// Run-name column (optional; defaults to `line:N` / `item:N`).
    pub name: Option<String>,
    /// Group column (optional).
    pub group: Option<String>,
    /// Parameter-count column.
    pub params: Option<String>,
    /// Token-count column.
    pub tokens: Option<String>,
    /// Compute column (FLOPs).
    pub flops: Option<String>,
    /// Loss column.
    pub loss: String,
}

impl Default for RunColumns {
    /// `name`, `group`, `params`, `tokens`, `flops`, `loss`.
    fn default() -> Self {
        Self {
            name: Some("name".into()),
            group: Some("group".into()),
            params: Some("params".into()),
            tokens: Some("tokens".into()),
            flops: Some("flops".into()),
            loss: "loss".into(),
        }
    }
}

impl RunColumns {
    fn check(&self) -> Result<()> {
        let given = [&self.params, &self.tokens, &self.flops]
            .iter()
            .filter(|c| c.is_some())
            .count();
        if given < 2 {
            return Err(DatasetError::config(
                "RunColumns",
                "need at least two of params, tokens, flops",
            ));
        }
        Ok(())
    }
}

/// Fills in the missing one of (N, D, C) from C = 6ND and validates positivity.
fn complete(
    origin: &str,
    line: u64,
    n: Option<f64>,
    d: Option<f64>,
    c: Option<f64>,
) -> Result<(f64, f64, f64)> {
    let (n, d, c) = match (n, d, c) {
        (Some(n), Some(d), Some(c)) => (n, d, c),
        (Some(n), Some(d), None) => (n, d, 6.0 * n * d),
        (Some(n), None, Some(c)) => (n, c / (6.0 * n), c),
        (None, Some(d), Some(c)) => (c / (6.0 * d), d, c),
        _ => {
            return Err(DatasetError::invalid(
                origin,
                line,
                "params/tokens/flops",
                "",
                "need at least two of params, tokens, flops",
            ));
        }
    };
    for (field, v) in [("params", n), ("tokens", d), ("flops", c)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(DatasetError::invalid(
                origin,
                line,
                field,
                v.to_string(),
                "must be > 0",
            ));
        }
    }
    Ok((n, d, c))
}

/// Loads a CSV runs table. Rows with an empty loss cell are skipped (and reported); every other
/// numeric column goes to `extra`.
pub fn load_runs_csv(path: &Path, cols: &RunColumns) -> Result<Loaded<Vec<ScalingRun>>> {
    cols.check()?;
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let opt = |c: &Option<String>, csv: &CsvFile| -> Result<Option<usize>> {
        c.as_deref().map(|name| csv.column(name)).transpose()
    };
    let c_name = cols.name.as_deref().and_then(|n| csv.try_column(n));
    let c_group = cols.group.as_deref().and_then(|n| csv.try_column(n));
    let c_n = opt(&cols.params, &csv)?;
    let c_d = opt(&cols.tokens, &csv)?;
    let c_c = opt(&cols.flops, &csv)?;
    let c_l = csv.column(&cols.loss)?;
    let used: Vec<usize> = [c_name, c_group, c_n, c_d, c_c, Some(c_l)]
        .into_iter()
        .flatten()
        .collect();
    let header = csv.header().to_vec();
    let mut report = LoadReport::new(&origin);
    let mut runs = Vec::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        report.rows_read += 1;
        if rec[c_l].trim().is_empty() {
            report.skip("empty loss cell", format!("{origin}:{line}"));
            continue;
        }
        let get = |c: Option<usize>, f: &str| -> Result<Option<f64>> {
            c.map(|i| parse_f64(&origin, line, f, &rec[i])).transpose()
        };
        let (params, tokens, flops) = complete(
            &origin,
            line,
            get(c_n, "params")?,
            get(c_d, "tokens")?,
            get(c_c, "flops")?,
        )?;
        let loss = positive(&origin, line, &cols.loss, &rec[c_l])?;
        let mut extra = BTreeMap::new();
        for (i, h) in header.iter().enumerate() {
            if used.contains(&i) {
                continue;
            }
            if let Ok(v) = rec[i].trim().parse::<f64>()
                && v.is_finite()
            {
                extra.insert(h.clone(), v);
            }
        }
        runs.push(ScalingRun {
            name: c_name.map_or_else(|| format!("line:{line}"), |i| rec[i].to_string()),
            group: c_group.map(|i| rec[i].to_string()).unwrap_or_default(),
            params,
            tokens,
            flops,
            loss,
            extra,
        });
    }
    if runs.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "runs table".into(),
        });
    }
    Ok(Loaded { data: runs, report })
}

/// Loads a JSON runs table: an array of objects keyed as in `cols`. Objects with a missing or
/// null loss are skipped (and reported); other numeric keys go to `extra`.
pub fn load_runs_json(path: &Path, cols: &RunColumns) -> Result<Loaded<Vec<ScalingRun>>> {
    cols.check()?;
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| DatasetError::Json {
        origin: origin.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let items = v.as_array().ok_or_else(|| DatasetError::Json {
        origin: origin.clone(),
        line: None,
        message: "expected a JSON array of run objects".into(),
    })?;
    let mut report = LoadReport::new(&origin);
    let mut runs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let line = i as u64 + 1;
        report.rows_read += 1;
        let obj = item.as_object().ok_or_else(|| DatasetError::Json {
            origin: origin.clone(),
            line: Some(line),
            message: "expected an object".into(),
        })?;
        let num = |key: &Option<String>| -> Result<Option<f64>> {
            let Some(k) = key else { return Ok(None) };
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x.as_f64().map(Some).ok_or_else(|| {
                    DatasetError::invalid(&origin, line, k, x.to_string(), "not a number")
                }),
            }
        };
        let Some(loss) = num(&Some(cols.loss.clone()))? else {
            report.skip("missing loss", format!("{origin}:item {line}"));
            continue;
        };
        if !(loss.is_finite() && loss > 0.0) {
            return Err(DatasetError::invalid(
                &origin,
                line,
                &cols.loss,
                loss.to_string(),
                "must be > 0",
            ));
        }
        let (params, tokens, flops) = complete(
            &origin,
            line,
            num(&cols.params)?,
            num(&cols.tokens)?,
            num(&cols.flops)?,
        )?;
        let text_of = |key: &Option<String>| {
            key.as_ref()
                .and_then(|k| obj.get(k))
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
        };
        let used: Vec<&str> = [
            &cols.name,
            &cols.group,
            &cols.params,
            &cols.tokens,
            &cols.flops,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain([cols.loss.as_str()])
        .collect();
        let extra = obj
            .iter()
            .filter(|(k, _)| !used.contains(&k.as_str()))
            .filter_map(|(k, x)| x.as_f64().filter(|f| f.is_finite()).map(|f| (k.clone(), f)))
            .collect();
        runs.push(ScalingRun {
            name: text_of(&cols.name).unwrap_or_else(|| format!("item:{line}")),
            group: text_of(&cols.group).unwrap_or_default(),
            params,
            tokens,
            flops,
            loss,
            extra,
        });
    }
    if runs.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "runs table".into(),
        });
    }
    Ok(Loaded { data: runs, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_levels_count_gaps_and_refuse_repeats_and_non_percentages() {
        let dir = std::env::temp_dir().join(format!("chance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eval_metadata.csv");
        let read = |body: &str| {
            std::fs::write(&path, body).unwrap();
            let mut report = LoadReport::new("t");
            read_chance(&path, &mut report).map(|c| (c, report.total_skipped()))
        };
        let (c, skipped) =
            read("Eval Task,Random baseline\nmmlu,25\nsquad,\nhellaswag,25\n").unwrap();
        assert_eq!((c.len(), skipped), (2, 1));
        assert_eq!(c["mmlu"], 0.25);
        let e = read("Eval Task,Random baseline\nmmlu,25\nmmlu,20\n").unwrap_err();
        assert!(e.to_string().contains(":3"), "{e}");
        let e = read("Eval Task,Random baseline\nmmlu,0.25e3\n").unwrap_err();
        assert!(e.to_string().contains("Random baseline"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
