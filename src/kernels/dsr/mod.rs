//! DSR — the Dynamic Sparse Retriever: score every context token against the question in a
//! reduced space, pick an adaptive budget of blocks, return the kept token positions; plus its
//! training losses (retrieval BCE or KL distillation, compute) and their backward.
//!
//! Shape legend (one sequence per call): `e: [n, dm]` embeddings of the whole input, context
//! tokens `[0, n_ctx)`, question tokens `[q0, q1)` with `n_ctx ≤ q0 < q1 ≤ n`; `w_r, w_q:
//! [dm, dr]` (`dr` = `DsrConfig::reduced_dim`); scores `s: [n_ctx]`; `nb = ceil(n_ctx / block)`
//! blocks, block scores `[nb]`.
//!
//! Forward: `r_i = e_i·W_r`, `qv = mean_{j∈Q} e_j·W_q`, `s_i = <qv, r_i>/sqrt(dr)`; block score =
//! max over the block; `c = H(softmax(s))/ln(n_ctx)` (0 when `n_ctx ≤ 1`); budget
//! `B = min(n_ctx, round(base_budget·(1 + α·c)))` tokens → `K = clamp(ceil(B/block), 1, nb)`
//! blocks: block 0 (attention sinks) plus the `K − 1` best other blocks, ties to the lower index;
//! output = kept context positions in original order, then the question positions.
//!
//! Choices:
//! - The scorer is linear, so `s_i = e_i·(W_r·qv)/sqrt(dr)`: `u = W_r·qv` (`[dm]`) is formed once
//!   and the scores are one dot product per token, O(n·dm) instead of the O(n·dm·dr) of
//!   materializing `r`. The backward factors the same way: with `ds' = ds/sqrt(dr)` and
//!   `g = e_ctxᵀ·ds'` (`[dm]`), `dW_r = g ⊗ qv`, `dqv = W_rᵀ·g`, `dW_q = ē_Q ⊗ dqv`
//!   (`ē_Q` = question mean embedding), `de_i = ds'_i·u` (context) and `W_q·dqv/|Q|`
//!   (question). Every product goes through the `matmul` family; `reference::scores_ref` and
//!   `reference::backward_ref` keep the unfactored f64 form the tests compare against. (A
//!   non-linear scorer would need `r` materialized again.)
//! - Selection order is a total order on `(order_key(block score) desc, block index asc)`, where
//!   `order_key` maps an f32 to a u32 that sorts like the float (−0 folded onto +0). CPU and GPU
//!   select with this same key, so given the same scores they keep the exact same blocks.
//! - On the GPU the top-`(K−1)` is a radix select (4 passes of an 8-bit histogram with integer
//!   atomics, then a one-thread pick of the digit), which finds the threshold key `T` and how many
//!   blocks tied at `T` to keep; the tie rank and the output positions come from order-keeping
//!   exclusive prefix sums. O(nb) work in ~25 dispatches, against O(nb·log²nb) and ~136 passes
//!   for a global bitonic sort at nb = 64K. Two small readbacks: eight info words (count, kept
//!   context, c, budget, kept blocks, softmax max and ln Z), then exactly the `count` selected
//!   positions; the scores and block scores stay on the device.
//! - Reductions (softmax statistics, loss sums) are per-workgroup partials over a fixed grid,
//!   then one workgroup sums them in a fixed order: deterministic without float atomics.
//! - `c` uses `H = ln Z − Σ e^{s−m}(s−m)/Z` with `m = max s`, so large scores cannot overflow.
//!   The budget is `floor(x + 0.5)` in f32 on both sides (WGSL's `round` is half-to-even).
//! - Losses return per-loss `(value, ds)`; weighting by the λ's and summing the `ds` is the
//!   caller's job, then `backward` maps the summed `ds` to `dW_r`, `dW_q` and optionally `de`.
//! - One sequence per call (no batch dimension): sequences differ in context and question
//!   ranges, so the caller loops.
//!
//! CPU timing against context length: `dsrsq bench attention` (DSR selection at n = 1K–64K).

pub mod cpu;
pub mod gpu;
pub mod reference;

use crate::device::{DeviceError, KernelSpec};
use crate::kernel_spec;

/// Threads per workgroup of every DSR kernel except the one-thread radix pick.
pub const WG: u32 = 256;
/// Most workgroups a partial-sum reduction launches (the final pass sums this many partials).
pub const MAX_PARTIALS: usize = 1024;
/// Elements one workgroup of the prefix sum scans (4 per thread).
pub const SCAN_CHUNK: usize = 4 * WG as usize;

/// DSR hyperparameters (seed configuration by `Default`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DsrConfig {
    /// `dr`, the width of the reduced scoring space.
    pub reduced_dim: usize,
    /// Tokens per selection block; 1 = token-level selection.
    pub block: usize,
    /// Tokens kept at complexity 0.
    pub base_budget: usize,
    /// Budget growth with complexity: `B = base·(1 + α·c)`.
    pub alpha: f32,
    /// Score offset of the compute loss `σ((s − τ)/T)`.
    pub tau: f32,
    /// Temperature `T` of the compute loss (> 0).
    pub temperature: f32,
    /// Supporting spans are widened by this many tokens on each side for the retrieval labels.
    pub dilation: usize,
}

impl Default for DsrConfig {
    fn default() -> Self {
        Self {
            reduced_dim: 128,
            block: 16,
            base_budget: 512,
            alpha: 0.5,
            tau: 0.0,
            temperature: 1.0,
            dilation: 2,
        }
    }
}

/// Where context and question lie in one input of `n` tokens of width `dm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DsrDims {
    pub n: usize,
    pub dm: usize,
    pub n_ctx: usize,
    pub q0: usize,
    pub q1: usize,
}

impl DsrDims {
    pub fn nq(&self) -> usize {
        self.q1 - self.q0
    }
    /// Number of selection blocks for `block` tokens per block.
    pub fn blocks(&self, block: usize) -> usize {
        self.n_ctx.div_ceil(block.max(1))
    }

    /// Checks the ranges, the config and the buffer lengths (`e`, `w_r`, `w_q` element counts).
    pub fn validate(
        &self,
        op: &'static str,
        cfg: &DsrConfig,
        e_len: usize,
        wr_len: usize,
        wq_len: usize,
    ) -> Result<(), DeviceError> {
        let bad = |detail: String| Err(DeviceError::Shape { op, detail });
        validate_config(op, cfg)?;
        let Self {
            n,
            dm,
            n_ctx,
            q0,
            q1,
        } = *self;
        if dm == 0 {
            return bad("model width dm is 0".into());
        }
        if n_ctx == 0 || n_ctx > n {
            return bad(format!("context length {n_ctx} outside 1..={n}"));
        }
        if q0 >= q1 || q0 < n_ctx || q1 > n {
            return bad(format!(
                "question range [{q0}, {q1}) must be non-empty, after the context ({n_ctx}) and inside {n} tokens"
            ));
        }
        if e_len != n * dm {
            return bad(format!(
                "e has {e_len} elements, [{n}, {dm}] needs {}",
                n * dm
            ));
        }
        let dr = cfg.reduced_dim;
        if wr_len != dm * dr || wq_len != dm * dr {
            return bad(format!(
                "w_r has {wr_len} and w_q {wq_len} elements, [{dm}, {dr}] (dm, reduced_dim) needs {}",
                dm * dr
            ));
        }
        if u32::try_from(n * dm.max(dr)).is_err() {
            return bad(format!("{n} x {dm} does not fit 32-bit indices"));
        }
        Ok(())
    }
}

/// Rejects configurations no kernel can run (block 0, dr 0, a non-positive temperature).
pub fn validate_config(op: &'static str, cfg: &DsrConfig) -> Result<(), DeviceError> {
    let detail = if cfg.block == 0 {
        "block size is 0"
    } else if cfg.reduced_dim == 0 {
        "reduced_dim is 0"
    } else if !(cfg.temperature > 0.0 && cfg.temperature.is_finite()) {
        "temperature must be positive and finite"
    } else if !(cfg.alpha.is_finite() && cfg.tau.is_finite()) {
        "alpha and tau must be finite"
    } else if u32::try_from(cfg.base_budget).is_err() || u32::try_from(cfg.block).is_err() {
        "base_budget and block must fit 32 bits"
    } else {
        return Ok(());
    };
    Err(DeviceError::Shape {
        op,
        detail: detail.into(),
    })
}

/// A u32 that orders like the f32 (`a < b` ⇔ `key(a) < key(b)` for non-NaN), with −0 = +0.
pub fn order_key(f: f32) -> u32 {
    let mut b = f.to_bits();
    if b == 0x8000_0000 {
        b = 0;
    }
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// `(budget B in tokens, kept blocks K)` for complexity `c`; the same f32 arithmetic as the
/// WGSL so both sides agree on B.
pub fn budget(c: f32, n_ctx: usize, cfg: &DsrConfig) -> (usize, usize) {
    let want = (cfg.base_budget as f32 * (1.0 + cfg.alpha * c) + 0.5).floor();
    let b = (want.max(0.0) as usize).min(n_ctx);
    let nb = n_ctx.div_ceil(cfg.block);
    (b, b.div_ceil(cfg.block).clamp(1, nb.max(1)))
}

/// The forward's selection, as the host sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DsrSelection {
    /// Kept context positions in original order, then the question positions.
    pub selected: Vec<u32>,
    /// How many of `selected` are context tokens.
    pub kept_ctx: usize,
    /// Token budget `B`.
    pub budget: usize,
    /// Blocks kept, the sink block included.
    pub keep_blocks: usize,
    /// Normalized entropy `c` of softmax(s).
    pub complexity: f32,
}

pub static QUESTION_MEAN: KernelSpec = kernel_spec!(
    "dsr/question_mean",
    "dsr/question_mean.wgsl",
    "main",
    crate::kernels::dsr::gpu::QuestionRows,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static SCORES: KernelSpec = kernel_spec!(
    "dsr/scores",
    "dsr/scores.wgsl",
    "main",
    crate::kernels::dsr::gpu::ScoreParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BLOCK_MAX: KernelSpec = kernel_spec!(
    "dsr/block_max",
    "dsr/block_max.wgsl",
    "main",
    crate::kernels::dsr::gpu::BlockMax,
    [Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static STATS_PARTIAL: KernelSpec = kernel_spec!(
    "dsr/stats_partial",
    "dsr/stats_partial.wgsl",
    "main",
    crate::kernels::dsr::gpu::Partials,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static STATS_FINAL: KernelSpec = kernel_spec!(
    "dsr/stats_final",
    "dsr/stats_final.wgsl",
    "main",
    crate::kernels::dsr::gpu::select::FinalParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static RADIX_HIST: KernelSpec = kernel_spec!(
    "dsr/radix_hist",
    "dsr/radix_hist.wgsl",
    "main",
    crate::kernels::dsr::gpu::Radix,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static RADIX_PICK: KernelSpec = kernel_spec!(
    "dsr/radix_pick",
    "dsr/radix_pick.wgsl",
    "main",
    crate::kernels::dsr::gpu::Radix,
    [Read, ReadWrite],
    []
);
pub static MARK_TIES: KernelSpec = kernel_spec!(
    "dsr/mark_ties",
    "dsr/mark_ties.wgsl",
    "main",
    crate::kernels::dsr::gpu::Blocks,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static MARK_SELECTED: KernelSpec = kernel_spec!(
    "dsr/mark_selected",
    "dsr/mark_selected.wgsl",
    "main",
    crate::kernels::dsr::gpu::Blocks,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static SCAN_LOCAL: KernelSpec = kernel_spec!(
    "dsr/scan_local",
    "dsr/scan_local.wgsl",
    "main",
    crate::kernels::dsr::gpu::ScanLen,
    [Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static SCAN_ADD: KernelSpec = kernel_spec!(
    "dsr/scan_add",
    "dsr/scan_add.wgsl",
    "main",
    crate::kernels::dsr::gpu::ScanLen,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static COMPACT: KernelSpec = kernel_spec!(
    "dsr/compact",
    "dsr/compact.wgsl",
    "main",
    crate::kernels::dsr::gpu::select::CompactParams,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static LOSS_BCE: KernelSpec = kernel_spec!(
    "dsr/loss_bce",
    "dsr/loss_bce.wgsl",
    "main",
    crate::kernels::dsr::gpu::train::BceParams,
    [Read, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static LOSS_KL: KernelSpec = kernel_spec!(
    "dsr/loss_kl",
    "dsr/loss_kl.wgsl",
    "main",
    crate::kernels::dsr::gpu::Partials,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static KL_GRAD: KernelSpec = kernel_spec!(
    "dsr/kl_grad",
    "dsr/kl_grad.wgsl",
    "main",
    crate::kernels::dsr::gpu::Partials,
    [Read, Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static LOSS_COMPUTE: KernelSpec = kernel_spec!(
    "dsr/loss_compute",
    "dsr/loss_compute.wgsl",
    "main",
    crate::kernels::dsr::gpu::train::ComputeParams,
    [Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static REDUCE_PARTIALS: KernelSpec = kernel_spec!(
    "dsr/reduce_partials",
    "dsr/reduce_partials.wgsl",
    "main",
    crate::kernels::dsr::gpu::train::ReduceParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static PAD_SCALE: KernelSpec = kernel_spec!(
    "dsr/pad_scale",
    "dsr/pad_scale.wgsl",
    "main",
    crate::kernels::dsr::gpu::train::PadParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static GRAD_E: KernelSpec = kernel_spec!(
    "dsr/grad_e",
    "dsr/grad_e.wgsl",
    "main",
    crate::kernels::dsr::gpu::train::GradEParams,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[
    &QUESTION_MEAN,
    &SCORES,
    &BLOCK_MAX,
    &STATS_PARTIAL,
    &STATS_FINAL,
    &RADIX_HIST,
    &RADIX_PICK,
    &MARK_TIES,
    &MARK_SELECTED,
    &SCAN_LOCAL,
    &SCAN_ADD,
    &COMPACT,
    &LOSS_BCE,
    &LOSS_KL,
    &KL_GRAD,
    &LOSS_COMPUTE,
    &REDUCE_PARTIALS,
    &PAD_SCALE,
    &GRAD_E,
];
