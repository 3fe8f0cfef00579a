//! Prefill and decode throughput of a [`CausalLm`]: batch × prompt-length cells, repeated, with
//! llama.cpp on the same GGUF interleaved for the ratio (the `lm_bench` example).
//!
//! A cell reads `batch` windows of `prompt_tokens` tokens in one forward pass (logits at the
//! last position, as generation does), then feeds one greedy token per sequence per step for
//! `decode_steps` steps through the KV cache; throughput counts the tokens of all sequences.
//! Prompts are consecutive windows of a corpus ([`bench_text`]: WikiText-2's test split, or a
//! built-in paragraph without the data folder). llama.cpp runs batch 1 only
//! (`crates/lm/peer/llama_cpp_bench.py`: llama-cpp-python on the same file, thread count, prompt
//! lengths and decode steps), right after our cells of the same length in each repetition.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{BenchError, Result, fmt_opt, median, peer_script, ratio, run_python};
use crate::nn::tensor_io::read_f32;
use crate::{CausalLm, LanguageModel, LogitsAt};

/// The paragraph repeated as the corpus when WikiText-2 is not there.
pub const FALLBACK_TEXT: &str = "The tower is 324 metres tall, about the same height as an 81-storey building, and the tallest structure in Paris. Its base is square, measuring 125 metres on each side. During its construction, the Eiffel Tower surpassed the Washington Monument to become the tallest man-made structure in the world. ";

/// Characters of the corpus that are tokenised (enough for 8 windows of 512 tokens).
pub const CORPUS_CHARS: usize = 400_000;

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputConfig {
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Prompt lengths in tokens.
    pub lengths: Vec<usize>,
    /// Decode steps per cell.
    pub decode: usize,
    /// Repetitions of every cell.
    pub reps: usize,
}

impl Default for ThroughputConfig {
    /// Batches 1 and 8, prompts of 128 and 512 tokens, 32 decode steps, one repetition.
    fn default() -> Self {
        Self {
            batches: vec![1, 8],
            lengths: vec![128, 512],
            decode: 32,
            reps: 1,
        }
    }
}

impl ThroughputConfig {
    /// Checks that there is something to measure: non-empty lists without zeros, `reps ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(BenchError::Config {
                field,
                reason: reason.into(),
            })
        };
        if self.batches.is_empty() || self.batches.contains(&0) {
            return bad("batches", "needs at least one batch size, none of them 0");
        }
        if self.lengths.is_empty() || self.lengths.contains(&0) {
            return bad(
                "lengths",
                "needs at least one prompt length, none of them 0",
            );
        }
        if self.reps == 0 {
            return bad("reps", "needs at least one repetition");
        }
        Ok(())
    }

    /// Tokens the corpus must hold: the largest batch of the longest prompts, plus one.
    pub fn corpus_tokens_needed(&self) -> usize {
        let n = self.lengths.iter().copied().max().unwrap_or(0);
        let b = self.batches.iter().copied().max().unwrap_or(1);
        n * b + 1
    }
}

/// One measured cell (ours or llama.cpp's: `llama_cpp_bench.py` writes the same fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputCell {
    /// Sequences decoded together.
    pub batch: usize,
    /// Tokens of each prompt.
    pub prompt_tokens: usize,
    /// Decode steps.
    pub decode_steps: usize,
    /// Seconds of the prefill pass.
    pub prefill_secs: f64,
    /// `batch × prompt_tokens / prefill_secs`.
    pub prefill_tok_per_s: f64,
    /// Seconds of all decode steps.
    pub decode_secs: f64,
    /// `batch × decode_steps / decode_secs`.
    pub decode_tok_per_s: f64,
}

/// Ours against llama.cpp at one prompt length (batch 1, medians over the repetitions).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerRatio {
    /// Prompt length.
    pub prompt_tokens: usize,
    /// Our median prefill tokens/s.
    pub prefill_ours: Option<f64>,
    /// llama.cpp's median prefill tokens/s.
    pub prefill_llama_cpp: Option<f64>,
    /// Our decode tokens/s.
    pub decode_ours: Option<f64>,
    /// llama.cpp's decode tokens/s.
    pub decode_llama_cpp: Option<f64>,
}

impl PeerRatio {
    /// Ours / llama.cpp, prefill.
    pub fn prefill_ratio(&self) -> Option<f64> {
        ratio(self.prefill_ours, self.prefill_llama_cpp)
    }

    /// Ours / llama.cpp, decode.
    pub fn decode_ratio(&self) -> Option<f64> {
        ratio(self.decode_ours, self.decode_llama_cpp)
    }
}

/// Batched decoding against batch 1 at one prompt length.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchRatio {
    /// Prompt length.
    pub prompt_tokens: usize,
    /// The batch size (> 1).
    pub batch: usize,
    /// Median decode tokens/s at this batch.
    pub decode: Option<f64>,
    /// Median decode tokens/s at batch 1.
    pub decode_batch1: Option<f64>,
    /// The median of the per-repetition ratios (the two cells of a ratio ran back to back).
    pub median_of_ratios: Option<f64>,
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// The model's name.
    pub model: String,
    /// The engine (`f32`, `quantized`, ...).
    pub engine: String,
    /// The device.
    pub device: String,
    /// Threads of the CPU kernels.
    pub threads: usize,
    /// Our cells, in the order measured (repetition, length, batch).
    pub cells: Vec<ThroughputCell>,
    /// llama.cpp's cells (batch 1), empty without the peer.
    pub llama_cpp: Vec<ThroughputCell>,
}

impl ThroughputReport {
    /// Ours against llama.cpp per prompt length (empty without peer cells).
    pub fn peer_ratios(&self) -> Vec<PeerRatio> {
        if self.llama_cpp.is_empty() {
            return Vec::new();
        }
        lengths(&self.cells)
            .into_iter()
            .map(|n| {
                let ours = || {
                    self.cells
                        .iter()
                        .filter(move |c| c.batch == 1 && c.prompt_tokens == n)
                };
                let theirs = || self.llama_cpp.iter().filter(move |c| c.prompt_tokens == n);
                PeerRatio {
                    prompt_tokens: n,
                    prefill_ours: median(ours().map(|c| c.prefill_tok_per_s)),
                    prefill_llama_cpp: median(theirs().map(|c| c.prefill_tok_per_s)),
                    decode_ours: median(ours().map(|c| c.decode_tok_per_s)),
                    decode_llama_cpp: median(theirs().map(|c| c.decode_tok_per_s)),
                }
            })
            .collect()
    }

    /// Batched decode throughput against batch 1, per prompt length and batch > 1 (empty when
    /// batch 1 or a larger batch was not measured).
    pub fn batched_ratios(&self) -> Vec<BatchRatio> {
        let mut batches: Vec<usize> = self.cells.iter().map(|c| c.batch).collect();
        batches.sort_unstable();
        batches.dedup();
        if !batches.contains(&1) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for n in lengths(&self.cells) {
            let rates = |b: usize| -> Vec<f64> {
                self.cells
                    .iter()
                    .filter(|c| c.batch == b && c.prompt_tokens == n)
                    .map(|c| c.decode_tok_per_s)
                    .collect()
            };
            let one = rates(1);
            for &b in batches.iter().filter(|&&b| b > 1) {
                let many = rates(b);
                out.push(BatchRatio {
                    prompt_tokens: n,
                    batch: b,
                    median_of_ratios: median(many.iter().zip(&one).map(|(m, o)| m / o)),
                    decode: median(many),
                    decode_batch1: median(one.iter().copied()),
                });
            }
        }
        out
    }

    /// The report as markdown: the cells, then the ratios that were measured.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "model {} on {}, {} engine, {} threads\n\n{}",
            self.model,
            self.device,
            self.engine,
            self.threads,
            cell_table_header()
        );
        for c in &self.cells {
            s.push_str(&cell_row(c));
        }
        let peer = self.peer_ratios();
        if !peer.is_empty() {
            s.push_str(
                "\nratio ours / llama.cpp (batch 1, medians over the interleaved repetitions):\n\n\
                 | prompt | prefill ours | prefill llama.cpp | ratio | decode ours | decode llama.cpp | ratio |\n\
                 |---:|---:|---:|---:|---:|---:|---:|\n",
            );
            for r in &peer {
                s.push_str(&format!(
                    "| {} | {} | {} | {}× | {} | {} | {}× |\n",
                    r.prompt_tokens,
                    fmt_opt(r.prefill_ours, 1),
                    fmt_opt(r.prefill_llama_cpp, 1),
                    fmt_opt(r.prefill_ratio(), 2),
                    fmt_opt(r.decode_ours, 1),
                    fmt_opt(r.decode_llama_cpp, 1),
                    fmt_opt(r.decode_ratio(), 2),
                ));
            }
        }
        let batched = self.batched_ratios();
        if !batched.is_empty() {
            s.push_str(
                "\nbatched decode throughput against batch 1 (medians over the repetitions):\n\n\
                 | prompt | batch | decode tok/s | batch-1 decode tok/s | ratio of medians | median of per-rep ratios |\n\
                 |---:|---:|---:|---:|---:|---:|\n",
            );
            for r in &batched {
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {}× | {}× |\n",
                    r.prompt_tokens,
                    r.batch,
                    fmt_opt(r.decode, 1),
                    fmt_opt(r.decode_batch1, 1),
                    fmt_opt(ratio(r.decode, r.decode_batch1), 2),
                    fmt_opt(r.median_of_ratios, 2),
                ));
            }
        }
        s
    }

    /// Writes the report as JSON (`model`, `engine`, `device`, `threads`, `cells`, `llama_cpp`).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        super::write_json(path, self)
    }
}

/// The header of the cell table (markdown).
pub fn cell_table_header() -> &'static str {
    "| batch | prompt | prefill tok/s | decode tok/s | prefill s | decode s |\n|---:|---:|---:|---:|---:|---:|\n"
}

/// One row of the cell table (markdown, with its newline).
pub fn cell_row(c: &ThroughputCell) -> String {
    format!(
        "| {} | {} | {:.1} | {:.1} | {:.3} | {:.3} |\n",
        c.batch,
        c.prompt_tokens,
        c.prefill_tok_per_s,
        c.decode_tok_per_s,
        c.prefill_secs,
        c.decode_secs
    )
}

/// The prompt lengths of `cells`, in first-seen order.
fn lengths(cells: &[ThroughputCell]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for c in cells {
        if !out.contains(&c.prompt_tokens) {
            out.push(c.prompt_tokens);
        }
    }
    out
}

/// The benchmark's text: the first [`CORPUS_CHARS`] characters of WikiText-2's test split
/// (`DATA/wikitext2/wiki.test.raw`) when `data_dir` is given and holds it, otherwise
/// [`FALLBACK_TEXT`] repeated; the second value says which. A file that is there but cannot be
/// read is an error, not a silent fallback.
pub fn bench_text(data_dir: Option<&Path>) -> Result<(String, &'static str)> {
    if let Some(path) = data_dir.map(|d| d.join("wikitext2/wiki.test.raw"))
        && path.is_file()
    {
        let text = std::fs::read_to_string(&path).map_err(|source| BenchError::Io {
            path: path.clone(),
            source,
        })?;
        let cut = text
            .char_indices()
            .nth(CORPUS_CHARS)
            .map_or(text.len(), |(i, _)| i);
        return Ok((text[..cut].to_string(), "WikiText-2 test"));
    }
    Ok((FALLBACK_TEXT.repeat(200), "built-in paragraph"))
}

/// Prefills `batch` consecutive windows of `prompt_tokens` tokens of `corpus`, then decodes
/// `decode` greedy steps; [`BenchError::Config`] when the corpus is too short.
pub fn measure_cell(
    model: &CausalLm,
    corpus: &[u32],
    batch: usize,
    prompt_tokens: usize,
    decode: usize,
) -> Result<ThroughputCell> {
    if batch == 0 || prompt_tokens == 0 || corpus.len() < batch * prompt_tokens {
        return Err(BenchError::Config {
            field: "corpus",
            reason: format!(
                "{} tokens cannot fill {batch} prompts of {prompt_tokens}",
                corpus.len()
            ),
        });
    }
    let rows: Vec<Vec<u32>> = corpus
        .chunks(prompt_tokens)
        .take(batch)
        .map(<[u32]>::to_vec)
        .collect();
    let v = model.vocab_size();
    let greedy = |logits: &[f32]| -> Vec<Vec<u32>> {
        logits
            .chunks(v)
            .map(|row| vec![crate::kernels::softmax::argmax_first(row).0 as u32])
            .collect()
    };
    let mut cache = model.new_cache(batch);
    let t = Instant::now();
    let logits = read_f32(model.forward(&rows, &mut cache, LogitsAt::Last)?)?;
    let prefill = t.elapsed().as_secs_f64();
    let mut next = greedy(&logits);
    let t = Instant::now();
    for _ in 0..decode {
        let logits = read_f32(model.forward(&next, &mut cache, LogitsAt::Last)?)?;
        next = greedy(&logits);
    }
    let dec = t.elapsed().as_secs_f64();
    Ok(ThroughputCell {
        batch,
        prompt_tokens,
        decode_steps: decode,
        prefill_secs: prefill,
        prefill_tok_per_s: (batch * prompt_tokens) as f64 / prefill,
        decode_secs: dec,
        decode_tok_per_s: (batch * decode) as f64 / dec,
    })
}

/// llama.cpp through llama-cpp-python (`crates/lm/peer/llama_cpp_bench.py`) on a GGUF file.
#[derive(Clone, Debug)]
pub struct LlamaCppPeer {
    /// The GGUF file (the one our model was loaded from).
    pub gguf: PathBuf,
    /// llama.cpp's threads (ours, for a fair ratio).
    pub threads: usize,
}

impl LlamaCppPeer {
    /// Runs the peer at batch 1 over `lengths` with `decode` steps; its cells.
    pub fn run(&self, lengths: &[usize], decode: usize) -> Result<Vec<ThroughputCell>> {
        let script = peer_script("llama_cpp_bench.py");
        let out = std::env::temp_dir().join(format!(
            "lm_bench_peer_{}_{}.json",
            std::process::id(),
            lengths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-")
        ));
        let lengths_arg = lengths
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        run_python(
            &script,
            &[
                "--gguf".into(),
                self.gguf.display().to_string(),
                "--lengths".into(),
                lengths_arg,
                "--decode".into(),
                decode.to_string(),
                "--json".into(),
                out.display().to_string(),
                "--threads".into(),
                self.threads.to_string(),
            ],
            &[],
        )?;
        let text = std::fs::read_to_string(&out).map_err(|source| BenchError::Io {
            path: out.clone(),
            source,
        });
        let _ = std::fs::remove_file(&out);
        parse_peer_cells(&script, &text?)
    }
}

/// Reads llama_cpp_bench.py's JSON list of cells.
fn parse_peer_cells(script: &Path, text: &str) -> Result<Vec<ThroughputCell>> {
    let cells: Vec<ThroughputCell> =
        serde_json::from_str(text).map_err(|e| BenchError::PeerOutput {
            script: script.to_path_buf(),
            field: "cells".into(),
            reason: e.to_string(),
        })?;
    for (i, c) in cells.iter().enumerate() {
        for (name, x) in [
            ("prefill_tok_per_s", c.prefill_tok_per_s),
            ("decode_tok_per_s", c.decode_tok_per_s),
        ] {
            if !(x.is_finite() && x > 0.0) {
                return Err(BenchError::PeerOutput {
                    script: script.to_path_buf(),
                    field: format!("[{i}].{name}"),
                    reason: format!("{x} is not a positive rate"),
                });
            }
        }
    }
    Ok(cells)
}

/// Measures every cell of `config` (`reps` × lengths × batches, after a short warm-up pass),
/// running `peer` at batch 1 right after our cells of each length; `on_cell(cell, is_peer)` sees
/// every cell as it is measured (for printing progress).
pub fn run(
    model: &CausalLm,
    corpus: &[u32],
    config: &ThroughputConfig,
    device: &str,
    peer: Option<&LlamaCppPeer>,
    mut on_cell: impl FnMut(&ThroughputCell, bool),
) -> Result<ThroughputReport> {
    config.validate()?;
    let need = config.corpus_tokens_needed();
    if corpus.len() < need {
        return Err(BenchError::Config {
            field: "corpus",
            reason: format!("{} tokens; the largest cell needs {need}", corpus.len()),
        });
    }
    // Warm-up (allocations, first touch of the weights).
    let mut cache = model.new_cache(1);
    model.forward(
        &[corpus[..16.min(corpus.len())].to_vec()],
        &mut cache,
        LogitsAt::Last,
    )?;
    let mut report = ThroughputReport {
        model: model.name().to_string(),
        engine: model.engine().name().to_string(),
        device: device.to_string(),
        threads: crate::kernels::pool::global().threads(),
        cells: Vec::new(),
        llama_cpp: Vec::new(),
    };
    for _ in 0..config.reps {
        for &n in &config.lengths {
            for &b in &config.batches {
                let cell = measure_cell(model, corpus, b, n, config.decode)?;
                on_cell(&cell, false);
                report.cells.push(cell);
            }
            if let Some(peer) = peer {
                for cell in peer.run(&[n], config.decode)? {
                    on_cell(&cell, true);
                    report.llama_cpp.push(cell);
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(batch: usize, n: usize, prefill: f64, decode: f64) -> ThroughputCell {
        ThroughputCell {
            batch,
            prompt_tokens: n,
            decode_steps: 32,
            prefill_secs: 1.0,
            prefill_tok_per_s: prefill,
            decode_secs: 1.0,
            decode_tok_per_s: decode,
        }
    }

    fn report(cells: Vec<ThroughputCell>, llama_cpp: Vec<ThroughputCell>) -> ThroughputReport {
        ThroughputReport {
            model: "m".into(),
            engine: "quantized".into(),
            device: "cpu".into(),
            threads: 2,
            cells,
            llama_cpp,
        }
    }

    #[test]
    fn peer_ratios_are_ratios_of_batch_1_medians_per_length() {
        let r = report(
            vec![
                cell(1, 128, 1000.0, 50.0),
                cell(8, 128, 3000.0, 200.0),
                cell(1, 128, 1200.0, 60.0),
                cell(1, 128, 1100.0, 55.0),
            ],
            vec![
                cell(1, 128, 500.0, 100.0),
                cell(1, 128, 400.0, 110.0),
                cell(1, 128, 550.0, 90.0),
            ],
        );
        let p = r.peer_ratios();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].prefill_ours, Some(1100.0));
        assert_eq!(p[0].prefill_llama_cpp, Some(500.0));
        assert_eq!(p[0].prefill_ratio(), Some(2.2));
        assert_eq!(p[0].decode_ratio(), Some(0.55));
        let md = r.to_markdown();
        assert!(
            md.contains("| 128 | 1100.0 | 500.0 | 2.20× | 55.0 | 100.0 | 0.55× |"),
            "{md}"
        );
        assert!(report(r.cells.clone(), vec![]).peer_ratios().is_empty());
    }

    #[test]
    fn a_length_the_peer_did_not_run_shows_a_dash_not_nan() {
        let r = report(
            vec![cell(1, 512, 900.0, 40.0)],
            vec![cell(1, 128, 1.0, 1.0)],
        );
        let md = r.to_markdown();
        assert!(
            md.contains("| 512 | 900.0 | – | –× | 40.0 | – | –× |"),
            "{md}"
        );
        assert!(!md.contains("NaN"), "{md}");
    }

    #[test]
    fn batched_ratios_need_batch_1() {
        assert!(
            report(vec![cell(8, 128, 1.0, 1.0)], vec![])
                .batched_ratios()
                .is_empty()
        );
    }

    #[test]
    fn config_errors_name_the_setting() {
        let mut c = ThroughputConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.corpus_tokens_needed(), 8 * 512 + 1);
        c.lengths = vec![128, 0];
        assert!(matches!(
            c.validate(),
            Err(BenchError::Config {
                field: "lengths",
                ..
            })
        ));
        c = ThroughputConfig {
            batches: vec![],
            ..ThroughputConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(BenchError::Config {
                field: "batches",
                ..
            })
        ));
        c = ThroughputConfig {
            reps: 0,
            ..ThroughputConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(BenchError::Config { field: "reps", .. })
        ));
    }

    #[test]
    fn peer_output_is_checked_field_by_field() {
        let script = Path::new("llama_cpp_bench.py");
        let good = r#"[{"batch": 1, "prompt_tokens": 128, "decode_steps": 32, "prefill_tok_per_s": 900.5,
            "decode_tok_per_s": 80.0, "prefill_secs": 0.14, "decode_secs": 0.4}]"#;
        let cells = parse_peer_cells(script, good).unwrap();
        assert_eq!(cells[0].prompt_tokens, 128);
        assert_eq!(cells[0].prefill_tok_per_s, 900.5);
        let err = parse_peer_cells(script, "[{\"batch\": 1}]").unwrap_err();
        assert!(err.to_string().contains("llama_cpp_bench.py"), "{err}");
        let zero = good.replace("80.0", "0.0");
        let err = parse_peer_cells(script, &zero).unwrap_err();
        assert!(err.to_string().contains("[0].decode_tok_per_s"), "{err}");
    }

    #[test]
    fn the_fallback_text_is_used_without_the_data_folder() {
        let (text, source) = bench_text(None).unwrap();
        assert_eq!(source, "built-in paragraph");
        assert!(text.starts_with(FALLBACK_TEXT));
        let (_, source) = bench_text(Some(Path::new("/no/such/folder"))).unwrap();
        assert_eq!(source, "built-in paragraph");
    }
}
