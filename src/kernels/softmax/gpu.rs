//! Host launchers for the softmax WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        rows: u32,
        cols: u32,
        _pad: [u32; 2],
    }
}

/// `(rows, cols)` with `cols` the last dimension.
fn rows_cols(op: &'static str, t: &GpuTensor) -> Result<Params> {
    let bad = |detail: String| DeviceError::Shape { op, detail };
    let cols = *t
        .shape
        .last()
        .ok_or_else(|| bad("tensor has no dimensions".into()))?;
    let rows = t.numel().checked_div(cols).unwrap_or(0);
    let u = |v: usize| u32::try_from(v).map_err(|_| bad(format!("shape {:?} too large", t.shape)));
    u(t.numel())?;
    Ok(Params {
        rows: u(rows)?,
        cols: u(cols)?,
        _pad: [0; 2],
    })
}

/// Softmax over the last dimension of `x`.
pub fn softmax_forward(ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
    let p = rows_cols("softmax_forward", x)?;
    let y = ctx.zeros(&x.shape, DType::F32)?;
    if p.cols > 0 {
        ctx.dispatch(&FORWARD, &[], &p, &[x, &y], groups_1d(p.rows as usize, 1))?;
    }
    Ok(y)
}

/// `dx` from the forward output `y` and the upstream gradient `dy` (same shape).
pub fn softmax_backward(ctx: &GpuContext, y: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
    if y.shape != dy.shape {
        return Err(DeviceError::Shape {
            op: "softmax_backward",
            detail: format!("y {:?} vs dy {:?}", y.shape, dy.shape),
        });
    }
    let p = rows_cols("softmax_backward", y)?;
    let dx = ctx.zeros(&y.shape, DType::F32)?;
    if p.cols > 0 {
        ctx.dispatch(
            &BACKWARD,
            &[],
            &p,
            &[y, dy, &dx],
            groups_1d(p.rows as usize, 1),
        )?;
    }
    Ok(dx)
}
