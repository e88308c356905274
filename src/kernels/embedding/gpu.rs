//! Host launchers for the embedding WGSL kernels. Ids are validated on the host before upload.

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct FwdParams {
        n: u32,
        dim: u32,
        vocab: u32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct BwdParams {
        segs: u32,
        dim: u32,
        _pad: [u32; 2],
    }
}

/// `out [T, dim]` with `out[t] = weight[ids[t]]`; `weight` must be `[vocab, dim]`.
pub fn embedding_forward(ctx: &GpuContext, weight: &GpuTensor, ids: &[u32]) -> Result<GpuTensor> {
    const OP: &str = "embedding_forward";
    let &[vocab, dim] = weight.shape.as_slice() else {
        return Err(DeviceError::Shape {
            op: OP,
            detail: format!("weight must be [vocab, dim], got {:?}", weight.shape),
        });
    };
    check_ids(OP, ids, vocab)?;
    let out = ctx.zeros(&[ids.len(), dim], DType::F32)?;
    let n = ids.len() * dim;
    if n == 0 {
        return Ok(out);
    }
    let gids = ctx.upload_u32(ids, &[ids.len()])?;
    let p = FwdParams {
        n: n as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        _pad: 0,
    };
    ctx.dispatch(&FORWARD, &[], &p, &[weight, &gids, &out], groups_1d(n, WG))?;
    Ok(out)
}

/// `dweight [vocab, dim]`, the deterministic scatter-add of `dy [T, dim]` by `ids`.
pub fn embedding_backward(
    ctx: &GpuContext,
    dy: &GpuTensor,
    ids: &[u32],
    vocab: usize,
) -> Result<GpuTensor> {
    const OP: &str = "embedding_backward";
    let dim = match dy.shape.as_slice() {
        &[t, dim] if t == ids.len() => dim,
        _ => {
            return Err(DeviceError::Shape {
                op: OP,
                detail: format!("dy must be [{}, dim], got {:?}", ids.len(), dy.shape),
            })
        }
    };
    check_ids(OP, ids, vocab)?;
    let dw = ctx.zeros(&[vocab, dim], DType::F32)?;
    if ids.is_empty() || dim == 0 {
        return Ok(dw);
    }
    let segs = Segments::new(ids);
    let order = ctx.upload_u32(&segs.order, &[segs.order.len()])?;
    let seg_ids = ctx.upload_u32(&segs.ids, &[segs.len()])?;
    let offsets = ctx.upload_u32(&segs.offsets, &[segs.offsets.len()])?;
    let p = BwdParams {
        segs: segs.len() as u32,
        dim: dim as u32,
        _pad: [0; 2],
    };
    ctx.dispatch(
        &BACKWARD,
        &[],
        &p,
        &[dy, &order, &seg_ids, &offsets, &dw],
        groups_1d(segs.len() * dim, WG),
    )?;
    Ok(dw)
}
