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
use evals::routing::{PairReport, PairReportOptions};

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
