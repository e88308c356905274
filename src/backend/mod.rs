//! The `Backend` trait the model is written against, with two implementations: `CpuBackend`
//! (host tensors, multithreaded, and the reference) and `WgpuBackend` (device tensors, WGSL
//! kernels, dispatches batched until a readback).
//!
//! Shape conventions (see each kernel family's legend): activations are row-major; attention
//! tensors are `[batch·heads, n, head_dim]`; RoPE sees `[batch, heads, n, head_dim]` with one
//! original position per (batch, token). `split_heads` / `merge_heads` convert between the
//! token-major `[b·n, h·d]` activations and `[b·h, n, d]`.
//!
//! Scalars a training step reduces to (losses, `sum_squares`) come back as `[1]` tensors that
//! stay on the device until downloaded. DSR works on one sequence per call; its selection is
//! host data (`DsrSelection`) because the caller gathers the kept rows with it. SQA's
//! clustering is an associated type (host vectors on the CPU, device tensors on wgpu), made by
//! `sqa_cluster` and passed back unchanged to the forward and backward.

mod cpu;
mod wgpu;

pub use self::cpu::{keep_freed_memory, CountingAlloc, CpuBackend};
pub use self::wgpu::WgpuBackend;

use crate::device::{DeviceError, Result};
use crate::kernels::adamw::AdamW;
use crate::kernels::dsr::{DsrConfig, DsrDims, DsrSelection};
use crate::kernels::gca::GcaDims;
use crate::kernels::matmul::MatmulDims;
use crate::kernels::shortconv::ConvDims;
use crate::kernels::sqa::SqaConfig;
use crate::Tensor;

/// The DSR scoring pass's outputs (scores `[n_ctx]` plus what the backward needs: `qv: [1, dr]`,
/// `u = W_r·qv: [dm, 1]`, the question's mean embedding `e_mean: [dm]`).
#[derive(Debug, Clone)]
pub struct DsrFwd<T> {
    pub scores: T,
    pub qv: T,
    pub u: T,
    pub e_mean: T,
}

/// DSR weight gradients (`[dm, dr]` each) and, when asked for, `de: [n, dm]`.
#[derive(Debug, Clone)]
pub struct DsrGrads<T> {
    pub dw_r: T,
    pub dw_q: T,
    pub de: Option<T>,
}

pub trait Backend {
    /// The backend's tensor: a host `Tensor` or a device buffer with its shape.
    type T: Clone;
    /// An SQA clustering (`kernels::sqa::Clusters` of host vectors or device tensors).
    type Clusters;

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
    /// `(live, peak)` bytes of the buffers the backend holds, where it counts them: device
    /// buffers on wgpu; heap bytes on the CPU when the binary installs
    /// [`CountingAlloc`](self::cpu::CountingAlloc) (else `None`: see process RSS).
    fn device_bytes(&self) -> Option<(u64, u64)> {
        None
    }
    /// Starts a new peak-memory window (the peak becomes what is live now).
    fn reset_memory_peak(&self) {}

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
    /// Rows `ids` of the table `weight: [vocab, d]` → `[ids.len(), d]` (the token embedding).
    fn embedding_forward(&self, weight: &Self::T, ids: &[u32]) -> Result<Self::T>;
    /// `dy: [ids.len(), d]` summed into the rows `ids` of a zero `[vocab, d]` (its gradient).
    fn embedding_backward(&self, dy: &Self::T, ids: &[u32], vocab: usize) -> Result<Self::T>;
    /// Rows `rows` of `x: [n, d]` → `[rows.len(), d]`: picking rows (context rows, target
    /// rows, a sequence's last row, kept heads) is the embedding lookup on any table.
    fn gather_rows(&self, x: &Self::T, rows: &[u32]) -> Result<Self::T> {
        self.embedding_forward(x, rows)
    }
    /// `src: [rows.len(), d]` added into the rows `rows` of a zero `[n, d]`: the inverse of
    /// [`Backend::gather_rows`] and its gradient.
    fn scatter_rows(&self, src: &Self::T, rows: &[u32], n: usize) -> Result<Self::T> {
        self.embedding_backward(src, rows, n)
    }
    fn rope_forward(&self, x: &Self::T, positions: &[u32], base: f32) -> Result<Self::T>;
    fn rope_backward(&self, dy: &Self::T, positions: &[u32], base: f32) -> Result<Self::T>;
    /// `x + conv(x)`, the short causal depthwise convolution (`kernels::shortconv`).
    fn shortconv_forward(&self, x: &Self::T, w: &Self::T, d: &ConvDims) -> Result<Self::T>;
    /// (dx, dw).
    fn shortconv_backward(
        &self,
        x: &Self::T,
        w: &Self::T,
        dy: &Self::T,
        d: &ConvDims,
    ) -> Result<(Self::T, Self::T)>;
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
    /// The tied LM head and its loss, forward and backward at once: `logits = h·wᵀ`
    /// (`h: [rows, dm]`, `w: [vocab, dm]`), the cross-entropy of [`Backend::cross_entropy`]
    /// (mean over valid rows) times `scale`, and its gradients. Returns `(per-row losses, dh,
    /// dw)`. Backends may fuse it so the `[rows, vocab]` logits never exist at once; this
    /// default composes the separate ops.
    fn lm_head_loss(
        &self,
        h: &Self::T,
        w: &Self::T,
        targets: &[i32],
        scale: f32,
    ) -> Result<(Self::T, Self::T, Self::T)> {
        let (rows, dm, vocab) = lm_head_dims(self.shape(h), self.shape(w), targets.len())?;
        let d = MatmulDims::new(rows, dm, vocab).transpose_b();
        let logits = self.matmul(h, w, &d)?;
        let (losses, dl) = self.cross_entropy(&logits, targets)?;
        let dl = if scale == 1.0 {
            dl
        } else {
            self.scale(&dl, scale)?
        };
        let (dh, dw) = self.matmul_backward(h, w, &dl, &d)?;
        Ok((losses, dh, dw))
    }
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

    /// `x: [b·n, h·d]` → `[b·h, n, d]` (head index `bi·h + hi`); `d` from the element count.
    fn split_heads(&self, x: &Self::T, b: usize, n: usize, h: usize) -> Result<Self::T>;
    /// `x: [b·h, n, d]` → `[b·n, h·d]`, the inverse (and backward) of `split_heads`.
    fn merge_heads(&self, x: &Self::T, b: usize, n: usize, h: usize) -> Result<Self::T>;

    /// (loss [1], dL/dxhat) with loss = mean((xhat − x)²) over all elements.
    fn mse(&self, x: &Self::T, xhat: &Self::T) -> Result<(Self::T, Self::T)>;
    /// Σ x² as a [1] tensor (gradient-norm clipping); deterministic.
    fn sum_squares(&self, x: &Self::T) -> Result<Self::T>;
    /// s·x.
    fn scale(&self, x: &Self::T, s: f32) -> Result<Self::T>;

    /// DSR scores of the context tokens (`e: [n, dm]`, `w_r`, `w_q`: `[dm, dr]`).
    fn dsr_scores(
        &self,
        e: &Self::T,
        w_r: &Self::T,
        w_q: &Self::T,
        d: &DsrDims,
        cfg: &DsrConfig,
    ) -> Result<DsrFwd<Self::T>>;
    /// The selection on the host (kept context positions, then the question's).
    fn dsr_select(
        &self,
        scores: &Self::T,
        q0: usize,
        q1: usize,
        cfg: &DsrConfig,
    ) -> Result<DsrSelection>;
    /// (loss [1], ds [n_ctx]).
    fn dsr_retrieval_bce(
        &self,
        scores: &Self::T,
        spans: &[(usize, usize)],
        dilation: usize,
    ) -> Result<(Self::T, Self::T)>;
    /// (loss [1], ds [n_ctx]) of KL(target ‖ softmax(scores)).
    fn dsr_retrieval_kl(&self, scores: &Self::T, target: &Self::T) -> Result<(Self::T, Self::T)>;
    /// (loss [1], ds [n_ctx]) of the compute loss mean σ((s − τ)/T).
    fn dsr_compute_loss(&self, scores: &Self::T, cfg: &DsrConfig) -> Result<(Self::T, Self::T)>;
    /// Maps the summed score gradient `ds: [n_ctx]` to `dw_r`, `dw_q` (`[dm, dr]`) and, when
    /// `want_de`, `de: [n, dm]`.
    #[allow(clippy::too_many_arguments)]
    fn dsr_backward(
        &self,
        e: &Self::T,
        w_r: &Self::T,
        w_q: &Self::T,
        fwd: &DsrFwd<Self::T>,
        ds: &Self::T,
        d: &DsrDims,
        cfg: &DsrConfig,
        want_de: bool,
    ) -> Result<DsrGrads<Self::T>>;

    /// SQA clustering and routing of `q, k: [bh, n, d]`.
    fn sqa_cluster(&self, q: &Self::T, k: &Self::T, cfg: &SqaConfig) -> Result<Self::Clusters>;
    /// (o [bh, n, d], lse [bh, n]).
    fn sqa_forward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        cl: &Self::Clusters,
        cfg: &SqaConfig,
    ) -> Result<(Self::T, Self::T)>;
    /// (dq, dk, dv).
    #[allow(clippy::too_many_arguments)]
    fn sqa_backward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        o: &Self::T,
        lse: &Self::T,
        dout: &Self::T,
        cl: &Self::Clusters,
        cfg: &SqaConfig,
    ) -> Result<(Self::T, Self::T, Self::T)>;
    /// Attention recall per head `[bh]` (diagnostic).
    fn sqa_recall(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        lse: &Self::T,
        cfg: &SqaConfig,
    ) -> Result<Self::T>;

    /// Grouped Cross Attention (`kernels::gca`): local window plus the retrieved chunks
    /// `sel: [b, nc, K]` (host indices) fused by `w: [b, nc, K]`. Returns `o [bh, l, d]`.
    fn gca_forward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        sel: &[u32],
        w: &Self::T,
        dims: &GcaDims,
    ) -> Result<Self::T>;
    /// (dq, dk, dv, dw `[b, nc, K]`).
    #[allow(clippy::too_many_arguments)]
    fn gca_backward(
        &self,
        q: &Self::T,
        k: &Self::T,
        v: &Self::T,
        dout: &Self::T,
        sel: &[u32],
        w: &Self::T,
        dims: &GcaDims,
    ) -> Result<GcaGrads<Self::T>>;
}

/// GCA's backward: `(dq, dk, dv, dw)`.
pub type GcaGrads<T> = (T, T, T, T);

/// `(rows, dm, vocab)` of an LM head call, or a shape error.
pub(crate) fn lm_head_dims(
    h: &[usize],
    w: &[usize],
    targets: usize,
) -> Result<(usize, usize, usize)> {
    match (h, w) {
        (&[rows, dm], &[vocab, dw]) if dm == dw && rows == targets => Ok((rows, dm, vocab)),
        _ => Err(DeviceError::Shape {
            op: "lm_head_loss",
            detail: format!("h {h:?}, w {w:?} and {targets} targets: need [rows, dm], [vocab, dm], rows targets"),
        }),
    }
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
