//! Sentence-embedding throughput of the MiniLM [`SentenceEncoder`] (f32 and int8) against
//! sentence-transformers on the same sentences, and the check against the golden embeddings
//! (the `embed` example's `--bench`, `--peer` and `--golden`).
//!
//! Throughput: the texts are embedded in batches of `batch` (as the peer's `encode` does) once
//! as a warm-up, which also gives the embeddings compared, then `rounds` more times, timed;
//! sentences/s = `texts × rounds / seconds`. The peer is `crates/lm/peer/minilm_st.py`
//! (sentence-transformers on PyTorch's CPU backend with the same thread count, batch size and
//! rounds), run in the same process tree on the same machine.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{BenchError, Result, fmt_opt, peer_script, run_python};
use crate::models::bert::{SentenceEncoder, cosine_similarity};

/// The largest absolute difference per embedding component allowed against the golden file
/// (`shared/golden/README.md`).
pub const GOLDEN_TOLERANCE: f32 = 1e-4;

/// 256 deterministic sentences of 4 to ~40 words, built from word lists with a fixed LCG (the
/// default benchmark texts: varied lengths, no data folder needed).
pub fn bench_sentences() -> Vec<String> {
    const SUBJECTS: [&str; 12] = [
        "The committee",
        "A young engineer",
        "My neighbour's dog",
        "The new transformer model",
        "Researchers at the university",
        "The old lighthouse keeper",
        "A small startup in Berlin",
        "The orchestra",
        "Our quarterly report",
        "The hiking group",
        "The city council",
        "An anonymous donor",
    ];
    const VERBS: [&str; 10] = [
        "announced",
        "quietly rejected",
        "carefully reviewed",
        "celebrated",
        "postponed",
        "described in detail",
        "questioned",
        "improved",
        "funded",
        "photographed",
    ];
    const OBJECTS: [&str; 10] = [
        "the proposal for a new bridge",
        "an unexpected result",
        "the annual budget",
        "a concert in the park",
        "the latest benchmark numbers",
        "a recipe for sourdough bread",
        "the migration of birds",
        "a long-awaited software release",
        "the rules of the tournament",
        "a map of the northern coast",
    ];
    const TAILS: [&str; 10] = [
        "",
        " yesterday",
        " after a long debate",
        " despite heavy rain and strong winds along the coast",
        " because the previous attempt had failed",
        " while most people were still asleep",
        ", which surprised everyone who had followed the story since the beginning of the year",
        " in front of a large audience",
        " without telling anyone",
        ", and the discussion that followed lasted well into the night as new questions kept coming up",
    ];
    let mut state = 0x2545_f491_u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    (0..256)
        .map(|_| {
            let mut s = format!(
                "{} {} {}{}.",
                SUBJECTS[next(SUBJECTS.len())],
                VERBS[next(VERBS.len())],
                OBJECTS[next(OBJECTS.len())],
                TAILS[next(TAILS.len())]
            );
            if next(3) == 0 {
                s.push_str(&format!(
                    " {} {} {}.",
                    SUBJECTS[next(SUBJECTS.len())],
                    VERBS[next(VERBS.len())],
                    OBJECTS[next(OBJECTS.len())]
                ));
            }
            s
        })
        .collect()
}

/// The non-blank lines of a text file; [`BenchError::Input`] when there are none.
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(BenchError::Input {
            path: path.to_path_buf(),
            reason: "no texts (every line is blank)".into(),
        });
    }
    Ok(lines)
}

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedBenchConfig {
    /// Sentences per batch (≥ 1).
    pub batch: usize,
    /// Timed rounds after the warm-up (≥ 1).
    pub rounds: usize,
    /// Also time the int8 path ([`SentenceEncoder::quantized`], a CPU path).
    pub int8: bool,
}

impl Default for EmbedBenchConfig {
    /// Batches of 32, 5 rounds, int8 included.
    fn default() -> Self {
        Self {
            batch: crate::models::bert::DEFAULT_MAX_BATCH,
            rounds: 5,
            int8: true,
        }
    }
}

/// A measured rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Sentences per second over the timed rounds.
    pub sentences_per_s: f64,
    /// Seconds of the timed rounds.
    pub seconds: f64,
}

/// The int8 path's rate and how close its embeddings are to the f32 ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Int8Result {
    /// Its rate.
    pub rate: Rate,
    /// Mean cosine similarity to the f32 embedding of the same text.
    pub cosine_mean: f32,
    /// The lowest one.
    pub cosine_lowest: f32,
}

/// sentence-transformers' run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerResult {
    /// Its rate.
    pub rate: Rate,
    /// PyTorch's version.
    pub torch: String,
    /// PyTorch's threads.
    pub threads: u64,
    /// Largest `|ours (f32) − peer|` over all components of all embeddings (`None` when the
    /// peer returned no embeddings).
    pub max_abs_diff: Option<f32>,
}

/// Everything one `embed --bench` run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedBenchReport {
    /// The device of the f32 path.
    pub device: String,
    /// Threads.
    pub threads: usize,
    /// Texts embedded per round.
    pub sentences: usize,
    /// Their tokens (with `[CLS]`/`[SEP]`, after truncation).
    pub tokens: usize,
    /// Sentences per batch.
    pub batch: usize,
    /// Timed rounds.
    pub rounds: usize,
    /// The f32 path.
    pub f32: Rate,
    /// The int8 path, when measured.
    pub int8: Option<Int8Result>,
    /// sentence-transformers, when run.
    pub peer: Option<PeerResult>,
}

impl EmbedBenchReport {
    /// The report as markdown lines.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "bench: {} sentences ({} tokens, {:.1} per sentence), batch {}, {} rounds, {} threads\n\n\
             | encoder | sentences/s | seconds | note |\n|---|---:|---:|---|\n\
             | ours (burn, f32, {}) | {:.1} | {:.2} | |\n",
            self.sentences,
            self.tokens,
            self.tokens as f64 / self.sentences.max(1) as f64,
            self.batch,
            self.rounds,
            self.threads,
            self.device,
            self.f32.sentences_per_s,
            self.f32.seconds
        );
        if let Some(q) = &self.int8 {
            s.push_str(&format!(
                "| ours (int8) | {:.1} | {:.2} | {:.2}× f32; cosine to f32 mean {:.5}, lowest {:.5} |\n",
                q.rate.sentences_per_s,
                q.rate.seconds,
                q.rate.sentences_per_s / self.f32.sentences_per_s,
                q.cosine_mean,
                q.cosine_lowest
            ));
        }
        if let Some(p) = &self.peer {
            s.push_str(&format!(
                "| sentence-transformers (torch {}, {} threads) | {:.1} | {:.2} | max abs difference to ours (f32) {} |\n",
                p.torch,
                p.threads,
                p.rate.sentences_per_s,
                p.rate.seconds,
                p.max_abs_diff
                    .map_or_else(|| "not returned".into(), |d| format!("{d:.2e}"))
            ));
            s.push_str(&format!(
                "\nratio ours / sentence-transformers: {}× (f32), {}× (int8)\n",
                fmt_opt(self.f32_over_peer(), 2),
                fmt_opt(self.int8_over_peer(), 2)
            ));
        }
        s
    }

    /// Our f32 rate / the peer's.
    pub fn f32_over_peer(&self) -> Option<f64> {
        let p = self.peer.as_ref()?;
        Some(self.f32.sentences_per_s / p.rate.sentences_per_s)
    }

    /// Our int8 rate / the peer's.
    pub fn int8_over_peer(&self) -> Option<f64> {
        let (q, p) = (self.int8.as_ref()?, self.peer.as_ref()?);
        Some(q.rate.sentences_per_s / p.rate.sentences_per_s)
    }

    /// Writes the report as JSON.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        super::write_json(path, self)
    }
}

/// sentence-transformers on the same model folder (`crates/lm/peer/minilm_st.py`).
#[derive(Clone, Debug)]
pub struct SentenceTransformersPeer {
    /// The all-MiniLM-L6-v2 folder our encoder was loaded from.
    pub model_dir: PathBuf,
    /// PyTorch's threads (ours, for a fair ratio).
    pub threads: usize,
}

/// What the peer returned.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRun {
    /// Its rate, its torch version and threads (without the comparison).
    pub result: PeerResult,
    /// Its embeddings of the texts (empty if it returned none).
    pub embeddings: Vec<Vec<f32>>,
}

impl SentenceTransformersPeer {
    /// Embeds `texts` `rounds` times in batches of `batch` after a warm-up; offline (no hub
    /// access).
    pub fn run(&self, texts: &[String], batch: usize, rounds: usize) -> Result<PeerRun> {
        let script = peer_script("minilm_st.py");
        let file = std::env::temp_dir().join(format!("embed-bench-{}.txt", std::process::id()));
        std::fs::write(&file, texts.join("\n") + "\n").map_err(|source| BenchError::Io {
            path: file.clone(),
            source,
        })?;
        let out = run_python(
            &script,
            &[
                file.display().to_string(),
                "--model".into(),
                self.model_dir.display().to_string(),
                "--threads".into(),
                self.threads.to_string(),
                "--batch-size".into(),
                batch.to_string(),
                "--rounds".into(),
                rounds.to_string(),
            ],
            &[("HF_HUB_OFFLINE", "1")],
        );
        let _ = std::fs::remove_file(&file);
        parse_peer_output(&script, &out?, texts.len())
    }
}

/// Reads minilm_st.py's JSON object, field by field.
fn parse_peer_output(script: &Path, stdout: &[u8], texts: usize) -> Result<PeerRun> {
    let bad = |field: &str, reason: String| BenchError::PeerOutput {
        script: script.to_path_buf(),
        field: field.into(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| bad("(the whole output)", e.to_string()))?;
    let number = |field: &str| -> Result<f64> {
        v[field]
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| bad(field, format!("{} is not a positive number", v[field])))
    };
    let rate = Rate {
        sentences_per_s: number("sentences_per_s")?,
        seconds: number("seconds")?,
    };
    let threads = v["threads"]
        .as_u64()
        .ok_or_else(|| bad("threads", format!("{} is not a count", v["threads"])))?;
    let torch = v["versions"]["torch"]
        .as_str()
        .ok_or_else(|| bad("versions.torch", "missing".into()))?
        .to_string();
    let mut embeddings = Vec::new();
    if let Some(rows) = v.get("embeddings") {
        let rows = rows
            .as_array()
            .ok_or_else(|| bad("embeddings", "not an array".into()))?;
        if rows.len() != texts {
            return Err(bad(
                "embeddings",
                format!("{} rows for {texts} texts", rows.len()),
            ));
        }
        for (i, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .ok_or_else(|| bad(&format!("embeddings[{i}]"), "not an array".into()))?;
            let values = row
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    x.as_f64().map(|x| x as f32).ok_or_else(|| {
                        bad(
                            &format!("embeddings[{i}][{j}]"),
                            format!("{x} is not a number"),
                        )
                    })
                })
                .collect::<Result<Vec<f32>>>()?;
            embeddings.push(values);
        }
    }
    Ok(PeerRun {
        result: PeerResult {
            rate,
            torch,
            threads,
            max_abs_diff: None,
        },
        embeddings,
    })
}

/// The largest absolute difference between two sets of vectors of equal shape; `None` when the
/// shapes differ or a difference is not a number.
pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<f32> {
    if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.len() != y.len()) {
        return None;
    }
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.iter().zip(y) {
            let d = (p - q).abs();
            if d.is_nan() {
                return None;
            }
            worst = worst.max(d);
        }
    }
    Some(worst)
}

/// Embeds `texts` in batches of `batch`.
fn encode_all(encoder: &SentenceEncoder, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch.max(1)) {
        out.extend(encoder.embed(chunk)?);
    }
    Ok(out)
}

/// The warm-up embeddings and the rate of `rounds` timed passes.
fn time_encoder(
    encoder: &SentenceEncoder,
    texts: &[&str],
    config: &EmbedBenchConfig,
) -> Result<(Vec<Vec<f32>>, Rate)> {
    let first = encode_all(encoder, texts, config.batch)?;
    let t = Instant::now();
    for _ in 0..config.rounds {
        encode_all(encoder, texts, config.batch)?;
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok((
        first,
        Rate {
            sentences_per_s: (texts.len() * config.rounds) as f64 / seconds,
            seconds,
        },
    ))
}

/// Times `encoder` (and its int8 twin when `config.int8`) on `texts`, and the peer when given.
pub fn run(
    encoder: &SentenceEncoder,
    texts: &[String],
    config: &EmbedBenchConfig,
    device: &str,
    threads: usize,
    peer: Option<&SentenceTransformersPeer>,
) -> Result<EmbedBenchReport> {
    if texts.is_empty() {
        return Err(BenchError::Config {
            field: "texts",
            reason: "nothing to embed".into(),
        });
    }
    if config.batch == 0 || config.rounds == 0 {
        return Err(BenchError::Config {
            field: if config.batch == 0 { "batch" } else { "rounds" },
            reason: "must be at least 1".into(),
        });
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = encoder.tokenize(&refs)?.iter().map(Vec::len).sum();
    let (ours, f32_rate) = time_encoder(encoder, &refs, config)?;
    let int8 = if config.int8 {
        let quantized = encoder.clone().quantized()?;
        let (vectors, rate) = time_encoder(&quantized, &refs, config)?;
        let cosines: Vec<f32> = vectors
            .iter()
            .zip(&ours)
            .map(|(a, b)| cosine_similarity(a, b))
            .collect();
        Some(Int8Result {
            rate,
            cosine_mean: cosines.iter().sum::<f32>() / cosines.len() as f32,
            cosine_lowest: cosines.iter().copied().fold(f32::INFINITY, f32::min),
        })
    } else {
        None
    };
    let peer = match peer {
        Some(p) => {
            let run = p.run(texts, config.batch, config.rounds)?;
            let mut result = run.result;
            if !run.embeddings.is_empty() {
                result.max_abs_diff =
                    Some(max_abs_diff(&run.embeddings, &ours).ok_or_else(|| {
                        BenchError::PeerOutput {
                            script: peer_script("minilm_st.py"),
                            field: "embeddings".into(),
                            reason: format!(
                                "not comparable with ours ({} texts × {} dimensions)",
                                ours.len(),
                                encoder.dim()
                            ),
                        }
                    })?);
            }
            Some(result)
        }
        None => None,
    };
    Ok(EmbedBenchReport {
        device: device.to_string(),
        threads,
        sentences: texts.len(),
        tokens,
        batch: config.batch,
        rounds: config.rounds,
        f32: f32_rate,
        int8,
        peer,
    })
}

/// One golden text: the worst component difference one at a time and in the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenCase {
    /// The text.
    pub text: String,
    /// `max |ours − golden|` embedding it alone.
    pub single: f32,
    /// The same, embedding all golden texts in one call.
    pub batched: f32,
}

/// The encoder against sentence-transformers' golden embeddings (`minilm_embeddings.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenComparison {
    /// The golden file.
    pub path: PathBuf,
    /// Per text.
    pub cases: Vec<GoldenCase>,
    /// The worst difference over all texts and both ways.
    pub worst: f32,
    /// [`GOLDEN_TOLERANCE`].
    pub tolerance: f32,
}

impl GoldenComparison {
    /// Whether every component is within the tolerance.
    pub fn passed(&self) -> bool {
        self.worst <= self.tolerance
    }

    /// One line per text and the verdict.
    pub fn to_markdown(&self) -> String {
        let mut s =
            String::from("| text | max abs Δ, single | max abs Δ, batched |\n|---|---:|---:|\n");
        for c in &self.cases {
            let short: String = c.text.chars().take(40).collect();
            s.push_str(&format!(
                "| {} | {:.2e} | {:.2e} |\n",
                short.replace('|', "\\|"),
                c.single,
                c.batched
            ));
        }
        s.push_str(&format!(
            "\nworst max abs difference over {} golden texts {:.3e} (tolerance {:.0e}): {}\n",
            self.cases.len(),
            self.worst,
            self.tolerance,
            if self.passed() { "within" } else { "ABOVE" }
        ));
        s
    }
}

/// Reads the golden file's `cases` (each a `text` and its `embedding`); entries that are not
/// what they should be are [`BenchError::Input`] naming the case.
pub fn read_golden(path: &Path, dim: usize) -> Result<Vec<(String, Vec<f32>)>> {
    let bad = |reason: String| BenchError::Input {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let golden: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let cases = golden["cases"]
        .as_array()
        .ok_or_else(|| bad("no `cases` array".into()))?;
    if cases.is_empty() {
        return Err(bad("`cases` is empty".into()));
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let text = c["text"]
                .as_str()
                .ok_or_else(|| bad(format!("case {i}: no `text` string")))?;
            let values = c["embedding"]
                .as_array()
                .ok_or_else(|| bad(format!("case {i}: no `embedding` array")))?;
            if values.len() != dim {
                return Err(bad(format!(
                    "case {i}: embedding has {} values, the encoder {dim}",
                    values.len()
                )));
            }
            let embedding = values
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    x.as_f64()
                        .filter(|x| x.is_finite())
                        .map(|x| x as f32)
                        .ok_or_else(|| {
                            bad(format!("case {i}: embedding[{j}] = {x} is not a number"))
                        })
                })
                .collect::<Result<Vec<f32>>>()?;
            Ok((text.to_string(), embedding))
        })
        .collect()
}

/// Embeds the golden file's texts one at a time and all together and compares each with the
/// reference vector.
pub fn compare_golden(encoder: &SentenceEncoder, path: &Path) -> Result<GoldenComparison> {
    let golden = read_golden(path, encoder.dim())?;
    let texts: Vec<&str> = golden.iter().map(|(t, _)| t.as_str()).collect();
    let batched = encoder.embed(&texts)?;
    let diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            // A NaN difference must fail the comparison, not vanish in `max`.
            .fold(
                0.0f32,
                |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
            )
    };
    let mut cases = Vec::with_capacity(golden.len());
    for ((text, expected), together) in golden.iter().zip(&batched) {
        let single = encoder.embed(&[text.as_str()])?.remove(0);
        cases.push(GoldenCase {
            text: text.clone(),
            single: diff(&single, expected),
            batched: diff(together, expected),
        });
    }
    let worst = cases
        .iter()
        .map(|c| c.single.max(c.batched))
        .fold(0.0f32, f32::max);
    Ok(GoldenComparison {
        path: path.to_path_buf(),
        cases,
        worst,
        tolerance: GOLDEN_TOLERANCE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_sentences_are_fixed_and_varied() {
        let a = bench_sentences();
        assert_eq!(a.len(), 256);
        assert_eq!(a, bench_sentences());
        let words: Vec<usize> = a.iter().map(|s| s.split_whitespace().count()).collect();
        assert_eq!(
            (words.iter().min(), words.iter().max()),
            (Some(&7), Some(&39))
        );
        assert_eq!(
            a[0],
            "The hiking group questioned the proposal for a new bridge while most people were \
             still asleep. The orchestra announced a map of the northern coast."
        );
    }

    #[test]
    fn peer_output_errors_name_the_field() {
        let script = Path::new("minilm_st.py");
        let good = br#"{"sentences_per_s": 120.5, "seconds": 2.0, "threads": 2,
            "versions": {"torch": "2.5.0"}, "embeddings": [[0.5, -0.25], [1.0, 0.0]]}"#;
        let run = parse_peer_output(script, good, 2).unwrap();
        assert_eq!(run.result.rate.sentences_per_s, 120.5);
        assert_eq!(run.result.torch, "2.5.0");
        assert_eq!(run.embeddings[0], vec![0.5, -0.25]);
        let cases: [(&[u8], usize, &str); 5] = [
            (b"not json", 2, "(the whole output)"),
            (br#"{"seconds": 2.0}"#, 2, "sentences_per_s"),
            (
                br#"{"sentences_per_s": 1.0, "seconds": 2.0, "threads": 2, "versions": {"torch": "x"}, "embeddings": [[0.5]]}"#,
                2,
                "1 rows for 2 texts",
            ),
            (
                br#"{"sentences_per_s": 1.0, "seconds": 2.0, "threads": 2, "versions": {"torch": "x"}, "embeddings": [[0.5, "a"]]}"#,
                1,
                "embeddings[0][1]",
            ),
            (
                br#"{"sentences_per_s": 1.0, "seconds": 2.0, "threads": -1, "versions": {"torch": "x"}}"#,
                1,
                "threads",
            ),
        ];
        for (text, n, expect) in cases {
            let err = parse_peer_output(script, text, n).unwrap_err();
            assert!(err.to_string().contains(expect), "{err} lacks {expect}");
        }
    }

    #[test]
    fn max_abs_diff_refuses_shape_mismatch_and_nan() {
        let a = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        assert_eq!(
            max_abs_diff(&a, &[vec![1.5, 2.0], vec![3.0, 3.0]]),
            Some(1.0)
        );
        assert_eq!(max_abs_diff(&a, &[vec![1.0, 2.0]]), None);
        assert_eq!(max_abs_diff(&a, &[vec![1.0, 2.0], vec![3.0]]), None);
        assert_eq!(
            max_abs_diff(&a, &[vec![1.0, f32::NAN], vec![3.0, 4.0]]),
            None
        );
    }

    #[test]
    fn golden_file_errors_name_the_case() {
        let dir = std::env::temp_dir().join(format!("lm-bench-golden-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("{}", "no `cases` array"),
            (r#"{"cases": []}"#, "`cases` is empty"),
            (
                r#"{"cases": [{"text": "a", "embedding": [1.0, 2.0]}, {"embedding": [1.0, 2.0]}]}"#,
                "case 1: no `text`",
            ),
            (
                r#"{"cases": [{"text": "a", "embedding": [1.0]}]}"#,
                "case 0: embedding has 1 values",
            ),
            (
                r#"{"cases": [{"text": "a", "embedding": [1.0, null]}]}"#,
                "case 0: embedding[1]",
            ),
            ("[1, 2", "not JSON"),
        ];
        for (k, (json, expect)) in cases.iter().enumerate() {
            let path = dir.join(format!("golden{k}.json"));
            std::fs::write(&path, json).unwrap();
            let err = read_golden(&path, 2).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(expect) && text.contains(&format!("golden{k}.json")),
                "{text}"
            );
        }
        let ok = dir.join("ok.json");
        std::fs::write(
            &ok,
            r#"{"cases": [{"text": "a", "embedding": [1.0, -2.0]}]}"#,
        )
        .unwrap();
        assert_eq!(
            read_golden(&ok, 2).unwrap(),
            vec![("a".to_string(), vec![1.0, -2.0])]
        );
        let blank = dir.join("blank.txt");
        std::fs::write(&blank, "\n  \n").unwrap();
        assert!(matches!(read_texts(&blank), Err(BenchError::Input { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
