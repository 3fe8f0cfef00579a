//! Ridge regression from sufficient statistics: `W = argmin ‖X Wᵀ − Y‖² + λ ‖W‖²`, with
//! `XᵀX`, `XᵀY`, `Σy` and `Σy²` accumulated batch by batch in f64 and solved by Cholesky.

use crate::error::{Result, invalid};

/// Accumulated statistics of a multi-output linear regression (`d` inputs, `m` outputs).
#[derive(Debug, Clone)]
pub struct RidgeStats {
    d: usize,
    m: usize,
    xtx: Vec<f64>,
    xty: Vec<f64>,
    y_sum: Vec<f64>,
    y_sq: Vec<f64>,
    rows: usize,
}

/// A solved regression.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeFit {
    /// Weights, `m × d` row-major (output `j`'s weights are row `j`).
    pub weights: Vec<f32>,
    /// Coefficient of determination of each output on the accumulated rows.
    pub r2: Vec<f64>,
    /// Rows the fit saw.
    pub rows: usize,
}

impl RidgeStats {
    /// Empty statistics for `d` inputs and `m` outputs.
    pub fn new(d: usize, m: usize) -> Self {
        Self {
            d,
            m,
            xtx: vec![0.0; d * d],
            xty: vec![0.0; d * m],
            y_sum: vec![0.0; m],
            y_sq: vec![0.0; m],
            rows: 0,
        }
    }

    /// Adds a batch given its products: `xtx` (`d × d`), `xty` (`d × m`), and the targets
    /// `y` (`rows × m`, row-major) for the output moments.
    ///
    /// # Errors
    /// Sizes that do not fit.
    pub fn add_products(&mut self, xtx: &[f32], xty: &[f32], y: &[f32]) -> Result<()> {
        if xtx.len() != self.d * self.d
            || xty.len() != self.d * self.m
            || !y.len().is_multiple_of(self.m)
        {
            return Err(invalid(
                "ridge batch",
                format!(
                    "XᵀX {} (want {}), XᵀY {} (want {}), Y {} values for {} outputs",
                    xtx.len(),
                    self.d * self.d,
                    xty.len(),
                    self.d * self.m,
                    y.len(),
                    self.m
                ),
            ));
        }
        for (a, &b) in self.xtx.iter_mut().zip(xtx) {
            *a += f64::from(b);
        }
        for (a, &b) in self.xty.iter_mut().zip(xty) {
            *a += f64::from(b);
        }
        for row in y.chunks_exact(self.m) {
            for (j, &v) in row.iter().enumerate() {
                self.y_sum[j] += f64::from(v);
                self.y_sq[j] += f64::from(v) * f64::from(v);
            }
        }
        self.rows += y.len() / self.m;
        Ok(())
    }

    /// Adds a batch of raw rows: `x` (`rows × d`) and `y` (`rows × m`).
    ///
    /// # Errors
    /// Sizes that do not fit.
    pub fn add_rows(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        let (d, m) = (self.d, self.m);
        if !x.len().is_multiple_of(d) || !y.len().is_multiple_of(m) || x.len() / d != y.len() / m {
            return Err(invalid("ridge batch", "x and y have different row counts"));
        }
        let mut xtx = vec![0f32; d * d];
        let mut xty = vec![0f32; d * m];
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact(m)) {
            for a in 0..d {
                for b in 0..d {
                    xtx[a * d + b] += xr[a] * xr[b];
                }
                for j in 0..m {
                    xty[a * m + j] += xr[a] * yr[j];
                }
            }
        }
        self.add_products(&xtx, &xty, y)
    }

    /// Rows accumulated so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Solves `(XᵀX + λ' I) W = XᵀY` with `λ' = ridge · trace(XᵀX) / d` (a scale-free ridge).
    ///
    /// # Errors
    /// No rows, a negative ridge, or a system that is not positive definite (e.g. ridge 0 with
    /// collinear inputs).
    pub fn solve(&self, ridge: f64) -> Result<RidgeFit> {
        if self.rows == 0 {
            return Err(invalid("ridge", "no rows were accumulated"));
        }
        // Negated so that NaN is refused too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(ridge >= 0.0) {
            return Err(invalid("ridge", format!("{ridge} must be ≥ 0")));
        }
        let d = self.d;
        let trace: f64 = (0..d).map(|i| self.xtx[i * d + i]).sum();
        let lambda = ridge * trace / d as f64;
        let mut a = self.xtx.clone();
        for i in 0..d {
            a[i * d + i] += lambda;
        }
        // Cholesky A = L Lᵀ (lower, in place).
        for j in 0..d {
            let mut s = a[j * d + j];
            for k in 0..j {
                s -= a[j * d + k] * a[j * d + k];
            }
            if s <= 0.0 || !s.is_finite() {
                return Err(invalid(
                    "ridge",
                    format!("XᵀX + λI is not positive definite at pivot {j} (raise the ridge)"),
                ));
            }
            let l = s.sqrt();
            a[j * d + j] = l;
            for i in j + 1..d {
                let mut s = a[i * d + j];
                for k in 0..j {
                    s -= a[i * d + k] * a[j * d + k];
                }
                a[i * d + j] = s / l;
            }
        }
        let m = self.m;
        let mut weights = vec![0f32; m * d];
        let mut r2 = Vec::with_capacity(m);
        let n = self.rows as f64;
        for j in 0..m {
            // Forward then backward substitution for column j of XᵀY.
            let mut z: Vec<f64> = (0..d).map(|i| self.xty[i * m + j]).collect();
            for i in 0..d {
                let mut s = z[i];
                for k in 0..i {
                    s -= a[i * d + k] * z[k];
                }
                z[i] = s / a[i * d + i];
            }
            for i in (0..d).rev() {
                let mut s = z[i];
                for k in i + 1..d {
                    s -= a[k * d + i] * z[k];
                }
                z[i] = s / a[i * d + i];
            }
            // RSS = Σy² − 2 wᵀXᵀy + wᵀXᵀXw.
            let mut wxtx_w = 0.0;
            for p in 0..d {
                let row: f64 = (0..d).map(|q| self.xtx[p * d + q] * z[q]).sum();
                wxtx_w += z[p] * row;
            }
            let wxty: f64 = (0..d).map(|i| z[i] * self.xty[i * m + j]).sum();
            let rss = (self.y_sq[j] - 2.0 * wxty + wxtx_w).max(0.0);
            let tss = self.y_sq[j] - self.y_sum[j] * self.y_sum[j] / n;
            r2.push(if tss > 0.0 { 1.0 - rss / tss } else { 0.0 });
            for (i, w) in z.iter().enumerate() {
                weights[j * d + i] = *w as f32;
            }
        }
        Ok(RidgeFit {
            weights,
            r2,
            rows: self.rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn recovers_a_known_linear_map() {
        // y = W x with W known, no noise: ridge → 0 recovers W and R² = 1.
        let (d, m, n) = (5, 3, 200);
        let w_true: Vec<f32> = (0..m * d).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let y: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|xr| {
                (0..m)
                    .map(|j| (0..d).map(|i| w_true[j * d + i] * xr[i]).sum::<f32>())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut s = RidgeStats::new(d, m);
        // Two batches give the same statistics as one.
        s.add_rows(&x[..100 * d], &y[..100 * m]).unwrap();
        s.add_rows(&x[100 * d..], &y[100 * m..]).unwrap();
        let fit = s.solve(1e-9).unwrap();
        for (a, b) in fit.weights.iter().zip(&w_true) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        assert!(fit.r2.iter().all(|&r| r > 0.9999), "{:?}", fit.r2);
        // A large ridge shrinks the weights towards zero.
        let shrunk = s.solve(1e3).unwrap();
        assert!(shrunk.weights.iter().map(|w| w.abs()).sum::<f32>() < 0.05);
        assert!(RidgeStats::new(2, 1).solve(0.1).is_err());
    }
}
