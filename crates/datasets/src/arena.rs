//! Arena-Bench v1 GPT-4 judge scores (15 chat models × 300 hard user prompts).
//!
//! Source: `lmarena/arena-hard-auto` early history, `data/arena-bench-v1` (see
//! `arena_bench_v1_judgments/SOURCE.md`). Files in the folder:
//! * `judgment_scores.csv` (required): long format `question_id, model, judge_file, score,
//!   judgment_chars`, one row per (question, model); `score` is GPT-4's 1–10 rating of the
//!   answer against a GPT-4 reference answer, empty when the judgment had no parsable score;
//! * `question.jsonl` (optional): `question_id`, `category`, `turns`; the first turn becomes
//!   the prompt text and `category` the group;
//! * `answer_lengths.csv` (needed only for [`ArenaOptions::length_costs`]): `question_id,
//!   model, answer_chars`.
//!
//! **Normalisation.** A rating `s ∈ [1, 10]` becomes `(s − 1) / 9` ([`normalise_judge_score`]):
//! the scale's lowest point maps to 0 and its highest to 1 with equal steps between, so scores
//! are comparable with 0/1 correctness. (Dividing by 10 would give the worst possible answer
//! 0.1 credit.)
//!
//! **Missing judgments.** An empty score leaves that (question, model) cell missing; the row
//! is skipped under [`RULE_EMPTY_SCORE`]. A question lacking any model's judgment (empty
//! score or no row) is dropped whole, so the table stays complete: its remaining rows are
//! counted under [`RULE_INCOMPLETE_QUESTION`], whose examples list the dropped question ids.
//! In the real data 39 scores are empty, spread over 29 questions, leaving 271 questions.
//! A score that is not a number, or outside `[1, 10]`, is an error naming line and field.
//!
//! **Costs.** Arena-Bench has no prices. With [`ArenaOptions::length_costs`] the cost matrix
//! holds each answer's length in characters (`answer_chars`): a proxy for generation cost
//! (output tokens), not dollars.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::csvio::{CsvFile, parse_f64};
use crate::error::{DatasetError, Result};
use crate::outcome::{LoadReport, Loaded, OutcomeTable, PromptMeta, ScoreKind, SkipCount};

/// Skip rule for rows with an empty score.
pub const RULE_EMPTY_SCORE: &str = "empty judge score (no parsable rating)";
/// Skip rule for the other rows of questions dropped because a model's judgment is missing.
pub const RULE_INCOMPLETE_QUESTION: &str =
    "judgment of a dropped question (some model lacks a judgment for it)";

/// Options of the Arena-Bench loader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaOptions {
    /// Fill the cost matrix with answer lengths in characters from `answer_lengths.csv`
    /// (a length proxy, not dollars). Default: no costs.
    pub length_costs: bool,
}

/// Maps a 1–10 judge rating to `[0, 1]`: `(s − 1) / 9`.
pub fn normalise_judge_score(s: f64) -> f64 {
    (s - 1.0) / 9.0
}

/// Loads `judgment_scores.csv` (plus `question.jsonl` when present, and `answer_lengths.csv`
/// when length costs are asked for) from the `arena_bench_v1_judgments` folder `dir`.
///
/// Models and prompts appear in order of first appearance in `judgment_scores.csv`; prompt
/// ids are the `question_id`s. Scores are normalised with [`normalise_judge_score`]
/// ([`ScoreKind::Graded`]).
pub fn load_arena_judgments(dir: &Path, opts: &ArenaOptions) -> Result<Loaded<OutcomeTable>> {
    let path = dir.join("judgment_scores.csv");
    let mut csv = CsvFile::open(&path)?;
    let origin = csv.origin().to_string();
    let c_q = csv.column("question_id")?;
    let c_m = csv.column("model")?;
    let c_s = csv.column("score")?;
    let mut report = LoadReport::new(origin.clone());
    let mut models: Vec<String> = Vec::new();
    let mut model_pos: HashMap<String, usize> = HashMap::new();
    let mut questions: Vec<String> = Vec::new();
    let mut question_pos: HashMap<String, usize> = HashMap::new();
    // (question, model) -> (score if present, line)
    let mut cells: HashMap<(usize, usize), (Option<f64>, u64)> = HashMap::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        report.rows_read += 1;
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let (q, m, raw) = (cell(c_q).trim(), cell(c_m).trim(), cell(c_s));
        if q.is_empty() {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "question_id",
                q,
                "empty",
            ));
        }
        if m.is_empty() {
            return Err(DatasetError::invalid(&origin, line, "model", m, "empty"));
        }
        let qi = *question_pos.entry(q.to_string()).or_insert_with(|| {
            questions.push(q.to_string());
            questions.len() - 1
        });
        let mi = *model_pos.entry(m.to_string()).or_insert_with(|| {
            models.push(m.to_string());
            models.len() - 1
        });
        let score = if raw.trim().is_empty() {
            report.skip(RULE_EMPTY_SCORE, format!("{origin}:{line} ({q}, {m})"));
            None
        } else {
            let s = parse_f64(&origin, line, "score", raw)?;
            if !(1.0..=10.0).contains(&s) {
                return Err(DatasetError::invalid(
                    &origin,
                    line,
                    "score",
                    raw,
                    "judge score must be in [1, 10]",
                ));
            }
            Some(normalise_judge_score(s))
        };
        if let Some((_, first)) = cells.insert((qi, mi), (score, line)) {
            return Err(DatasetError::DuplicatePrompt {
                origin,
                id: format!("{q} (model {m}, first at line {first})"),
                line: Some(line),
            });
        }
    }
    if questions.is_empty() {
        return Err(DatasetError::Empty {
            origin,
            what: "judgment set".into(),
        });
    }
    let complete =
        |qi: usize| (0..models.len()).all(|mi| matches!(cells.get(&(qi, mi)), Some((Some(_), _))));
    let kept: Vec<usize> = (0..questions.len()).filter(|&qi| complete(qi)).collect();
    let dropped: Vec<usize> = (0..questions.len()).filter(|&qi| !complete(qi)).collect();
    let dropped_rows: usize = dropped
        .iter()
        .map(|&qi| {
            (0..models.len())
                .filter(|&mi| matches!(cells.get(&(qi, mi)), Some((Some(_), _))))
                .count()
        })
        .sum();
    if !dropped.is_empty() {
        report.skipped.push(SkipCount {
            rule: RULE_INCOMPLETE_QUESTION.to_string(),
            count: dropped_rows,
            examples: dropped
                .iter()
                .take(10)
                .map(|&qi| questions[qi].clone())
                .collect(),
        });
    }
    let texts = read_questions_if_present(&dir.join("question.jsonl"))?;
    let lengths = if opts.length_costs {
        Some(read_answer_lengths(&dir.join("answer_lengths.csv"))?)
    } else {
        None
    };
    let mut prompts = Vec::with_capacity(kept.len());
    let mut scores = Vec::with_capacity(kept.len() * models.len());
    let mut costs = Vec::new();
    for &qi in &kept {
        let q = &questions[qi];
        let mut meta = PromptMeta::new(q.clone());
        if let Some((text, category)) = texts.get(q) {
            if let Some(t) = text {
                meta = meta.with_text(t.clone());
            }
            if let Some(c) = category {
                meta = meta.with_group(c.clone());
            }
        }
        prompts.push(meta);
        for (mi, m) in models.iter().enumerate() {
            let s = cells
                .get(&(qi, mi))
                .and_then(|(s, _)| *s)
                .unwrap_or_default();
            scores.push(s);
            if let Some(lengths) = &lengths {
                let c = lengths.get(&(q.clone(), m.clone())).ok_or_else(|| {
                    DatasetError::PromptSetMismatch {
                        origin: dir.join("answer_lengths.csv").display().to_string(),
                        details: format!("no answer length for question `{q}`, model `{m}`"),
                    }
                })?;
                costs.push(*c);
            }
        }
    }
    let table = OutcomeTable::new(
        "arena-bench-v1",
        ScoreKind::Graded,
        models,
        prompts,
        scores,
        lengths.is_some().then_some(costs),
    )?;
    Ok(Loaded {
        data: table,
        report,
    })
}

/// `question_id -> (first turn, category)`.
type QuestionInfo = HashMap<String, (Option<String>, Option<String>)>;

/// One MT-Bench question of a `question.jsonl` file.
#[derive(Debug, Clone, PartialEq)]
pub struct MtBenchQuestion {
    /// `question_id`, as text.
    pub id: String,
    /// The first turn (`turns[0]`), when present.
    pub first_turn: Option<String>,
    /// `category`, when present.
    pub category: Option<String>,
}

/// Reads an MT-Bench `question.jsonl` (one JSON object per line with `question_id`, `turns`,
/// `category`), in file order; blank lines are skipped.
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read, [`DatasetError::Json`] for a line that is
/// not JSON and an invalid-value error naming the line for a missing or malformed `question_id`.
pub fn read_mt_bench_questions(path: &Path) -> Result<Vec<MtBenchQuestion>> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let lineno = (i + 1) as u64;
        let line = line.map_err(|e| DatasetError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| DatasetError::Json {
            origin: origin.clone(),
            line: Some(lineno),
            message: e.to_string(),
        })?;
        let id = match v.get("question_id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            other => {
                return Err(DatasetError::invalid(
                    &origin,
                    lineno,
                    "question_id",
                    other.map(ToString::to_string).unwrap_or_default(),
                    "expected a string or number",
                ));
            }
        };
        out.push(MtBenchQuestion {
            id,
            first_turn: v
                .get("turns")
                .and_then(|t| t.get(0))
                .and_then(|t| t.as_str())
                .map(str::to_string),
            category: v
                .get("category")
                .and_then(|c| c.as_str())
                .map(str::to_string),
        });
    }
    Ok(out)
}

/// Reads `question.jsonl` into `question_id -> (first turn, category)`; empty when the file is
/// absent.
fn read_questions_if_present(path: &Path) -> Result<QuestionInfo> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    Ok(read_mt_bench_questions(path)?
        .into_iter()
        .map(|q| (q.id, (q.first_turn, q.category)))
        .collect())
}

/// `(question_id, model) -> answer_chars` from `answer_lengths.csv`.
fn read_answer_lengths(path: &Path) -> Result<HashMap<(String, String), f64>> {
    let mut csv = CsvFile::open(path)?;
    let origin = csv.origin().to_string();
    let c_q = csv.column("question_id")?;
    let c_m = csv.column("model")?;
    let c_n = csv.column("answer_chars")?;
    let mut out = HashMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for rec in csv.records() {
        let (line, rec) = rec?;
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let key = (cell(c_q).trim().to_string(), cell(c_m).trim().to_string());
        let n = parse_f64(&origin, line, "answer_chars", cell(c_n))?;
        if n < 0.0 {
            return Err(DatasetError::invalid(
                &origin,
                line,
                "answer_chars",
                cell(c_n),
                "negative length",
            ));
        }
        if !seen.insert(key.clone()) {
            return Err(DatasetError::DuplicatePrompt {
                origin,
                id: format!("{} (model {})", key.0, key.1),
                line: Some(line),
            });
        }
        out.insert(key, n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_maps_scale_ends_to_unit_interval() {
        assert_eq!(normalise_judge_score(1.0), 0.0);
        assert_eq!(normalise_judge_score(10.0), 1.0);
        assert!((normalise_judge_score(5.5) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn mt_bench_questions_keep_file_order_and_name_bad_lines() {
        let d = std::env::temp_dir().join(format!("mt-bench-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let good = d.join("good.jsonl");
        std::fs::write(
            &good,
            "{\"question_id\": 82, \"category\": \"writing\", \"turns\": [\"b\", \"x\"]}\n\n{\"question_id\": \"81\", \"turns\": []}\n",
        )
        .unwrap();
        let q = read_mt_bench_questions(&good).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            (q[0].id.as_str(), q[0].first_turn.as_deref()),
            ("82", Some("b"))
        );
        assert_eq!((q[1].id.as_str(), q[1].first_turn.as_deref()), ("81", None));
        assert_eq!(q[0].category.as_deref(), Some("writing"));
        let bad = d.join("bad.jsonl");
        std::fs::write(&bad, "{\"question_id\": 1}\n{not json\n").unwrap();
        let err = read_mt_bench_questions(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl") && err.contains('2'), "{err}");
        std::fs::write(&bad, "{\"turns\": [\"a\"]}\n").unwrap();
        assert!(read_mt_bench_questions(&bad).is_err());
        assert!(read_mt_bench_questions(&d.join("absent.jsonl")).is_err());
    }

    #[test]
    fn drops_incomplete_questions_and_counts_rows() {
        let d = std::env::temp_dir().join(format!("arena-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("judgment_scores.csv"),
            "question_id,model,judge_file,score,judgment_chars\n\
             q1,a,a,10.0,5\nq1,b,b,1.0,5\nq2,a,a,,5\nq2,b,b,4.0,5\nq3,a,a,7,5\n",
        )
        .unwrap();
        let l = load_arena_judgments(&d, &ArenaOptions::default()).unwrap();
        assert_eq!(l.data.n_prompts(), 1);
        assert_eq!(l.data.scores_of(0), &[1.0, 0.0]);
        assert_eq!(l.report.rows_read, 5);
        // one empty score; q2's and q3's remaining judgment rows
        assert_eq!(l.report.total_skipped(), 3);
        let inc = &l.report.skipped[1];
        assert_eq!(inc.count, 2);
        assert_eq!(inc.examples, vec!["q2".to_string(), "q3".to_string()]);
    }
}
