//! DSR training on the device: the three losses (each fused with its score gradient, reduced
//! through fixed-order partial sums) and the backward from `ds` to `W_r`, `W_q` and `e`.

use super::select::softmax_state;
use super::*;

crate::gpu_params! {
    pub(crate) struct BceParams {
        n: u32,
        nspans: u32,
        groups: u32,
        inv_n: f32,
    }
}

crate::gpu_params! {
    pub(crate) struct ComputeParams {
        n: u32,
        groups: u32,
        tau: f32,
        inv_t: f32,
        inv_n: f32,
        _pad: [u32; 3],
    }
}

crate::gpu_params! {
    pub(crate) struct ReduceParams {
        groups: u32,
        channels: u32,
        scale: f32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct PadParams {
        n_ctx: u32,
        n: u32,
        scale: f32,
        _pad: u32,
    }
}

crate::gpu_params! {
    pub(crate) struct GradEParams {
        n: u32,
        dm: u32,
        n_ctx: u32,
        q0: u32,
        q1: u32,
        inv_nq: f32,
        _pad: [u32; 2],
    }
}

/// Gradients on the device (`dw_r`, `dw_q`: `[dm, dr]`; `de`: `[n, dm]`).
#[derive(Debug, Clone)]
pub struct GpuDsrGrads {
    pub dw_r: GpuTensor,
    pub dw_q: GpuTensor,
    pub de: Option<GpuTensor>,
}

fn scores_len(op: &'static str, s: &GpuTensor) -> Result<usize> {
    check_dtype(op, DType::F32, &[s])?;
    let n = s.numel();
    if n == 0 {
        return Err(DeviceError::Shape {
            op,
            detail: "no context scores".into(),
        });
    }
    to_u32(op, n)?;
    Ok(n)
}

/// `out[c] = scale·Σ_g part[c·groups + g]` for `channels` channels.
fn reduce(
    ctx: &GpuContext,
    part: &GpuTensor,
    groups: usize,
    channels: usize,
    scale: f32,
) -> Result<GpuTensor> {
    let out = ctx.zeros(&[channels], DType::F32)?;
    let p = ReduceParams {
        groups: groups as u32,
        channels: channels as u32,
        scale,
        _pad: 0,
    };
    ctx.dispatch(&REDUCE_PARTIALS, &[], &p, &[part, &out], [1, 1, 1])?;
    Ok(out)
}

/// Retrieval BCE against the (dilated) supporting spans: `(loss [1], ds [n_ctx])`.
pub fn retrieval_bce(
    ctx: &GpuContext,
    s: &GpuTensor,
    spans: &[(usize, usize)],
    dilation: usize,
) -> Result<(GpuTensor, GpuTensor)> {
    let n = scores_len("dsr_retrieval_bce", s)?;
    let flat_spans = super::super::cpu::dilated_spans(n, spans, dilation)?;
    let sp = ctx.upload_u32(&flat_spans, &[flat_spans.len()])?;
    let g = partial_groups(n);
    let ds = ctx.zeros(&[n], DType::F32)?;
    let part = ctx.zeros(&[g], DType::F32)?;
    let p = BceParams {
        n: n as u32,
        nspans: (flat_spans.len() / 2) as u32,
        groups: g as u32,
        inv_n: 1.0 / n as f32,
    };
    ctx.dispatch(&LOSS_BCE, &[], &p, &[s, &sp, &ds, &part], [g as u32, 1, 1])?;
    Ok((reduce(ctx, &part, g, 1, 1.0 / n as f32)?, ds))
}

/// Attention distillation `KL(target ‖ softmax(s))`: `(out [2], ds [n_ctx])` with
/// `out[0]` the loss and `out[1]` = Σ target. Target masses must be ≥ 0 (the CPU path checks;
/// here a non-positive mass counts as 0 in the loss).
pub fn retrieval_kl(
    ctx: &GpuContext,
    s: &GpuTensor,
    target: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "dsr_retrieval_kl";
    let n = scores_len(OP, s)?;
    check_dtype(OP, DType::F32, &[target])?;
    if target.numel() != n {
        return Err(DeviceError::Shape {
            op: OP,
            detail: format!("target {:?} for {n} scores", target.shape),
        });
    }
    let state = softmax_state(ctx, s, 1, n, 0, 0.0)?;
    let g = partial_groups(n);
    let part = ctx.zeros(&[2 * g], DType::F32)?;
    let p = partials(n, g);
    ctx.dispatch(
        &LOSS_KL,
        &[],
        &p,
        &[s, target, &state, &part],
        [g as u32, 1, 1],
    )?;
    let sums = reduce(ctx, &part, g, 2, 1.0)?;
    let ds = ctx.zeros(&[n], DType::F32)?;
    let p = partials(n, g);
    ctx.dispatch(&KL_GRAD, &[], &p, &[s, target, &state, &sums, &ds], flat(n))?;
    Ok((sums, ds))
}

/// Compute loss `mean σ((s − τ)/T)`: `(loss [1], ds [n_ctx])`.
pub fn compute_loss(
    ctx: &GpuContext,
    s: &GpuTensor,
    cfg: &DsrConfig,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "dsr_compute_loss";
    validate_config(OP, cfg)?;
    let n = scores_len(OP, s)?;
    let g = partial_groups(n);
    let ds = ctx.zeros(&[n], DType::F32)?;
    let part = ctx.zeros(&[g], DType::F32)?;
    let p = ComputeParams {
        n: n as u32,
        groups: g as u32,
        tau: cfg.tau,
        inv_t: 1.0 / cfg.temperature,
        inv_n: 1.0 / n as f32,
        _pad: [0; 3],
    };
    ctx.dispatch(&LOSS_COMPUTE, &[], &p, &[s, &ds, &part], [g as u32, 1, 1])?;
    Ok((reduce(ctx, &part, g, 1, 1.0 / n as f32)?, ds))
}

/// Maps the summed score gradient `ds: [n_ctx]` to `dW_r`, `dW_q` and optionally `de`
/// (factored form, see the module doc); every product is a matmul.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    ctx: &GpuContext,
    e: &GpuTensor,
    w_r: &GpuTensor,
    w_q: &GpuTensor,
    fwd: &GpuDsrScores,
    ds: &GpuTensor,
    d: &DsrDims,
    cfg: &DsrConfig,
    want_de: bool,
) -> Result<GpuDsrGrads> {
    const OP: &str = "dsr_backward";
    check_dtype(
        OP,
        DType::F32,
        &[e, w_r, w_q, ds, &fwd.qv, &fwd.u, &fwd.e_mean],
    )?;
    d.validate(OP, cfg, e.numel(), w_r.numel(), w_q.numel())?;
    let (n, dm, dr) = (d.n, d.dm, cfg.reduced_dim);
    if ds.numel() != d.n_ctx
        || fwd.qv.numel() != dr
        || fwd.u.numel() != dm
        || fwd.e_mean.numel() != dm
    {
        return Err(DeviceError::Shape {
            op: OP,
            detail: format!(
                "ds {:?} for {} context tokens, or forward state of another shape",
                ds.shape, d.n_ctx
            ),
        });
    }
    let sc = super::super::cpu::scale(cfg);
    let dss = ctx.zeros(&[1, n], DType::F32)?;
    let p = PadParams {
        n_ctx: d.n_ctx as u32,
        n: n as u32,
        scale: sc,
        _pad: 0,
    };
    ctx.dispatch(&PAD_SCALE, &[], &p, &[ds, &dss], flat(n))?;
    let g = mm::matmul(ctx, &dss, e, &MatmulDims::new(1, n, dm))?;
    let dw_r = mm::matmul(ctx, &g, &fwd.qv, &MatmulDims::new(dm, 1, dr))?;
    let dqv = mm::matmul(ctx, &g, w_r, &MatmulDims::new(1, dm, dr))?;
    let dw_q = mm::matmul(ctx, &fwd.e_mean, &dqv, &MatmulDims::new(dm, 1, dr))?;
    let de = if want_de {
        let v = mm::matmul(ctx, w_q, &dqv, &MatmulDims::new(dm, dr, 1))?;
        let de = ctx.zeros(&[n, dm], DType::F32)?;
        let p = GradEParams {
            n: n as u32,
            dm: dm as u32,
            n_ctx: d.n_ctx as u32,
            q0: d.q0 as u32,
            q1: d.q1 as u32,
            inv_nq: 1.0 / d.nq() as f32,
            _pad: [0; 2],
        };
        ctx.dispatch(&GRAD_E, &[], &p, &[&dss, &fwd.u, &v, &de], flat(n * dm))?;
        Some(de)
    } else {
        None
    };
    Ok(GpuDsrGrads { dw_r, dw_q, de })
}
