//! CPU reference (and CPU backend) for the element-wise family. Large inputs are split across
//! threads with rayon; each element's arithmetic is the same as the WGSL.

use rayon::prelude::*;

const K0: f32 = 0.797_884_6;
const K1: f32 = 0.044715;
/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;
/// Fixed reduction chunk, so f64 sums do not depend on the thread count.
const CHUNK: usize = 4096;

fn map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    if a.len() >= PAR_MIN {
        a.par_iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    } else {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }
}

/// y = a + alpha·b (same length).
pub fn add(a: &[f32], b: &[f32], alpha: f32) -> Vec<f32> {
    map2(a, b, |x, y| x + alpha * y)
}

/// y[r, c] = x[r, c] + bias[c].
pub fn bias_forward(x: &[f32], bias: &[f32]) -> Vec<f32> {
    let cols = bias.len().max(1);
    let mut y = x.to_vec();
    y.par_chunks_mut(cols)
        .for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
    y
}

/// dbias[c] = Σ_r dy[r, c].
pub fn bias_backward(dy: &[f32], cols: usize) -> Vec<f32> {
    let mut db = vec![0.0f32; cols];
    if cols == 0 {
        return db;
    }
    for row in dy.chunks_exact(cols) {
        db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
    }
    db
}

/// `σ(2u) = e^{2u} / (1 + e^{2u})` with `u` the clamped tanh argument: GELU's tanh form is
/// `0.5·v·(1 + tanh u) = v·σ(2u)`. One fast `exp2` (rel. error < 2e-7) instead of libm's
/// `tanhf` (and two `expf` in the backward), which dominated the CPU MLP's time.
#[inline(always)]
fn sig2u(v: f32) -> (f32, bool) {
    let raw = K0 * (v + K1 * v * v * v);
    let u = raw.clamp(-10.0, 10.0);
    let e = crate::kernels::fastmath::exp2_fast::<false>(2.0 * std::f32::consts::LOG2_E * u);
    (e / (1.0 + e), raw.abs() > 10.0)
}

fn gelu1(v: f32) -> f32 {
    v * sig2u(v).0
}

fn gelu_grad1(v: f32) -> f32 {
    // d/dv [v·σ(2u)] = σ + v·2σ(1−σ)·du/dv; σ(1−σ) never cancels the way 1 − tanh² does.
    let (s, clamped) = sig2u(v);
    let du = if clamped {
        0.0
    } else {
        K0 * (1.0 + 3.0 * K1 * v * v)
    };
    s + 2.0 * v * s * (1.0 - s) * du
}

pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    if x.len() >= PAR_MIN {
        x.par_iter().map(|&v| gelu1(v)).collect()
    } else {
        x.iter().map(|&v| gelu1(v)).collect()
    }
}

pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    map2(x, dy, |v, g| g * gelu_grad1(v))
}

/// y = s·x.
pub fn scale(x: &[f32], s: f32) -> Vec<f32> {
    if x.len() >= PAR_MIN {
        x.par_iter().map(|&v| s * v).collect()
    } else {
        x.iter().map(|&v| s * v).collect()
    }
}

/// Σ x² accumulated in f64 over fixed chunks (deterministic), rounded to f32 once.
pub fn sum_squares(x: &[f32]) -> f32 {
    let part = |c: &[f32]| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    let parts: Vec<f64> = if x.len() >= PAR_MIN {
        x.par_chunks(CHUNK).map(part).collect()
    } else {
        x.chunks(CHUNK).map(part).collect()
    };
    parts.iter().sum::<f64>() as f32
}
