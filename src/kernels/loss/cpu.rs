//! CPU reference (and CPU backend) for the fused softmax + cross-entropy. Rows run in
//! parallel with rayon when the input is large; each row's arithmetic mirrors the WGSL.

use rayon::prelude::*;

use crate::device::DeviceError;

/// Below this many logits threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

/// Checks lengths and targets; returns the reciprocal of the valid-row count (0 when every
/// row is ignored, so every gradient is 0).
pub(crate) fn validate(
    op: &'static str,
    logits_len: usize,
    targets: &[i32],
    rows: usize,
    vocab: usize,
) -> Result<f32, DeviceError> {
    if logits_len != rows * vocab || targets.len() != rows {
        return Err(DeviceError::Shape {
            op,
            detail: format!(
                "{logits_len} logits and {} targets for rows {rows} × vocab {vocab}",
                targets.len()
            ),
        });
    }
    if let Some((r, &t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t >= 0 && t as usize >= vocab)
    {
        return Err(DeviceError::Shape {
            op,
            detail: format!("target {t} at row {r} is outside vocab {vocab}"),
        });
    }
    let valid = targets.iter().filter(|&&t| t >= 0).count();
    Ok(if valid == 0 { 0.0 } else { 1.0 / valid as f32 })
}

fn row(x: &[f32], t: i32, inv_n: f32, grad: &mut [f32]) -> f32 {
    if t < 0 {
        grad.fill(0.0);
        return 0.0;
    }
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // The shared fast exp2 (rel. error < 2e-7) vectorizes; libm's expf per logit was the
    // largest cost of a 8192-token vocabulary head on the CPU.
    let l2e = std::f32::consts::LOG2_E;
    for (g, &v) in grad.iter_mut().zip(x) {
        *g = crate::kernels::fastmath::exp2_fast::<false>((v - m) * l2e);
    }
    let sum: f32 = grad.iter().sum();
    let scale = inv_n / sum;
    grad.iter_mut().for_each(|g| *g *= scale);
    let t = t as usize;
    grad[t] -= inv_n;
    sum.ln() + (m - x[t])
}

/// Per-row losses `[rows]` and `dlogits [rows, vocab]` = gradient of the mean loss over rows
/// whose target is non-negative.
pub fn cross_entropy(
    logits: &[f32],
    targets: &[i32],
    rows: usize,
    vocab: usize,
) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
    let inv_n = validate("cross_entropy", logits.len(), targets, rows, vocab)?;
    let mut losses = vec![0.0f32; rows];
    let mut grad = vec![0.0f32; rows * vocab];
    if vocab == 0 {
        return Ok((losses, grad));
    }
    let f = |(r, (g, l)): (usize, (&mut [f32], &mut f32))| {
        *l = row(&logits[r * vocab..][..vocab], targets[r], inv_n, g);
    };
    if logits.len() >= PAR_MIN {
        grad.par_chunks_mut(vocab)
            .zip(losses.par_iter_mut())
            .enumerate()
            .for_each(f);
    } else {
        grad.chunks_mut(vocab)
            .zip(losses.iter_mut())
            .enumerate()
            .for_each(f);
    }
    Ok((losses, grad))
}

/// The same row arithmetic as [`cross_entropy`], but the gradient overwrites `logits` and the
/// mean is over `1/inv_n` rows counted by the caller (a chunk of a larger batch). Returns the
/// per-row losses. Targets must already be validated against `vocab`.
pub fn cross_entropy_in_place(
    logits: &mut [f32],
    targets: &[i32],
    vocab: usize,
    inv_n: f32,
) -> Vec<f32> {
    let one = |(x, &t): (&mut [f32], &i32)| -> f32 {
        if t < 0 {
            x.fill(0.0);
            return 0.0;
        }
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let xt = x[t as usize];
        let l2e = std::f32::consts::LOG2_E;
        x.iter_mut()
            .for_each(|v| *v = crate::kernels::fastmath::exp2_fast::<false>((*v - m) * l2e));
        let sum: f32 = x.iter().sum();
        let scale = inv_n / sum;
        x.iter_mut().for_each(|g| *g *= scale);
        x[t as usize] -= inv_n;
        sum.ln() + (m - xt)
    };
    if vocab == 0 {
        return vec![0.0; targets.len()];
    }
    if logits.len() >= PAR_MIN {
        logits.par_chunks_mut(vocab).zip(targets).map(one).collect()
    } else {
        logits.chunks_mut(vocab).zip(targets).map(one).collect()
    }
}
