//! Clustering on the CPU: k-means over normalized keys, the counting sort by cluster and the
//! query routing. Each step has a plain-loop `_ref` (f32, sums in ascending index order, as the
//! WGSL kernels do) and [`cluster`] is the fast composite (score matrices through `gemm`).

use rayon::prelude::*;

use super::super::{CpuClusters, SqaConfig, SqaShape, NO_CLUSTER, TIE_EPS};
use super::mm::{mm, Mat};
use crate::device::Result;

pub(super) fn dot32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |s, (&x, &y)| s + x * y)
}

fn l1(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |s, &v| s + v.abs())
}

/// The tie rule: scanning `(index, score)` in ascending index order, a candidate replaces the
/// running best only when it scores more than `tol` higher. `None` without candidates.
pub(super) fn pick(cands: impl Iterator<Item = (usize, f32)>, tol: f32) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (c, s) in cands {
        if best.is_none_or(|(_, b)| s > b + tol) {
            best = Some((c, s));
        }
    }
    best.map(|(c, _)| c)
}

/// `k / ‖k‖` per row of `d`; a row whose squared norm is 0 stays 0.
pub fn normalize_keys_ref(k: &[f32], d: usize) -> Vec<f32> {
    let mut out = k.to_vec();
    out.chunks_exact_mut(d.max(1)).for_each(normalize_row);
    out
}

fn normalize_row(row: &mut [f32]) {
    let nrm = dot32(row, row).sqrt();
    if nrm > 0.0 {
        row.iter_mut().for_each(|x| *x /= nrm);
    } else {
        row.fill(0.0);
    }
}

/// Centroid c of each head = normalized key `⌊c·n/C⌋` (`n ≥ 1`). Returns `[bh, C, d]`.
pub fn kmeans_init_ref(khat: &[f32], s: SqaShape, c: usize) -> Vec<f32> {
    let SqaShape { bh, n, d } = s;
    let mut cent = vec![0.0_f32; bh * c * d];
    for b in 0..bh {
        for ci in 0..c {
            let j = ci * n / c;
            let src = &khat[(b * n + j) * d..][..d];
            cent[(b * c + ci) * d..][..d].copy_from_slice(src);
        }
    }
    cent
}

/// Each key's best centroid under the tie rule (tolerance `TIE_EPS·‖k̂‖₁`). Returns `[bh, n]`.
pub fn kmeans_assign_ref(khat: &[f32], cent: &[f32], s: SqaShape, c: usize) -> Vec<u32> {
    let SqaShape { bh, n, d } = s;
    let mut assign = vec![0_u32; bh * n];
    for b in 0..bh {
        for j in 0..n {
            let key = &khat[(b * n + j) * d..][..d];
            let cents = &cent[b * c * d..][..c * d];
            let scores = cents.chunks_exact(d).map(|cv| dot32(key, cv)).enumerate();
            assign[b * n + j] = pick(scores, TIE_EPS * l1(key)).unwrap_or(0) as u32;
        }
    }
    assign
}

/// Replaces each centroid by the normalized sum of its keys (summed in ascending key order);
/// an empty cluster, or one whose keys sum to zero, keeps its centroid.
pub fn kmeans_update_ref(khat: &[f32], assign: &[u32], cent: &mut [f32], s: SqaShape, c: usize) {
    let SqaShape { bh, n, d } = s;
    let mut sum = vec![0.0_f32; d];
    for b in 0..bh {
        for ci in 0..c {
            sum.fill(0.0);
            let mut count = 0;
            for j in (0..n).filter(|&j| assign[b * n + j] as usize == ci) {
                count += 1;
                let key = &khat[(b * n + j) * d..][..d];
                sum.iter_mut().zip(key).for_each(|(a, &x)| *a += x);
            }
            let nrm = dot32(&sum, &sum).sqrt();
            if count > 0 && nrm > 0.0 {
                let dst = &mut cent[(b * c + ci) * d..][..d];
                dst.iter_mut().zip(&sum).for_each(|(y, &x)| *y = x / nrm);
            }
        }
    }
}

/// Counting sort of key indices by cluster: `(offsets [bh, C + 1], order [bh, n])`, ascending
/// key index within a cluster.
pub fn cluster_sort_ref(assign: &[u32], bh: usize, n: usize, c: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0_u32; bh * (c + 1)];
    let mut order = vec![0_u32; bh * n];
    for b in 0..bh {
        let (off, ord) = (
            &mut offsets[b * (c + 1)..][..c + 1],
            &mut order[b * n..][..n],
        );
        sort_one(&assign[b * n..][..n], off, ord);
    }
    (offsets, order)
}

fn sort_one(assign: &[u32], off: &mut [u32], ord: &mut [u32]) {
    off.fill(0);
    for &a in assign {
        off[a as usize + 1] += 1;
    }
    for ci in 1..off.len() {
        off[ci] += off[ci - 1];
    }
    let mut next = off.to_vec();
    for (j, &a) in assign.iter().enumerate() {
        ord[next[a as usize] as usize] = j as u32;
        next[a as usize] += 1;
    }
}

/// `first[c]`: the smallest key index of cluster c (`u32::MAX` when empty): cluster c is
/// eligible for query i iff `first[c] ≤ i`.
pub(super) fn first_keys(off: &[u32], ord: &[u32]) -> Vec<u32> {
    let firsts = off.windows(2).map(|w| match w[0] < w[1] {
        true => ord[w[0] as usize],
        false => u32::MAX,
    });
    firsts.collect()
}

/// Query i's `kk` routes from its centroid scores: repeated tie-rule arg-max over the eligible
/// clusters not yet taken, then `NO_CLUSTER` padding.
/// `taken` is scratch.
pub(super) fn route_row(
    (i, scores): (usize, &[f32]),
    first: &[u32],
    tol: f32,
    taken: &mut Vec<bool>,
    out: &mut [u32],
) {
    out.fill(NO_CLUSTER);
    // Ineligible clusters start out "taken".
    taken.clear();
    taken.extend(first.iter().map(|&f| f as usize > i));
    for slot in out.iter_mut() {
        let cands = scores
            .iter()
            .copied()
            .enumerate()
            .filter(|&(ci, _)| !taken[ci]);
        match pick(cands, tol) {
            Some(ci) => {
                *slot = ci as u32;
                taken[ci] = true;
            }
            None => break,
        }
    }
}

/// Routes `[bh, n, kk]` of every query (see the module doc).
pub fn route_ref(
    q: &[f32],
    cent: &[f32],
    (offsets, order): (&[u32], &[u32]),
    s: SqaShape,
    (c, kk): (usize, usize),
) -> Vec<u32> {
    let SqaShape { bh, n, d } = s;
    let mut routes = vec![NO_CLUSTER; bh * n * kk];
    for b in 0..bh {
        let first = first_keys(&offsets[b * (c + 1)..][..c + 1], &order[b * n..][..n]);
        for i in 0..n {
            let qi = &q[(b * n + i) * d..][..d];
            let cents = cent[b * c * d..][..c * d].chunks_exact(d);
            let scores: Vec<f32> = cents.map(|cv| dot32(qi, cv)).collect();
            let out = &mut routes[(b * n + i) * kk..][..kk];
            route_row((i, &scores), &first, TIE_EPS * l1(qi), &mut Vec::new(), out);
        }
    }
    routes
}

/// The whole clustering with the plain-loop steps.
pub fn cluster_ref(q: &[f32], k: &[f32], cfg: &SqaConfig, s: SqaShape) -> Result<CpuClusters> {
    super::check_inputs("sqa cluster_ref", cfg, s, &[("q", q), ("k", k)])?;
    let c = cfg.clusters;
    if s.n == 0 {
        return Ok(empty(s, cfg));
    }
    let khat = normalize_keys_ref(k, s.d);
    let mut cent = kmeans_init_ref(&khat, s, c);
    for _ in 0..cfg.iters {
        let assign = kmeans_assign_ref(&khat, &cent, s, c);
        kmeans_update_ref(&khat, &assign, &mut cent, s, c);
    }
    let assign = kmeans_assign_ref(&khat, &cent, s, c);
    let (offsets, order) = cluster_sort_ref(&assign, s.bh, s.n, c);
    let routes = route_ref(q, &cent, (&offsets, &order), s, (c, cfg.routes()));
    Ok(CpuClusters {
        centroids: cent,
        assign,
        offsets,
        order,
        routes,
    })
}

fn empty(s: SqaShape, cfg: &SqaConfig) -> CpuClusters {
    CpuClusters {
        centroids: vec![0.0; s.bh * cfg.clusters * s.d],
        assign: Vec::new(),
        offsets: vec![0; s.bh * (cfg.clusters + 1)],
        order: Vec::new(),
        routes: Vec::new(),
    }
}

/// `scores[r, c] = x[r]·cent[c]` for the `rows` rows of `x` (one head), through `gemm`.
fn scores(x: &[f32], cent: &[f32], rows: usize, c: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0_f32; rows * c];
    let (a, b) = (Mat::rows(x, d), Mat::cols(cent, d));
    mm(&mut out, c, [rows, c, d], (a, b), (false, 1.0));
    out
}

/// The fast clustering: same algorithm and tie rule as [`cluster_ref`], score matrices by
/// `gemm` (whose different summation order is absorbed by the tie tolerance), heads in parallel.
pub fn cluster(q: &[f32], k: &[f32], cfg: &SqaConfig, s: SqaShape) -> Result<CpuClusters> {
    super::check_inputs("sqa cluster", cfg, s, &[("q", q), ("k", k)])?;
    let SqaShape { bh, n, d } = s;
    let (c, kk) = (cfg.clusters, cfg.routes());
    if n == 0 {
        return Ok(empty(s, cfg));
    }
    let mut out = CpuClusters {
        centroids: vec![0.0; bh * c * d],
        assign: vec![0; bh * n],
        offsets: vec![0; bh * (c + 1)],
        order: vec![0; bh * n],
        routes: vec![0; bh * n * kk],
    };
    let heads = out
        .centroids
        .par_chunks_mut(c * d)
        .zip(out.assign.par_chunks_mut(n))
        .zip(out.offsets.par_chunks_mut(c + 1))
        .zip(out.order.par_chunks_mut(n))
        .zip(out.routes.par_chunks_mut(n * kk));
    heads
        .enumerate()
        .for_each(|(b, ((((cent, assign), off), ord), routes))| {
            let one = SqaShape { bh: 1, n, d };
            let khat = normalize_keys_ref(&k[b * n * d..][..n * d], d);
            let tols: Vec<f32> = khat.chunks_exact(d).map(|x| TIE_EPS * l1(x)).collect();
            cent.copy_from_slice(&kmeans_init_ref(&khat, one, c));
            for it in 0..=cfg.iters {
                let sc = scores(&khat, cent, n, c, d);
                for ((a, row), &tol) in assign.iter_mut().zip(sc.chunks_exact(c)).zip(&tols) {
                    *a = pick(row.iter().copied().enumerate(), tol).unwrap_or(0) as u32;
                }
                if it < cfg.iters {
                    update_fast(&khat, assign, cent, c, d);
                }
            }
            sort_one(assign, off, ord);
            let first = first_keys(off, ord);
            let qb = &q[b * n * d..][..n * d];
            let sc = scores(qb, cent, n, c, d);
            let rows = routes.par_chunks_mut(kk).zip(sc.par_chunks(c)).enumerate();
            rows.for_each_init(Vec::new, |taken, (i, (r, row))| {
                let tol = TIE_EPS * l1(&qb[i * d..][..d]);
                route_row((i, row), &first, tol, taken, r);
            });
        });
    Ok(out)
}

/// One pass over the keys accumulating every cluster's sum (ascending key order per cluster,
/// like the reference), then normalization.
fn update_fast(khat: &[f32], assign: &[u32], cent: &mut [f32], c: usize, d: usize) {
    let mut sums = vec![0.0_f32; c * d];
    let mut counts = vec![0_usize; c];
    for (key, &a) in khat.chunks_exact(d).zip(assign) {
        let a = a as usize;
        counts[a] += 1;
        let dst = &mut sums[a * d..][..d];
        dst.iter_mut().zip(key).for_each(|(y, &x)| *y += x);
    }
    for ci in 0..c {
        let sum = &sums[ci * d..][..d];
        let nrm = dot32(sum, sum).sqrt();
        if counts[ci] > 0 && nrm > 0.0 {
            let dst = &mut cent[ci * d..][..d];
            dst.iter_mut().zip(sum).for_each(|(y, &x)| *y = x / nrm);
        }
    }
}
