//! Dense causal scaled-dot-product attention, forward and backward, as tiled online-softmax
//! kernels that never store the n×n score matrix (FlashAttention-2).
//!
//! Shape legend: `bh` = batch × heads (independent problems), `n` = sequence length, `d` =
//! head dimension. `q`, `k`, `v`, `o`, `dout`, `dq`, `dk`, `dv`: `[bh, n, d]` row-major f32;
//! `lse`: `[bh, n]`, the natural log-sum-exp of query row i's scaled scores `q_i·k_j/√d`
//! over `j ≤ i`, saved by the forward so the backward can rebuild `P = exp(S − lse)` tile by
//! tile. Query i attends keys `j ≤ i`.
//!
//! Choices:
//! - Forward: a workgroup owns `FWD_BQ` queries and streams `FWD_BK`-key tiles up to the
//!   diagonal, with a running max / sum / output per query.
//! - Backward: `delta_i = Σ dO∘O` first (preprocess), then one kernel in which each
//!   workgroup owns a key block (dK, dV over the query blocks from the diagonal on) and one
//!   in which each owns a query block (dQ over the key blocks up to the diagonal). Every
//!   output row has exactly one writer: no atomics (WGSL has no float atomics) and results
//!   are deterministic.
//! - `d` is a runtime parameter up to the `MAX_D` define (128); accumulators are per-thread
//!   register arrays sized by `MAX_D`. Tiles are small (16×8 forward, 8×8 backward) because
//!   the device asks for WebGPU's default 16 KiB of workgroup memory: at `MAX_D = 128` one
//!   8-row tile with padded rows is ~4 KiB, and the backward needs three of them.
//! - The CPU side (`cpu/`) holds plain-loop f64 references (`*_ref`, `cpu/reference.rs`) the
//!   kernels are tested against, and the fast tiled CPU backend: register-blocked tile kernels
//!   compiled for AVX-512, AVX2 and baseline x86-64 and chosen at run time (`cpu/tiles.rs`).

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

/// Largest head dimension the kernels support (sizes their workgroup tiles and registers).
pub const MAX_D: u32 = 128;
/// Forward tile: queries per workgroup and keys per streamed tile (128 threads).
pub const FWD_BQ: u32 = 16;
pub const FWD_BK: u32 = 8;
/// Backward tiles (64 threads).
pub const BWD_BQ: u32 = 8;
pub const BWD_BK: u32 = 8;
/// Threads per workgroup of the per-row preprocess.
pub const PRE_WG: u32 = 64;

pub static FORWARD: KernelSpec = kernel_spec!(
    "attention/forward",
    "attention/forward.wgsl",
    "main",
    crate::kernels::attention::gpu::Params,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [("BQ", FWD_BQ), ("BK", FWD_BK), ("MAX_D", MAX_D)]
);
pub static BACKWARD_PREPROCESS: KernelSpec = kernel_spec!(
    "attention/backward_preprocess",
    "attention/backward_preprocess.wgsl",
    "main",
    crate::kernels::attention::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", PRE_WG)]
);
pub static BACKWARD_DKDV: KernelSpec = kernel_spec!(
    "attention/backward_dkdv",
    "attention/backward_dkdv.wgsl",
    "main",
    crate::kernels::attention::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("BQ", BWD_BQ), ("BK", BWD_BK), ("MAX_D", MAX_D)]
);
pub static BACKWARD_DQ: KernelSpec = kernel_spec!(
    "attention/backward_dq",
    "attention/backward_dq.wgsl",
    "main",
    crate::kernels::attention::gpu::Params,
    [Read, Read, Read, Read, Read, Read, ReadWrite],
    [("BQ", BWD_BQ), ("BK", BWD_BK), ("MAX_D", MAX_D)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD_PREPROCESS, &BACKWARD_DKDV, &BACKWARD_DQ];
