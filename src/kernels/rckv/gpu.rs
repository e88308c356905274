//! Host launchers for RCKV compression, reconstruction and the compression loss on the device.
//! Products are `matmul` calls; `concat` / `split` move between `k, v` and `x = [k; v]`.

use super::cpu::{compress_dims, reconstruct_dims};
use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor};
use crate::kernels::{elementwise::gpu as ew, matmul::gpu as mm};

crate::gpu_params! {
    pub(crate) struct CopyParams {
        total: u32,
        dm: u32,
        _pad: [u32; 2],
    }
}

crate::gpu_params! {
    /// rckv/sum_partials: `inv_n · Σ` of `count` partial sums (also elementwise's sum of squares).
    pub(crate) struct SumParams {
        pub(crate) count: u32,
        pub(crate) inv_n: f32,
        pub(crate) _pad: [u32; 2],
    }
}

crate::gpu_params! {
    pub(crate) struct MseParams {
        n: u32,
        scale: f32,
        _pad: [u32; 2],
    }
}

fn f32_2d(op: &'static str, what: &str, t: &GpuTensor) -> Result<(usize, usize)> {
    match (t.dtype, t.shape.as_slice()) {
        (DType::F32, &[r, c]) => Ok((r, c)),
        _ => Err(shape_err(
            op,
            format!(
                "{what} must be a 2-D f32 tensor, got {:?} {:?}",
                t.dtype, t.shape
            ),
        )),
    }
}

fn expect_shape(op: &'static str, what: &str, t: &GpuTensor, want: [usize; 2]) -> Result<()> {
    if f32_2d(op, what, t)? != (want[0], want[1]) {
        return Err(shape_err(
            op,
            format!("{what} has shape {:?}, expected {want:?}", t.shape),
        ));
    }
    Ok(())
}

/// `(n, dm)` of `k, v: [n, dm]`, which must match.
fn kv_shape(op: &'static str, k: &GpuTensor, v: &GpuTensor) -> Result<(usize, usize)> {
    let (n, dm) = f32_2d(op, "k", k)?;
    expect_shape(op, "v", v, [n, dm])?;
    Ok((n, dm))
}

/// `latent` of `D: [latent, 2dm]`.
fn d_latent(op: &'static str, dmat: &GpuTensor, dm: usize) -> Result<usize> {
    let (latent, w) = f32_2d(op, "D", dmat)?;
    if w != 2 * dm {
        return Err(shape_err(
            op,
            format!(
                "D has shape {:?}, expected [latent, {}]",
                dmat.shape,
                2 * dm
            ),
        ));
    }
    Ok(latent)
}

/// `x = [k; v]`: `[n, 2dm]` from `k, v: [n, dm]`.
pub fn concat_kv(ctx: &GpuContext, k: &GpuTensor, v: &GpuTensor) -> Result<GpuTensor> {
    const OP: &str = "rckv_concat";
    let (n, dm) = kv_shape(OP, k, v)?;
    RckvDims { n, dm, latent: 1 }.check(OP)?;
    let x = ctx.zeros(&[n, 2 * dm], DType::F32)?;
    let p = CopyParams {
        total: (n * 2 * dm) as u32,
        dm: dm as u32,
        _pad: [0; 2],
    };
    ctx.dispatch(&CONCAT, &[], &p, &[k, v, &x], groups_1d(n * 2 * dm, WG))?;
    Ok(x)
}

/// `(k, v)`, each `[n, dm]`, from `x: [n, 2dm]`.
pub fn split_kv(ctx: &GpuContext, x: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "rckv_split";
    let (n, w) = f32_2d(OP, "x", x)?;
    if !w.is_multiple_of(2) {
        return Err(shape_err(OP, format!("x width {w} is odd")));
    }
    let dm = w / 2;
    RckvDims { n, dm, latent: 1 }.check(OP)?;
    let k = ctx.zeros(&[n, dm], DType::F32)?;
    let v = ctx.zeros(&[n, dm], DType::F32)?;
    let p = CopyParams {
        total: (n * dm) as u32,
        dm: dm as u32,
        _pad: [0; 2],
    };
    ctx.dispatch(&SPLIT, &[], &p, &[x, &k, &v], groups_1d(n * dm, WG))?;
    Ok((k, v))
}

/// Latents `c: [n, latent]` of `k, v: [n, dm]` with `D: [latent, 2dm]`.
pub fn compress(
    ctx: &GpuContext,
    k: &GpuTensor,
    v: &GpuTensor,
    dmat: &GpuTensor,
) -> Result<GpuTensor> {
    const OP: &str = "rckv_compress";
    let (n, dm) = kv_shape(OP, k, v)?;
    let latent = d_latent(OP, dmat, dm)?;
    let d = RckvDims { n, dm, latent };
    d.check(OP)?;
    let x = concat_kv(ctx, k, v)?;
    mm::matmul(ctx, &x, dmat, &compress_dims(&d))
}

/// Gradients `(dk, dv, dD)` of [`compress`] given `dc: [n, latent]`.
pub fn compress_backward(
    ctx: &GpuContext,
    k: &GpuTensor,
    v: &GpuTensor,
    dmat: &GpuTensor,
    dc: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    const OP: &str = "rckv_compress_backward";
    let (n, dm) = kv_shape(OP, k, v)?;
    let latent = d_latent(OP, dmat, dm)?;
    let d = RckvDims { n, dm, latent };
    d.check(OP)?;
    expect_shape(OP, "dc", dc, [n, latent])?;
    let x = concat_kv(ctx, k, v)?;
    let (dx, dd) = mm::matmul_backward(ctx, &x, dmat, dc, &compress_dims(&d))?;
    let (dk, dv) = split_kv(ctx, &dx)?;
    Ok((dk, dv, dd))
}

/// Dims of a reconstruction from `c: [n, latent]` and `U: [2dm, latent]`.
fn recon_dims(op: &'static str, c: &GpuTensor, u: &GpuTensor) -> Result<RckvDims> {
    let (n, latent) = f32_2d(op, "c", c)?;
    let (w, ul) = f32_2d(op, "U", u)?;
    if ul != latent || !w.is_multiple_of(2) {
        return Err(shape_err(
            op,
            format!(
                "U has shape {:?}, expected [2·dm, {latent}] for c of shape {:?}",
                u.shape, c.shape
            ),
        ));
    }
    let d = RckvDims {
        n,
        dm: w / 2,
        latent,
    };
    d.check(op)?;
    Ok(d)
}

/// `(k̂, v̂)`, each `[n, dm]`, from latents `c: [n, latent]` with `U: [2dm, latent]`.
pub fn reconstruct(
    ctx: &GpuContext,
    c: &GpuTensor,
    u: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor)> {
    let d = recon_dims("rckv_reconstruct", c, u)?;
    let xhat = mm::matmul(ctx, c, u, &reconstruct_dims(&d))?;
    split_kv(ctx, &xhat)
}

/// Gradients `(dc, dU)` of [`reconstruct`] given `dk̂, dv̂: [n, dm]`.
pub fn reconstruct_backward(
    ctx: &GpuContext,
    c: &GpuTensor,
    u: &GpuTensor,
    dkhat: &GpuTensor,
    dvhat: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "rckv_reconstruct_backward";
    let d = recon_dims(OP, c, u)?;
    expect_shape(OP, "dk̂", dkhat, [d.n, d.dm])?;
    expect_shape(OP, "dv̂", dvhat, [d.n, d.dm])?;
    let dxhat = concat_kv(ctx, dkhat, dvhat)?;
    mm::matmul_backward(ctx, c, u, &dxhat, &reconstruct_dims(&d))
}

/// `(L [1], dL/dx̂)` with `L = mean((x̂ − x)²)` over all elements and `dL/dx̂ = 2(x̂ − x)/len`.
/// The loss stays on the device.
pub fn mse(ctx: &GpuContext, x: &GpuTensor, xhat: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "rckv_mse";
    if x.shape != xhat.shape || x.dtype != DType::F32 || xhat.dtype != DType::F32 {
        return Err(shape_err(
            OP,
            format!("x {:?} vs x̂ {:?} (both f32)", x.shape, xhat.shape),
        ));
    }
    let len = x.numel();
    let n = u32::try_from(len).map_err(|_| shape_err(OP, format!("{len} elements")))?;
    let loss = ctx.zeros(&[1], DType::F32)?;
    let grad = ctx.zeros(&x.shape, DType::F32)?;
    if len == 0 {
        return Ok((loss, grad));
    }
    let groups = groups_1d(len, WG);
    let count = groups[0] as usize * groups[1] as usize;
    let partials = ctx.zeros(&[count], DType::F32)?;
    let p = MseParams {
        n,
        scale: 2.0 / len as f32,
        _pad: [0; 2],
    };
    ctx.dispatch(&MSE, &[], &p, &[x, xhat, &grad, &partials], groups)?;
    let p = SumParams {
        count: count as u32,
        inv_n: 1.0 / len as f32,
        _pad: [0; 2],
    };
    ctx.dispatch(&SUM_PARTIALS, &[], &p, &[&partials, &loss], [1, 1, 1])?;
    Ok((loss, grad))
}

/// The compression loss (a `[1]` tensor) and its gradients, all on the device.
#[derive(Debug, Clone)]
pub struct GpuCompressionLoss {
    pub loss: GpuTensor,
    pub dd: GpuTensor,
    pub du: GpuTensor,
    pub dk: GpuTensor,
    pub dv: GpuTensor,
}

/// Forward and backward of `mean ‖x − U·D·x‖²` (per element), `x = [k; v]`.
pub fn compression_loss(
    ctx: &GpuContext,
    k: &GpuTensor,
    v: &GpuTensor,
    dmat: &GpuTensor,
    u: &GpuTensor,
) -> Result<GpuCompressionLoss> {
    const OP: &str = "rckv_compression_loss";
    let (n, dm) = kv_shape(OP, k, v)?;
    let latent = d_latent(OP, dmat, dm)?;
    let d = RckvDims { n, dm, latent };
    d.check(OP)?;
    expect_shape(OP, "U", u, [2 * dm, latent])?;
    let x = concat_kv(ctx, k, v)?;
    let c = mm::matmul(ctx, &x, dmat, &compress_dims(&d))?;
    let xhat = mm::matmul(ctx, &c, u, &reconstruct_dims(&d))?;
    let (loss, g) = mse(ctx, &x, &xhat)?;
    let (dc, du) = mm::matmul_backward(ctx, &c, u, &g, &reconstruct_dims(&d))?;
    let (dx_proj, dd) = mm::matmul_backward(ctx, &x, dmat, &dc, &compress_dims(&d))?;
    // x also enters the loss directly: ∂/∂x of (x̂ − x)² is −g.
    let dx = ew::add(ctx, &dx_proj, &g, -1.0)?;
    let (dk, dv) = split_kv(ctx, &dx)?;
    Ok(GpuCompressionLoss {
        loss,
        dd,
        du,
        dk,
        dv,
    })
}
