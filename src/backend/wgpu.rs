//! The wgpu backend: device tensors and the WGSL kernels. Ops only record dispatches; work is
//! submitted in one batch at the next download or `sync`.

use std::sync::Arc;

use super::{Backend, DsrFwd, DsrGrads, GcaGrads};
use crate::device::{DType, DeviceError, GpuContext, GpuTensor, Result};
use crate::kernels::adamw::{self, AdamW};
use crate::kernels::dsr::{self, gpu::GpuDsrScores, DsrConfig, DsrDims, DsrSelection};
use crate::kernels::gca::{self, GcaDims};
use crate::kernels::matmul::{self, MatmulDims};
use crate::kernels::shortconv::{self, ConvDims};
use crate::kernels::sqa::{self, gpu::GpuClusters, SqaConfig};
use crate::kernels::{
    attention, elementwise, embedding, heads, layernorm, loss, rckv, rope, softmax,
};
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

    /// The first element of `x` as a `[1]` tensor (a 4-byte copy recorded with the dispatches).
    fn first(&self, x: &GpuTensor) -> Result<GpuTensor> {
        let out = self.ctx.zeros(&[1], DType::F32)?;
        self.ctx.scoped("first element", || {
            self.ctx.with_encoder(|enc| {
                enc.copy_buffer_to_buffer(x.buffer(), 0, out.buffer(), 0, 4);
            })
        })?;
        Ok(out)
    }

    /// The same buffer under `shape` (checked element count).
    fn shaped(&self, x: GpuTensor, shape: &[usize]) -> Result<GpuTensor> {
        super::check_reshape(&x.shape, shape)?;
        Ok(GpuTensor {
            shape: shape.to_vec(),
            ..x
        })
    }
}

fn same_shape(op: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(DeviceError::Shape {
            op,
            detail: format!("{:?} vs {:?}", a.shape, b.shape),
        });
    }
    Ok(())
}

impl Backend for WgpuBackend {
    type T = GpuTensor;
    type Clusters = GpuClusters;

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
    fn device_bytes(&self) -> Option<(u64, u64)> {
        let m = self.ctx.memory();
        Some((m.current(), m.peak()))
    }
    fn reset_memory_peak(&self) {
        self.ctx.memory().reset_peak();
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
    fn shortconv_forward(&self, x: &GpuTensor, w: &GpuTensor, d: &ConvDims) -> Result<GpuTensor> {
        shortconv::gpu::forward(&self.ctx, x, w, d)
    }
    fn shortconv_backward(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        dy: &GpuTensor,
        d: &ConvDims,
    ) -> Result<(GpuTensor, GpuTensor)> {
        shortconv::gpu::backward(&self.ctx, x, w, dy, d)
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

    fn split_heads(&self, x: &GpuTensor, b: usize, n: usize, h: usize) -> Result<GpuTensor> {
        heads::gpu::split_heads(&self.ctx, x, b, n, h)
    }
    fn merge_heads(&self, x: &GpuTensor, b: usize, n: usize, h: usize) -> Result<GpuTensor> {
        heads::gpu::merge_heads(&self.ctx, x, b, n, h)
    }

    fn mse(&self, x: &GpuTensor, xhat: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
        rckv::gpu::mse(&self.ctx, x, xhat)
    }
    fn sum_squares(&self, x: &GpuTensor) -> Result<GpuTensor> {
        elementwise::gpu::sum_squares(&self.ctx, x)
    }
    fn scale(&self, x: &GpuTensor, s: f32) -> Result<GpuTensor> {
        elementwise::gpu::scale(&self.ctx, x, s)
    }

    fn dsr_scores(
        &self,
        e: &GpuTensor,
        w_r: &GpuTensor,
        w_q: &GpuTensor,
        d: &DsrDims,
        cfg: &DsrConfig,
    ) -> Result<DsrFwd<GpuTensor>> {
        let sc = dsr::gpu::scores(&self.ctx, e, w_r, w_q, d, cfg)?;
        Ok(DsrFwd {
            scores: sc.scores,
            qv: sc.qv,
            u: sc.u,
            e_mean: sc.e_mean,
        })
    }
    fn dsr_select(
        &self,
        scores: &GpuTensor,
        q0: usize,
        q1: usize,
        cfg: &DsrConfig,
    ) -> Result<DsrSelection> {
        Ok(dsr::gpu::select(&self.ctx, scores, q0, q1, cfg)?.selection)
    }
    fn dsr_retrieval_bce(
        &self,
        scores: &GpuTensor,
        spans: &[(usize, usize)],
        dilation: usize,
    ) -> Result<(GpuTensor, GpuTensor)> {
        dsr::gpu::retrieval_bce(&self.ctx, scores, spans, dilation)
    }
    fn dsr_retrieval_kl(
        &self,
        scores: &GpuTensor,
        target: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor)> {
        // The kernel's sums are [loss, Σ target]; the trait's loss is the [1] head of them.
        let (sums, ds) = dsr::gpu::retrieval_kl(&self.ctx, scores, target)?;
        Ok((self.first(&sums)?, ds))
    }
    fn dsr_compute_loss(
        &self,
        scores: &GpuTensor,
        cfg: &DsrConfig,
    ) -> Result<(GpuTensor, GpuTensor)> {
        dsr::gpu::compute_loss(&self.ctx, scores, cfg)
    }
    fn dsr_backward(
        &self,
        e: &GpuTensor,
        w_r: &GpuTensor,
        w_q: &GpuTensor,
        fwd: &DsrFwd<GpuTensor>,
        ds: &GpuTensor,
        d: &DsrDims,
        cfg: &DsrConfig,
        want_de: bool,
    ) -> Result<DsrGrads<GpuTensor>> {
        let state = GpuDsrScores {
            scores: fwd.scores.clone(),
            qv: fwd.qv.clone(),
            u: fwd.u.clone(),
            e_mean: fwd.e_mean.clone(),
        };
        let g = dsr::gpu::backward(&self.ctx, e, w_r, w_q, &state, ds, d, cfg, want_de)?;
        let w_shape = [d.dm, cfg.reduced_dim];
        Ok(DsrGrads {
            dw_r: self.shaped(g.dw_r, &w_shape)?,
            dw_q: self.shaped(g.dw_q, &w_shape)?,
            de: g.de.map(|de| self.shaped(de, &[d.n, d.dm])).transpose()?,
        })
    }

    fn sqa_cluster(&self, q: &GpuTensor, k: &GpuTensor, cfg: &SqaConfig) -> Result<GpuClusters> {
        sqa::gpu::cluster(&self.ctx, q, k, cfg)
    }
    fn sqa_forward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        cl: &GpuClusters,
        cfg: &SqaConfig,
    ) -> Result<(GpuTensor, GpuTensor)> {
        sqa::gpu::sqa_forward(&self.ctx, (q, k, v), cl, cfg)
    }
    fn sqa_backward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        o: &GpuTensor,
        lse: &GpuTensor,
        dout: &GpuTensor,
        cl: &GpuClusters,
        cfg: &SqaConfig,
    ) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
        sqa::gpu::sqa_backward(&self.ctx, (q, k, v), (o, lse, dout), cl, cfg)
    }
    fn sqa_recall(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        lse: &GpuTensor,
        cfg: &SqaConfig,
    ) -> Result<GpuTensor> {
        // The kernel needs only q, k and lse (the dense lse is recomputed); v and cfg are
        // checked so that bad input fails here as it does on the CPU backend.
        same_shape("sqa_recall", q, v)?;
        cfg.validate("sqa_recall", q.shape.last().copied().unwrap_or(0))?;
        sqa::gpu::recall(&self.ctx, q, k, lse)
    }

    fn gca_forward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        sel: &[u32],
        w: &GpuTensor,
        dims: &GcaDims,
    ) -> Result<GpuTensor> {
        gca::gpu::gca_forward(&self.ctx, q, k, v, sel, w, dims)
    }
    fn gca_backward(
        &self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        dout: &GpuTensor,
        sel: &[u32],
        w: &GpuTensor,
        dims: &GcaDims,
    ) -> Result<GcaGrads<GpuTensor>> {
        gca::gpu::gca_backward(&self.ctx, q, k, v, dout, sel, w, dims)
    }
}
