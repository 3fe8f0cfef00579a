//! The MBPP routing study (seed notebook 000) on RouterBench's MBPP slice: random routing vs a
//! classifier router (MLP head on frozen query embeddings, soft win-rate targets, EMA weights)
//! at validation-tuned thresholds, for three small/large pairs.
//!
//! Data (real): `routerbench_routerdc/mbpp_{train,test}.csv` (427 MBPP prompts, one 0/1
//! outcome per model). The train rows are split 80/20 (seeded, by text) into fit and
//! validation; the test rows are the test split. The synthetic source uses a seeded five-model
//! task ([`crate::synthetic`], not real data) with its own `train`/`test` labels. Per pair:
//! 1. **random baseline**: `floor(share·n)` random test items to the small model,
//!    [`CodeConfig::trials`] trials, mean ± std (population) of the gap to the large model
//!    alone (pp);
//! 2. **classifier router**: targets = the large model's win rate over the small one, ties ½
//!    ([`crate::battles::large_win_rate`]); thresholds = the 20/40/60/80th percentiles of the
//!    validation predictions; on test, items with prediction `<` threshold go to the small
//!    model. Trained with [`CodeConfig::seeds`] seeds: mean ± std, and seed 0's thresholds;
//! 3. **oracle**: the best achievable gap at the same cost advantage (small model first where
//!    it is at least as good).
//!
//! [`CodeReport::write`] writes `report.md`, one SVG per pair (`mbpp-<small>-vs-<large>.svg`;
//! synthetic: `synthetic-…`), `summary.json` and a checkpoint folder per pair
//! (`checkpoint-mbpp-<small>-vs-<large>`).

use std::path::{Path, PathBuf};

use datasets::{CodeOutcomes, OutcomeTable};
use evals::routing::{MeanStd, StudyReport};
use figure::{LegendPos, Marker, Plot};
use lm::models::bert::SentenceEncoder;

use super::{Source, create_dir, open_cache, rows_of, texts, write_json, write_text};
use crate::battles::large_win_rate;
use crate::checkpoint::Checkpoint;
use crate::classifier::{ClassifierConfig, percentile_thresholds, train_classifier};
use crate::embed_cache::{EmbeddingMatrix, MINILM_MODEL_ID};
use crate::error::{MfError, Result};
use crate::synthetic::{SyntheticEmbedding, SyntheticTaskConfig, generate_task};

/// The real study's small/large pairs (RouterBench model names).
pub const PAIRS: [(&str, &str); 3] = [
    ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat"),
    ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview"),
    ("meta/llama-2-70b-chat", "gpt-4-1106-preview"),
];

/// The synthetic source's small/large pairs (models of [`SyntheticTaskConfig::multi`]).
pub const SYNTHETIC_PAIRS: [(&str, &str); 3] =
    [("tiny", "medium"), ("medium", "xl"), ("small", "xl")];

/// Validation percentiles the thresholds are taken at.
pub const PERCENTILES: [f64; 4] = [20.0, 40.0, 60.0, 80.0];

/// What the study runs on and how (the `code_router` example's flags).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CodeConfig {
    /// Where the outcomes come from (default: the shared data folder).
    pub source: Source,
    /// The MiniLM embedding cache (real sources only; shared with the RouteLLM study).
    pub cache: PathBuf,
    /// Training seeds of the classifier router, `0..n` (default 5).
    pub seeds: u64,
    /// Trials of the random-routing baseline (default 10).
    pub trials: usize,
    /// Print the embedding progress bar to stderr.
    pub progress: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            source: Source::SharedData,
            cache: PathBuf::from(super::DEFAULT_CACHE),
            seeds: 5,
            trials: 10,
            progress: false,
        }
    }
}

impl CodeConfig {
    /// Validates the fields ([`MfError::InvalidParameter`] naming the field).
    pub fn check(&self) -> Result<()> {
        if self.seeds == 0 {
            return Err(MfError::param("seeds", "must be at least 1"));
        }
        if self.trials == 0 {
            return Err(MfError::param("trials", "must be at least 1"));
        }
        self.source.check_items(40)
    }
}

/// The router at one validation percentile, over seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodeRow {
    /// Validation percentile of the threshold.
    pub percentile: f64,
    /// Seed 0's threshold.
    pub threshold_seed0: f64,
    /// Share of test prompts routed to the small model.
    pub cost_advantage: MeanStd,
    /// Routed accuracy − large model alone, percentage points.
    pub perf_gap: MeanStd,
    /// A random router's expected gap at the router's mean share (pp).
    pub random_expected_gap_at_router_share: f64,
    /// The random baseline at the nominal share (pp), when the baseline has that share.
    pub random_gap_at_nominal_share: Option<MeanStd>,
    /// The oracle's gap at the router's mean share (pp).
    pub oracle_gap: f64,
}

/// One small/large pair.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodePair {
    /// Small model.
    pub small: String,
    /// Large model.
    pub large: String,
    /// Section title (`<small> vs <large>`, short names).
    pub title: String,
    /// File stem of the figure and the checkpoint folder (`mbpp-<small>-vs-<large>`).
    pub slug: String,
    /// Small model's test accuracy (fraction).
    pub small_accuracy: f64,
    /// Large model's test accuracy (fraction).
    pub large_accuracy: f64,
    /// Test prompts.
    pub n_test: usize,
    /// One row per percentile.
    pub rows: Vec<CodeRow>,
    /// Per seed, per percentile: (threshold, cost advantage, gap pp).
    pub per_seed: Vec<Vec<(f64, f64, f64)>>,
    /// The random-routing baseline.
    pub random: StudyReport,
    /// The oracle's gap (pp) at cost advantages 0, 0.05, …, 1.
    pub oracle_curve: Vec<(f64, f64)>,
    /// Seed 0's classifier with the 40th-percentile threshold (`checkpoint-<slug>/`).
    #[serde(skip)]
    pub checkpoint: Checkpoint,
}

/// The data the study ran on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodeData {
    /// Whether the outcomes and embeddings are synthetic (not real data).
    pub synthetic: bool,
    /// The data folder, or a description of the synthetic source.
    pub source: String,
    /// Prompts.
    pub n_prompts: usize,
    /// Train prompts (fit + validation).
    pub n_train: usize,
    /// Fit prompts.
    pub n_fit: usize,
    /// Validation prompts.
    pub n_val: usize,
    /// Test prompts.
    pub n_test: usize,
    /// Width of the query embeddings.
    pub embedding_dim: usize,
    /// Id of the embedding model (checkpoints record it).
    pub embedding_model: String,
}

/// Everything the study found; [`Self::to_markdown`], [`Self::summary`], [`Self::write`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodeReport {
    /// The configuration it ran with.
    pub config: CodeConfig,
    /// The data.
    pub data: CodeData,
    /// One entry per small/large pair.
    pub pairs: Vec<CodePair>,
}

fn short(m: &str) -> &str {
    m.rsplit('/').next().unwrap_or(m)
}

/// Accuracy (%) of routing `to_small[i]` items to `s`, the rest to `l`.
fn routed_rate(t: &OutcomeTable, s: usize, l: usize, to_small: &[bool]) -> f64 {
    let n = to_small.len() as f64;
    100.0
        * to_small
            .iter()
            .enumerate()
            .map(|(p, &sm)| t.score(p, if sm { s } else { l }))
            .sum::<f64>()
        / n
}

/// The oracle's gap (pp) at `k` items routed small: small first where it is at least as good.
fn oracle_gap(t: &OutcomeTable, s: usize, l: usize, k: usize) -> f64 {
    let mut order: Vec<usize> = (0..t.n_prompts()).collect();
    order.sort_by(|&a, &b| {
        (t.score(b, s) - t.score(b, l)).total_cmp(&(t.score(a, s) - t.score(a, l)))
    });
    let mut to_small = vec![false; t.n_prompts()];
    for &p in order.iter().take(k) {
        to_small[p] = true;
    }
    routed_rate(t, s, l, &to_small) - routed_rate(t, s, l, &vec![false; t.n_prompts()])
}

/// Runs the study. `encoder` is the MiniLM sentence encoder (on the device the caller chose)
/// for a real [`Source`]; prompts are embedded through the cache at [`CodeConfig::cache`]. The
/// synthetic source ignores it (pass `None`).
///
/// Errors: [`MfError::InvalidParameter`] for a bad config field, [`MfError::DataDir`] /
/// [`MfError::NoSharedData`] for a missing data folder, [`MfError::MissingEncoder`] for a real
/// source without an encoder, and the loaders', encoder's and trainers' errors.
pub fn run(config: &CodeConfig, encoder: Option<&SentenceEncoder>) -> Result<CodeReport> {
    config.check()?;
    let (table, emb_all, pairs, source, embedding_model, synthetic) = match (
        config.source.data_dir()?,
        &config.source,
    ) {
        (Some(dir), _) => {
            let encoder = encoder.ok_or(MfError::MissingEncoder { study: "code" })?;
            let table =
                datasets::load_routerbench_slice(&dir.join("routerbench_routerdc"), "mbpp")?.data;
            let cached = open_cache(encoder, &config.cache, config.progress)?;
            let tx = texts(&table);
            let refs: Vec<&str> = tx.iter().map(String::as_str).collect();
            let emb = cached.embed_matrix(&refs)?;
            let pairs = PAIRS.map(|(s, l)| (s.to_string(), l.to_string()));
            (
                table,
                emb,
                pairs,
                dir.display().to_string(),
                MINILM_MODEL_ID.to_string(),
                false,
            )
        }
        (None, Source::Synthetic { seed, n_items }) => {
            let space = SyntheticEmbedding {
                seed: *seed,
                ..SyntheticEmbedding::default()
            };
            let task = generate_task(
                &SyntheticTaskConfig {
                    train_fraction: 0.75,
                    ..SyntheticTaskConfig::multi("synthetic-code", *n_items, *seed)
                },
                &space,
            )?;
            let pairs = SYNTHETIC_PAIRS.map(|(s, l)| (s.to_string(), l.to_string()));
            (
                task.table,
                task.embeddings,
                pairs,
                format!(
                    "synthetic (mf_router::synthetic), seed {seed}, {n_items} items, {}-d embeddings",
                    space.dim
                ),
                space.model_id(),
                true,
            )
        }
        (None, _) => return Err(MfError::NoSharedData),
    };
    study(
        config,
        &table,
        &emb_all,
        &pairs,
        source,
        embedding_model,
        synthetic,
    )
}

/// The three steps of the module docs for every pair.
fn study(
    config: &CodeConfig,
    table: &OutcomeTable,
    emb_all: &EmbeddingMatrix,
    pairs: &[(String, String)],
    source: String,
    embedding_model: String,
    synthetic: bool,
) -> Result<CodeReport> {
    let train_rows = rows_of(table, "train");
    let test_rows = rows_of(table, "test");
    let train_table = table.take_rows(&train_rows)?;
    let test = table.take_rows(&test_rows)?;
    let test_emb = emb_all.take_rows(&test_rows);
    let tv = crate::splits::random_split(&train_table, 0.2, 0.0001, 0)?;
    let tr: Vec<usize> = tv
        .train
        .iter()
        .chain(&tv.test)
        .map(|&i| train_rows[i])
        .collect();
    let va: Vec<usize> = tv.val.iter().map(|&i| train_rows[i]).collect();
    let code_test = CodeOutcomes::from_binary_table(&test)?;
    let n_test = test.n_prompts();
    let prefix = if synthetic { "synthetic" } else { "mbpp" };
    let mut out = Vec::new();
    for (small, large) in pairs {
        let (s, l) = (table.model_index(small)?, table.model_index(large)?);
        let targets = large_win_rate(table, s, l);
        let title = format!("{} vs {}", short(small), short(large));
        let base =
            StudyReport::evaluate(title.clone(), &code_test, small, large, config.trials, 42)?;
        // Per seed: thresholds on validation, routing on test.
        let mut per_seed: Vec<Vec<(f64, f64, f64)>> = Vec::new(); // (threshold, cost adv, gap)
        let mut ck_model = None;
        let large_only = routed_rate(&test, s, l, &vec![false; n_test]);
        for seed in 0..config.seeds {
            let cfg = ClassifierConfig {
                seed,
                ..ClassifierConfig::default()
            };
            let (model, _log) = train_classifier(&cfg, emb_all, &targets, &tr, &va)?;
            let val_pred = model.predict(&emb_all.take_rows(&va));
            let thr = percentile_thresholds(&val_pred, &PERCENTILES)?;
            let test_pred = model.predict(&test_emb);
            per_seed.push(
                thr.iter()
                    .map(|&t| {
                        let to_small: Vec<bool> = test_pred.iter().map(|&p| p < t).collect();
                        let adv =
                            to_small.iter().filter(|&&b| b).count() as f64 / to_small.len() as f64;
                        (t, adv, routed_rate(&test, s, l, &to_small) - large_only)
                    })
                    .collect(),
            );
            if seed == 0 {
                ck_model = Some((model, thr[1]));
            }
        }
        let Some((model, thr40)) = ck_model else {
            return Err(MfError::param("seeds", "must be at least 1"));
        };
        let mut rows = Vec::new();
        for (j, &pct) in PERCENTILES.iter().enumerate() {
            let adv: Vec<f64> = per_seed.iter().map(|r| r[j].1).collect();
            let gap: Vec<f64> = per_seed.iter().map(|r| r[j].2).collect();
            let (a, g) = (MeanStd::of(&adv), MeanStd::of(&gap));
            let rnd = base
                .rows
                .iter()
                .find(|r| (r.small_share - pct / 100.0).abs() < 1e-9)
                .map(|r| r.pass_gap);
            let orc = oracle_gap(&test, s, l, (a.mean * n_test as f64).round() as usize);
            rows.push(CodeRow {
                percentile: pct,
                threshold_seed0: per_seed[0][j].0,
                cost_advantage: a,
                perf_gap: g,
                random_expected_gap_at_router_share: a.mean
                    * 100.0
                    * (test.mean_score(s) - test.mean_score(l)),
                random_gap_at_nominal_share: rnd,
                oracle_gap: orc,
            });
        }
        let oracle_curve = (0..=20)
            .map(|i| {
                let x = i as f64 / 20.0;
                (
                    x,
                    oracle_gap(&test, s, l, (x * n_test as f64).round() as usize),
                )
            })
            .collect();
        let slug = format!("{prefix}-{}-vs-{}", short(small), short(large));
        let notes = if synthetic {
            "synthetic task train split (80% fit, seed 0; not real data); threshold = 40th validation percentile (score >= threshold → large)"
        } else {
            "RouterBench MBPP train split (80% fit, seed 0); threshold = 40th validation percentile (score >= threshold → large)"
        };
        let checkpoint = Checkpoint::classifier(model, small, large, &embedding_model)
            .with_threshold(thr40, None)
            .with_notes(notes);
        out.push(CodePair {
            small: small.clone(),
            large: large.clone(),
            title,
            slug,
            small_accuracy: test.mean_score(s),
            large_accuracy: test.mean_score(l),
            n_test,
            rows,
            per_seed,
            random: base,
            oracle_curve,
            checkpoint,
        });
    }
    Ok(CodeReport {
        config: config.clone(),
        data: CodeData {
            synthetic,
            source,
            n_prompts: table.n_prompts(),
            n_train: train_rows.len(),
            n_fit: tr.len(),
            n_val: va.len(),
            n_test: test_rows.len(),
            embedding_dim: emb_all.dim(),
            embedding_model,
        },
        pairs: out,
    })
}

impl CodePair {
    /// Random band + router + oracle: gap vs cost advantage.
    pub fn figure(&self, synthetic: bool) -> Plot {
        let base = &self.random;
        let xs: Vec<f64> = base.rows.iter().map(|r| r.small_share).collect();
        let m: Vec<f64> = base.rows.iter().map(|r| r.pass_gap.mean).collect();
        let lo: Vec<f64> = base
            .rows
            .iter()
            .map(|r| r.pass_gap.mean - r.pass_gap.std)
            .collect();
        let hi: Vec<f64> = base
            .rows
            .iter()
            .map(|r| r.pass_gap.mean + r.pass_gap.std)
            .collect();
        let (ox, oy): (Vec<f64>, Vec<f64>) = self.oracle_curve.iter().copied().unzip();
        let data = if synthetic {
            "Synthetic (not real data)"
        } else {
            "MBPP (RouterBench)"
        };
        let mut p = Plot::new(
            &format!("{data}: {}", self.title),
            "cost advantage (share routed to the small model)",
            "performance gap (pp)",
        );
        p.width = 560.0;
        p.legend_pos = LegendPos::Outside;
        p.x_range = Some((0.0, 1.0));
        let rx: Vec<f64> = self.rows.iter().map(|r| r.cost_advantage.mean).collect();
        let ry: Vec<f64> = self.rows.iter().map(|r| r.perf_gap.mean).collect();
        let labels: Vec<String> = PERCENTILES.iter().map(|p| format!("{p:.0}%")).collect();
        p.band(&xs, &lo, &hi, "#7f7f7f", "random ±1 sd")
            .line_markers(&xs, &m, "#7f7f7f", "random (mean)", true, Marker::Circle)
            .line(&ox, &oy, "#2ca02c", "oracle")
            .markers(
                &rx,
                &ry,
                "#d62728",
                "classifier router (val-tuned thresholds)",
                Marker::Circle,
                3.5,
            )
            .labels(&rx, &ry, &labels, "#d62728");
        p
    }
}

impl CodeReport {
    /// The report as markdown (`report.md`): method, then per pair the router table, the
    /// random-routing table and the figure link.
    pub fn to_markdown(&self) -> String {
        let d = &self.data;
        let c = &self.config;
        let mut md = if d.synthetic {
            format!(
                "# Small/large routing study on synthetic outcomes (not real data)\n\nGenerated by `code_router --synthetic`. **Synthetic data** (`mf_router::synthetic`: seeded item-response outcomes of five models and made-up {dim}-d query embeddings with a planted topic and difficulty structure): these numbers show the pipeline works, not how real models behave. {} prompts: {} train ({} fit / {} validation, seeded split by text), {} test. Performance gap = routed accuracy − large model alone (percentage points); cost advantage = share of test prompts answered by the small model.\n\nClassifier router: MLP {dim} → 384 → 1 (ReLU, dropout 0.1) on the synthetic embeddings, AdamW (lr 1e-3, wd 0.01), batch 16, 10 epochs, EMA of weights (β = 0.99), target = large model's win rate over the small one (ties ½); thresholds at the 20/40/60/80th percentiles of validation predictions, applied on test (small model when prediction < threshold). {} training seeds; random baseline {} trials.\n\n",
                d.n_prompts,
                d.n_train,
                d.n_fit,
                d.n_val,
                d.n_test,
                c.seeds,
                c.trials,
                dim = d.embedding_dim,
            )
        } else {
            format!(
                "# MBPP routing study on RouterBench's MBPP slice\n\nGenerated by `code_router`. {} prompts: {} train ({} fit / {} validation, seeded split by text), {} test. One 0/1 outcome per model and prompt, so the test-case pass rate and the perfect-solution rate coincide (accuracy). Performance gap = routed accuracy − large model alone (percentage points); cost advantage = share of test prompts answered by the small model.\n\nClassifier router: MLP 384 → 384 → 1 (ReLU, dropout 0.1) on frozen all-MiniLM-L6-v2 embeddings, AdamW (lr 1e-3, wd 0.01), batch 16, 10 epochs, EMA of weights (β = 0.99), target = large model's win rate over the small one (ties ½); thresholds at the 20/40/60/80th percentiles of validation predictions, applied on test (small model when prediction < threshold). {} training seeds; random baseline {} trials.\n\n",
                d.n_prompts, d.n_train, d.n_fit, d.n_val, d.n_test, c.seeds, c.trials,
            )
        };
        for p in &self.pairs {
            let mut tab = format!(
                "| validation percentile | threshold (seed 0) | router cost advantage (test) | router perf gap (pp) | random, expected at the router's share (pp) | random at the nominal share, {} trials (pp) | oracle at the router's share (pp) |\n|---:|---:|---:|---:|---:|---:|---:|\n",
                c.trials
            );
            // A random router's expected gap is linear in the share routed small.
            let full_gap = 100.0 * (p.small_accuracy - p.large_accuracy);
            for r in &p.rows {
                let pct = r.percentile;
                let (a, g) = (r.cost_advantage, r.perf_gap);
                tab += &format!(
                    "| {pct:.0}% | {:.4} | {:.3} ± {:.3} | {:+.1} ± {:.1} | {:+.1} | {} | {:+.1} |\n",
                    r.threshold_seed0,
                    a.mean,
                    a.std,
                    g.mean,
                    g.std,
                    a.mean * full_gap,
                    r.random_gap_at_nominal_share
                        .map_or("—".into(), |r| format!(
                            "{:+.1} ± {:.1} (at {pct:.0}%)",
                            r.mean, r.std
                        )),
                    r.oracle_gap
                );
            }
            md += &format!(
                "## {}\n\nTest accuracy: small {:.1}%, large {:.1}%.\n\n{}\n",
                p.title,
                100.0 * p.small_accuracy,
                100.0 * p.large_accuracy,
                tab
            );
            md += &p.random.markdown(&format!("{}.svg", p.slug));
        }
        md
    }

    /// The compact results (`summary.json`): per pair the router rows and the random baseline.
    pub fn summary(&self) -> serde_json::Value {
        let pairs: Vec<serde_json::Value> = self
            .pairs
            .iter()
            .map(|p| {
                let rows: Vec<serde_json::Value> = p
                    .rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "percentile": r.percentile, "cost_advantage": r.cost_advantage, "perf_gap": r.perf_gap,
                            "random_expected_gap_at_router_share": r.random_expected_gap_at_router_share,
                            "random_gap_at_nominal_share": r.random_gap_at_nominal_share, "oracle_gap": r.oracle_gap,
                        })
                    })
                    .collect();
                serde_json::json!({"small": p.small, "large": p.large, "rows": rows, "random": p.random.rows})
            })
            .collect();
        serde_json::Value::Array(pairs)
    }

    /// Writes `report.md`, one SVG and one `checkpoint-<slug>/` folder per pair, and
    /// `summary.json` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        for p in &self.pairs {
            p.figure(self.data.synthetic)
                .save(&dir.join(format!("{}.svg", p.slug)))?;
            p.checkpoint
                .save(dir.join(format!("checkpoint-{}", p.slug)))?;
        }
        write_text(&dir.join("report.md"), &self.to_markdown())?;
        write_json(&dir.join("summary.json"), &self.summary())
    }
}
