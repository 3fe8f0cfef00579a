//! A mixture-of-experts model with a chosen expert selector, as a [`LanguageModel`], recording
//! every routing decision — so that `evals`' harness scoring (perplexity, LAMBADA, HellaSwag)
//! runs unchanged under any selection rule and the routing can be analysed afterwards.
//!
//! [`RoutedLm`] wraps an `lm` [`Transformer`] with a [`routing_core::expert::ExpertSelector`];
//! every forward pass goes through [`Transformer::forward_routed`], and a [`RoutingRecorder`]
//! keeps, per (sample, token, layer), the selected experts and their weights ([`RouteRow`]),
//! per-layer expert usage, and the time spent selecting and in the MoE blocks. Tokens are
//! counted as fed to the model: a context shared by several continuations (HellaSwag's four
//! endings under prefix-cache scoring) is routed, and recorded, once.

use std::cell::{RefCell, RefMut};

use burn::tensor::Tensor;
use lm::nn::kv_cache::KvCache;
use lm::nn::moe::{ExpertRouting, RoutedLayer, RoutingObserver};
use lm::{LanguageModel, LogitsAt, Transformer};
use routing_core::expert::ExpertSelector;
use tokenizers::Tokenizer;

/// One (sample, token, layer) routing decision.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRow {
    /// Sample (item) index, as set by [`RoutedLm::begin_sample`].
    pub sample: u32,
    /// Token position within the sample, in the order tokens were fed.
    pub token: u32,
    /// Layer.
    pub layer: u16,
    /// Selected experts, descending router logit.
    pub experts: Vec<u16>,
    /// Their combine weights.
    pub weights: Vec<f32>,
    /// The full router logits, kept for the first [`RoutingRecorder::logit_samples`] tokens of
    /// each sample (the log's "router-logit samples"); `None` elsewhere.
    pub logits: Option<Vec<f32>>,
}

/// Records the routing of every forward pass (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RoutingRecorder {
    /// Rows recorded so far.
    pub rows: Vec<RouteRow>,
    /// `usage[layer][expert]`: how many tokens selected the expert.
    pub usage: Vec<Vec<u64>>,
    /// Seconds in the selector, summed over layers and steps.
    pub select_seconds: f64,
    /// Seconds in the MoE blocks (router, selection, experts), summed.
    pub block_seconds: f64,
    /// Keep the full router logits of this many leading tokens per sample.
    pub logit_samples: u32,
    /// Whether to keep per-token rows at all (usage and timing are always kept).
    pub keep_rows: bool,
    sample: u32,
    next_token: u32,
    layers: usize,
}

impl RoutingRecorder {
    /// A recorder for a model with `layers` MoE layers, keeping rows, with the logits of the
    /// first `logit_samples` tokens per sample.
    pub fn new(layers: usize, logit_samples: u32) -> Self {
        Self {
            logit_samples,
            keep_rows: true,
            layers,
            ..Self::default()
        }
    }

    /// Starts a new sample: token positions restart at 0.
    pub fn begin_sample(&mut self, sample: u32) {
        self.sample = sample;
        self.next_token = 0;
    }

    /// Forgets everything recorded (keeps the settings).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.usage.clear();
        self.select_seconds = 0.0;
        self.block_seconds = 0.0;
        self.next_token = 0;
    }

    /// Number of MoE layers.
    pub fn layers(&self) -> usize {
        self.layers
    }
}

impl RoutingObserver for RoutingRecorder {
    fn observe(&mut self, routed: &RoutedLayer<'_>) {
        let l = routed.layer;
        if self.usage.len() <= l {
            self.usage.resize(l + 1, vec![0; routed.experts]);
        }
        self.select_seconds += routed.select_seconds;
        self.block_seconds += routed.block_seconds;
        for (t, c) in routed.choices.iter().enumerate() {
            for &e in &c.experts {
                self.usage[l][e] += 1;
            }
            if self.keep_rows {
                let token = self.next_token + t as u32;
                let logits = (token < self.logit_samples)
                    .then(|| routed.logits[t * routed.experts..(t + 1) * routed.experts].to_vec());
                self.rows.push(RouteRow {
                    sample: self.sample,
                    token,
                    layer: l as u16,
                    experts: c.experts.iter().map(|&e| e as u16).collect(),
                    weights: c.weights.clone(),
                    logits,
                });
            }
        }
        // The last MoE layer of a step closes it: the next step's tokens follow.
        if l + 1 >= self.layers {
            self.next_token += routed.tokens as u32;
        }
    }
}

struct State {
    selector: Box<dyn ExpertSelector>,
    recorder: RoutingRecorder,
}

/// A mixture-of-experts [`Transformer`] routed by a chosen selector, as a [`LanguageModel`].
pub struct RoutedLm<'m> {
    name: String,
    model: &'m Transformer,
    tokenizer: &'m Tokenizer,
    stop: Vec<u32>,
    prefix: Vec<u32>,
    bos: Option<u32>,
    state: RefCell<State>,
}

impl std::fmt::Debug for RoutedLm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedLm")
            .field("name", &self.name)
            .field("selector", &self.state.borrow().selector.name())
            .finish()
    }
}

impl<'m> RoutedLm<'m> {
    /// Wraps `model` (with its tokenizer, stop tokens, prefix and BOS) under `selector`.
    pub fn new(
        name: impl Into<String>,
        model: &'m Transformer,
        tokenizer: &'m Tokenizer,
        stop: Vec<u32>,
        bos: Option<u32>,
        selector: Box<dyn ExpertSelector>,
    ) -> Self {
        let prefix = lm::tokenizer::special_prefix(tokenizer);
        Self {
            name: name.into(),
            model,
            tokenizer,
            stop,
            prefix,
            bos,
            state: RefCell::new(State {
                selector,
                recorder: RoutingRecorder::new(model.spec().num_layers(), 0),
            }),
        }
    }

    /// Replaces the selector (the recorder is kept).
    pub fn set_selector(&self, selector: Box<dyn ExpertSelector>) {
        self.state.borrow_mut().selector = selector;
    }

    /// The selector's name.
    pub fn selector_name(&self) -> String {
        self.state.borrow().selector.name()
    }

    /// The recorder (settings, rows, usage, timing).
    pub fn recorder(&self) -> RefMut<'_, RoutingRecorder> {
        RefMut::map(self.state.borrow_mut(), |s| &mut s.recorder)
    }

    /// Starts a new sample in the recorder.
    pub fn begin_sample(&self, sample: u32) {
        self.recorder().begin_sample(sample);
    }

    /// The wrapped transformer.
    pub fn transformer(&self) -> &Transformer {
        self.model
    }
}

impl LanguageModel for RoutedLm<'_> {
    type Cache = KvCache;

    fn name(&self) -> &str {
        &self.name
    }

    fn tokenizer(&self) -> &Tokenizer {
        self.tokenizer
    }

    fn vocab_size(&self) -> usize {
        self.model.spec().vocab_size
    }

    fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    fn prefix_tokens(&self) -> &[u32] {
        &self.prefix
    }

    fn active_parameters(&self) -> Option<u64> {
        Some(self.model.spec().active_parameter_count())
    }

    fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    fn max_positions(&self) -> usize {
        self.model.spec().max_positions
    }

    fn new_cache(&self, batch: usize) -> KvCache {
        self.model.new_cache(batch)
    }

    fn set_padding(&self, cache: &mut KvCache, pad: Vec<usize>) {
        cache.set_padding(pad);
    }

    fn cache_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn truncate(&self, cache: &mut KvCache, len: usize) {
        cache.truncate(len);
    }

    fn forward(
        &self,
        tokens: &[Vec<u32>],
        cache: &mut KvCache,
        at: LogitsAt,
    ) -> lm::Result<Tensor<3>> {
        let mut state = self.state.borrow_mut();
        let State { selector, recorder } = &mut *state;
        let mut routing = ExpertRouting::observed(selector.as_mut(), recorder);
        self.model.forward_routed(tokens, cache, at, &mut routing)
    }
}
