//! Per-head index plan of the fast path: keys and values permuted into cluster order, the
//! inverse routing lists (for each cluster, the queries routed to it), and the index ranges of
//! the three disjoint key sets a query reads: the window/sink band and, per route, the keys of
//! the cluster that are neither sink nor window.

use rayon::prelude::*;

use super::super::{CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};
use super::mm::Mat;

/// Query rows per tile (cluster and band passes) and keys per chunk of a cluster's key range:
/// the 256 KiB score tile stays in L2. Measured at n = 16K on a 2-core Sapphire Rapids: 256 × 256
/// beat 128 × 512 by ~25% (the backward mostly) and 256 × 128, 128 × 256 by 5-15%.
pub(super) const BQ: usize = 256;
pub(super) const KC: usize = 256;

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
    /// The same per cluster transposed: cluster c's block `[d, size_c]` starts at `off[c]·d`,
    /// so score tiles read contiguous key rows of `Kᵀ` (gemm runs ~30% faster than on `K`).
    pub ktperm: Vec<f32>,
    pub vtperm: Vec<f32>,
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
        let sizes = || off.windows(2).map(|w| (w[1] - w[0]) as usize);
        let transpose = |x: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0_f32; n * d];
            let blocks = split_rows(&mut out, sizes(), d);
            let work = blocks.into_par_iter().zip(off.par_windows(2));
            work.for_each(|(blk, w)| {
                let keys = &ord[w[0] as usize..w[1] as usize];
                transpose_into(blk, x, keys.iter().map(|&j| j as usize), d);
            });
            out
        };
        let (ktperm, vtperm) = rayon::join(|| transpose(k), || transpose(v));
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
            ktperm,
            vtperm,
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

    /// Keys `c0..` (positions relative to the cluster start) of cluster c as columns of `Kᵀ`.
    pub fn kt(&self, c: usize, c0: usize) -> Mat<'_> {
        self.block_t(&self.ktperm, c, c0)
    }

    /// Likewise for `Vᵀ`.
    pub fn vt(&self, c: usize, c0: usize) -> Mat<'_> {
        self.block_t(&self.vtperm, c, c0)
    }

    fn block_t<'x>(&self, x: &'x [f32], c: usize, c0: usize) -> Mat<'x> {
        let (a, z) = self.range(c);
        Mat::strided(&x[a * self.d + c0..z * self.d], z - a, 1)
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

    /// Sets to -inf the scores (row r = query `q0 + r`, column t = key `j0 + t`) of keys the
    /// band does not give the query: it reads `[j0, min(sink, i + 1))` and `[lim(i), i]`.
    pub fn band_mask_range(&self, s: &mut [f32], w: usize, q0: usize, j0: usize) {
        for (r, row) in s.chunks_exact_mut(w).enumerate() {
            let i = q0 + r;
            let to_col = |x: usize| x.saturating_sub(j0).min(w);
            let a1 = to_col(self.sink.min(i + 1));
            let (b0, b1) = (to_col(self.lim(i)), to_col(i + 1));
            row[a1..b0.max(a1)].fill(f32::NEG_INFINITY);
            row[b1.max(a1)..].fill(f32::NEG_INFINITY);
        }
    }

    /// Sets to -inf the scores (row r = query `q0 + r`, columns = `band_keys(q0, ..)` from
    /// column `c0` on) of keys outside each query's band: the list is `[0, s1) ∪ [bs, q1)`,
    /// every key of the first part is live, and of the second part query i reads
    /// `[bs, min(sink, lim(i)))` and `[lim(i), i]`.
    pub fn band_mask(&self, s: &mut [f32], w: usize, q0: usize, c0: usize, q1: usize) {
        let bs = self.lim(q0);
        let s1 = self.sink.min(bs);
        for (r, row) in s.chunks_exact_mut(w).enumerate() {
            let i = q0 + r;
            // Live key ranges as positions in the key list, then shifted to this chunk.
            let sink_end = s1 + self.sink.min(self.lim(i)).max(bs) - bs;
            let (win0, win1) = (s1 + self.lim(i).max(bs) - bs, s1 + (i + 1).min(q1) - bs);
            let to_col = |x: usize| x.saturating_sub(c0).min(w);
            let (a, b, e) = (to_col(sink_end), to_col(win0), to_col(win1));
            row[a..b.max(a)].fill(f32::NEG_INFINITY);
            row[e.max(b)..].fill(f32::NEG_INFINITY);
        }
    }

    /// The keys the band pass of queries `q0..q1` may read: `[0, s1)` (sink keys before the
    /// band) and `[bs, q1)` (window band; the mask picks each query's part).
    pub fn band_keys(&self, q0: usize, q1: usize) -> Vec<usize> {
        let bs = self.lim(q0);
        let s1 = self.sink.min(bs);
        (0..s1).chain(bs..q1).collect()
    }
}

/// Per-worker buffers of the tile loops, reused from tile to tile (a fresh 256 KiB score tile
/// per tile cost page faults and TLB shootdowns worth ~20% of the run time).
#[derive(Default)]
pub(super) struct Scratch {
    pub s: Vec<f32>,
    pub qt: Vec<f32>,
    pub m: Vec<f32>,
    pub l: Vec<f32>,
    pub alpha: Vec<f32>,
    pub live: Vec<usize>,
    pub ends: Vec<usize>,
}

/// Clears `v` and refills it with `len` copies of `x`, keeping its allocation.
pub(super) fn reset<T: Copy>(v: &mut Vec<T>, len: usize, x: T) {
    v.clear();
    v.resize(len, x);
}

/// The first `len` elements of `v`, growing it (never shrinking or clearing) as needed.
pub(super) fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
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
pub(super) fn gather(x: &[f32], idx: impl ExactSizeIterator<Item = usize>, d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * d);
    gather_into(&mut out, x, idx, d);
    out
}

/// [`gather`] into `out`, reusing its allocation.
pub(super) fn gather_into(
    out: &mut Vec<f32>,
    x: &[f32],
    idx: impl Iterator<Item = usize>,
    d: usize,
) {
    out.clear();
    for j in idx {
        out.extend_from_slice(&x[j * d..][..d]);
    }
}

/// Rows `idx` of `x` transposed: a new `[d, idx.len()]` buffer.
pub(super) fn gather_t(x: &[f32], idx: impl ExactSizeIterator<Item = usize>, d: usize) -> Vec<f32> {
    let mut out = vec![0.0_f32; idx.len() * d];
    transpose_into(&mut out, x, idx, d);
    out
}

/// `out[t·len + r] = x[idx[r]·d + t]` with `len = out.len() / d`.
fn transpose_into(out: &mut [f32], x: &[f32], idx: impl Iterator<Item = usize>, d: usize) {
    let len = out.len() / d.max(1);
    for (r, j) in idx.enumerate() {
        for (t, &val) in x[j * d..][..d].iter().enumerate() {
            out[t * len + r] = val;
        }
    }
}
