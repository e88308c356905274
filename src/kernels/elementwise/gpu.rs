//! Host launchers for the element-wise WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};
use crate::kernels::rckv;

crate::gpu_params! {
    pub(crate) struct AddParams {
        n: u32,
        alpha: f32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    /// `n` elements, rows of `cols` where the kernel has rows (bias_forward).
    pub(crate) struct ElemParams {
        n: u32,
        cols: u32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    pub(crate) struct RowsCols {
        rows: u32,
        cols: u32,
        _pad: [u32; 2],
    }
}

fn elems(n: usize, cols: usize) -> ElemParams {
    ElemParams {
        n: n as u32,
        cols: cols as u32,
        _pad: [0; 2],
    }
}

fn same_shape(op: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(DeviceError::Shape {
            op,
            detail: format!("{:?} vs {:?}", a.shape, b.shape),
        });
    }
    Ok(())
}

pub fn add(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor, alpha: f32) -> Result<GpuTensor> {
    same_shape("add", a, b)?;
    let y = ctx.zeros(&a.shape, DType::F32)?;
    let p = AddParams {
        n: a.numel() as u32,
        alpha,
        _pad: [0; 2],
    };
    ctx.dispatch(&ADD, &[], &p, &[a, b, &y], groups_1d(a.numel(), WG))?;
    Ok(y)
}

pub fn bias_forward(ctx: &GpuContext, x: &GpuTensor, bias: &GpuTensor) -> Result<GpuTensor> {
    let cols = bias.numel();
    if cols == 0 || !x.numel().is_multiple_of(cols) || x.shape.last() != Some(&cols) {
        return Err(DeviceError::Shape {
            op: "bias_forward",
            detail: format!("x {:?} with bias {:?}", x.shape, bias.shape),
        });
    }
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let p = elems(x.numel(), cols);
    ctx.dispatch(
        &BIAS_FORWARD,
        &[],
        &p,
        &[x, bias, &y],
        groups_1d(x.numel(), WG),
    )?;
    Ok(y)
}

pub fn bias_backward(ctx: &GpuContext, dy: &GpuTensor) -> Result<GpuTensor> {
    let cols = *dy.shape.last().ok_or(DeviceError::Shape {
        op: "bias_backward",
        detail: "dy has no dimensions".into(),
    })?;
    let rows = dy.numel().checked_div(cols).unwrap_or(0);
    let db = ctx.zeros(&[cols], DType::F32)?;
    ctx.dispatch(
        &BIAS_BACKWARD,
        &[],
        &RowsCols {
            rows: rows as u32,
            cols: cols as u32,
            _pad: [0; 2],
        },
        &[dy, &db],
        groups_1d(cols, 64),
    )?;
    Ok(db)
}

pub fn gelu_forward(ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let p = elems(x.numel(), 0);
    ctx.dispatch(&GELU_FORWARD, &[], &p, &[x, &y], groups_1d(x.numel(), WG))?;
    Ok(y)
}

pub fn gelu_backward(ctx: &GpuContext, x: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
    same_shape("gelu_backward", x, dy)?;
    let dx = ctx.zeros(&x.shape, DType::F32)?;
    let p = elems(x.numel(), 0);
    ctx.dispatch(
        &GELU_BACKWARD,
        &[],
        &p,
        &[x, dy, &dx],
        groups_1d(x.numel(), WG),
    )?;
    Ok(dx)
}

/// y = s·x.
pub fn scale(ctx: &GpuContext, x: &GpuTensor, s: f32) -> Result<GpuTensor> {
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let p = AddParams {
        n: elements("scale", x)?,
        alpha: s,
        _pad: [0; 2],
    };
    ctx.dispatch(&SCALE, &[], &p, &[x, &y], groups_1d(x.numel(), WG))?;
    Ok(y)
}

/// Σ x² as a `[1]` tensor that stays on the device: per-workgroup partials, then rckv's
/// fixed-order one-workgroup sum (scale 1).
pub fn sum_squares(ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
    let n = elements("sum_squares", x)?;
    let out = ctx.zeros(&[1], DType::F32)?;
    if n == 0 {
        return Ok(out);
    }
    let groups = groups_1d(x.numel(), WG);
    let count = groups[0] as usize * groups[1] as usize;
    let partials = ctx.zeros(&[count], DType::F32)?;
    ctx.dispatch(
        &SUM_SQUARES,
        &[],
        &elems(x.numel(), 0),
        &[x, &partials],
        groups,
    )?;
    let p = rckv::gpu::SumParams {
        count: count as u32,
        inv_n: 1.0,
        _pad: [0; 2],
    };
    ctx.dispatch(&rckv::SUM_PARTIALS, &[], &p, &[&partials, &out], [1, 1, 1])?;
    Ok(out)
}

/// The element count as the kernels' u32, for an f32 tensor.
fn elements(op: &'static str, x: &GpuTensor) -> Result<u32> {
    match u32::try_from(x.numel()) {
        Ok(n) if x.dtype == DType::F32 => Ok(n),
        _ => Err(DeviceError::Shape {
            op,
            detail: format!("{:?} {:?}: need f32 and < 2^32 elements", x.shape, x.dtype),
        }),
    }
}
