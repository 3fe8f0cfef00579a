//! A query router trained on the workspace's own benchmark outcomes: which of two local models
//! should answer an item, learned from the per-sample files `lm_eval` wrote for each of them.
//!
//! The protocol is RouteLLM's (Ong et al. 2024, §4.2), on our data instead of Chatbot Arena's:
//! 1. the two models' `samples_<task>.jsonl` folders become one outcome table (items both
//!    models scored; 1 = correct), each item's text being the context the models read;
//! 2. a seeded random split (train / validation / test; repeated texts kept in one part);
//! 3. golden-label battles from the training part (the strong model "wins" an item only it
//!    gets right; ties — both right or both wrong — dropped or counted ½), an MF router trained
//!    on them with MiniLM (or any [`TextEmbedder`]) embeddings, early-stopped on validation;
//! 4. the threshold that sends `strong_share` of the validation items to the strong model
//!    (RouteLLM's `(1 − share)` quantile rule);
//! 5. quality against strong-model share on the test part — the MF router, the seeded random
//!    band and the oracle, APGR / CPT — through [`evals::routing::PairReport`].
//!
//! The result holds a [`Checkpoint`] that `serve` loads (`--router`) and the test decisions at
//! the calibrated threshold, so a server's `router-mf-<t>` answers can be checked against the
//! library's.
//!
//! ```
//! use mf_router::embed_cache::HashEmbedder;
//! use mf_router::harness_router::{HarnessRouterOptions, run_on_table};
//! # use datasets::{OutcomeTable, PromptMeta, ScoreKind};
//! // Toy outcomes: the strong model is needed on "hard" items.
//! # let prompts: Vec<PromptMeta> = (0..200).map(|i| PromptMeta::new(format!("t/{i}"))
//! #     .with_text(if i % 2 == 0 { format!("hard proof {i}") } else { format!("easy sum {i}") })).collect();
//! # let scores: Vec<f64> = (0..200).flat_map(|i| if i % 2 == 0 { [0.0, 1.0] } else { [1.0, 1.0] }).collect();
//! # let table = OutcomeTable::new("toy", ScoreKind::Binary, vec!["small".into(), "big".into()], prompts, scores, None)?;
//! let opts = HarnessRouterOptions::default();
//! let report = run_on_table(&table, "small", "big", &opts, &HashEmbedder::new(64))?;
//! let mf = &report.pair.summaries[1];
//! assert!(mf.apgr_mean > report.pair.random.apgr.mean); // better than random routing
//! assert_eq!(report.decisions.len(), report.n_test);
//! # Ok::<(), mf_router::MfError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datasets::OutcomeTable;
use evals::plane::{Level, PlanePoint, RoutedItem, threshold_sweep};
use evals::routing::{PairReport, PairReportOptions};
use routing_core::cost::ModelCost;

use crate::battles::{BattleOptions, TiePolicy, golden_battles};
use crate::checkpoint::Checkpoint;
use crate::embed_cache::{EmbeddingMatrix, TextEmbedder};
use crate::error::{MfError, Result};
use crate::mf::{MfConfig, train_mf};
use crate::splits::random_split;

/// What to train and how.
#[derive(Debug, Clone)]
pub struct HarnessRouterOptions {
    /// Share of items for validation (early stopping, threshold).
    pub val_fraction: f64,
    /// Share of items for the test curves.
    pub test_fraction: f64,
    /// Split, training and random-band seed.
    pub seed: u64,
    /// Ties in the battles.
    pub ties: TiePolicy,
    /// The MF router's hyper-parameters (RouteLLM's defaults).
    pub mf: MfConfig,
    /// Strong-model share the checkpoint's threshold is calibrated for (on validation).
    pub strong_share: f64,
}

impl Default for HarnessRouterOptions {
    fn default() -> Self {
        Self {
            val_fraction: 0.1,
            test_fraction: 0.3,
            seed: 0,
            ties: TiePolicy::Drop,
            mf: MfConfig::default(),
            strong_share: 0.5,
        }
    }
}

/// One test item's routing decision at the calibrated threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// Item id (`lambada_openai/17`).
    pub id: String,
    /// The text the router read.
    pub text: String,
    /// P(strong needed).
    pub score: f64,
    /// Sent to the strong model.
    pub strong: bool,
    /// The weak model's outcome.
    pub weak_correct: f64,
    /// The strong model's outcome.
    pub strong_correct: f64,
    /// The item's task (`lambada_openai`).
    #[serde(default)]
    pub task: String,
    /// Tokens the weak model processed for the item (the harness's `tokens`; 0 when the
    /// table has no costs).
    #[serde(default)]
    pub weak_tokens: f64,
    /// The same for the strong model.
    #[serde(default)]
    pub strong_tokens: f64,
}

/// The study's result.
#[derive(Debug, Clone)]
pub struct HarnessRouterReport {
    /// The weak model's name.
    pub weak: String,
    /// The strong model's name.
    pub strong: String,
    /// Items per task (all parts).
    pub tasks: BTreeMap<String, usize>,
    /// Items in training, validation and test.
    pub n_train: usize,
    /// Validation items.
    pub n_val: usize,
    /// Test items.
    pub n_test: usize,
    /// Training battles (decisive items, plus ½-ties when counted).
    pub train_battles: usize,
    /// Epochs trained (early stopping on validation loss).
    pub epochs: usize,
    /// The calibrated threshold.
    pub threshold: f64,
    /// Strong share on the test items at that threshold.
    pub test_strong_share: f64,
    /// Quality against strong share on the test items: oracle, then MF (random band inside).
    pub pair: PairReport,
    /// The trained router with its threshold.
    pub checkpoint: Checkpoint,
    /// The test items' decisions.
    pub decisions: Vec<Decision>,
}

/// A **synthetic** stand-in for two models' harness outcomes (not real data; for `reproduce
/// --quick` and tests where the per-sample files are missing): for each task of `tasks`
/// (`(task, weak tokens per item, strong tokens per item)`), `n_per_task` items from
/// [`datasets::synthetic::generate`]'s item-response model with a weak (skill −0.3) and a
/// strong (skill 0.3) model named `weak` and `strong`. Each item's text names its task and
/// repeats a word for its latent-difficulty decile (`level3 level3 …`) among three seeded
/// filler words, so a text embedder can find the difficulty; the costs are tokens per item
/// (the task's mean times the item's length factor), as the harness tables carry.
///
/// # Errors
/// A bad configuration (no tasks, zero items, non-finite token counts).
pub fn synthetic_outcomes(
    weak: &str,
    strong: &str,
    tasks: &[(&str, f64, f64)],
    n_per_task: usize,
    seed: u64,
) -> Result<OutcomeTable> {
    use datasets::synthetic::{SyntheticConfig, SyntheticModel, generate};
    use datasets::{PromptMeta, ScoreKind};
    const FILLER: [&str; 12] = [
        "river", "stone", "window", "letter", "garden", "engine", "winter", "market", "silver",
        "forest", "candle", "harbor",
    ];
    if tasks.is_empty() {
        return Err(MfError::param("tasks", "no synthetic tasks"));
    }
    let (mut prompts, mut scores, mut costs) = (Vec::new(), Vec::new(), Vec::new());
    for (t, &(task, weak_tokens, strong_tokens)) in tasks.iter().enumerate() {
        let cfg = SyntheticConfig {
            n_prompts: n_per_task,
            models: vec![
                SyntheticModel::new(weak, -0.3, weak_tokens),
                SyntheticModel::new(strong, 0.3, strong_tokens),
            ],
            seed: seed.wrapping_add(t as u64),
            ..SyntheticConfig::default_pair()
        };
        let syn = generate(&cfg)?;
        for (i, d) in syn.difficulty.iter().enumerate() {
            // Deciles of N(0, 1): level 0 … 9.
            let level = ((0.5 + 0.5 * erf_approx(d / std::f64::consts::SQRT_2)) * 10.0)
                .floor()
                .clamp(0.0, 9.0) as usize;
            let f = |k: usize| FILLER[(i * 7 + k * 5 + t) % FILLER.len()];
            let text = format!(
                "{task} level{level} {} level{level} {} level{level} {}",
                f(0),
                f(1),
                f(2)
            );
            prompts.push(
                PromptMeta::new(format!("{task}/{i}"))
                    .with_group(task)
                    .with_text(text),
            );
            scores.extend_from_slice(syn.table.scores_of(i));
            costs.extend(
                syn.table
                    .costs_of(i)
                    .unwrap_or(&[weak_tokens, strong_tokens])
                    .iter()
                    .map(|c| c.round().max(1.0)),
            );
        }
    }
    Ok(OutcomeTable::new(
        "synthetic harness outcomes",
        ScoreKind::Binary,
        vec![weak.to_string(), strong.to_string()],
        prompts,
        scores,
        Some(costs),
    )?)
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erf_approx(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// Runs the study on the harness output folders of a weak and a strong model (`(name,
/// folder)`), embedding item texts with `embedder`.
///
/// # Errors
/// Unreadable or inconsistent harness folders, items without text, too few items for the
/// split, training and evaluation errors.
pub fn run<E: TextEmbedder>(
    weak: (&str, &Path),
    strong: (&str, &Path),
    opts: &HarnessRouterOptions,
    embedder: &E,
) -> Result<HarnessRouterReport> {
    let runs: Vec<(String, PathBuf)> = vec![
        (weak.0.to_string(), weak.1.to_path_buf()),
        (strong.0.to_string(), strong.1.to_path_buf()),
    ];
    let table = evals::harness::load_outcomes("harness", &runs)?;
    run_on_table(&table, weak.0, strong.0, opts, embedder)
}

/// [`run`] on an outcome table already loaded (two or more models; items need text).
///
/// # Errors
/// As [`run`].
pub fn run_on_table<E: TextEmbedder>(
    table: &OutcomeTable,
    weak: &str,
    strong: &str,
    opts: &HarnessRouterOptions,
    embedder: &E,
) -> Result<HarnessRouterReport> {
    let (w, s) = (table.model_index(weak)?, table.model_index(strong)?);
    let mut texts = Vec::with_capacity(table.n_prompts());
    for p in table.prompts() {
        texts.push(
            p.text
                .as_deref()
                .ok_or_else(|| MfError::MissingText { id: p.id.clone() })?,
        );
    }
    let emb = EmbeddingMatrix::from_rows(embedder.dim(), &embedder.embed_texts(&texts)?)?;
    let split = random_split(table, opts.val_fraction, opts.test_fraction, opts.seed)?;
    let battle_opts = BattleOptions::golden(opts.ties).with_pair(w, s);
    let (train, _) = golden_battles(table, Some(&split.train), &battle_opts)?;
    let (val, _) = golden_battles(table, Some(&split.val), &battle_opts)?;
    let cfg = MfConfig {
        seed: opts.seed,
        ..opts.mf.clone()
    };
    let (model, log) = train_mf(&cfg, table.models(), &emb, &train, &val)?;
    let val_scores = model.pair_win_probs(&emb.take_rows(&split.val), w, s, 1)?;
    let threshold = routing_core::calibrate_threshold(&val_scores, opts.strong_share)?;
    let test = table.take_rows(&split.test)?;
    let test_scores = model.pair_win_probs(&emb.take_rows(&split.test), w, s, 1)?;
    let pair = PairReport::evaluate(
        format!("{weak} vs {strong}: test items"),
        &test,
        weak,
        strong,
        &[("MF".to_string(), test_scores.clone())],
        &PairReportOptions {
            base_seed: 1000 * opts.seed,
            ..PairReportOptions::default()
        },
    )?;
    let decisions: Vec<Decision> = split
        .test
        .iter()
        .zip(&test_scores)
        .map(|(&row, &score)| Decision {
            id: table.prompts()[row].id.clone(),
            text: texts[row].to_string(),
            score,
            strong: score >= threshold,
            weak_correct: table.score(row, w),
            strong_correct: table.score(row, s),
            task: table.prompts()[row].group.clone().unwrap_or_default(),
            weak_tokens: table.cost(row, w).unwrap_or(0.0),
            strong_tokens: table.cost(row, s).unwrap_or(0.0),
        })
        .collect();
    let test_strong_share =
        decisions.iter().filter(|d| d.strong).count() as f64 / decisions.len().max(1) as f64;
    let mut tasks = BTreeMap::new();
    for p in table.prompts() {
        *tasks
            .entry(p.group.clone().unwrap_or_else(|| "-".into()))
            .or_insert(0) += 1;
    }
    let checkpoint = Checkpoint::mf(model, weak, strong, embedder.model_id())?
        .with_threshold(threshold, Some(opts.strong_share))
        .with_notes(format!(
            "trained on lm_eval outcomes of {weak} and {strong} ({} items, seed {})",
            table.n_prompts(),
            opts.seed
        ));
    Ok(HarnessRouterReport {
        weak: weak.into(),
        strong: strong.into(),
        tasks,
        n_train: split.train.len(),
        n_val: split.val.len(),
        n_test: split.test.len(),
        train_battles: train.len(),
        epochs: log.epochs.len(),
        threshold,
        test_strong_share,
        pair,
        checkpoint,
        decisions,
    })
}

impl HarnessRouterReport {
    /// The router on the unified cost–quality plane, one curve per task (`task_names` maps a
    /// task to the benchmark name the plane shows; unmapped tasks keep their own): the test
    /// items routed at each strong share in `shares` (rank rule, [`evals::plane::threshold_sweep`]),
    /// FLOPs = `2 × active parameters × tokens` of the model that answers plus `router_flops`
    /// per item for the router itself; and both models alone as [`Level::Model`] points.
    ///
    /// # Errors
    /// A model without a known size, decisions without token counts, or a bad share.
    pub fn plane_points(
        &self,
        weak_cost: &ModelCost,
        strong_cost: &ModelCost,
        router_flops: f64,
        shares: &[f64],
        task_names: &BTreeMap<String, String>,
    ) -> Result<Vec<PlanePoint>> {
        let flops = |c: &ModelCost, name: &str, tokens: f64| {
            c.flops(tokens.round() as usize, 0)
                .ok_or_else(|| MfError::param(name, "active parameters unknown"))
        };
        let mut by_task: BTreeMap<&str, Vec<RoutedItem>> = BTreeMap::new();
        for d in &self.decisions {
            if d.weak_tokens <= 0.0 || d.strong_tokens <= 0.0 {
                return Err(MfError::param(
                    "decisions",
                    format!("{}: no token counts (outcome table without costs)", d.id),
                ));
            }
            by_task.entry(&d.task).or_default().push(RoutedItem {
                score: d.score,
                weak_quality: d.weak_correct,
                strong_quality: d.strong_correct,
                weak_flops: flops(weak_cost, &self.weak, d.weak_tokens)?,
                strong_flops: flops(strong_cost, &self.strong, d.strong_tokens)?,
            });
        }
        let mut out = Vec::new();
        for (task, items) in by_task {
            let bench = task_names.get(task).map_or(task, String::as_str);
            let sweep = threshold_sweep(&items, shares, router_flops)?;
            let ends = threshold_sweep(&items, &[0.0, 1.0], 0.0)?;
            for (name, end) in [(&self.weak, ends[0]), (&self.strong, ends[1])] {
                out.push(
                    PlanePoint::new(bench, name.as_str(), Level::Model, "alone", end.quality)
                        .with_flops(end.flops),
                );
            }
            for sp in sweep {
                out.push(
                    PlanePoint::new(
                        bench,
                        "MF",
                        Level::Query,
                        format!("{:.0}% to {}", 100.0 * sp.strong_share, self.strong),
                        sp.quality,
                    )
                    .with_flops(sp.flops),
                );
            }
        }
        Ok(out)
    }

    /// The report in markdown.
    pub fn markdown(&self) -> String {
        let p = &self.pair;
        let mut s = format!(
            "# Query router on our own harness outcomes: {} vs {}\n\n",
            self.weak, self.strong
        );
        s.push_str(&format!(
            "Items: {} ({}); split train / validation / test = {} / {} / {}; {} training battles; {} epochs.\n\n",
            self.n_train + self.n_val + self.n_test,
            self.tasks
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.n_train,
            self.n_val,
            self.n_test,
            self.train_battles,
            self.epochs
        ));
        s.push_str(&format!(
            "Test quality: {} {:.4}, {} {:.4}. Random routing APGR {:.4} ± {:.4}.\n\n",
            p.weak,
            p.weak_quality,
            p.strong,
            p.strong_quality,
            p.random.apgr.mean,
            p.random.apgr.std
        ));
        s.push_str("| router | APGR (paper) | APGR (code) | CPT(50%) | CPT(80%) | AUC |\n|---|---:|---:|---:|---:|---:|\n");
        let pct = |v: Option<f64>| v.map_or("—".into(), |x| format!("{:.1}%", 100.0 * x));
        for c in &p.summaries {
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {} | {} | {:.4} |\n",
                c.router,
                c.apgr_mean,
                c.apgr_area,
                pct(c.cpt50),
                pct(c.cpt80),
                c.auc
            ));
        }
        s.push_str(&format!(
            "\nCheckpoint threshold {:.5} (calibrated for a {:.0}% strong share on validation; {:.1}% of test items go to {} at it).\n",
            self.threshold,
            100.0 * self.checkpoint.config.strong_share.unwrap_or(f64::NAN),
            100.0 * self.test_strong_share,
            self.strong
        ));
        s
    }

    /// Writes `report.md`, `summary.json`, `decisions.jsonl` and the checkpoint
    /// (`checkpoint/`) into `dir`.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let io = |path: PathBuf| move |source| MfError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .map_err(io(dir.join("report.md")))?;
        let summary = serde_json::json!({
            "weak": self.weak, "strong": self.strong, "tasks": self.tasks,
            "n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test,
            "train_battles": self.train_battles, "epochs": self.epochs,
            "threshold": self.threshold, "test_strong_share": self.test_strong_share,
            "weak_quality": self.pair.weak_quality, "strong_quality": self.pair.strong_quality,
            "random_apgr": self.pair.random.apgr.mean,
            "curves": self.pair.summaries,
        });
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string_pretty(&summary).unwrap_or_default(),
        )
        .map_err(io(dir.join("summary.json")))?;
        let lines: Vec<String> = self
            .decisions
            .iter()
            .map(|d| serde_json::to_string(d).unwrap_or_default())
            .collect();
        std::fs::write(dir.join("decisions.jsonl"), lines.join("\n") + "\n")
            .map_err(io(dir.join("decisions.jsonl")))?;
        self.checkpoint.save(dir.join("checkpoint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed_cache::HashEmbedder;

    const TASKS: [(&str, f64, f64); 2] =
        [("lambada_openai", 90.0, 95.0), ("hellaswag", 300.0, 320.0)];

    #[test]
    fn synthetic_outcomes_route_and_land_on_the_plane() {
        let table = synthetic_outcomes("small", "big", &TASKS, 300, 3).unwrap();
        assert_eq!(table.n_prompts(), 600);
        assert!(
            table.prompts()[0]
                .text
                .as_deref()
                .unwrap()
                .contains("level")
        );
        let report = run_on_table(
            &table,
            "small",
            "big",
            &HarnessRouterOptions::default(),
            &HashEmbedder::new(64),
        )
        .unwrap();
        // The difficulty words carry signal: MF beats the random band.
        let mf = &report.pair.summaries[1];
        assert!(
            mf.apgr_mean > report.pair.random.apgr.mean + 0.05,
            "{}",
            mf.apgr_mean
        );

        let (w, s) = (ModelCost::local(100), ModelCost::local(300));
        let names = BTreeMap::from([("hellaswag".to_string(), "HellaSwag".to_string())]);
        let pts = report
            .plane_points(&w, &s, 7.0, &[0.0, 0.5, 1.0], &names)
            .unwrap();
        assert_eq!(pts.len(), 2 * (2 + 3));
        let hs: Vec<&PlanePoint> = pts.iter().filter(|p| p.benchmark == "HellaSwag").collect();
        let weak_alone = hs
            .iter()
            .find(|p| p.level == Level::Model && p.router == "small");
        let none_routed = hs
            .iter()
            .find(|p| p.level == Level::Query && p.setting.starts_with("0%"));
        let (a, b) = (weak_alone.unwrap(), none_routed.unwrap());
        // Sending nothing to the strong model is the weak model plus the router's own cost.
        assert_eq!(a.quality, b.quality);
        assert!((b.flops.unwrap() - a.flops.unwrap() - 7.0).abs() < 1e-6);
        assert!(pts.iter().any(|p| p.benchmark == "lambada_openai"));
        // Unknown sizes are a typed error, not a silent zero.
        let api = ModelCost::priced(Default::default());
        assert!(report.plane_points(&api, &s, 0.0, &[0.5], &names).is_err());
    }
}
