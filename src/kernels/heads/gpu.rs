//! Host launchers for the head split / merge WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor};

crate::gpu_params! {
    pub(crate) struct Params {
        total: u32,
        n: u32,
        h: u32,
        d: u32,
    }
}

fn launch(
    op: &'static str,
    spec: &'static KernelSpec,
    ctx: &GpuContext,
    x: &GpuTensor,
    (b, n, h): (usize, usize, usize),
    out_shape: impl Fn(usize) -> Vec<usize>,
) -> Result<GpuTensor> {
    if x.dtype != DType::F32 {
        return Err(DeviceError::Shape {
            op,
            detail: format!("expected F32, got {:?} of shape {:?}", x.dtype, x.shape),
        });
    }
    let d = head_dim(op, x.numel(), b, n, h)?;
    let y = ctx.zeros(&out_shape(d), DType::F32)?;
    // head_dim checked that the element count, hence n, h and d, fit u32.
    let p = Params {
        total: x.numel() as u32,
        n: n as u32,
        h: h as u32,
        d: d as u32,
    };
    ctx.dispatch(spec, &[], &p, &[x, &y], groups_1d(x.numel(), WG))?;
    Ok(y)
}

/// `x: [b·n, h·d]` → `[b·h, n, d]`.
pub fn split_heads(
    ctx: &GpuContext,
    x: &GpuTensor,
    b: usize,
    n: usize,
    h: usize,
) -> Result<GpuTensor> {
    launch("split_heads", &SPLIT, ctx, x, (b, n, h), |d| {
        vec![b * h, n, d]
    })
}

/// `x: [b·h, n, d]` → `[b·n, h·d]`.
pub fn merge_heads(
    ctx: &GpuContext,
    x: &GpuTensor,
    b: usize,
    n: usize,
    h: usize,
) -> Result<GpuTensor> {
    launch("merge_heads", &MERGE, ctx, x, (b, n, h), |d| {
        vec![b * n, h * d]
    })
}
