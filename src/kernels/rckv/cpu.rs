//! CPU reference (and CPU backend) for RCKV compression, reconstruction and the compression
//! loss. The products go through the fast `matmul` path; the concat/split are row copies
//! (rayon over rows for big inputs); the loss sums in f64.

use rayon::prelude::*;

use super::{shape_err, RckvDims};
use crate::device::Result;
use crate::kernels::matmul::{cpu as mm, MatmulDims};

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 15;

/// `c = x·Dᵀ`: `[n, 2dm]·[latent, 2dm]ᵀ`.
pub(crate) fn compress_dims(d: &RckvDims) -> MatmulDims {
    MatmulDims::new(d.n, d.width(), d.latent).transpose_b()
}

/// `x̂ = c·Uᵀ`: `[n, latent]·[2dm, latent]ᵀ`.
pub(crate) fn reconstruct_dims(d: &RckvDims) -> MatmulDims {
    MatmulDims::new(d.n, d.latent, d.width()).transpose_b()
}

/// `x[r] = [k[r], v[r]]`: `[n, dm]` twice → `[n, 2dm]`.
pub fn concat_kv(k: &[f32], v: &[f32], dm: usize) -> Result<Vec<f32>> {
    if dm == 0 || k.len() != v.len() || !k.len().is_multiple_of(dm) {
        return Err(shape_err(
            "rckv_concat",
            format!("k of {} and v of {} values with dm {dm}", k.len(), v.len()),
        ));
    }
    Ok(concat_rows(k, v, dm))
}

/// [`concat_kv`] for operands already checked.
fn concat_rows(k: &[f32], v: &[f32], dm: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; 2 * k.len()];
    let fill = |(row, (kr, vr)): (&mut [f32], (&[f32], &[f32]))| {
        row[..dm].copy_from_slice(kr);
        row[dm..].copy_from_slice(vr);
    };
    if x.len() >= PAR_MIN {
        x.par_chunks_mut(2 * dm)
            .zip(k.par_chunks(dm).zip(v.par_chunks(dm)))
            .for_each(fill);
    } else {
        x.chunks_mut(2 * dm)
            .zip(k.chunks(dm).zip(v.chunks(dm)))
            .for_each(fill);
    }
    x
}

/// The inverse of [`concat_kv`]: `[n, 2dm]` → `(k, v)`, each `[n, dm]`.
pub fn split_kv(x: &[f32], dm: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    if dm == 0 || !x.len().is_multiple_of(2 * dm) {
        return Err(shape_err(
            "rckv_split",
            format!("x of {} values is not rows of 2·{dm}", x.len()),
        ));
    }
    Ok(split_rows(x, dm))
}

/// [`split_kv`] for an operand already checked.
fn split_rows(x: &[f32], dm: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut k, mut v) = (vec![0.0f32; x.len() / 2], vec![0.0f32; x.len() / 2]);
    let take = |(row, (kr, vr)): (&[f32], (&mut [f32], &mut [f32]))| {
        kr.copy_from_slice(&row[..dm]);
        vr.copy_from_slice(&row[dm..]);
    };
    if x.len() >= PAR_MIN {
        x.par_chunks(2 * dm)
            .zip(k.par_chunks_mut(dm).zip(v.par_chunks_mut(dm)))
            .for_each(take);
    } else {
        x.chunks(2 * dm)
            .zip(k.chunks_mut(dm).zip(v.chunks_mut(dm)))
            .for_each(take);
    }
    (k, v)
}

fn check_kv(op: &'static str, k: &[f32], v: &[f32], d: &RckvDims) -> Result<()> {
    d.check(op)?;
    RckvDims::expect(op, "k", k.len(), d.n * d.dm)?;
    RckvDims::expect(op, "v", v.len(), d.n * d.dm)
}

/// Latents `c: [n, latent]` of `k, v: [n, dm]` with `D: [latent, 2dm]`.
pub fn compress(k: &[f32], v: &[f32], dmat: &[f32], d: &RckvDims) -> Result<Vec<f32>> {
    const OP: &str = "rckv_compress";
    check_kv(OP, k, v, d)?;
    RckvDims::expect(OP, "D", dmat.len(), d.proj_len())?;
    Ok(mm::matmul(
        &concat_rows(k, v, d.dm),
        dmat,
        &compress_dims(d),
    ))
}

/// Gradients `(dk, dv, dD)` of [`compress`] given `dc: [n, latent]`.
pub fn compress_backward(
    k: &[f32],
    v: &[f32],
    dmat: &[f32],
    dc: &[f32],
    d: &RckvDims,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    const OP: &str = "rckv_compress_backward";
    check_kv(OP, k, v, d)?;
    RckvDims::expect(OP, "D", dmat.len(), d.proj_len())?;
    RckvDims::expect(OP, "dc", dc.len(), d.n * d.latent)?;
    let x = concat_rows(k, v, d.dm);
    let (dx, dd) = mm::matmul_backward(&x, dmat, dc, &compress_dims(d));
    let (dk, dv) = split_rows(&dx, d.dm);
    Ok((dk, dv, dd))
}

/// `(k̂, v̂)`, each `[n, dm]`, from latents `c: [n, latent]` with `U: [2dm, latent]`.
pub fn reconstruct(c: &[f32], u: &[f32], d: &RckvDims) -> Result<(Vec<f32>, Vec<f32>)> {
    const OP: &str = "rckv_reconstruct";
    d.check(OP)?;
    RckvDims::expect(OP, "c", c.len(), d.n * d.latent)?;
    RckvDims::expect(OP, "U", u.len(), d.proj_len())?;
    Ok(split_rows(&mm::matmul(c, u, &reconstruct_dims(d)), d.dm))
}

/// Gradients `(dc, dU)` of [`reconstruct`] given `dk̂, dv̂: [n, dm]`.
pub fn reconstruct_backward(
    c: &[f32],
    u: &[f32],
    dkhat: &[f32],
    dvhat: &[f32],
    d: &RckvDims,
) -> Result<(Vec<f32>, Vec<f32>)> {
    const OP: &str = "rckv_reconstruct_backward";
    d.check(OP)?;
    RckvDims::expect(OP, "c", c.len(), d.n * d.latent)?;
    RckvDims::expect(OP, "U", u.len(), d.proj_len())?;
    RckvDims::expect(OP, "dk̂", dkhat.len(), d.n * d.dm)?;
    RckvDims::expect(OP, "dv̂", dvhat.len(), d.n * d.dm)?;
    let dxhat = concat_rows(dkhat, dvhat, d.dm);
    Ok(mm::matmul_backward(c, u, &dxhat, &reconstruct_dims(d)))
}

/// `(L, dL/dx̂)` with `L = mean((x̂ − x)²)` over all elements (0 for empty input) and
/// `dL/dx̂ = 2(x̂ − x)/len`; `dL/dx` is its negation.
pub fn mse(x: &[f32], xhat: &[f32]) -> Result<(f32, Vec<f32>)> {
    RckvDims::expect("rckv_mse", "x̂", xhat.len(), x.len())?;
    if x.is_empty() {
        return Ok((0.0, Vec::new()));
    }
    let scale = 2.0 / x.len() as f32;
    let sq = |(&a, &b): (&f32, &f32)| {
        let e = (b - a) as f64;
        e * e
    };
    let (sum, grad): (f64, Vec<f32>) = if x.len() >= PAR_MIN {
        (
            x.par_iter().zip(xhat).map(sq).sum(),
            x.par_iter()
                .zip(xhat)
                .map(|(&a, &b)| (b - a) * scale)
                .collect(),
        )
    } else {
        (
            x.iter().zip(xhat).map(sq).sum(),
            x.iter().zip(xhat).map(|(&a, &b)| (b - a) * scale).collect(),
        )
    };
    Ok(((sum / x.len() as f64) as f32, grad))
}

/// The compression loss and its gradients with respect to every input.
#[derive(Debug, Clone)]
pub struct CompressionLoss {
    /// `mean((U·D·x − x)²)` over the `n·2dm` elements of `x = [k; v]`.
    pub loss: f32,
    pub dd: Vec<f32>,
    pub du: Vec<f32>,
    pub dk: Vec<f32>,
    pub dv: Vec<f32>,
}

/// Forward and backward of the compression loss `mean ‖x − U·D·x‖²` (per element), `x = [k; v]`.
pub fn compression_loss(
    k: &[f32],
    v: &[f32],
    dmat: &[f32],
    u: &[f32],
    d: &RckvDims,
) -> Result<CompressionLoss> {
    const OP: &str = "rckv_compression_loss";
    check_kv(OP, k, v, d)?;
    RckvDims::expect(OP, "D", dmat.len(), d.proj_len())?;
    RckvDims::expect(OP, "U", u.len(), d.proj_len())?;
    let x = concat_rows(k, v, d.dm);
    let c = mm::matmul(&x, dmat, &compress_dims(d));
    let xhat = mm::matmul(&c, u, &reconstruct_dims(d));
    let (loss, g) = mse(&x, &xhat)?;
    let (dc, du) = mm::matmul_backward(&c, u, &g, &reconstruct_dims(d));
    let (mut dx, dd) = mm::matmul_backward(&x, dmat, &dc, &compress_dims(d));
    // x also enters the loss directly: ∂/∂x of (x̂ − x)² is −g.
    dx.iter_mut().zip(&g).for_each(|(a, b)| *a -= b);
    let (dk, dv) = split_rows(&dx, d.dm);
    Ok(CompressionLoss {
        loss,
        dd,
        du,
        dk,
        dv,
    })
}
