//! Experiment (issue 10's next step): Q4_1 products with **f32 activations** — the weight block
//! is widened to f32 in registers and multiplied by the unrounded activations, so the result
//! equals the f32 engine's up to summation order — measured against the 8-bit-activation
//! kernels' rates in `docs/lm.md`.
//!
//! ```text
//! rustc --edition 2024 -O -C target-cpu=native scripts/experiments/f32_activations_q4_1.rs -o /tmp/f32acts
//! /tmp/f32acts            # 46,080 rows × 576 (16.6 MB of Q4_1), 1 and 2 threads
//! /tmp/f32acts 221184 576 # ~80 MB: past the caches, as a whole SmolLM2 decode step
//! ```
//!
//! Each kernel is checked against a scalar twin on the first 100 row groups before timing.
//! Needs AVX-512 (F, BW, VL) and F16C; exits with a message otherwise.
use std::arch::x86_64::*;
use std::time::Instant;

const QK: usize = 32;
const BB: usize = 20; // d f16, m f16, 16 bytes

fn f16_to_f32(h: u16) -> f32 {
    let s = ((h >> 15) as u32) << 31;
    let e = ((h >> 10) & 0x1f) as u32;
    let m = (h & 0x3ff) as u32;
    if e == 0 {
        let v = m as f32 * (1.0 / 16777216.0);
        return if s != 0 { -v } else { v };
    }
    f32::from_bits(s | ((e + 112) << 23) | (m << 13))
}
/// f32 → f16 by truncation (enough to make test scales).
fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let s = ((b >> 16) & 0x8000) as u16;
    let e = ((b >> 23) & 0xff) as i32 - 112;
    if e <= 0 {
        return s;
    }
    s | ((e as u16) << 10) | (((b >> 13) & 0x3ff) as u16)
}

fn portable_row(row: &[u8], x: &[f32], sx: &[f32]) -> f32 {
    let mut acc = 0f32;
    for (b, blk) in row.chunks_exact(BB).enumerate() {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let m = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
        let mut s = 0f32;
        for i in 0..16 {
            s += (blk[4 + i] & 15) as f32 * x[b * QK + i]
                + (blk[4 + i] >> 4) as f32 * x[b * QK + 16 + i];
        }
        acc += d * s + m * sx[b];
    }
    acc
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn rows4(rows: [&[u8]; 4], x: &[f32], sx: &[f32], out: &mut [f32; 4]) {
    unsafe {
        let nb = x.len() / QK;
        let mask = _mm_set1_epi8(15);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut macc = [0f32; 4];
        for b in 0..nb {
            let x0 = _mm512_loadu_ps(x.as_ptr().add(b * QK));
            let x1 = _mm512_loadu_ps(x.as_ptr().add(b * QK + 16));
            let s = *sx.get_unchecked(b);
            for r in 0..4 {
                let p = rows[r].as_ptr().add(b * BB);
                let dm = _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
                let q = _mm_loadu_si128(p.add(4) as *const __m128i);
                let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask)));
                let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                    _mm_srli_epi16(q, 4),
                    mask,
                )));
                let v = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
                let d = _mm512_broadcastss_ps(dm);
                acc[r] = _mm512_fmadd_ps(v, d, acc[r]);
                macc[r] += _mm_cvtss_f32(_mm_movehdup_ps(dm)) * s;
            }
        }
        for r in 0..4 {
            out[r] = _mm512_reduce_add_ps(acc[r]) + macc[r];
        }
    }
}

// 8 activation rows (prefill) against 1 weight row: dequantise once, 16 FMAs.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn tile8(row: &[u8], xs: &[f32], k: usize, out: &mut [f32; 8]) {
    unsafe {
        let nb = k / QK;
        let mask = _mm_set1_epi8(15);
        let mut acc = [_mm512_setzero_ps(); 8];
        for b in 0..nb {
            let p = row.as_ptr().add(b * BB);
            let dm = _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
            let d = _mm512_broadcastss_ps(dm);
            let m = _mm512_broadcastss_ps(_mm_movehdup_ps(dm));
            let q = _mm_loadu_si128(p.add(4) as *const __m128i);
            let w0 = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask))),
                d,
                m,
            );
            let w1 = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                    _mm_srli_epi16(q, 4),
                    mask,
                ))),
                d,
                m,
            );
            for r in 0..8 {
                let xp = xs.as_ptr().add(r * k + b * QK);
                acc[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xp), acc[r]);
                acc[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xp.add(16)), acc[r]);
            }
        }
        for r in 0..8 {
            out[r] = _mm512_reduce_add_ps(acc[r]);
        }
    }
}

fn main() {
    if !(is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("f16c"))
    {
        eprintln!("this experiment needs AVX-512 F/BW/VL and F16C");
        std::process::exit(2);
    }
    let (rows, k) = (1536 * 30 / 4 * 4, 576); // ~ SmolLM2-sized working set per call
    let (rows, k) = (
        std::env::args()
            .nth(1)
            .map(|s| s.parse().unwrap())
            .unwrap_or(rows),
        std::env::args()
            .nth(2)
            .map(|s| s.parse().unwrap())
            .unwrap_or(k),
    );
    let nb = k / QK;
    let mut seed = 1u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut w = vec![0u8; rows * nb * BB];
    for blk in w.chunks_exact_mut(BB) {
        let d = f32_to_f16(0.01 + (rnd() % 100) as f32 * 1e-4).to_le_bytes();
        let m = f32_to_f16(-0.05 - (rnd() % 100) as f32 * 1e-4).to_le_bytes();
        blk[0] = d[0];
        blk[1] = d[1];
        blk[2] = m[0];
        blk[3] = m[1];
        for i in 4..BB {
            blk[i] = rnd() as u8;
        }
    }
    let xs: Vec<f32> = (0..8 * k)
        .map(|_| (rnd() % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let x = &xs[..k];
    let sx: Vec<f32> = x.chunks_exact(QK).map(|c| c.iter().sum()).collect();
    let rb = nb * BB;
    let mut out = vec![0f32; rows];
    // check
    for r in (0..rows).step_by(4).take(100) {
        let mut o = [0f32; 4];
        unsafe {
            rows4(
                [
                    &w[r * rb..][..rb],
                    &w[(r + 1) * rb..][..rb],
                    &w[(r + 2) * rb..][..rb],
                    &w[(r + 3) * rb..][..rb],
                ],
                x,
                &sx,
                &mut o,
            )
        };
        for j in 0..4 {
            let p = portable_row(&w[(r + j) * rb..][..rb], x, &sx);
            assert!((p - o[j]).abs() <= 1e-4 * p.abs().max(1.0), "{p} {}", o[j]);
        }
        let mut o8 = [0f32; 8];
        unsafe { tile8(&w[r * rb..][..rb], &xs, k, &mut o8) };
        for t in 0..8 {
            let sxt: Vec<f32> = xs[t * k..(t + 1) * k]
                .chunks_exact(QK)
                .map(|c| c.iter().sum())
                .collect();
            let p = portable_row(&w[r * rb..][..rb], &xs[t * k..(t + 1) * k], &sxt);
            assert!(
                (p - o8[t]).abs() <= 1e-3 * p.abs().max(1.0),
                "tile {p} {}",
                o8[t]
            );
        }
    }
    let bytes = w.len() as f64;
    let gib = |secs: f64| bytes / secs / 1073741824.0;
    for threads in [1, 2] {
        for _ in 0..3 {
            let s = timed(&mut out, threads, |lo, dst| matvec(&w, rb, x, &sx, lo, dst));
            let s8 = timed(&mut out, threads, |lo, dst| {
                tile_pass(&w, rb, &xs, k, lo, dst)
            });
            println!(
                "{threads} thread(s): 1-row f32-act Q4_1 {:.2} GiB/s ({:.2} GMAC/s); 8-row tile {:.2} GiB/s ({:.1} GMAC/s)  [{:.1} MB]",
                gib(s),
                (rows * k) as f64 / s / 1e9,
                gib(s8),
                (8 * rows * k) as f64 / s8 / 1e9,
                bytes / 1e6
            );
        }
    }
    std::hint::black_box(&out);
}

/// Seconds per pass of `pass` over all rows (mean of 20), the rows split into `threads`
/// contiguous parts; `pass(first_row, dst)` fills `dst`.
fn timed(out: &mut [f32], threads: usize, pass: impl Fn(usize, &mut [f32]) + Sync) -> f64 {
    let reps = 20;
    let part = out.len().div_ceil(threads).div_ceil(4) * 4;
    let t0 = Instant::now();
    for _ in 0..reps {
        std::thread::scope(|sc| {
            for (i, dst) in out.chunks_mut(part).enumerate() {
                let pass = &pass;
                sc.spawn(move || pass(i * part, dst));
            }
        });
    }
    t0.elapsed().as_secs_f64() / reps as f64
}

/// One activation row against weight rows `lo..lo + dst.len()` (4 at a time, the tail scalar).
fn matvec(w: &[u8], rb: usize, x: &[f32], sx: &[f32], lo: usize, dst: &mut [f32]) {
    let row = |r: usize| &w[r * rb..][..rb];
    let mut quads = dst.chunks_exact_mut(4);
    for (j, o) in quads.by_ref().enumerate() {
        let r = lo + 4 * j;
        let mut q = [0f32; 4];
        unsafe { rows4([row(r), row(r + 1), row(r + 2), row(r + 3)], x, sx, &mut q) };
        o.copy_from_slice(&q);
    }
    let done = dst.len() / 4 * 4;
    for (j, o) in dst[done..].iter_mut().enumerate() {
        *o = portable_row(row(lo + done + j), x, sx);
    }
}

/// The 8-row tile over weight rows `lo..lo + dst.len()` (two of the eight sums kept).
fn tile_pass(w: &[u8], rb: usize, xs: &[f32], k: usize, lo: usize, dst: &mut [f32]) {
    for (j, o) in dst.iter_mut().enumerate() {
        let mut o8 = [0f32; 8];
        unsafe { tile8(&w[(lo + j) * rb..][..rb], xs, k, &mut o8) };
        *o = o8[0] + o8[7];
    }
}
