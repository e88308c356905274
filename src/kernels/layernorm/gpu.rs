//! Host launchers for the LayerNorm WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};
use crate::kernels::elementwise;

crate::gpu_params! {
    pub(crate) struct FwdParams {
        rows: u32,
        cols: u32,
        eps: f32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct BwdParams {
        rows: u32,
        cols: u32,
        chunk: u32,
        chunks: u32,
    }
}

fn shape_err(op: &'static str, detail: String) -> DeviceError {
    DeviceError::Shape { op, detail }
}

/// `(rows, cols)` of `x` seen as `[rows, cols]` with `cols = gamma.numel()`.
fn rows_cols(op: &'static str, x: &GpuTensor, gamma: &GpuTensor) -> Result<(usize, usize)> {
    let cols = gamma.numel();
    if cols == 0 || x.shape.last() != Some(&cols) {
        return Err(shape_err(
            op,
            format!("x {:?} with gamma {:?}", x.shape, gamma.shape),
        ));
    }
    Ok((x.numel() / cols, cols))
}

/// Returns `(y, mean [rows], rstd [rows])`; `y` has the shape of `x`.
pub fn layernorm_forward(
    ctx: &GpuContext,
    x: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    eps: f32,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let (rows, cols) = rows_cols("layernorm_forward", x, gamma)?;
    if beta.numel() != cols {
        return Err(shape_err(
            "layernorm_forward",
            format!("beta {:?} with gamma {:?}", beta.shape, gamma.shape),
        ));
    }
    let y = ctx.zeros(&x.shape, DType::F32)?;
    let mean = ctx.zeros(&[rows], DType::F32)?;
    let rstd = ctx.zeros(&[rows], DType::F32)?;
    let p = FwdParams {
        rows: rows as u32,
        cols: cols as u32,
        eps,
        _pad: 0,
    };
    ctx.dispatch(
        &FORWARD,
        &[],
        &p,
        &[x, gamma, beta, &y, &mean, &rstd],
        groups_1d(rows, 1),
    )?;
    Ok((y, mean, rstd))
}

/// Returns `(dx, dgamma [cols], dbeta [cols])` from the forward's saved `mean` and `rstd`.
pub fn layernorm_backward(
    ctx: &GpuContext,
    dy: &GpuTensor,
    x: &GpuTensor,
    gamma: &GpuTensor,
    mean: &GpuTensor,
    rstd: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    const OP: &str = "layernorm_backward";
    let (rows, cols) = rows_cols(OP, x, gamma)?;
    if dy.shape != x.shape {
        return Err(shape_err(
            OP,
            format!("dy {:?} vs x {:?}", dy.shape, x.shape),
        ));
    }
    if mean.numel() != rows || rstd.numel() != rows {
        return Err(shape_err(
            OP,
            format!(
                "mean {:?} / rstd {:?} for {rows} rows",
                mean.shape, rstd.shape
            ),
        ));
    }
    let dx = ctx.zeros(&x.shape, DType::F32)?;
    let chunks = rows.div_ceil(PARAM_CHUNK).max(1);
    let p = BwdParams {
        rows: rows as u32,
        cols: cols as u32,
        chunk: PARAM_CHUNK as u32,
        chunks: chunks as u32,
    };
    ctx.dispatch(
        &BACKWARD,
        &[],
        &p,
        &[dy, x, gamma, mean, rstd, &dx],
        groups_1d(rows, 1),
    )?;
    let pg = ctx.zeros(&[chunks, cols], DType::F32)?;
    let pb = ctx.zeros(&[chunks, cols], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_PARAMS,
        &[],
        &p,
        &[dy, x, mean, rstd, &pg, &pb],
        groups_1d(chunks * cols, PARAMS_WG),
    )?;
    let (dgamma, dbeta) = if chunks == 1 {
        let flat = |t: GpuTensor| GpuTensor {
            shape: vec![cols],
            ..t
        };
        (flat(pg), flat(pb))
    } else {
        (
            elementwise::gpu::bias_backward(ctx, &pg)?,
            elementwise::gpu::bias_backward(ctx, &pb)?,
        )
    };
    Ok((dx, dgamma, dbeta))
}
