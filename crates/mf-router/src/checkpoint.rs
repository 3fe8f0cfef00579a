//! Checkpoints: weights in safetensors plus a JSON config, loaded with validation, and a
//! small routing API that needs no training code.
//!
//! A checkpoint is a folder with two files:
//!
//! * `config.json` — [`CheckpointConfig`]: format name and version, router kind, model ids
//!   (column order), the weak/strong pair it routes, widths, the embedding model id it was
//!   trained with, and an optional calibrated threshold;
//! * `model.safetensors` — `F32` tensors named after the reference implementations'
//!   state dicts:
//!
//! | kind | key | shape |
//! |------|-----|-------|
//! | MF (RouteLLM `MFModel`) | `P.weight` | `[n_models, model_dim]` |
//! | | `text_proj.0.weight` | `[model_dim, text_dim]` |
//! | | `classifier.0.weight` | `[1, model_dim]` |
//! | MLP classifier (MBPP study `Router.head`) | `head.0.weight` | `[hidden, text_dim]` |
//! | | `head.0.bias` | `[hidden]` |
//! | | `head.3.weight` | `[1, hidden]` |
//! | | `head.3.bias` | `[1]` |
//!
//! Loading checks everything and fails with a typed [`MfError`]: unparsable JSON or
//! safetensors ([`MfError::Config`], [`MfError::Safetensors`]), an unknown format/version or
//! inconsistent field ([`MfError::Config`]), a missing or extra tensor
//! ([`MfError::MissingTensor`], [`MfError::UnexpectedTensor`]), a wrong dtype or shape
//! ([`MfError::TensorMismatch`]), NaN/∞ weights ([`MfError::NonFiniteTensor`]), and — when a
//! router is assembled — an embedder other than the one trained with
//! ([`MfError::EmbeddingMismatch`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use routing_core::PairDecision;
use safetensors::{Dtype, SafeTensors};

use crate::classifier::ClassifierModel;
use crate::embed_cache::{EmbeddingMatrix, MINILM_MODEL_ID, TextEmbedder};
use crate::error::{MfError, Result};
use crate::mf::MfModel;

/// Format name written into every config.
pub const FORMAT: &str = "mf-router";
/// Config format version.
pub const FORMAT_VERSION: u32 = 1;
/// Config file name inside a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";
/// Weights file name inside a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Which router a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// RouteLLM matrix factorisation ([`MfModel`]).
    MatrixFactorization,
    /// The MBPP study's MLP head ([`ClassifierModel`]).
    MlpClassifier,
}

/// The JSON config of a checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointConfig {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// Router kind.
    pub kind: RouterKind,
    /// Model ids in column order (MF: all models; classifier: `[small, large]`).
    pub models: Vec<String>,
    /// The cheaper model of the routed pair.
    pub weak: String,
    /// The stronger model of the routed pair.
    pub strong: String,
    /// Id of the sentence encoder the router was trained with.
    pub embedding_model: String,
    /// Width of its embeddings.
    pub text_dim: usize,
    /// MF model-embedding width (MF only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dim: Option<usize>,
    /// Hidden width (classifier only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    /// Routing threshold: a prompt goes strong when its score `>=` this value.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The strong-call share the threshold was calibrated for, if any.
    #[serde(default)]
    pub strong_share: Option<f64>,
    /// Free-text provenance (data, split, seed).
    #[serde(default)]
    pub notes: String,
}

/// The weights of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterWeights {
    /// Matrix factorisation.
    Mf(MfModel),
    /// MLP classifier.
    Classifier(ClassifierModel),
}

/// A router's config and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The config.
    pub config: CheckpointConfig,
    /// The weights.
    pub weights: RouterWeights,
}

impl Checkpoint {
    /// An MF checkpoint routing `weak` vs `strong` (both must be among the model's columns).
    pub fn mf(model: MfModel, weak: &str, strong: &str, embedding_model: &str) -> Result<Self> {
        model.model_index(weak)?;
        model.model_index(strong)?;
        Ok(Self {
            config: CheckpointConfig {
                format: FORMAT.into(),
                version: FORMAT_VERSION,
                kind: RouterKind::MatrixFactorization,
                models: model.models().to_vec(),
                weak: weak.into(),
                strong: strong.into(),
                embedding_model: embedding_model.into(),
                text_dim: model.text_dim(),
                model_dim: Some(model.dim()),
                hidden: None,
                threshold: None,
                strong_share: None,
                notes: String::new(),
            },
            weights: RouterWeights::Mf(model),
        })
    }

    /// A classifier checkpoint for the `small`/`large` pair.
    pub fn classifier(
        model: ClassifierModel,
        small: &str,
        large: &str,
        embedding_model: &str,
    ) -> Self {
        Self {
            config: CheckpointConfig {
                format: FORMAT.into(),
                version: FORMAT_VERSION,
                kind: RouterKind::MlpClassifier,
                models: vec![small.into(), large.into()],
                weak: small.into(),
                strong: large.into(),
                embedding_model: embedding_model.into(),
                text_dim: model.text_dim(),
                model_dim: None,
                hidden: Some(model.hidden()),
                threshold: None,
                strong_share: None,
                notes: String::new(),
            },
            weights: RouterWeights::Classifier(model.rounded_to_f32()),
        }
    }

    /// Sets the routing threshold (and the share it was calibrated for).
    pub fn with_threshold(mut self, threshold: f64, strong_share: Option<f64>) -> Self {
        self.config.threshold = Some(threshold);
        self.config.strong_share = strong_share;
        self
    }

    /// Sets the provenance note.
    pub fn with_notes(mut self, notes: impl Into<String>) -> Self {
        self.config.notes = notes.into();
        self
    }

    /// Scores of `emb` rows: `P(strong beats weak)` (MF) or the predicted large-model win
    /// rate (classifier). Higher = send to the strong model.
    pub fn score_embeddings(&self, emb: &EmbeddingMatrix) -> Result<Vec<f32>> {
        if emb.dim() != self.config.text_dim {
            return Err(MfError::Shape {
                what: "query embedding width".into(),
                expected: self.config.text_dim,
                got: emb.dim(),
            });
        }
        match &self.weights {
            RouterWeights::Mf(m) => {
                let (w, s) = (
                    m.model_index(&self.config.weak)?,
                    m.model_index(&self.config.strong)?,
                );
                Ok(m.pair_win_probs(emb, w, s, 1)?
                    .into_iter()
                    .map(|v| v as f32)
                    .collect())
            }
            RouterWeights::Classifier(c) => {
                Ok(c.predict(emb).into_iter().map(|v| v as f32).collect())
            }
        }
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| MfError::io(dir, e))?;
        let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = match &self.weights {
            RouterWeights::Mf(m) => vec![
                (
                    "P.weight".into(),
                    vec![m.models().len(), m.dim()],
                    m.p().to_vec(),
                ),
                (
                    "text_proj.0.weight".into(),
                    vec![m.dim(), m.text_dim()],
                    m.w().to_vec(),
                ),
                (
                    "classifier.0.weight".into(),
                    vec![1, m.dim()],
                    m.c().to_vec(),
                ),
            ],
            RouterWeights::Classifier(c) => {
                let (w1, b1, w2, b2) = c.weights_f32();
                vec![
                    ("head.0.weight".into(), vec![c.hidden(), c.text_dim()], w1),
                    ("head.0.bias".into(), vec![c.hidden()], b1),
                    ("head.3.weight".into(), vec![1, c.hidden()], w2),
                    ("head.3.bias".into(), vec![1], vec![b2]),
                ]
            }
        };
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let wpath = dir.join(WEIGHTS_FILE);
        let mut views = Vec::new();
        for ((name, shape, _), b) in tensors.iter().zip(&bytes) {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b).map_err(
                |e| MfError::Safetensors {
                    path: wpath.clone(),
                    message: e.to_string(),
                },
            )?;
            views.push((name.clone(), view));
        }
        let meta: HashMap<String, String> = [("format".to_string(), FORMAT.to_string())]
            .into_iter()
            .collect();
        let data = safetensors::serialize(views, Some(meta)).map_err(|e| MfError::Safetensors {
            path: wpath.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&wpath, data).map_err(|e| MfError::io(&wpath, e))?;
        let cpath = dir.join(CONFIG_FILE);
        let json = serde_json::to_string_pretty(&self.config).map_err(|e| MfError::Config {
            path: cpath.clone(),
            field: "<json>".into(),
            reason: e.to_string(),
        })?;
        std::fs::write(&cpath, json).map_err(|e| MfError::io(&cpath, e))?;
        Ok(())
    }

    /// Loads and validates a checkpoint folder (see the module docs for the checks).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let cpath = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cpath).map_err(|e| MfError::io(&cpath, e))?;
        let config: CheckpointConfig =
            serde_json::from_str(&text).map_err(|e| MfError::Config {
                path: cpath.clone(),
                field: "<json>".into(),
                reason: e.to_string(),
            })?;
        validate_config(&config, &cpath)?;
        let wpath = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&wpath).map_err(|e| MfError::io(&wpath, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| MfError::Safetensors {
            path: wpath.clone(),
            message: e.to_string(),
        })?;
        let mut reader = Reader {
            st: &st,
            path: &wpath,
            used: Vec::new(),
        };
        let weights = match config.kind {
            RouterKind::MatrixFactorization => {
                let n = config.models.len();
                let d = config.model_dim.unwrap_or(0);
                let p = reader.get("P.weight", &[n, d])?;
                let w = reader.get("text_proj.0.weight", &[d, config.text_dim])?;
                let c = reader.get("classifier.0.weight", &[1, d])?;
                RouterWeights::Mf(MfModel::new(
                    config.models.clone(),
                    config.text_dim,
                    d,
                    p,
                    w,
                    c,
                )?)
            }
            RouterKind::MlpClassifier => {
                let h = config.hidden.unwrap_or(0);
                let w1 = reader.get("head.0.weight", &[h, config.text_dim])?;
                let b1 = reader.get("head.0.bias", &[h])?;
                let w2 = reader.get("head.3.weight", &[1, h])?;
                let b2 = reader.get("head.3.bias", &[1])?;
                RouterWeights::Classifier(ClassifierModel::from_f32(
                    config.text_dim,
                    h,
                    &w1,
                    &b1,
                    &w2,
                    b2[0],
                )?)
            }
        };
        if let Some(extra) = st
            .names()
            .into_iter()
            .find(|n| !reader.used.iter().any(|u| u == n))
        {
            return Err(MfError::UnexpectedTensor {
                path: wpath,
                key: extra.to_string(),
            });
        }
        Ok(Self { config, weights })
    }
}

fn validate_config(c: &CheckpointConfig, path: &Path) -> Result<()> {
    let bad = |field: &str, reason: String| MfError::Config {
        path: path.to_path_buf(),
        field: field.into(),
        reason,
    };
    if c.format != FORMAT {
        return Err(bad(
            "format",
            format!("`{}`, expected `{FORMAT}`", c.format),
        ));
    }
    if c.version != FORMAT_VERSION {
        return Err(bad(
            "version",
            format!("{}, this build reads {FORMAT_VERSION}", c.version),
        ));
    }
    if c.models.len() < 2 {
        return Err(bad("models", "at least two model ids are needed".into()));
    }
    for (field, m) in [("weak", &c.weak), ("strong", &c.strong)] {
        if !c.models.contains(m) {
            return Err(bad(field, format!("`{m}` is not in `models`")));
        }
    }
    if c.weak == c.strong {
        return Err(bad("strong", "weak and strong must differ".into()));
    }
    if c.text_dim == 0 {
        return Err(bad("text_dim", "must be > 0".into()));
    }
    match c.kind {
        RouterKind::MatrixFactorization if c.model_dim.is_none_or(|d| d == 0) => {
            return Err(bad(
                "model_dim",
                "an MF checkpoint needs model_dim > 0".into(),
            ));
        }
        RouterKind::MlpClassifier if c.hidden.is_none_or(|h| h == 0) => {
            return Err(bad(
                "hidden",
                "a classifier checkpoint needs hidden > 0".into(),
            ));
        }
        RouterKind::MlpClassifier if c.models.len() != 2 => {
            return Err(bad(
                "models",
                "a classifier routes exactly two models".into(),
            ));
        }
        _ => {}
    }
    if c.threshold.is_some_and(|t| !t.is_finite()) {
        return Err(bad("threshold", "must be finite".into()));
    }
    Ok(())
}

struct Reader<'a, 'd> {
    st: &'a SafeTensors<'d>,
    path: &'a Path,
    used: Vec<String>,
}

impl Reader<'_, '_> {
    fn get(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.st.tensor(key).map_err(|_| MfError::MissingTensor {
            path: self.path.to_path_buf(),
            key: key.into(),
        })?;
        self.used.push(key.to_string());
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(MfError::TensorMismatch {
                path: self.path.to_path_buf(),
                key: key.into(),
                expected: format!("F32 {shape:?}"),
                got: format!("{:?} {:?}", view.dtype(), view.shape()),
            });
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(MfError::NonFiniteTensor {
                path: self.path.to_path_buf(),
                key: key.into(),
            });
        }
        Ok(v)
    }
}

/// A loaded checkpoint plus the sentence encoder it needs: routes prompt texts.
#[derive(Debug)]
pub struct LoadedRouter<E> {
    checkpoint: Checkpoint,
    embedder: E,
}

impl<E: TextEmbedder> LoadedRouter<E> {
    /// Pairs a checkpoint with an embedder; the embedder's model id and width must be the
    /// ones the checkpoint was trained with ([`MfError::EmbeddingMismatch`]).
    pub fn new(checkpoint: Checkpoint, embedder: E) -> Result<Self> {
        let c = &checkpoint.config;
        if embedder.model_id() != c.embedding_model || embedder.dim() != c.text_dim {
            return Err(MfError::EmbeddingMismatch {
                expected: c.embedding_model.clone(),
                expected_dim: c.text_dim,
                got: embedder.model_id().to_string(),
                got_dim: embedder.dim(),
            });
        }
        Ok(Self {
            checkpoint,
            embedder,
        })
    }

    /// Loads `dir` and pairs it with `embedder`.
    pub fn load(dir: impl AsRef<Path>, embedder: E) -> Result<Self> {
        Self::new(Checkpoint::load(dir)?, embedder)
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The embedder.
    pub fn embedder(&self) -> &E {
        &self.embedder
    }

    /// Replaces the routing threshold.
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.checkpoint.config.threshold = Some(threshold);
        self
    }

    /// One score per prompt: higher = the strong model is more likely needed.
    pub fn score(&self, prompts: &[&str]) -> Result<Vec<f32>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.embedder.embed_texts(prompts)?;
        let emb = EmbeddingMatrix::from_rows(self.embedder.dim(), &rows)?;
        self.checkpoint.score_embeddings(&emb)
    }

    /// Routes one prompt: strong when its score `>=` the threshold.
    pub fn route(&self, prompt: &str) -> Result<PairDecision> {
        Ok(self.route_batch(&[prompt])?[0])
    }

    /// Routes prompts in one embedding batch.
    pub fn route_batch(&self, prompts: &[&str]) -> Result<Vec<PairDecision>> {
        let t = self
            .checkpoint
            .config
            .threshold
            .ok_or(MfError::NoThreshold)?;
        Ok(self
            .score(prompts)?
            .into_iter()
            .map(|s| {
                if f64::from(s) >= t {
                    PairDecision::Strong
                } else {
                    PairDecision::Weak
                }
            })
            .collect())
    }

    /// The model id a decision stands for.
    pub fn model_for(&self, d: PairDecision) -> &str {
        match d {
            PairDecision::Weak => &self.checkpoint.config.weak,
            PairDecision::Strong => &self.checkpoint.config.strong,
        }
    }
}

/// Loads a checkpoint with the MiniLM encoder from the model cache
/// ([`lm::locate::minilm_dir`]) on burn's CPU device.
pub fn load_with_minilm(
    dir: impl AsRef<Path>,
) -> Result<LoadedRouter<lm::models::bert::SentenceEncoder>> {
    let checkpoint = Checkpoint::load(dir)?;
    if checkpoint.config.embedding_model != MINILM_MODEL_ID {
        return Err(MfError::EmbeddingMismatch {
            expected: checkpoint.config.embedding_model.clone(),
            expected_dim: checkpoint.config.text_dim,
            got: MINILM_MODEL_ID.into(),
            got_dim: 384,
        });
    }
    let enc = lm::models::bert::SentenceEncoder::from_dir(
        lm::locate::minilm_dir()?,
        &burn::tensor::Device::flex(),
    )?;
    LoadedRouter::new(checkpoint, enc)
}

/// As [`load_with_minilm`], with the encoder switched to its int8 CPU path
/// ([`lm::models::bert::SentenceEncoder::quantized`]): about 3–4× the routed queries per second on an
/// AVX-512 VNNI CPU; on RouteLLM's MMLU test split 98.9% of decisions and the APGR (0.673 vs
/// 0.675) are unchanged (`examples/routellm_mf.rs` measures both).
pub fn load_with_minilm_int8(
    dir: impl AsRef<Path>,
) -> Result<LoadedRouter<lm::models::bert::SentenceEncoder>> {
    let router = load_with_minilm(dir)?;
    let checkpoint = router.checkpoint;
    LoadedRouter::new(checkpoint, router.embedder.quantized()?)
}

/// The two file paths of a checkpoint folder: `(config.json, model.safetensors)`.
pub fn checkpoint_files(dir: impl AsRef<Path>) -> (PathBuf, PathBuf) {
    let dir = dir.as_ref();
    (dir.join(CONFIG_FILE), dir.join(WEIGHTS_FILE))
}
