//! Host launchers for the matmul WGSL kernels.

use super::*;
use crate::device::{groups_1d, DType, DeviceError, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        m: u32,
        n: u32,
        k: u32,
        a_k_contig: u32,
        a_rs: u32,
        a_cs: u32,
        a_bs: u32,
        b_n_contig: u32,
        b_rs: u32,
        b_cs: u32,
        b_bs: u32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct ReduceParams {
        len: u32,
        batch: u32,
        _pad: [u32; 2],
    }
}

/// The shader indexes with u32; anything past that would silently wrap.
fn to_u32(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| DeviceError::Shape {
        op,
        detail: format!("{v} does not fit the kernel's 32-bit indices"),
    })
}

fn check_f32(op: &'static str, ts: &[&GpuTensor]) -> Result<()> {
    match ts.iter().find(|t| t.dtype != DType::F32) {
        Some(t) => Err(DeviceError::Shape {
            op,
            detail: format!("expected f32, got {:?} of shape {:?}", t.dtype, t.shape),
        }),
        None => Ok(()),
    }
}

/// Records `c = plan(a, b)`; `c` must hold `plan.c_len()` elements.
fn launch(
    ctx: &GpuContext,
    op: &'static str,
    a: &GpuTensor,
    b: &GpuTensor,
    c: &GpuTensor,
    pl: &GemmPlan,
) -> Result<()> {
    pl.check(op, a.numel(), b.numel())?;
    to_u32(op, a.numel().max(b.numel()).max(pl.c_len()))?;
    let u = |v: usize| to_u32(op, v);
    let p = Params {
        m: u(pl.m)?,
        n: u(pl.n)?,
        k: u(pl.k)?,
        a_k_contig: (pl.a.cs == 1) as u32,
        a_rs: u(pl.a.rs)?,
        a_cs: u(pl.a.cs)?,
        a_bs: u(pl.a.bs)?,
        b_n_contig: (pl.b.cs == 1) as u32,
        b_rs: u(pl.b.rs)?,
        b_cs: u(pl.b.cs)?,
        b_bs: u(pl.b.bs)?,
        _pad: 0,
    };
    let tile = TILE as usize;
    let groups = [
        u(pl.n.div_ceil(tile))?,
        u(pl.m.div_ceil(tile))?,
        u(pl.batch)?,
    ];
    ctx.dispatch(&FORWARD, &[], &p, &[a, b, c], groups)
}

/// `C = op(A)·op(B)` per batch; returns `C` with shape `d.c_shape()`.
pub fn matmul(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor, d: &MatmulDims) -> Result<GpuTensor> {
    check_f32("matmul", &[a, b])?;
    d.validate(a.numel(), b.numel())?;
    let c = ctx.zeros(&d.c_shape(), DType::F32)?;
    launch(ctx, "matmul", a, b, &c, &d.plan())?;
    Ok(c)
}

/// Gradients `(dA, dB)` of `C = op(A)·op(B)` given `dC`, shaped like `a` and `b` (with
/// `broadcast_b`, `dB` is summed over the batch).
pub fn matmul_backward(
    ctx: &GpuContext,
    a: &GpuTensor,
    b: &GpuTensor,
    dc: &GpuTensor,
    d: &MatmulDims,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "matmul_backward";
    check_f32(OP, &[a, b, dc])?;
    d.validate(a.numel(), b.numel())?;
    if dc.numel() != d.c_len() {
        return Err(DeviceError::Shape {
            op: OP,
            detail: format!("dC of shape {:?} for {d:?}", dc.shape),
        });
    }
    let plans = backward_plans(d);
    let pick = |s: Src| match s {
        Src::A => a,
        Src::B => b,
        Src::DC => dc,
    };
    let da = ctx.zeros(&a.shape, DType::F32)?;
    launch(
        ctx,
        OP,
        pick(plans.da_src.0),
        pick(plans.da_src.1),
        &da,
        &plans.da,
    )?;
    let (lhs, rhs) = (pick(plans.db_src.0), pick(plans.db_src.1));
    let db = ctx.zeros(&b.shape, DType::F32)?;
    if plans.sum_batch {
        let len = d.b_len();
        let scratch = ctx.zeros(&[plans.db.batch, len], DType::F32)?;
        launch(ctx, OP, lhs, rhs, &scratch, &plans.db)?;
        let p = ReduceParams {
            len: to_u32(OP, len)?,
            batch: to_u32(OP, plans.db.batch)?,
            _pad: [0; 2],
        };
        ctx.dispatch(&REDUCE_BATCH, &[], &p, &[&scratch, &db], groups_1d(len, WG))?;
    } else {
        launch(ctx, OP, lhs, rhs, &db, &plans.db)?;
    }
    Ok((da, db))
}
