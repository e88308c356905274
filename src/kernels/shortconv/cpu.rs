//! CPU reference (and CPU backend) for the short convolution. The per-element arithmetic and
//! the order of every sum match the WGSL (taps in order, `dw` in the GPU's row chunks);
//! sequences run in parallel for large inputs.

use rayon::prelude::*;

use super::{ConvDims, DW_CHUNK};

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

/// `y = x + conv(x)`.
///
/// # Panics
/// When the slices do not fit `d` (callers check with [`ConvDims::check`]).
pub fn forward(x: &[f32], w: &[f32], d: &ConvDims) -> Vec<f32> {
    assert!(
        d.check(x.len(), w.len()).is_ok(),
        "shortconv forward: sizes"
    );
    let (len, cols) = (d.len, d.cols);
    let mut y = vec![0.0f32; x.len()];
    let seq = |(xs, ys): (&[f32], &mut [f32])| {
        for t in 0..len {
            for c in 0..cols {
                let mut s = xs[t * cols + c];
                for j in 0..d.taps.min(t + 1) {
                    s += w[j * cols + c] * xs[(t - j) * cols + c];
                }
                ys[t * cols + c] = s;
            }
        }
    };
    let pairs = x.chunks(len * cols).zip(y.chunks_mut(len * cols));
    if x.len() >= PAR_MIN {
        pairs.par_bridge().for_each(seq);
    } else {
        pairs.for_each(seq);
    }
    y
}

/// `(dx, dw)` for the upstream gradient `dy` (the shape of `x`).
///
/// # Panics
/// When the slices do not fit `d`.
pub fn backward(x: &[f32], w: &[f32], dy: &[f32], d: &ConvDims) -> (Vec<f32>, Vec<f32>) {
    assert!(
        d.check(x.len(), w.len()).is_ok(),
        "shortconv backward: sizes"
    );
    assert_eq!(dy.len(), x.len(), "shortconv backward: dy length");
    let (len, cols, taps) = (d.len, d.cols, d.taps);
    let mut dx = vec![0.0f32; x.len()];
    let seq = |(dys, dxs): (&[f32], &mut [f32])| {
        for t in 0..len {
            for c in 0..cols {
                let mut s = dys[t * cols + c];
                for j in 0..taps.min(len - t) {
                    s += w[j * cols + c] * dys[(t + j) * cols + c];
                }
                dxs[t * cols + c] = s;
            }
        }
    };
    let pairs = dy.chunks(len * cols).zip(dx.chunks_mut(len * cols));
    if x.len() >= PAR_MIN {
        pairs.par_bridge().for_each(seq);
    } else {
        pairs.for_each(seq);
    }
    (dx, weight_grad(x, dy, d))
}

/// `dw[j,c] = Σ_rows x[r−j,c]·dy[r,c]` (within a sequence), in the GPU's chunked order.
fn weight_grad(x: &[f32], dy: &[f32], d: &ConvDims) -> Vec<f32> {
    let (len, cols, taps) = (d.len, d.cols, d.taps);
    let rows = d.rows();
    let width = taps * cols;
    let chunks = rows.div_ceil(DW_CHUNK).max(1);
    let partial = |k: usize| -> Vec<f32> {
        let mut p = vec![0.0f32; width];
        for r in k * DW_CHUNK..((k + 1) * DW_CHUNK).min(rows) {
            let t = r % len;
            for j in 0..taps.min(t + 1) {
                for c in 0..cols {
                    p[j * cols + c] += x[(r - j) * cols + c] * dy[r * cols + c];
                }
            }
        }
        p
    };
    let partials: Vec<Vec<f32>> = if x.len() >= PAR_MIN {
        (0..chunks).into_par_iter().map(partial).collect()
    } else {
        (0..chunks).map(partial).collect()
    };
    let mut dw = vec![0.0f32; width];
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    dw
}
