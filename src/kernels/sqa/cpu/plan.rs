//! Per-head index plan of the fast path: keys and values permuted into cluster order, the
//! inverse routing lists (for each cluster, the queries routed to it), and the index ranges of
//! the three disjoint key sets a query reads: the window/sink band and, per route, the keys of
//! the cluster that are neither sink nor window.

use rayon::prelude::*;

use super::super::{CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};

/// Query rows per tile (cluster and band passes).
pub(super) const BQ: usize = 64;
/// Keys per chunk of a cluster's key range (bounds the score tile at BQ × KC).
pub(super) const KC: usize = 512;

pub(super) struct Plan<'a> {
    pub n: usize,
    pub d: usize,
    pub c: usize,
    pub kk: usize,
    pub w: usize,
    pub sink: usize,
    pub scale: f32,
    /// This head's `[n, d]` inputs.
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub off: &'a [u32],
    pub ord: &'a [u32],
    /// K and V rows in `order`: cluster c's keys are rows `off[c]..off[c + 1]`.
    pub kperm: Vec<f32>,
    pub vperm: Vec<f32>,
    /// Inverse routing: the queries routed to cluster c are `qlist[qoff[c]..qoff[c + 1]]`,
    /// ascending.
    pub qoff: Vec<usize>,
    pub qlist: Vec<u32>,
    /// `[n, kk]`: the position in `qlist` of query i's route t (`u32::MAX` for no cluster).
    pub pos: Vec<u32>,
    /// Per cluster, the first position (relative to `off[c]`) of a key `≥ sink`.
    pub lo: Vec<usize>,
}

impl<'a> Plan<'a> {
    /// Head `b`. Inputs are whole-batch buffers, already validated.
    pub fn new(
        b: usize,
        (q, k, v): (&'a [f32], &'a [f32], &'a [f32]),
        cl: &'a CpuClusters,
        cfg: &SqaConfig,
        s: SqaShape,
    ) -> Self {
        let (n, d, c, kk) = (s.n, s.d, cfg.clusters, cfg.routes());
        let head = |x: &'a [f32]| &x[b * n * d..][..n * d];
        let (q, k, v) = (head(q), head(k), head(v));
        let off = &cl.offsets[b * (c + 1)..][..c + 1];
        let ord = &cl.order[b * n..][..n];
        let routes = &cl.routes[b * n * kk..][..n * kk];
        let permute = |x: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0_f32; n * d];
            let rows = out.par_chunks_mut(d).zip(ord.par_iter());
            rows.for_each(|(y, &j)| y.copy_from_slice(&x[j as usize * d..][..d]));
            out
        };
        let (kperm, vperm) = rayon::join(|| permute(k), || permute(v));
        let mut qoff = vec![0_usize; c + 1];
        for &r in routes.iter().filter(|&&r| r != NO_CLUSTER) {
            qoff[r as usize + 1] += 1;
        }
        for ci in 1..=c {
            qoff[ci] += qoff[ci - 1];
        }
        let mut next = qoff.clone();
        let mut qlist = vec![0_u32; qoff[c]];
        let mut pos = vec![u32::MAX; n * kk];
        for (it, &r) in routes.iter().enumerate().filter(|&(_, &r)| r != NO_CLUSTER) {
            let slot = &mut next[r as usize];
            qlist[*slot] = (it / kk) as u32;
            pos[it] = *slot as u32;
            *slot += 1;
        }
        let lo = (0..c)
            .map(|ci| {
                let keys = &ord[off[ci] as usize..off[ci + 1] as usize];
                keys.partition_point(|&j| (j as usize) < cfg.sink)
            })
            .collect();
        Self {
            n,
            d,
            c,
            kk,
            w: cfg.window,
            sink: cfg.sink,
            scale: 1.0 / (d as f32).sqrt(),
            q,
            k,
            v,
            off,
            ord,
            kperm,
            vperm,
            qoff,
            qlist,
            pos,
            lo,
        }
    }

    /// Cluster c's keys in `order` positions `off[c]..off[c + 1]`.
    pub fn range(&self, c: usize) -> (usize, usize) {
        (self.off[c] as usize, self.off[c + 1] as usize)
    }

    /// How many of cluster c's keys (from its start) query i may read through the route: keys
    /// `j ≤ i − w` (older than the window); those below `lo[c]` are sink keys, skipped.
    pub fn hi(&self, c: usize, i: usize) -> usize {
        let (a, z) = self.range(c);
        self.ord[a..z].partition_point(|&j| j as usize + self.w <= i)
    }

    /// Keys `j < lim(i)` lie before query i's window.
    pub fn lim(&self, i: usize) -> usize {
        (i + 1).saturating_sub(self.w)
    }

    /// Whether query i reads key j through the window/sink band.
    #[inline]
    pub fn band_live(&self, i: usize, j: usize) -> bool {
        j <= i && (j >= self.lim(i) || j < self.sink)
    }

    /// The keys the band pass of queries `q0..q1` may read: `[0, s1)` (sink keys before the
    /// band) and `[bs, q1)` (window band; the mask picks each query's part).
    pub fn band_keys(&self, q0: usize, q1: usize) -> Vec<usize> {
        let bs = self.lim(q0);
        let s1 = self.sink.min(bs);
        (0..s1).chain(bs..q1).collect()
    }
}

/// Splits `buf` into consecutive pieces of `sizes[i] · width` elements.
pub(super) fn split_rows(
    mut buf: &mut [f32],
    sizes: impl Iterator<Item = usize>,
    width: usize,
) -> Vec<&mut [f32]> {
    let mut out = Vec::new();
    for len in sizes {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(len * width);
        out.push(head);
        buf = tail;
    }
    out
}

/// Copies rows `idx` of `x` (row width `d`) into a new `[idx.len(), d]` buffer.
pub(super) fn gather(x: &[f32], idx: impl Iterator<Item = usize>, d: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for j in idx {
        out.extend_from_slice(&x[j * d..][..d]);
    }
    out
}
