//! Grouped Cross Attention (GCA; Hu et al., ICML 2025, "Efficient Length-Generalizable
//! Attention via Causal Retrieval for Long-Context Language Modeling"): causal attention over
//! a local window plus attention to top-k retrieved past chunks, each retrieved chunk
//! attended on its own and the results fused by the softmax of the retrieval scores, so the
//! retrieval is trained end to end by the LM loss (`dw` below).
//!
//! Shape legend: `bh` = `b·H` (batch × heads, head index `bi·H + hi`), `l` tokens per
//! sequence, `d` head dim, `S` = `chunk` tokens per chunk, `nc = ⌈l/S⌉` chunks, `K` = `top_k`.
//! - `q, k, v, o, dout, dq, dk, dv`: `[bh, l, d]` (post-RoPE, as the dense attention family)
//! - `sel: [b, nc, K]` u32 chunk indices; [`NONE`] marks an empty slot
//! - `w, dw: [b, nc, K]` fusion weights (softmax of the retrieval scores) and their gradient
//! - `aux: [bh, l, 4·(K+1)]` backward scratch per row and segment `g` (0 local, 1..=K
//!   retrieved): log-sum-exp, `delta = α_g·dO·O^g`, the weight `α_g` (1 for the local
//!   segment, `w` for the others) and the row's `dw` partial `dO·O^g`
//!
//! For token `t` in chunk `c = t / S` of head `h` of sequence `bi`, with `s = 1/√d`:
//! ```text
//! o_t = Attn(q_t, keys [(c−1)·S, t])                       (local: previous chunk + own, causal)
//!     + Σ_k w[bi,c,k] · Attn(q_t, keys of chunk sel[bi,c,k]) (each chunk softmax-normalized alone)
//! ```
//!
//! Choices and differences from the paper:
//! - The paper's DRT model stacks sliding-window self-attention layers and puts GCA (cross
//!   attention to retrieved chunks encoded from a middle layer) in the upper layers. Here
//!   one op replaces a layer's attention: the local window (own chunk + previous chunk, i.e.
//!   a window of S..2S tokens) plus the fused retrieved chunks, read from the SAME layer's
//!   keys and values. The local part is added with weight 1 (it is a separate attention in
//!   the paper too, whose output adds to the residual stream).
//! - Retrieved chunks must lie entirely outside the local window: `sel[bi,c,k] + 1 < c`
//!   (checked on the host, like embedding ids); so chunks 0 and 1 retrieve nothing. The
//!   paper likewise retrieves for chunk c with the landmark of chunk c−1 among earlier chunks.
//! - `w` is shared by the heads of a sequence (one retrieval per chunk and layer, as the
//!   paper's one landmark per chunk); `dw` sums over heads and over the chunk's tokens.
//! - The landmark, the retrieval scores, top-k and the softmax over the K scores live in the
//!   model (`model::gca`), built from existing ops; this family is the attention itself.
//! - Kernels: one thread per query row (forward, dq) or key row (dk/dv) with online softmax
//!   and MAX_D-sized register accumulators; the dk/dv thread scans the `sel` table for the
//!   chunks that retrieved its chunk. Every output element has exactly one writer (no float
//!   atomics in WGSL) and `dw` is reduced by one thread per `(bi, c, k)` in a fixed order, so
//!   results are deterministic. The dq pass recomputes each segment's softmax (so the
//!   forward saves nothing but `o`) and writes `aux`, which the dk/dv and dw passes read:
//!   that keeps every kernel within WebGPU's default of 8 storage buffers.
//! - Not tuned: no shared-memory tiles, and the per-thread `MAX_D` arrays live in registers
//!   or spill on a real GPU. Work is linear in `l` per row (`≤ 2S + K·S` keys), so the cost
//!   is O(l·(2+K)·S·d), but a tiled version (one workgroup per chunk, K/V of each segment
//!   staged in workgroup memory) would be the next step for speed.
//! - Softmax is plain (no "softmax off by one", which the authors' code makes optional).

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec, Result};
use crate::kernel_spec;

/// Threads per workgroup (one row per thread).
pub const WG: u32 = 64;
/// Largest head dimension the kernels support (sizes per-thread register arrays).
pub const MAX_D: u32 = 128;
/// `sel` value of an empty retrieval slot (fewer past chunks than `K`).
pub const NONE: u32 = u32::MAX;

/// Sizes of one GCA call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcaDims {
    pub bh: usize,
    /// Heads per sequence (`b = bh / heads`).
    pub heads: usize,
    pub l: usize,
    pub d: usize,
    pub chunk: usize,
    pub top_k: usize,
}

impl GcaDims {
    pub fn b(&self) -> usize {
        self.bh / self.heads.max(1)
    }
    pub fn n_chunks(&self) -> usize {
        self.l.div_ceil(self.chunk.max(1))
    }
    /// Elements of `sel` and `w`: `b·nc·K`.
    pub fn sel_len(&self) -> usize {
        self.b() * self.n_chunks() * self.top_k
    }

    /// Checks the sizes, the buffers' element counts (`qkv` for each of q, k, v, …) and
    /// that every retrieved chunk is strictly before its reader's local window.
    pub fn validate(&self, op: &'static str, qkv: &[usize], sel: &[u32], w: usize) -> Result<()> {
        let bad = |detail: String| Err(DeviceError::Shape { op, detail });
        if self.heads == 0
            || !self.bh.is_multiple_of(self.heads)
            || self.chunk == 0
            || self.top_k == 0
        {
            return bad(format!("{self:?}: heads must divide bh; chunk, top_k ≥ 1"));
        }
        if self.d == 0 || self.d > MAX_D as usize {
            return bad(format!("head dim d = {} outside 1..={MAX_D}", self.d));
        }
        let n = self.bh * self.l * self.d;
        if let Some(&m) = qkv.iter().find(|&&m| m != n) {
            return bad(format!(
                "a [bh, l, d] buffer has {m} elements, {self:?} needs {n}"
            ));
        }
        if sel.len() != self.sel_len() || w != self.sel_len() {
            return bad(format!(
                "sel has {} and w {w} elements, [b, nc, K] = {}",
                sel.len(),
                self.sel_len()
            ));
        }
        let (nc, kk) = (self.n_chunks(), self.top_k);
        for (i, &s) in sel.iter().enumerate() {
            let c = (i / kk) % nc;
            if s != NONE && s as usize + 1 >= c {
                return bad(format!(
                    "sel[{i}] = {s} for chunk {c}: retrieved chunks must precede c − 1"
                ));
            }
        }
        Ok(())
    }
}

pub static FORWARD: KernelSpec = kernel_spec!(
    "gca/forward",
    "gca/forward.wgsl",
    "main",
    crate::kernels::gca::gpu::Params,
    [Read, Read, Read, Read, Read, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static BACKWARD_DQ: KernelSpec = kernel_spec!(
    "gca/backward_dq",
    "gca/backward_dq.wgsl",
    "main",
    crate::kernels::gca::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static BACKWARD_DKDV: KernelSpec = kernel_spec!(
    "gca/backward_dkdv",
    "gca/backward_dkdv.wgsl",
    "main",
    crate::kernels::gca::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", WG), ("MAX_D", MAX_D)]
);
pub static BACKWARD_DW: KernelSpec = kernel_spec!(
    "gca/backward_dw",
    "gca/backward_dw.wgsl",
    "main",
    crate::kernels::gca::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD_DQ, &BACKWARD_DKDV, &BACKWARD_DW];
