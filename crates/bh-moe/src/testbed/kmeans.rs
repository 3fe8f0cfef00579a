//! Balanced k-means: `n` points into `k` clusters of exactly `n / k` points each.
//!
//! Lloyd's iterations with a capacity-constrained assignment step: all `(point, centroid)`
//! squared distances are sorted ascending (ties: lower point, then lower cluster) and taken
//! greedily — a point goes to the nearest centroid that still has room. The greedy step is the
//! usual approximation of the balanced assignment problem (an exact one is a min-cost flow);
//! it is deterministic, and every cluster ends with exactly `n / k` points. Centroids start
//! from k-means++ (Arthur & Vassilvitskii 2007) seeded with ChaCha8; the loop stops when an
//! assignment repeats or after `iterations` rounds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, invalid};

/// The result of [`balanced_kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Cluster of each point.
    pub assignment: Vec<usize>,
    /// Sum of squared distances of the points to their cluster's centroid.
    pub inertia: f64,
    /// Assignment rounds run.
    pub iterations: usize,
}

impl KMeans {
    /// The members of each cluster, ascending.
    pub fn clusters(&self, k: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); k];
        for (i, &c) in self.assignment.iter().enumerate() {
            out[c].push(i);
        }
        out
    }
}

/// Dot product with eight independent accumulators (so that it vectorises).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Squared distances `‖p − c‖²` of every point to every centroid, `n × k` row-major.
fn distances(points: &[f32], centroids: &[f32], dim: usize) -> Vec<f32> {
    let pn: Vec<f32> = points.chunks_exact(dim).map(|p| dot(p, p)).collect();
    let cn: Vec<f32> = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let k = cn.len();
    let mut d = Vec::with_capacity(pn.len() * k);
    for (p, &pp) in points.chunks_exact(dim).zip(&pn) {
        for (c, &cc) in centroids.chunks_exact(dim).zip(&cn) {
            d.push((pp - 2.0 * dot(p, c) + cc).max(0.0));
        }
    }
    d
}

/// Balanced k-means of `points` (`n × dim`, row-major) into `k` clusters of `n / k`.
///
/// # Errors
/// [`crate::BhMoeError::InvalidParameter`] when `dim` or `k` is zero, `n` is not a positive
/// multiple of `k`, `points.len()` is not a multiple of `dim`, or a coordinate is not finite.
pub fn balanced_kmeans(
    points: &[f32],
    dim: usize,
    k: usize,
    iterations: usize,
    seed: u64,
) -> Result<KMeans> {
    if dim == 0 || k == 0 || !points.len().is_multiple_of(dim) {
        return Err(invalid(
            "points",
            format!(
                "{} values do not form rows of {dim} for {k} clusters",
                points.len()
            ),
        ));
    }
    let n = points.len() / dim;
    if n == 0 || !n.is_multiple_of(k) {
        return Err(invalid(
            "clusters",
            format!("{n} points do not split into {k} equal clusters"),
        ));
    }
    if let Some(i) = points.iter().position(|x| !x.is_finite()) {
        return Err(invalid(
            "points",
            format!("coordinate {} of point {} is not finite", i % dim, i / dim),
        ));
    }
    let cap = n / k;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // k-means++ initialisation.
    let mut centroids: Vec<f32> = Vec::with_capacity(k * dim);
    let first = rng.random_range(0..n);
    centroids.extend_from_slice(&points[first * dim..(first + 1) * dim]);
    let mut nearest: Vec<f32> = distances(points, &centroids, dim);
    while centroids.len() < k * dim {
        let total: f64 = nearest.iter().map(|&x| f64::from(x)).sum();
        let pick = if total > 0.0 {
            let mut u = rng.random::<f64>() * total;
            let mut chosen = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                u -= f64::from(d);
                if u <= 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        let c = points[pick * dim..(pick + 1) * dim].to_vec();
        let d_new = distances(points, &c, dim);
        for (m, d) in nearest.iter_mut().zip(d_new) {
            *m = m.min(d);
        }
        centroids.extend_from_slice(&c);
    }

    let mut assignment = vec![usize::MAX; n];
    let mut rounds = 0;
    let mut inertia = 0.0;
    for _ in 0..iterations.max(1) {
        rounds += 1;
        let d = distances(points, &centroids, dim);
        let mut order: Vec<u32> = (0..(n * k) as u32).collect();
        order.sort_unstable_by(|&a, &b| d[a as usize].total_cmp(&d[b as usize]).then(a.cmp(&b)));
        let mut next = vec![usize::MAX; n];
        let mut fill = vec![0usize; k];
        let mut placed = 0;
        inertia = 0.0;
        for idx in order {
            let (p, c) = (idx as usize / k, idx as usize % k);
            if next[p] == usize::MAX && fill[c] < cap {
                next[p] = c;
                fill[c] += 1;
                placed += 1;
                inertia += f64::from(d[idx as usize]);
                if placed == n {
                    break;
                }
            }
        }
        let stable = next == assignment;
        assignment = next;
        if stable {
            break;
        }
        // Centroids: the members' means.
        centroids.iter_mut().for_each(|x| *x = 0.0);
        for (p, &c) in assignment.iter().enumerate() {
            let row = &points[p * dim..(p + 1) * dim];
            for (acc, x) in centroids[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                *acc += x;
            }
        }
        let inv = 1.0 / cap as f32;
        centroids.iter_mut().for_each(|x| *x *= inv);
    }
    Ok(KMeans {
        assignment,
        inertia,
        iterations: rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_groups_are_recovered_exactly_and_balanced() {
        // Four well-separated groups of 6 points in 3-D, shuffled.
        let centres = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [0.0, 10.0, 0.0],
            [0.0, 0.0, 10.0],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut pts = Vec::new();
        let mut truth = Vec::new();
        for i in 0..24 {
            let g = (i * 7) % 4;
            truth.push(g);
            for c in centres[g] {
                pts.push(c + rng.random::<f32>() - 0.5);
            }
        }
        let km = balanced_kmeans(&pts, 3, 4, 20, 1).unwrap();
        let clusters = km.clusters(4);
        assert!(clusters.iter().all(|c| c.len() == 6));
        for c in &clusters {
            assert!(c.iter().all(|&p| truth[p] == truth[c[0]]), "{clusters:?}");
        }
        // Seeded: the same seed gives the same result.
        assert_eq!(km, balanced_kmeans(&pts, 3, 4, 20, 1).unwrap());
    }

    #[test]
    fn capacity_overrides_proximity() {
        // Five points near 0 and one near 10, two clusters of 3: balance forces two near-0
        // points into the far cluster.
        let pts = [0.0, 0.1, 0.2, 0.3, 0.4, 10.0];
        let km = balanced_kmeans(&pts, 1, 2, 10, 3).unwrap();
        assert!(km.clusters(2).iter().all(|c| c.len() == 3));
        assert!(balanced_kmeans(&pts, 1, 4, 10, 3).is_err());
        assert!(balanced_kmeans(&[0.0, f32::NAN], 1, 1, 10, 3).is_err());
    }
}
