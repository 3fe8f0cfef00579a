//! CPU kernels behind the int8 MiniLM path (`lm::kernels::qgemm`, `lm::kernels`), at MiniLM's shapes.
// criterion_main! generates an undocumented `main`.
#![allow(missing_docs)]
//!
//! * `qgemm`: int8 `x · W + b` for a 93-row activation (one MMLU prompt) and a 2,976-row one
//!   (32 prompts) against the FFN up-projection `[384, 1536]`, activation quantisation included;
//!   the same products in f32 through burn's CPU backend for comparison.
//! * `attention_head`: one 32-wide head over 93 positions.
//! * `signal`: the token-level help signal (`lm::generate::sampling::signal`: argmax, entropy,
//!   max probability) over SmolLM2's 49,152 and Gemma 3's 262,144 logits — the policy layer's
//!   cost per guided-decoding step; and the greedy sampler's step on the same rows.
//!
//! Inputs are deterministic (sines), built outside the timed region. Throughput is reported in
//! multiply-accumulates (`Elements`).

use burn::tensor::{Device, Tensor, TensorData};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lm::kernels::qgemm::{QuantizedMatrix, QuantizedRows, qgemm};
use lm::kernels::{attention_head, attention_scratch};

fn values(len: usize, seed: f32) -> Vec<f32> {
    (0..len).map(|i| (i as f32 * 0.377 + seed).sin()).collect()
}

fn gemm(c: &mut Criterion) {
    let (k, n) = (384, 1536);
    let wf = values(k * n, 0.3);
    let w = QuantizedMatrix::from_f32(&wf, k, n).expect("weights");
    let bias = values(n, 1.0);
    let device = Device::flex();
    let w_t = Tensor::<2>::from_data(TensorData::new(wf.clone(), [k, n]), &device);
    let mut group = c.benchmark_group("gemm 384→1536");
    for m in [93usize, 2976] {
        let xf = values(m * k, 0.7);
        let mut out = vec![0.0; m * n];
        let mut rows = QuantizedRows::default();
        group.throughput(Throughput::Elements((m * k * n) as u64));
        group.bench_function(format!("int8 qgemm, {m} rows (quantise + multiply)"), |b| {
            b.iter(|| {
                rows.quantize(&xf, m, k).expect("rows");
                qgemm(&rows, &w, &bias, &mut out).expect("qgemm");
                std::hint::black_box(out[0])
            })
        });
        let x_t = Tensor::<2>::from_data(TensorData::new(xf.clone(), [m, k]), &device);
        group.bench_function(format!("f32 burn flex matmul, {m} rows"), |b| {
            b.iter(|| std::hint::black_box(x_t.clone().matmul(w_t.clone()).into_data()))
        });
    }
    group.finish();
}

fn attention(c: &mut Criterion) {
    let (len, dh, ld) = (93, 32, 1152);
    let qkv = values(len * ld, 0.1);
    let (a, s) = attention_scratch(len, dh);
    let (mut kv, mut scores, mut ctx) = (vec![0.0; a], vec![0.0; s], vec![0.0; len * dh]);
    let mut group = c.benchmark_group("attention");
    group.throughput(Throughput::Elements((2 * len * len * dh) as u64));
    group.bench_function("one head, 93 positions, width 32", |b| {
        b.iter(|| {
            attention_head(
                &qkv,
                ld,
                len,
                dh,
                [0, 384, 768],
                0.177,
                &mut kv,
                &mut scores,
                &mut ctx,
            );
            std::hint::black_box(ctx[0])
        })
    });
    group.finish();
}

fn signal(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal");
    for vocab in [49_152usize, 262_144] {
        // Logits spread like a model's: most far below the maximum, a few near it.
        let logits: Vec<f32> = values(vocab, 0.2)
            .iter()
            .enumerate()
            .map(|(i, v)| 4.0 * v - (i % 97) as f32 * 0.2)
            .collect();
        group.throughput(Throughput::Elements(vocab as u64));
        group.bench_function(format!("vocabulary {vocab}"), |b| {
            b.iter(|| std::hint::black_box(lm::generate::sampling::signal(&logits)))
        });
        let mut greedy =
            lm::generate::sampling::Sampler::new(lm::generate::sampling::SamplingConfig::greedy())
                .expect("greedy sampler");
        group.bench_function(
            format!("greedy sample (NaN check + signal), vocabulary {vocab}"),
            |b| b.iter(|| std::hint::black_box(greedy.sample(&logits).expect("finite logits"))),
        );
    }
    group.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(20);
    targets = gemm, attention, signal
}
criterion_main!(kernels);
