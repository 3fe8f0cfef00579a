//! The runner: selects items (offset/limit), skips those already in the output (resume),
//! scores the rest through the [`LanguageModel`] trait, and writes per-sample JSONL, a summary
//! JSON and a markdown table.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
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
    /// Generation budget of MATH and code tasks.
    pub max_gen_toks: usize,
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
            max_gen_toks: 512,
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
    let tokens = (scorer.tokens_fed() - fed0) / items.len().max(1);
    let mut out = Vec::with_capacity(items.len());
    for ((it, span), mut ext) in items.iter().zip(spans).zip(extra) {
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
    /// The generation this item asks for (`max_gen_toks`: the budget of MATH and code items);
    /// `None` for a scoring item.
    pub fn generation_spec(&self, max_gen_toks: usize) -> Option<GenerationSpec<'_>> {
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
            let pred = extract::math_boxed_answer(text);
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
    max_gen_toks: usize,
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
            for rec in evaluate_loglik_items(scorer, &pending)? {
                sink(rec)?;
            }
            progress.advance(pending.len());
            pending.clear();
        }
        if !is_ll {
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
        let mut all: Vec<SampleRecord> = existing
            .into_iter()
            .chain(fresh)
            .filter(|r| wanted.contains(&r.id))
            .collect();
        all.sort_by(|a, b| (a.task.as_str(), a.idx).cmp(&(b.task.as_str(), b.idx)));
        let mut tasks_in: Vec<String> = all.iter().map(|r| r.task.clone()).collect();
        tasks_in.dedup();
        let rate = if wall > 0.0 {
            todo.len() as f64 / wall
        } else {
            0.0
        };
        if tasks_in.len() > 1 {
            for t in &tasks_in {
                let recs: Vec<SampleRecord> =
                    all.iter().filter(|r| &r.task == t).cloned().collect();
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
            task: name.clone(),
            n: all.len(),
            metrics: record::aggregate(&all),
            items_per_s: rate,
            wall_s: wall,
        });
    }
    let config = json!({
        "model": model.name(),
        "limit": cfg.limit,
        "offset": cfg.offset,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "max_length": cfg.max_length,
        "tasks": cfg.tasks.iter().map(Task::name).collect::<Vec<_>>(),
    });
    let results = record::results_json(
        model.name(),
        &summaries,
        &n_shot,
        config,
        t_all.elapsed().as_secs_f64(),
    );
    let rp = cfg.output.join("results.json");
    std::fs::write(
        &rp,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .map_err(|e| HarnessError::io(&rp, e))?;
    let mp = cfg.output.join("results.md");
    std::fs::write(&mp, record::markdown_table(&summaries))
        .map_err(|e| HarnessError::io(&mp, e))?;
    Ok(summaries)
}
