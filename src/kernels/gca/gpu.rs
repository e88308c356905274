//! Host launchers for the GCA kernels. `sel` is host data (made by the host-side top-k),
//! validated and uploaded here like embedding ids.

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        l: u32,
        d: u32,
        chunk: u32,
        top_k: u32,
        heads: u32,
        nc: u32,
        /// Threads to run: `bh·l` rows, or `b·nc·K` for the dw reduction.
        rows: u32,
        scale: f32,
    }
}

fn params(dm: &GcaDims, rows: usize) -> Params {
    Params {
        l: dm.l as u32,
        d: dm.d as u32,
        chunk: dm.chunk as u32,
        top_k: dm.top_k as u32,
        heads: dm.heads as u32,
        nc: dm.n_chunks() as u32,
        rows: rows as u32,
        scale: 1.0 / (dm.d as f32).sqrt(),
    }
}

/// Checks `dm` against the tensors' shapes (`[bh, l, d]` each, `w` with `b·nc·K` elements).
fn check(
    op: &'static str,
    dm: &GcaDims,
    qkv: &[&GpuTensor],
    sel: &[u32],
    w: &GpuTensor,
) -> Result<()> {
    let want = [dm.bh, dm.l, dm.d];
    if let Some(t) = qkv.iter().find(|t| t.shape != want) {
        return Err(DeviceError::Shape {
            op,
            detail: format!("{:?}, expected {want:?}", t.shape),
        });
    }
    let lens: Vec<usize> = qkv.iter().map(|t| t.numel()).collect();
    dm.validate(op, &lens, sel, w.numel())
}

/// `o [bh, l, d]`.
pub fn gca_forward(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    sel: &[u32],
    w: &GpuTensor,
    dm: &GcaDims,
) -> Result<GpuTensor> {
    check("gca_forward", dm, &[q, k, v], sel, w)?;
    let o = ctx.zeros(&q.shape, DType::F32)?;
    let rows = dm.bh * dm.l;
    if rows == 0 {
        return Ok(o);
    }
    let gsel = ctx.upload_u32(sel, &[sel.len().max(1)])?;
    let p = params(dm, rows);
    ctx.dispatch(
        &FORWARD,
        &[],
        &p,
        &[q, k, v, &gsel, w, &o],
        groups_1d(rows, WG),
    )?;
    Ok(o)
}

/// `(dq, dk, dv [bh, l, d], dw [b, nc, K])`.
#[allow(clippy::too_many_arguments)]
pub fn gca_backward(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    dout: &GpuTensor,
    sel: &[u32],
    w: &GpuTensor,
    dm: &GcaDims,
) -> Result<(GpuTensor, GpuTensor, GpuTensor, GpuTensor)> {
    check("gca_backward", dm, &[q, k, v, dout], sel, w)?;
    let (b, nc, kk) = (dm.b(), dm.n_chunks(), dm.top_k);
    let (dq, dk, dv) = (
        ctx.zeros(&q.shape, DType::F32)?,
        ctx.zeros(&q.shape, DType::F32)?,
        ctx.zeros(&q.shape, DType::F32)?,
    );
    let dw = ctx.zeros(&[b, nc, kk], DType::F32)?;
    let rows = dm.bh * dm.l;
    if rows == 0 {
        return Ok((dq, dk, dv, dw));
    }
    let gsel = ctx.upload_u32(sel, &[sel.len().max(1)])?;
    let aux = ctx.zeros(&[rows, 4 * (kk + 1)], DType::F32)?;
    let p = params(dm, rows);
    let g = groups_1d(rows, WG);
    ctx.dispatch(
        &BACKWARD_DQ,
        &[],
        &p,
        &[q, k, v, dout, &gsel, w, &dq, &aux],
        g,
    )?;
    ctx.dispatch(
        &BACKWARD_DKDV,
        &[],
        &p,
        &[q, k, v, dout, &gsel, &aux, &dk, &dv],
        g,
    )?;
    let n = b * nc * kk;
    if n > 0 {
        ctx.dispatch(
            &BACKWARD_DW,
            &[],
            &params(dm, n),
            &[&aux, &dw],
            groups_1d(n, WG),
        )?;
    }
    Ok((dq, dk, dv, dw))
}
