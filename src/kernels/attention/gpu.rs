//! Host launchers for the causal attention kernels: shape checks, output allocation, grids.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        n: u32,
        d: u32,
        scale: f32,
        rows: u32,
    }
}

/// `[bh, n, d]` of `first`, after checking every tensor in `all` has exactly that shape and
/// `d` fits the kernels.
fn dims(op: &'static str, all: &[(&str, &GpuTensor)]) -> Result<(usize, usize, usize)> {
    let (name0, first) = all[0];
    let &[bh, n, d] = first.shape.as_slice() else {
        return Err(DeviceError::Shape {
            op,
            detail: format!("{name0} must be [bh, n, d], got {:?}", first.shape),
        });
    };
    for (name, t) in &all[1..] {
        if t.shape != first.shape {
            return Err(DeviceError::Shape {
                op,
                detail: format!("{name} {:?} vs {name0} {:?}", t.shape, first.shape),
            });
        }
    }
    if d == 0 || d > MAX_D as usize {
        return Err(DeviceError::Shape {
            op,
            detail: format!("head dim d = {d} outside 1..={MAX_D} (the kernels' MAX_D)"),
        });
    }
    Ok((bh, n, d))
}

fn params(n: usize, d: usize, rows: usize) -> Params {
    Params {
        n: n as u32,
        d: d as u32,
        scale: 1.0 / (d as f32).sqrt(),
        rows: rows as u32,
    }
}

/// Returns `(o [bh, n, d], lse [bh, n])`.
pub fn attention_forward(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor)> {
    let (bh, n, d) = dims("attention_forward", &[("q", q), ("k", k), ("v", v)])?;
    let o = ctx.zeros(&q.shape, DType::F32)?;
    let lse = ctx.zeros(&[bh, n], DType::F32)?;
    let groups = [n.div_ceil(FWD_BQ as usize) as u32, bh as u32, 1];
    ctx.dispatch(
        &FORWARD,
        &[],
        &params(n, d, bh * n),
        &[q, k, v, &o, &lse],
        groups,
    )?;
    Ok((o, lse))
}

/// Returns `(dq, dk, dv)`, each `[bh, n, d]`, from the forward's `o` and `lse`.
pub fn attention_backward(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    o: &GpuTensor,
    lse: &GpuTensor,
    dout: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let op = "attention_backward";
    let all = [("q", q), ("k", k), ("v", v), ("o", o), ("dout", dout)];
    let (bh, n, d) = dims(op, &all)?;
    if lse.shape != [bh, n] {
        return Err(DeviceError::Shape {
            op,
            detail: format!("lse {:?}, expected [{bh}, {n}]", lse.shape),
        });
    }
    let p = params(n, d, bh * n);
    let delta = ctx.zeros(&[bh, n], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_PREPROCESS,
        &[],
        &p,
        &[o, dout, &delta],
        groups_1d(bh * n, PRE_WG),
    )?;
    let (dq, dk, dv) = (
        ctx.zeros(&q.shape, DType::F32)?,
        ctx.zeros(&q.shape, DType::F32)?,
        ctx.zeros(&q.shape, DType::F32)?,
    );
    let key_groups = [n.div_ceil(BWD_BK as usize) as u32, bh as u32, 1];
    ctx.dispatch(
        &BACKWARD_DKDV,
        &[],
        &p,
        &[q, k, v, dout, lse, &delta, &dk, &dv],
        key_groups,
    )?;
    let query_groups = [n.div_ceil(BWD_BQ as usize) as u32, bh as u32, 1];
    ctx.dispatch(
        &BACKWARD_DQ,
        &[],
        &p,
        &[q, k, v, dout, lse, &delta, &dq],
        query_groups,
    )?;
    Ok((dq, dk, dv))
}
