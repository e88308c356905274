//! CPU reference (and CPU backend) for LayerNorm. Row statistics are accumulated in f64, so this
//! is the more accurate side of every GPU comparison; the per-element arithmetic (shifted
//! deviations, `x̂ = (x − mean)·rstd`) is the same as the WGSL. Rows run in parallel for large
//! inputs, and dgamma/dbeta use the GPU's fixed row chunks so the result does not depend on the
//! thread count.

use rayon::prelude::*;

use super::PARAM_CHUNK;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

/// Runs `f(row_index, row_outputs...)` for each row, in parallel for large inputs.
fn each_row<T: Send>(items: Vec<T>, n_elems: usize, f: impl Fn(T) + Sync + Send) {
    if n_elems >= PAR_MIN {
        items.into_par_iter().for_each(f);
    } else {
        items.into_iter().for_each(f);
    }
}

/// `(shift, mean of x − shift, biased variance)` of one row; see the module doc for the shift.
fn row_stats(row: &[f32]) -> (f32, f32, f32) {
    let shift = row[0];
    let n = row.len() as f64;
    let s: f64 = row.iter().map(|&v| (v - shift) as f64).sum();
    let mean_d = (s / n) as f32;
    let q: f64 = row
        .iter()
        .map(|&v| {
            let d = ((v - shift) - mean_d) as f64;
            d * d
        })
        .sum();
    (shift, mean_d, (q / n) as f32)
}

/// Returns `(y [rows·cols], mean [rows], rstd [rows])`.
///
/// # Panics
/// When `x` is not `rows·cols` long or `gamma`/`beta` are not `cols` long.
pub fn layernorm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    rows: usize,
    cols: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), rows * cols, "layernorm_forward: x length");
    assert_eq!(gamma.len(), cols, "layernorm_forward: gamma length");
    assert_eq!(beta.len(), cols, "layernorm_forward: beta length");
    let mut y = vec![0.0f32; rows * cols];
    let mut mean = vec![0.0f32; rows];
    let mut rstd = vec![0.0f32; rows];
    if cols == 0 {
        return (y, mean, rstd);
    }
    let items: Vec<_> = y
        .chunks_mut(cols)
        .zip(x.chunks(cols))
        .zip(mean.iter_mut().zip(rstd.iter_mut()))
        .collect();
    each_row(items, rows * cols, |((yr, xr), (m, r))| {
        let (shift, mean_d, var) = row_stats(xr);
        let rs = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
            *o = ((v - shift) - mean_d) * rs * g + b;
        }
        *m = shift + mean_d;
        *r = rs;
    });
    (y, mean, rstd)
}

/// Returns `(dx [rows·cols], dgamma [cols], dbeta [cols])` from the forward's saved `mean`/`rstd`.
///
/// # Panics
/// When a length disagrees with `rows`/`cols`.
pub fn layernorm_backward(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    rows: usize,
    cols: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(dy.len(), rows * cols, "layernorm_backward: dy length");
    assert_eq!(x.len(), rows * cols, "layernorm_backward: x length");
    assert_eq!(gamma.len(), cols, "layernorm_backward: gamma length");
    assert_eq!(mean.len(), rows, "layernorm_backward: mean length");
    assert_eq!(rstd.len(), rows, "layernorm_backward: rstd length");
    let mut dx = vec![0.0f32; rows * cols];
    if cols == 0 {
        return (dx, Vec::new(), Vec::new());
    }
    let n = cols as f64;
    let items: Vec<_> = dx
        .chunks_mut(cols)
        .zip(dy.chunks(cols).zip(x.chunks(cols)))
        .zip(mean.iter().zip(rstd))
        .collect();
    each_row(items, rows * cols, |((dxr, (dyr, xr)), (&m, &rs))| {
        let (mut sg, mut sgx) = (0.0f64, 0.0f64);
        for ((&d, &v), &g) in dyr.iter().zip(xr).zip(gamma) {
            let gd = d * g;
            sg += gd as f64;
            sgx += (gd * ((v - m) * rs)) as f64;
        }
        let (mg, mgx) = ((sg / n) as f32, (sgx / n) as f32);
        for (((o, &d), &v), &g) in dxr.iter_mut().zip(dyr).zip(xr).zip(gamma) {
            let xh = (v - m) * rs;
            *o = rs * (d * g - mg - xh * mgx);
        }
    });
    let (dgamma, dbeta) = param_grads(dy, x, mean, rstd, rows, cols);
    (dx, dgamma, dbeta)
}

/// Column sums `Σ_r dy·x̂` and `Σ_r dy` in the GPU's order: f32 partials over fixed chunks of
/// `PARAM_CHUNK` rows, then the partials added in chunk order.
fn param_grads(
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    rows: usize,
    cols: usize,
) -> (Vec<f32>, Vec<f32>) {
    let chunk = |k: usize| {
        let mut pg = vec![0.0f32; cols];
        let mut pb = vec![0.0f32; cols];
        for r in k * PARAM_CHUNK..((k + 1) * PARAM_CHUNK).min(rows) {
            let (m, rs) = (mean[r], rstd[r]);
            let row = r * cols..(r + 1) * cols;
            for (((g, b), &d), &v) in pg
                .iter_mut()
                .zip(&mut pb)
                .zip(&dy[row.clone()])
                .zip(&x[row])
            {
                *g += d * ((v - m) * rs);
                *b += d;
            }
        }
        (pg, pb)
    };
    let chunks = rows.div_ceil(PARAM_CHUNK);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if rows * cols >= PAR_MIN {
        (0..chunks).into_par_iter().map(chunk).collect()
    } else {
        (0..chunks).map(chunk).collect()
    };
    let mut dgamma = vec![0.0f32; cols];
    let mut dbeta = vec![0.0f32; cols];
    for (pg, pb) in &partials {
        dgamma.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
        dbeta.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dgamma, dbeta)
}
