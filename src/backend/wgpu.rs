//! The wgpu backend: device tensors and the WGSL kernels. Ops only record dispatches; work is
//! submitted in one batch at the next download or `sync`.

use std::sync::Arc;

use super::Backend;
use crate::device::{GpuContext, GpuTensor, Result};
use crate::kernels::adamw::{self, AdamW};
use crate::kernels::matmul::{self, MatmulDims};
use crate::kernels::{attention, elementwise, embedding, layernorm, loss, rope, softmax};
use crate::Tensor;

#[derive(Clone)]
pub struct WgpuBackend {
    pub ctx: Arc<GpuContext>,
}

impl WgpuBackend {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        Self { ctx }
    }
    /// Opens the adapter the environment selects (see `device::select`).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(Arc::new(GpuContext::from_env()?)))
    }
}

impl Backend for WgpuBackend {
    type T = GpuTensor;

    fn name(&self) -> String {
        format!("wgpu: {}", self.ctx.adapter)
    }
    fn upload(&self, x: &Tensor) -> Result<GpuTensor> {
        self.ctx.upload(&x.data, &x.shape)
    }
    fn download(&self, x: &GpuTensor) -> Result<Tensor> {
        Ok(Tensor {
            data: self.ctx.download(x)?,
            shape: x.shape.clone(),
        })
    }
    fn shape<'a>(&self, x: &'a GpuTensor) -> &'a [usize] {
        &x.shape
    }
    fn reshape(&self, x: &GpuTensor, shape: &[usize]) -> Result<GpuTensor> {
        super::check_reshape(&x.shape, shape)?;
        Ok(GpuTensor {
            shape: shape.to_vec(),
            ..x.clone()
        })
    }
    fn sync(&self) -> Result<()> {
        self.ctx.sync()
    }
    fn device_seconds(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<Option<f64>> {
        Ok(self.ctx.time_gpu(f)?.1)
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor, d: &MatmulDims) -> Result<GpuTensor> {
        matmul::gpu::matmul(&self.ctx, a, b, d)
    }
    fn matmul_backward(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
        dc: &GpuTensor,
        d: &MatmulDims,
    ) -> Result<(GpuTensor, GpuTensor)> {
        matmul::gpu::matmul_backward(&self.ctx, a, b, dc, d)
    }
    fn add(&self, a: &GpuTensor, b: &GpuTensor, alpha: f32) -> Result<GpuTensor> {
        elementwise::gpu::add(&self.ctx, a, b, alpha)
    }
    fn bias_forward(&self, x: &GpuTensor, bias: &GpuTensor) -> Result<GpuTensor> {
        elementwise::gpu::bias_forward(&self.ctx, x, bias)
    }
    fn bias_backward(&self, dy: &GpuTensor) -> Result<GpuTensor> {
        elementwise::gpu::bias_backward(&self.ctx, dy)
    }
    fn gelu_forward(&self, x: &GpuTensor) -> Result<GpuTensor> {
        elementwise::gpu::gelu_forward(&self.ctx, x)
    }
    fn gelu_backward(&self, x: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
        elementwise::gpu::gelu_backward(&self.ctx, x, dy)
    }
    fn layernorm_forward(
        &self,
        x: &GpuTensor,
        gamma: &GpuTensor,
        beta: &GpuTensor,
        eps: f32,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        layernorm::gpu::layernorm_forward(&self.ctx, x, gamma, beta, eps)
    }
    fn layernorm_backward(
        &self,
        dy: &GpuTensor,
        x: &GpuTensor,
        gamma: &GpuTensor,
        mean: &GpuTensor,
        rstd: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        layernorm::gpu::layernorm_backward(&self.ctx, dy, x, gamma, mean, rstd)
    }
    fn softmax_forward(&self, x: &GpuTensor) -> Result<GpuTensor> {
        softmax::gpu::softmax_forward(&self.ctx, x)
    }
    fn softmax_backward(&self, y: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
        softmax::gpu::softmax_backward(&self.ctx, y, dy)
    }
    fn embedding_forward(&self, weight: &GpuTensor, ids: &[u32]) -> Result<GpuTensor> {
        embedding::gpu::embedding_forward(&self.ctx, weight, ids)
    }
    fn embedding_backward(&self, dy: &GpuTensor, ids: &[u32], vocab: usize) -> Result<GpuTensor> {
        embedding::gpu::embedding_backward(&self.ctx, dy, ids, vocab)
    }
    fn rope_forward(&self, x: &GpuTensor, positions: &[u32], base: f32) -> Result<GpuTensor> {
        rope::gpu::rope_forward(&self.ctx, x, positions, base)
    }
    fn rope_backward(&self, dy: &GpuTensor, positions: &[u32], base: f32) -> Result<GpuTensor> {
        rope::gpu::rope_backward(&self.ctx, dy, positions, base)
    }
    fn attention_forward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor)> {
        attention::gpu::attention_forward(&self.ctx, q, k, v)
    }
    fn attention_backward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        o: &GpuTensor,
        lse: &GpuTensor,
        dout: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        attention::gpu::attention_backward(&self.ctx, q, k, v, o, lse, dout)
    }
    fn cross_entropy(&self, logits: &GpuTensor, targets: &[i32]) -> Result<(GpuTensor, GpuTensor)> {
        loss::gpu::cross_entropy(&self.ctx, logits, targets)
    }
    fn adamw_step(
        &self,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        hp: &AdamW,
        step: u32,
    ) -> Result<()> {
        adamw::gpu::adamw_step(&self.ctx, param, grad, m, v, hp, step)
    }
}
