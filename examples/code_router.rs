//! `code_router` — the MBPP routing study (seed notebook 000) on RouterBench's MBPP slice:
//! random-routing baseline vs a classifier router (MLP head on frozen MiniLM embeddings,
//! soft win-rate targets, EMA weights) at validation-tuned thresholds.
//!
//! ```text
//! cargo run --release -p examples --bin code_router
//! ```
//!
//! Data: `routerbench_zs/mbpp_{train,test}.csv` (427 MBPP prompts, one 0/1 outcome per model).
//! The train file is split 80/20 (seeded, by text) into training and validation; the test file
//! is the test split. For each small/large pair:
//! 1. **random baseline**: `floor(share·n)` random test items to the small model, 10 trials,
//!    mean ± std (population) of the performance gap to the large model alone (pp);
//! 2. **classifier router**: targets = the large model's win rate over the small one, ties ½
//!    (`mf_router::battles::large_win_rate`); thresholds = the 20/40/60/80th percentiles of the
//!    validation predictions; on test, items with prediction `<` threshold go to the small model.
//!    Trained with `--seeds` seeds (default 5): mean ± std, and seed 0's thresholds;
//! 3. **oracle**: the best achievable gap at the same cost advantage (small model first where it
//!    is at least as good).
//!
//! Output: `report.md`, one SVG per pair, `summary.json`, a checkpoint per pair, in `--out`
//! (default `out/code_router`). Embeddings come from the same cache as `routellm_mf`.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use datasets::{CodeOutcomes, OutcomeTable};
use evals::plot::{Chart, Series};
use evals::routing::{MeanStd, StudyReport};
use mf_router::battles::large_win_rate;
use mf_router::checkpoint::Checkpoint;
use mf_router::classifier::{ClassifierConfig, percentile_thresholds, train_classifier};
use mf_router::embed_cache::{CachedEmbedder, EmbeddingMatrix, MINILM_MODEL_ID};
use mf_router::splits::random_split;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PAIRS: [(&str, &str); 3] = [
    ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat"),
    ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview"),
    ("meta/llama-2-70b-chat", "gpt-4-1106-preview"),
];
const PERCENTILES: [f64; 4] = [20.0, 40.0, 60.0, 80.0];

fn short(m: &str) -> &str {
    m.rsplit('/').next().unwrap_or(m)
}

/// Accuracy (%) of routing `to_small[i]` items to `s`, the rest to `l`.
fn routed_rate(t: &OutcomeTable, s: usize, l: usize, to_small: &[bool]) -> f64 {
    let n = to_small.len() as f64;
    100.0
        * to_small
            .iter()
            .enumerate()
            .map(|(p, &sm)| t.score(p, if sm { s } else { l }))
            .sum::<f64>()
        / n
}

/// The oracle's gap (pp) at `k` items routed small: small first where it is at least as good.
fn oracle_gap(t: &OutcomeTable, s: usize, l: usize, k: usize) -> f64 {
    let mut order: Vec<usize> = (0..t.n_prompts()).collect();
    order.sort_by(|&a, &b| {
        (t.score(b, s) - t.score(b, l)).total_cmp(&(t.score(a, s) - t.score(a, l)))
    });
    let mut to_small = vec![false; t.n_prompts()];
    for &p in order.iter().take(k) {
        to_small[p] = true;
    }
    routed_rate(t, s, l, &to_small) - routed_rate(t, s, l, &vec![false; t.n_prompts()])
}

/// The MBPP routing study: random routing vs a classifier router on MiniLM embeddings.
#[derive(Parser, Debug)]
#[command(
    name = "code_router",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// Output folder (report.md, SVG figures, summary.json, checkpoints).
    #[arg(long, value_name = "DIR", default_value = "out/code_router")]
    out: PathBuf,
    /// The MiniLM embedding cache (shared with routellm_mf).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "out/embed-cache/all-MiniLM-L6-v2.mfemb"
    )]
    cache: PathBuf,
    /// Training seeds of the classifier router (0..N).
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Trials of the random-routing baseline.
    #[arg(long, default_value_t = 10)]
    trials: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| study(args))
}

fn study(args: Args) -> Result<(), BoxError> {
    let Args {
        out,
        cache,
        seeds,
        trials,
    } = args;
    std::fs::create_dir_all(&out)?;
    let dir = datasets::shared_data_dir().ok_or("shared data not found (set CAI_DATA_DIR)")?;
    let table = datasets::load_routerbench_slice(&dir.join("routerbench_routerdc"), "mbpp")?.data;
    let encoder = lm::models::bert::SentenceEncoder::from_dir(
        lm::locate::minilm_dir()?,
        &burn::tensor::Device::flex(),
    )?;
    let cached = CachedEmbedder::open(encoder, &cache)?;
    let texts: Vec<String> = table
        .prompts()
        .iter()
        .map(|p| p.text.clone().unwrap_or_default())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb_all = cached.embed_matrix(&refs)?;

    let train_rows: Vec<usize> = (0..table.n_prompts())
        .filter(|&p| table.prompts()[p].split.as_deref() == Some("train"))
        .collect();
    let test_rows: Vec<usize> = (0..table.n_prompts())
        .filter(|&p| table.prompts()[p].split.as_deref() == Some("test"))
        .collect();
    let train_table = table.take_rows(&train_rows)?;
    let test = table.take_rows(&test_rows)?;
    let test_emb = emb_all.take_rows(&test_rows);
    let tv = random_split(&train_table, 0.2, 0.0001, 0)?;
    let tr: Vec<usize> = tv
        .train
        .iter()
        .chain(&tv.test)
        .map(|&i| train_rows[i])
        .collect();
    let va: Vec<usize> = tv.val.iter().map(|&i| train_rows[i]).collect();
    let code_test = CodeOutcomes::from_binary_table(&test)?;

    let mut md = format!(
        "# MBPP routing study on RouterBench's MBPP slice\n\nGenerated by `code_router`. {} prompts: {} train ({} fit / {} validation, seeded split by text), {} test. One 0/1 outcome per model and prompt, so the test-case pass rate and the perfect-solution rate coincide (accuracy). Performance gap = routed accuracy − large model alone (percentage points); cost advantage = share of test prompts answered by the small model.\n\nClassifier router: MLP 384 → 384 → 1 (ReLU, dropout 0.1) on frozen all-MiniLM-L6-v2 embeddings, AdamW (lr 1e-3, wd 0.01), batch 16, 10 epochs, EMA of weights (β = 0.99), target = large model's win rate over the small one (ties ½); thresholds at the 20/40/60/80th percentiles of validation predictions, applied on test (small model when prediction < threshold). {seeds} training seeds; random baseline {trials} trials.\n\n",
        table.n_prompts(),
        train_rows.len(),
        tr.len(),
        va.len(),
        test_rows.len()
    );
    let mut summary = Vec::new();
    for (small, large) in PAIRS {
        let (s, l) = (table.model_index(small)?, table.model_index(large)?);
        let targets = large_win_rate(&table, s, l);
        let base = StudyReport::evaluate(
            format!("{} vs {}", short(small), short(large)),
            &code_test,
            small,
            large,
            trials,
            42,
        )?;
        // Per seed: thresholds on validation, routing on test.
        let mut per_seed: Vec<Vec<(f64, f64, f64)>> = Vec::new(); // (threshold, cost adv, gap)
        let mut ck_model = None;
        for seed in 0..seeds {
            let cfg = ClassifierConfig {
                seed,
                ..ClassifierConfig::default()
            };
            let (model, _log) = train_classifier(&cfg, &emb_all, &targets, &tr, &va)?;
            let val_pred = model.predict(&emb_all.take_rows(&va));
            let thr = percentile_thresholds(&val_pred, &PERCENTILES)?;
            let test_pred = model.predict(&test_emb);
            let large_only = routed_rate(&test, s, l, &vec![false; test.n_prompts()]);
            per_seed.push(
                thr.iter()
                    .map(|&t| {
                        let to_small: Vec<bool> = test_pred.iter().map(|&p| p < t).collect();
                        let adv =
                            to_small.iter().filter(|&&b| b).count() as f64 / to_small.len() as f64;
                        (t, adv, routed_rate(&test, s, l, &to_small) - large_only)
                    })
                    .collect(),
            );
            if seed == 0 {
                ck_model = Some((model, thr[1]));
            }
        }
        let mut tab = String::from(
            "| validation percentile | threshold (seed 0) | router cost advantage (test) | router perf gap (pp) | random, expected at the router's share (pp) | random at the nominal share, 10 trials (pp) | oracle at the router's share (pp) |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let n_test = test.n_prompts();
        let mut router_x = Vec::new();
        let mut router_y = Vec::new();
        let mut rows_json = Vec::new();
        for (j, &pct) in PERCENTILES.iter().enumerate() {
            let adv: Vec<f64> = per_seed.iter().map(|r| r[j].1).collect();
            let gap: Vec<f64> = per_seed.iter().map(|r| r[j].2).collect();
            let (a, g) = (MeanStd::of(&adv), MeanStd::of(&gap));
            let rnd = base
                .rows
                .iter()
                .find(|r| (r.small_share - pct / 100.0).abs() < 1e-9)
                .map(|r| r.pass_gap);
            let orc = oracle_gap(&test, s, l, (a.mean * n_test as f64).round() as usize);
            // A random router's expected gap is linear in the share routed small.
            let full_gap = 100.0 * (test.mean_score(s) - test.mean_score(l));
            tab += &format!(
                "| {pct:.0}% | {:.4} | {:.3} ± {:.3} | {:+.1} ± {:.1} | {:+.1} | {} | {:+.1} |\n",
                per_seed[0][j].0,
                a.mean,
                a.std,
                g.mean,
                g.std,
                a.mean * full_gap,
                rnd.map_or("—".into(), |r| format!(
                    "{:+.1} ± {:.1} (at {pct:.0}%)",
                    r.mean, r.std
                )),
                orc
            );
            router_x.push(a.mean);
            router_y.push(g.mean);
            rows_json.push(serde_json::json!({
                "percentile": pct, "cost_advantage": a, "perf_gap": g,
                "random_expected_gap_at_router_share": a.mean * 100.0 * (test.mean_score(s) - test.mean_score(l)),
                "random_gap_at_nominal_share": rnd, "oracle_gap": orc,
            }));
        }
        let title = format!("{} vs {}", short(small), short(large));
        md += &format!(
            "## {title}\n\nTest accuracy: small {:.1}%, large {:.1}%.\n\n{}\n",
            100.0 * test.mean_score(s),
            100.0 * test.mean_score(l),
            tab
        );
        md += &base.markdown(&format!("{}.svg", slug(small, large)));
        // Figure: random band + router + oracle.
        let xs: Vec<f64> = base.rows.iter().map(|r| r.small_share).collect();
        let m: Vec<f64> = base.rows.iter().map(|r| r.pass_gap.mean).collect();
        let lo: Vec<f64> = base
            .rows
            .iter()
            .map(|r| r.pass_gap.mean - r.pass_gap.std)
            .collect();
        let hi: Vec<f64> = base
            .rows
            .iter()
            .map(|r| r.pass_gap.mean + r.pass_gap.std)
            .collect();
        let ox: Vec<f64> = (0..=20).map(|i| i as f64 / 20.0).collect();
        let oy: Vec<f64> = ox
            .iter()
            .map(|&x| oracle_gap(&test, s, l, (x * n_test as f64).round() as usize))
            .collect();
        let chart = Chart::new(
            format!("MBPP (RouterBench): {title}"),
            "cost advantage (share routed to the small model)",
            "performance gap (pp)",
        )
        .x_range(0.0, 1.0)
        .with(Series::band("random ±1 sd", xs.clone(), lo, hi).color("#7f7f7f"))
        .with(
            Series::line_markers("random (mean)", xs, m)
                .color("#7f7f7f")
                .dashed(),
        )
        .with(Series::line("oracle", ox, oy).color("#2ca02c"))
        .with(
            Series::markers(
                "classifier router (val-tuned thresholds)",
                router_x,
                router_y,
                PERCENTILES.iter().map(|p| format!("{p:.0}%")).collect(),
            )
            .color("#d62728"),
        );
        chart.save(&out.join(format!("{}.svg", slug(small, large))))?;
        if let Some((model, thr40)) = ck_model {
            Checkpoint::classifier(model, small, large, MINILM_MODEL_ID)
                .with_threshold(thr40, None)
                .with_notes("RouterBench MBPP train split (80% fit, seed 0); threshold = 40th validation percentile (score >= threshold → large)")
                .save(out.join(format!("checkpoint-{}", slug(small, large))))?;
        }
        summary.push(serde_json::json!({"small": small, "large": large, "rows": rows_json, "random": base.rows}));
    }
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{md}");
    let _ = EmbeddingMatrix::dim(&emb_all);
    Ok(())
}

fn slug(small: &str, large: &str) -> String {
    format!("mbpp-{}-vs-{}", short(small), short(large))
}
