//! Principal components by power iteration on the covariance (two components are all a 2-D
//! scatter needs; deterministic, no linear-algebra dependency).

use super::{InspectError, Result};

/// A fitted 2-D projection: `y = (x − mean)·[u1 u2]`.
#[derive(Debug, Clone)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// The first two principal directions (unit, orthogonal).
    pub axes: [Vec<f64>; 2],
    /// Variance along each axis.
    pub variances: [f64; 2],
    /// Share of the total variance the two axes carry (1 for data of rank ≤ 2).
    pub explained: f32,
}

const ITERS: usize = 200;

impl Pca {
    /// Fits rows of width `d` (`x.len()` a multiple of `d`, at least one row).
    pub fn fit(x: &[f32], d: usize) -> Result<Self> {
        if d == 0 || x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(InspectError::Input(format!(
                "PCA needs whole rows of width {d}, got {} values",
                x.len()
            )));
        }
        let n = x.len() / d;
        let mut mean = vec![0.0_f64; d];
        for row in x.chunks_exact(d) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0_f64; d * d];
        for row in x.chunks_exact(d) {
            let c: Vec<f64> = row
                .iter()
                .zip(&mean)
                .map(|(&v, m)| f64::from(v) - m)
                .collect();
            for a in 0..d {
                for b in 0..d {
                    cov[a * d + b] += c[a] * c[b];
                }
            }
        }
        cov.iter_mut().for_each(|v| *v /= n as f64);
        let total: f64 = (0..d).map(|a| cov[a * d + a]).sum();
        let (u1, l1) = top_eigen(&cov, d, None);
        let (u2, l2) = top_eigen(&cov, d, Some(&u1));
        let explained = if total > 0.0 {
            ((l1 + l2) / total).clamp(0.0, 1.0) as f32
        } else {
            1.0
        };
        Ok(Self {
            mean,
            axes: [u1, u2],
            variances: [l1, l2],
            explained,
        })
    }

    /// Projects rows of the fitted width.
    pub fn project_rows(&self, x: &[f32]) -> Vec<[f32; 2]> {
        let d = self.mean.len();
        x.chunks_exact(d)
            .map(|row| {
                let mut y = [0.0_f64; 2];
                for (k, ax) in self.axes.iter().enumerate() {
                    y[k] = row
                        .iter()
                        .zip(&self.mean)
                        .zip(ax)
                        .map(|((&v, m), a)| (f64::from(v) - m) * a)
                        .sum();
                }
                [y[0] as f32, y[1] as f32]
            })
            .collect()
    }
}

/// Leading eigenvector and eigenvalue of the symmetric PSD `cov`, orthogonal to `skip`.
fn top_eigen(cov: &[f64], d: usize, skip: Option<&[f64]>) -> (Vec<f64>, f64) {
    // A fixed, non-symmetric start so no axis is orthogonal to it by construction.
    let mut v: Vec<f64> = (0..d).map(|i| 1.0 + (i as f64 * 0.618).fract()).collect();
    let deflate = |v: &mut Vec<f64>| {
        if let Some(u) = skip {
            let p: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
        }
    };
    let normalize = |v: &mut Vec<f64>| -> f64 {
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|a| *a /= n);
        }
        n
    };
    deflate(&mut v);
    normalize(&mut v);
    let mut lambda = 0.0;
    for _ in 0..ITERS {
        let mut w: Vec<f64> = (0..d)
            .map(|a| (0..d).map(|b| cov[a * d + b] * v[b]).sum())
            .collect();
        deflate(&mut w);
        lambda = normalize(&mut w);
        if lambda == 0.0 {
            break;
        }
        v = w;
    }
    (v, lambda)
}
