//! A real-weights mixture-of-experts testbed: a dense SwiGLU model split into experts.
//!
//! The OLMoE checkpoint (14 GB) cannot be used on every machine, so the expert-routing
//! experiments also run on a dense model converted the way MoEfication (Zhang et al., Findings
//! of ACL 2022) and D2DMoE (NeurIPS 2024) convert dense FFNs:
//!
//! 1. **Partition.** Each layer's `F` SwiGLU neurons (rows of `W_gate`/`W_up`, columns of
//!    `W_down`) are split into `E` experts of `F / E` by balanced k-means
//!    ([`kmeans::balanced_kmeans`], seeded) on the neurons' normalised `[gate; up]` rows
//!    (each half scaled to unit length, then concatenated). Expert `e` computes
//!    `W_down[:, g_e] · (silu(W_gate[g_e] x) ⊙ W_up[g_e] x)`, so the sum over all experts is the
//!    dense FFN exactly.
//! 2. **Routers.** A linear router per layer (`E × hidden`, no bias — OLMoE's `mlp.gate`) is
//!    fitted by ridge regression ([`ridge`]) to predict each expert's output norm
//!    `‖W_down[:, g_e] (…)‖₂` from the FFN's input, on calibration text (WikiText-2
//!    *validation*; never evaluation text), in one pass over the dense model.
//! 3. **Combination.** Selected experts are summed with weight 1
//!    ([`crate::select::UnitWeights`]); with all `E` selected the model is the dense model.
//!
//! The result ([`Testbed`]) is an artefact: neuron lists, router weights and provenance
//! (base model, seed, calibration text and token count, per-layer fit), saved as
//! `testbed.safetensors` + `testbed.json` and loaded back onto the base model's weights
//! ([`Testbed::model`]). It is an OLMoE-shaped [`TransformerSpec`] (a [`MoeSpec`] on the base
//! family), so the same forward pass, selectors and metrics run on it as on OLMoE.
//!
//! ```
//! use bh_moe::testbed::{Testbed, TestbedOptions, windows};
//! use bh_moe::UnitWeights;
//! use lm::{HostWeights, LogitsAt, Transformer};
//! use lm::nn::moe::ExpertRouting;
//! use lm::nn::tensor_io::read_f32;
//! use routing_core::expert::TopK;
//!
//! // A tiny random dense Llama-style model (hidden 16, FFN 32) split into 8 experts of 4.
//! let dense_spec = lm::LlamaConfig::from_hf_json(r#"{"vocab_size": 40, "hidden_size": 16,
//!     "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
//!     "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 64}"#,
//!     "doc")?.spec()?;
//! let dense = HostWeights::random(&dense_spec, 1, 0.5, 0.1);
//! let device = Default::default();
//! let ids: Vec<u32> = (0..200).map(|i| (i * 7 % 40) as u32).collect();
//! let calibration = windows(&ids, 20, 200); // 10 windows of 20 tokens
//! let options = TestbedOptions { experts: 8, ..TestbedOptions::default() };
//! let testbed = Testbed::build(&dense_spec, &dense, &calibration, "synthetic ids", "tiny",
//!     &options, &device, |_, _| {})?;
//! let moe = testbed.model(&dense_spec, &dense, &device)?;
//!
//! // All 8 experts with weight 1 = the dense model.
//! let prompt = vec![vec![3u32, 14, 15, 9, 2]];
//! let dense_model = Transformer::new(dense_spec.clone(), &dense, &device)?;
//! let want = read_f32(dense_model.forward(&prompt, &mut dense_model.new_cache(1), LogitsAt::All)?)?;
//! let mut all = UnitWeights(TopK::new(8, false)?);
//! let got = read_f32(moe.forward_routed(&prompt, &mut moe.new_cache(1), LogitsAt::All,
//!     &mut ExpertRouting::new(&mut all))?)?;
//! assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4));
//! # Ok::<(), bh_moe::BhMoeError>(())
//! ```

pub mod kmeans;
pub mod ridge;

use std::path::Path;

use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};
use lm::format::safetensors::{SafetensorsWeights, f32_safetensors};
use lm::models::transformer::{HostTensor, HostWeights, MoeSpec, TransformerSpec};
use lm::nn::moe::{ExpertRouting, RoutedLayer, RoutingObserver};
use lm::nn::tensor_io::{read_f32, upload};
use lm::{LmError, LogitsAt, Transformer};
use routing_core::expert::TopK;
use serde::{Deserialize, Serialize};

use crate::error::{BhMoeError, Result, invalid};
use crate::select::UnitWeights;
use kmeans::{balanced_kmeans, dot};
use ridge::RidgeStats;

/// How to build a [`Testbed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestbedOptions {
    /// Experts per layer (`E`); must divide the dense FFN width.
    pub experts: usize,
    /// Seed of the k-means initialisation (layer `l` uses `seed + l`).
    pub seed: u64,
    /// Maximum k-means rounds per layer.
    pub kmeans_iterations: usize,
    /// Ridge of the router fit, relative to `trace(XᵀX) / hidden`.
    pub ridge: f64,
}

impl Default for TestbedOptions {
    /// 64 experts (24 neurons each for SmolLM2's 1,536), seed 0, 25 k-means rounds, ridge 1e-3.
    fn default() -> Self {
        Self {
            experts: 64,
            seed: 0,
            kmeans_iterations: 25,
            ridge: 1e-3,
        }
    }
}

/// Where a testbed came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The dense base model (name or file).
    pub base_model: String,
    /// Its family (`TransformerSpec::family`).
    pub base_family: String,
    /// Its parameter count.
    pub base_parameters: u64,
    /// Options used.
    pub options: TestbedOptions,
    /// The calibration text (name or path).
    pub calibration: String,
    /// Calibration tokens the routers were fitted on.
    pub calibration_tokens: usize,
    /// Calibration windows (forward passes).
    pub calibration_windows: usize,
    /// The crate that built it, with its version.
    pub built_by: String,
}

/// Per-layer quality of the conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFit {
    /// Layer index.
    pub layer: usize,
    /// k-means inertia (sum of squared distances to the expert centroids).
    pub kmeans_inertia: f64,
    /// k-means rounds run.
    pub kmeans_rounds: usize,
    /// Mean R² of the router's expert-norm predictions over experts (calibration tokens).
    pub router_r2_mean: f64,
    /// Worst expert's R².
    pub router_r2_min: f64,
}

/// A dense model split into experts, with trained routers (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Testbed {
    /// Experts per layer.
    pub experts: usize,
    /// Neurons per expert.
    pub expert_size: usize,
    /// `partition[layer][expert]`: the dense neuron indices of the expert, ascending.
    pub partition: NeuronPartition,
    /// `routers[layer]`: `experts × hidden` router weights, row-major (not in the JSON file).
    #[serde(skip)]
    pub routers: Vec<Vec<f32>>,
    /// Where it came from.
    pub provenance: Provenance,
    /// Per-layer fit.
    pub fit: Vec<LayerFit>,
}

/// A dense base model for the testbed: architecture, f32 host weights and tokenizer.
#[derive(Debug, Clone)]
pub struct DenseBase {
    /// Name (GGUF `general.name`, else the file stem).
    pub name: String,
    /// The file it was read from.
    pub path: std::path::PathBuf,
    /// Architecture.
    pub spec: TransformerSpec,
    /// De-quantised weights.
    pub weights: HostWeights,
    /// Tokenizer from the GGUF metadata.
    pub tokenizer: tokenizers::Tokenizer,
    /// BOS id.
    pub bos: Option<u32>,
    /// EOS ids.
    pub eos: Vec<u32>,
}

impl DenseBase {
    /// Reads a dense SwiGLU GGUF (`general.architecture = llama`: Llama 2/3, SmolLM2),
    /// de-quantising every tensor to f32.
    ///
    /// # Errors
    /// Unreadable files, another architecture ([`LmError::UnsupportedArchitecture`]).
    pub fn from_gguf(path: &Path) -> Result<Self> {
        let file = lm::GgufFile::open(path)?;
        let header = file.header();
        let arch = header.architecture()?.to_string();
        if arch != "llama" {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                key: "general.architecture",
                found: arch,
                supported: "llama (a dense SwiGLU model)".into(),
            }
            .into());
        }
        let origin = path.display().to_string();
        let (cfg, weights) = lm::models::llama::load_gguf(&file, &origin)?;
        let tokenizer = lm::tokenizer::tokenizer_from_gguf(header)?;
        let name = header.model_name(path);
        Ok(Self {
            name,
            path: path.to_path_buf(),
            spec: cfg.spec()?,
            weights,
            tokenizer,
            bos: cfg.bos_token_id,
            eos: cfg.eos_token_id,
        })
    }

    /// Token ids of `text` (no special tokens), at most `max_tokens` of them; only a prefix of
    /// the text long enough for that many tokens is encoded.
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn encode_prefix(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        // ~4 characters per token in English; encode 8 per token to be safe.
        let mut end = text.len().min(max_tokens.saturating_mul(8));
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let enc = self
            .tokenizer
            .encode(&text[..end], false)
            .map_err(|source| LmError::Tokenizers {
                context: "encoding calibration text",
                source,
            })?;
        let mut ids = enc.get_ids().to_vec();
        ids.truncate(max_tokens);
        Ok(ids)
    }
}

/// WikiText-2 validation text (`wikitext2/wiki.valid.tokens` under `data_dir`), detokenised
/// the way lm-evaluation-harness detokenises WikiText (`evals`' `wikitext_detokenizer`): the
/// testbed's calibration text, disjoint from the test split the experiments score.
///
/// # Errors
/// A missing or unreadable file, named.
pub fn wikitext_validation(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("wikitext2/wiki.valid.tokens");
    let raw = std::fs::read_to_string(&path).map_err(|source| BhMoeError::Io { path, source })?;
    Ok(evals::harness::perplexity::wikitext_detokenizer(
        &raw.replace("\r\n", "\n"),
    ))
}

/// Splits `ids` into consecutive windows of `window` tokens, at most `max_tokens` in all (the
/// last partial window dropped).
pub fn windows(ids: &[u32], window: usize, max_tokens: usize) -> Vec<Vec<u32>> {
    if window == 0 {
        return Vec::new();
    }
    ids.chunks_exact(window)
        .take(max_tokens / window)
        .map(<[u32]>::to_vec)
        .collect()
}

fn layer_tensor<'a>(w: &'a HostWeights, layer: usize, leaf: &str) -> Result<&'a HostTensor> {
    Ok(w.get(&format!("model.layers.{layer}.mlp.{leaf}"))?)
}

/// The dense model's MoE form: same architecture, `E` experts of `F / E`, all used by default.
///
/// # Errors
/// A model that is already MoE, or `E` not dividing the FFN width.
pub fn moe_spec(dense: &TransformerSpec, experts: usize) -> Result<TransformerSpec> {
    if dense.moe.is_some() {
        return Err(invalid("base model", "is already a mixture of experts"));
    }
    let f = dense.intermediate_size;
    if experts == 0 || !f.is_multiple_of(experts) {
        return Err(invalid(
            "experts",
            format!("{experts} does not divide the FFN width {f}"),
        ));
    }
    let mut spec = dense.clone();
    spec.intermediate_size = f / experts;
    spec.moe = Some(MoeSpec {
        num_experts: experts,
        experts_per_token: experts,
        norm_topk_prob: false,
    });
    spec.check("testbed")?;
    Ok(spec)
}

/// Rewrites dense weights into per-expert ones by `partition` (`[layer][expert] → neurons`),
/// with `routers` (`[layer] → E × hidden`; zeros when `None`).
///
/// # Errors
/// A partition that is not a partition of `0..F` into equal experts, or weights that do not fit.
pub fn moe_weights(
    dense_spec: &TransformerSpec,
    dense: &HostWeights,
    partition: &[Vec<Vec<usize>>],
    routers: Option<&[Vec<f32>]>,
) -> Result<HostWeights> {
    let experts = partition.first().map_or(0, Vec::len);
    let spec = moe_spec(dense_spec, experts)?;
    let (h, f, s) = (
        dense_spec.hidden_size,
        dense_spec.intermediate_size,
        spec.intermediate_size,
    );
    if partition.len() != dense_spec.num_layers() {
        return Err(invalid(
            "partition",
            format!(
                "{} layers, the model has {}",
                partition.len(),
                dense_spec.num_layers()
            ),
        ));
    }
    let mut out = HostWeights {
        origin: format!("{} split into {experts} experts", dense.origin),
        ..Default::default()
    };
    for (name, t) in &dense.tensors {
        if !name.contains(".mlp.") {
            out.tensors.insert(name.clone(), t.clone());
        }
    }
    for (l, groups) in partition.iter().enumerate() {
        let mut seen = vec![false; f];
        for (e, g) in groups.iter().enumerate() {
            if g.len() != s
                || g.iter()
                    .any(|&j| j >= f || std::mem::replace(&mut seen[j], true))
            {
                return Err(invalid(
                    "partition",
                    format!(
                        "layer {l} expert {e}: {} neurons, repeated or ≥ {f}",
                        g.len()
                    ),
                ));
            }
        }
        let gate = layer_tensor(dense, l, "gate_proj.weight")?;
        let up = layer_tensor(dense, l, "up_proj.weight")?;
        let down = layer_tensor(dense, l, "down_proj.weight")?;
        for (e, g) in groups.iter().enumerate() {
            let rows = |t: &HostTensor| -> Vec<f32> {
                g.iter()
                    .flat_map(|&j| t.data[j * h..(j + 1) * h].iter().copied())
                    .collect()
            };
            let p = format!("model.layers.{l}.mlp.experts.{e}");
            for (leaf, t) in [("gate_proj", gate), ("up_proj", up)] {
                out.tensors.insert(
                    format!("{p}.{leaf}.weight"),
                    HostTensor {
                        shape: vec![s, h],
                        data: rows(t),
                    },
                );
            }
            let cols: Vec<f32> = (0..h)
                .flat_map(|r| g.iter().map(move |&j| down.data[r * f + j]))
                .collect();
            out.tensors.insert(
                format!("{p}.down_proj.weight"),
                HostTensor {
                    shape: vec![h, s],
                    data: cols,
                },
            );
        }
        let router = match routers {
            Some(r) => {
                let r = r
                    .get(l)
                    .ok_or_else(|| invalid("routers", format!("no layer {l}")))?;
                if r.len() != experts * h {
                    return Err(invalid(
                        "routers",
                        format!("layer {l}: {} values, expected {experts} × {h}", r.len()),
                    ));
                }
                r.clone()
            }
            None => vec![0.0; experts * h],
        };
        out.tensors.insert(
            format!("model.layers.{l}.mlp.gate.weight"),
            HostTensor {
                shape: vec![experts, h],
                data: router,
            },
        );
    }
    out.check(&spec)?;
    Ok(out)
}

/// Per layer, per expert, the dense MLP's neuron indices that expert owns.
pub type NeuronPartition = Vec<Vec<Vec<usize>>>;

/// Balanced k-means partition of every layer's neurons (see the module docs).
///
/// # Errors
/// As [`balanced_kmeans`], or weights missing from `dense`.
pub fn partition_neurons(
    dense_spec: &TransformerSpec,
    dense: &HostWeights,
    options: &TestbedOptions,
) -> Result<(NeuronPartition, Vec<(f64, usize)>)> {
    moe_spec(dense_spec, options.experts)?;
    let (h, f) = (dense_spec.hidden_size, dense_spec.intermediate_size);
    let mut partition = Vec::new();
    let mut stats = Vec::new();
    for l in 0..dense_spec.num_layers() {
        let gate = layer_tensor(dense, l, "gate_proj.weight")?;
        let up = layer_tensor(dense, l, "up_proj.weight")?;
        let mut features = Vec::with_capacity(f * 2 * h);
        for j in 0..f {
            for t in [gate, up] {
                let row = &t.data[j * h..(j + 1) * h];
                let norm = dot(row, row).sqrt().max(f32::MIN_POSITIVE);
                features.extend(row.iter().map(|x| x / norm));
            }
        }
        let km = balanced_kmeans(
            &features,
            2 * h,
            options.experts,
            options.kmeans_iterations,
            options.seed.wrapping_add(l as u64),
        )?;
        partition.push(km.clusters(options.experts));
        stats.push((km.inertia, km.iterations));
    }
    Ok((partition, stats))
}

/// Per layer: the experts' stacked weights for computing their output norms on the device.
struct NormTargets {
    /// `[hidden, 2F]`: gate columns in expert order, then up columns.
    gate_up: Tensor<2>,
    /// `[E, F/E, hidden]`.
    down: Tensor<3>,
}

/// Collects the router-fit statistics from the FFN inputs of a forward pass.
struct FitObserver<'a> {
    targets: Vec<NormTargets>,
    stats: Vec<RidgeStats>,
    experts: usize,
    size: usize,
    device: &'a Device,
    error: Option<LmError>,
}

impl FitObserver<'_> {
    fn accumulate(&mut self, routed: &RoutedLayer<'_>) -> std::result::Result<(), LmError> {
        let hidden = routed.hidden.ok_or_else(|| LmError::TensorRead {
            detail: "no hidden states".into(),
        })?;
        let n = routed.tokens;
        let h = hidden.len() / n;
        let (e, s) = (self.experts, self.size);
        let t = &self.targets[routed.layer];
        let x = upload(hidden.to_vec(), [n, h], self.device);
        let gu = x.clone().matmul(t.gate_up.clone());
        let act = silu(gu.clone().slice_dim(1, 0..e * s)) * gu.slice_dim(1, e * s..2 * e * s);
        let out = act
            .reshape([n, e, s])
            .swap_dims(0, 1)
            .matmul(t.down.clone()); // [E, n, h]
        let norms = (out.clone() * out)
            .sum_dim(2)
            .sqrt()
            .reshape([e, n])
            .transpose(); // [n, E]
        let xt = x.clone().transpose();
        let xtx = read_f32(xt.clone().matmul(x))?;
        let xty = read_f32(xt.matmul(norms.clone()))?;
        let y = read_f32(norms)?;
        self.stats[routed.layer]
            .add_products(&xtx, &xty, &y)
            .map_err(|err| LmError::ShapeMismatch {
                context: "router fit",
                expected: String::new(),
                got: err.to_string(),
            })
    }
}

impl RoutingObserver for FitObserver<'_> {
    fn observe(&mut self, routed: &RoutedLayer<'_>) {
        if self.error.is_none()
            && let Err(e) = self.accumulate(routed)
        {
            self.error = Some(e);
        }
    }

    fn wants_hidden(&self) -> bool {
        true
    }
}

impl Testbed {
    /// Partitions `dense` and fits the routers on the calibration `windows` (token ids, one
    /// forward pass each). `progress(done, total)` is called after each window.
    ///
    /// # Errors
    /// Bad options, no calibration tokens, weights that do not fit, a failed forward pass or a
    /// singular router fit.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        dense_spec: &TransformerSpec,
        dense: &HostWeights,
        calibration: &[Vec<u32>],
        calibration_name: &str,
        base_model: &str,
        options: &TestbedOptions,
        device: &Device,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Self> {
        if calibration.iter().all(Vec::is_empty) {
            return Err(invalid("calibration", "no calibration tokens"));
        }
        let (partition, km) = partition_neurons(dense_spec, dense, options)?;
        let spec = moe_spec(dense_spec, options.experts)?;
        let weights = moe_weights(dense_spec, dense, &partition, None)?;
        let model = Transformer::new(spec.clone(), &weights, device)?;
        let (h, e, s) = (spec.hidden_size, options.experts, spec.intermediate_size);
        let mut targets = Vec::new();
        for l in 0..spec.num_layers() {
            let p =
                |x: usize, leaf: &str| format!("model.layers.{l}.mlp.experts.{x}.{leaf}.weight");
            // [hidden, 2F]: W_gateᵀ columns then W_upᵀ columns, expert-major.
            let mut gu = vec![0f32; h * 2 * e * s];
            for (half, leaf) in ["gate_proj", "up_proj"].into_iter().enumerate() {
                for x in 0..e {
                    let t = weights.get(&p(x, leaf))?;
                    for r in 0..s {
                        let col = half * e * s + x * s + r;
                        for i in 0..h {
                            gu[i * 2 * e * s + col] = t.data[r * h + i];
                        }
                    }
                }
            }
            let mut down = Vec::with_capacity(e * s * h);
            for x in 0..e {
                let t = weights.get(&p(x, "down_proj"))?; // [h, s]
                for r in 0..s {
                    down.extend((0..h).map(|i| t.data[i * s + r]));
                }
            }
            targets.push(NormTargets {
                gate_up: upload(gu, [h, 2 * e * s], device),
                down: upload(down, [e, s, h], device),
            });
        }
        let mut observer = FitObserver {
            targets,
            stats: vec![RidgeStats::new(h, e); spec.num_layers()],
            experts: e,
            size: s,
            device,
            error: None,
        };
        let mut all = UnitWeights(TopK::new(e, false)?);
        let used: Vec<&Vec<u32>> = calibration.iter().filter(|w| !w.is_empty()).collect();
        for (i, window) in used.iter().enumerate() {
            let mut cache = model.new_cache(1);
            let mut routing = ExpertRouting::observed(&mut all, &mut observer);
            model.forward_routed(
                &[(*window).clone()],
                &mut cache,
                LogitsAt::Last,
                &mut routing,
            )?;
            if let Some(err) = observer.error.take() {
                return Err(err.into());
            }
            progress(i + 1, used.len());
        }
        let mut routers = Vec::new();
        let mut fit = Vec::new();
        for (l, stats) in observer.stats.iter().enumerate() {
            let solved = stats.solve(options.ridge)?;
            let mean = solved.r2.iter().sum::<f64>() / solved.r2.len() as f64;
            let min = solved.r2.iter().copied().fold(f64::INFINITY, f64::min);
            routers.push(solved.weights);
            fit.push(LayerFit {
                layer: l,
                kmeans_inertia: km[l].0,
                kmeans_rounds: km[l].1,
                router_r2_mean: mean,
                router_r2_min: min,
            });
        }
        Ok(Self {
            experts: e,
            expert_size: s,
            partition,
            routers,
            provenance: Provenance {
                base_model: base_model.to_string(),
                base_family: dense_spec.family.clone(),
                base_parameters: dense_spec.parameter_count(),
                options: options.clone(),
                calibration: calibration_name.to_string(),
                calibration_tokens: used.iter().map(|w| w.len()).sum(),
                calibration_windows: used.len(),
                built_by: format!("bh-moe {}", env!("CARGO_PKG_VERSION")),
            },
            fit,
        })
    }

    /// The MoE form of the base model's architecture.
    ///
    /// # Errors
    /// As [`moe_spec`].
    pub fn spec(&self, dense_spec: &TransformerSpec) -> Result<TransformerSpec> {
        moe_spec(dense_spec, self.experts)
    }

    /// The MoE model on `device`, built from the base model's dense weights.
    ///
    /// # Errors
    /// Weights of another model (shapes, layer count), as [`moe_weights`].
    pub fn model(
        &self,
        dense_spec: &TransformerSpec,
        dense: &HostWeights,
        device: &Device,
    ) -> Result<Transformer> {
        let spec = self.spec(dense_spec)?;
        let weights = moe_weights(dense_spec, dense, &self.partition, Some(&self.routers))?;
        Ok(Transformer::new(spec, &weights, device)?)
    }

    /// Writes `dir/testbed.json` (partition, provenance, fit) and `dir/testbed.safetensors`
    /// (`layers.{l}.router`, `E × hidden` f32). Creates `dir`.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BhMoeError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json = dir.join("testbed.json");
        let text = serde_json::to_string(self).map_err(|source| BhMoeError::Json {
            path: json.clone(),
            source,
        })?;
        std::fs::write(&json, text).map_err(io(&json))?;
        let hidden = self
            .routers
            .first()
            .map_or(0, |r| r.len() / self.experts.max(1));
        let names: Vec<String> = (0..self.routers.len())
            .map(|l| format!("layers.{l}.router"))
            .collect();
        let shape = [self.experts, hidden];
        let tensors: Vec<(&str, &[usize], &[f32])> = names
            .iter()
            .zip(&self.routers)
            .map(|(n, r)| (n.as_str(), &shape[..], r.as_slice()))
            .collect();
        let st = dir.join("testbed.safetensors");
        std::fs::write(&st, f32_safetensors(&tensors)?).map_err(io(&st))?;
        Ok(())
    }

    /// Reads what [`Testbed::save`] wrote, checking that the partition, routers and fit agree.
    ///
    /// # Errors
    /// Missing or malformed files ([`BhMoeError::Json`] with line and column,
    /// [`BhMoeError::Field`] naming the inconsistent field, [`lm::LmError`] for the tensors).
    pub fn load(dir: &Path) -> Result<Self> {
        let json = dir.join("testbed.json");
        let text = std::fs::read_to_string(&json).map_err(|source| BhMoeError::Io {
            path: json.clone(),
            source,
        })?;
        let mut tb: Testbed = serde_json::from_str(&text).map_err(|source| BhMoeError::Json {
            path: json.clone(),
            source,
        })?;
        let field = |field: &str, reason: String| BhMoeError::Field {
            path: json.clone(),
            field: field.to_string(),
            reason,
        };
        for (l, groups) in tb.partition.iter().enumerate() {
            if groups.len() != tb.experts || groups.iter().any(|g| g.len() != tb.expert_size) {
                return Err(field(
                    &format!("partition[{l}]"),
                    format!("expected {} experts of {}", tb.experts, tb.expert_size),
                ));
            }
        }
        let mut st = SafetensorsWeights::open(dir.join("testbed.safetensors"))?;
        let hidden = st
            .shape("layers.0.router")
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0);
        tb.routers = (0..tb.partition.len())
            .map(|l| st.take_f32(&format!("layers.{l}.router"), &[tb.experts, hidden]))
            .collect::<std::result::Result<_, _>>()?;
        st.finish()?;
        Ok(tb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_split_and_cap() {
        let ids: Vec<u32> = (0..25).collect();
        let w = windows(&ids, 10, 100);
        assert_eq!(w.len(), 2);
        assert_eq!(w[1][0], 10);
        assert_eq!(windows(&ids, 10, 15).len(), 1);
        assert!(windows(&ids, 0, 15).is_empty());
    }
}
