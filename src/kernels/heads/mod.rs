//! Head split and merge: the layout change between token-major activations and the per-head
//! attention layout.
//!
//! Shape legend: `b` sequences of `n` tokens, `h` heads of width `d`. Token-major `x: [b·n, h·d]`
//! (one row per token, the heads side by side inside the row); head-major `y: [b·h, n, d]` with
//! head index `bh = bi·h + hi`, which is the `[bh, n, d]` layout of `attention` and `sqa`.
//! `split_heads`: `y[bi·h + hi, ni, di] = x[bi·n + ni, hi·d + di]`; `merge_heads` is its inverse.
//!
//! Choices:
//! - Both are pure permutations, so each is the other's backward and the results are exact
//!   (bit-identical on CPU and GPU); no family-specific backward kernel is needed.
//! - `d` is inferred from the element count (`numel / (b·n·h)`), so callers pass only what the
//!   model knows; a count that does not divide, or any of `b, n, h, d` being 0, is a
//!   `DeviceError::Shape`. Only the element count is checked, not the input's rank, so a
//!   `[b, n, h·d]` view works as well as `[b·n, h·d]`.
//! - GPU: one thread per OUTPUT element (a gather), so every write is coalesced and each output
//!   has one writer; the source index is rebuilt from the output index with integer division.
//!   The grid is folded into 2-D with `groups_1d` for large tensors.
//! - CPU: one `d`-wide contiguous copy per (token, head), rows split over threads for big inputs.

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec, Result};
use crate::kernel_spec;

pub const WG: u32 = 256;

pub static SPLIT: KernelSpec = kernel_spec!(
    "heads/split",
    "heads/split.wgsl",
    "main",
    crate::kernels::heads::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);
pub static MERGE: KernelSpec = kernel_spec!(
    "heads/merge",
    "heads/merge.wgsl",
    "main",
    crate::kernels::heads::gpu::Params,
    [Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&SPLIT, &MERGE];

/// The head width `d` of a tensor of `numel` elements split into `b·n·h` vectors; an error when
/// any factor is 0, the count does not divide, or the indices would not fit 32 bits.
pub fn head_dim(op: &'static str, numel: usize, b: usize, n: usize, h: usize) -> Result<usize> {
    let bad = |detail: String| Err(DeviceError::Shape { op, detail });
    let vectors = b.checked_mul(n).and_then(|x| x.checked_mul(h));
    let Some(vectors) = vectors.filter(|&v| v > 0) else {
        return bad(format!("b = {b}, n = {n}, h = {h}: each must be ≥ 1"));
    };
    if numel == 0 || !numel.is_multiple_of(vectors) {
        return bad(format!(
            "{numel} elements do not split into b·n·h = {vectors} head vectors of width ≥ 1"
        ));
    }
    if u32::try_from(numel).is_err() {
        return bad(format!("{numel} elements do not fit 32-bit indices"));
    }
    Ok(numel / vectors)
}
