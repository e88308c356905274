//! Host launchers for the RoPE WGSL kernels. Positions and the f32 `inv_freq` table are uploaded
//! per call (both are tiny next to `x`).

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        pairs: u32,
        half: u32,
        n: u32,
        hn: u32,
    }
}

fn rotate(
    ctx: &GpuContext,
    op: &'static str,
    spec: &'static KernelSpec,
    x: &GpuTensor,
    positions: &[u32],
    base: f32,
) -> Result<GpuTensor> {
    let &[b, h, n, d] = x.shape.as_slice() else {
        return Err(DeviceError::Shape {
            op,
            detail: format!("x must be [b, h, n, d], got {:?}", x.shape),
        });
    };
    check_head_dim(op, d)?;
    check_positions(op, positions, b, n)?;
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let pairs = x.numel() / 2;
    if pairs == 0 {
        return Ok(y);
    }
    let pos = ctx.upload_u32(positions, &[positions.len()])?;
    let freq = ctx.upload(&inv_freq(d, base), &[d / 2])?;
    let p = Params {
        pairs: pairs as u32,
        half: (d / 2) as u32,
        n: n as u32,
        hn: (h * n) as u32,
    };
    ctx.dispatch(spec, &[], &p, &[x, &pos, &freq, &y], groups_1d(pairs, WG))?;
    Ok(y)
}

/// Rotates `x [b, h, n, d]` by each token's original position (`positions: [b·n]`).
pub fn rope_forward(
    ctx: &GpuContext,
    x: &GpuTensor,
    positions: &[u32],
    base: f32,
) -> Result<GpuTensor> {
    rotate(ctx, "rope_forward", &FORWARD, x, positions, base)
}

/// The backward of `rope_forward`: rotates `dy` by the negated angles.
pub fn rope_backward(
    ctx: &GpuContext,
    dy: &GpuTensor,
    positions: &[u32],
    base: f32,
) -> Result<GpuTensor> {
    rotate(ctx, "rope_backward", &BACKWARD, dy, positions, base)
}
