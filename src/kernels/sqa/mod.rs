//! SQA — Sub-Quadratic Sparse Attention: causal attention in which each query reads only the
//! keys of a few key clusters it routes to, plus a local window and a sink block. The routing
//! idea (online k-means over keys, queries attend within their clusters) is the Routing
//! Transformer's (Roy, Saffar, Vaswani, Grangier, "Efficient Content-Based Sparse Attention
//! with Routing Transformers", TACL 2021).
//!
//! Shape legend (row-major, f32 unless noted; `bh` = batch × heads, independent problems):
//! - `q`, `k`, `v`, `o`, `dout`, `dq`, `dk`, `dv`: `[bh, n, d]`
//! - `lse`: `[bh, n]`, natural log-sum-exp of query i's scaled scores `q_i·k_j/√d` over the keys
//!   it selects (saved by the forward for the backward)
//! - `centroids`: `[bh, C, d]` unit vectors; `assign`: `[bh, n]` u32, the cluster of each key
//! - `offsets`: `[bh, C + 1]` u32, `order`: `[bh, n]` u32: the key indices of cluster c are
//!   `order[offsets[c]..offsets[c + 1]]`, ascending
//! - `routes`: `[bh, n, kk]` u32 with `kk = min(top_k, C)`: query i's clusters, best first,
//!   padded with [`NO_CLUSTER`]
//! - recall: `[bh]`, per head the mean over queries of the dense causal softmax mass that the
//!   selected keys carry
//!
//! Selection: query i reads key j iff `j ≤ i` and (`j < sink`, or `i − w < j` (the window of the
//! w most recent keys, i itself included), or `assign[j] ∈ routes[i]`). A key that qualifies
//! twice is read once. The scale is `1/√d`.
//!
//! Choices:
//! - Clustering (all on the device on the GPU path): keys are normalized (`k/‖k‖`; a key whose
//!   squared norm is 0 in f32 stays 0); centroid c starts as normalized key `⌊c·n/C⌋` (so when
//!   n < C several start equal, and the higher-numbered copies end up empty); each of `iters`
//!   Lloyd iterations assigns every key to its best centroid by dot product and replaces each
//!   centroid by its members' normalized sum (= the normalized mean). A cluster that is empty, or
//!   whose members sum to the zero vector, keeps its centroid. A final assignment against the
//!   final centroids gives the clusters (so `iters = 0` clusters around the initial centroids).
//! - Ties: scanning centroids in ascending order, a centroid replaces the running best only if
//!   it scores more than `TIE_EPS·‖x‖₁` higher (x = the key or query being scored). Exact ties
//!   thus go to the lowest index, and so do scores that differ only by f32 rounding (at most
//!   `d·2⁻²⁴·‖x‖₁` for unit centroids and d ≤ 128): the CPU and GPU, which sum in different
//!   orders, make the same choice (identical keys, duplicated centroids, n < C).
//! - Routing: a cluster is eligible for query i iff it has a key `j ≤ i` (its first key in
//!   `order`, the smallest, is ≤ i): empty clusters and clusters entirely in i's future would
//!   waste a route. Query i takes the `kk` best eligible clusters by `q_i·c` (repeated arg-max
//!   with the tie rule above); the remaining slots hold `NO_CLUSTER`. Every query has at least one
//!   eligible cluster (the one holding key 0), so every query reads ≥ 1 key.
//!   With `top_k ≥ C` every cluster holding a visible key is routed: SQA equals dense causal
//!   attention.
//! - Assignment and routing are constants for the backward (as in the Routing Transformer):
//!   gradients flow through the attention over exactly the selected keys.
//! - Recall (fast paths) is `exp(lse_sqa − lse_dense)` per query, clamped to ≤ 1 against
//!   rounding, averaged per head; the reference sums the dense softmax over selected keys in f64.
//! - CPU (`cpu/`): plain-loop references (`*_ref`; the clustering steps in f32 summed in
//!   ascending order like the kernels, the attention with f64 accumulation) and a fast path. The
//!   fast clustering takes its score matrices from `gemm`. The fast attention never loops key by
//!   key: per (head, cluster) the routed queries are gathered and attend that cluster's keys
//!   (contiguous after permuting K, V by `order`, Kᵀ/Vᵀ stored per cluster) in 256 × 256 `gemm`
//!   tiles under a per-row prefix mask (keys `sink ≤ j ≤ i − w`: only those neither sink nor
//!   window), giving one partial (o, lse) per (query, route); a banded dense pass covers window
//!   and sink; partials are merged per query by log-sum-exp. The backward runs the same blocks
//!   (P recomputed from the final lse, `delta = rowsum(dO∘O)`); each (head, cluster) task owns
//!   its keys' dK/dV rows and its routed queries' dQ partials, the band has a query-centric dQ
//!   pass and a key-centric dK/dV pass: no two tasks write one row. Heads run one after another
//!   (rayon inside), so partial buffers are per head and reused.
//! - GPU (`gpu/`, `shaders/sqa/`), all deterministic (every output has one writer; no float
//!   atomics): normalization and assignment one thread per key; the update one workgroup per
//!   (head, cluster) summing its keys in ascending order; the counting sort `count` (workgroup
//!   per (head, cluster)), `scan` (one workgroup per head, C ≤ `MAX_C`), `scatter` (stable
//!   compaction by workgroup prefix sums) — reused on the routes for the inverse routing lists
//!   of the backward; routing one thread per query with per-thread score arrays of `MAX_C`.
//!   Forward and dQ: one workgroup per query walking its segments (sink, window, each routed
//!   cluster's range in `order`, bounded by binary search) in tiles of `WG` keys with an online
//!   softmax; dK/dV: one workgroup per key walking its readers (its window's queries, or all later
//!   queries for a sink key, plus the suffix of its cluster's inverse routing list with
//!   `i ≥ j + w`). Index arrays are packed into one binding (buffer copies) to stay within 8
//!   storage buffers; `d ≤ MAX_D`, `C ≤ MAX_C` (else `DeviceError::Shape`).
//! - Exactness: with `top_k ≥ C` both backends equal dense causal attention (tested); k-means,
//!   sort and routes of the two backends agree exactly except where two scores lie within f32
//!   rounding of the tie tolerance's edge (random inputs: the tests accept a differing choice
//!   only between candidates whose f64 scores are within 1e-4).

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec, Result};
use crate::kernel_spec;

/// Route padding: "no cluster" (fewer eligible clusters than `kk`).
pub const NO_CLUSTER: u32 = u32::MAX;
/// Relative tie tolerance of the arg-max rule (see the module doc).
pub const TIE_EPS: f32 = 1e-5;
/// Largest head dimension the WGSL kernels support (per-thread register arrays).
pub const MAX_D: u32 = 128;
/// Largest cluster count the WGSL routing kernel supports (per-thread score array).
pub const MAX_C: u32 = 256;
/// Threads per workgroup of the SQA kernels.
pub const WG: u32 = 64;

/// SQA hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqaConfig {
    /// Number of k-means clusters C.
    pub clusters: usize,
    /// Clusters each query routes to (≥ C means all).
    pub top_k: usize,
    /// Local window w: query i always reads keys `i − w < j ≤ i`.
    pub window: usize,
    /// Sink block: every query reads keys `j < sink` (causally).
    pub sink: usize,
    /// Lloyd iterations.
    pub iters: usize,
}

impl Default for SqaConfig {
    fn default() -> Self {
        Self {
            clusters: 32,
            top_k: 8,
            window: 64,
            sink: 16,
            iters: 2,
        }
    }
}

impl SqaConfig {
    /// Routes per query: `min(top_k, C)`.
    pub fn routes(&self) -> usize {
        self.top_k.min(self.clusters)
    }

    /// The Routing Transformer's choice `C = ⌈√n⌉`, which makes the attention O(n^1.5).
    pub fn with_sqrt_clusters(self, n: usize) -> Self {
        let mut c = (n as f64).sqrt().ceil() as usize;
        while c * c < n {
            c += 1;
        }
        while c > 1 && (c - 1) * (c - 1) >= n {
            c -= 1;
        }
        Self {
            clusters: c.max(1),
            ..self
        }
    }

    /// `clusters ≥ 1`, `top_k ≥ 1`, `d ≥ 1`.
    pub fn validate(&self, op: &'static str, d: usize) -> Result<()> {
        let bad = |detail: String| Err(DeviceError::Shape { op, detail });
        if self.clusters == 0 {
            return bad("clusters must be ≥ 1".into());
        }
        if self.top_k == 0 {
            return bad("top_k must be ≥ 1".into());
        }
        if d == 0 {
            return bad("head dimension d must be ≥ 1".into());
        }
        if self.clusters > u32::MAX as usize / 2 {
            return bad(format!("{} clusters do not fit u32 indices", self.clusters));
        }
        Ok(())
    }
}

/// Problem shape: `bh` independent (batch·head) problems of `n` tokens, head dim `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqaShape {
    pub bh: usize,
    pub n: usize,
    pub d: usize,
}

/// The clustering of one call (see the shape legend). `F` holds floats, `U` u32 indices:
/// `Vec`s on the CPU ([`CpuClusters`]), `GpuTensor`s on the GPU (`gpu::GpuClusters`).
#[derive(Debug, Clone)]
pub struct Clusters<F, U> {
    /// `[bh, C, d]`
    pub centroids: F,
    /// `[bh, n]`
    pub assign: U,
    /// `[bh, C + 1]`
    pub offsets: U,
    /// `[bh, n]`
    pub order: U,
    /// `[bh, n, kk]`
    pub routes: U,
}

pub type CpuClusters = Clusters<Vec<f32>, Vec<u32>>;

pub static NORMALIZE: KernelSpec = kernel_spec!(
    "sqa/normalize",
    "sqa/normalize.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static KMEANS_INIT: KernelSpec = kernel_spec!(
    "sqa/kmeans_init",
    "sqa/kmeans_init.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static KMEANS_ASSIGN: KernelSpec = kernel_spec!(
    "sqa/kmeans_assign",
    "sqa/kmeans_assign.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static KMEANS_UPDATE: KernelSpec = kernel_spec!(
    "sqa/kmeans_update",
    "sqa/kmeans_update.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", MAX_D)]
);
pub static COUNT: KernelSpec = kernel_spec!(
    "sqa/count",
    "sqa/count.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static SCAN: KernelSpec = kernel_spec!(
    "sqa/scan",
    "sqa/scan.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [ReadWrite],
    [("WG", MAX_C)]
);
pub static SCATTER: KernelSpec = kernel_spec!(
    "sqa/scatter",
    "sqa/scatter.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static ROUTE: KernelSpec = kernel_spec!(
    "sqa/route",
    "sqa/route.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, Read, ReadWrite],
    [("WG", WG), ("MAX_C", MAX_C), ("MAX_D", MAX_D)]
);
pub static FORWARD: KernelSpec = kernel_spec!(
    "sqa/forward",
    "sqa/forward.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static BACKWARD_PREPROCESS: KernelSpec = kernel_spec!(
    "sqa/backward_preprocess",
    "sqa/backward_preprocess.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD_DQ: KernelSpec = kernel_spec!(
    "sqa/backward_dq",
    "sqa/backward_dq.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static BACKWARD_DKDV: KernelSpec = kernel_spec!(
    "sqa/backward_dkdv",
    "sqa/backward_dkdv.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static RECALL: KernelSpec = kernel_spec!(
    "sqa/recall",
    "sqa/recall.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, Read, Read, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static RECALL_MEAN: KernelSpec = kernel_spec!(
    "sqa/recall_mean",
    "sqa/recall_mean.wgsl",
    "main",
    crate::kernels::sqa::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[
    &NORMALIZE,
    &KMEANS_INIT,
    &KMEANS_ASSIGN,
    &KMEANS_UPDATE,
    &COUNT,
    &SCAN,
    &SCATTER,
    &ROUTE,
    &FORWARD,
    &BACKWARD_PREPROCESS,
    &BACKWARD_DQ,
    &BACKWARD_DKDV,
    &RECALL,
    &RECALL_MEAN,
];
