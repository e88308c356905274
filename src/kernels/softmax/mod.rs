//! Row softmax over the last dimension, forward and backward.
//!
//! Shape legend: `x, y, dy, dx: [rows, cols]` (any leading dims flatten into `rows`).
//!
//! Choices:
//! - One workgroup (`WG` threads) per row, rows folded into a 2-D grid past 65535; each thread
//!   strides over the row, then a shared-memory tree combines the partials in a fixed order, so
//!   results are deterministic (WGSL has no float atomics).
//! - The forward reads the row twice, not three times: each thread keeps an online running
//!   (max, Σexp(x − max)) pair, rescaling its sum when the max grows, and the tree merges the
//!   pairs. Every exponent is of a value ≤ 0 after subtracting the max, so ±1e4 logits cannot
//!   overflow. The CPU takes the plain max-then-sum route; both round differently only in the
//!   last bits.
//! - Backward: `dx = y ∘ (dy − Σ y∘dy)` needs one row reduction (the dot product), from `y` alone
//!   (the forward output is what the model keeps).

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

pub const WG: u32 = 256;

pub static FORWARD: KernelSpec = kernel_spec!(
    "softmax/forward",
    "softmax/forward.wgsl",
    "main",
    crate::kernels::softmax::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD: KernelSpec = kernel_spec!(
    "softmax/backward",
    "softmax/backward.wgsl",
    "main",
    crate::kernels::softmax::gpu::Params,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD];
