//! LayerNorm over the last dimension: `y = (x − mean)·rstd·gamma + beta` with
//! `rstd = 1/√(var + eps)` and the biased (population) variance.
//!
//! LayerNorm rather than RMSNorm because the model is a GPT-2-style pre-norm transformer and the
//! baselines it is compared with are LayerNorm transformers; matching the normalisation keeps the
//! comparison about attention and the cache, not about the norm.
//!
//! Shape legend: `x, y, dy, dx: [rows, cols]` (any leading shape whose last dimension is
//! `cols`), `gamma, beta, dgamma, dbeta: [cols]`, `mean, rstd: [rows]` (saved by the forward
//! for the backward).
//!
//! Choices:
//! - Two passes (mean, then the mean of squared deviations) instead of `E[x²] − E[x]²`, which
//!   cancels catastrophically for rows with a large offset and small spread.
//! - Each row's sums are taken relative to its first element (`shift`), so the sum of a row of
//!   values near 1e3 does not lose the small deviations, and `y` is computed from
//!   `(x − shift) − mean_d` rather than from the rounded f32 `mean`. The saved `mean` is
//!   `shift + mean_d` rounded to f32; the backward uses it, so its `x̂` can differ from the
//!   forward's by half an ulp of `mean` times `rstd` (≈ 1e-4 for values near 1e3 with spread 0.5).
//! - dx is one workgroup per row (two reductions: Σ g and Σ g·x̂ with `g = dy·gamma`).
//! - dgamma/dbeta are column sums over rows. WGSL has no float atomics, so they are computed
//!   deterministically in two steps: `backward_params.wgsl` sums fixed chunks of
//!   `PARAM_CHUNK` rows per column into partials `[chunks, cols]` (one thread per
//!   (chunk, column), so there is parallelism even when `cols` is small), then the element-wise
//!   column-sum kernel adds the partials in chunk order. The CPU uses the same chunking.

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

/// Threads per row in the per-row kernels (power of two for the tree reduction).
pub const WG: u32 = 256;
/// Rows summed per partial in the dgamma/dbeta reduction: large enough that the second step is
/// short, small enough that `rows / PARAM_CHUNK × cols` threads fill a GPU.
pub const PARAM_CHUNK: usize = 64;
/// Threads per workgroup of the dgamma/dbeta partial-sum kernel (one thread per column-chunk).
pub const PARAMS_WG: u32 = 64;

pub static FORWARD: KernelSpec = kernel_spec!(
    "layernorm/forward",
    "layernorm/forward.wgsl",
    "main",
    crate::kernels::layernorm::gpu::FwdParams,
    [Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD: KernelSpec = kernel_spec!(
    "layernorm/backward",
    "layernorm/backward.wgsl",
    "main",
    crate::kernels::layernorm::gpu::BwdParams,
    [Read, Read, Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD_PARAMS: KernelSpec = kernel_spec!(
    "layernorm/backward_params",
    "layernorm/backward_params.wgsl",
    "main",
    crate::kernels::layernorm::gpu::BwdParams,
    [Read, Read, Read, Read, ReadWrite, ReadWrite],
    [("WG", PARAMS_WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD, &BACKWARD_PARAMS];
