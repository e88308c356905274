//! The `Backend` trait the model is written against, with two implementations: `CpuBackend`
//! (host tensors, multithreaded, and the reference) and `WgpuBackend` (device tensors, WGSL
//! kernels, dispatches batched until a readback).
//!
//! Shape conventions (see each kernel family's legend): activations are row-major; attention
//! tensors are `[batch·heads, n, head_dim]`; RoPE sees `[batch, heads, n, head_dim]` with one
//! original position per (batch, token).

mod cpu;
mod wgpu;

pub use self::cpu::CpuBackend;
pub use self::wgpu::WgpuBackend;

use crate::device::{DeviceError, Result};
use crate::kernels::adamw::AdamW;
use crate::kernels::matmul::MatmulDims;
use crate::Tensor;

pub trait Backend {
    /// The backend's tensor: a host `Tensor` or a device buffer with its shape.
    type T: Clone;

    /// Human-readable description, e.g. the adapter name.
    fn name(&self) -> String;
    fn upload(&self, t: &Tensor) -> Result<Self::T>;
    fn download(&self, t: &Self::T) -> Result<Tensor>;
    fn shape<'a>(&self, t: &'a Self::T) -> &'a [usize];
    /// The same elements under another shape (no copy on the device).
    fn reshape(&self, t: &Self::T, shape: &[usize]) -> Result<Self::T>;
    /// Waits until all queued work is done (timing boundaries).
    fn sync(&self) -> Result<()>;
    /// Runs `f` and returns the device time it took, where the device keeps timestamps
    /// (wgpu adapters with timestamp queries); `None` elsewhere.
    fn device_seconds(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<Option<f64>> {
        f()?;
        self.sync()?;
        Ok(None)
    }

    fn matmul(&self, a: &Self::T, b: &Self::T, d: &MatmulDims) -> Result<Self::T>;
    /// (dA, dB) in the storage layouts of A and B.
    fn matmul_backward(
        &self,
        a: &Self::T,
        b: &Self::T,
        dc: &Self::T,
        d: &MatmulDims,
    ) -> Result<(Self::T, Self::T)>;
    /// a + alpha·b.
    fn add(&self, a: &Self::T, b: &Self::T, alpha: f32) -> Result<Self::T>;
    fn bias_forward(&self, x: &Self::T, bias: &Self::T) -> Result<Self::T>;
    fn bias_backward(&self, dy: &Self::T) -> Result<Self::T>;
    fn gelu_forward(&self, x: &Self::T) -> Result<Self::T>;
    fn gelu_backward(&self, x: &Self::T, dy: &Self::T) -> Result<Self::T>;
    /// (y, mean, rstd).
    fn layernorm_forward(
        &self,
        x: &Self::T,
        gamma: &Self::T,
        beta: &Self::T,
        eps: f32,
    ) -> Result<(Self::T, Self::T, Self::T)>;
    /// (dx, dgamma, dbeta).
    fn layernorm_backward(
        &self,
        dy: &Self::T,
        x: &Self::T,
        gamma: &Self::T,
        mean: &Self::T,
        rstd: &Self::T,
    ) -> Result<(Self::T, Self::T, Self::T)>;
    fn softmax_forward(&self, x: &Self::T) -> Result<Self::T>;
    fn softmax_backward(&self, y: &Self::T, dy: &Self::T) -> Result<Self::T>;
    fn embedding_forward(&self, weight: &Self::T, ids: &[u32]) -> Result<Self::T>;
    fn embedding_backward(&self, dy: &Self::T, ids: &[u32], vocab: usize) -> Result<Self::T>;
    fn rope_forward(&self, x: &Self::T, positions: &[u32], base: f32) -> Result<Self::T>;
    fn rope_backward(&self, dy: &Self::T, positions: &[u32], base: f32) -> Result<Self::T>;
    /// Dense causal attention: (o, lse).
    fn attention_forward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
    ) -> Result<(Self::T, Self::T)>;
    /// (dq, dk, dv).
    fn attention_backward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        o: &Self::T,
        lse: &Self::T,
        dout: &Self::T,
    ) -> Result<(Self::T, Self::T, Self::T)>;
    /// (per-row losses, dlogits); targets < 0 are ignored positions.
    fn cross_entropy(&self, logits: &Self::T, targets: &[i32]) -> Result<(Self::T, Self::T)>;
    fn adamw_step(
        &self,
        param: &mut Self::T,
        grad: &Self::T,
        m: &mut Self::T,
        v: &mut Self::T,
        hp: &AdamW,
        step: u32,
    ) -> Result<()>;
}

/// The check every `reshape` makes: the element count must not change.
pub(crate) fn check_reshape(from: &[usize], to: &[usize]) -> Result<()> {
    if from.iter().product::<usize>() != to.iter().product::<usize>() {
        return Err(DeviceError::Shape {
            op: "reshape",
            detail: format!("{from:?} has a different element count than {to:?}"),
        });
    }
    Ok(())
}
