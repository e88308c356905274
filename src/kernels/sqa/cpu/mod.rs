//! SQA on the CPU: plain-loop references (`*_ref`) of every step, and the fast path
//! ([`cluster`], [`sqa_forward`], [`sqa_backward`], [`recall`]). Shapes and choices: see the
//! family doc (`kernels::sqa`). Every public function validates its inputs and returns a
//! `DeviceError::Shape` instead of panicking.

mod backward;
mod cluster;
mod forward;
mod mm;
mod plan;
mod reference;

use rayon::prelude::*;

use super::{CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};
use crate::device::{DeviceError, Result};
use crate::kernels::attention;

pub use cluster::{
    cluster, cluster_ref, cluster_sort_ref, kmeans_assign_ref, kmeans_init_ref, kmeans_update_ref,
    normalize_keys_ref, route_ref,
};
pub use reference::{recall_ref, selected, sqa_backward_ref, sqa_forward_ref};

fn shape_err<T>(op: &'static str, detail: String) -> Result<T> {
    Err(DeviceError::Shape { op, detail })
}

pub(super) fn check_len<T>(op: &'static str, name: &str, x: &[T], want: usize) -> Result<()> {
    if x.len() != want {
        return shape_err(
            op,
            format!("{name} has {} elements, expected {want}", x.len()),
        );
    }
    Ok(())
}

/// The config is valid and every `[bh, n, d]` buffer has `bh·n·d` elements.
fn check_inputs(
    op: &'static str,
    cfg: &SqaConfig,
    s: SqaShape,
    bufs: &[(&str, &[f32])],
) -> Result<()> {
    cfg.validate(op, s.d)?;
    let len = s.bh.checked_mul(s.n).and_then(|x| x.checked_mul(s.d));
    let Some(len) = len.filter(|_| s.n < u32::MAX as usize) else {
        return shape_err(op, format!("{s:?} is too large"));
    };
    bufs.iter()
        .try_for_each(|(name, x)| check_len(op, name, x, len))
}

/// The clustering has the shapes of the legend and is self-consistent (so the fast path can
/// index with it): offsets rise from 0 to n, `order` lists each cluster's keys ascending and
/// `assign` agrees, routes are distinct clusters or `NO_CLUSTER`.
fn check_clusters(op: &'static str, cfg: &SqaConfig, s: SqaShape, cl: &CpuClusters) -> Result<()> {
    let SqaShape { bh, n, d } = s;
    let (c, kk) = (cfg.clusters, cfg.routes());
    check_len(op, "centroids", &cl.centroids, bh * c * d)?;
    check_len(op, "assign", &cl.assign, bh * n)?;
    check_len(op, "offsets", &cl.offsets, bh * (c + 1))?;
    check_len(op, "order", &cl.order, bh * n)?;
    check_len(op, "routes", &cl.routes, bh * n * kk)?;
    for b in 0..bh {
        let off = &cl.offsets[b * (c + 1)..][..c + 1];
        let (ord, assign) = (&cl.order[b * n..][..n], &cl.assign[b * n..][..n]);
        if off[0] != 0 || off[c] as usize != n || off.windows(2).any(|w| w[0] > w[1]) {
            return shape_err(op, format!("head {b}: offsets must rise from 0 to n = {n}"));
        }
        for ci in 0..c {
            let keys = &ord[off[ci] as usize..off[ci + 1] as usize];
            let bad = keys
                .iter()
                .any(|&j| j as usize >= n || assign[j as usize] as usize != ci);
            if bad || keys.windows(2).any(|w| w[0] >= w[1]) {
                return shape_err(
                    op,
                    format!("head {b}: order/assign disagree in cluster {ci}"),
                );
            }
        }
        for r in cl.routes[b * n * kk..][..n * kk].chunks_exact(kk) {
            let valid = |t: usize| r[t] == NO_CLUSTER || (r[t] as usize) < c;
            let dup = |t: usize| r[t] != NO_CLUSTER && r[..t].contains(&r[t]);
            if (0..kk).any(|t| !valid(t) || dup(t)) {
                return shape_err(op, format!("head {b}: bad routes {r:?}"));
            }
        }
    }
    Ok(())
}

/// Fast forward over the selected keys. Returns `(o [bh, n, d], lse [bh, n])`.
pub fn sqa_forward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let op = "sqa_forward";
    check_inputs(op, cfg, s, &[("q", q), ("k", k), ("v", v)])?;
    check_clusters(op, cfg, s, cl)?;
    let SqaShape { bh, n, d } = s;
    let (mut o, mut lse) = (vec![0.0_f32; bh * n * d], vec![0.0_f32; bh * n]);
    if n == 0 {
        return Ok((o, lse));
    }
    // Heads one after another (each is parallel inside): the partial buffers are per head.
    let heads = o.chunks_mut(n * d).zip(lse.chunks_mut(n)).enumerate();
    let mut parts = forward::Parts::default();
    for (b, (o_b, lse_b)) in heads {
        let p = plan::Plan::new(b, (q, k, v), cl, cfg, s);
        forward::head(&p, &mut parts, o_b, lse_b);
    }
    Ok((o, lse))
}

/// Fast backward from the forward's `o` and `lse`. Returns `(dq, dk, dv)`, each `[bh, n, d]`.
pub fn sqa_backward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    (o, lse, dout): (&[f32], &[f32], &[f32]),
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let op = "sqa_backward";
    check_inputs(
        op,
        cfg,
        s,
        &[("q", q), ("k", k), ("v", v), ("o", o), ("dout", dout)],
    )?;
    check_clusters(op, cfg, s, cl)?;
    check_len(op, "lse", lse, s.bh * s.n)?;
    let SqaShape { bh, n, d } = s;
    let zeros = || vec![0.0_f32; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    if n == 0 {
        return Ok((dq, dk, dv));
    }
    let grads = dq
        .chunks_mut(n * d)
        .zip(dk.chunks_mut(n * d))
        .zip(dv.chunks_mut(n * d));
    let mut bufs = backward::Bufs::default();
    for (b, ((dq_b, dk_b), dv_b)) in grads.enumerate() {
        let p = plan::Plan::new(b, (q, k, v), cl, cfg, s);
        let saved = (
            &o[b * n * d..][..n * d],
            &lse[b * n..][..n],
            &dout[b * n * d..][..n * d],
        );
        backward::head(&p, &mut bufs, saved, (dq_b, dk_b, dv_b));
    }
    Ok((dq, dk, dv))
}

/// Attention recall per head from the SQA forward's `lse`: the mean over queries of
/// `min(1, exp(lse − lse_dense))`, the dense lse coming from the fast dense attention forward.
pub fn recall(
    (q, k, v): (&[f32], &[f32], &[f32]),
    lse: &[f32],
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<Vec<f32>> {
    let op = "sqa recall";
    check_inputs(op, cfg, s, &[("q", q), ("k", k), ("v", v)])?;
    check_len(op, "lse", lse, s.bh * s.n)?;
    if s.n == 0 {
        return Ok(vec![0.0; s.bh]);
    }
    let (_, dense) = attention::cpu::attention_forward(q, k, v, s.bh, s.n, s.d);
    let per_head = lse
        .par_chunks(s.n)
        .zip(dense.par_chunks(s.n))
        .map(|(a, b)| {
            let sum: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| f64::from((x - y).exp().min(1.0)))
                .sum();
            (sum / s.n as f64) as f32
        });
    Ok(per_head.collect())
}
