//! The portable (non-SIMD) kernels against the AVX-512 ones on the same machine: the int8 sums
//! are identical, the f32 results agree to rounding (the SIMD versions fuse multiply-adds), and
//! the int8 MiniLM embeddings of both are as close to the f32 model's as each other (rounding
//! differences move a few activations across a quantisation step, so the two int8 runs differ by
//! up to ~5e-4 in cosine). One test, because switching SIMD off
//! (`lm::kernels::set_simd_enabled`) is process-wide. On a CPU without AVX-512 both runs are
//! portable and the comparison is trivially exact.

mod common;

use lm::kernels::qgemm::{QuantizedMatrix, QuantizedRows, qgemm};
use lm::kernels::{attention_head, attention_scratch, set_simd_enabled};

fn data(len: usize, seed: f32) -> Vec<f32> {
    (0..len)
        .map(|i| (i as f32 * 0.613 + seed).sin() * 1.5)
        .collect()
}

struct Outputs {
    gemm: Vec<f32>,
    attention: Vec<f32>,
    embeddings: Option<Vec<Vec<f32>>>,
}

fn run_all(encoder: Option<&lm::SentenceEncoder>, texts: &[&str]) -> Outputs {
    let (m, k, n) = (37, 100, 130);
    let x = QuantizedRows::from_f32(&data(m * k, 0.2), m, k).unwrap();
    let w = QuantizedMatrix::from_f32(&data(k * n, 1.1), k, n).unwrap();
    let mut gemm = vec![0.0; m * n];
    qgemm(&x, &w, &data(n, 3.0), &mut gemm).unwrap();
    let (len, dh, ld) = (45, 32, 96);
    let qkv = data(len * ld, 0.7);
    let (a, b) = attention_scratch(len, dh);
    let (mut kv, mut sc, mut attention) = (vec![0.0; a], vec![0.0; b], vec![0.0; len * dh]);
    attention_head(
        &qkv,
        ld,
        len,
        dh,
        [0, 32, 64],
        0.18,
        &mut kv,
        &mut sc,
        &mut attention,
    );
    Outputs {
        gemm,
        attention,
        embeddings: encoder.map(|e| e.embed(texts).unwrap()),
    }
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn portable_kernels_match_simd_kernels() {
    let exact = common::minilm_dir_or_skip()
        .map(|dir| lm::SentenceEncoder::from_dir(dir, &burn::tensor::Device::flex()).unwrap());
    let encoder = exact.as_ref().map(|e| e.clone().quantized().unwrap());
    let texts = [
        "What is the capital of France?",
        "Write a Python function that returns the n-th Fibonacci number, with a docstring.",
        "",
    ];
    let simd = run_all(encoder.as_ref(), &texts);
    set_simd_enabled(false);
    let portable = run_all(encoder.as_ref(), &texts);
    set_simd_enabled(true);
    let (g, a) = (
        max_rel(&simd.gemm, &portable.gemm),
        max_rel(&simd.attention, &portable.attention),
    );
    eprintln!("portable vs SIMD: qgemm max rel {g:.1e}, attention max rel {a:.1e}");
    assert!(g < 1e-5, "qgemm {g}");
    assert!(a < 1e-5, "attention {a}");
    if let (Some(s), Some(p), Some(e)) = (simd.embeddings, portable.embeddings, exact) {
        let reference = e.embed(&texts).unwrap();
        let cos = |x: &[f32], y: &[f32]| -> f32 { x.iter().zip(y).map(|(a, b)| a * b).sum() };
        for ((x, y), r) in s.iter().zip(&p).zip(&reference) {
            let (both, simd_f32, port_f32) = (cos(x, y), cos(x, r), cos(y, r));
            eprintln!(
                "int8 MiniLM cosine: portable vs SIMD {both:.6}, SIMD vs f32 {simd_f32:.6}, portable vs f32 {port_f32:.6}"
            );
            assert!(both > 0.999, "portable vs SIMD cosine {both}");
            assert!(simd_f32 > 0.99 && port_f32 > 0.99);
        }
    }
}
