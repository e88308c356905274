//! Host launchers for the SQA WGSL kernels: shape and config checks (`DeviceError::Shape`),
//! output allocation, grids. The whole clustering runs on the device; nothing is read back.

use bytemuck::{Pod, Zeroable};

use super::*;
use crate::device::{groups_1d, DType, GpuContext, GpuTensor};

/// The clustering as device tensors (see the shape legend); index tensors are `DType::U32`.
pub type GpuClusters = Clusters<GpuTensor, GpuTensor>;

/// The uniform every SQA kernel reads (each shader declares the same struct).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
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

/// `k / ‖k‖` per row of `k: [bh, n, d]`.
pub fn normalize_keys(ctx: &GpuContext, k: &GpuTensor) -> Result<GpuTensor> {
    let s = dims("sqa normalize_keys", &[("k", k)])?;
    let p = params("sqa normalize_keys", &SqaConfig::default(), s)?;
    let khat = ctx.zeros(&k.shape, DType::F32)?;
    ctx.dispatch(&NORMALIZE, &[], &p, &[k, &khat], groups_1d(s.0 * s.1, WG))?;
    Ok(khat)
}

/// Centroids `[bh, C, d]` initialized from evenly strided normalized keys (`n ≥ 1`).
pub fn kmeans_init(ctx: &GpuContext, khat: &GpuTensor, clusters: usize) -> Result<GpuTensor> {
    let op = "sqa kmeans_init";
    let s = dims(op, &[("khat", khat)])?;
    let cfg = SqaConfig {
        clusters,
        ..SqaConfig::default()
    };
    let p = params(op, &cfg, s)?;
    if s.1 == 0 {
        return err(op, "n = 0 keys to initialize from".into());
    }
    let cent = ctx.zeros(&[s.0, clusters, s.2], DType::F32)?;
    let groups = groups_1d(s.0 * clusters * s.2, WG);
    ctx.dispatch(&KMEANS_INIT, &[], &p, &[khat, &cent], groups)?;
    Ok(cent)
}

fn centroid_params(op: &'static str, khat: &GpuTensor, cent: &GpuTensor) -> Result<Params> {
    let s = dims(op, &[("khat", khat)])?;
    let clusters = cent.shape.get(1).copied().unwrap_or(0);
    let p = params(
        op,
        &SqaConfig {
            clusters,
            ..SqaConfig::default()
        },
        s,
    )?;
    expect(op, "centroids", cent, &[s.0, clusters, s.2], DType::F32)?;
    Ok(p)
}

/// Each key's cluster `[bh, n]` (u32) under the tie rule.
pub fn kmeans_assign(ctx: &GpuContext, khat: &GpuTensor, cent: &GpuTensor) -> Result<GpuTensor> {
    let p = centroid_params("sqa kmeans_assign", khat, cent)?;
    let assign = ctx.zeros(&[p.bh as usize, p.n as usize], DType::U32)?;
    let groups = groups_1d((p.bh * p.n) as usize, WG);
    ctx.dispatch(&KMEANS_ASSIGN, &[], &p, &[khat, cent, &assign], groups)?;
    Ok(assign)
}

/// One Lloyd update of `cent` in place from the assignment.
pub fn kmeans_update(
    ctx: &GpuContext,
    khat: &GpuTensor,
    assign: &GpuTensor,
    cent: &GpuTensor,
) -> Result<()> {
    let op = "sqa kmeans_update";
    let p = centroid_params(op, khat, cent)?;
    expect(
        op,
        "assign",
        assign,
        &[p.bh as usize, p.n as usize],
        DType::U32,
    )?;
    let groups = groups_1d((p.bh * p.c) as usize, 1);
    ctx.dispatch(&KMEANS_UPDATE, &[], &p, &[khat, assign, cent], groups)
}

/// Counting sort of `labels: [bh, len]` by cluster: `(offsets [bh, C+1], out [bh, len])`,
/// `out` holding `position / per` grouped by label, ascending.
fn counting_sort(
    ctx: &GpuContext,
    labels: &GpuTensor,
    p: &Params,
    per: usize,
) -> Result<(GpuTensor, GpuTensor)> {
    let (bh, c) = (p.bh as usize, p.c as usize);
    let len = labels.numel().checked_div(bh).unwrap_or(0);
    let p = Params {
        len: len as u32,
        per: per as u32,
        ..*p
    };
    let offsets = ctx.zeros(&[bh, c + 1], DType::U32)?;
    let out = ctx.zeros(&[bh, len], DType::U32)?;
    let items = groups_1d(bh * c, 1);
    ctx.dispatch(&COUNT, &[], &p, &[labels, &offsets], items)?;
    ctx.dispatch(&SCAN, &[], &p, &[&offsets], groups_1d(bh, 1))?;
    ctx.dispatch(&SCATTER, &[], &p, &[labels, &offsets, &out], items)?;
    Ok((offsets, out))
}

/// `(offsets [bh, C+1], order [bh, n])` of an assignment `[bh, n]` into `clusters` clusters.
pub fn cluster_sort(
    ctx: &GpuContext,
    assign: &GpuTensor,
    clusters: usize,
) -> Result<(GpuTensor, GpuTensor)> {
    let op = "sqa cluster_sort";
    let &[bh, n] = assign.shape.as_slice() else {
        return err(
            op,
            format!("assign must be [bh, n], got {:?}", assign.shape),
        );
    };
    expect(op, "assign", assign, &[bh, n], DType::U32)?;
    let p = params(
        op,
        &SqaConfig {
            clusters,
            ..SqaConfig::default()
        },
        (bh, n, 1),
    )?;
    counting_sort(ctx, assign, &p, 1)
}

/// Routes `[bh, n, min(top_k, C)]` of every query.
pub fn route(
    ctx: &GpuContext,
    q: &GpuTensor,
    cent: &GpuTensor,
    (offsets, order): (&GpuTensor, &GpuTensor),
    top_k: usize,
) -> Result<GpuTensor> {
    let op = "sqa route";
    let s = dims(op, &[("q", q)])?;
    let clusters = cent.shape.get(1).copied().unwrap_or(0);
    let p = params(
        op,
        &SqaConfig {
            clusters,
            top_k,
            ..SqaConfig::default()
        },
        s,
    )?;
    expect(op, "centroids", cent, &[s.0, clusters, s.2], DType::F32)?;
    expect(op, "offsets", offsets, &[s.0, clusters + 1], DType::U32)?;
    expect(op, "order", order, &[s.0, s.1], DType::U32)?;
    let routes = ctx.zeros(&[s.0, s.1, p.kk as usize], DType::U32)?;
    let groups = groups_1d(s.0 * s.1, WG);
    ctx.dispatch(&ROUTE, &[], &p, &[q, cent, offsets, order, &routes], groups)?;
    Ok(routes)
}

/// The whole clustering on the device: normalize, init, `iters` × (assign, update), final
/// assignment, counting sort, routing.
pub fn cluster(
    ctx: &GpuContext,
    q: &GpuTensor,
    k: &GpuTensor,
    cfg: &SqaConfig,
) -> Result<GpuClusters> {
    let op = "sqa cluster";
    let s = dims(op, &[("q", q), ("k", k)])?;
    params(op, cfg, s)?;
    let (bh, n, d) = s;
    let c = cfg.clusters;
    if n == 0 {
        let u = |shape: &[usize]| ctx.zeros(shape, DType::U32);
        return Ok(GpuClusters {
            centroids: ctx.zeros(&[bh, c, d], DType::F32)?,
            assign: u(&[bh, 0])?,
            offsets: u(&[bh, c + 1])?,
            order: u(&[bh, 0])?,
            routes: u(&[bh, 0, cfg.routes()])?,
        });
    }
    let khat = normalize_keys(ctx, k)?;
    let cent = kmeans_init(ctx, &khat, c)?;
    for _ in 0..cfg.iters {
        let assign = kmeans_assign(ctx, &khat, &cent)?;
        kmeans_update(ctx, &khat, &assign, &cent)?;
    }
    let assign = kmeans_assign(ctx, &khat, &cent)?;
    let (offsets, order) = cluster_sort(ctx, &assign, c)?;
    let routes = route(ctx, q, &cent, (&offsets, &order), cfg.top_k)?;
    Ok(GpuClusters {
        centroids: cent,
        assign,
        offsets,
        order,
        routes,
    })
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
    let (qoff, qlist) = counting_sort(ctx, &cl.routes, &p, p.kk as usize)?;
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
