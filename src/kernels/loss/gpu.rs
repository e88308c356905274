//! Host launcher for the fused softmax + cross-entropy kernel.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        rows: u32,
        vocab: u32,
        inv_n: f32,
        _pad: u32,
    }
}

/// Returns `(losses [rows], dlogits [rows, vocab])` for `logits [rows, vocab]`; see the module
/// doc for ignored targets and the `1 / n_valid` gradient scale.
pub fn cross_entropy(
    ctx: &GpuContext,
    logits: &GpuTensor,
    targets: &[i32],
) -> Result<(GpuTensor, GpuTensor)> {
    let &[rows, vocab] = logits.shape.as_slice() else {
        return Err(DeviceError::Shape {
            op: "cross_entropy",
            detail: format!("logits must be [rows, vocab], got {:?}", logits.shape),
        });
    };
    let inv_n = cpu::validate("cross_entropy", logits.numel(), targets, rows, vocab)?;
    let losses = ctx.zeros(&[rows], DType::F32)?;
    let dlogits = ctx.zeros(&logits.shape, DType::F32)?;
    if rows == 0 {
        return Ok((losses, dlogits));
    }
    let t = ctx.upload_i32(targets, &[rows])?;
    let p = Params {
        rows: rows as u32,
        vocab: vocab as u32,
        inv_n,
        _pad: 0,
    };
    // One workgroup per row, folded into 2-D past 65535 rows.
    ctx.dispatch(
        &CROSS_ENTROPY,
        &[],
        &p,
        &[logits, &t, &losses, &dlogits],
        groups_1d(rows, 1),
    )?;
    Ok((losses, dlogits))
}
