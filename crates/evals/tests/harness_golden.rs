//! Item-by-item agreement of the harness with `shared/golden/harness/` (lm-evaluation-harness
//! semantics run by PyTorch on SmolLM2-135M-Instruct): identical token ids and predictions,
//! log-likelihoods within 2e-2 (the README's tolerance), aggregates equal.
//!
//! By default a prefix of each file is scored (50 items per task, 25 per MMLU subject, the GSM8K
//! items with short generations, WikiText documents 0, 2 and 9 — a single window and a
//! right-aligned last window) to keep the test time modest on a 2-core CPU (~200 tokens/s);
//! `HARNESS_GOLDEN_FULL=1` scores every golden item and also checks the files' aggregates.
//! Extraction and exact match are checked on all 20 GSM8K golden generations either way.
//!
//! Skips with a note when the model or the shared folders are absent, panics when `CI` is set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use evals::harness::{
    Item, ItemKind, SampleRecord, Scorer, ScoringMode, Task, extract, generation,
    runner::{evaluate_generation_item, evaluate_loglik_items, select},
};
use lm::{CausalLm, LanguageModel};
use serde_json::Value;

/// The README's per-loglik tolerance.
const TOL: f64 = 2e-2;

fn skip_or_panic<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {what}");
    }
    eprintln!("skipping: {what}");
    None
}

fn full() -> bool {
    std::env::var_os("HARNESS_GOLDEN_FULL").is_some_and(|v| v != "0")
}

/// Items checked per file: all with `HARNESS_GOLDEN_FULL=1`, else the first `quick`.
fn n_items(total: usize, quick: usize) -> usize {
    if full() { total } else { total.min(quick) }
}

/// Mean of a 0/1 field over golden items.
fn gmean(items: &[Value], key: &str) -> f64 {
    items.iter().map(|i| i[key].as_f64().unwrap()).sum::<f64>() / items.len() as f64
}

struct Env {
    model: CausalLm,
    data: PathBuf,
    golden: PathBuf,
}

fn env() -> Option<Env> {
    let path = match lm::locate::smollm2_gguf() {
        Ok(p) => p,
        Err(e) => return skip_or_panic(&e.to_string()),
    };
    let Some(data) = datasets::shared_data_dir() else {
        return skip_or_panic("no shared/data folder beside the workspace");
    };
    let golden = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .ancestors()
    .map(|a| a.join("shared/golden/harness"))
    .find(|p| p.is_dir());
    let Some(golden) = golden else {
        return skip_or_panic("no shared/golden/harness folder beside the workspace");
    };
    let model = CausalLm::from_gguf(&path, &Device::flex()).expect("loading SmolLM2");
    Some(Env {
        model,
        data,
        golden,
    })
}

fn golden(env: &Env, name: &str) -> Value {
    let p = env.golden.join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ours_ids(rec: &SampleRecord, key: &str) -> Vec<Vec<u32>> {
    rec.details["token_ids"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(u32s)
        .collect()
}

fn score_all(env: &Env, items: &[Item]) -> (Vec<SampleRecord>, f64) {
    let mut scorer = Scorer::new(&env.model, ScoringMode::PrefixCache, 2048);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for it in items {
        out.extend(evaluate_loglik_items(&mut scorer, std::slice::from_ref(it)).unwrap());
    }
    (out, t0.elapsed().as_secs_f64())
}

/// Compares a multiple-choice task; returns (max |Δloglik|, prediction mismatches).
fn check_mc(env: &Env, task: Task, file: &str, has_norm: bool) {
    let g = golden(env, file);
    let gitems = g["items"].as_array().unwrap();
    let gitems = &gitems[..n_items(gitems.len(), 50)];
    let items = select(task.load(&env.data).unwrap(), 0, Some(gitems.len()));
    let (recs, secs) = score_all(env, &items);
    let mut max_diff = 0f64;
    let mut mismatches = Vec::new();
    let (mut acc, mut acc_norm) = (0.0, 0.0);
    for (rec, gi) in recs.iter().zip(gitems) {
        assert_eq!(rec.idx as u64, gi["idx"].as_u64().unwrap());
        let ctx = ours_ids(rec, "ctx_token_ids");
        let cont = ours_ids(rec, "cont_token_ids");
        if let Some(gctx) = gi.get("ctx_token_ids") {
            if gctx.as_array().unwrap()[0].is_array() {
                let gctx: Vec<Vec<u32>> = gctx.as_array().unwrap().iter().map(u32s).collect();
                assert_eq!(ctx, gctx, "{file} item {}: ctx ids", rec.idx);
            } else {
                assert!(
                    ctx.iter().all(|c| *c == u32s(gctx)),
                    "{file} item {}: ctx ids",
                    rec.idx
                );
            }
        }
        let gcont: Vec<Vec<u32>> = gi["cont_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(u32s)
            .collect();
        assert_eq!(cont, gcont, "{file} item {}: continuation ids", rec.idx);
        let gll = f64s(&gi["loglik"]);
        for (a, b) in rec.logliks.iter().zip(&gll) {
            max_diff = max_diff.max((a - b).abs());
        }
        let gg: Vec<bool> = gi["is_greedy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_bool().unwrap())
            .collect();
        assert_eq!(rec.is_greedy, gg, "{file} item {}: is_greedy", rec.idx);
        let pred = rec.prediction["pred_acc"].as_u64().unwrap();
        if pred != gi["pred_acc"].as_u64().unwrap() {
            let m = gi["margin_acc"].as_f64().unwrap();
            assert!(
                m < TOL,
                "{file} item {}: pred_acc differs with margin {m}",
                rec.idx
            );
            mismatches.push(format!("{}:acc(margin {m:.1e})", rec.idx));
        }
        if has_norm {
            let pn = rec.prediction["pred_acc_norm"].as_u64().unwrap();
            if pn != gi["pred_acc_norm"].as_u64().unwrap() {
                let m = gi["margin_acc_norm"].as_f64().unwrap();
                let minlen = f64s(&gi["char_len"]).into_iter().fold(f64::MAX, f64::min);
                assert!(
                    m < TOL / minlen,
                    "{file} item {}: pred_acc_norm differs, margin {m}",
                    rec.idx
                );
                mismatches.push(format!("{}:acc_norm(margin {m:.1e})", rec.idx));
            }
            acc_norm += rec.metrics["acc_norm"];
        }
        acc += rec.metrics["acc"];
    }
    let n = recs.len() as f64;
    let agg = &g["aggregate"];
    let (gacc, gnorm) = (
        gmean(gitems, "acc"),
        if has_norm {
            gmean(gitems, "acc_norm")
        } else {
            0.0
        },
    );
    eprintln!(
        "{file}: {} items in {secs:.1}s ({:.2} it/s); max |dloglik| {max_diff:.2e}; prediction mismatches {:?}; acc {:.4} (golden {gacc:.4}; file {}), acc_norm {} (golden {gnorm:.4}; file {})",
        recs.len(),
        n / secs,
        mismatches,
        acc / n,
        agg["acc"],
        if has_norm {
            format!("{:.4}", acc_norm / n)
        } else {
            "-".into()
        },
        agg.get("acc_norm").cloned().unwrap_or(Value::Null),
    );
    assert!(max_diff < TOL, "{file}: max loglik diff {max_diff}");
    if mismatches.is_empty() {
        assert!((acc / n - gacc).abs() < 1e-9, "{file}: acc");
        if has_norm {
            assert!((acc_norm / n - gnorm).abs() < 1e-9, "{file}: acc_norm");
        }
        if full() {
            assert!(
                (acc / n - agg["acc"].as_f64().unwrap()).abs() < 1e-9,
                "{file}: file acc"
            );
            if has_norm {
                assert!((acc_norm / n - agg["acc_norm"].as_f64().unwrap()).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn hellaswag_matches_golden() {
    if let Some(e) = env() {
        check_mc(&e, Task::Hellaswag, "hellaswag.json", true);
    }
}

#[test]
fn arc_easy_matches_golden() {
    if let Some(e) = env() {
        check_mc(&e, Task::ArcEasy, "arc_easy.json", true);
    }
}

#[test]
fn arc_challenge_matches_golden() {
    if let Some(e) = env() {
        check_mc(&e, Task::ArcChallenge, "arc_challenge.json", true);
    }
}

#[test]
fn piqa_matches_golden() {
    if let Some(e) = env() {
        check_mc(&e, Task::Piqa, "piqa.json", true);
    }
}

#[test]
fn winogrande_matches_golden() {
    if let Some(e) = env() {
        check_mc(&e, Task::Winogrande, "winogrande.json", false);
    }
}

#[test]
fn lambada_matches_golden() {
    let Some(e) = env() else { return };
    let g = golden(&e, "lambada_openai.json");
    let gitems = g["items"].as_array().unwrap();
    let gitems = &gitems[..n_items(gitems.len(), 50)];
    let items = select(
        Task::LambadaOpenai.load(&e.data).unwrap(),
        0,
        Some(gitems.len()),
    );
    let (recs, secs) = score_all(&e, &items);
    let mut max_diff = 0f64;
    let mut logliks = Vec::new();
    let mut greedy = 0.0;
    for (rec, gi) in recs.iter().zip(gitems) {
        assert_eq!(
            ours_ids(rec, "ctx_token_ids")[0],
            u32s(&gi["ctx_token_ids"]),
            "item {}",
            rec.idx
        );
        assert_eq!(
            ours_ids(rec, "cont_token_ids")[0],
            u32s(&gi["cont_token_ids"]),
            "item {}",
            rec.idx
        );
        max_diff = max_diff.max((rec.logliks[0] - gi["loglik"].as_f64().unwrap()).abs());
        assert_eq!(
            rec.is_greedy[0],
            gi["is_greedy"].as_bool().unwrap(),
            "item {}",
            rec.idx
        );
        logliks.push(rec.logliks[0]);
        greedy += rec.metrics["acc"];
    }
    let n = recs.len() as f64;
    let ppl = evals::harness::metrics::perplexity(&logliks);
    let glls: Vec<f64> = gitems
        .iter()
        .map(|i| i["loglik"].as_f64().unwrap())
        .collect();
    let gppl = evals::harness::metrics::perplexity(&glls);
    let gacc = gitems
        .iter()
        .filter(|i| i["is_greedy"].as_bool().unwrap())
        .count() as f64
        / n;
    eprintln!(
        "lambada_openai: {} items in {secs:.1}s ({:.2} it/s); max |dloglik| {max_diff:.2e}; acc {:.4} (golden {gacc:.4}; file {}), perplexity {ppl:.4} (golden {gppl:.4}; file {})",
        recs.len(),
        n / secs,
        greedy / n,
        g["aggregate"]["acc"],
        g["aggregate"]["perplexity"]
    );
    assert!(max_diff < TOL);
    assert!((greedy / n - gacc).abs() < 1e-9);
    assert!((ppl / gppl - 1.0).abs() < 1e-3);
    if full() {
        assert!((greedy / n - g["aggregate"]["acc"].as_f64().unwrap()).abs() < 1e-9);
        assert!((ppl / g["aggregate"]["perplexity"].as_f64().unwrap() - 1.0).abs() < 1e-3);
    }
}

#[test]
fn mmlu_matches_golden() {
    let Some(e) = env() else { return };
    let g = golden(&e, "mmlu.json");
    let gitems = g["items"].as_array().unwrap();
    let mut max_diff = 0f64;
    let mut correct = BTreeMap::<String, (f64, f64)>::new();
    let mut mismatches = Vec::new();
    let mut gcorrect = 0.0;
    let t0 = Instant::now();
    for subject in ["abstract_algebra", "college_computer_science"] {
        let gs: Vec<&Value> = gitems.iter().filter(|i| i["subject"] == subject).collect();
        let gs = &gs[..n_items(gs.len(), 25)];
        let shared = u32s(&g["fewshot_prefix"][subject]["shared_prefix_token_ids"]);
        let all = Task::Mmlu(Some(subject.into())).load(&e.data).unwrap();
        assert_eq!(all.len(), 100);
        let items = select(all, 0, Some(gs.len()));
        let (recs, _) = score_all(&e, &items);
        for (rec, gi) in recs.iter().zip(gs.iter().copied()) {
            let mut want = shared.clone();
            want.extend(u32s(&gi["question_token_ids"]));
            for ctx in ours_ids(rec, "ctx_token_ids") {
                assert_eq!(ctx, want, "{subject} item {}: ctx ids", rec.idx);
            }
            let gcont: Vec<Vec<u32>> = gi["cont_token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(u32s)
                .collect();
            assert_eq!(ours_ids(rec, "cont_token_ids"), gcont);
            for (a, b) in rec.logliks.iter().zip(f64s(&gi["loglik"])) {
                max_diff = max_diff.max((a - b).abs());
            }
            if rec.prediction["pred_acc"] != gi["pred_acc"] {
                let m = gi["margin_acc"].as_f64().unwrap();
                assert!(
                    m < TOL,
                    "{subject} item {}: pred differs with margin {m}",
                    rec.idx
                );
                mismatches.push(format!("{subject}/{}", rec.idx));
            }
            let c = correct.entry(subject.into()).or_default();
            c.0 += rec.metrics["acc"];
            c.1 += 1.0;
            gcorrect += gi["acc"].as_f64().unwrap();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (num, den) = correct
        .values()
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    eprintln!(
        "mmlu: {den} items in {secs:.1}s ({:.2} it/s); max |dloglik| {max_diff:.2e}; mismatches {mismatches:?}; acc {:.4} (golden {:.4}; file {}); per subject {:?}",
        den / secs,
        num / den,
        gcorrect / den,
        g["aggregate"]["acc"],
        correct
            .iter()
            .map(|(k, v)| (k.clone(), v.0 / v.1))
            .collect::<Vec<_>>()
    );
    assert!(max_diff < TOL);
    if mismatches.is_empty() {
        assert!((num / den - gcorrect / den).abs() < 1e-9);
        if full() {
            assert!((num / den - g["aggregate"]["acc"].as_f64().unwrap()).abs() < 1e-9);
        }
    }
}

#[test]
fn wikitext2_matches_golden() {
    let Some(e) = env() else { return };
    let g = golden(&e, "wikitext2.json");
    let gitems = g["items"].as_array().unwrap();
    let docs: Vec<usize> = if full() {
        (0..gitems.len()).collect()
    } else {
        vec![0, 2, 9]
    };
    let all = Task::Wikitext2.load(&e.data).unwrap();
    assert_eq!(all.len(), 62, "documents in wiki.test.raw");
    let items: Vec<Item> = docs.iter().map(|&d| all[d].clone()).collect();
    let (recs, secs) = score_all(&e, &items);
    let (mut ll, mut words, mut bytes) = (0.0, 0.0, 0.0);
    let (mut gll, mut gwords, mut gbytes) = (0.0, 0.0, 0.0);
    let mut worst_window = 0f64;
    for (rec, &d) in recs.iter().zip(&docs) {
        let gi = &gitems[d];
        if let ItemKind::Rolling { title, .. } =
            &items[recs.iter().position(|r| r.idx == rec.idx).unwrap()].kind
        {
            assert_eq!(title, gi["title"].as_str().unwrap());
        }
        assert_eq!(rec.details["n_tokens"], gi["n_tokens"], "doc {d}");
        assert_eq!(rec.details["detok_n_chars"], gi["detok_n_chars"], "doc {d}");
        assert_eq!(
            u32s(&rec.details["first_token_ids"]),
            u32s(&gi["first_token_ids"])
        );
        assert_eq!(
            u32s(&rec.details["last_token_ids"]),
            u32s(&gi["last_token_ids"])
        );
        assert_eq!(
            rec.metrics["words"],
            gi["words"].as_f64().unwrap(),
            "doc {d} words"
        );
        assert_eq!(
            rec.metrics["bytes"],
            gi["bytes"].as_f64().unwrap(),
            "doc {d} bytes"
        );
        let gw = gi["windows"].as_array().unwrap();
        let ow = rec.details["windows"].as_array().unwrap();
        assert_eq!(ow.len(), gw.len(), "doc {d} windows");
        for ((o, gwin), l) in ow.iter().zip(gw).zip(&rec.logliks) {
            assert_eq!(o["n_pred"], gwin["n_pred"]);
            assert_eq!(o["n_context"], gwin["n_context"]);
            let gl = gwin["loglik"].as_f64().unwrap();
            worst_window = worst_window.max(((l - gl) / gl).abs());
        }
        ll += rec.metrics["loglik"];
        words += rec.metrics["words"];
        bytes += rec.metrics["bytes"];
        gll += gi["loglik"].as_f64().unwrap();
        gwords += gi["words"].as_f64().unwrap();
        gbytes += gi["bytes"].as_f64().unwrap();
    }
    use evals::harness::metrics::{bits_per_byte, weighted_perplexity};
    let ours = [
        weighted_perplexity(ll, words),
        weighted_perplexity(ll, bytes),
        bits_per_byte(ll, bytes),
    ];
    let gold = [
        weighted_perplexity(gll, gwords),
        weighted_perplexity(gll, gbytes),
        bits_per_byte(gll, gbytes),
    ];
    eprintln!(
        "wikitext2 docs {docs:?}: {secs:.1}s; worst window rel diff {worst_window:.2e}; word_ppl/byte_ppl/bpb ours {ours:?} golden {gold:?}"
    );
    assert!(worst_window < 1e-4);
    for (a, b) in ours.iter().zip(&gold) {
        assert!((a / b - 1.0).abs() < 1e-3);
    }
    if full() {
        let agg = &g["aggregate"];
        for (a, k) in ours
            .iter()
            .zip(["word_perplexity", "byte_perplexity", "bits_per_byte"])
        {
            let b = agg[k].as_f64().unwrap();
            eprintln!("wikitext2 {k}: ours {a:.5} golden {b:.5}");
            assert!((a / b - 1.0).abs() < 1e-3);
        }
    }
}

#[test]
fn gsm8k_matches_golden() {
    let Some(e) = env() else { return };
    let g = golden(&e, "gsm8k.json");
    let gitems = g["items"].as_array().unwrap();
    // Extraction and exact match on every golden generation (and the reference positive control).
    let (mut ems, mut emf) = (0.0, 0.0);
    for gi in gitems {
        let text = gi["generation"].as_str().unwrap();
        let reference = gi["reference"].as_str().unwrap();
        assert_eq!(
            extract::gsm8k_strict(text),
            gi["strict_match"].as_str().unwrap()
        );
        assert_eq!(
            extract::gsm8k_flexible(text),
            gi["flexible_extract"].as_str().unwrap()
        );
        let s = extract::gsm8k_exact_match(&extract::gsm8k_strict(text), reference);
        let f = extract::gsm8k_exact_match(&extract::gsm8k_flexible(text), reference);
        assert_eq!(u64::from(s), gi["exact_match_strict"].as_u64().unwrap());
        assert_eq!(u64::from(f), gi["exact_match_flexible"].as_u64().unwrap());
        assert_eq!(
            extract::gsm8k_strict(reference),
            gi["reference_strict_match"].as_str().unwrap()
        );
        assert_eq!(
            extract::gsm8k_flexible(reference),
            gi["reference_flexible_extract"].as_str().unwrap()
        );
        assert!(extract::gsm8k_exact_match(
            &extract::gsm8k_strict(reference),
            reference
        ));
        ems += f64::from(u8::from(s));
        emf += f64::from(u8::from(f));
    }
    let n = gitems.len() as f64;
    assert_eq!(
        ems / n,
        g["aggregate"]["exact_match_strict"].as_f64().unwrap()
    );
    assert_eq!(
        emf / n,
        g["aggregate"]["exact_match_flexible"].as_f64().unwrap()
    );
    // Generation: the prompt ids and greedy tokens.
    let items = select(Task::Gsm8k.load(&e.data).unwrap(), 0, Some(gitems.len()));
    let shared = u32s(&g["fewshot_prefix"]["shared_prefix_token_ids"]);
    let mut scorer = Scorer::new(&e.model, ScoringMode::PrefixCache, 2048);
    let t0 = Instant::now();
    let mut checked = Vec::new();
    let mut diverged = Vec::new();
    for (it, gi) in items.iter().zip(gitems) {
        let ItemKind::Gsm8k { prompt, .. } = &it.kind else {
            unreachable!()
        };
        let mut want = shared.clone();
        want.extend(u32s(&gi["question_token_ids"]));
        assert_eq!(
            e.model.encode(prompt).unwrap(),
            want,
            "gsm8k item {} prompt ids",
            it.idx
        );
        let ng = gi["n_generated"].as_u64().unwrap();
        if !full() && ng > 40 {
            continue;
        }
        let rec = evaluate_generation_item(&mut scorer, it, None, &Default::default()).unwrap();
        let ours = u32s(&rec.details["generated_token_ids"]);
        let theirs = u32s(&gi["generated_token_ids"]);
        if ours != theirs {
            let k = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
            let m = gi["step_top2_logit_margin"][k].as_f64().unwrap();
            assert!(
                m < 0.05,
                "gsm8k item {}: diverges at step {k} with margin {m}",
                it.idx
            );
            diverged.push((it.idx, k, m));
        } else {
            assert_eq!(
                rec.prediction["generation"], gi["generation"],
                "item {}",
                it.idx
            );
            assert_eq!(
                rec.details["stop_reason"], gi["stop_reason"],
                "item {}",
                it.idx
            );
            assert_eq!(rec.prediction["strict_match"], gi["strict_match"]);
            assert_eq!(rec.prediction["flexible_extract"], gi["flexible_extract"]);
        }
        checked.push(it.idx);
    }
    eprintln!(
        "gsm8k: extraction/exact match on all {} golden generations (strict {:.2}, flexible {:.2}); greedy generation identical on items {checked:?} ({:.1}s), divergences {diverged:?}",
        gitems.len(),
        ems / n,
        emf / n,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn generation_stop_strings_cut_at_the_earliest() {
    let until: Vec<String> = generation::GSM8K_UNTIL.map(String::from).to_vec();
    assert_eq!(generation::cut_at_stop("a\n\nQuestion: b", &until), Some(1));
    assert_eq!(generation::cut_at_stop("abc", &until), None);
}
