//! A memory-bandwidth probe: how fast this machine streams a buffer far larger than its
//! caches, with the threads of the [`super::pool`] — the physical limit that batch-1 decoding
//! (one pass over every weight per token) runs against.

#![deny(unsafe_code)]

use std::time::Instant;

/// Read bandwidth in GB/s (10⁹ bytes per second): the best of `reps` passes over a buffer of
/// `bytes` bytes (rounded down to whole 8-byte words), each thread summing its contiguous
/// part as u64 words (the sum is kept, so the reads cannot be optimised away).
pub fn read_bandwidth(bytes: usize, reps: usize) -> f64 {
    let words: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let pool = super::pool::global();
    let k = pool.threads();
    let per = words.len().div_ceil(k).max(1);
    let sums: Vec<std::sync::atomic::AtomicU64> = (0..k)
        .map(|_| std::sync::atomic::AtomicU64::new(0))
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        pool.run(&|i, n| {
            for j in (i..k).step_by(n) {
                let part = words.chunks(per).nth(j).unwrap_or(&[]);
                let mut acc = [0u64; 4];
                for c in part.chunks_exact(4) {
                    for (a, &w) in acc.iter_mut().zip(c) {
                        *a = a.wrapping_add(w);
                    }
                }
                let s = acc.iter().fold(0u64, |a, &b| a.wrapping_add(b));
                sums[j].fetch_add(s, std::sync::atomic::Ordering::Relaxed);
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&sums);
    (words.len() * 8) as f64 / best / 1e9
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_reports_a_positive_finite_rate() {
        let gbs = super::read_bandwidth(1 << 20, 2);
        assert!(gbs.is_finite() && gbs > 0.0, "{gbs}");
    }
}
