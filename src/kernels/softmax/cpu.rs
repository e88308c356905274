//! CPU reference (and CPU backend) for row softmax; rows run in parallel for large inputs.

use rayon::prelude::*;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

fn per_row(out: &mut [f32], cols: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if cols == 0 {
        return;
    }
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(cols)
            .enumerate()
            .for_each(|(r, o)| f(r, o));
    } else {
        out.chunks_mut(cols).enumerate().for_each(|(r, o)| f(r, o));
    }
}

/// `y[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max)`.
///
/// # Panics
/// When `x` is shorter than `rows·cols`.
pub fn softmax_forward(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * cols];
    per_row(&mut y, cols, |r, yr| {
        let xr = &x[r * cols..(r + 1) * cols];
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - max).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|o| *o *= inv);
    });
    y
}

/// `dx[r, :] = y[r, :] ∘ (dy[r, :] − Σ y[r, :]∘dy[r, :])`.
///
/// # Panics
/// When `y` or `dy` is shorter than `rows·cols`.
pub fn softmax_backward(y: &[f32], dy: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; rows * cols];
    per_row(&mut dx, cols, |r, dxr| {
        let span = r * cols..(r + 1) * cols;
        let (yr, gr) = (&y[span.clone()], &dy[span]);
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for ((o, &yv), &g) in dxr.iter_mut().zip(yr).zip(gr) {
            *o = yv * (g - dot);
        }
    });
    dx
}
