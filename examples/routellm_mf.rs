//! `routellm_mf` — RouteLLM's matrix-factorisation router (Ong et al. 2024, §4.2) trained on
//! golden-label battles from real outcomes, evaluated RouteLLM-style against random and
//! oracle routers, plus an N-model (RouterBench, 11 models) willingness-to-pay evaluation.
//!
//! ```text
//! cargo run --release -p examples --bin routellm_mf                 # full run (uses the cache)
//! cargo run --release -p examples --bin routellm_mf -- --quick      # 2 seeds, fewer epochs
//! ```
//!
//! Needs `../shared/data` (or `CAI_DATA_DIR`) and the MiniLM files (`bash scripts/fetch_models.sh`).
//! Query embeddings are cached in `out/embed-cache/all-MiniLM-L6-v2.mfemb` (`--cache`); the
//! first run embeds ≈18k prompts (minutes on two cores), later runs read the cache.
//!
//! Experiments (each over `--seeds` seeds, default 5; mean ± std reported):
//! 1. **MMLU, held-out questions**: a seeded random split of RouteLLM's 14,042 MMLU questions
//!    (70% train / 10% validation / 20% test, repeated texts kept in one split); battles
//!    Mixtral vs GPT-4 from the train split; MF trained with ties dropped (RouteLLM) and with
//!    ties counted half; curves on the test split.
//! 2. **GSM8K** (out of distribution): the MMLU-trained routers scored on all 1,319 GSM8K
//!    questions.
//! 3. **MMLU, held-out subjects**: 10 seeded subjects held out for test, the rest split 90/10.
//! 4. **N models**: RouterBench's three zero-shot slices (11 models, USD cost), MF trained on
//!    all 55 model pairs of the train split, AIQ on the test split vs zero router and oracle.
//! 5. **Speed**: routed queries/s including MiniLM embedding at batch 1 and 32; training time
//!    per epoch; checkpoint round trip.
//!
//! Output: `report.md`, SVG figures, `summary.json` and a checkpoint in `--out`
//! (default `out/routellm_mf`).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use datasets::OutcomeTable;
use datasets::routellm::{ROUTELLM_STRONG, ROUTELLM_WEAK};
use evals::routing::{CurveSummary, MeanStd, MultiReport, PairReport, PairReportOptions};
use mf_router::battles::{BattleOptions, TiePolicy, golden_battles};
use mf_router::checkpoint::{Checkpoint, LoadedRouter};
use mf_router::embed_cache::{CachedEmbedder, EmbeddingMatrix, MINILM_MODEL_ID, TextEmbedder};
use mf_router::mf::{MfConfig, MfModel, MfMultiRouter, TrainLog, train_mf};
use mf_router::splits::{Split, choose_groups, group_split, random_split};
use routing_core::MultiRouter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// RouteLLM's matrix-factorisation router: trained on golden-label battles, evaluated
/// RouteLLM-style, plus an N-model willingness-to-pay evaluation.
#[derive(Parser, Debug)]
#[command(
    name = "routellm_mf",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir)]
    data: Option<PathBuf>,
    /// Output folder (report.md, SVG figures, summary.json, checkpoint).
    #[arg(long, value_name = "DIR", default_value = "out/routellm_mf")]
    out: PathBuf,
    /// The MiniLM embedding cache.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "out/embed-cache/all-MiniLM-L6-v2.mfemb"
    )]
    cache: PathBuf,
    /// Seeds of every experiment [default: 5; 2 with --quick].
    #[arg(long)]
    seeds: Option<u64>,
    /// Training epochs at most [default: 30; 10 with --quick].
    #[arg(long)]
    epochs: Option<usize>,
    /// MMLU subjects held out for the held-out-subjects experiment.
    #[arg(long, default_value_t = 10)]
    held_out_subjects: usize,
    /// Skip the N-model (RouterBench) evaluation.
    #[arg(long)]
    skip_multi: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Early-stopping patience in epochs.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// A quick run: 2 seeds and 10 epochs unless --seeds / --epochs say otherwise.
    #[arg(long)]
    quick: bool,
}

impl Args {
    /// Seeds per experiment (`--seeds`, else 5, or 2 with `--quick`).
    fn seeds(&self) -> u64 {
        self.seeds.unwrap_or(if self.quick { 2 } else { 5 })
    }

    /// Training epochs at most (`--epochs`, else 30, or 10 with `--quick`).
    fn epochs(&self) -> usize {
        self.epochs.unwrap_or(if self.quick { 10 } else { 30 })
    }
}

/// The two tie policies compared throughout.
const POLICIES: [(TiePolicy, &str); 2] = [
    (TiePolicy::Drop, "MF (ties dropped)"),
    (TiePolicy::Half, "MF (ties = ½)"),
];

/// Trains one MF model on the train rows of a split, validating on its validation rows.
fn train_pair(
    table: &OutcomeTable,
    emb: &EmbeddingMatrix,
    split: &Split,
    ties: TiePolicy,
    cfg: &MfConfig,
) -> Result<(MfModel, TrainLog), BoxError> {
    let opts = BattleOptions::golden(ties);
    let (train, _) = golden_battles(table, Some(&split.train), &opts)?;
    let (val, _) = golden_battles(table, Some(&split.val), &opts)?;
    Ok(train_mf(cfg, table.models(), emb, &train, &val)?)
}

/// Per-seed metrics of one router on one evaluation set.
#[derive(Clone, serde::Serialize)]
struct SeedMetrics {
    random_apgr: f64,
    oracle: CurveSummary,
    routers: Vec<CurveSummary>,
}

fn metrics(r: &PairReport) -> SeedMetrics {
    SeedMetrics {
        random_apgr: r.random.apgr.mean,
        oracle: r.summaries[0].clone(),
        routers: r.summaries[1..].to_vec(),
    }
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
fn seed_table(title: &str, per_seed: &[SeedMetrics]) -> String {
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
    for (i, r) in per_seed[0].routers.iter().enumerate() {
        rows.push((
            r.router.clone(),
            per_seed.iter().map(|m| &m.routers[i]).collect(),
        ));
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

struct SeedRun {
    mmlu: SeedMetrics,
    gsm8k: SeedMetrics,
    subjects: SeedMetrics,
    reports: Vec<(String, PairReport)>,
    logs: Vec<(String, TrainLog)>,
    models: Vec<MfModel>,
    split: Split,
    held_out: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn run_seed(
    seed: u64,
    mmlu: &OutcomeTable,
    mmlu_emb: &EmbeddingMatrix,
    gsm: &OutcomeTable,
    gsm_emb: &EmbeddingMatrix,
    cfg: &MfConfig,
    n_subjects: usize,
) -> Result<SeedRun, BoxError> {
    let cfg = MfConfig {
        seed,
        ..cfg.clone()
    };
    let opts = PairReportOptions {
        base_seed: 1000 * seed,
        ..PairReportOptions::default()
    };
    let (w, s) = (
        mmlu.model_index(ROUTELLM_WEAK)?,
        mmlu.model_index(ROUTELLM_STRONG)?,
    );
    let split = random_split(mmlu, 0.1, 0.2, seed)?;
    let test = mmlu.take_rows(&split.test)?;
    let test_emb = mmlu_emb.take_rows(&split.test);
    let mut logs = Vec::new();
    let mut models = Vec::new();
    let (mut mmlu_scores, mut gsm_scores) = (Vec::new(), Vec::new());
    for (ties, name) in POLICIES {
        let (m, log) = train_pair(mmlu, mmlu_emb, &split, ties, &cfg)?;
        mmlu_scores.push((name.to_string(), m.pair_win_probs(&test_emb, w, s, 1)?));
        gsm_scores.push((name.to_string(), m.pair_win_probs(gsm_emb, w, s, 1)?));
        logs.push((format!("seed {seed} {name} (MMLU random split)"), log));
        models.push(m);
    }
    let r_mmlu = PairReport::evaluate(
        format!("MMLU held-out questions (seed {seed}): Mixtral vs GPT-4"),
        &test,
        ROUTELLM_WEAK,
        ROUTELLM_STRONG,
        &mmlu_scores,
        &opts,
    )?;
    let r_gsm = PairReport::evaluate(
        format!("GSM8K, MMLU-trained router (seed {seed}): Mixtral vs GPT-4"),
        gsm,
        ROUTELLM_WEAK,
        ROUTELLM_STRONG,
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
        logs.push((format!("seed {seed} {name} (held-out subjects)"), log));
    }
    let r_sub = PairReport::evaluate(
        format!("MMLU held-out subjects (seed {seed}, {n_subjects} subjects): Mixtral vs GPT-4"),
        &gtest,
        ROUTELLM_WEAK,
        ROUTELLM_STRONG,
        &g_scores,
        &opts,
    )?;
    Ok(SeedRun {
        mmlu: metrics(&r_mmlu),
        gsm8k: metrics(&r_gsm),
        subjects: metrics(&r_sub),
        reports: vec![
            ("mmlu".into(), r_mmlu),
            ("gsm8k".into(), r_gsm),
            ("subjects".into(), r_sub),
        ],
        logs,
        models,
        split,
        held_out: held,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| study(&args))
}

fn study(args: &Args) -> Result<(), BoxError> {
    let t_start = Instant::now();
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => datasets::shared_data_dir().ok_or("shared data not found (set CAI_DATA_DIR)")?,
    };
    std::fs::create_dir_all(&args.out)?;
    let ropts = datasets::RouteLlmOptions::default();
    let mmlu = datasets::load_routellm_mmlu(&dir.join("routellm_evals"), &ropts)?.data;
    let gsm = datasets::load_routellm_gsm8k(
        &dir.join("routellm_evals/gsm8k/gsm8k_responses.csv"),
        &ropts,
    )?
    .data;

    eprintln!("loading MiniLM …");
    let device = burn::tensor::Device::flex();
    let encoder = lm::models::bert::SentenceEncoder::from_dir(lm::locate::minilm_dir()?, &device)?;
    let cached = Arc::new(CachedEmbedder::open(encoder, &args.cache)?);
    eprintln!(
        "embedding cache {}: {} vectors",
        args.cache.display(),
        cached.cached()
    );
    let texts = |t: &OutcomeTable| -> Vec<String> {
        t.prompts()
            .iter()
            .map(|p| p.text.clone().unwrap_or_default())
            .collect()
    };
    let embed = |t: &OutcomeTable| -> Result<EmbeddingMatrix, BoxError> {
        let tx = texts(t);
        let refs: Vec<&str> = tx.iter().map(String::as_str).collect();
        Ok(cached.embed_matrix(&refs)?)
    };
    let mmlu_emb = embed(&mmlu)?;
    let gsm_emb = embed(&gsm)?;

    let cfg = MfConfig {
        epochs: args.epochs(),
        lr: args.lr,
        patience: Some(args.patience),
        ..MfConfig::default()
    };
    // Seeds in parallel on the available cores (each training is single-threaded).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let seeds: Vec<u64> = (0..args.seeds()).collect();
    eprintln!(
        "training {} seeds × 4 MF models on {threads} threads …",
        seeds.len()
    );
    let t_train = Instant::now();
    let mut runs: Vec<(u64, SeedRun)> = Vec::new();
    for chunk in seeds.chunks(threads) {
        let got: Vec<Result<(u64, SeedRun), BoxError>> = std::thread::scope(|sc| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&seed| {
                    let (mmlu, mmlu_emb, gsm, gsm_emb, cfg) =
                        (&mmlu, &mmlu_emb, &gsm, &gsm_emb, &cfg);
                    let n = args.held_out_subjects;
                    sc.spawn(move || {
                        run_seed(seed, mmlu, mmlu_emb, gsm, gsm_emb, cfg, n).map(|r| (seed, r))
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for g in got {
            let (seed, run) = g?;
            eprintln!(
                "seed {seed}: MMLU APGR {} | GSM8K {} | subjects {}",
                run.mmlu
                    .routers
                    .iter()
                    .map(|c| format!("{:.3}", c.apgr_area))
                    .collect::<Vec<_>>()
                    .join("/"),
                run.gsm8k
                    .routers
                    .iter()
                    .map(|c| format!("{:.3}", c.apgr_area))
                    .collect::<Vec<_>>()
                    .join("/"),
                run.subjects
                    .routers
                    .iter()
                    .map(|c| format!("{:.3}", c.apgr_area))
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            runs.push((seed, run));
        }
    }
    let train_secs = t_train.elapsed().as_secs_f64();

    let mut md = format!(
        "# RouteLLM MF router on real outcomes\n\nGenerated by `routellm_mf`. Router: RouteLLM's matrix factorisation (Ong et al. 2024, §4.2; `P` 128-d L2-normalised, query projected 384→128 without bias, element-wise product, linear classifier without bias) on frozen all-MiniLM-L6-v2 embeddings, trained with Adam (lr {LR}, weight decay 1e-5 as RouteLLM, batch 64, at most {EPOCHS} epochs, early stopping on validation loss with patience {PAT}) on **golden-label battles** (the correct answer beats the wrong one). Two tie policies: dropped (RouteLLM's decisive battles) and counted ½. Shares are of calls to GPT-4; `code` APGR is the area under the PGR curve over achieved shares, `paper` the mean over 10%…100%.\n\n",
        LR = args.lr,
        EPOCHS = args.epochs(),
        PAT = args.patience,
    );
    md += &format!(
        "Data: RouteLLM MMLU ({} questions, Mixtral {:.4}, GPT-4 {:.4}) and GSM8K ({} questions). Random split 70/10/20 by seeded text clusters ({} repeated texts kept together); held-out subjects: {} seeded MMLU subjects per seed.\n\n",
        mmlu.n_prompts(),
        mmlu.mean_score(0),
        mmlu.mean_score(1),
        gsm.n_prompts(),
        runs[0].1.split.report.duplicate_texts,
        args.held_out_subjects
    );
    let per = |f: &dyn Fn(&SeedRun) -> SeedMetrics| -> Vec<SeedMetrics> {
        runs.iter().map(|(_, r)| f(r)).collect()
    };
    md += "## Summary over seeds\n\n";
    md += &seed_table(
        "MMLU held-out questions (20% test split)",
        &per(&|r| r.mmlu.clone()),
    );
    md += &seed_table(
        "GSM8K (router trained on MMLU only)",
        &per(&|r| r.gsm8k.clone()),
    );
    md += &seed_table(
        &format!(
            "MMLU held-out subjects ({} subjects)",
            args.held_out_subjects
        ),
        &per(&|r| r.subjects.clone()),
    );
    md += "Held-out subjects per seed: ";
    md += &runs
        .iter()
        .map(|(s, r)| format!("seed {s}: {}", r.held_out.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    md += "\n\nReference: RouteLLM Table 2 reports APGR 0.597 on MMLU for MF trained on Arena data augmented with golden-label MMLU (validation-split) battles, with OpenAI `text-embedding-3-small` query embeddings.\n\n";

    // Training log summary.
    md += "## Training\n\n| run | train battles | val battles | epochs run | best epoch | s / epoch | best val loss | val acc (decisive) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (_, r) in &runs {
        for (name, log) in &r.logs {
            let best = &log.epochs[log.best_epoch - 1];
            md += &format!(
                "| {name} | {} | {} | {} | {} | {:.3} | {:.4} | {} |\n",
                log.n_train,
                log.n_val,
                log.epochs.len(),
                log.best_epoch,
                log.seconds_per_epoch(),
                best.val_loss.unwrap_or(f64::NAN),
                best.val_accuracy.map_or("—".into(), |a| format!("{a:.3}"))
            );
        }
    }
    md += &format!(
        "\nAll {} trainings took {train_secs:.1} s wall on {threads} threads.\n\n",
        runs.len() * 4
    );

    // Seed-0 detailed reports and figures.
    md += "## Seed 0 in detail\n\n";
    for (slug, rep) in &runs[0].1.reports {
        let fig = format!("{slug}_seed0.svg");
        rep.figure().save(&args.out.join(&fig))?;
        md += &rep.markdown(&fig);
    }

    // N-model routing on RouterBench.
    let mut multi_json = serde_json::Value::Null;
    if !args.skip_multi {
        let (section, js) = multi_model(&dir, &cached, &cfg, &args.out)?;
        md += &section;
        multi_json = js;
    }

    // Speed and checkpoint.
    let (section, speed_json) = speed_and_checkpoint(
        &runs[0].1,
        &mmlu,
        &mmlu_emb,
        cached.inner(),
        &dir,
        &args.out,
    )?;
    md += &section;

    md += &format!(
        "\nTotal wall time {:.1} s.\n",
        t_start.elapsed().as_secs_f64()
    );
    std::fs::write(args.out.join("report.md"), &md)?;
    let summary = serde_json::json!({
        "mmlu": per(&|r| r.mmlu.clone()),
        "gsm8k": per(&|r| r.gsm8k.clone()),
        "subjects": per(&|r| r.subjects.clone()),
        "multi": multi_json,
        "speed": speed_json,
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{md}");
    eprintln!("wrote {}", args.out.join("report.md").display());
    Ok(())
}

/// RouterBench (3 zero-shot slices pooled, 11 models): MF on all pairs, AIQ on the test split.
fn multi_model(
    dir: &std::path::Path,
    cached: &Arc<CachedEmbedder<lm::models::bert::SentenceEncoder>>,
    cfg: &MfConfig,
    out: &std::path::Path,
) -> Result<(String, serde_json::Value), BoxError> {
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
    let texts: Vec<String> = all
        .prompts()
        .iter()
        .map(|p| p.text.clone().unwrap_or_default())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = cached.embed_matrix(&refs)?;
    let train_rows: Vec<usize> = (0..all.n_prompts())
        .filter(|&p| all.prompts()[p].split.as_deref() == Some("train"))
        .collect();
    let test_rows: Vec<usize> = (0..all.n_prompts())
        .filter(|&p| all.prompts()[p].split.as_deref() == Some("test"))
        .collect();
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
    let mut section = format!(
        "## N-model routing: RouterBench zero-shot (ARC-C + MBPP + WinoGrande), 11 models\n\n{} prompts ({} train, {} test). MF trained on golden-label battles of all 55 model pairs of the train split; expected quality = mean win probability against the other models (see `mf_router::mf`). AIQ (RouterBench) integrates the non-decreasing convex hull of cost–quality points over the single-model cost range.\n\n",
        all.n_prompts(),
        train_rows.len(),
        test_rows.len()
    );
    let mut js = Vec::new();
    let mut routers: Vec<MfMultiRouter> = Vec::new();
    for (ties, name) in POLICIES {
        let opts = BattleOptions::golden(ties);
        let (btr, st) = golden_battles(&all, Some(&tr), &opts)?;
        let (bva, _) = golden_battles(&all, Some(&va), &opts)?;
        let t0 = Instant::now();
        // 55 battles per prompt: larger steps (≈10 prompts each) and fewer epochs.
        let mcfg = MfConfig {
            batch_size: 512,
            epochs: cfg.epochs.min(20),
            ..cfg.clone()
        };
        let (m, log) = train_mf(&mcfg, all.models(), &emb, &btr, &bva)?;
        section += &format!(
            "- {name}: {} training battles ({} decisive, {} ties kept, {} dropped), {} epochs ({:.2} s/epoch, best {}), {:.1} s.\n",
            btr.len(),
            st.decisive,
            st.ties_kept,
            st.ties_dropped,
            log.epochs.len(),
            log.seconds_per_epoch(),
            log.best_epoch,
            t0.elapsed().as_secs_f64()
        );
        let emb_dyn: Arc<dyn TextEmbedder + Send + Sync> = cached.clone();
        routers.push(MfMultiRouter::new(Arc::new(m), emb_dyn).named(name));
    }
    section += "\n";
    let dyn_routers: Vec<&dyn MultiRouter> =
        routers.iter().map(|r| r as &dyn MultiRouter).collect();
    let rep = MultiReport::evaluate("RouterBench test split: 11 models", &test, &dyn_routers, 60)?;
    rep.figure()?.save(&out.join("routerbench_multi.svg"))?;
    section += &rep.markdown("routerbench_multi.svg");
    js.push(serde_json::json!({
        "zero_router_aiq": rep.zero_router_aiq,
        "routers": rep.routers.iter().map(|(n, _, a)| serde_json::json!({"router": n, "aiq": a})).collect::<Vec<_>>(),
    }));
    Ok((section, serde_json::Value::Array(js)))
}

/// Routed queries/s including embedding, training time per epoch, checkpoint round trip.
fn speed_and_checkpoint(
    run: &SeedRun,
    mmlu: &OutcomeTable,
    mmlu_emb: &EmbeddingMatrix,
    encoder: &lm::models::bert::SentenceEncoder,
    data: &std::path::Path,
    out: &std::path::Path,
) -> Result<(String, serde_json::Value), BoxError> {
    let model = &run.models[1];
    let (w, s) = (
        mmlu.model_index(ROUTELLM_WEAK)?,
        mmlu.model_index(ROUTELLM_STRONG)?,
    );
    // Checkpoint with a threshold calibrated on validation for a 50% GPT-4 share.
    let val_emb = mmlu_emb.take_rows(&run.split.val);
    let val_scores = model.pair_win_probs(&val_emb, w, s, 1)?;
    let thr = routing_core::calibrate_threshold(&val_scores, 0.5)?;
    let ck = Checkpoint::mf(model.clone(), ROUTELLM_WEAK, ROUTELLM_STRONG, MINILM_MODEL_ID)?
        .with_threshold(thr, Some(0.5))
        .with_notes("RouteLLM MMLU golden-label battles (ties = 1/2), random split seed 0 (70/10/20); threshold for 50% GPT-4 calls on validation");
    let ck_dir = out.join("checkpoint");
    ck.save(&ck_dir)?;
    let loaded = Checkpoint::load(&ck_dir)?;
    let test_emb = mmlu_emb.take_rows(&run.split.test);
    let a = ck.score_embeddings(&test_emb)?;
    let b = loaded.score_embeddings(&test_emb)?;
    let identical = a == b;

    // The int8 encoder: how far its embeddings move the router, on the whole test split.
    let int8_encoder = encoder.clone().quantized()?;
    let fast = LoadedRouter::new(loaded.clone(), &int8_encoder)?;
    let test_texts: Vec<&str> = run
        .split
        .test
        .iter()
        .map(|&r| mmlu.prompts()[r].text.as_deref().unwrap_or(""))
        .collect();
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
        ROUTELLM_WEAK,
        ROUTELLM_STRONG,
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
    let (q_f32, q_int8) = (&quality.summaries[1], &quality.summaries[2]);

    // Speed: embedding + MF scoring, fresh (no cache), on two prompt sets: the first 256 MMLU
    // test prompts and MT-Bench's 80 first-turn questions (chat queries, as RouteLLM serves).
    let mt_bench = read_mt_bench(data)?;
    let mt_refs: Vec<&str> = mt_bench.iter().map(String::as_str).collect();
    let sets: [(&str, &[&str]); 2] = [
        (
            "MMLU test prompts (first 256)",
            &test_texts[..256.min(test_texts.len())],
        ),
        ("MT-Bench first turns (80)", &mt_refs),
    ];
    let exact = LoadedRouter::new(loaded, encoder)?;
    let mut rows = String::new();
    let mut speed = Vec::new();
    for (set, texts) in sets {
        let tokens = encoder.tokenize(texts)?;
        let mean_tokens = tokens.iter().map(Vec::len).sum::<usize>() as f64 / texts.len() as f64;
        for (path, router) in [
            ("f32 (burn `flex`)", &exact as &dyn Route),
            ("int8 (`lm::models::bert::int8`)", &fast as &dyn Route),
        ] {
            router.batch(&texts[..4.min(texts.len())])?; // warm-up
            let t0 = Instant::now();
            for t in texts.iter() {
                router.one(t)?;
            }
            let qps1 = texts.len() as f64 / t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            for chunk in texts.chunks(32) {
                router.batch(chunk)?;
            }
            let qps32 = texts.len() as f64 / t0.elapsed().as_secs_f64();
            rows += &format!("| {set} | {mean_tokens:.1} | {path} | {qps1:.1} | {qps32:.1} |\n");
            speed.push(serde_json::json!({
                "set": set, "mean_tokens": mean_tokens, "encoder": path,
                "qps_batch1": qps1, "qps_batch32": qps32,
            }));
        }
    }
    // MF scoring alone (embeddings given).
    let t0 = Instant::now();
    let reps = 20;
    for _ in 0..reps {
        std::hint::black_box(model.pair_win_probs(mmlu_emb, w, s, 1)?);
    }
    let mf_only = (reps * mmlu_emb.len()) as f64 / t0.elapsed().as_secs_f64();
    let log = &run.logs[1].1;
    let log_drop = &run.logs[0].1;
    let section = format!(
        "## Speed (release build, this machine, {threads} cores)\n\nRouted queries per second, MiniLM embedding included (tokenise → encode → pool → MF score → threshold), fresh prompts (no cache). Batch 1 = one `route` call per prompt; batch 32 = `route_batch` on chunks of 32.\n\n| prompts | tokens (mean) | encoder | batch 1 q/s | batch 32 q/s |\n|---|---:|---|---:|---:|\n{rows}\nRouteLLM reports 155 requests/s for its MF router on a GPU (with a remote embedding call).\n\n| measure | value |\n|---|---:|\n| MF scoring only (embeddings given), queries/s, 1 thread | {mf_only:.0} |\n| training s/epoch, MMLU battles ties=½ ({} battles) | {:.3} |\n| training s/epoch, MMLU battles ties dropped ({} battles) | {:.3} |\n\n### int8 query embeddings: does routing change?\n\nThe router was trained on f32 embeddings; the {n_test} test prompts were embedded again by the int8 encoder ({int8_split_secs:.1} s) and scored by the same checkpoint. Same decision at the 50% threshold for **{:.2}%** of prompts; largest score change {max_delta:.4}.\n\n| query embeddings | APGR (code) | CPT(50%) | CPT(80%) |\n|---|---:|---:|---:|\n| f32 | {:.4} | {} | {} |\n| int8 | {:.4} | {} | {} |\n\n## Checkpoint\n\n`{}`: MF (ties = ½, seed 0), threshold {thr:.5} (50% GPT-4 calls on validation). Reloaded scores on the {} test prompts identical: **{identical}**.\n\n",
        log.n_train,
        log.seconds_per_epoch(),
        log_drop.n_train,
        log_drop.seconds_per_epoch(),
        100.0 * agree,
        q_f32.apgr_area,
        pct(q_f32.cpt50),
        pct(q_f32.cpt80),
        q_int8.apgr_area,
        pct(q_int8.cpt50),
        pct(q_int8.cpt80),
        ck_dir.display(),
        a.len(),
        threads = std::thread::available_parallelism().map_or(1, |n| n.get()),
        n_test = test_texts.len(),
    );
    Ok((
        section,
        serde_json::json!({
            "routing": speed, "mf_only_qps": mf_only,
            "epoch_seconds_half": log.seconds_per_epoch(), "epoch_seconds_drop": log_drop.seconds_per_epoch(),
            "checkpoint_identical": identical, "threshold": thr,
            "int8": {"decision_agreement": agree, "max_score_change": max_delta,
                     "apgr_f32": q_f32.apgr_area, "apgr_int8": q_int8.apgr_area,
                     "cpt50_f32": q_f32.cpt50, "cpt50_int8": q_int8.cpt50,
                     "cpt80_f32": q_f32.cpt80, "cpt80_int8": q_int8.cpt80},
        }),
    ))
}

/// Batch-1 and batch-N routing, for timing the two encoders behind one interface.
trait Route {
    fn one(&self, text: &str) -> Result<(), BoxError>;
    fn batch(&self, texts: &[&str]) -> Result<(), BoxError>;
}

impl<E: TextEmbedder> Route for LoadedRouter<E> {
    fn one(&self, text: &str) -> Result<(), BoxError> {
        std::hint::black_box(self.route(text)?);
        Ok(())
    }
    fn batch(&self, texts: &[&str]) -> Result<(), BoxError> {
        std::hint::black_box(self.route_batch(texts)?);
        Ok(())
    }
}

/// MT-Bench's first-turn questions (`routellm_evals/mt_bench/question.jsonl`), in file order.
fn read_mt_bench(data: &std::path::Path) -> Result<Vec<String>, BoxError> {
    let path = data.join("routellm_evals/mt_bench/question.jsonl");
    let turns: Vec<String> = datasets::read_mt_bench_questions(&path)?
        .into_iter()
        .filter_map(|q| q.first_turn)
        .collect();
    if turns.is_empty() {
        return Err(format!("{}: no questions", path.display()).into());
    }
    Ok(turns)
}
