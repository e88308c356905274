//! Rotary position embedding (RoPE), half-split convention (GPT-NeoX / LLaMA): in each head
//! vector of even length `d`, element `i < d/2` pairs with `i + d/2` and the pair is rotated by
//! `θ = pos · inv_freq[i]`, `inv_freq[i] = base^(−2i/d)`. The backward rotates by `−θ`.
//!
//! Shape legend: `x, y, dy, dx: [b, h, n, d]`; `positions: [b·n]` (host `u32`), each token's
//! ORIGINAL position: after sparse selection tokens keep their positions, so they are arbitrary
//! (not `0..n`) and shared by every head of a batch row.
//!
//! Angle arithmetic, identical on CPU and GPU so large positions agree:
//! - `inv_freq` is computed on the host in f64, rounded to f32 and uploaded, rather than with the
//!   GPU's `pow`, which WGSL allows to be `exp2(y·log2 x)` with tens of ulps of error — at
//!   position 65 000 that is ~0.1 rad.
//! - `θ = f32(pos) · inv_freq[i]` is one correctly rounded f32 multiply on both sides, so θ is
//!   bit-identical. (θ itself carries f32 rounding of up to half an ulp — about 0.002 rad near
//!   65 000 — the same as any f32 RoPE.)
//! - θ is reduced to [−π, π] with a four-part Cody–Waite split of 2π (`cpu::reduce_angle`, the
//!   same f32 steps in WGSL), exact up to the last subtraction for |θ| < 2^20, because WGSL only
//!   bounds `sin`/`cos` error inside [−π, π] (and GPU hardware sines lose accuracy far outside
//!   it). The multiple of 2π comes from a rounded f32 quotient, so the result may overshoot ±π
//!   slightly (< 0.003 rad at position 70k). Only then is `sin`/`cos` taken; the remaining
//!   CPU/GPU difference is the sine implementations' error near [−π, π] (≈1e-6 on real
//!   drivers; 2.4e-7 observed on lavapipe), which the tests' tolerance states.
//! - Forward and backward share one shader (`rotate.wgsl`, entry points `forward` and
//!   `backward`): the backward is the same rotation with `sin` negated, and one source keeps the
//!   angle code in one place.

pub mod cpu;
pub mod gpu;

use crate::device::{DeviceError, KernelSpec};
use crate::kernel_spec;

pub const WG: u32 = 256;

pub static FORWARD: KernelSpec = kernel_spec!(
    "rope/forward",
    "rope/rotate.wgsl",
    "forward",
    crate::kernels::rope::gpu::Params,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);
pub static BACKWARD: KernelSpec = kernel_spec!(
    "rope/backward",
    "rope/rotate.wgsl",
    "backward",
    crate::kernels::rope::gpu::Params,
    [Read, Read, Read, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&FORWARD, &BACKWARD];

/// `inv_freq[i] = base^(−2i/d)` for `i < d/2`, computed in f64 and rounded once to f32.
pub fn inv_freq(d: usize, base: f32) -> Vec<f32> {
    (0..d / 2)
        .map(|i| (base as f64).powf(-2.0 * i as f64 / d as f64) as f32)
        .collect()
}

/// Errors unless `d` is even and positive.
pub fn check_head_dim(op: &'static str, d: usize) -> Result<(), DeviceError> {
    if d == 0 || !d.is_multiple_of(2) {
        return Err(DeviceError::Shape {
            op,
            detail: format!("head dim must be even and positive for half-split RoPE, got {d}"),
        });
    }
    Ok(())
}

/// Errors unless there is one position per (batch, token).
pub fn check_positions(
    op: &'static str,
    positions: &[u32],
    b: usize,
    n: usize,
) -> Result<(), DeviceError> {
    if positions.len() != b * n {
        return Err(DeviceError::Shape {
            op,
            detail: format!(
                "{} positions for b={b} × n={n} tokens; need one per token",
                positions.len()
            ),
        });
    }
    Ok(())
}
