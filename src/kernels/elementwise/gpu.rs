//! Host launchers for the element-wise WGSL kernels.

use bytemuck::{Pod, Zeroable};

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AddParams {
    n: u32,
    alpha: f32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Dims {
    a: u32,
    b: u32,
    _pad: [u32; 2],
}

fn dims(a: usize, b: usize) -> Dims {
    Dims {
        a: a as u32,
        b: b as u32,
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
    let p = dims(x.numel(), cols);
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
        &dims(rows, cols),
        &[dy, &db],
        groups_1d(cols, 64),
    )?;
    Ok(db)
}

pub fn gelu_forward(ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let p = dims(x.numel(), 0);
    ctx.dispatch(&GELU_FORWARD, &[], &p, &[x, &y], groups_1d(x.numel(), WG))?;
    Ok(y)
}

pub fn gelu_backward(ctx: &GpuContext, x: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
    same_shape("gelu_backward", x, dy)?;
    let dx = ctx.zeros(&x.shape, DType::F32)?;
    let p = dims(x.numel(), 0);
    ctx.dispatch(
        &GELU_BACKWARD,
        &[],
        &p,
        &[x, dy, &dx],
        groups_1d(x.numel(), WG),
    )?;
    Ok(dx)
}
