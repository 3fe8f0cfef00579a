//! The runner: selects items (offset/limit), skips those already in the output (resume),
//! scores the rest through the [`LanguageModel`] trait, and writes per-sample JSONL, a summary
//! JSON and a markdown table.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use datasets::shard::Shard;
use std::time::Instant;

use lm::LanguageModel;
use serde_json::json;

use super::error::{HarnessError, Result};
use super::exec::{self, ExecConfig};
use super::extract;
use super::generation::{self, GSM8K_MAX_GEN_TOKS, GSM8K_UNTIL};
use super::metrics::{self, score_multiple_choice};
use super::perplexity;
use super::progress::Progress;
use super::record::{self, SampleRecord, TaskSummary};
use super::request::{TokenRequest, encode_pair};
use super::scorer::{Scorer, ScoringMode};
use super::task::{Item, ItemKind, Task};

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Tasks to run.
    pub tasks: Vec<Task>,
    /// At most this many items per (sub)task, after `offset`.
    pub limit: Option<usize>,
    /// Skip this many items per (sub)task first.
    pub offset: usize,
    /// Seed recorded in the summary (the task definitions here are deterministic: few-shot
    /// examples are the first rows, decoding is greedy).
    pub seed: u64,
    /// 1: prefix-cache scoring; more: left-padded batches of this many requests.
    pub batch_size: usize,
    /// lm-eval `max_length` (context window used for truncation and rolling windows).
    pub max_length: usize,
    /// Output folder (per-sample JSONL, `results.json`, `results.md`).
    pub output: PathBuf,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Limits for code execution.
    pub exec: ExecConfig,
    /// Generation budget of MATH and code items; `None`: each task's lm-eval budget
    /// ([`default_max_gen_toks`]: MATH and MBPP 256, HumanEval 1,024).
    pub max_gen_toks: Option<usize>,
    /// Run only this shard of each task's selected items ([`datasets::shard::Shard`]); the
    /// shards' folders are combined by [`merge`].
    pub shard: Option<Shard>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tasks: Vec::new(),
            limit: None,
            offset: 0,
            seed: 1234,
            batch_size: 1,
            max_length: 2048,
            output: PathBuf::from("out/lm_eval"),
            progress: true,
            exec: ExecConfig::default(),
            max_gen_toks: None,
            shard: None,
        }
    }
}

/// `offset`/`limit` applied per task name (per MMLU subject), keeping source order.
pub fn select(items: Vec<Item>, offset: usize, limit: Option<usize>) -> Vec<Item> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    items
        .into_iter()
        .filter(|it| {
            let k = seen.entry(it.task.clone()).or_insert(0);
            let pos = *k;
            *k += 1;
            pos >= offset && limit.is_none_or(|l| pos < offset + l)
        })
        .collect()
}

fn base_record<M: LanguageModel>(model: &M, it: &Item) -> SampleRecord {
    SampleRecord {
        id: it.id(),
        task: it.task.clone(),
        group: it.group.clone(),
        idx: it.idx,
        model: model.name().to_string(),
        inputs: serde_json::Value::Null,
        logliks: Vec::new(),
        is_greedy: Vec::new(),
        prediction: serde_json::Value::Null,
        gold: serde_json::Value::Null,
        correct: 0.0,
        metrics: BTreeMap::new(),
        tokens: 0,
        time_s: 0.0,
        details: serde_json::Value::Null,
    }
}

/// `total` split into `n` whole shares that sum to it: `total / n` each, one more for the first
/// `total % n` (no token of a batched chunk is dropped from the per-item counts).
fn share_evenly(total: usize, n: usize) -> Vec<usize> {
    let n1 = n.max(1);
    (0..n)
        .map(|i| total / n1 + usize::from(i < total % n1))
        .collect()
}

/// Scores a chunk of log-likelihood items (multiple choice, LAMBADA, WikiText) in one call to
/// the scorer (so that [`ScoringMode::Batched`] can batch across items).
pub fn evaluate_loglik_items<M: LanguageModel>(
    scorer: &mut Scorer<'_, M>,
    items: &[Item],
) -> Result<Vec<SampleRecord>> {
    let model = scorer.model();
    let t0 = Instant::now();
    let fed0 = scorer.tokens_fed();
    let mut reqs: Vec<TokenRequest> = Vec::new();
    let mut spans = Vec::new();
    let mut extra: Vec<serde_json::Value> = Vec::new();
    for it in items {
        let start = reqs.len();
        match &it.kind {
            ItemKind::MultipleChoice(mc) => {
                for r in &mc.requests {
                    reqs.push(encode_pair(model, r)?);
                }
                extra.push(serde_json::Value::Null);
            }
            ItemKind::Target(r) => {
                reqs.push(encode_pair(model, r)?);
                extra.push(serde_json::Value::Null);
            }
            ItemKind::Rolling { page, .. } => {
                let detok = perplexity::wikitext_detokenizer(page);
                // lm-eval: `tok_encode(page)` (BOS first when the model adds it) and the
                // model's BOS (else EOS) as the first window's prefix token.
                let toks = model.encode_prompt(&detok)?;
                let prefix_token = model
                    .bos_token()
                    .or_else(|| model.stop_tokens().first().copied())
                    .unwrap_or(0);
                let windows =
                    perplexity::rolling_windows(&toks, prefix_token, scorer.max_length(), 1);
                extra.push(json!({
                    "n_tokens": toks.len(),
                    "first_token_ids": &toks[..toks.len().min(32)],
                    "last_token_ids": &toks[toks.len().saturating_sub(32)..],
                    "detok_n_chars": detok.chars().count(),
                    "windows": windows.iter().map(|w| json!({
                        "n_pred": w.pred.len(), "n_context": w.context.len(),
                    })).collect::<Vec<_>>(),
                }));
                for w in windows {
                    reqs.push(TokenRequest {
                        ctx: w.context,
                        cont: w.pred,
                    });
                }
            }
            _ => {
                return Err(HarnessError::invalid(it.id(), "not a log-likelihood item"));
            }
        }
        spans.push(start..reqs.len());
    }
    let scores = scorer.score(&reqs)?;
    let secs = t0.elapsed().as_secs_f64() / items.len().max(1) as f64;
    let tokens = share_evenly(scorer.tokens_fed() - fed0, items.len());
    let mut out = Vec::with_capacity(items.len());
    for (((it, span), mut ext), tokens) in items.iter().zip(spans).zip(extra).zip(tokens) {
        let sc = &scores[span.clone()];
        let rq = &reqs[span];
        let mut rec = base_record(model, it);
        rec.time_s = secs;
        rec.tokens = tokens;
        let token_ids = json!({
            "ctx_token_ids": rq.iter().map(|r| &r.ctx).collect::<Vec<_>>(),
            "cont_token_ids": rq.iter().map(|r| &r.cont).collect::<Vec<_>>(),
            "cont_token_logprobs": sc.iter().map(|s| &s.token_logprobs).collect::<Vec<_>>(),
        });
        match &it.kind {
            ItemKind::MultipleChoice(mc) => {
                let s = score_multiple_choice(mc, sc);
                rec.inputs = json!({
                    "contexts": mc.requests.iter().map(|r| &r.context).collect::<Vec<_>>(),
                    "continuations": mc.requests.iter().map(|r| &r.continuation).collect::<Vec<_>>(),
                    "choices": mc.choices,
                });
                rec.logliks = s.loglik.clone();
                rec.is_greedy = s.is_greedy.clone();
                rec.prediction = json!({"pred_acc": s.pred_acc, "pred_acc_norm": s.pred_acc_norm});
                rec.gold = json!(mc.gold);
                rec.correct = f64::from(u8::from(s.acc));
                rec.metrics.insert("acc".into(), rec.correct);
                if mc.report_acc_norm {
                    rec.metrics
                        .insert("acc_norm".into(), f64::from(u8::from(s.acc_norm)));
                }
                rec.details = json!({
                    "char_len": s.char_len,
                    "margin_acc": metrics::margin(&s.loglik),
                    "token_ids": token_ids,
                });
            }
            ItemKind::Target(r) => {
                rec.inputs = json!({"context": r.context, "target": r.continuation});
                rec.logliks = vec![sc[0].logprob];
                rec.is_greedy = vec![sc[0].is_greedy];
                rec.prediction = json!({"is_greedy": sc[0].is_greedy});
                rec.gold = json!(r.continuation);
                rec.correct = f64::from(u8::from(sc[0].is_greedy));
                rec.metrics.insert("acc".into(), rec.correct);
                rec.metrics.insert("loglik".into(), sc[0].logprob);
                rec.details = json!({"token_ids": token_ids});
            }
            ItemKind::Rolling { title, page } => {
                let ll: f64 = sc.iter().map(|s| s.logprob).sum();
                let words = perplexity::count_words(page) as f64;
                let bytes = page.len() as f64;
                rec.inputs = json!({"title": title, "page_n_chars": page.chars().count()});
                rec.logliks = sc.iter().map(|s| s.logprob).collect();
                rec.prediction = json!({"loglik": ll});
                rec.correct = 0.0;
                rec.metrics.insert("loglik".into(), ll);
                rec.metrics.insert("words".into(), words);
                rec.metrics.insert("bytes".into(), bytes);
                rec.metrics.insert(
                    "word_perplexity".into(),
                    metrics::weighted_perplexity(ll, words),
                );
                rec.metrics.insert(
                    "byte_perplexity".into(),
                    metrics::weighted_perplexity(ll, bytes),
                );
                rec.metrics
                    .insert("bits_per_byte".into(), metrics::bits_per_byte(ll, bytes));
                if let Some(o) = ext.as_object_mut() {
                    o.insert("window_logliks".into(), json!(rec.logliks));
                }
                rec.details = ext;
            }
            _ => unreachable!("checked above"),
        }
        out.push(rec);
    }
    Ok(out)
}

/// Token budget of a `lambada_gen` continuation: enough for any single word of the data
/// (the longest last word takes 6 tokens with the SmolLM2 and Gemma tokenizers); the first
/// word of the text is scored.
pub const LAMBADA_GEN_MAX_TOKS: usize = 8;

/// lm-eval's generation budget for the MATH and code tasks: `humaneval.yaml` sets
/// `max_gen_toks: 1024`; `hendrycks_math` (MATH-500 included) and `mbpp.yaml` set none, so the
/// harness's default of 256 (`lm_eval.api.model.TemplateLM`'s `max_gen_toks`) applies.
pub fn default_max_gen_toks(task: &str) -> usize {
    match task {
        "humaneval" => 1024,
        _ => 256,
    }
}

/// What a generation item asks of a model: its prompt, stop strings and token budget (the
/// task definitions of lm-eval: GSM8K `until` and `max_gen_toks` 256; MATH stops at the next
/// `Problem:`; `lambada_gen` stops at a newline after [`LAMBADA_GEN_MAX_TOKS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSpec<'a> {
    /// The prompt.
    pub prompt: &'a str,
    /// Stop strings (the text is cut before the first).
    pub until: Vec<String>,
    /// Token budget.
    pub max_new_tokens: usize,
}

impl Item {
    /// The generation this item asks for (`max_gen_toks`: the budget of MATH and code items,
    /// `None` for the task's lm-eval budget, [`default_max_gen_toks`]); `None` for a scoring
    /// item.
    pub fn generation_spec(&self, max_gen_toks: Option<usize>) -> Option<GenerationSpec<'_>> {
        let max_gen_toks = max_gen_toks.unwrap_or_else(|| default_max_gen_toks(&self.task));
        let (prompt, until, max_new_tokens) = match &self.kind {
            ItemKind::Gsm8k { prompt, .. } => (
                prompt,
                GSM8K_UNTIL.map(String::from).to_vec(),
                GSM8K_MAX_GEN_TOKS,
            ),
            ItemKind::Math { prompt, .. } => (
                prompt,
                vec!["Problem:".into(), "<|im_end|>".into()],
                max_gen_toks,
            ),
            ItemKind::LastWord { prompt, .. } => (prompt, vec!["\n".into()], LAMBADA_GEN_MAX_TOKS),
            ItemKind::Code { prompt, until, .. } => (prompt, until.clone(), max_gen_toks),
            _ => return None,
        };
        Some(GenerationSpec {
            prompt,
            until,
            max_new_tokens,
        })
    }
}

/// A generated text, scored.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationScore {
    /// The item's primary metric (1 = correct).
    pub correct: f64,
    /// What was extracted from the text (JSON, as in the sample records).
    pub prediction: serde_json::Value,
    /// The reference.
    pub gold: serde_json::Value,
    /// Named metrics (`exact_match_strict`, `exact_match`, `pass@1`, ...).
    pub metrics: Vec<(String, f64)>,
}

/// Scores `text` — a completion cut at the item's stop strings — for a generation or code
/// item: GSM8K strict-match (primary) and flexible-extract exact match; MATH boxed-answer
/// equivalence; `lambada_gen` first-word exact match; code execution against the tests.
///
/// # Errors
/// A scoring item; code execution failures.
pub fn score_generation(it: &Item, text: &str, exec_cfg: &ExecConfig) -> Result<GenerationScore> {
    let flag = |ok: bool| f64::from(u8::from(ok));
    Ok(match &it.kind {
        ItemKind::Gsm8k { reference, .. } => {
            let strict = extract::gsm8k_strict(text);
            let flex = extract::gsm8k_flexible(text);
            let ems = extract::gsm8k_exact_match(&strict, reference);
            let emf = extract::gsm8k_exact_match(&flex, reference);
            GenerationScore {
                correct: flag(ems),
                prediction: json!({"generation": text, "strict_match": strict, "flexible_extract": flex}),
                gold: json!(reference),
                metrics: vec![
                    ("exact_match_strict".into(), flag(ems)),
                    ("exact_match_flexible".into(), flag(emf)),
                ],
            }
        }
        ItemKind::LastWord { word, .. } => {
            let pred = extract::first_word(text);
            let ok = pred == extract::first_word(word);
            GenerationScore {
                correct: flag(ok),
                prediction: json!({"generation": text, "first_word": pred}),
                gold: json!(word),
                metrics: vec![("exact_match".into(), flag(ok))],
            }
        }
        ItemKind::Math { answer, .. } => {
            let pred = extract::math_extract_answer(text);
            let ok = pred
                .as_deref()
                .is_some_and(|p| extract::math_is_equiv(p, answer));
            GenerationScore {
                correct: flag(ok),
                prediction: json!({"generation": text, "answer": pred}),
                gold: json!(answer),
                metrics: vec![("exact_match".into(), flag(ok))],
            }
        }
        ItemKind::Code {
            program_head,
            program_tail,
            ..
        } => {
            let program = format!("{program_head}{text}{program_tail}");
            let outcome = exec::run_python(&program, exec_cfg)?;
            let ok = outcome.passed();
            GenerationScore {
                correct: flag(ok),
                prediction: json!({"completion": text, "exec": outcome}),
                gold: serde_json::Value::Null,
                metrics: vec![("pass@1".into(), flag(ok))],
            }
        }
        _ => return Err(HarnessError::invalid(it.id(), "not a generation item")),
    })
}

/// Generates for one generation or code item and scores it.
pub fn evaluate_generation_item<M: LanguageModel>(
    scorer: &mut Scorer<'_, M>,
    it: &Item,
    max_gen_toks: Option<usize>,
    exec_cfg: &ExecConfig,
) -> Result<SampleRecord> {
    let model = scorer.model();
    let t0 = Instant::now();
    let fed0 = scorer.tokens_fed();
    let mut rec = base_record(model, it);
    let spec = it
        .generation_spec(max_gen_toks)
        .ok_or_else(|| HarnessError::invalid(it.id(), "not a generation item"))?;
    let ids = model.encode_prompt(spec.prompt)?;
    let g = generation::greedy_until(scorer, &ids, &spec.until, spec.max_new_tokens)?;
    rec.inputs = json!({"prompt_n_tokens": ids.len(), "prompt_tail": tail_chars(spec.prompt, 400)});
    rec.details = json!({
        "generated_token_ids": g.tokens,
        "raw_decoded": g.raw_decoded,
        "stop_reason": g.stop,
        "step_top2_logit_margin": g.top2_margins,
    });
    let score = score_generation(it, &g.text, exec_cfg)?;
    rec.prediction = score.prediction;
    if !score.gold.is_null() {
        rec.gold = score.gold;
    }
    rec.metrics.extend(score.metrics);
    rec.correct = score.correct;
    rec.tokens = scorer.tokens_fed() - fed0;
    rec.time_s = t0.elapsed().as_secs_f64();
    Ok(rec)
}

fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// Evaluates `items` (already selected) in order, calling `sink` with each record as soon as
/// it is scored. Log-likelihood items go to the scorer `batch_size` items at a time.
pub fn evaluate<M: LanguageModel>(
    scorer: &mut Scorer<'_, M>,
    items: &[Item],
    cfg: &RunConfig,
    progress: &mut Progress,
    sink: &mut dyn FnMut(SampleRecord) -> Result<()>,
) -> Result<()> {
    let chunk = cfg.batch_size.max(1);
    let mut pending: Vec<Item> = Vec::new();
    // The last shared prefix's ids (MMLU's and GSM8K's few-shot blocks repeat item after item).
    let mut block: (Option<std::sync::Arc<str>>, Vec<u32>) = (None, Vec::new());
    let mut begin = |scorer: &mut Scorer<'_, M>, it: &Item| -> Result<()> {
        if block.0 != it.shared_prefix {
            let ids = match &it.shared_prefix {
                Some(p) => scorer.model().encode_prompt(p)?,
                None => Vec::new(),
            };
            block = (it.shared_prefix.clone(), ids);
        }
        scorer.begin_item(&block.1)
    };
    for (k, it) in items.iter().enumerate() {
        let is_ll = matches!(
            it.kind,
            ItemKind::MultipleChoice(_) | ItemKind::Target(_) | ItemKind::Rolling { .. }
        );
        if is_ll {
            pending.push(it.clone());
        }
        let last = k + 1 == items.len();
        if !pending.is_empty() && (!is_ll || pending.len() >= chunk || last) {
            if let [one] = &pending[..] {
                begin(scorer, one)?;
            }
            for rec in evaluate_loglik_items(scorer, &pending)? {
                sink(rec)?;
            }
            progress.advance(pending.len());
            pending.clear();
        }
        if !is_ll {
            begin(scorer, it)?;
            sink(evaluate_generation_item(
                scorer,
                it,
                cfg.max_gen_toks,
                &cfg.exec,
            )?)?;
            progress.advance(1);
        }
    }
    Ok(())
}

/// Runs every task of `cfg` and writes `samples_<task>.jsonl`, `results.json`, `results.md`
/// under `cfg.output`. Items whose id is already in a task's JSONL are not scored again.
pub fn run<M: LanguageModel>(model: &M, cfg: &RunConfig) -> Result<Vec<TaskSummary>> {
    let dir = super::data::data_dir()?;
    std::fs::create_dir_all(&cfg.output).map_err(|e| HarnessError::io(&cfg.output, e))?;
    let t_all = Instant::now();
    let mut scorer = Scorer::new(
        model,
        ScoringMode::from_batch_size(cfg.batch_size),
        cfg.max_length,
    );
    let mut summaries = Vec::new();
    let mut n_shot = BTreeMap::new();
    for task in &cfg.tasks {
        let name = task.name();
        n_shot.insert(name.clone(), task.num_fewshot());
        let items = select(task.load(&dir)?, cfg.offset, cfg.limit);
        let items = match cfg.shard {
            Some(sh) => sh.select(items),
            None => items,
        };
        let path = cfg.output.join(format!("samples_{name}.jsonl"));
        let existing = record::read_records(&path)?;
        let done: HashSet<String> = existing.iter().map(|r| r.id.clone()).collect();
        let todo: Vec<Item> = items
            .iter()
            .filter(|it| !done.contains(&it.id()))
            .cloned()
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| HarnessError::io(&path, e))?;
        let mut progress = Progress::new(&name, todo.len(), cfg.progress);
        let t0 = Instant::now();
        let mut fresh = Vec::new();
        {
            let mut sink = |rec: SampleRecord| -> Result<()> {
                record::append_record(&mut file, &path, &rec)?;
                fresh.push(rec);
                Ok(())
            };
            evaluate(&mut scorer, &todo, cfg, &mut progress, &mut sink)?;
        }
        progress.finish();
        let wall = t0.elapsed().as_secs_f64();
        let wanted: HashSet<String> = items.iter().map(Item::id).collect();
        let all: Vec<SampleRecord> = existing
            .into_iter()
            .chain(fresh)
            .filter(|r| wanted.contains(&r.id))
            .collect();
        let rate = if wall > 0.0 {
            todo.len() as f64 / wall
        } else {
            0.0
        };
        summaries.extend(summarise_task(&name, all, rate, wall).1);
    }
    let config = json!({
        "model": model.name(),
        "limit": cfg.limit,
        "offset": cfg.offset,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "max_length": cfg.max_length,
        "tasks": cfg.tasks.iter().map(Task::name).collect::<Vec<_>>(),
        "shard": cfg.shard,
    });
    let results = record::results_json(
        model.name(),
        &summaries,
        &n_shot,
        config,
        t_all.elapsed().as_secs_f64(),
    );
    write_results(&cfg.output, &results, &summaries)?;
    Ok(summaries)
}

/// Sorts one task's records into source order and summarises them: one line per subtask
/// (MMLU subjects) when there are several, then the task's line.
fn summarise_task(
    name: &str,
    mut all: Vec<SampleRecord>,
    rate: f64,
    wall: f64,
) -> (Vec<SampleRecord>, Vec<TaskSummary>) {
    all.sort_by(|a, b| (a.task.as_str(), a.idx).cmp(&(b.task.as_str(), b.idx)));
    let mut tasks_in: Vec<String> = all.iter().map(|r| r.task.clone()).collect();
    tasks_in.dedup();
    let mut summaries = Vec::new();
    if tasks_in.len() > 1 {
        for t in &tasks_in {
            let recs: Vec<SampleRecord> = all.iter().filter(|r| &r.task == t).cloned().collect();
            summaries.push(TaskSummary {
                task: t.clone(),
                n: recs.len(),
                metrics: record::aggregate(&recs),
                items_per_s: 0.0,
                wall_s: 0.0,
            });
        }
    }
    summaries.push(TaskSummary {
        task: name.to_string(),
        n: all.len(),
        metrics: record::aggregate(&all),
        items_per_s: rate,
        wall_s: wall,
    });
    (all, summaries)
}

fn write_results(dir: &Path, results: &serde_json::Value, summaries: &[TaskSummary]) -> Result<()> {
    let rp = dir.join("results.json");
    std::fs::write(
        &rp,
        serde_json::to_string_pretty(results).unwrap_or_default(),
    )
    .map_err(|e| HarnessError::io(&rp, e))?;
    let mp = dir.join("results.md");
    std::fs::write(&mp, record::markdown_table(summaries)).map_err(|e| HarnessError::io(&mp, e))
}

/// Combines the output folders of a sharded run (`--shard i/N` for every `i`, each a folder
/// [`run`] wrote) into `out`: each task's `samples_<task>.jsonl` in source order, and
/// `results.json` / `results.md` aggregated from them exactly as a single run aggregates —
/// the metrics equal the single run's.
///
/// # Errors
/// A folder without `results.json`; shards of different runs (model, tasks, limit, offset,
/// shard count) or a missing or repeated shard; an item scored in two shards; I/O errors. Each
/// names the folder or item.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Vec<TaskSummary>> {
    let first = shards
        .first()
        .ok_or_else(|| HarnessError::invalid("merge", "no shard folders given"))?;
    let read_json = |dir: &Path| -> Result<serde_json::Value> {
        let p = dir.join("results.json");
        let text = std::fs::read_to_string(&p).map_err(|e| HarnessError::io(&p, e))?;
        serde_json::from_str(&text)
            .map_err(|e| HarnessError::invalid(p.display().to_string(), format!("not JSON: {e}")))
    };
    let head = read_json(first)?;
    let same = |v: &serde_json::Value, key: &str| v["config"][key] == head["config"][key];
    let mut seen = BTreeSet::new();
    let mut count = None;
    for dir in shards {
        let v = read_json(dir)?;
        let here = dir.display().to_string();
        for key in [
            "model",
            "tasks",
            "limit",
            "offset",
            "max_length",
            "batch_size",
            "seed",
        ] {
            if !same(&v, key) {
                return Err(HarnessError::invalid(
                    here,
                    format!(
                        "`{key}` is {} here but {} in {}: shards of different runs",
                        v["config"][key],
                        head["config"][key],
                        first.display()
                    ),
                ));
            }
        }
        let shard: Option<Shard> = serde_json::from_value(v["config"]["shard"].clone())
            .ok()
            .flatten();
        let shard = shard.unwrap_or_else(Shard::whole);
        if *count.get_or_insert(shard.count) != shard.count || !seen.insert(shard.index) {
            return Err(HarnessError::invalid(
                here,
                format!("shard {shard} repeats or belongs to another split"),
            ));
        }
    }
    let n = count.unwrap_or(1);
    if seen.len() != n {
        let missing: Vec<String> = (0..n)
            .filter(|i| !seen.contains(i))
            .map(|i| format!("{i}/{n}"))
            .collect();
        return Err(HarnessError::invalid(
            "merge",
            format!("missing shard(s) {}", missing.join(", ")),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| HarnessError::io(out, e))?;
    let names: Vec<String> = head["config"]["tasks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut summaries = Vec::new();
    let mut wall = 0.0;
    for name in &names {
        let mut all = Vec::new();
        let mut ids = HashSet::new();
        for dir in shards {
            for r in record::read_records(&dir.join(format!("samples_{name}.jsonl")))? {
                if !ids.insert(r.id.clone()) {
                    return Err(HarnessError::invalid(
                        r.id.clone(),
                        format!("scored in two shards (again in {})", dir.display()),
                    ));
                }
                wall += r.time_s;
                all.push(r);
            }
        }
        let (all, s) = summarise_task(name, all, 0.0, 0.0);
        let path = out.join(format!("samples_{name}.jsonl"));
        let mut file = std::fs::File::create(&path).map_err(|e| HarnessError::io(&path, e))?;
        for r in &all {
            record::append_record(&mut file, &path, r)?;
        }
        summaries.extend(s);
    }
    let mut config = head["config"].clone();
    config["shard"] = serde_json::Value::Null;
    config["merged_from"] = json!(
        shards
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
    );
    let n_shot: BTreeMap<String, usize> =
        serde_json::from_value(head["n-shot"].clone()).unwrap_or_default();
    let model = head["model_name"].as_str().unwrap_or_default().to_string();
    let results = record::results_json(&model, &summaries, &n_shot, config, wall);
    write_results(out, &results, &summaries)?;
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(task: &str) -> Item {
        Item::new(
            task,
            0,
            ItemKind::Code {
                prompt: "def f():".into(),
                program_head: String::new(),
                program_tail: String::new(),
                until: vec!["\nclass".into()],
            },
        )
    }

    #[test]
    fn a_chunks_tokens_are_shared_out_whole() {
        assert_eq!(share_evenly(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(share_evenly(8, 4), vec![2; 4]);
        assert_eq!(share_evenly(3, 5), vec![1, 1, 1, 0, 0]);
        assert!(share_evenly(7, 0).is_empty());
        for (t, n) in [(1001, 7), (5, 1), (0, 3)] {
            assert_eq!(share_evenly(t, n).iter().sum::<usize>(), t);
        }
    }

    #[test]
    fn generation_budgets_default_to_lm_evals_per_task() {
        let math = Item::new(
            "math500",
            0,
            ItemKind::Math {
                prompt: "Problem:\n1+1\n\nSolution:".into(),
                answer: "2".into(),
            },
        );
        let budget = |it: &Item, b| it.generation_spec(b).unwrap().max_new_tokens;
        assert_eq!(budget(&math, None), 256);
        assert_eq!(budget(&code("mbpp"), None), 256);
        assert_eq!(budget(&code("humaneval"), None), 1024);
        assert_eq!(budget(&code("humaneval"), Some(100)), 100);
        assert_eq!(budget(&math, Some(512)), 512);
        assert_eq!(RunConfig::default().max_gen_toks, None);
    }
}
