//! Launchers of the clustering kernels: normalization, k-means (init, assign, update), the
//! counting sort by cluster (count, scan, scatter) and routing.

use super::{dims, err, expect, params, GpuClusters, Params};
use crate::device::{groups_1d, DType, GpuContext, GpuTensor, Result};
use crate::kernels::sqa::*;

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
pub(super) fn counting_sort(
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
