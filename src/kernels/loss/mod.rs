//! Fused softmax + cross-entropy with ignored positions: the loss head of the model.
//!
//! Shape legend: `logits: [rows, vocab]`, `targets: [rows]` (host `i32`), outputs
//! `losses: [rows]` and `dlogits: [rows, vocab]`.
//!
//! A negative target marks an ignored position (padding, the question part of a QA prompt):
//! its loss and gradient are 0. The gradient is that of the MEAN loss over the valid rows,
//! `(softmax − onehot) / n_valid`, so the caller can feed it straight into the backward pass;
//! `n_valid` is counted on the host (the targets live there), which keeps the kernel a single
//! pass per row with no cross-row reduction. A target `>= vocab` is rejected on the host with
//! an error naming the row, because on the device it would silently read another row.
//!
//! Choices: one workgroup per row; each thread keeps an online (max, Σexp) pair over its
//! strided slice of the row, so the statistics need one read of the logits and one tree
//! reduction of pairs, and a second read writes the gradient: forward and backward fused.
//! The loss is `log Σ exp(x − max) + (max − x[t])`, which stays exact for logits of ±1e4.

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

/// Threads per row; a 30k vocabulary is ~120 strided elements per thread.
pub const WG: u32 = 256;

pub static CROSS_ENTROPY: KernelSpec = kernel_spec!(
    "loss/cross_entropy",
    "loss/cross_entropy.wgsl",
    "main",
    crate::kernels::loss::gpu::Params,
    [Read, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&CROSS_ENTROPY];
