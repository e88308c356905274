//! AdamW optimizer step (Loshchilov & Hutter, decoupled weight decay), in place.
//!
//! Shape legend: `param`, `grad`, `m` (first moment), `v` (second moment) all hold `n`
//! elements of any shape; `step` is the 1-based step count `t`.
//!
//! ```text
//! m = β1·m + (1−β1)·g        v = β2·v + (1−β2)·g²
//! m̂ = m / (1−β1^t)           v̂ = v / (1−β2^t)
//! p = p − lr·(m̂ / (√v̂ + eps) + wd·p)
//! ```
//!
//! Choices: the bias corrections `1−β^t` are computed once on the host in f64 and passed in
//! the params (a `pow` per element would be wasted work and would differ between drivers);
//! the CPU uses the same f32 values so both backends do identical arithmetic. The decay uses
//! the parameter before this step's update, as in the paper and PyTorch.

pub mod cpu;
pub mod gpu;

use crate::device::KernelSpec;
use crate::kernel_spec;

pub const WG: u32 = 256;

/// Optimizer hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl AdamW {
    /// `(1 − β1^t, 1 − β2^t)`, rounded once to f32 from f64.
    pub fn bias_corrections(&self, step: u32) -> (f32, f32) {
        let t = step as i32;
        let c = |b: f32| (1.0 - (b as f64).powi(t)) as f32;
        (c(self.beta1), c(self.beta2))
    }
}

pub static STEP: KernelSpec = kernel_spec!(
    "adamw/step",
    "adamw/step.wgsl",
    "main",
    crate::kernels::adamw::gpu::Params,
    [ReadWrite, Read, ReadWrite, ReadWrite],
    [("WG", WG)]
);

pub static SPECS: &[&KernelSpec] = &[&STEP];
