//! The quantized executor's mat-vec kernels (`lm::kernels::qdot`) per GGUF block type, in weight
//! bytes per second, beside the machine's measured read bandwidth
//! (`lm::kernels::bandwidth::read_bandwidth`, printed first): batch-1 decoding streams every
//! weight once per token, so this is the distance to the physical limit. The arithmetic limit
//! is printed next (`lm::kernels::peak::multiply_rates`: f32 multiply-accumulates per ns
//! through FMAs, and through `vdpbf16ps` where the CPU has it).
//!
//! One `[4096, 2048]` matrix per type (8–17 MB: past the caches), random valid blocks; one
//! activation row (decode) and 8 rows (the 8-row tile of prefill and batches), quantisation
//! excluded; each with 8-bit activations (`qdot …`, the integer tiles — for Q4_0, Q4_1 and
//! Q8_0 with 8 rows the AMX panels where the CPU has them, then again on the VNNI tile) and with
//! f32 activations (`qdot-f32 …`, `Precision::F32`: weights widened to f32 in registers).
//! Threads: the executor's pool (`LM_THREADS`).
// criterion_main! generates an undocumented `main`.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lm::kernels::qdot::{QActs, QType};
use lm::quantized::QMatrix;
use lm::quantized::matrix::product;

const ROWS: usize = 4096;
const COLS: usize = 2048;

fn matrix(ty: QType) -> QMatrix {
    matrix_of(ty, ROWS, COLS)
}

/// A `[rows, cols]` matrix of random valid blocks of `ty`.
fn matrix_of(ty: QType, rows_n: usize, cols: usize) -> QMatrix {
    let rb = ty.row_bytes(cols);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes: Vec<u8> = (0..rows_n * rb)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    // Finite scales: every f16 field gets 0x211f (≈ 0.01).
    let bb = ty.block_bytes();
    for blk in bytes.chunks_exact_mut(bb) {
        let at: &[usize] = match ty {
            QType::Q6K => &[208],
            QType::Q4_1 | QType::Q5_1 | QType::Q4K | QType::Q5K => &[0, 2],
            _ => &[0],
        };
        for &a in at {
            blk[a..a + 2].copy_from_slice(&0x211fu16.to_le_bytes());
        }
    }
    QMatrix::from_gguf("bench", ty.ggml(), &[cols as u64, rows_n as u64], &bytes).expect("matrix")
}

fn matvec(c: &mut Criterion) {
    let gbs = lm::kernels::bandwidth::read_bandwidth(512 << 20, 5);
    eprintln!(
        "memory read bandwidth ({} threads, 512 MiB): {gbs:.1} GB/s",
        lm::kernels::pool::global().threads()
    );
    // The compute limit of the f32-activation tiles (8 rows: bound by their FMAs), and the
    // bfloat16 dot product's rate beside it (why there are no bfloat16 tiles).
    let r = lm::kernels::peak::multiply_rates(1 << 22);
    eprintln!(
        "one thread: {:.1} f32 multiply-accumulates per ns through FMAs{}",
        r.fma_f32,
        r.dot_bf16
            .map(|b| format!(", {b:.1} through vdpbf16ps (bfloat16 pairs)"))
            .unwrap_or_default()
    );
    for (rows, exact) in [(1usize, false), (8, false), (1, true), (8, true)] {
        let kind = if exact { "qdot-f32" } else { "qdot" };
        let mut group = c.benchmark_group(format!("{kind} {ROWS}x{COLS}, {rows} row(s)"));
        for ty in [
            QType::Q4_0,
            QType::Q4_1,
            QType::Q5_0,
            QType::Q8_0,
            QType::Q4K,
            QType::Q5K,
            QType::Q6K,
        ] {
            let m = matrix(ty);
            let x: Vec<f32> = (0..rows * COLS).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut acts = QActs::default();
            if exact {
                acts.keep_f32(&x, rows, COLS);
            } else {
                acts.quantize(&x, rows, COLS);
            }
            let mut out = Vec::new();
            group.throughput(Throughput::Bytes(m.size_bytes() as u64));
            group.bench_function(format!("{ty:?}"), |b| {
                b.iter(|| product(&[&m], &x, &acts, &mut out))
            });
        }
        group.finish();
    }
    // Where the CPU has AMX, the 8-row products above of Q4_0, Q4_1 and Q8_0 ran on its
    // panels (`kernels::qdot::amx`); the same products on the 512-bit VNNI tile, to compare.
    if lm::kernels::qdot::amx_enabled() {
        use lm::kernels::qdot::{Tiles, use_tiles};
        use_tiles(Tiles::Vnni512);
        let mut group = c.benchmark_group(format!("qdot {ROWS}x{COLS}, 8 row(s), VNNI (no AMX)"));
        for ty in [QType::Q4_0, QType::Q4_1, QType::Q8_0] {
            let m = matrix(ty);
            let x: Vec<f32> = (0..8 * COLS).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut acts = QActs::default();
            acts.quantize(&x, 8, COLS);
            let mut out = Vec::new();
            group.throughput(Throughput::Bytes(m.size_bytes() as u64));
            group.bench_function(format!("{ty:?}"), |b| {
                b.iter(|| product(&[&m], &x, &acts, &mut out))
            });
        }
        group.finish();
        use_tiles(Tiles::Best);
    }
    // SmolLM2-135M's own products at batch 8 with f32 activations (the 8-row tiles of batched
    // decoding): gate/up (1,536 × 576), down (576 × 1,536), the tied head (49,152 × 576 Q8_0).
    let mut group = c.benchmark_group("qdot-f32 SmolLM2 shapes, 8 rows");
    for (name, ty, rows_n, cols) in [
        ("gate-up Q4_1 1536x576", QType::Q4_1, 1536, 576),
        ("down Q4_1 576x1536", QType::Q4_1, 576, 1536),
        ("head Q8_0 49152x576", QType::Q8_0, 49152, 576),
    ] {
        let m = matrix_of(ty, rows_n, cols);
        let x: Vec<f32> = (0..8 * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut acts = QActs::default();
        acts.keep_f32(&x, 8, cols);
        let mut out = Vec::new();
        group.throughput(Throughput::Bytes(m.size_bytes() as u64));
        group.bench_function(name, |b| b.iter(|| product(&[&m], &x, &acts, &mut out)));
    }
    group.finish();
}

criterion_group! {
    name = qdot;
    config = Criterion::default().sample_size(20);
    targets = matvec
}
criterion_main!(qdot);
