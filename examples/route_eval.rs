//! `route_eval` — score query routers on the cost–quality plane, RouteLLM- and RouterBench-style.
//!
//! ```text
//! cargo run --release -p examples --bin route_eval                      # synthetic default
//! cargo run --release -p examples --bin route_eval -- --preset all      # real data (../shared/data)
//! cargo run --release -p examples --bin route_eval -- --table outcomes.csv --weak a --strong b \
//!     --router mine=my_scores.csv --out out/mine
//! ```
//!
//! Presets (real data, found through `CAI_DATA_DIR` or a `shared/data` folder beside the
//! workspace): `mmlu` and `gsm8k` (RouteLLM: Mixtral vs GPT-4), `routerbench-mbpp`,
//! `routerbench-arc`, `routerbench-winogrande` (11 models with per-prompt USD cost: pair view
//! Mixtral vs GPT-4, N-model AIQ view, and the MBPP study table), `arena` (Arena-Bench v1 judge
//! scores, answer length as cost proxy), `routerdc` (RouterDC's 7 models, graded), `all`. With no preset and
//! no table, the embedded **synthetic** default runs (seeded item-response model; see
//! `datasets::synthetic`), so the first command works anywhere.
//!
//! Output: a table on stdout; `report.md`, SVG figures and `summary.json` in `--out`
//! (default `out/route_eval`).

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use datasets::synthetic::{SyntheticConfig, generate, success_probability};
use datasets::{CodeOutcomes, LoadReport, OutcomeTable, PromptMeta};
use evals::routing::{MultiReport, PairReport, PairReportOptions, StudyReport};
use routing_core::{MultiRouter, PairRouter, PrecomputedRouter, QualityMatrix};

type BoxError = Box<dyn std::error::Error>;

/// The presets `--preset` takes.
const PRESETS: [&str; 9] = [
    "synthetic",
    "mmlu",
    "gsm8k",
    "routerbench-mbpp",
    "routerbench-arc",
    "routerbench-winogrande",
    "arena",
    "routerdc",
    "all",
];

/// Scores query routers on the cost–quality plane, RouteLLM- and RouterBench-style.
#[derive(Parser, Debug)]
#[command(
    name = "route_eval",
    version,
    args_override_self = true,
    mut_args = cli::negative_numbers
)]
struct Args {
    /// Preset; all but synthetic read the data folder [default: synthetic, unless --table].
    #[arg(long, value_parser = PRESETS)]
    preset: Option<String>,
    /// An outcome table (CSV) to evaluate instead of a preset.
    #[arg(long, value_name = "OUTCOMES.csv")]
    table: Option<PathBuf>,
    /// With --table: the weak model [default: the table's lowest mean score].
    #[arg(long, value_name = "MODEL")]
    weak: Option<String>,
    /// With --table: the strong model [default: the table's highest mean score].
    #[arg(long, value_name = "MODEL")]
    strong: Option<String>,
    /// A router's precomputed scores, NAME=SCORES.csv (repeatable).
    #[arg(long = "router", value_name = "NAME=SCORES.csv", value_parser = router)]
    routers: Vec<(String, PathBuf)>,
    /// The data folder [default: CAI_DATA_DIR, else a shared/data beside the workspace].
    #[arg(long, value_name = "DIR", value_parser = cli::existing_dir)]
    data: Option<PathBuf>,
    /// Output folder (report.md, SVG figures, summary.json).
    #[arg(long, value_name = "DIR", default_value = "out/route_eval")]
    out: PathBuf,
    /// Seeds of the random-router band.
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// Grid resolution: strong-call shares 0, 1/N, …, 1.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// Random-routing trials per share in the MBPP-style study tables.
    #[arg(long, default_value_t = 10)]
    trials: usize,
}

/// `--router NAME=FILE`.
fn router(v: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = v
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FILE, got {v}"))?;
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Everything a report section needs.
enum Section {
    Pair(PairReport),
    Multi(MultiReport),
    Study(StudyReport),
}

struct Run {
    args: Args,
    sections: Vec<(String, Section)>,
    notes: Vec<String>,
}

impl Run {
    fn pair(
        &mut self,
        slug: &str,
        title: &str,
        table: &OutcomeTable,
        weak: &str,
        strong: &str,
        routers: Vec<(String, Vec<f64>)>,
    ) -> Result<(), BoxError> {
        let t = Instant::now();
        let opts = PairReportOptions {
            grid: self.args.grid,
            random_seeds: self.args.seeds,
            ..PairReportOptions::default()
        };
        let r = PairReport::evaluate(title, table, weak, strong, &routers, &opts)?;
        println!(
            "\n== {title} ({} prompts, {:.0} ms)",
            r.n_prompts,
            t.elapsed().as_secs_f64() * 1e3
        );
        println!(
            "weak {weak}: {:.4}   strong {strong}: {:.4}",
            r.weak_quality, r.strong_quality
        );
        print!("{}", r.metrics_table().render());
        self.sections.push((slug.to_string(), Section::Pair(r)));
        Ok(())
    }

    fn multi(
        &mut self,
        slug: &str,
        title: &str,
        table: &OutcomeTable,
        routers: &[&dyn MultiRouter],
    ) -> Result<(), BoxError> {
        let t = Instant::now();
        let r = MultiReport::evaluate(title, table, routers, 200)?;
        println!(
            "\n== {title} ({} prompts, {} models, {:.0} ms)",
            r.n_prompts,
            r.models.len(),
            t.elapsed().as_secs_f64() * 1e3
        );
        for (name, p) in &r.models {
            println!("  {name:<40} quality {:.4}  cost {:.6}", p.quality, p.cost);
        }
        println!("  AIQ zero router {:.4}", r.zero_router_aiq);
        for (name, _, a) in &r.routers {
            println!("  AIQ {name:<26} {a:.4}");
        }
        self.sections.push((slug.to_string(), Section::Multi(r)));
        Ok(())
    }

    fn study(
        &mut self,
        slug: &str,
        title: &str,
        outcomes: &CodeOutcomes,
        small: &str,
        large: &str,
    ) -> Result<(), BoxError> {
        let r = StudyReport::evaluate(title, outcomes, small, large, self.args.trials, 42)?;
        println!("\n== {title}");
        for row in &r.rows {
            println!(
                "  small share {:>4.0}%  pass {:5.1} ± {:3.1}  gap {:+5.1} ± {:3.1}",
                100.0 * row.small_share,
                row.pass_rate.mean,
                row.pass_rate.std,
                row.pass_gap.mean,
                row.pass_gap.std
            );
        }
        self.sections.push((slug.to_string(), Section::Study(r)));
        Ok(())
    }

    fn note_report(&mut self, report: &LoadReport) {
        println!("loaded {report}");
        self.notes.push(format!("- {report}"));
    }

    fn external_routers(&self, table: &OutcomeTable) -> Result<Vec<(String, Vec<f64>)>, BoxError> {
        self.args
            .routers
            .iter()
            .map(|(name, path)| {
                let r = PrecomputedRouter::new(name.clone(), datasets::load_scores_csv(path)?)?;
                Ok((name.clone(), r.score(table.prompts())?))
            })
            .collect()
    }

    fn write(&self) -> Result<(), BoxError> {
        let out = &self.args.out;
        std::fs::create_dir_all(out)?;
        let mut md = String::from(
            "# Routing evaluation\n\nGenerated by `route_eval`. Shares are of calls to the strong model; quality is the mean score of the routed answers; CPT values are strong-call shares. `code` = RouteLLM's evaluation code definition (default), `paper`/`min` = the paper's.\n\n",
        );
        if !self.notes.is_empty() {
            md.push_str("### Data\n\n");
            md.push_str(&self.notes.join("\n"));
            md.push_str("\n\n");
        }
        let mut summary = serde_json::Map::new();
        for (slug, s) in &self.sections {
            let fig = format!("{slug}.svg");
            match s {
                Section::Pair(r) => {
                    r.figure().save(&out.join(&fig))?;
                    md.push_str(&r.markdown(&fig));
                    summary.insert(slug.clone(), serde_json::to_value(r)?);
                }
                Section::Multi(r) => {
                    r.figure()?.save(&out.join(&fig))?;
                    md.push_str(&r.markdown(&fig));
                    summary.insert(slug.clone(), serde_json::to_value(r)?);
                }
                Section::Study(r) => {
                    r.figure().save(&out.join(&fig))?;
                    md.push_str(&r.markdown(&fig));
                    summary.insert(slug.clone(), serde_json::to_value(r)?);
                }
            }
        }
        std::fs::write(out.join("report.md"), md)?;
        std::fs::write(
            out.join("summary.json"),
            serde_json::to_string_pretty(&summary)?,
        )?;
        println!("\nwrote {}", out.join("report.md").display());
        Ok(())
    }
}

/// A synthetic router that sees each prompt's latent difficulty through Gaussian noise
/// (documented as synthetic: it exists to show what a useful router's curve looks like).
struct NoisyDifficultyRouter {
    name: String,
    models: Vec<String>,
    skills: Vec<f64>,
    discrimination: f64,
    /// Noisy difficulty per prompt id.
    noisy: std::collections::HashMap<String, f64>,
}

impl NoisyDifficultyRouter {
    fn new(
        table: &OutcomeTable,
        cfg: &SyntheticConfig,
        difficulty: &[f64],
        noise_sd: f64,
        seed: u64,
    ) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut normal = move || {
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        Self {
            name: format!("difficulty+noise(sd={noise_sd})"),
            models: table.models().to_vec(),
            skills: cfg.models.iter().map(|m| m.skill).collect(),
            discrimination: cfg.discrimination,
            noisy: table
                .prompts()
                .iter()
                .zip(difficulty)
                .map(|(p, d)| (p.id.clone(), d + noise_sd * normal()))
                .collect(),
        }
    }

    fn difficulty(&self, p: &PromptMeta) -> routing_core::Result<f64> {
        self.noisy
            .get(&p.id)
            .copied()
            .ok_or_else(|| routing_core::RoutingError::UnknownPrompts {
                router: self.name.clone(),
                count: 1,
                examples: p.id.clone(),
            })
    }
}

impl PairRouter for NoisyDifficultyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, prompts: &[PromptMeta]) -> routing_core::Result<Vec<f64>> {
        prompts.iter().map(|p| self.difficulty(p)).collect()
    }
}

impl MultiRouter for NoisyDifficultyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn expected_quality(&self, prompts: &[PromptMeta]) -> routing_core::Result<QualityMatrix> {
        let mut v = Vec::with_capacity(prompts.len() * self.skills.len());
        for p in prompts {
            let d = self.difficulty(p)?;
            v.extend(
                self.skills
                    .iter()
                    .map(|&s| success_probability(self.discrimination, s, d)),
            );
        }
        QualityMatrix::new(prompts.len(), self.skills.len(), v)
    }
}

fn run_synthetic(run: &mut Run) -> Result<(), BoxError> {
    run.notes.push("- **synthetic data** (seeded item-response model, `datasets::synthetic`): not evidence about real models.".into());
    let cfg = SyntheticConfig::default_pair();
    let s = generate(&cfg)?;
    let test = s.table.split("test")?;
    let test_difficulty: Vec<f64> = s
        .table
        .prompts()
        .iter()
        .zip(&s.difficulty)
        .filter(|(p, _)| p.split.as_deref() == Some("test"))
        .map(|(_, d)| *d)
        .collect();
    let router = NoisyDifficultyRouter::new(&test, &cfg, &test_difficulty, 0.5, 7);
    let mut routers = vec![(router.name.clone(), router.score(test.prompts())?)];
    routers.extend(run.external_routers(&test)?);
    run.pair(
        "synthetic_pair",
        "Synthetic pair (test split)",
        &test,
        "weak",
        "strong",
        routers,
    )?;

    let cfg = SyntheticConfig::default_multi();
    let s = generate(&cfg)?;
    let router = NoisyDifficultyRouter::new(&s.table, &cfg, &s.difficulty, 0.5, 7);
    run.multi(
        "synthetic_multi",
        "Synthetic 5 models",
        &s.table,
        &[&router],
    )?;
    let code = CodeOutcomes::from_binary_table(&s.table)?;
    run.study(
        "synthetic_study",
        "Synthetic random-routing study (small vs xl)",
        &code,
        "small",
        "xl",
    )
}

fn data_dir(args: &Args) -> Result<PathBuf, BoxError> {
    args.data
        .clone()
        .or_else(datasets::shared_data_dir)
        .ok_or_else(|| {
            "real-data preset needs ../shared/data (or --data DIR / CAI_DATA_DIR)".into()
        })
}

fn run_preset(run: &mut Run, preset: &str) -> Result<(), BoxError> {
    use datasets::routellm::{ROUTELLM_STRONG, ROUTELLM_WEAK};
    let dir = data_dir(&run.args)?;
    let opts = datasets::RouteLlmOptions::default();
    match preset {
        "mmlu" => {
            let l = datasets::load_routellm_mmlu(&dir.join("routellm_evals"), &opts)?;
            run.note_report(&l.report);
            let routers = run.external_routers(&l.data)?;
            run.pair(
                "mmlu",
                "RouteLLM MMLU (14,042 questions)",
                &l.data,
                ROUTELLM_WEAK,
                ROUTELLM_STRONG,
                routers,
            )
        }
        "gsm8k" => {
            let l = datasets::load_routellm_gsm8k(
                &dir.join("routellm_evals/gsm8k/gsm8k_responses.csv"),
                &opts,
            )?;
            run.note_report(&l.report);
            let routers = run.external_routers(&l.data)?;
            run.pair(
                "gsm8k",
                "RouteLLM GSM8K (1,319 questions)",
                &l.data,
                ROUTELLM_WEAK,
                ROUTELLM_STRONG,
                routers,
            )
        }
        "routerbench-mbpp" | "routerbench-arc" | "routerbench-winogrande" => {
            let slice = match preset {
                "routerbench-mbpp" => "mbpp",
                "routerbench-arc" => "arc_challenge",
                _ => "winograde",
            };
            let l = datasets::load_routerbench_slice(&dir.join("routerbench_routerdc"), slice)?;
            run.note_report(&l.report);
            let t = &l.data;
            let (weak, strong) = ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview");
            let routers = run.external_routers(t)?;
            run.pair(
                preset,
                &format!("RouterBench {slice}: Mixtral vs GPT-4"),
                t,
                weak,
                strong,
                routers,
            )?;
            run.multi(
                &format!("{preset}-multi"),
                &format!("RouterBench {slice}: 11 models"),
                t,
                &[],
            )?;
            if slice == "mbpp" {
                let code = CodeOutcomes::from_binary_table(t)?;
                for (small, large) in [
                    ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat"),
                    ("mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview"),
                    ("meta/llama-2-70b-chat", "gpt-4-1106-preview"),
                ] {
                    let slug = format!("mbpp-study-{}-{}", short(small), short(large));
                    run.study(
                        &slug,
                        &format!("MBPP study: {} vs {}", short(small), short(large)),
                        &code,
                        small,
                        large,
                    )?;
                }
            }
            Ok(())
        }
        "arena" => {
            let opts = datasets::ArenaOptions { length_costs: true };
            let l = datasets::load_arena_judgments(&dir.join("arena_bench_v1_judgments"), &opts)?;
            run.note_report(&l.report);
            let t = &l.data;
            let routers = run.external_routers(t)?;
            let (weak, strong) = ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview");
            let title = "Arena-Bench v1 (GPT-4 judge, 1-10 normalised): Mixtral vs GPT-4";
            run.pair("arena", title, t, weak, strong, routers)?;
            run.notes.push(
                "- Arena-Bench cost = answer length in characters (a proxy, not dollars).".into(),
            );
            run.multi(
                "arena-multi",
                "Arena-Bench v1: 15 models, cost = answer characters",
                t,
                &[],
            )
        }
        "routerdc" => {
            let l = datasets::load_routerdc_dir(&dir.join("routerdc_7model_scores"))?;
            run.note_report(&l.report);
            let t = &l.data;
            let (weak, strong) = (extreme_model(t, false), extreme_model(t, true));
            let routers = run.external_routers(t)?;
            let title = "RouterDC: 7 models, 12 task files (graded), weakest vs strongest";
            run.pair("routerdc", title, t, &weak, &strong, routers)
        }
        "all" => {
            // Every real-data preset: all but `synthetic` (first) and `all` (last).
            for p in &PRESETS[1..PRESETS.len() - 1] {
                run_preset(run, p)?;
            }
            Ok(())
        }
        other => Err(format!("unknown preset {other} (known: {})", PRESETS.join(", ")).into()),
    }
}

fn short(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// The model with the highest (`best`) or lowest mean score.
fn extreme_model(table: &OutcomeTable, best: bool) -> String {
    (0..table.n_models())
        .max_by(|&a, &b| {
            let o = table.mean_score(a).total_cmp(&table.mean_score(b));
            if best { o } else { o.reverse() }
        })
        .map(|m| table.models()[m].clone())
        .unwrap_or_default()
}

fn run_table(run: &mut Run, path: &Path) -> Result<(), BoxError> {
    let table = datasets::load_outcome_csv(path)?;
    let weak = run
        .args
        .weak
        .clone()
        .unwrap_or_else(|| extreme_model(&table, false));
    let strong = run
        .args
        .strong
        .clone()
        .unwrap_or_else(|| extreme_model(&table, true));
    let routers = run.external_routers(&table)?;
    let title = format!("{}: {weak} vs {strong}", path.display());
    run.pair("table", &title, &table, &weak, &strong, routers)?;
    if table.has_costs() && table.n_models() > 2 {
        run.multi(
            "table-multi",
            &format!("{}: all models", path.display()),
            &table,
            &[],
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| evaluate(args))
}

fn evaluate(args: Args) -> Result<(), BoxError> {
    let t0 = Instant::now();
    let mut run = Run {
        args,
        sections: Vec::new(),
        notes: Vec::new(),
    };
    match (run.args.table.clone(), run.args.preset.clone()) {
        (Some(path), _) => run_table(&mut run, &path)?,
        (None, Some(p)) if p != "synthetic" => run_preset(&mut run, &p)?,
        _ => run_synthetic(&mut run)?,
    }
    run.write()?;
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}
