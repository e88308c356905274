//! Element-wise kernels: residual/accumulating add, bias add and its backward (column sums),
//! GELU (tanh form, as GPT-2) forward and backward, scaling `s·x`, and the sum of squares `Σx²`
//! (gradient-norm clipping).
//!
//! Shape legend: `n` = element count; bias ops see `x` as `[rows, cols]` with `bias: [cols]`.
//! The residual add's backward is the identity (the gradient flows to both inputs unchanged),
//! so it has no kernel of its own.
//!
//! Sum of squares: deterministic without float atomics, like the RCKV loss — one partial sum per
//! workgroup (a fixed tree order), then rckv's one-workgroup `sum_partials` in a fixed order.
//! The CPU sums in f64 over fixed chunks, so its result does not depend on the thread count.

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

pub const WG: u32 = 256;

pub static ADD: KernelSpec = kernel_spec!(
    "elementwise/add",
    "elementwise/add.wgsl",
    "main",
    crate::kernels::elementwise::gpu::AddParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BIAS_FORWARD: KernelSpec = kernel_spec!(
    "elementwise/bias_forward",
    "elementwise/bias_forward.wgsl",
    "main",
    crate::kernels::elementwise::gpu::ElemParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BIAS_BACKWARD: KernelSpec = kernel_spec!(
    "elementwise/bias_backward",
    "elementwise/bias_backward.wgsl",
    "main",
    crate::kernels::elementwise::gpu::RowsCols,
    [Read, ReadWrite],
    [("WG", 64)]
);
pub static GELU_FORWARD: KernelSpec = kernel_spec!(
    "elementwise/gelu_forward",
    "elementwise/gelu_forward.wgsl",
    "main",
    crate::kernels::elementwise::gpu::ElemParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static GELU_BACKWARD: KernelSpec = kernel_spec!(
    "elementwise/gelu_backward",
    "elementwise/gelu_backward.wgsl",
    "main",
    crate::kernels::elementwise::gpu::ElemParams,
    [Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SCALE: KernelSpec = kernel_spec!(
    "elementwise/scale",
    "elementwise/scale.wgsl",
    "main",
    crate::kernels::elementwise::gpu::AddParams,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static SUM_SQUARES: KernelSpec = kernel_spec!(
    "elementwise/sum_squares",
    "elementwise/sum_squares.wgsl",
    "main",
    crate::kernels::elementwise::gpu::ElemParams,
    [Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[
    &ADD,
    &BIAS_FORWARD,
    &BIAS_BACKWARD,
    &GELU_FORWARD,
    &GELU_BACKWARD,
    &SCALE,
    &SUM_SQUARES,
];
