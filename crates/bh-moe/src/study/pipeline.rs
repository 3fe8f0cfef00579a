//! The whole study from paths: model (the SmolLM2 testbed, an OLMoE checkpoint, or a tiny
//! synthetic OLMoE), calibration, nulls, the top-p matching, data, and [`super::run_study`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use lm::{HostWeights, Transformer};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::{
    CalibrationLogits, Dataset, DatasetItems, MoeModel, RoutingConfig, StudyOptions, StudyReport,
    calibrate_nulls, calibration_mean_k, collect_router_logits, load_datasets, match_top_p,
    run_study, synthetic_datasets,
};
use crate::error::{BhMoeError, Result, invalid};
use crate::kde::KdeFile;
use crate::synthetic;
use crate::testbed::{DenseBase, Testbed, TestbedOptions, wikitext_validation, windows};

/// Top-p matched to BH's mean expert counts on the calibration logits (cached as
/// `top_p_matching.json` beside `nulls.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopPMatching {
    /// The routed model's name.
    pub model: String,
    /// The calibration text (as in the nulls' provenance).
    pub calibration: String,
    /// One entry per BH configuration at `max_k = E`, in grid order.
    pub entries: Vec<TopPMatch>,
}

/// One BH configuration's matched top-p.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopPMatch {
    /// The BH configuration's name.
    pub config: String,
    /// BH's mean expert count on the calibration logits.
    pub target_mean_k: f64,
    /// The top-p mass whose mean count is closest to it.
    pub p: f64,
    /// Top-p's mean count at that `p`.
    pub matched_mean_k: f64,
}

impl TopPMatching {
    /// The BH configuration names, in order.
    pub fn configs(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.config.clone()).collect()
    }

    /// Reads `path`; `None` when it is missing or unreadable (the matching is then recomputed).
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes `path` (pretty JSON).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| invalid("top_p_matching", e.to_string()))?;
        std::fs::write(path, text).map_err(|source| BhMoeError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Which model the study routes.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A dense SwiGLU GGUF (SmolLM2) split into experts; the artefact is loaded from `dir` when
    /// it is there (and was built from the same base and options), else built and saved there.
    Testbed {
        /// The dense GGUF.
        base: PathBuf,
        /// Where the testbed artefact lives.
        dir: PathBuf,
        /// Conversion options.
        options: TestbedOptions,
    },
    /// An OLMoE checkpoint: a Hugging Face directory (with `tokenizer.json`) or a GGUF.
    Olmoe(PathBuf),
    /// `shared/golden/olmoe_tiny` (HF directory given) or, with `None`, a seeded random tiny
    /// OLMoE; a byte-level tokenizer; synthetic text. Numbers mean nothing.
    Synthetic(Option<PathBuf>),
}

/// Everything a study run needs.
#[derive(Debug, Clone)]
pub struct StudyPlan {
    /// The model.
    pub source: ModelSource,
    /// `shared/data` (WikiText-2, LAMBADA, HellaSwag); ignored for [`ModelSource::Synthetic`].
    pub data_dir: Option<PathBuf>,
    /// Datasets to score.
    pub datasets: Vec<Dataset>,
    /// Items per dataset.
    pub limit: usize,
    /// WikiText-2 documents, when fewer than `limit` (each is ~4,500 tokens).
    pub wikitext_limit: Option<usize>,
    /// The grid (top-k and BH); top-p configurations are added when `top_p` is set.
    pub grid: Vec<RoutingConfig>,
    /// Add top-p at the mean expert counts of the `max_k = E` BH configurations.
    pub top_p: bool,
    /// Calibration tokens (router fit and KDE nulls).
    pub calibration_tokens: usize,
    /// Calibration window length.
    pub window: usize,
    /// KDE subsample size per layer.
    pub kde_samples: usize,
    /// Seed (KDE subsamples, synthetic data and model).
    pub seed: u64,
    /// Output folder.
    pub output: PathBuf,
    /// Expert-overlap baseline `k` (`None`: the model's own `k`; 32 on the testbed).
    pub reference_k: Option<usize>,
    /// Router-logit samples per sample in the logs.
    pub logit_samples: u32,
    /// Items re-scored for output determinism.
    pub determinism_samples: usize,
    /// Progress bars.
    pub progress: bool,
    /// Run only this shard of the experiments (configuration × dataset, in grid order;
    /// [`super::merge_runs`] combines the shards' folders).
    pub shard: Option<datasets::shard::Shard>,
}

impl StudyPlan {
    /// The seed's defaults for `source`: the three datasets, 200 items, the default grid with
    /// top-p, 16,384 calibration tokens in windows of 256, 4,000 KDE samples, seed 0,
    /// `out/bh_moe`.
    pub fn new(source: ModelSource) -> Self {
        Self {
            source,
            data_dir: None,
            datasets: Dataset::ALL.to_vec(),
            limit: 200,
            wikitext_limit: None,
            grid: super::default_grid(),
            top_p: true,
            calibration_tokens: 16_384,
            window: 256,
            kde_samples: 4_000,
            seed: 0,
            output: PathBuf::from("out/bh_moe"),
            reference_k: None,
            logit_samples: 4,
            determinism_samples: 5,
            progress: true,
            shard: None,
        }
    }
}

/// A loaded model with what the study needs besides it.
struct Loaded {
    name: String,
    transformer: Transformer,
    tokenizer: Tokenizer,
    stop: Vec<u32>,
    bos: Option<u32>,
    unit: bool,
    baseline_k: usize,
    reference_k: usize,
    calibration_text: String,
    calibration_name: String,
    notes: Vec<String>,
}

fn data_dir(plan: &StudyPlan) -> Result<&Path> {
    plan.data_dir.as_deref().ok_or_else(|| {
        invalid(
            "data",
            "no shared/data folder given (or use the synthetic mode)",
        )
    })
}

fn load(plan: &StudyPlan, device: &Device, log: &mut dyn FnMut(&str)) -> Result<Loaded> {
    match &plan.source {
        ModelSource::Testbed { base, dir, options } => {
            let dense = DenseBase::from_gguf(base)?;
            let text = wikitext_validation(data_dir(plan)?)?;
            let calibration_name = format!(
                "WikiText-2 validation (wiki.valid.tokens, detokenised), first {} tokens in windows of {}",
                plan.calibration_tokens, plan.window
            );
            let reuse = Testbed::load(dir).ok().filter(|t| {
                t.provenance.base_model == dense.name
                    && t.provenance.options == *options
                    && t.provenance.calibration == calibration_name
            });
            let tb = match reuse {
                Some(t) => {
                    log(&format!("testbed: loaded {}", dir.display()));
                    t
                }
                None => {
                    log(&format!(
                        "testbed: splitting {} into {} experts and fitting routers…",
                        dense.name, options.experts
                    ));
                    let ids = dense.encode_prefix(&text, plan.calibration_tokens)?;
                    let cal = windows(&ids, plan.window, plan.calibration_tokens);
                    let t = Testbed::build(
                        &dense.spec,
                        &dense.weights,
                        &cal,
                        &calibration_name,
                        &dense.name,
                        options,
                        device,
                        |_, _| {},
                    )?;
                    t.save(dir)?;
                    log(&format!("testbed: saved {}", dir.display()));
                    t
                }
            };
            let r2: Vec<f64> = tb.fit.iter().map(|f| f.router_r2_mean).collect();
            let notes = vec![
                format!(
                    "Testbed, not OLMoE: {} ({} parameters) with each layer's {} SwiGLU neurons split into {} experts of {} by balanced k-means (seed {}), linear routers ridge-fitted to the experts' output norms on {} calibration tokens (router R² per layer {:.2}–{:.2}); selected experts are summed with weight 1, so top-{} is the dense model.",
                    dense.name,
                    tb.provenance.base_parameters,
                    dense.spec.intermediate_size,
                    tb.experts,
                    tb.expert_size,
                    options.seed,
                    tb.provenance.calibration_tokens,
                    r2.iter().copied().fold(f64::INFINITY, f64::min),
                    r2.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    tb.experts
                ),
                "Dense SmolLM2 survives an expert split poorly below k ≈ 32 even with an oracle router (shared/docs/moe_testbed_measurements.md: WikiText-2 token perplexity 37.5 dense, 109.7 at k = 32, 1,204 at k = 16 with the true-norm router); read the results in that light.".into(),
            ];
            let transformer = tb.model(&dense.spec, &dense.weights, device)?;
            Ok(Loaded {
                name: format!(
                    "{} → {}×{} MoE testbed",
                    dense.name, tb.experts, tb.expert_size
                ),
                transformer,
                tokenizer: dense.tokenizer,
                stop: dense.eos,
                bos: dense.bos,
                unit: true,
                baseline_k: tb.experts,
                reference_k: plan.reference_k.unwrap_or(32.min(tb.experts)),
                calibration_text: text,
                calibration_name,
                notes,
            })
        }
        ModelSource::Olmoe(path) => {
            let lm_model = lm::CausalLm::open(path, device)?;
            let transformer = lm_model
                .transformer()
                .cloned()
                .ok_or_else(|| invalid("model", "the OLMoE model needs the f32 engine"))?;
            let moe = transformer.spec().moe.ok_or_else(|| {
                invalid(
                    "model",
                    format!("{} is not a mixture of experts", path.display()),
                )
            })?;
            use lm::LanguageModel as _;
            let text = wikitext_validation(data_dir(plan)?)?;
            Ok(Loaded {
                name: lm_model.name().to_string(),
                tokenizer: lm_model.tokenizer().clone(),
                stop: lm_model.stop_tokens().to_vec(),
                bos: lm_model.bos_token(),
                transformer,
                unit: false,
                baseline_k: moe.experts_per_token,
                reference_k: plan.reference_k.unwrap_or(moe.experts_per_token),
                calibration_text: text,
                calibration_name: format!(
                    "WikiText-2 validation, first {} tokens in windows of {}",
                    plan.calibration_tokens, plan.window
                ),
                notes: Vec::new(),
            })
        }
        ModelSource::Synthetic(dir) => {
            let (cfg, weights, what): (lm::OlmoeConfig, HostWeights, String) = match dir {
                Some(d) => {
                    let (c, w) = lm::models::olmoe::load_hf(d)?;
                    (c, w, format!("{} (a tiny random OLMoE)", d.display()))
                }
                None => {
                    let (c, w) = synthetic::tiny_olmoe(plan.seed);
                    (c, w, format!("a tiny random OLMoE (seed {})", plan.seed))
                }
            };
            let transformer = Transformer::new(cfg.spec()?, &weights, device)?;
            let text = synthetic_datasets(64, plan.seed.wrapping_add(1))
                .into_iter()
                .flat_map(|d| d.items)
                .filter_map(|it| match it.kind {
                    evals::harness::ItemKind::Rolling { page, .. } => Some(page),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Loaded {
                name: "olmoe-tiny (synthetic)".into(),
                transformer,
                tokenizer: synthetic::byte_tokenizer(),
                stop: cfg.eos_token_id.clone(),
                bos: None,
                unit: false,
                baseline_k: cfg.num_experts_per_tok,
                reference_k: plan.reference_k.unwrap_or(cfg.num_experts_per_tok),
                calibration_text: text,
                calibration_name: "synthetic text (seeded random words)".into(),
                notes: vec![format!(
                    "SYNTHETIC: {what}, a byte-level tokenizer and seeded random text; the numbers exercise the pipeline and mean nothing about routing quality."
                )],
            })
        }
    }
}

/// Runs the study `plan` describes on `device`; `log` receives progress sentences.
///
/// # Errors
/// Missing files (named), bad options, scoring failures.
pub fn run(plan: &StudyPlan, device: &Device, log: &mut dyn FnMut(&str)) -> Result<StudyReport> {
    let m = load(plan, device, log)?;
    let model = MoeModel {
        name: m.name.clone(),
        transformer: &m.transformer,
        tokenizer: &m.tokenizer,
        stop: m.stop.clone(),
        bos: m.bos,
        unit_weights: m.unit,
    };
    let (e, _, _) = model.moe()?;
    if let Some(c) = plan.grid.iter().find(|c| c.max_k().is_some_and(|k| k > e)) {
        return Err(invalid(
            "grid",
            format!(
                "{} needs {} experts; {} has {e}",
                c.name(),
                c.max_k().unwrap_or(0),
                m.name
            ),
        ));
    }
    std::fs::create_dir_all(&plan.output).map_err(|source| BhMoeError::Io {
        path: plan.output.clone(),
        source,
    })?;

    // Calibration logits and nulls (reused when nulls.json exists).
    let enc = m
        .tokenizer
        .encode(m.calibration_text.as_str(), false)
        .map_err(|source| lm::LmError::Tokenizers {
            context: "encoding calibration text",
            source,
        })?;
    let cal = windows(
        enc.get_ids(),
        plan.window.min(m.transformer.spec().max_positions),
        plan.calibration_tokens,
    );
    log(&format!(
        "calibration: {} windows of {} tokens",
        cal.len(),
        plan.window
    ));
    // The calibration pass (a forward over every calibration window) is the slow part of a
    // restart; its two products — the nulls and the top-p matching — are cached in the output
    // folder with their provenance and reused when model and calibration text agree.
    let mut logits: Option<CalibrationLogits> = None;
    let calibration_logits = |log: &mut dyn FnMut(&str)| -> Result<CalibrationLogits> {
        log("calibration: collecting router logits");
        collect_router_logits(&model, &cal)
    };
    let nulls_path = plan.output.join("nulls.json");
    // Reused only when every input of the fit agrees: model, calibration text, and the KDE's
    // subsample (seed and size).
    let cached_nulls = KdeFile::load(&nulls_path).ok().filter(|f| {
        f.nulls.iter().enumerate().all(|(l, r)| {
            r.provenance.model == m.name
                && r.provenance.calibration == m.calibration_name
                && r.provenance.seed == Some(plan.seed.wrapping_add(l as u64))
                && r.provenance.max_samples == Some(plan.kde_samples)
        }) && f.nulls.len() == m.transformer.spec().layers.len()
    });
    let nulls_reused = cached_nulls.is_some();
    let nulls = match cached_nulls {
        Some(f) => {
            log(&format!(
                "calibration: nulls reused from {}",
                nulls_path.display()
            ));
            f
        }
        None => {
            let l = calibration_logits(log)?;
            let f = calibrate_nulls(
                &l,
                &m.name,
                &m.calibration_name,
                plan.kde_samples,
                plan.seed,
                64,
            )?;
            f.save(&nulls_path)?;
            logits = Some(l);
            f
        }
    };
    let tables = Arc::new(nulls.tables(64)?);
    let calibration_tokens: usize = nulls.nulls.first().map_or(0, |r| r.provenance.tokens);

    let mut configs: Vec<RoutingConfig> = plan.grid.clone();
    if plan.top_p {
        let bh: Vec<RoutingConfig> = plan
            .grid
            .iter()
            .filter(|c| matches!(c, RoutingConfig::Bh { max_k, .. } if *max_k == e))
            .cloned()
            .collect();
        let matching_path = plan.output.join("top_p_matching.json");
        let wanted: Vec<String> = bh.iter().map(RoutingConfig::name).collect();
        // The matching is computed from the nulls: fresh nulls void it.
        let matching = match TopPMatching::load(&matching_path).filter(|t| {
            nulls_reused
                && t.model == m.name
                && t.calibration == m.calibration_name
                && t.configs() == wanted
        }) {
            Some(t) => {
                log(&format!(
                    "calibration: top-p matching reused from {}",
                    matching_path.display()
                ));
                t
            }
            None => {
                let l = match logits.take() {
                    Some(l) => l,
                    None => calibration_logits(log)?,
                };
                let targets: Vec<f64> = bh
                    .iter()
                    .map(|c| calibration_mean_k(c, &l, &tables))
                    .collect::<Result<_>>()?;
                let matched = match_top_p(&l, &targets)?;
                let t = TopPMatching {
                    model: m.name.clone(),
                    calibration: m.calibration_name.clone(),
                    entries: wanted
                        .iter()
                        .zip(&targets)
                        .zip(&matched)
                        .map(|((config, &target), &(p, matched))| TopPMatch {
                            config: config.clone(),
                            target_mean_k: target,
                            p,
                            matched_mean_k: matched,
                        })
                        .collect(),
                };
                t.save(&matching_path)?;
                t
            }
        };
        for entry in &matching.entries {
            configs.push(RoutingConfig::TopP {
                p: (entry.p * 1000.0).round() / 1000.0,
                matched_mean: Some(entry.matched_mean_k),
            });
        }
    }
    let data: Vec<DatasetItems> = match &plan.source {
        ModelSource::Synthetic(_) => synthetic_datasets(plan.limit, plan.seed)
            .into_iter()
            .filter(|d| plan.datasets.contains(&d.dataset))
            .collect(),
        _ => load_datasets(data_dir(plan)?, &plan.datasets, plan.limit)?,
    };
    let mut data = data;
    if let Some(w) = plan.wikitext_limit {
        for d in data.iter_mut().filter(|d| d.dataset == Dataset::Wikitext) {
            d.items.truncate(w);
            d.source = format!("{} (first {} documents)", d.source, d.items.len());
        }
    }
    let mut notes = m.notes.clone();
    notes.push(format!(
        "Nulls: one Gaussian KDE per layer (Scott's rule, ≤ {} samples) of the router logits pooled over {} calibration tokens × {} experts ({}); stored in nulls.json.",
        plan.kde_samples, calibration_tokens, e, m.calibration_name
    ));
    for d in &data {
        notes.push(format!("{}: {}", d.dataset.name(), d.source));
    }
    let options = StudyOptions {
        configs,
        output: plan.output.clone(),
        reference_k: m.reference_k,
        baseline_k: m.baseline_k,
        logit_samples: plan.logit_samples,
        determinism_samples: plan.determinism_samples,
        max_length: m.transformer.spec().max_positions.min(2048),
        progress: plan.progress,
        shard: plan.shard,
        reference_load: match plan
            .data_dir
            .as_deref()
            .map(crate::olmoe_stats::default_path)
        {
            Some(p) if p.is_file() => crate::olmoe_stats::load_stats(&p)?,
            _ => Vec::new(),
        },
    };
    run_study(&model, &nulls, &data, &options, notes)
}
