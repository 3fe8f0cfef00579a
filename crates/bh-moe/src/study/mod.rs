//! The seed's study: expert-routing configurations × datasets, scored through `evals`' harness,
//! with the 16 metrics, per-experiment logs, a results table, the 9-panel figure and a report.
//!
//! Protocol ([`run_study`]):
//! 1. **Nulls.** [`calibrate_nulls`] runs calibration windows (WikiText-2 *validation*) through
//!    the model under its own rule, pools each layer's router logits over tokens and experts,
//!    fits a Gaussian KDE per layer (Scott's rule, at most 4,000 samples, seeded) and tabulates
//!    its CDF; the result is a [`crate::KdeFile`] with provenance.
//! 2. **Grid.** [`config::default_grid`]: top-k at 8, 16, 32, 64 and BH at `max_k` ∈ {8, 16,
//!    32, 64} × α ∈ {0.30, 0.40, 0.50, 0.60}, `min_k` = 1; plus top-p at the mean expert counts
//!    of the `max_k = E` BH configurations, `p` found by bisection on calibration logits
//!    ([`match_top_p`]).
//! 3. **Datasets.** WikiText-2 test (rolling log-likelihood, word perplexity), LAMBADA OpenAI
//!    (target log-likelihood, `acc`), HellaSwag validation (`acc_norm`), the first `limit` items
//!    each, scored by `evals`' [`Scorer`] (prefix-cache mode, lm-eval semantics) on a
//!    [`RoutedLm`].
//! 4. **Per experiment** (configuration, dataset): the seed's two files
//!    `{config}_{dataset}.json` ([`ExperimentSummary`]: configuration, the 16 metrics, totals)
//!    and `{config}_{dataset}_internal_routing.parquet` (every sample × token × layer, see
//!    [`log`]) with its `…_internal_routing.json` sidecar. A finished experiment (its summary
//!    exists) is skipped: runs resume. A summary from another run (a different configuration,
//!    item count, model or dataset under the same name) is an error naming it; one cut short
//!    by a crash is run again (summaries are written by rename, so new ones are never cut).
//! 5. **Across experiments**: `bh_routing_results.{csv,json}`, `bh_routing_figure.svg`
//!    ([`figure`]), `report.md` ([`report`]).

pub mod config;
pub mod figure;
pub mod log;
pub mod pipeline;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use evals::harness::multiple_choice::McItem;
use evals::harness::record::aggregate;
use evals::harness::runner::evaluate_loglik_items;
use evals::harness::task::{Item, ItemKind, Task};
use evals::harness::{SampleRecord, Scorer, ScoringMode, TextRequest};
use evals::plane::{Level, PlanePoint};
use lm::Transformer;
use lm::nn::moe::{RoutedLayer, RoutingObserver};
use routing_core::expert::{CombineWeights, ExpertChoice, ExpertSelector, TopK};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{BhMoeError, Result, invalid};
use crate::kde::{CdfTable, GaussianKde, KdeOptions};
use crate::kde::{KdeFile, KdeRecord, Provenance};
use crate::metrics;
use crate::routed::RoutedLm;
use crate::select::TopP;
pub use config::{RoutingConfig, default_grid, seed_grid};

/// The benchmark a slice of items comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// WikiText-2 test documents, rolling log-likelihood: word perplexity.
    Wikitext,
    /// LAMBADA OpenAI, target log-likelihood: accuracy (`acc`).
    Lambada,
    /// HellaSwag validation, four endings: accuracy (`acc_norm`).
    Hellaswag,
}

impl Dataset {
    /// All three, in the seed's order.
    pub const ALL: [Dataset; 3] = [Dataset::Wikitext, Dataset::Lambada, Dataset::Hellaswag];

    /// `"wikitext"`, `"lambada"`, `"hellaswag"` (file names).
    pub fn name(self) -> &'static str {
        match self {
            Self::Wikitext => "wikitext",
            Self::Lambada => "lambada",
            Self::Hellaswag => "hellaswag",
        }
    }

    /// Parses [`Dataset::name`].
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                invalid(
                    "dataset",
                    format!("`{s}` (expected wikitext, lambada, hellaswag)"),
                )
            })
    }

    /// The harness task behind it.
    pub fn task(self) -> Task {
        match self {
            Self::Wikitext => Task::Wikitext2,
            Self::Lambada => Task::LambadaOpenai,
            Self::Hellaswag => Task::Hellaswag,
        }
    }

    /// The harness metric this study reports as the dataset's quality (lower is better for
    /// perplexity).
    pub fn quality_metric(self) -> &'static str {
        match self {
            Self::Wikitext => "word_perplexity",
            Self::Lambada => "acc",
            Self::Hellaswag => "acc_norm",
        }
    }
}

/// The items of one dataset for the study.
#[derive(Debug, Clone)]
pub struct DatasetItems {
    /// Which benchmark.
    pub dataset: Dataset,
    /// Where the items came from (file, or "synthetic").
    pub source: String,
    /// The items, in order.
    pub items: Vec<Item>,
}

/// The first `limit` items of each dataset from `data_dir` (the `shared/data` layout).
///
/// # Errors
/// Missing or malformed data files (named by the harness).
pub fn load_datasets(
    data_dir: &Path,
    datasets: &[Dataset],
    limit: usize,
) -> Result<Vec<DatasetItems>> {
    datasets
        .iter()
        .map(|&d| {
            let items = evals::harness::runner::select(d.task().load(data_dir)?, 0, Some(limit));
            Ok(DatasetItems {
                dataset: d,
                source: format!(
                    "{} ({} items)",
                    data_dir.join(d.task().name()).display(),
                    items.len()
                ),
                items,
            })
        })
        .collect()
}

/// Seeded synthetic stand-ins for the three datasets (`n` items each): random lowercase
/// "sentences" as documents, contexts with a target word, and four-ending items. For running
/// the pipeline without data (the numbers mean nothing).
pub fn synthetic_datasets(n: usize, seed: u64) -> Vec<DatasetItems> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let word = |rng: &mut rand_chacha::ChaCha8Rng| -> String {
        let len = rng.random_range(2..7);
        (0..len)
            .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
            .collect()
    };
    let sentence = |rng: &mut rand_chacha::ChaCha8Rng, words: usize| -> String {
        (0..words).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
    };
    let mut out = Vec::new();
    let docs = (0..n)
        .map(|i| {
            let page = format!("{}.\n", sentence(&mut rng, 40));
            Item::new(
                "wikitext",
                i,
                ItemKind::Rolling {
                    title: format!("doc {i}"),
                    page,
                },
            )
        })
        .collect();
    out.push(DatasetItems {
        dataset: Dataset::Wikitext,
        source: "synthetic".into(),
        items: docs,
    });
    let targets = (0..n)
        .map(|i| {
            let ctx = sentence(&mut rng, 20);
            let target = format!(" {}", sentence(&mut rng, 1));
            Item::new(
                "lambada_openai",
                i,
                ItemKind::Target(TextRequest::new(ctx, target)),
            )
        })
        .collect();
    out.push(DatasetItems {
        dataset: Dataset::Lambada,
        source: "synthetic".into(),
        items: targets,
    });
    let mcs = (0..n)
        .map(|i| {
            let ctx = sentence(&mut rng, 15);
            let choices = (0..4).map(|_| sentence(&mut rng, 5)).collect();
            let gold = rng.random_range(0..4);
            Item::new(
                "hellaswag",
                i,
                ItemKind::MultipleChoice(McItem::from_choices(&ctx, choices, gold, true)),
            )
        })
        .collect();
    out.push(DatasetItems {
        dataset: Dataset::Hellaswag,
        source: "synthetic".into(),
        items: mcs,
    });
    out
}

/// The mixture-of-experts model the study routes.
#[derive(Debug, Clone)]
pub struct MoeModel<'m> {
    /// Name for reports.
    pub name: String,
    /// The model (its spec must have a [`lm::models::transformer::MoeSpec`]).
    pub transformer: &'m Transformer,
    /// Its tokenizer.
    pub tokenizer: &'m Tokenizer,
    /// Stop tokens.
    pub stop: Vec<u32>,
    /// BOS.
    pub bos: Option<u32>,
    /// Combine weights 1 (the testbed) instead of softmax probabilities (OLMoE).
    pub unit_weights: bool,
}

impl MoeModel<'_> {
    /// `(E, the model's own k, its combine weights)`.
    ///
    /// # Errors
    /// A dense model.
    pub fn moe(&self) -> Result<(usize, usize, CombineWeights)> {
        let m = self
            .transformer
            .spec()
            .moe
            .ok_or_else(|| invalid("model", "is not a mixture of experts"))?;
        Ok((
            m.num_experts,
            m.experts_per_token,
            CombineWeights::from_norm_topk_prob(m.norm_topk_prob),
        ))
    }

    /// The model's own selection rule (top-`k`, its weights; weight 1 on the testbed).
    ///
    /// # Errors
    /// A dense model.
    pub fn default_selector(&self) -> Result<Box<dyn ExpertSelector>> {
        let (_, k, w) = self.moe()?;
        let w = if self.unit_weights {
            CombineWeights::Unit
        } else {
            w
        };
        Ok(Box::new(TopK::new(k, false)?.with_weights(w)))
    }

    fn routed(&self, selector: Box<dyn ExpertSelector>) -> RoutedLm<'_> {
        RoutedLm::new(
            &self.name,
            self.transformer,
            self.tokenizer,
            self.stop.clone(),
            self.bos,
            selector,
        )
    }
}

/// Pools router logits per layer.
#[derive(Debug, Default)]
struct LogitPool {
    layers: Vec<Vec<f32>>,
    tokens: usize,
}

impl RoutingObserver for LogitPool {
    fn observe(&mut self, routed: &RoutedLayer<'_>) {
        if self.layers.len() <= routed.layer {
            self.layers.resize(routed.layer + 1, Vec::new());
        }
        self.layers[routed.layer].extend_from_slice(routed.logits);
        if routed.layer == 0 {
            self.tokens += routed.tokens;
        }
    }
}

/// Router logits of calibration windows, per layer (`tokens × E` each, row-major).
#[derive(Debug, Clone)]
pub struct CalibrationLogits {
    /// Per layer.
    pub layers: Vec<Vec<f32>>,
    /// Experts per layer.
    pub experts: usize,
    /// Tokens.
    pub tokens: usize,
}

/// Runs `windows` through `model` under its own rule and collects every layer's router logits.
///
/// # Errors
/// A failed forward pass.
pub fn collect_router_logits(
    model: &MoeModel<'_>,
    windows: &[Vec<u32>],
) -> Result<CalibrationLogits> {
    let (e, _, _) = model.moe()?;
    let mut selector = model.default_selector()?;
    let mut pool = LogitPool::default();
    for w in windows.iter().filter(|w| !w.is_empty()) {
        let mut cache = model.transformer.new_cache(1);
        let mut routing = lm::nn::moe::ExpertRouting::observed(selector.as_mut(), &mut pool);
        model.transformer.forward_routed(
            std::slice::from_ref(w),
            &mut cache,
            lm::LogitsAt::Last,
            &mut routing,
        )?;
    }
    if pool.tokens == 0 {
        return Err(invalid("calibration", "no calibration tokens"));
    }
    Ok(CalibrationLogits {
        layers: pool.layers,
        experts: e,
        tokens: pool.tokens,
    })
}

/// Fits one KDE null per layer on the pooled calibration logits (Scott's rule, at most
/// `max_samples` samples drawn with `seed`), keeping a CDF table with `steps_per_bandwidth`
/// grid points per bandwidth and the provenance.
///
/// # Errors
/// Degenerate samples (constant logits), as [`GaussianKde::fit_with`].
pub fn calibrate_nulls(
    logits: &CalibrationLogits,
    model_name: &str,
    calibration: &str,
    max_samples: usize,
    seed: u64,
    steps_per_bandwidth: usize,
) -> Result<KdeFile> {
    let mut records = Vec::new();
    for (l, pool) in logits.layers.iter().enumerate() {
        let samples: Vec<f64> = pool.iter().map(|&x| f64::from(x)).collect();
        let kde = GaussianKde::fit_with(
            &samples,
            &KdeOptions {
                max_samples: Some(max_samples),
                seed: seed.wrapping_add(l as u64),
                ..KdeOptions::default()
            },
        )?;
        let table = kde.tabulate(steps_per_bandwidth)?;
        records.push(
            KdeRecord::new(
                Provenance {
                    model: model_name.to_string(),
                    layer: l,
                    calibration: calibration.to_string(),
                    tokens: logits.tokens,
                    seed: Some(seed.wrapping_add(l as u64)),
                    max_samples: Some(max_samples),
                },
                &kde,
            )
            .with_table(&table),
        );
    }
    Ok(KdeFile::new(records))
}

/// Mean expert count of `selector` over the calibration logits (every token, every layer).
fn mean_count(
    selector: &mut dyn ExpertSelector,
    logits: &CalibrationLogits,
    stride: usize,
) -> Result<f64> {
    let e = logits.experts;
    let mut choice = ExpertChoice::with_capacity(e);
    let (mut sum, mut n) = (0usize, 0usize);
    for (l, pool) in logits.layers.iter().enumerate() {
        for row in pool.chunks_exact(e).step_by(stride.max(1)) {
            selector.select(l, row, &mut choice)?;
            sum += choice.len();
            n += 1;
        }
    }
    Ok(sum as f64 / n.max(1) as f64)
}

/// Mean expert count of `config` on the calibration logits (a subsample of at most ~2,000
/// tokens, every layer) — the targets top-p is matched to.
///
/// # Errors
/// Bad parameters or logits.
pub fn calibration_mean_k(
    config: &RoutingConfig,
    logits: &CalibrationLogits,
    nulls: &Arc<Vec<CdfTable>>,
) -> Result<f64> {
    let mut s = config.selector(nulls, false, CombineWeights::Probabilities)?;
    mean_count(s.as_mut(), logits, (logits.tokens / 2_000).max(1))
}

/// For each target mean expert count, the top-p mass `p` whose mean count on the calibration
/// logits is closest to it (bisection on `p`, 30 steps; the count is non-decreasing in `p`).
///
/// # Errors
/// Bad logits.
pub fn match_top_p(logits: &CalibrationLogits, targets: &[f64]) -> Result<Vec<(f64, f64)>> {
    let stride = (logits.tokens / 2_000).max(1);
    targets
        .iter()
        .map(|&target| {
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            let mut best = (1.0, f64::INFINITY, 0.0);
            for _ in 0..30 {
                let p = 0.5 * (lo + hi);
                let mut s = TopP::new(p, None)?;
                let m = mean_count(&mut s, logits, stride)?;
                if (m - target).abs() < best.1 {
                    best = (p, (m - target).abs(), m);
                }
                if m < target { lo = p } else { hi = p }
            }
            Ok((best.0, best.2))
        })
        .collect()
}

/// Options of [`run_study`].
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// Configurations to run.
    pub configs: Vec<RoutingConfig>,
    /// Output folder (`logs/`, results, figure, report).
    pub output: PathBuf,
    /// Expert-overlap baseline: top-`reference_k` on the same logits (OLMoE: 8; the testbed: 32).
    pub reference_k: usize,
    /// FLOPs baseline: experts per token of the reference model (OLMoE: 8; the testbed: 64,
    /// the dense model).
    pub baseline_k: usize,
    /// Router logits (and p-values) kept in the log for this many leading tokens per sample.
    pub logit_samples: u32,
    /// Items scored twice for output determinism.
    pub determinism_samples: usize,
    /// lm-eval `max_length` (context window for truncation and rolling windows).
    pub max_length: usize,
    /// Progress bars on stderr.
    pub progress: bool,
    /// Run only this shard of the experiments: experiment `p` (configuration-major over the
    /// datasets) when `p mod N = i`. Each experiment runs whole in one shard, so its summary
    /// and logs are the single run's; [`merge_runs`] combines the shards' folders.
    pub shard: Option<datasets::shard::Shard>,
    /// A real MoE's expert-load statistics to show beside the study's ([`crate::olmoe_stats`]).
    pub reference_load: Vec<crate::olmoe_stats::LoadStat>,
}

/// The 16 metrics of one experiment (see [`crate::metrics`] for each definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics16 {
    /// 1. WikiText-2 word perplexity (WikiText experiments only).
    pub perplexity: Option<f64>,
    /// 2. The dataset's accuracy (LAMBADA `acc`, HellaSwag `acc_norm`); the results table
    ///    averages the tasks.
    pub task_accuracy: Option<f64>,
    /// 3. `k̄ / E`.
    pub expert_activation_ratio: f64,
    /// 4. FLOPs reduction against the baseline's `k`, percent.
    pub flops_reduction_pct: f64,
    /// 5. Tokens fed per second.
    pub tokens_per_second: f64,
    /// 6. Milliseconds per token fed.
    pub latency_ms_per_token: f64,
    /// 7. Share of experts used at least once, mean over layers.
    pub expert_utilization: f64,
    /// 8. Gini coefficient of expert usage, mean over layers.
    pub gini_coefficient: f64,
    /// 9. `max k − min k`.
    pub adaptive_range: u32,
    /// 10. Normalised entropy of the expert-count distribution.
    pub selection_entropy: f64,
    /// 11. Share of (token, layer) pairs at `max_k`.
    pub ceiling_hit_rate: f64,
    /// 12. Share at `min_k`.
    pub floor_hit_rate: f64,
    /// 13. Variance over layers of the mean `k`.
    pub layer_expert_variance: f64,
    /// 14. Mean Pearson r of per-token `k` between adjacent layers (`None` for fixed `k`).
    pub layer_consistency: Option<f64>,
    /// 15. Mean Jaccard against top-`reference_k`.
    pub expert_overlap: f64,
    /// 16. Share of re-scored items with bitwise-identical log-likelihoods.
    pub output_determinism: f64,
}

/// The `{config}_{dataset}.json` summary of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    /// File-name stem of the configuration.
    pub config: String,
    /// The configuration.
    pub routing: RoutingConfig,
    /// The model.
    pub model: String,
    /// Experts per layer.
    pub num_experts: usize,
    /// Dataset name.
    pub dataset: Dataset,
    /// Where its items came from.
    pub source: String,
    /// Items scored.
    pub samples: usize,
    /// Tokens fed to the model.
    pub tokens: u64,
    /// Wall time of the scoring, seconds.
    pub seconds: f64,
    /// Mean experts per (token, layer).
    pub mean_k: f64,
    /// Mean `k` per layer.
    pub per_layer_mean_k: Vec<f64>,
    /// How many (token, layer) pairs selected `k` experts, `k = 0..=E`.
    pub k_histogram: Vec<u64>,
    /// `usage[layer][expert]`.
    pub usage: Vec<Vec<u64>>,
    /// Seconds in the selector.
    pub select_seconds: f64,
    /// Seconds in the MoE blocks.
    pub moe_seconds: f64,
    /// The harness's aggregate metrics for the dataset.
    pub task_metrics: BTreeMap<String, f64>,
    /// The 16 metrics.
    pub metrics: Metrics16,
    /// Parameters a token passes through at the measured mean `k`
    /// ([`lm::TransformerSpec::active_parameter_count_at`]); `None` in summaries written
    /// before it was recorded (see [`StudyReport::fill_active_parameters`]).
    #[serde(default)]
    pub active_parameters: Option<f64>,
}

impl ExperimentSummary {
    /// `2 × active parameters × tokens fed` per item (Kaplan et al. 2020's forward-pass
    /// estimate, [`routing_core::cost`]), when the active parameters are known.
    pub fn flops_per_item(&self) -> Option<f64> {
        self.active_parameters
            .map(|a| 2.0 * a * self.tokens as f64 / self.samples.max(1) as f64)
    }
}

/// Everything [`run_study`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyReport {
    /// The model.
    pub model: String,
    /// Experts per layer.
    pub num_experts: usize,
    /// Expert-overlap baseline.
    pub reference_k: usize,
    /// FLOPs baseline.
    pub baseline_k: usize,
    /// One summary per (configuration, dataset), in run order.
    pub experiments: Vec<ExperimentSummary>,
    /// Notes for the report (nulls' provenance, testbed numbers, data sources).
    pub notes: Vec<String>,
    /// A real MoE's expert-load statistics (OLMoE paper data), shown beside the study's.
    #[serde(default)]
    pub reference_load: Vec<crate::olmoe_stats::LoadStat>,
}

impl StudyReport {
    /// Records the active parameters of experiments whose summaries predate them, from the
    /// testbed's spec.
    pub fn fill_active_parameters(&mut self, spec: &lm::TransformerSpec) {
        fill_active_parameters(&mut self.experiments, spec);
    }

    /// [`plane_points`] of the study's experiments.
    pub fn plane_points(&self) -> Vec<PlanePoint> {
        plane_points(&self.experiments)
    }
}

/// Records the active parameters of experiments whose summaries predate them, from the
/// model's spec ([`lm::TransformerSpec::active_parameter_count_at`] at each mean `k`).
pub fn fill_active_parameters(experiments: &mut [ExperimentSummary], spec: &lm::TransformerSpec) {
    for e in experiments {
        if e.active_parameters.is_none() {
            e.active_parameters = Some(spec.active_parameter_count_at(e.mean_k));
        }
    }
}

/// The task experiments (LAMBADA, HellaSwag) on the unified cost–quality plane, as
/// [`Level::Expert`] points: quality = the harness's `acc` (the per-item correctness the
/// query-level router is trained on, so all levels share one quality; HellaSwag's `acc_norm`
/// stays in the study's own table), FLOPs per item from the measured mean `k`
/// ([`ExperimentSummary::flops_per_item`]); router `BH`, `top-k` or `top-p`. WikiText
/// experiments (perplexity, not a quality in `[0, 1]`) are left out.
pub fn plane_points(experiments: &[ExperimentSummary]) -> Vec<PlanePoint> {
    experiments
        .iter()
        .filter_map(|e| {
            let bench = match e.dataset {
                Dataset::Wikitext => return None,
                Dataset::Lambada => "LAMBADA",
                Dataset::Hellaswag => "HellaSwag",
            };
            let router = match e.routing {
                RoutingConfig::TopK { .. } => "top-k",
                RoutingConfig::Bh { .. } => "BH",
                RoutingConfig::TopP { .. } => "top-p",
            };
            let mut p = PlanePoint::new(
                bench,
                format!("{router} experts"),
                Level::Expert,
                format!("{} (k̄ = {:.1} of {})", e.config, e.mean_k, e.num_experts),
                *e.task_metrics.get("acc")?,
            );
            if let Some(f) = e.flops_per_item() {
                p = p.with_flops(f);
            }
            Some(p)
        })
        .collect()
}

/// Reads the per-experiment summaries (`logs/<config>_<dataset>.json`) of a study folder —
/// finished or not — in file-name order.
///
/// # Errors
/// An unreadable `logs` folder or a summary that does not parse (named).
pub fn load_experiments(dir: &Path) -> Result<Vec<ExperimentSummary>> {
    let logs = dir.join("logs");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BhMoeError::Io { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .map_err(io(&logs))?
        .filter_map(|f| f.ok().map(|f| f.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with("_internal_routing.json")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).map_err(io(f))?;
            serde_json::from_str(&text).map_err(|e| json_error(f, e))
        })
        .collect()
}

fn json_error(path: &Path, source: serde_json::Error) -> BhMoeError {
    BhMoeError::Json {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` as JSON through a temporary file renamed into place, so a crash leaves the
/// old file or the new one, never half of one.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| json_error(path, e))?;
    let io = |source| BhMoeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Runs one (configuration, dataset) experiment and writes its three files under `logs`.
#[allow(clippy::too_many_arguments)]
fn run_experiment(
    model: &MoeModel<'_>,
    config: &RoutingConfig,
    data: &DatasetItems,
    nulls: &Arc<Vec<CdfTable>>,
    options: &StudyOptions,
    logs: &Path,
    bar: &mut datasets::progress::Progress,
) -> Result<ExperimentSummary> {
    let (e, _, weights) = model.moe()?;
    let routed = model.routed(config.selector(nulls, model.unit_weights, weights)?);
    {
        let mut rec = routed.recorder();
        rec.keep_rows = true;
        rec.logit_samples = options.logit_samples;
    }
    let mut scorer = Scorer::new(&routed, ScoringMode::PrefixCache, options.max_length);
    let start = Instant::now();
    let mut records: Vec<SampleRecord> = Vec::with_capacity(data.items.len());
    for (i, item) in data.items.iter().enumerate() {
        routed.begin_sample(i as u32);
        records.extend(evaluate_loglik_items(
            &mut scorer,
            std::slice::from_ref(item),
        )?);
        bar.advance(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    let tokens = scorer.tokens_fed() as u64;
    let recorder = std::mem::take(&mut *routed.recorder());

    // Output determinism: re-score the first items with fresh caches.
    let n_det = options.determinism_samples.min(data.items.len());
    routed.recorder().keep_rows = false;
    let mut again = Scorer::new(&routed, ScoringMode::PrefixCache, options.max_length);
    let second = evaluate_loglik_items(&mut again, &data.items[..n_det])?;
    let flat =
        |rs: &[SampleRecord]| -> Vec<f64> { rs.iter().flat_map(|r| r.logliks.clone()).collect() };
    let determinism = metrics::output_determinism(&flat(&records[..n_det]), &flat(&second));

    // Routing statistics.
    let layers = routed.transformer().spec().num_layers();
    let ks: Vec<u16> = recorder
        .rows
        .iter()
        .map(|r| r.experts.len() as u16)
        .collect();
    let mut by_layer: Vec<Vec<f64>> = vec![Vec::new(); layers];
    for r in &recorder.rows {
        by_layer[r.layer as usize].push(r.experts.len() as f64);
    }
    let per_layer_mean: Vec<f64> = by_layer
        .iter()
        .map(|v| v.iter().sum::<f64>() / v.len().max(1) as f64)
        .collect();
    let mean_k = ks.iter().map(|&k| f64::from(k)).sum::<f64>() / ks.len().max(1) as f64;
    let mut hist = vec![0u64; e + 1];
    for &k in &ks {
        hist[(k as usize).min(e)] += 1;
    }
    let max_k = config.max_k().unwrap_or(e);
    let spec = routed.transformer().spec();
    let per_expert = spec.expert_parameter_count() as f64 * layers as f64;
    let shared = spec.active_parameter_count_at(0.0);
    let task_metrics = aggregate(&records);
    let overlap = ks
        .iter()
        .map(|&k| metrics::prefix_jaccard(k as usize, options.reference_k))
        .sum::<f64>()
        / ks.len().max(1) as f64;
    let m = Metrics16 {
        perplexity: (data.dataset == Dataset::Wikitext)
            .then(|| task_metrics.get("word_perplexity").copied())
            .flatten(),
        task_accuracy: (data.dataset != Dataset::Wikitext)
            .then(|| task_metrics.get(data.dataset.quality_metric()).copied())
            .flatten(),
        expert_activation_ratio: metrics::activation_ratio(mean_k, e),
        flops_reduction_pct: 100.0
            * metrics::flops_reduction(shared, per_expert, mean_k, options.baseline_k as f64),
        tokens_per_second: metrics::tokens_per_second(tokens, seconds),
        latency_ms_per_token: metrics::latency_ms_per_token(tokens, seconds),
        expert_utilization: metrics::expert_utilization(&recorder.usage),
        gini_coefficient: metrics::mean_gini(&recorder.usage),
        adaptive_range: u32::from(metrics::adaptive_range(&ks)),
        selection_entropy: metrics::selection_entropy(&ks, max_k),
        ceiling_hit_rate: metrics::hit_rate(&ks, max_k),
        floor_hit_rate: metrics::hit_rate(&ks, config.min_k()),
        layer_expert_variance: metrics::layer_expert_variance(&per_layer_mean),
        layer_consistency: metrics::layer_consistency(&by_layer),
        expert_overlap: overlap,
        output_determinism: determinism,
    };
    let name = config.name();
    let ds = data.dataset.name();
    let summary = ExperimentSummary {
        config: name.clone(),
        routing: config.clone(),
        model: model.name.clone(),
        num_experts: e,
        dataset: data.dataset,
        source: data.source.clone(),
        samples: records.len(),
        tokens,
        seconds,
        mean_k,
        per_layer_mean_k: per_layer_mean,
        k_histogram: hist,
        usage: recorder.usage.clone(),
        select_seconds: recorder.select_seconds,
        moe_seconds: recorder.block_seconds,
        task_metrics,
        metrics: m,
        active_parameters: Some(spec.active_parameter_count_at(mean_k)),
    };
    let parquet = logs.join(format!("{name}_{ds}_internal_routing.parquet"));
    let bh_nulls = matches!(config, RoutingConfig::Bh { .. }).then(|| nulls.as_slice());
    log::write_routing_parquet(&parquet, &recorder.rows, bh_nulls)?;
    write_json(
        &logs.join(format!("{name}_{ds}_internal_routing.json")),
        &serde_json::json!({
            "config": name,
            "routing": config,
            "dataset": ds,
            "num_experts": e,
            "file": parquet.file_name().map(|f| f.to_string_lossy().into_owned()),
            "rows": recorder.rows.len(),
            "columns": ["sample", "token", "layer", "k", "experts", "weights", "router_logits", "p_values"],
            "router_logit_samples_per_sample": options.logit_samples,
            "aggregate": {
                "mean_k": summary.mean_k,
                "per_layer_mean_k": summary.per_layer_mean_k,
                "k_histogram": summary.k_histogram,
                "usage": summary.usage,
            },
        }),
    )?;
    // The summary last: its presence marks the experiment finished.
    write_json(&logs.join(format!("{name}_{ds}.json")), &summary)?;
    Ok(summary)
}

/// Runs every configuration of `options` on every dataset of `data`, skipping experiments whose
/// summary already exists, then writes the results table, the figure and the report.
///
/// # Errors
/// Bad configurations, scoring failures, I/O errors naming the file.
pub fn run_study(
    model: &MoeModel<'_>,
    nulls: &KdeFile,
    data: &[DatasetItems],
    options: &StudyOptions,
    notes: Vec<String>,
) -> Result<StudyReport> {
    let (e, _, _) = model.moe()?;
    let layers = model.transformer.spec().num_layers();
    let tables = nulls.tables(64)?;
    if tables.len() != layers {
        return Err(invalid(
            "nulls",
            format!(
                "{} null distributions for a {layers}-layer model",
                tables.len()
            ),
        ));
    }
    let tables = Arc::new(tables);
    let logs = options.output.join("logs");
    std::fs::create_dir_all(&logs).map_err(|source| BhMoeError::Io {
        path: logs.clone(),
        source,
    })?;
    let total: usize = options.configs.len() * data.iter().map(|d| d.items.len()).sum::<usize>();
    let mut bar = datasets::progress::Progress::new("bh-moe", total, options.progress);
    let mut experiments = Vec::new();
    let mut position = 0;
    for config in &options.configs {
        for d in data {
            position += 1;
            if options.shard.is_some_and(|sh| !sh.contains(position - 1)) {
                continue;
            }
            let path = logs.join(format!("{}_{}.json", config.name(), d.dataset.name()));
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|source| BhMoeError::Io {
                    path: path.clone(),
                    source,
                })?;
                // A summary that does not parse was cut by a crash (before summaries were
                // written by rename): the experiment is run again. One that parses must be
                // this experiment, or resuming would report another run's numbers.
                if let Ok(done) = serde_json::from_str::<ExperimentSummary>(&text) {
                    let differs = [
                        ("routing", done.routing != *config),
                        ("samples", done.samples != d.items.len()),
                        ("model", done.model != model.name),
                        ("dataset", done.dataset != d.dataset),
                    ];
                    if let Some((field, _)) = differs.iter().find(|(_, x)| *x) {
                        return Err(BhMoeError::Field {
                            path: path.clone(),
                            field: (*field).to_string(),
                            reason: "this summary is from another run (a different limit, \
                                     model or configuration): write to another folder or \
                                     remove it"
                                .into(),
                        });
                    }
                    bar.advance(d.items.len());
                    experiments.push(done);
                    continue;
                }
            }
            experiments.push(run_experiment(
                model, config, d, &tables, options, &logs, &mut bar,
            )?);
        }
    }
    bar.finish();
    let report = StudyReport {
        model: model.name.clone(),
        num_experts: e,
        reference_k: options.reference_k,
        baseline_k: options.baseline_k,
        experiments,
        notes,
        reference_load: options.reference_load.clone(),
    };
    report::write_all(&report, &options.output)?;
    Ok(report)
}

/// Combines the output folders of a sharded study (`shard: Some(i/N)` for every `i`) into
/// `out`: every experiment's summary and logs (`logs/`), and the calibration the shards share
/// (`nulls.json`, `top_p_matching.json`, which must be byte-identical across the shards — the
/// calibration is seeded). A study run on `out` then finds every experiment done and writes the
/// single run's table, figure and report.
///
/// # Errors
/// A folder without `logs/`; an experiment in two shards; calibrations that differ; I/O
/// errors naming the file.
pub fn merge_runs(shards: &[std::path::PathBuf], out: &std::path::Path) -> Result<()> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BhMoeError::Io { path, source }
    };
    let logs_out = out.join("logs");
    std::fs::create_dir_all(&logs_out).map_err(io(&logs_out))?;
    let mut seen: std::collections::BTreeMap<std::ffi::OsString, std::path::PathBuf> =
        Default::default();
    for dir in shards {
        let logs = dir.join("logs");
        for f in std::fs::read_dir(&logs).map_err(io(&logs))? {
            let f = f.map_err(io(&logs))?.path();
            let name = f.file_name().unwrap_or_default().to_owned();
            if let Some(other) = seen.get(&name) {
                return Err(invalid(
                    "merge",
                    format!(
                        "{} is in {} and {}: shards of one study never share an experiment",
                        name.to_string_lossy(),
                        other.display(),
                        dir.display()
                    ),
                ));
            }
            std::fs::copy(&f, logs_out.join(&name)).map_err(io(&f))?;
            seen.insert(name, dir.clone());
        }
        for shared in ["nulls.json", "top_p_matching.json"] {
            let src = dir.join(shared);
            if !src.is_file() {
                continue;
            }
            let bytes = std::fs::read(&src).map_err(io(&src))?;
            let dst = out.join(shared);
            match std::fs::read(&dst) {
                Ok(existing) if existing != bytes => {
                    return Err(invalid(
                        "merge",
                        format!(
                            "{} differs from the other shards' (shards of one study share their calibration)",
                            src.display()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) => std::fs::write(&dst, &bytes).map_err(io(&dst))?,
            }
        }
    }
    Ok(())
}
