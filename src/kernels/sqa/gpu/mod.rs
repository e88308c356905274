//! Host launchers for the SQA WGSL kernels: shape and config checks (`DeviceError::Shape`),
//! output allocation, grids. The whole clustering runs on the device; nothing is read back.

mod cluster;

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor};

pub use cluster::{
    cluster, cluster_sort, kmeans_assign, kmeans_init, kmeans_update, normalize_keys, route,
};

/// The clustering as device tensors (see the shape legend); index tensors are `DType::U32`.
pub type GpuClusters = Clusters<GpuTensor, GpuTensor>;

crate::gpu_params! {
    /// The uniform every SQA kernel reads (each shader declares the same struct).
    #[derive(Default)]
    pub(crate) struct Params {
        bh: u32,
        n: u32,
        d: u32,
        c: u32,
        kk: u32,
        window: u32,
        sink: u32,
        scale: f32,
        /// Labels per head (count/scatter).
        len: u32,
        /// Divisor from label position to the written index (scatter).
        per: u32,
        /// Offsets of the second and third parts of a packed index buffer.
        o1: u32,
        o2: u32,
        tie: f32,
        _pad: [u32; 3],
    }
}

fn err<T>(op: &'static str, detail: String) -> Result<T> {
    Err(DeviceError::Shape { op, detail })
}

/// `(bh, n, d)` shared by every `[bh, n, d]` tensor in `all`, with `1 ≤ d ≤ MAX_D` and every
/// index the kernels form fitting u32.
fn dims(op: &'static str, all: &[(&str, &GpuTensor)]) -> Result<(usize, usize, usize)> {
    let (name0, first) = all[0];
    let &[bh, n, d] = first.shape.as_slice() else {
        return err(
            op,
            format!("{name0} must be [bh, n, d], got {:?}", first.shape),
        );
    };
    for (name, t) in all {
        if t.shape != first.shape || t.dtype != DType::F32 {
            let detail = format!(
                "{name} {:?} {:?} vs {name0} {:?} F32",
                t.shape, t.dtype, first.shape
            );
            return err(op, detail);
        }
    }
    if d == 0 || d > MAX_D as usize {
        return err(
            op,
            format!("head dim d = {d} outside 1..={MAX_D} (the kernels' MAX_D)"),
        );
    }
    Ok((bh, n, d))
}

/// Checks the config against the GPU limits and returns the kernels' uniform.
fn params(op: &'static str, cfg: &SqaConfig, (bh, n, d): (usize, usize, usize)) -> Result<Params> {
    cfg.validate(op, d)?;
    if cfg.clusters > MAX_C as usize {
        return err(op, format!("{} clusters > MAX_C = {MAX_C}", cfg.clusters));
    }
    let kk = cfg.routes();
    let widest = bh.saturating_mul(n).saturating_mul(d.max(kk).max(2));
    if widest >= u32::MAX as usize || n.saturating_mul(cfg.clusters) >= u32::MAX as usize {
        return err(
            op,
            format!("bh = {bh}, n = {n} overflow the kernels' u32 indices"),
        );
    }
    let u = |x: usize| x.min(u32::MAX as usize) as u32;
    Ok(Params {
        bh: u(bh),
        n: u(n),
        d: u(d),
        c: u(cfg.clusters),
        kk: u(kk),
        window: u(cfg.window),
        sink: u(cfg.sink),
        scale: 1.0 / (d as f32).sqrt(),
        tie: TIE_EPS,
        ..Params::default()
    })
}

fn expect(
    op: &'static str,
    name: &str,
    t: &GpuTensor,
    shape: &[usize],
    dtype: DType,
) -> Result<()> {
    if t.shape != shape || t.dtype != dtype {
        let detail = format!(
            "{name} is {:?} {:?}, expected {shape:?} {dtype:?}",
            t.shape, t.dtype
        );
        return err(op, detail);
    }
    Ok(())
}

fn check_clusters(op: &'static str, cl: &GpuClusters, p: &Params) -> Result<()> {
    let (bh, n, d, c, kk) = (
        p.bh as usize,
        p.n as usize,
        p.d as usize,
        p.c as usize,
        p.kk as usize,
    );
    expect(op, "centroids", &cl.centroids, &[bh, c, d], DType::F32)?;
    expect(op, "assign", &cl.assign, &[bh, n], DType::U32)?;
    expect(op, "offsets", &cl.offsets, &[bh, c + 1], DType::U32)?;
    expect(op, "order", &cl.order, &[bh, n], DType::U32)?;
    expect(op, "routes", &cl.routes, &[bh, n, kk], DType::U32)
}

/// One u32 buffer holding `parts` back to back (buffer copies, recorded with the dispatches),
/// so a kernel sees several index arrays through one binding.
fn concat_u32(ctx: &GpuContext, parts: &[&GpuTensor]) -> Result<GpuTensor> {
    let total: usize = parts.iter().map(|t| t.numel()).sum();
    let out = ctx.zeros(&[total], DType::U32)?;
    ctx.scoped("sqa concat", || {
        ctx.with_encoder(|enc| {
            let mut at = 0;
            for t in parts.iter().filter(|t| t.numel() > 0) {
                let bytes = t.numel() as u64 * 4;
                enc.copy_buffer_to_buffer(t.buffer(), 0, out.buffer(), at, bytes);
                at += bytes;
            }
        })
    })?;
    Ok(out)
}

/// SQA forward over the selected keys: `(o [bh, n, d], lse [bh, n])`.
pub fn sqa_forward(
    ctx: &GpuContext,
    (q, k, v): (&GpuTensor, &GpuTensor, &GpuTensor),
    cl: &GpuClusters,
    cfg: &SqaConfig,
) -> Result<(GpuTensor, GpuTensor)> {
    let op = "sqa_forward";
    let s = dims(op, &[("q", q), ("k", k), ("v", v)])?;
    let mut p = params(op, cfg, s)?;
    check_clusters(op, cl, &p)?;
    let o = ctx.zeros(&q.shape, DType::F32)?;
    let lse = ctx.zeros(&[s.0, s.1], DType::F32)?;
    let idx = concat_u32(ctx, &[&cl.offsets, &cl.order, &cl.routes])?;
    p.o1 = cl.offsets.numel() as u32;
    p.o2 = p.o1 + cl.order.numel() as u32;
    let groups = groups_1d(s.0 * s.1, 1);
    ctx.dispatch(&FORWARD, &[], &p, &[q, k, v, &idx, &o, &lse], groups)?;
    Ok((o, lse))
}

/// SQA backward from the forward's `o` and `lse`: `(dq, dk, dv)`, each `[bh, n, d]`.
pub fn sqa_backward(
    ctx: &GpuContext,
    (q, k, v): (&GpuTensor, &GpuTensor, &GpuTensor),
    (o, lse, dout): (&GpuTensor, &GpuTensor, &GpuTensor),
    cl: &GpuClusters,
    cfg: &SqaConfig,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let op = "sqa_backward";
    let all = [("q", q), ("k", k), ("v", v), ("o", o), ("dout", dout)];
    let s = dims(op, &all)?;
    let mut p = params(op, cfg, s)?;
    check_clusters(op, cl, &p)?;
    expect(op, "lse", lse, &[s.0, s.1], DType::F32)?;
    let rows = s.0 * s.1;
    let stats = ctx.zeros(&[rows, 2], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_PREPROCESS,
        &[],
        &p,
        &[o, dout, lse, &stats],
        groups_1d(rows, WG),
    )?;
    // The inverse routing lists: for each cluster, the queries routed to it.
    let (qoff, qlist) = cluster::counting_sort(ctx, &cl.routes, &p, p.kk as usize)?;
    let zeros = || ctx.zeros(&q.shape, DType::F32);
    let (dq, dk, dv) = (zeros()?, zeros()?, zeros()?);
    let idx = concat_u32(ctx, &[&cl.offsets, &cl.order, &cl.routes])?;
    p.o1 = cl.offsets.numel() as u32;
    p.o2 = p.o1 + cl.order.numel() as u32;
    let groups = groups_1d(rows, 1);
    ctx.dispatch(
        &BACKWARD_DQ,
        &[],
        &p,
        &[q, k, v, dout, &stats, &idx, &dq],
        groups,
    )?;
    let idx = concat_u32(ctx, &[&cl.assign, &qoff, &qlist])?;
    p.o1 = cl.assign.numel() as u32;
    p.o2 = p.o1 + qoff.numel() as u32;
    ctx.dispatch(
        &BACKWARD_DKDV,
        &[],
        &p,
        &[q, k, v, dout, &stats, &idx, &dk, &dv],
        groups,
    )?;
    Ok((dq, dk, dv))
}

/// Attention recall per head `[bh]` from the SQA forward's `lse`: the mean over queries of
/// `min(1, exp(lse − lse_dense))`, the dense lse computed on the device.
pub fn recall(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    lse: &GpuTensor,
) -> Result<GpuTensor> {
    let op = "sqa recall";
    let s = dims(op, &[("q", q), ("k", k)])?;
    let p = params(op, &SqaConfig::default(), s)?;
    expect(op, "lse", lse, &[s.0, s.1], DType::F32)?;
    if s.1 == 0 {
        return ctx.zeros(&[s.0], DType::F32);
    }
    let per_query = ctx.zeros(&[s.0, s.1], DType::F32)?;
    let groups = groups_1d(s.0 * s.1, 1);
    ctx.dispatch(&RECALL, &[], &p, &[q, k, lse, &per_query], groups)?;
    let mean = ctx.zeros(&[s.0], DType::F32)?;
    ctx.dispatch(
        &RECALL_MEAN,
        &[],
        &p,
        &[&per_query, &mean],
        groups_1d(s.0, 1),
    )?;
    Ok(mean)
}
