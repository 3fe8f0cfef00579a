//! The guided-inference study (seed 003) as library code: a small model, an oracle, real tasks
//! (`lambada_gen`, GSM8K, MATH-500 through `evals`' task definitions), a grid of help
//! configurations, per-item resumable logs, and a typed report with markdown, JSON and SVG
//! figures.
//!
//! Protocol, per task and configuration, item by item (greedy decoding throughout):
//! * **small** / **oracle**: each model alone, its own tokenizer, the task's stop strings and
//!   budget;
//! * **random `c × k`**: `c` calls of `k` oracle tokens at positions drawn without replacement
//!   from the first `L` generated positions (`L` = the task's token budget unless given), a
//!   fresh seeded draw per item; calls drawn after the completion ended are not made (the
//!   report gives the calls actually made per item);
//! * **entropy / max-probability triggers**: a call of `k` tokens whenever the small model's
//!   entropy exceeds `τ` (max probability falls below `τ`);
//! * **BiLD** and **speculative decoding** when the two models share a vocabulary.
//!
//! Each record is appended to `items/<task>/<config>.jsonl` as it finishes; a rerun skips
//! what is there, so an interrupted run continues where it stopped. After the runs, items the
//! small model gets wrong and the oracle right go through the meta-analysis ([`meta`]).

pub mod config;
pub mod log;
pub mod meta;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use datasets::progress::Progress;
use evals::harness::{ExecConfig, Item, Task, score_generation};
use lm::{Decoder, LanguageModel};
use routing_core::token::{EntropyTrigger, HelpPolicy, MaxProbTrigger, NeverHelp, RandomCalls};

pub use config::{HelpConfig, default_grid};
pub use log::{ItemLog, ItemRecord};
pub use report::{ConfigSummary, CostModel, StudyReport, TaskReport, TriggerCurve};

use crate::bild::{BildOptions, bild_with};
use crate::error::{GuidedError, Result};
use crate::guided::{GuidedGeneration, GuidedOptions, GuidedStop, TokenPrices, guided_with};
use crate::oracle::{Handoff, ModelOracle, Oracle};
use crate::remote::{RemoteConfig, RemoteOracle};
use crate::speculative::{SpeculativeOptions, speculative_with};

/// The oracle of a study.
pub enum OracleSource<'m, O: LanguageModel> {
    /// An in-process model (ids exchanged when it shares the small model's tokenizer).
    Model(&'m O),
    /// An OpenAI-compatible `/v1/completions` endpoint (text hand-off).
    Remote(RemoteConfig),
}

/// MATH-500's default token budget: lm-eval's (`hendrycks_math500` sets no `max_gen_toks`,
/// so the harness default of 256 applies).
pub const MATH_MAX_TOKENS: usize = 256;

/// What to run.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// Output folder (`items/`, `report.md`, `summary.json`, figures).
    pub out_dir: PathBuf,
    /// The shared data folder.
    pub data_dir: PathBuf,
    /// Tasks: `lambada_gen`, `gsm8k`, `math500`.
    pub tasks: Vec<Task>,
    /// First item of each task.
    pub offset: usize,
    /// Items per task (`None`: all).
    pub limit: Option<usize>,
    /// Configurations (`None`: [`default_grid`] per task).
    pub configs: Option<Vec<HelpConfig>>,
    /// Seed of the random calls.
    pub seed: u64,
    /// MATH-500 token budget. The default, 256, is lm-eval's: its `hendrycks_math500` task
    /// (`hendrycks_math_algebra.yaml`'s `generation_kwargs`) sets `until: ["Problem:"]` and no
    /// `max_gen_toks`, so the harness's default budget of 256 applies. (GSM8K: lm-eval's 256
    /// too; `lambada_gen`: 8.)
    pub math_max_tokens: usize,
    /// The random calls' horizon `L` (`None`: the task's budget).
    pub horizon: Option<usize>,
    /// The small model's prices.
    pub small_prices: TokenPrices,
    /// The oracle's prices.
    pub oracle_prices: TokenPrices,
    /// Run the meta-analysis.
    pub meta: bool,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Only summarise what the logs hold (no generation): the report then covers the items
    /// every configuration has finished — e.g. while a long run is stopped half-way.
    pub report_only: bool,
    /// Run only this shard of each task's selected items ([`datasets::shard::Shard`]);
    /// [`merge_logs`] combines the shards' folders.
    pub shard: Option<datasets::shard::Shard>,
}

impl StudyOptions {
    /// Options for `tasks` with everything else at its default: all items, the default grid,
    /// seed 0, lm-eval's 256-token MATH budget, free tokens, the meta-analysis on, progress off.
    pub fn new(
        out_dir: impl Into<PathBuf>,
        data_dir: impl Into<PathBuf>,
        tasks: Vec<Task>,
    ) -> Self {
        Self {
            out_dir: out_dir.into(),
            data_dir: data_dir.into(),
            tasks,
            offset: 0,
            limit: None,
            configs: None,
            seed: 0,
            math_max_tokens: MATH_MAX_TOKENS,
            horizon: None,
            small_prices: TokenPrices::default(),
            oracle_prices: TokenPrices::default(),
            meta: true,
            progress: false,
            report_only: false,
            shard: None,
        }
    }
}

/// The small model's and the oracle's decoders, kept across the items of a configuration (a
/// few-shot block is read once).
pub(crate) struct Models<'m, S: LanguageModel, O: LanguageModel> {
    small: &'m S,
    oracle_model: Option<&'m O>,
    remote: Option<RemoteConfig>,
    shared_vocabulary: bool,
}

impl<'m, S: LanguageModel, O: LanguageModel> Models<'m, S, O> {
    fn oracle(&self) -> Result<Box<dyn Oracle + 'm>> {
        Ok(match (self.oracle_model, &self.remote) {
            (Some(m), _) if self.shared_vocabulary => Box::new(ModelOracle::same_tokenizer(m)),
            (Some(m), _) => Box::new(ModelOracle::text(m)),
            (None, Some(cfg)) => Box::new(RemoteOracle::new(cfg.clone())?),
            (None, None) => unreachable!("a study has an oracle"),
        })
    }

    fn oracle_name(&self) -> String {
        match (self.oracle_model, &self.remote) {
            (Some(m), _) => m.name().to_string(),
            (None, Some(cfg)) => format!("{} @ {}", cfg.model, cfg.base_url),
            (None, None) => String::new(),
        }
    }
}

/// Whether two models share a tokenizer: same vocabulary size and the same ids for a probe
/// text.
pub fn same_tokenizer<A: LanguageModel, B: LanguageModel>(a: &A, b: &B) -> bool {
    let probe = "The quick brown fox, 12 × 3 = 36; naïve café.\n  def f(x): return x**2";
    a.vocab_size() == b.vocab_size()
        && matches!((a.encode(probe), b.encode(probe)), (Ok(x), Ok(y)) if x == y)
}

/// Runs the study (resuming from the logs in `opts.out_dir`) and returns its report; the
/// report is also written there (`report.md`, `summary.json`, SVG figures).
///
/// # Errors
/// Tasks that are not generation tasks, configurations that need a shared vocabulary with a
/// pair that has none, data, model, oracle and I/O errors.
pub fn run_study<S: LanguageModel, O: LanguageModel>(
    small: &S,
    oracle: OracleSource<'_, O>,
    opts: &StudyOptions,
) -> Result<StudyReport> {
    let mut loaded = Vec::new();
    for task in &opts.tasks {
        if !matches!(task, Task::LambadaGen | Task::Gsm8k | Task::Math500) {
            return Err(GuidedError::InvalidOption {
                name: "tasks",
                reason: format!(
                    "`{}` is not one of lambada_gen, gsm8k, math500",
                    task.name()
                ),
            });
        }
        let all = task.load(&opts.data_dir)?;
        loaded.push((
            task.clone(),
            evals::harness::runner::select(all, opts.offset, opts.limit),
        ));
    }
    run_study_on(small, oracle, &loaded, opts)
}

/// [`run_study`] on items given by the caller (e.g. synthetic ones; `opts.tasks`,
/// `offset` and `limit` are not used; `opts.shard` is).
///
/// # Errors
/// As [`run_study`].
pub fn run_study_on<S: LanguageModel, O: LanguageModel>(
    small: &S,
    oracle: OracleSource<'_, O>,
    tasks: &[(Task, Vec<Item>)],
    opts: &StudyOptions,
) -> Result<StudyReport> {
    let (oracle_model, remote) = match oracle {
        OracleSource::Model(m) => (Some(m), None),
        OracleSource::Remote(cfg) => (None, Some(cfg)),
    };
    let shared_vocabulary = oracle_model.is_some_and(|m| same_tokenizer(small, m));
    let models = Models {
        small,
        oracle_model,
        remote,
        shared_vocabulary,
    };
    run_items(models, tasks, opts)
}

fn run_items<S: LanguageModel, O: LanguageModel>(
    models: Models<'_, S, O>,
    loaded: &[(Task, Vec<Item>)],
    opts: &StudyOptions,
) -> Result<StudyReport> {
    let (small, shared_vocabulary) = (models.small, models.shared_vocabulary);
    let exec = ExecConfig::default();
    let mut tasks = Vec::new();
    for (task, items) in loaded {
        let items = &match opts.shard {
            Some(sh) => sh.select(items.clone()),
            None => items.clone(),
        };
        let configs = match &opts.configs {
            Some(c) => c.clone(),
            None => default_grid(task, shared_vocabulary),
        };
        if let Some(c) = configs
            .iter()
            .find(|c| c.needs_shared_vocabulary() && !shared_vocabulary)
        {
            return Err(GuidedError::InvalidOption {
                name: "config",
                reason: format!(
                    "`{}` needs an in-process oracle with the small model's tokenizer; {} and {} differ",
                    c.name(),
                    small.name(),
                    models.oracle_name()
                ),
            });
        }
        let dir = opts.out_dir.join("items").join(task.name());
        // Item-major: every configuration of an item runs before the next item, so that each
        // model reads the item's prompt once for all of them (the decoders keep it).
        let mut logs = Vec::with_capacity(configs.len());
        for config in &configs {
            logs.push(ItemLog::open(
                &dir.join(format!("{}.jsonl", config.name())),
            )?);
        }
        let todo: usize = items
            .iter()
            .map(|it| logs.iter().filter(|l| l.get(it.idx).is_none()).count())
            .sum();
        let mut bar = Progress::new(
            format!("{} ({} configurations)", task.name(), configs.len()),
            todo,
            opts.progress && todo > 0 && !opts.report_only,
        );
        let mut runner = Runner::new(&models, opts)?;
        for it in items.iter().filter(|_| !opts.report_only) {
            if logs.iter().all(|l| l.get(it.idx).is_some()) {
                continue;
            }
            runner.start_item(it)?;
            for (config, log) in configs.iter().zip(logs.iter_mut()) {
                if log.get(it.idx).is_some() {
                    continue;
                }
                let rec = runner.run(*config, it, &exec)?;
                log.append(rec)?;
                bar.advance(1);
            }
        }
        bar.finish();
        // The items every configuration has finished (all of them after a complete run).
        let indices: Vec<usize> = items
            .iter()
            .map(|it| it.idx)
            .filter(|&i| logs.iter().all(|l| l.get(i).is_some()))
            .collect();
        let per_config: Vec<(HelpConfig, Vec<ItemRecord>)> = configs
            .iter()
            .zip(&logs)
            .map(|(c, l)| (*c, l.records(&indices)))
            .collect();
        let meta = if opts.meta {
            meta::run_meta(&models, items, &per_config, &dir, opts)?
        } else {
            None
        };
        let cost = report::CostModel {
            small_parameters: small.active_parameters(),
            oracle_parameters: match (models.oracle_model, &models.remote) {
                (Some(m), _) => m.active_parameters(),
                (None, Some(cfg)) => cfg.active_parameters,
                (None, None) => None,
            },
            small_prices: opts.small_prices,
            oracle_prices: opts.oracle_prices,
        };
        tasks.push(report::task_report(task, &per_config, meta, opts, &cost));
    }
    let report = StudyReport {
        small: small.name().to_string(),
        oracle: models.oracle_name(),
        handoff: if shared_vocabulary {
            Handoff::Ids
        } else {
            Handoff::Text
        },
        seed: opts.seed,
        tasks,
    };
    report.write(&opts.out_dir)?;
    Ok(report)
}

/// Runs configurations on items, keeping the decoders between runs (an item's prompt is read
/// once for all its configurations; a few-shot block once per task).
struct Runner<'r, 'm, S: LanguageModel, O: LanguageModel> {
    models: &'r Models<'m, S, O>,
    opts: &'r StudyOptions,
    small_dec: Decoder<'m, S>,
    oracle_dec: Option<Decoder<'m, O>>,
    oracle: Box<dyn Oracle + 'm>,
}

impl<'r, 'm, S: LanguageModel, O: LanguageModel> Runner<'r, 'm, S, O> {
    fn new(models: &'r Models<'m, S, O>, opts: &'r StudyOptions) -> Result<Self> {
        Ok(Self {
            models,
            opts,
            small_dec: Decoder::empty(models.small),
            oracle_dec: models.oracle_model.map(Decoder::empty),
            oracle: models.oracle()?,
        })
    }

    /// Brings every decoder and the oracle to the item's shared block computed alone (or to
    /// nothing), so that the item's numbers do not depend on the item before it.
    fn start_item(&mut self, it: &Item) -> Result<()> {
        let block = |m: &dyn Fn(&str) -> lm::Result<Vec<u32>>| -> Result<Vec<u32>> {
            Ok(match &it.shared_prefix {
                Some(p) => m(p)?,
                None => Vec::new(),
            })
        };
        let small = self.models.small;
        self.small_dec
            .start_from(&block(&|p| small.encode_prompt(p))?)?;
        if let (Some(dec), Some(o)) = (self.oracle_dec.as_mut(), self.models.oracle_model) {
            dec.start_from(&block(&|p| o.encode_prompt(p))?)?;
        }
        self.oracle.start_item(it.shared_prefix.as_deref())
    }

    fn policy(&self, config: HelpConfig, budget: usize) -> Result<Box<dyn HelpPolicy>> {
        let horizon = self.opts.horizon.unwrap_or(budget);
        Ok(match config {
            HelpConfig::Random { calls, tokens } => {
                Box::new(RandomCalls::new(calls, tokens, horizon, self.opts.seed)?)
            }
            HelpConfig::Entropy { tau, tokens } => {
                Box::new(EntropyTrigger::new(tau, tokens, None)?)
            }
            HelpConfig::MaxProb { tau, tokens } => {
                Box::new(MaxProbTrigger::new(tau, tokens, None)?)
            }
            _ => Box::new(NeverHelp),
        })
    }

    fn run(&mut self, config: HelpConfig, it: &Item, exec: &ExecConfig) -> Result<ItemRecord> {
        let spec = it
            .generation_spec(Some(self.opts.math_max_tokens))
            .ok_or_else(|| GuidedError::InvalidOption {
                name: "tasks",
                reason: format!("{} is not a generation item", it.id()),
            })?;
        let t0 = Instant::now();
        let cpu0 = process_cpu_seconds();
        let gopts = GuidedOptions {
            max_new_tokens: spec.max_new_tokens,
            item: it.idx as u64,
            until: spec.until.clone(),
            ..Default::default()
        };
        let cut = |text: &str| -> String {
            match evals::harness::generation::cut_at_stop(text, &spec.until) {
                Some(c) => text[..c].to_string(),
                None => text.to_string(),
            }
        };
        let mut rec = match config {
            HelpConfig::Oracle => match self.oracle_dec.as_mut() {
                Some(dec) => {
                    let g =
                        guided_with(dec, &mut *self.oracle, &mut NeverHelp, spec.prompt, &gopts)?;
                    let mut r = from_guided(&g, true);
                    r.oracle_read = g.accounting.small_read;
                    r.oracle_generated = g.accounting.small_generated;
                    r.oracle_s = g.accounting.small_s;
                    (r.small_read, r.small_generated, r.small_s) = (0, 0, 0.0);
                    r.oracle_tokens = r.completion_tokens;
                    r
                }
                None => {
                    self.oracle.reset();
                    let reply = self
                        .oracle
                        .continue_text(spec.prompt, "", spec.max_new_tokens)?;
                    let mut r = blank();
                    r.text = cut(&reply.text);
                    r.stop = if reply.stopped {
                        "oracle_stop"
                    } else {
                        "max_tokens"
                    }
                    .into();
                    r.completion_tokens = reply.generated;
                    r.oracle_tokens = reply.generated;
                    r.calls = 1;
                    r.oracle_read = reply.read_tokens;
                    r.oracle_generated = reply.generated;
                    r.oracle_s = reply.wall.as_secs_f64();
                    r
                }
            },
            HelpConfig::Small
            | HelpConfig::Random { .. }
            | HelpConfig::Entropy { .. }
            | HelpConfig::MaxProb { .. } => {
                let mut policy = self.policy(config, spec.max_new_tokens)?;
                let g = guided_with(
                    &mut self.small_dec,
                    &mut *self.oracle,
                    &mut *policy,
                    spec.prompt,
                    &gopts,
                )?;
                from_guided(&g, config == HelpConfig::Small)
            }
            HelpConfig::Bild { fallback, rollback } => {
                let dec = self
                    .oracle_dec
                    .as_mut()
                    .expect("checked: an in-process oracle");
                let ids = self.models.small.encode_prompt(spec.prompt)?;
                let o = bild_with(
                    &mut self.small_dec,
                    dec,
                    &ids,
                    &BildOptions {
                        fallback,
                        rollback,
                        max_new_tokens: spec.max_new_tokens,
                        until: spec.until.clone(),
                    },
                )?;
                let mut r = blank();
                r.text = cut(&self.models.small.decode(&o.tokens)?);
                r.completion_tokens = o.tokens.len();
                r.oracle_tokens = o.large_written;
                r.calls = o.calls;
                r.small_generated = o.small_generated;
                // Inputs per item as if alone (`log::TOKEN_COUNTS`): the small model reads
                // the prompt and each token the large model wrote; the large model the prompt
                // and its passes, less the first token of every pass after the first (its own
                // last correction, counted as written).
                r.small_read = ids.len() + o.large_written;
                r.oracle_read = ids.len() - 1 + o.large_read - o.calls.saturating_sub(1);
                r.oracle_generated = o.large_written;
                r.rollbacks_discarded = Some((o.rollbacks, o.discarded));
                r
            }
            HelpConfig::Speculative { gamma } => {
                let dec = self
                    .oracle_dec
                    .as_mut()
                    .expect("checked: an in-process oracle");
                let ids = self.models.small.encode_prompt(spec.prompt)?;
                let o = speculative_with(
                    &mut self.small_dec,
                    dec,
                    &ids,
                    &SpeculativeOptions {
                        gamma,
                        max_new_tokens: spec.max_new_tokens,
                        temperature: 0.0,
                        seed: self.opts.seed,
                        until: spec.until.clone(),
                    },
                )?;
                let mut r = blank();
                r.text = cut(&self.models.small.decode(&o.tokens)?);
                r.completion_tokens = o.tokens.len();
                r.oracle_tokens = o.tokens.len() - o.accepted.min(o.tokens.len());
                r.calls = o.target_passes;
                r.small_generated = o.drafted;
                // Inputs (`log::TOKEN_COUNTS`): the draft reads the prompt and each correction
                // or bonus token; the verifier the prompt but its last token, then `last +
                // drafts` per pass, where `last` is its own previous correction after the
                // first pass.
                r.oracle_generated = o.tokens.len() - o.accepted.min(o.tokens.len());
                r.small_read = ids.len() + r.oracle_generated;
                r.oracle_read = ids.len() - 1 + o.drafted + o.target_passes.min(1);
                r.drafted_accepted = Some((o.drafted, o.accepted));
                r
            }
        };
        let score = score_generation(it, &rec.text, exec)?;
        rec.task = it.task.clone();
        rec.idx = it.idx;
        rec.config = config.name();
        rec.correct = score.correct;
        rec.prediction = score.prediction;
        rec.seconds = t0.elapsed().as_secs_f64();
        rec.cpu_s = cpu0
            .zip(process_cpu_seconds())
            .map(|(a, b)| (b - a).max(0.0));
        Ok(rec)
    }
}

/// CPU time of this process so far (user + system, all threads), in seconds, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of `USER_HZ` = 100 a second — the
/// kernel's fixed unit for `/proc` on x86 and ARM; `getconf CLK_TCK`): 10 ms resolution, so a
/// per-item figure is meaningful as a mean over many items. `None` off Linux or when the file
/// cannot be read.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|t| t as f64 / 100.0)
}

/// utime + stime of a `/proc/<pid>/stat` line (the command name, field 2, may hold spaces and
/// parentheses: fields are counted after its last `)`).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// An empty record (filled by the caller).
fn blank() -> ItemRecord {
    ItemRecord {
        task: String::new(),
        idx: 0,
        config: String::new(),
        correct: 0.0,
        text: String::new(),
        prediction: serde_json::Value::Null,
        stop: "max_tokens".into(),
        completion_tokens: 0,
        oracle_tokens: 0,
        calls: 0,
        inexact_handoffs: 0,
        small_read: 0,
        small_generated: 0,
        oracle_read: 0,
        oracle_generated: 0,
        seconds: 0.0,
        cpu_s: None,
        small_s: 0.0,
        oracle_s: 0.0,
        policy_s: 0.0,
        small_step_s: 0.0,
        token_counts: log::TOKEN_COUNTS,
        drafted_accepted: None,
        rollbacks_discarded: None,
        steps: Vec::new(),
    }
}

/// The record of a guided generation (`keep_steps`: store the per-step signal).
fn from_guided(g: &GuidedGeneration, keep_steps: bool) -> ItemRecord {
    let a = &g.accounting;
    let mut r = blank();
    r.text = g.text.clone();
    r.stop = match g.stop {
        GuidedStop::SmallStop => "small_stop",
        GuidedStop::OracleStop => "oracle_stop",
        GuidedStop::MaxTokens => "max_tokens",
        GuidedStop::ContextFull => "context_full",
        GuidedStop::StopString => "stop_string",
    }
    .into();
    r.completion_tokens = g.tokens.len();
    r.oracle_tokens = g.tokens.len().saturating_sub(a.small_generated);
    r.calls = a.oracle_calls;
    r.inexact_handoffs = g.calls.iter().filter(|c| !c.exact_handoff).count();
    r.small_read = a.small_read;
    r.small_generated = a.small_generated;
    r.oracle_read = a.oracle_read;
    r.oracle_generated = a.oracle_generated;
    r.small_s = a.small_s;
    r.oracle_s = a.oracle_s;
    r.policy_s = a.policy_s;
    r.small_step_s = a.small_step_s;
    if keep_steps {
        r.steps = g
            .steps
            .iter()
            .map(|s| (s.position, s.token, s.entropy, s.max_prob))
            .collect();
    }
    r
}

/// Combines the output folders of a sharded study (`shard: Some(i/N)` for every `i`) into
/// `out`: each configuration's item log and the meta-analysis log, as the union of the shards'
/// records in item order. A study run on `out` with `report_only` then writes the report a
/// single run gives.
///
/// # Errors
/// A folder without `items/`; an item logged by two shards; unreadable or unwritable logs.
pub fn merge_logs(shards: &[PathBuf], out: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GuidedError::Io { path, source }
    };
    // task/file → idx → line
    let mut files: BTreeMap<PathBuf, BTreeMap<usize, (String, PathBuf)>> = BTreeMap::new();
    for dir in shards {
        let items = dir.join("items");
        let tasks = std::fs::read_dir(&items).map_err(io(&items))?;
        for task in tasks {
            let task = task.map_err(io(&items))?.path();
            for f in std::fs::read_dir(&task).map_err(io(&task))? {
                let f = f.map_err(io(&task))?.path();
                if f.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                    continue;
                }
                let rel = f.strip_prefix(dir).unwrap_or(&f).to_path_buf();
                let text = std::fs::read_to_string(&f).map_err(io(&f))?;
                let entry = files.entry(rel).or_default();
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: serde_json::Value =
                        serde_json::from_str(line).map_err(|e| GuidedError::Log {
                            path: f.clone(),
                            line: i + 1,
                            detail: e.to_string(),
                        })?;
                    let idx = v
                        .get("idx")
                        .and_then(serde_json::Value::as_u64)
                        .ok_or_else(|| GuidedError::Log {
                            path: f.clone(),
                            line: i + 1,
                            detail: "no `idx`".into(),
                        })? as usize;
                    if let Some((_, other)) = entry.get(&idx) {
                        return Err(GuidedError::Log {
                            path: f.clone(),
                            line: i + 1,
                            detail: format!(
                                "item {idx} is also logged in {}: shards of one run never share an item",
                                other.display()
                            ),
                        });
                    }
                    entry.insert(idx, (line.to_string(), f.clone()));
                }
            }
        }
    }
    for (rel, lines) in files {
        let path = out.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut text = String::new();
        for (line, _) in lines.values() {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_from_a_stat_line() {
        // A command name with spaces and parentheses; utime 250, stime 31.
        let line = "5981 (my (odd) cmd) R 5976 5976 1525 0 -1 4194304 127 0 0 0 250 31 0 0 20 0 1 0 4412009";
        assert_eq!(parse_cpu_ticks(line), Some(281));
        assert_eq!(parse_cpu_ticks("no name here"), None);
        assert_eq!(parse_cpu_ticks("1 (x) R 1 2 3"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_cpu_time_advances_with_work() {
        let a = process_cpu_seconds().expect("/proc/self/stat");
        let start = Instant::now();
        let mut x = 0u64;
        // Spin until 50 ms of CPU time have been counted (10 s of wall time at most, for a
        // loaded machine).
        while process_cpu_seconds().unwrap() - a < 0.05 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            assert!(start.elapsed().as_secs() < 10, "CPU time did not advance");
        }
        std::hint::black_box(x);
    }
}
