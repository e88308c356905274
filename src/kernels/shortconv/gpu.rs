//! Host launchers for the short-convolution WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};
use crate::kernels::elementwise;

crate::gpu_params! {
    pub(crate) struct Params {
        rows: u32,
        len: u32,
        cols: u32,
        taps: u32,
        chunk: u32,
        chunks: u32,
        _p0: u32,
        _p1: u32,
    }
}

fn params(op: &'static str, x: &GpuTensor, w: &GpuTensor, d: &ConvDims) -> Result<Params> {
    d.check(x.numel(), w.numel())
        .map_err(|detail| DeviceError::Shape { op, detail })?;
    let rows = d.rows();
    Ok(Params {
        rows: rows as u32,
        len: d.len as u32,
        cols: d.cols as u32,
        taps: d.taps as u32,
        chunk: DW_CHUNK as u32,
        chunks: rows.div_ceil(DW_CHUNK).max(1) as u32,
        _p0: 0,
        _p1: 0,
    })
}

/// `y = x + conv(x)`, the shape of `x`.
pub fn forward(ctx: &GpuContext, x: &GpuTensor, w: &GpuTensor, d: &ConvDims) -> Result<GpuTensor> {
    let p = params("shortconv_forward", x, w, d)?;
    let y = ctx.zeros(&x.shape, DType::F32)?;
    ctx.dispatch(&FORWARD, &[], &p, &[x, w, &y], groups_1d(x.numel(), WG))?;
    Ok(y)
}

/// `(dx, dw)`: `dx` the shape of `x`, `dw` the shape of `w`.
pub fn backward(
    ctx: &GpuContext,
    x: &GpuTensor,
    w: &GpuTensor,
    dy: &GpuTensor,
    d: &ConvDims,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "shortconv_backward";
    let p = params(OP, x, w, d)?;
    if dy.numel() != x.numel() {
        return Err(DeviceError::Shape {
            op: OP,
            detail: format!("dy {:?} vs x {:?}", dy.shape, x.shape),
        });
    }
    let dx = ctx.zeros(&x.shape, DType::F32)?;
    ctx.dispatch(
        &BACKWARD_DX,
        &[],
        &p,
        &[dy, w, &dx],
        groups_1d(x.numel(), WG),
    )?;
    let width = d.taps * d.cols;
    let chunks = p.chunks as usize;
    let partial = ctx.zeros(&[chunks, width], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_DW,
        &[],
        &p,
        &[x, dy, &partial],
        groups_1d(chunks * width, WG),
    )?;
    let dw = if chunks == 1 {
        partial
    } else {
        elementwise::gpu::bias_backward(ctx, &partial)?
    };
    Ok((
        dx,
        GpuTensor {
            shape: w.shape.clone(),
            ..dw
        },
    ))
}
