//! CPU reference (and CPU backend) for the AdamW step; large tensors are split across
//! threads. The per-element arithmetic is the WGSL's, operation for operation.

use rayon::prelude::*;

use super::AdamW;

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;
/// Elements per rayon task.
const CHUNK: usize = 1 << 12;

/// One AdamW step in place; `step` is 1-based.
///
/// # Panics
/// If `step` is 0 (the bias correction would divide by zero) or the four slices differ in
/// length.
pub fn adamw_step(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    hp: &AdamW,
    step: u32,
) {
    assert!(step >= 1, "adamw_step: step is 1-based, got 0");
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adamw_step: lengths param {n}, grad {}, m {}, v {}",
        grad.len(),
        m.len(),
        v.len()
    );
    let (bc1, bc2) = hp.bias_corrections(step);
    let hp = *hp;
    let run = move |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = hp.beta1 * m[i] + (1.0 - hp.beta1) * gi;
            let vi = hp.beta2 * v[i] + (1.0 - hp.beta2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            let mhat = mi / bc1;
            let vhat = vi / bc2;
            let w = p[i];
            p[i] = w - hp.lr * (mhat / (vhat.sqrt() + hp.eps) + hp.weight_decay * w);
        }
    };
    if n >= PAR_MIN {
        param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| run(p, g, m, v));
    } else {
        run(param, grad, m, v);
    }
}
