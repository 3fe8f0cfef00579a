//! RouteLLM's matrix-factorisation router (Ong et al. 2024, §4.2) trained on golden-label
//! battles, evaluated RouteLLM-style against random and oracle routers, plus an N-model
//! willingness-to-pay evaluation, speed and a checkpoint.
//!
//! Experiments (each over [`RouteLlmConfig::seeds()`] seeds; mean ± std reported):
//! 1. **held-out questions**: a seeded random split of the question set (70% train / 10%
//!    validation / 20% test, repeated texts kept in one split); golden-label battles weak vs
//!    strong from the train split; MF trained with ties dropped (RouteLLM) and ties counted ½;
//!    curves on the test split. Real data: RouteLLM's 14,042 MMLU questions, Mixtral vs GPT-4.
//! 2. **out of distribution**: the question-trained routers scored on another set (real:
//!    all 1,319 GSM8K questions; synthetic: items from new groups with shifted topics).
//! 3. **held-out subjects**: [`RouteLlmConfig::held_out_subjects`] seeded subjects (synthetic:
//!    groups) held out for test, the rest split 90/10.
//! 4. **N models**: MF trained on golden-label battles of all model pairs of a train split,
//!    AIQ on the test split vs the zero router and the oracle (real: RouterBench's three
//!    zero-shot slices, 11 models, USD cost; synthetic: five models with costs).
//! 5. **speed**: routed queries/s including embedding at batch 1 and 32, MF scoring alone,
//!    training time per epoch, the int8 encoder's effect on routing (real data only), and a
//!    checkpoint round trip.
//!
//! [`RouteLlmReport::write`] writes `report.md`, `summary.json`, one SVG per seed-0 evaluation
//! (`mmlu_seed0.svg`, `gsm8k_seed0.svg`, `subjects_seed0.svg`, `routerbench_multi.svg`; the
//! synthetic source writes `synthetic*` names) and the checkpoint folder `checkpoint/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datasets::OutcomeTable;
use datasets::routellm::{ROUTELLM_STRONG, ROUTELLM_WEAK};
use evals::routing::{CurveSummary, MeanStd, MultiReport, PairReport, PairReportOptions};
use lm::models::bert::SentenceEncoder;
use routing_core::MultiRouter;

use super::{Source, create_dir, open_cache, round_trip, rows_of, texts, write_json, write_text};
use crate::battles::{BattleOptions, TiePolicy, golden_battles};
use crate::checkpoint::{Checkpoint, LoadedRouter};
use crate::embed_cache::{EmbeddingMatrix, LookupEmbedder, MINILM_MODEL_ID, TextEmbedder};
use crate::error::{MfError, Result};
use crate::mf::{MfConfig, MfModel, MfMultiRouter, TrainLog, train_mf};
use crate::splits::{Split, choose_groups, group_split, random_split};
use crate::synthetic::{SyntheticEmbedding, SyntheticTaskConfig, generate_task};

/// What the study runs on and how (the `routellm_mf` example's flags).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RouteLlmConfig {
    /// Where the outcomes come from (default: the shared data folder).
    pub source: Source,
    /// The MiniLM embedding cache (real sources only; default [`super::DEFAULT_CACHE`]).
    pub cache: PathBuf,
    /// Seeds of every experiment, `0..n` (`None`: 5, or 2 with `quick`).
    pub seeds: Option<u64>,
    /// Training epochs at most (`None`: 30, or 10 with `quick`).
    pub epochs: Option<usize>,
    /// A quick run: 2 seeds and 10 epochs unless `seeds` / `epochs` say otherwise.
    pub quick: bool,
    /// Subjects (synthetic: groups) held out for the held-out-subjects experiment (default 10).
    pub held_out_subjects: usize,
    /// Skip the N-model evaluation.
    pub skip_multi: bool,
    /// Adam learning rate (default 1e-3).
    pub lr: f64,
    /// Early-stopping patience in epochs (default 5).
    pub patience: usize,
    /// Print progress (cache size, per-seed results, the embedding bar) to stderr.
    pub progress: bool,
}

impl Default for RouteLlmConfig {
    fn default() -> Self {
        Self {
            source: Source::SharedData,
            cache: PathBuf::from(super::DEFAULT_CACHE),
            seeds: None,
            epochs: None,
            quick: false,
            held_out_subjects: 10,
            skip_multi: false,
            lr: 1e-3,
            patience: 5,
            progress: false,
        }
    }
}

impl RouteLlmConfig {
    /// Seeds per experiment (`seeds`, else 5, or 2 with `quick`).
    pub fn seeds(&self) -> u64 {
        self.seeds.unwrap_or(if self.quick { 2 } else { 5 })
    }

    /// Training epochs at most (`epochs`, else 30, or 10 with `quick`).
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(if self.quick { 10 } else { 30 })
    }

    /// Validates the fields ([`MfError::InvalidParameter`] naming the field).
    pub fn check(&self) -> Result<()> {
        if self.seeds() == 0 {
            return Err(MfError::param("seeds", "must be at least 1"));
        }
        if self.epochs() == 0 {
            return Err(MfError::param("epochs", "must be at least 1"));
        }
        if self.held_out_subjects == 0 {
            return Err(MfError::param("held_out_subjects", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(MfError::param("lr", "must be finite and > 0"));
        }
        self.source.check_items(200)
    }
}

/// Per-seed metrics of the routers on one evaluation set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeedMetrics {
    /// Mean APGR (code definition) of the random band (10 draws).
    pub random_apgr: f64,
    /// The oracle's summary.
    pub oracle: CurveSummary,
    /// The MF routers' summaries (ties dropped, ties ½).
    pub routers: Vec<CurveSummary>,
}

impl SeedMetrics {
    fn of(r: &PairReport) -> Self {
        Self {
            random_apgr: r.random.apgr.mean,
            oracle: r.summaries[0].clone(),
            routers: r.summaries[1..].to_vec(),
        }
    }
}

/// A named training log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NamedLog {
    /// Seed, tie policy and split.
    pub name: String,
    /// What training did.
    pub log: TrainLog,
}

/// One seed's results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeedResult {
    /// The seed (split, initialisation, random band `1000·seed…`).
    pub seed: u64,
    /// Held-out questions (the 20% test split).
    pub held_out_questions: SeedMetrics,
    /// The out-of-distribution set (real: GSM8K).
    pub out_of_distribution: SeedMetrics,
    /// The held-out subjects' questions.
    pub held_out_subjects: SeedMetrics,
    /// The subjects (synthetic: groups) held out.
    pub subjects: Vec<String>,
    /// Repeated texts the random split kept together.
    pub duplicate_texts: usize,
    /// Training logs: the two tie policies on the random split, then on the subject split.
    pub logs: Vec<NamedLog>,
}

/// One seed-0 evaluation in full, with its figure's file name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Detail {
    /// Figure file stem (`mmlu_seed0`, …).
    pub slug: String,
    /// The evaluation (curves, random band, summaries).
    pub report: PairReport,
}

/// The data the study ran on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataSummary {
    /// Whether the outcomes and embeddings are synthetic (not real data).
    pub synthetic: bool,
    /// The data folder, or a description of the synthetic source.
    pub source: String,
    /// Weak model.
    pub weak: String,
    /// Strong model.
    pub strong: String,
    /// Questions in the main set.
    pub n_questions: usize,
    /// Mean score of the main set's first model column.
    pub weak_quality: f64,
    /// Mean score of the main set's second model column.
    pub strong_quality: f64,
    /// Questions in the out-of-distribution set.
    pub n_out_of_distribution: usize,
    /// Subjects (groups) in the main set.
    pub n_subjects: usize,
    /// Width of the query embeddings.
    pub embedding_dim: usize,
    /// Id of the embedding model (checkpoints record it).
    pub embedding_model: String,
}

/// One MF training of the N-model experiment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultiTraining {
    /// Router name (tie policy).
    pub name: String,
    /// Training battles.
    pub battles: usize,
    /// Decisive battles.
    pub decisive: usize,
    /// Ties kept (as ½).
    pub ties_kept: usize,
    /// Ties dropped.
    pub ties_dropped: usize,
    /// The training log.
    pub log: TrainLog,
    /// Wall time of battles + training, seconds.
    pub seconds: f64,
}

/// The N-model experiment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultiResult {
    /// Section title (data set).
    pub title: String,
    /// Prompts (train + test).
    pub n_prompts: usize,
    /// Train prompts.
    pub n_train: usize,
    /// Test prompts.
    pub n_test: usize,
    /// Model pairs battled.
    pub n_pairs: usize,
    /// The trainings (ties dropped, ties ½).
    pub trainings: Vec<MultiTraining>,
    /// AIQ evaluation on the test split.
    pub report: MultiReport,
    /// Figure file stem.
    pub slug: String,
}

/// Routed queries per second on one prompt set with one encoder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoutingSpeed {
    /// The prompt set.
    pub set: String,
    /// Mean tokens per prompt (synthetic: words).
    pub mean_tokens: f64,
    /// The encoder path.
    pub encoder: String,
    /// Queries/s, one `route` call per prompt.
    pub qps_batch1: f64,
    /// Queries/s, `route_batch` on chunks of 32.
    pub qps_batch32: f64,
}

/// How the int8 MiniLM encoder's embeddings change the router's decisions (real data only).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Int8Comparison {
    /// Test prompts embedded again.
    pub n_test: usize,
    /// Seconds the int8 encoder took for them.
    pub seconds: f64,
    /// Share of prompts with the same decision at the checkpoint's threshold.
    pub decision_agreement: f64,
    /// Largest change of a score.
    pub max_score_change: f32,
    /// The router's curve summary on f32 embeddings.
    pub f32: CurveSummary,
    /// The router's curve summary on int8 embeddings.
    pub int8: CurveSummary,
}

/// Speed, the int8 comparison and the checkpoint round trip.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpeedResult {
    /// Cores available.
    pub threads: usize,
    /// Routed queries/s per prompt set and encoder.
    pub routing: Vec<RoutingSpeed>,
    /// MF scoring alone (embeddings given), queries/s, one thread.
    pub mf_only_qps: f64,
    /// Training battles, ties ½ (seed 0, random split).
    pub n_train_half: usize,
    /// Training s/epoch, ties ½.
    pub epoch_seconds_half: f64,
    /// Training battles, ties dropped.
    pub n_train_drop: usize,
    /// Training s/epoch, ties dropped.
    pub epoch_seconds_drop: f64,
    /// The int8 comparison (real data only).
    pub int8: Option<Int8Comparison>,
    /// Whether the reloaded checkpoint scores the test split identically.
    pub checkpoint_identical: bool,
    /// The checkpoint's threshold (50% strong-model calls on validation).
    pub threshold: f64,
    /// Test prompts the round trip was checked on.
    pub n_checkpoint_test: usize,
}

/// Everything the study found; [`Self::to_markdown`], [`Self::summary`], [`Self::write`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteLlmReport {
    /// The configuration it ran with.
    pub config: RouteLlmConfig,
    /// The data.
    pub data: DataSummary,
    /// Per-seed results, in seed order.
    pub seeds: Vec<SeedResult>,
    /// Seed 0's three evaluations in full.
    pub details: Vec<Detail>,
    /// Wall time of all trainings, seconds.
    pub train_seconds: f64,
    /// Threads the seeds ran on.
    pub threads: usize,
    /// The N-model experiment (absent with `skip_multi`).
    pub multi: Option<MultiResult>,
    /// Speed and checkpoint.
    pub speed: SpeedResult,
    /// Wall time of [`run`], seconds.
    pub total_seconds: f64,
    /// The checkpoint written to `checkpoint/` (MF ties ½, seed 0, calibrated threshold).
    #[serde(skip)]
    pub checkpoint: Checkpoint,
}

/// The two tie policies compared throughout.
const POLICIES: [(TiePolicy, &str); 2] = [
    (TiePolicy::Drop, "MF (ties dropped)"),
    (TiePolicy::Half, "MF (ties = ½)"),
];

/// Names that differ between the real and the synthetic source.
struct Names {
    /// The question set (`MMLU`).
    q: &'static str,
    /// The out-of-distribution set (`GSM8K`).
    ood: &'static str,
    /// The pair (`Mixtral vs GPT-4`).
    pair: &'static str,
    /// What is held out (`subjects`).
    groups: &'static str,
    /// Figure stems: questions, out of distribution, subjects, N models.
    slugs: [&'static str; 4],
}

impl Names {
    fn of(synthetic: bool) -> Self {
        if synthetic {
            Self {
                q: "Synthetic",
                ood: "Shifted synthetic",
                pair: "weak vs strong",
                groups: "groups",
                slugs: [
                    "synthetic",
                    "synthetic_shifted",
                    "synthetic_groups",
                    "synthetic_multi",
                ],
            }
        } else {
            Self {
                q: "MMLU",
                ood: "GSM8K",
                pair: "Mixtral vs GPT-4",
                groups: "subjects",
                slugs: ["mmlu", "gsm8k", "subjects", "routerbench_multi"],
            }
        }
    }
}

/// The N-model data: the pooled table, its embeddings, and the section title.
struct MultiData {
    table: OutcomeTable,
    emb: EmbeddingMatrix,
    title: String,
}

/// How the speed experiment embeds fresh prompts.
enum Probe<'a> {
    /// MiniLM (f32 and int8) and MT-Bench's first turns.
    MiniLm {
        encoder: &'a SentenceEncoder,
        mt_bench: Vec<String>,
    },
    /// The synthetic lookup embedder.
    Synthetic { embedder: LookupEmbedder },
}

/// What the experiments run on, from either source.
struct Inputs<'a> {
    data: DataSummary,
    questions: OutcomeTable,
    questions_emb: EmbeddingMatrix,
    ood: OutcomeTable,
    ood_emb: EmbeddingMatrix,
    multi: Option<MultiData>,
    probe: Probe<'a>,
}

/// Runs the study. `encoder` is the MiniLM sentence encoder (on the device the caller chose)
/// for a real [`Source`]; prompts are embedded through the cache at [`RouteLlmConfig::cache`].
/// The synthetic source ignores it (pass `None`).
///
/// Errors: [`MfError::InvalidParameter`] for a bad config field, [`MfError::DataDir`] /
/// [`MfError::NoSharedData`] for a missing data folder, [`MfError::MissingEncoder`] for a real
/// source without an encoder, and the loaders', encoder's and trainers' errors.
pub fn run(config: &RouteLlmConfig, encoder: Option<&SentenceEncoder>) -> Result<RouteLlmReport> {
    config.check()?;
    let t_start = Instant::now();
    let inputs = match (config.source.data_dir()?, &config.source) {
        (Some(dir), _) => {
            let encoder = encoder.ok_or(MfError::MissingEncoder { study: "routellm" })?;
            real_inputs(config, &dir, encoder)?
        }
        (None, Source::Synthetic { seed, n_items }) => synthetic_inputs(config, *seed, *n_items)?,
        (None, _) => return Err(MfError::NoSharedData),
    };
    study(config, inputs, t_start)
}

/// Loads RouteLLM MMLU + GSM8K (and RouterBench) and embeds them through the cache.
fn real_inputs<'a>(
    config: &RouteLlmConfig,
    dir: &Path,
    encoder: &'a SentenceEncoder,
) -> Result<Inputs<'a>> {
    let ropts = datasets::RouteLlmOptions::default();
    let mmlu = datasets::load_routellm_mmlu(&dir.join("routellm_evals"), &ropts)?.data;
    let gsm = datasets::load_routellm_gsm8k(
        &dir.join("routellm_evals/gsm8k/gsm8k_responses.csv"),
        &ropts,
    )?
    .data;
    let mt_bench = read_mt_bench(dir)?;
    let cached = open_cache(encoder, &config.cache, config.progress)?;
    if config.progress {
        eprintln!(
            "embedding cache {}: {} vectors",
            config.cache.display(),
            cached.cached()
        );
    }
    let embed = |t: &OutcomeTable| -> Result<EmbeddingMatrix> {
        let tx = texts(t);
        let refs: Vec<&str> = tx.iter().map(String::as_str).collect();
        cached.embed_matrix(&refs)
    };
    let mmlu_emb = embed(&mmlu)?;
    let gsm_emb = embed(&gsm)?;
    let multi = if config.skip_multi {
        None
    } else {
        let base = dir.join("routerbench_routerdc");
        let mut tables = Vec::new();
        for s in ["arc_challenge", "mbpp", "winograde"] {
            let t = datasets::load_routerbench_slice(&base, s)?.data;
            let order: Vec<String> = match tables.first() {
                Some(first) => OutcomeTable::models(first).to_vec(),
                None => t.models().to_vec(),
            };
            let refs: Vec<&str> = order.iter().map(String::as_str).collect();
            tables.push(t.select_models(&refs)?);
        }
        let all = OutcomeTable::concat("routerbench-3slices", &tables)?;
        let emb = embed(&all)?;
        Some(MultiData {
            title: "RouterBench zero-shot (ARC-C + MBPP + WinoGrande)".into(),
            table: all,
            emb,
        })
    };
    let n_subjects = groups_of(&mmlu);
    Ok(Inputs {
        data: DataSummary {
            synthetic: false,
            source: dir.display().to_string(),
            weak: ROUTELLM_WEAK.into(),
            strong: ROUTELLM_STRONG.into(),
            n_questions: mmlu.n_prompts(),
            weak_quality: mmlu.mean_score(0),
            strong_quality: mmlu.mean_score(1),
            n_out_of_distribution: gsm.n_prompts(),
            n_subjects,
            embedding_dim: mmlu_emb.dim(),
            embedding_model: MINILM_MODEL_ID.into(),
        },
        questions: mmlu,
        questions_emb: mmlu_emb,
        ood: gsm,
        ood_emb: gsm_emb,
        multi,
        probe: Probe::MiniLm { encoder, mt_bench },
    })
}

/// Distinct subjects (groups) of a table.
fn groups_of(t: &OutcomeTable) -> usize {
    t.prompts()
        .iter()
        .filter_map(|p| p.group.as_deref())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Synthetic question set (`n_items`, 40 groups), a shifted set (`n_items / 2` from 20 new
/// groups, topic shift 0.5) and a five-model set (`n_items`), in one embedding space.
fn synthetic_inputs<'a>(config: &RouteLlmConfig, seed: u64, n_items: usize) -> Result<Inputs<'a>> {
    let space = SyntheticEmbedding {
        seed,
        ..SyntheticEmbedding::default()
    };
    let q = generate_task(
        &SyntheticTaskConfig::pair("synthetic", n_items, seed),
        &space,
    )?;
    let ood_cfg = SyntheticTaskConfig {
        n_groups: 20,
        group_prefix: "shifted-group".into(),
        topic_shift: 0.5,
        ..SyntheticTaskConfig::pair("shifted", (n_items / 2).max(20), seed.wrapping_add(1))
    };
    let ood = generate_task(&ood_cfg, &space)?;
    let mut embedder = q.embedder()?;
    ood.add_to(&mut embedder)?;
    let multi = if config.skip_multi {
        None
    } else {
        let m = generate_task(
            &SyntheticTaskConfig::multi("synthetic-multi", n_items, seed.wrapping_add(2)),
            &space,
        )?;
        m.add_to(&mut embedder)?;
        Some(MultiData {
            title: "synthetic (seeded, not real data)".into(),
            table: m.table,
            emb: m.embeddings,
        })
    };
    let n_subjects = groups_of(&q.table);
    Ok(Inputs {
        data: DataSummary {
            synthetic: true,
            source: format!(
                "synthetic (mf_router::synthetic), seed {seed}, {n_items} items, {}-d embeddings",
                space.dim
            ),
            weak: "weak".into(),
            strong: "strong".into(),
            n_questions: q.table.n_prompts(),
            weak_quality: q.table.mean_score(0),
            strong_quality: q.table.mean_score(1),
            n_out_of_distribution: ood.table.n_prompts(),
            n_subjects,
            embedding_dim: space.dim,
            embedding_model: space.model_id(),
        },
        questions: q.table,
        questions_emb: q.embeddings,
        ood: ood.table,
        ood_emb: ood.embeddings,
        multi,
        probe: Probe::Synthetic { embedder },
    })
}

/// Trains one MF model on the train rows of a split, validating on its validation rows.
fn train_pair(
    table: &OutcomeTable,
    emb: &EmbeddingMatrix,
    split: &Split,
    ties: TiePolicy,
    cfg: &MfConfig,
) -> Result<(MfModel, TrainLog)> {
    let opts = BattleOptions::golden(ties);
    let (train, _) = golden_battles(table, Some(&split.train), &opts)?;
    let (val, _) = golden_battles(table, Some(&split.val), &opts)?;
    train_mf(cfg, table.models(), emb, &train, &val)
}

/// One seed's result with what the later sections need.
struct SeedRun {
    result: SeedResult,
    reports: Vec<PairReport>,
    models: Vec<MfModel>,
    split: Split,
}

/// The three pair experiments of one seed.
fn run_seed(seed: u64, inp: &Inputs<'_>, cfg: &MfConfig, n_subjects: usize) -> Result<SeedRun> {
    let names = Names::of(inp.data.synthetic);
    let (weak, strong) = (inp.data.weak.as_str(), inp.data.strong.as_str());
    let (mmlu, mmlu_emb) = (&inp.questions, &inp.questions_emb);
    let cfg = MfConfig {
        seed,
        ..cfg.clone()
    };
    let opts = PairReportOptions {
        base_seed: 1000 * seed,
        ..PairReportOptions::default()
    };
    let (w, s) = (mmlu.model_index(weak)?, mmlu.model_index(strong)?);
    let split = random_split(mmlu, 0.1, 0.2, seed)?;
    let test = mmlu.take_rows(&split.test)?;
    let test_emb = mmlu_emb.take_rows(&split.test);
    let mut logs = Vec::new();
    let mut models = Vec::new();
    let (mut mmlu_scores, mut gsm_scores) = (Vec::new(), Vec::new());
    for (ties, name) in POLICIES {
        let (m, log) = train_pair(mmlu, mmlu_emb, &split, ties, &cfg)?;
        mmlu_scores.push((name.to_string(), m.pair_win_probs(&test_emb, w, s, 1)?));
        gsm_scores.push((name.to_string(), m.pair_win_probs(&inp.ood_emb, w, s, 1)?));
        logs.push(NamedLog {
            name: format!("seed {seed} {name} ({} random split)", names.q),
            log,
        });
        models.push(m);
    }
    let r_mmlu = PairReport::evaluate(
        format!(
            "{} held-out questions (seed {seed}): {}",
            names.q, names.pair
        ),
        &test,
        weak,
        strong,
        &mmlu_scores,
        &opts,
    )?;
    let r_gsm = PairReport::evaluate(
        format!(
            "{}, {}-trained router (seed {seed}): {}",
            names.ood, names.q, names.pair
        ),
        &inp.ood,
        weak,
        strong,
        &gsm_scores,
        &opts,
    )?;
    // Held-out subjects.
    let held = choose_groups(mmlu, n_subjects, seed)?;
    let gsplit = group_split(mmlu, &held, 0.1, seed)?;
    let gtest = mmlu.take_rows(&gsplit.test)?;
    let gtest_emb = mmlu_emb.take_rows(&gsplit.test);
    let mut g_scores = Vec::new();
    for (ties, name) in POLICIES {
        let (m, log) = train_pair(mmlu, mmlu_emb, &gsplit, ties, &cfg)?;
        g_scores.push((name.to_string(), m.pair_win_probs(&gtest_emb, w, s, 1)?));
        logs.push(NamedLog {
            name: format!("seed {seed} {name} (held-out {})", names.groups),
            log,
        });
    }
    let r_sub = PairReport::evaluate(
        format!(
            "{} held-out {g} (seed {seed}, {n_subjects} {g}): {}",
            names.q,
            names.pair,
            g = names.groups
        ),
        &gtest,
        weak,
        strong,
        &g_scores,
        &opts,
    )?;
    Ok(SeedRun {
        result: SeedResult {
            seed,
            held_out_questions: SeedMetrics::of(&r_mmlu),
            out_of_distribution: SeedMetrics::of(&r_gsm),
            held_out_subjects: SeedMetrics::of(&r_sub),
            subjects: held,
            duplicate_texts: split.report.duplicate_texts,
            logs,
        },
        reports: vec![r_mmlu, r_gsm, r_sub],
        models,
        split,
    })
}

/// The experiments, in the order of the module docs.
fn study(config: &RouteLlmConfig, inp: Inputs<'_>, t_start: Instant) -> Result<RouteLlmReport> {
    let names = Names::of(inp.data.synthetic);
    if config.held_out_subjects >= inp.data.n_subjects {
        return Err(MfError::param(
            "held_out_subjects",
            format!(
                "need fewer than the {} {} of the data, got {}",
                inp.data.n_subjects, names.groups, config.held_out_subjects
            ),
        ));
    }
    let cfg = MfConfig {
        epochs: config.epochs(),
        lr: config.lr,
        patience: Some(config.patience),
        ..MfConfig::default()
    };
    // Seeds in parallel on the available cores (each training is single-threaded).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let seeds: Vec<u64> = (0..config.seeds()).collect();
    if config.progress {
        eprintln!(
            "training {} seeds × 4 MF models on {threads} threads …",
            seeds.len()
        );
    }
    let t_train = Instant::now();
    let mut runs: Vec<SeedRun> = Vec::new();
    for chunk in seeds.chunks(threads) {
        let got: Vec<Result<SeedRun>> = std::thread::scope(|sc| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&seed| {
                    let (inp, cfg) = (&inp, &cfg);
                    let n = config.held_out_subjects;
                    sc.spawn(move || run_seed(seed, inp, cfg, n))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for g in got {
            let run = g?;
            if config.progress {
                let r = &run.result;
                let apgrs = |m: &SeedMetrics| {
                    m.routers
                        .iter()
                        .map(|c| format!("{:.3}", c.apgr_area))
                        .collect::<Vec<_>>()
                        .join("/")
                };
                eprintln!(
                    "seed {}: {} APGR {} | {} {} | {} {}",
                    r.seed,
                    names.q,
                    apgrs(&r.held_out_questions),
                    names.ood,
                    apgrs(&r.out_of_distribution),
                    names.groups,
                    apgrs(&r.held_out_subjects),
                );
            }
            runs.push(run);
        }
    }
    let train_seconds = t_train.elapsed().as_secs_f64();
    let Some(first) = runs.first() else {
        return Err(MfError::param("seeds", "must be at least 1"));
    };
    let details: Vec<Detail> = first
        .reports
        .iter()
        .zip(names.slugs)
        .map(|(r, slug)| Detail {
            slug: format!("{slug}_seed0"),
            report: r.clone(),
        })
        .collect();
    let multi = match &inp.multi {
        Some(m) => Some(multi_model(m, &cfg, names.slugs[3])?),
        None => None,
    };
    let (speed, checkpoint) = speed_and_checkpoint(first, &inp, threads)?;
    Ok(RouteLlmReport {
        config: config.clone(),
        data: inp.data,
        details,
        seeds: runs.into_iter().map(|r| r.result).collect(),
        train_seconds,
        threads,
        multi,
        speed,
        total_seconds: t_start.elapsed().as_secs_f64(),
        checkpoint,
    })
}

/// N models: MF on all pairs of the train split, AIQ on the test split.
fn multi_model(m: &MultiData, cfg: &MfConfig, slug: &str) -> Result<MultiResult> {
    let all = &m.table;
    let train_rows = rows_of(all, "train");
    let test_rows = rows_of(all, "test");
    // Validation: a seeded 10% of the train rows.
    let train_table = all.take_rows(&train_rows)?;
    let inner = random_split(&train_table, 0.1, 0.0001, 0)?;
    let tr: Vec<usize> = inner
        .train
        .iter()
        .chain(&inner.test)
        .map(|&i| train_rows[i])
        .collect();
    let va: Vec<usize> = inner.val.iter().map(|&i| train_rows[i]).collect();
    let test = all.take_rows(&test_rows)?;
    // The routers embed the test prompts by text: serve the vectors computed once.
    let tx = texts(all);
    let refs: Vec<&str> = tx.iter().map(String::as_str).collect();
    let lookup: Arc<dyn TextEmbedder + Send + Sync> =
        Arc::new(LookupEmbedder::from_matrix("study-lookup", &refs, &m.emb)?);
    let mut trainings = Vec::new();
    let mut routers: Vec<MfMultiRouter> = Vec::new();
    for (ties, name) in POLICIES {
        let opts = BattleOptions::golden(ties);
        let (btr, st) = golden_battles(all, Some(&tr), &opts)?;
        let (bva, _) = golden_battles(all, Some(&va), &opts)?;
        let t0 = Instant::now();
        // All pairs per prompt: larger steps (≈10 prompts each) and fewer epochs.
        let mcfg = MfConfig {
            batch_size: 512,
            epochs: cfg.epochs.min(20),
            ..cfg.clone()
        };
        let (model, log) = train_mf(&mcfg, all.models(), &m.emb, &btr, &bva)?;
        trainings.push(MultiTraining {
            name: name.into(),
            battles: btr.len(),
            decisive: st.decisive,
            ties_kept: st.ties_kept,
            ties_dropped: st.ties_dropped,
            log,
            seconds: t0.elapsed().as_secs_f64(),
        });
        routers.push(MfMultiRouter::new(Arc::new(model), lookup.clone()).named(name));
    }
    let dyn_routers: Vec<&dyn MultiRouter> =
        routers.iter().map(|r| r as &dyn MultiRouter).collect();
    let n_models = all.n_models();
    let report_title = if slug.starts_with("synthetic") {
        format!("Synthetic test split: {n_models} models")
    } else {
        format!("RouterBench test split: {n_models} models")
    };
    let report = MultiReport::evaluate(report_title, &test, &dyn_routers, 60)?;
    Ok(MultiResult {
        title: m.title.clone(),
        n_prompts: all.n_prompts(),
        n_train: train_rows.len(),
        n_test: test_rows.len(),
        n_pairs: n_models * n_models.saturating_sub(1) / 2,
        trainings,
        report,
        slug: slug.into(),
    })
}

/// Batch-1 and batch-32 routed queries/s of `router` on `texts` (after a warm-up).
fn time_routing<E: TextEmbedder>(router: &LoadedRouter<E>, texts: &[&str]) -> Result<(f64, f64)> {
    std::hint::black_box(router.route_batch(&texts[..4.min(texts.len())])?); // warm-up
    let t0 = Instant::now();
    for t in texts {
        std::hint::black_box(router.route(t)?);
    }
    let qps1 = texts.len() as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for chunk in texts.chunks(32) {
        std::hint::black_box(router.route_batch(chunk)?);
    }
    let qps32 = texts.len() as f64 / t0.elapsed().as_secs_f64();
    Ok((qps1, qps32))
}

/// Routed queries/s including embedding, training time per epoch, the int8 comparison and
/// the checkpoint round trip, on seed 0's ties-½ model.
fn speed_and_checkpoint(
    run: &SeedRun,
    inp: &Inputs<'_>,
    threads: usize,
) -> Result<(SpeedResult, Checkpoint)> {
    let synthetic = inp.data.synthetic;
    let (weak, strong) = (inp.data.weak.as_str(), inp.data.strong.as_str());
    let (mmlu, mmlu_emb) = (&inp.questions, &inp.questions_emb);
    let model = run.models.get(1).ok_or_else(|| MfError::Empty {
        what: "seed 0's ties-½ model".into(),
    })?;
    let (w, s) = (mmlu.model_index(weak)?, mmlu.model_index(strong)?);
    // Checkpoint with a threshold calibrated on validation for a 50% strong-model share.
    let val_emb = mmlu_emb.take_rows(&run.split.val);
    let val_scores = model.pair_win_probs(&val_emb, w, s, 1)?;
    let thr = routing_core::calibrate_threshold(&val_scores, 0.5)?;
    let notes = if synthetic {
        "synthetic golden-label battles (ties = 1/2; not real data), random split seed 0 (70/10/20); threshold for 50% strong-model calls on validation"
    } else {
        "RouteLLM MMLU golden-label battles (ties = 1/2), random split seed 0 (70/10/20); threshold for 50% GPT-4 calls on validation"
    };
    let ck = Checkpoint::mf(model.clone(), weak, strong, &inp.data.embedding_model)?
        .with_threshold(thr, Some(0.5))
        .with_notes(notes);
    let loaded = round_trip(&ck)?;
    let test_emb = mmlu_emb.take_rows(&run.split.test);
    let a = ck.score_embeddings(&test_emb)?;
    let b = loaded.score_embeddings(&test_emb)?;
    let identical = a == b;
    let test_texts: Vec<&str> = run
        .split
        .test
        .iter()
        .map(|&r| mmlu.prompts()[r].text.as_deref().unwrap_or(""))
        .collect();
    let first = &test_texts[..256.min(test_texts.len())];

    let mut routing = Vec::new();
    let mut int8 = None;
    match &inp.probe {
        Probe::MiniLm { encoder, mt_bench } => {
            // The int8 encoder: how far its embeddings move the router, on the whole test split.
            let int8_encoder = (*encoder).clone().quantized()?;
            let fast = LoadedRouter::new(loaded.clone(), &int8_encoder)?;
            let t0 = Instant::now();
            let a_int8 = fast.score(&test_texts)?;
            let int8_split_secs = t0.elapsed().as_secs_f64();
            let agree = a
                .iter()
                .zip(&a_int8)
                .filter(|(x, y)| (f64::from(**x) >= thr) == (f64::from(**y) >= thr))
                .count() as f64
                / a.len() as f64;
            let max_delta = a
                .iter()
                .zip(&a_int8)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            let test = mmlu.take_rows(&run.split.test)?;
            let quality = PairReport::evaluate(
                "MMLU held-out questions (seed 0): MF (ties = ½) on f32 vs int8 query embeddings",
                &test,
                weak,
                strong,
                &[
                    (
                        "MF, f32 embeddings".to_string(),
                        a.iter().map(|&v| f64::from(v)).collect(),
                    ),
                    (
                        "MF, int8 embeddings".to_string(),
                        a_int8.iter().map(|&v| f64::from(v)).collect(),
                    ),
                ],
                &PairReportOptions::default(),
            )?;
            int8 = Some(Int8Comparison {
                n_test: test_texts.len(),
                seconds: int8_split_secs,
                decision_agreement: agree,
                max_score_change: max_delta,
                f32: quality.summaries[1].clone(),
                int8: quality.summaries[2].clone(),
            });
            // Speed: embedding + MF scoring, fresh (no cache), on two prompt sets: the first
            // 256 MMLU test prompts and MT-Bench's 80 first-turn questions (chat queries).
            let mt_refs: Vec<&str> = mt_bench.iter().map(String::as_str).collect();
            let sets: [(&str, &[&str]); 2] = [
                ("MMLU test prompts (first 256)", first),
                ("MT-Bench first turns (80)", &mt_refs),
            ];
            let exact = LoadedRouter::new(loaded, *encoder)?;
            for (set, texts) in sets {
                let tokens = encoder.tokenize(texts)?;
                let mean_tokens =
                    tokens.iter().map(Vec::len).sum::<usize>() as f64 / texts.len() as f64;
                for (path, router) in [
                    ("f32 (burn `flex`)", &exact),
                    ("int8 (`lm::models::bert::int8`)", &fast),
                ] {
                    let (qps1, qps32) = time_routing(router, texts)?;
                    routing.push(RoutingSpeed {
                        set: set.into(),
                        mean_tokens,
                        encoder: path.into(),
                        qps_batch1: qps1,
                        qps_batch32: qps32,
                    });
                }
            }
        }
        Probe::Synthetic { embedder } => {
            let router = LoadedRouter::new(loaded, embedder)?;
            let words = first
                .iter()
                .map(|t| t.split_whitespace().count())
                .sum::<usize>() as f64
                / first.len().max(1) as f64;
            let (qps1, qps32) = time_routing(&router, first)?;
            routing.push(RoutingSpeed {
                set: format!("synthetic test items (first {})", first.len()),
                mean_tokens: words,
                encoder: "synthetic lookup (no encoder)".into(),
                qps_batch1: qps1,
                qps_batch32: qps32,
            });
        }
    }
    // MF scoring alone (embeddings given).
    let t0 = Instant::now();
    let reps = 20;
    for _ in 0..reps {
        std::hint::black_box(model.pair_win_probs(mmlu_emb, w, s, 1)?);
    }
    let mf_only = (reps * mmlu_emb.len()) as f64 / t0.elapsed().as_secs_f64();
    let log = &run.result.logs[1].log;
    let log_drop = &run.result.logs[0].log;
    Ok((
        SpeedResult {
            threads,
            routing,
            mf_only_qps: mf_only,
            n_train_half: log.n_train,
            epoch_seconds_half: log.seconds_per_epoch(),
            n_train_drop: log_drop.n_train,
            epoch_seconds_drop: log_drop.seconds_per_epoch(),
            int8,
            checkpoint_identical: identical,
            threshold: thr,
            n_checkpoint_test: a.len(),
        },
        ck,
    ))
}

/// MT-Bench's first-turn questions (`routellm_evals/mt_bench/question.jsonl`), in file order.
fn read_mt_bench(data: &Path) -> Result<Vec<String>> {
    let path = data.join("routellm_evals/mt_bench/question.jsonl");
    let turns: Vec<String> = datasets::read_mt_bench_questions(&path)?
        .into_iter()
        .filter_map(|q| q.first_turn)
        .collect();
    if turns.is_empty() {
        return Err(MfError::EmptyFile {
            path,
            what: "MT-Bench questions".into(),
        });
    }
    Ok(turns)
}

fn ms(v: &[f64]) -> String {
    let m = MeanStd::of(v);
    format!("{:.4} ± {:.4}", m.mean, m.std)
}

/// A share as a percentage, or "—" when the curve never reaches the target.
fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn ms_pct(v: &[Option<f64>]) -> String {
    let got: Vec<f64> = v.iter().flatten().map(|x| 100.0 * x).collect();
    if got.is_empty() {
        return "—".into();
    }
    let m = MeanStd::of(&got);
    let miss = v.len() - got.len();
    format!(
        "{:.1}% ± {:.1}{}",
        m.mean,
        m.std,
        if miss > 0 {
            format!(" ({miss} seeds n/a)")
        } else {
            String::new()
        }
    )
}

/// The seed-aggregated table of one evaluation set.
fn seed_table(title: &str, per_seed: &[&SeedMetrics]) -> String {
    let mut s = format!(
        "### {title}: mean ± std over {} seeds\n\n| router | APGR (code: area) | APGR (paper: mean of 10) | CPT(50%) | CPT(80%) |\n|---|---:|---:|---:|---:|\n",
        per_seed.len()
    );
    let rand: Vec<f64> = per_seed.iter().map(|m| m.random_apgr).collect();
    s += &format!(
        "| random (10 draws per seed) | {} | — | ≈50% | ≈80% |\n",
        ms(&rand)
    );
    let mut rows: Vec<(String, Vec<&CurveSummary>)> = vec![(
        "oracle".into(),
        per_seed.iter().map(|m| &m.oracle).collect(),
    )];
    if let Some(first) = per_seed.first() {
        for (i, r) in first.routers.iter().enumerate() {
            rows.push((
                r.router.clone(),
                per_seed.iter().filter_map(|m| m.routers.get(i)).collect(),
            ));
        }
    }
    for (name, v) in rows {
        s += &format!(
            "| {name} | {} | {} | {} | {} |\n",
            ms(&v.iter().map(|c| c.apgr_area).collect::<Vec<_>>()),
            ms(&v.iter().map(|c| c.apgr_mean).collect::<Vec<_>>()),
            ms_pct(&v.iter().map(|c| c.cpt50).collect::<Vec<_>>()),
            ms_pct(&v.iter().map(|c| c.cpt80).collect::<Vec<_>>()),
        );
    }
    s + "\n"
}

impl RouteLlmReport {
    /// The report as markdown (`report.md`): method, data, seed-aggregated tables, training
    /// logs, seed 0 in detail, the N-model section, speed, int8 and checkpoint.
    pub fn to_markdown(&self) -> String {
        let synthetic = self.data.synthetic;
        let names = Names::of(synthetic);
        let c = &self.config;
        let d = &self.data;
        let mut md = if synthetic {
            format!(
                "# RouteLLM MF router on synthetic outcomes (not real data)\n\nGenerated by `routellm_mf --synthetic`. **Synthetic data** (`mf_router::synthetic`: seeded item-response outcomes and made-up {dim}-d query embeddings with a planted topic and difficulty structure): these numbers show the pipeline works, not how real models behave. Router: RouteLLM's matrix factorisation (Ong et al. 2024, §4.2; `P` 128-d L2-normalised, query projected {dim}→128 without bias, element-wise product, linear classifier without bias), trained with Adam (lr {LR}, weight decay 1e-5 as RouteLLM, batch 64, at most {EPOCHS} epochs, early stopping on validation loss with patience {PAT}) on **golden-label battles** (the correct answer beats the wrong one). Two tie policies: dropped (RouteLLM's decisive battles) and counted ½. Shares are of calls to the strong model; `code` APGR is the area under the PGR curve over achieved shares, `paper` the mean over 10%…100%.\n\n",
                dim = d.embedding_dim,
                LR = c.lr,
                EPOCHS = c.epochs(),
                PAT = c.patience,
            )
        } else {
            format!(
                "# RouteLLM MF router on real outcomes\n\nGenerated by `routellm_mf`. Router: RouteLLM's matrix factorisation (Ong et al. 2024, §4.2; `P` 128-d L2-normalised, query projected 384→128 without bias, element-wise product, linear classifier without bias) on frozen all-MiniLM-L6-v2 embeddings, trained with Adam (lr {LR}, weight decay 1e-5 as RouteLLM, batch 64, at most {EPOCHS} epochs, early stopping on validation loss with patience {PAT}) on **golden-label battles** (the correct answer beats the wrong one). Two tie policies: dropped (RouteLLM's decisive battles) and counted ½. Shares are of calls to GPT-4; `code` APGR is the area under the PGR curve over achieved shares, `paper` the mean over 10%…100%.\n\n",
                LR = c.lr,
                EPOCHS = c.epochs(),
                PAT = c.patience,
            )
        };
        let dup = self.seeds.first().map_or(0, |s| s.duplicate_texts);
        md += &if synthetic {
            format!(
                "Data: {} items in {} groups (weak {:.4}, strong {:.4}) and a shifted set of {} items from {} new groups (topic shift 0.5). Random split 70/10/20 by seeded text clusters ({dup} repeated texts kept together); held-out groups: {} seeded groups per seed.\n\n",
                d.n_questions,
                d.n_subjects,
                d.weak_quality,
                d.strong_quality,
                d.n_out_of_distribution,
                20,
                c.held_out_subjects
            )
        } else {
            format!(
                "Data: RouteLLM MMLU ({} questions, Mixtral {:.4}, GPT-4 {:.4}) and GSM8K ({} questions). Random split 70/10/20 by seeded text clusters ({dup} repeated texts kept together); held-out subjects: {} seeded MMLU subjects per seed.\n\n",
                d.n_questions,
                d.weak_quality,
                d.strong_quality,
                d.n_out_of_distribution,
                c.held_out_subjects
            )
        };
        md += "## Summary over seeds\n\n";
        let per = |f: fn(&SeedResult) -> &SeedMetrics| -> Vec<&SeedMetrics> {
            self.seeds.iter().map(f).collect()
        };
        md += &seed_table(
            &format!("{} held-out questions (20% test split)", names.q),
            &per(|r| &r.held_out_questions),
        );
        md += &seed_table(
            &format!("{} (router trained on {} only)", names.ood, names.q),
            &per(|r| &r.out_of_distribution),
        );
        md += &seed_table(
            &format!(
                "{} held-out {g} ({} {g})",
                names.q,
                c.held_out_subjects,
                g = names.groups
            ),
            &per(|r| &r.held_out_subjects),
        );
        md += &format!("Held-out {} per seed: ", names.groups);
        md += &self
            .seeds
            .iter()
            .map(|r| format!("seed {}: {}", r.seed, r.subjects.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        md += if synthetic {
            "\n\n"
        } else {
            "\n\nReference: RouteLLM Table 2 reports APGR 0.597 on MMLU for MF trained on Arena data augmented with golden-label MMLU (validation-split) battles, with OpenAI `text-embedding-3-small` query embeddings.\n\n"
        };

        // Training log summary.
        md += "## Training\n\n| run | train battles | val battles | epochs run | best epoch | s / epoch | best val loss | val acc (decisive) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for r in &self.seeds {
            for NamedLog { name, log } in &r.logs {
                let best = log
                    .best_epoch
                    .checked_sub(1)
                    .and_then(|i| log.epochs.get(i));
                md += &format!(
                    "| {name} | {} | {} | {} | {} | {:.3} | {:.4} | {} |\n",
                    log.n_train,
                    log.n_val,
                    log.epochs.len(),
                    log.best_epoch,
                    log.seconds_per_epoch(),
                    best.and_then(|b| b.val_loss).unwrap_or(f64::NAN),
                    best.and_then(|b| b.val_accuracy)
                        .map_or("—".into(), |a| format!("{a:.3}"))
                );
            }
        }
        md += &format!(
            "\nAll {} trainings took {:.1} s wall on {} threads.\n\n",
            self.seeds.len() * 4,
            self.train_seconds,
            self.threads
        );

        // Seed-0 detailed reports.
        md += "## Seed 0 in detail\n\n";
        for dt in &self.details {
            md += &dt.report.markdown(&format!("{}.svg", dt.slug));
        }

        if let Some(m) = &self.multi {
            md += &format!(
                "## N-model routing: {}, {} models\n\n{} prompts ({} train, {} test). MF trained on golden-label battles of all {} model pairs of the train split; expected quality = mean win probability against the other models (see `mf_router::mf`). AIQ (RouterBench) integrates the non-decreasing convex hull of cost–quality points over the single-model cost range.\n\n",
                m.title,
                m.report.models.len(),
                m.n_prompts,
                m.n_train,
                m.n_test,
                m.n_pairs
            );
            for t in &m.trainings {
                md += &format!(
                    "- {}: {} training battles ({} decisive, {} ties kept, {} dropped), {} epochs ({:.2} s/epoch, best {}), {:.1} s.\n",
                    t.name,
                    t.battles,
                    t.decisive,
                    t.ties_kept,
                    t.ties_dropped,
                    t.log.epochs.len(),
                    t.log.seconds_per_epoch(),
                    t.log.best_epoch,
                    t.seconds
                );
            }
            md += "\n";
            md += &m.report.markdown(&format!("{}.svg", m.slug));
        }

        md += &self.speed_markdown(&names);
        md += &format!("\nTotal wall time {:.1} s.\n", self.total_seconds);
        md
    }

    /// The speed, int8 and checkpoint sections.
    fn speed_markdown(&self, names: &Names) -> String {
        let sp = &self.speed;
        let mut rows = String::new();
        for r in &sp.routing {
            rows += &format!(
                "| {} | {:.1} | {} | {:.1} | {:.1} |\n",
                r.set, r.mean_tokens, r.encoder, r.qps_batch1, r.qps_batch32
            );
        }
        let mut s = if self.data.synthetic {
            format!(
                "## Speed (release build, this machine, {} cores)\n\nRouted queries per second with the synthetic lookup embedder (no encoder runs: look up → MF score → threshold). Batch 1 = one `route` call per prompt; batch 32 = `route_batch` on chunks of 32. Tokens: words of the synthetic item texts.\n\n| prompts | tokens (mean) | encoder | batch 1 q/s | batch 32 q/s |\n|---|---:|---|---:|---:|\n{rows}\n",
                sp.threads
            )
        } else {
            format!(
                "## Speed (release build, this machine, {} cores)\n\nRouted queries per second, MiniLM embedding included (tokenise → encode → pool → MF score → threshold), fresh prompts (no cache). Batch 1 = one `route` call per prompt; batch 32 = `route_batch` on chunks of 32.\n\n| prompts | tokens (mean) | encoder | batch 1 q/s | batch 32 q/s |\n|---|---:|---|---:|---:|\n{rows}\nRouteLLM reports 155 requests/s for its MF router on a GPU (with a remote embedding call).\n\n",
                sp.threads
            )
        };
        s += &format!(
            "| measure | value |\n|---|---:|\n| MF scoring only (embeddings given), queries/s, 1 thread | {:.0} |\n| training s/epoch, {q} battles ties=½ ({} battles) | {:.3} |\n| training s/epoch, {q} battles ties dropped ({} battles) | {:.3} |\n\n",
            sp.mf_only_qps,
            sp.n_train_half,
            sp.epoch_seconds_half,
            sp.n_train_drop,
            sp.epoch_seconds_drop,
            q = names.q,
        );
        if let Some(i) = &sp.int8 {
            s += &format!(
                "### int8 query embeddings: does routing change?\n\nThe router was trained on f32 embeddings; the {} test prompts were embedded again by the int8 encoder ({:.1} s) and scored by the same checkpoint. Same decision at the 50% threshold for **{:.2}%** of prompts; largest score change {:.4}.\n\n| query embeddings | APGR (code) | CPT(50%) | CPT(80%) |\n|---|---:|---:|---:|\n| f32 | {:.4} | {} | {} |\n| int8 | {:.4} | {} | {} |\n\n",
                i.n_test,
                i.seconds,
                100.0 * i.decision_agreement,
                i.max_score_change,
                i.f32.apgr_area,
                pct(i.f32.cpt50),
                pct(i.f32.cpt80),
                i.int8.apgr_area,
                pct(i.int8.cpt50),
                pct(i.int8.cpt80),
            );
        }
        s += &format!(
            "## Checkpoint\n\n`checkpoint`: MF (ties = ½, seed 0), threshold {:.5} (50% {} calls on validation). Reloaded scores on the {} test prompts identical: **{}**.\n\n",
            sp.threshold,
            if self.data.synthetic {
                "strong-model"
            } else {
                "GPT-4"
            },
            sp.n_checkpoint_test,
            sp.checkpoint_identical
        );
        s
    }

    /// The compact results (`summary.json`): per-seed metrics of the three pair experiments
    /// (`mmlu`, `gsm8k`, `subjects`; the synthetic analogues under the same keys), the N-model
    /// AIQs (`multi`, `null` when skipped) and the speed measures (`speed`).
    pub fn summary(&self) -> serde_json::Value {
        let per = |f: fn(&SeedResult) -> &SeedMetrics| -> Vec<&SeedMetrics> {
            self.seeds.iter().map(f).collect()
        };
        let multi = match &self.multi {
            Some(m) => serde_json::json!([{
                "zero_router_aiq": m.report.zero_router_aiq,
                "routers": m.report.routers.iter().map(|(n, _, a)| serde_json::json!({"router": n, "aiq": a})).collect::<Vec<_>>(),
            }]),
            None => serde_json::Value::Null,
        };
        let sp = &self.speed;
        let int8 = match &sp.int8 {
            Some(i) => serde_json::json!({
                "decision_agreement": i.decision_agreement, "max_score_change": i.max_score_change,
                "apgr_f32": i.f32.apgr_area, "apgr_int8": i.int8.apgr_area,
                "cpt50_f32": i.f32.cpt50, "cpt50_int8": i.int8.cpt50,
                "cpt80_f32": i.f32.cpt80, "cpt80_int8": i.int8.cpt80,
            }),
            None => serde_json::Value::Null,
        };
        let routing: Vec<serde_json::Value> = sp
            .routing
            .iter()
            .map(|r| {
                serde_json::json!({
                    "set": r.set, "mean_tokens": r.mean_tokens, "encoder": r.encoder,
                    "qps_batch1": r.qps_batch1, "qps_batch32": r.qps_batch32,
                })
            })
            .collect();
        serde_json::json!({
            "mmlu": per(|r| &r.held_out_questions),
            "gsm8k": per(|r| &r.out_of_distribution),
            "subjects": per(|r| &r.held_out_subjects),
            "multi": multi,
            "speed": {
                "routing": routing, "mf_only_qps": sp.mf_only_qps,
                "epoch_seconds_half": sp.epoch_seconds_half, "epoch_seconds_drop": sp.epoch_seconds_drop,
                "checkpoint_identical": sp.checkpoint_identical, "threshold": sp.threshold,
                "int8": int8,
            },
        })
    }

    /// Writes `report.md`, `summary.json`, the SVG figures and `checkpoint/` into `dir`
    /// (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        for dt in &self.details {
            dt.report
                .figure()
                .save(&dir.join(format!("{}.svg", dt.slug)))?;
        }
        if let Some(m) = &self.multi {
            m.report
                .figure()?
                .save(&dir.join(format!("{}.svg", m.slug)))?;
        }
        self.checkpoint.save(dir.join("checkpoint"))?;
        write_text(&dir.join("report.md"), &self.to_markdown())?;
        write_json(&dir.join("summary.json"), &self.summary())
    }
}
