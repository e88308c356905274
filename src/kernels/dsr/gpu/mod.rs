//! Host launchers for the DSR WGSL kernels: scoring here, the selection (radix select and
//! prefix sums) in `select`, the losses and the backward in `train`.

pub(crate) mod select;
pub(crate) mod train;

pub use select::{select, GpuSelection};
pub use train::{backward, compute_loss, retrieval_bce, retrieval_kl, GpuDsrGrads};

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor, Result};
use crate::kernels::matmul::{gpu as mm, MatmulDims};

/// The scoring pass's outputs, kept on the device for the selection and the backward.
#[derive(Debug, Clone)]
pub struct GpuDsrScores {
    /// `s: [n_ctx]`.
    pub scores: GpuTensor,
    /// `qv: [1, dr]`.
    pub qv: GpuTensor,
    /// `u = W_r·qv: [dm, 1]` (unscaled).
    pub u: GpuTensor,
    /// `ē_Q: [dm]`.
    pub e_mean: GpuTensor,
}

crate::gpu_params! {
    /// `n` values reduced in `groups` workgroup partials (stats_partial, loss_kl, kl_grad).
    pub(crate) struct Partials {
        n: u32,
        groups: u32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    pub(crate) struct BlockMax {
        n_ctx: u32,
        block: u32,
        nb: u32,
        _pad: u32,
    }
}

crate::gpu_params! {
    /// Radix pass `pass_` over `nb` block keys, histograms from `groups` workgroups.
    pub(crate) struct Radix {
        nb: u32,
        pass_: u32,
        groups: u32,
        _pad: u32,
    }
}

crate::gpu_params! {
    /// `nb` blocks (mark_ties, mark_selected).
    pub(crate) struct Blocks {
        nb: u32,
        _pad: [u32; 3],
    }
}

crate::gpu_params! {
    /// A prefix sum over `len` values (scan_local, scan_add).
    pub(crate) struct ScanLen {
        len: u32,
        _pad: [u32; 3],
    }
}

crate::gpu_params! {
    /// The question rows `[q0, q1)` of `dm`-wide embeddings.
    pub(crate) struct QuestionRows {
        q0: u32,
        q1: u32,
        dm: u32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct ScoreParams {
        n_ctx: u32,
        dm: u32,
        scale: f32,
        _pad: u32,
    }
}

/// `n` values in `groups` partials.
pub(crate) fn partials(n: usize, groups: usize) -> Partials {
    Partials {
        n: n as u32,
        groups: groups as u32,
        _pad: [0; 2],
    }
}

pub(crate) fn to_u32(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| DeviceError::Shape {
        op,
        detail: format!("{v} does not fit the kernels' 32-bit indices"),
    })
}

pub(crate) fn check_dtype(op: &'static str, want: DType, ts: &[&GpuTensor]) -> Result<()> {
    match ts.iter().find(|t| t.dtype != want) {
        Some(t) => Err(DeviceError::Shape {
            op,
            detail: format!(
                "expected {want:?}, got {:?} of shape {:?}",
                t.dtype, t.shape
            ),
        }),
        None => Ok(()),
    }
}

/// Workgroups of a grid-strided partial reduction over `n` elements.
pub(crate) fn partial_groups(n: usize) -> usize {
    n.div_ceil(WG as usize).clamp(1, MAX_PARTIALS)
}

/// One thread per item, folded into 2-D past 65535 workgroups.
pub(crate) fn flat(items: usize) -> [u32; 3] {
    groups_1d(items, WG)
}

/// Scores of the context tokens: `ē_Q` (kernel), `qv = ē_Q·W_q` and `u = W_r·qv` (matmuls),
/// then one dot product per context token.
pub fn scores(
    ctx: &GpuContext,
    e: &GpuTensor,
    w_r: &GpuTensor,
    w_q: &GpuTensor,
    d: &DsrDims,
    cfg: &DsrConfig,
) -> Result<GpuDsrScores> {
    const OP: &str = "dsr_scores";
    check_dtype(OP, DType::F32, &[e, w_r, w_q])?;
    d.validate(OP, cfg, e.numel(), w_r.numel(), w_q.numel())?;
    let (dm, dr) = (d.dm, cfg.reduced_dim);
    let e_mean = ctx.zeros(&[dm], DType::F32)?;
    let p = QuestionRows {
        q0: d.q0 as u32,
        q1: d.q1 as u32,
        dm: dm as u32,
        _pad: 0,
    };
    ctx.dispatch(&QUESTION_MEAN, &[], &p, &[e, &e_mean], flat(dm))?;
    let qv = mm::matmul(ctx, &e_mean, w_q, &MatmulDims::new(1, dm, dr))?;
    let u = mm::matmul(ctx, w_r, &qv, &MatmulDims::new(dm, dr, 1))?;
    let scores = ctx.zeros(&[d.n_ctx], DType::F32)?;
    let p = ScoreParams {
        n_ctx: d.n_ctx as u32,
        dm: dm as u32,
        scale: super::cpu::scale(cfg),
        _pad: 0,
    };
    ctx.dispatch(&SCORES, &[], &p, &[e, &u, &scores], flat(d.n_ctx))?;
    Ok(GpuDsrScores {
        scores,
        qv,
        u,
        e_mean,
    })
}

/// Scores then selection: the whole forward.
pub fn forward(
    ctx: &GpuContext,
    e: &GpuTensor,
    w_r: &GpuTensor,
    w_q: &GpuTensor,
    d: &DsrDims,
    cfg: &DsrConfig,
) -> Result<(GpuDsrScores, GpuSelection)> {
    let sc = scores(ctx, e, w_r, w_q, d, cfg)?;
    let sel = select(ctx, &sc.scores, d.q0, d.q1, cfg)?;
    Ok((sc, sel))
}
