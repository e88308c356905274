//! The CPU's fused LM head + cross-entropy: rows go through in chunks, so only a
//! `[chunk, vocab]` block of logits exists at a time. At batch 8 × 512 and vocab 8192 the
//! unfused path allocates and faults in two 134 MB buffers per step (logits and their
//! gradient); here the gradient overwrites each chunk's logits in place.

use super::shapes::t;
use crate::backend::lm_head_dims;
use crate::device::Result;
use crate::kernels::loss::cpu::{cross_entropy_in_place, validate};
use crate::kernels::matmul::{cpu as mm, MatmulDims};
use crate::Tensor;

/// Logit elements per chunk (16 MB of f32).
const CHUNK_ELEMS: usize = 1 << 22;

pub(super) fn lm_head_loss(
    h: &Tensor,
    w: &Tensor,
    targets: &[i32],
    scale: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (rows, dm, vocab) = lm_head_dims(&h.shape, &w.shape, targets.len())?;
    // Validates the targets once for the whole batch and counts its valid rows.
    let inv_n = validate("lm_head_loss", rows * vocab, targets, rows, vocab)? * scale;
    let mut losses = Vec::with_capacity(rows);
    let mut dh = vec![0.0f32; rows * dm];
    let mut dw = vec![0.0f32; vocab * dm];
    let chunk = (CHUNK_ELEMS / vocab.max(1)).max(1);
    for r0 in (0..rows).step_by(chunk) {
        let c = chunk.min(rows - r0);
        let hc = &h.data[r0 * dm..(r0 + c) * dm];
        let d = MatmulDims::new(c, dm, vocab).transpose_b();
        let mut logits = mm::matmul(hc, &w.data, &d);
        let tc = &targets[r0..r0 + c];
        let l = cross_entropy_in_place(&mut logits, tc, vocab, inv_n);
        // The kernel scaled the gradient by `scale`; the losses themselves stay unscaled.
        losses.extend(l);
        let (dhc, dwc) = mm::matmul_backward(hc, &w.data, &logits, &d);
        dh[r0 * dm..(r0 + c) * dm].copy_from_slice(&dhc);
        dw.iter_mut().zip(&dwc).for_each(|(a, b)| *a += b);
    }
    Ok((t(losses, &[rows]), t(dh, &[rows, dm]), t(dw, &[vocab, dm])))
}
