//! The CPU backend: host tensors, the kernel families' CPU code (gemm-backed matmul, tiled
//! flash attention, rayon over rows elsewhere).

use super::{check_reshape, Backend, DsrFwd, DsrGrads, GcaGrads};
use crate::device::Result;
use crate::kernels::adamw::{self, AdamW};
use crate::kernels::dsr::{self, DsrConfig, DsrDims, DsrSelection};
use crate::kernels::gca::{self, GcaDims};
use crate::kernels::matmul::{self, MatmulDims};
use crate::kernels::shortconv::{self, ConvDims};
use crate::kernels::sqa::{self, CpuClusters, SqaConfig};
use crate::kernels::{
    attention, elementwise, embedding, heads, layernorm, loss, rckv, rope, softmax,
};
use crate::Tensor;

mod allocator;
mod lm_head;
mod shapes;

use shapes::{dims3, dims4, rows_cols, same_shape, scalar, shape_err, sqa_shape, t};

pub use allocator::{keep_freed_memory, CountingAlloc};

#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    type T = Tensor;
    type Clusters = CpuClusters;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
    fn device_bytes(&self) -> Option<(u64, u64)> {
        allocator::heap_bytes()
    }
    fn reset_memory_peak(&self) {
        allocator::reset_heap_peak();
    }
    fn upload(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
    fn download(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
    fn shape<'a>(&self, x: &'a Tensor) -> &'a [usize] {
        &x.shape
    }
    fn reshape(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
        check_reshape(&x.shape, shape)?;
        Ok(t(x.data.clone(), shape))
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, d: &MatmulDims) -> Result<Tensor> {
        d.validate(a.numel(), b.numel())?;
        Ok(t(matmul::cpu::matmul(&a.data, &b.data, d), &d.c_shape()))
    }
    fn matmul_backward(
        &self,
        a: &Tensor,
        b: &Tensor,
        dc: &Tensor,
        d: &MatmulDims,
    ) -> Result<(Tensor, Tensor)> {
        d.validate(a.numel(), b.numel())?;
        if dc.numel() != d.batch * d.m * d.n {
            return Err(shape_err(
                "matmul_backward",
                format!("dC {:?} for {d:?}", dc.shape),
            ));
        }
        let (da, db) = matmul::cpu::matmul_backward(&a.data, &b.data, &dc.data, d);
        Ok((t(da, &a.shape), t(db, &b.shape)))
    }
    fn add(&self, a: &Tensor, b: &Tensor, alpha: f32) -> Result<Tensor> {
        same_shape("add", a, b)?;
        Ok(t(elementwise::cpu::add(&a.data, &b.data, alpha), &a.shape))
    }
    fn bias_forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (_, cols) = rows_cols("bias_forward", x)?;
        if bias.numel() != cols {
            return Err(shape_err(
                "bias_forward",
                format!("x {:?} with bias {:?}", x.shape, bias.shape),
            ));
        }
        Ok(t(
            elementwise::cpu::bias_forward(&x.data, &bias.data),
            &x.shape,
        ))
    }
    fn bias_backward(&self, dy: &Tensor) -> Result<Tensor> {
        let (_, cols) = rows_cols("bias_backward", dy)?;
        Ok(t(elementwise::cpu::bias_backward(&dy.data, cols), &[cols]))
    }
    fn gelu_forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(t(elementwise::cpu::gelu_forward(&x.data), &x.shape))
    }
    fn gelu_backward(&self, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        same_shape("gelu_backward", x, dy)?;
        Ok(t(
            elementwise::cpu::gelu_backward(&x.data, &dy.data),
            &x.shape,
        ))
    }
    fn layernorm_forward(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (rows, cols) = rows_cols("layernorm_forward", x)?;
        if gamma.numel() != cols || beta.numel() != cols {
            return Err(shape_err(
                "layernorm_forward",
                format!(
                    "x {:?}, gamma {:?}, beta {:?}",
                    x.shape, gamma.shape, beta.shape
                ),
            ));
        }
        let (y, mean, rstd) =
            layernorm::cpu::layernorm_forward(&x.data, &gamma.data, &beta.data, rows, cols, eps);
        Ok((t(y, &x.shape), t(mean, &[rows]), t(rstd, &[rows])))
    }
    fn layernorm_backward(
        &self,
        dy: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        rstd: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        same_shape("layernorm_backward", dy, x)?;
        let (rows, cols) = rows_cols("layernorm_backward", x)?;
        if gamma.numel() != cols || mean.numel() != rows || rstd.numel() != rows {
            return Err(shape_err(
                "layernorm_backward",
                format!(
                    "x {:?}, gamma {:?}, mean {:?}, rstd {:?}",
                    x.shape, gamma.shape, mean.shape, rstd.shape
                ),
            ));
        }
        let (dx, dg, db) = layernorm::cpu::layernorm_backward(
            &dy.data,
            &x.data,
            &gamma.data,
            &mean.data,
            &rstd.data,
            rows,
            cols,
        );
        Ok((t(dx, &x.shape), t(dg, &[cols]), t(db, &[cols])))
    }
    fn softmax_forward(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, cols) = rows_cols("softmax_forward", x)?;
        Ok(t(
            softmax::cpu::softmax_forward(&x.data, rows, cols),
            &x.shape,
        ))
    }
    fn softmax_backward(&self, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        same_shape("softmax_backward", y, dy)?;
        let (rows, cols) = rows_cols("softmax_backward", y)?;
        Ok(t(
            softmax::cpu::softmax_backward(&y.data, &dy.data, rows, cols),
            &y.shape,
        ))
    }
    fn embedding_forward(&self, weight: &Tensor, ids: &[u32]) -> Result<Tensor> {
        let (vocab, dim) = rows_cols("embedding_forward", weight)?;
        let out = embedding::cpu::embedding_forward(&weight.data, ids, vocab, dim)?;
        Ok(t(out, &[ids.len(), dim]))
    }
    fn embedding_backward(&self, dy: &Tensor, ids: &[u32], vocab: usize) -> Result<Tensor> {
        let (rows, dim) = rows_cols("embedding_backward", dy)?;
        if rows != ids.len() {
            return Err(shape_err(
                "embedding_backward",
                format!("dy {:?} for {} ids", dy.shape, ids.len()),
            ));
        }
        let dw = embedding::cpu::embedding_backward(&dy.data, ids, vocab, dim)?;
        Ok(t(dw, &[vocab, dim]))
    }
    fn rope_forward(&self, x: &Tensor, positions: &[u32], base: f32) -> Result<Tensor> {
        let (b, h, n, d) = dims4("rope_forward", x)?;
        Ok(t(
            rope::cpu::rope_forward(&x.data, positions, b, h, n, d, base)?,
            &x.shape,
        ))
    }
    fn rope_backward(&self, dy: &Tensor, positions: &[u32], base: f32) -> Result<Tensor> {
        let (b, h, n, d) = dims4("rope_backward", dy)?;
        Ok(t(
            rope::cpu::rope_backward(&dy.data, positions, b, h, n, d, base)?,
            &dy.shape,
        ))
    }
    fn shortconv_forward(&self, x: &Tensor, w: &Tensor, d: &ConvDims) -> Result<Tensor> {
        d.check(x.numel(), w.numel())
            .map_err(|e| shape_err("shortconv_forward", e))?;
        Ok(t(shortconv::cpu::forward(&x.data, &w.data, d), &x.shape))
    }
    fn shortconv_backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        dy: &Tensor,
        d: &ConvDims,
    ) -> Result<(Tensor, Tensor)> {
        same_shape("shortconv_backward", x, dy)?;
        d.check(x.numel(), w.numel())
            .map_err(|e| shape_err("shortconv_backward", e))?;
        let (dx, dw) = shortconv::cpu::backward(&x.data, &w.data, &dy.data, d);
        Ok((t(dx, &x.shape), t(dw, &w.shape)))
    }
    fn attention_forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        same_shape("attention_forward", q, k)?;
        same_shape("attention_forward", q, v)?;
        let (bh, n, d) = dims3("attention_forward", q)?;
        let (o, lse) = attention::cpu::attention_forward(&q.data, &k.data, &v.data, bh, n, d);
        Ok((t(o, &q.shape), t(lse, &[bh, n])))
    }
    fn attention_backward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        lse: &Tensor,
        dout: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        for x in [k, v, o, dout] {
            same_shape("attention_backward", q, x)?;
        }
        let (bh, n, d) = dims3("attention_backward", q)?;
        if lse.numel() != bh * n {
            return Err(shape_err(
                "attention_backward",
                format!("lse {:?} for q {:?}", lse.shape, q.shape),
            ));
        }
        let (dq, dk, dv) = attention::cpu::attention_backward(
            &q.data, &k.data, &v.data, &o.data, &lse.data, &dout.data, bh, n, d,
        );
        Ok((t(dq, &q.shape), t(dk, &q.shape), t(dv, &q.shape)))
    }
    fn lm_head_loss(
        &self,
        h: &Tensor,
        w: &Tensor,
        targets: &[i32],
        scale: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        lm_head::lm_head_loss(h, w, targets, scale)
    }
    fn cross_entropy(&self, logits: &Tensor, targets: &[i32]) -> Result<(Tensor, Tensor)> {
        let (rows, vocab) = rows_cols("cross_entropy", logits)?;
        if rows != targets.len() {
            return Err(shape_err(
                "cross_entropy",
                format!("logits {:?} for {} targets", logits.shape, targets.len()),
            ));
        }
        let (losses, dl) = loss::cpu::cross_entropy(&logits.data, targets, rows, vocab)?;
        Ok((t(losses, &[rows]), t(dl, &logits.shape)))
    }
    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        hp: &AdamW,
        step: u32,
    ) -> Result<()> {
        same_shape("adamw_step", param, grad)?;
        same_shape("adamw_step", param, m)?;
        same_shape("adamw_step", param, v)?;
        if step == 0 {
            return Err(shape_err("adamw_step", "step is 1-based, got 0".into()));
        }
        adamw::cpu::adamw_step(
            &mut param.data,
            &grad.data,
            &mut m.data,
            &mut v.data,
            hp,
            step,
        );
        Ok(())
    }

    fn split_heads(&self, x: &Tensor, b: usize, n: usize, h: usize) -> Result<Tensor> {
        let (y, d) = heads::cpu::split_heads(&x.data, b, n, h)?;
        Ok(t(y, &[b * h, n, d]))
    }
    fn merge_heads(&self, x: &Tensor, b: usize, n: usize, h: usize) -> Result<Tensor> {
        let (y, d) = heads::cpu::merge_heads(&x.data, b, n, h)?;
        Ok(t(y, &[b * n, h * d]))
    }

    fn mse(&self, x: &Tensor, xhat: &Tensor) -> Result<(Tensor, Tensor)> {
        same_shape("mse", x, xhat)?;
        let (l, g) = rckv::cpu::mse(&x.data, &xhat.data)?;
        Ok((scalar(l), t(g, &x.shape)))
    }
    fn sum_squares(&self, x: &Tensor) -> Result<Tensor> {
        Ok(scalar(elementwise::cpu::sum_squares(&x.data)))
    }
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        Ok(t(elementwise::cpu::scale(&x.data, s), &x.shape))
    }

    fn dsr_scores(
        &self,
        e: &Tensor,
        w_r: &Tensor,
        w_q: &Tensor,
        d: &DsrDims,
        cfg: &DsrConfig,
    ) -> Result<DsrFwd<Tensor>> {
        let sc = dsr::cpu::scores(&e.data, &w_r.data, &w_q.data, d, cfg)?;
        // The shapes the wgpu backend's matmuls give, so both backends agree.
        Ok(DsrFwd {
            scores: t(sc.scores, &[d.n_ctx]),
            qv: t(sc.qv, &[1, cfg.reduced_dim]),
            u: t(sc.u, &[d.dm, 1]),
            e_mean: t(sc.e_mean, &[d.dm]),
        })
    }
    fn dsr_select(
        &self,
        scores: &Tensor,
        q0: usize,
        q1: usize,
        cfg: &DsrConfig,
    ) -> Result<DsrSelection> {
        Ok(dsr::cpu::select(&scores.data, q0, q1, cfg)?.selection)
    }
    fn dsr_retrieval_bce(
        &self,
        scores: &Tensor,
        spans: &[(usize, usize)],
        dilation: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (l, ds) = dsr::cpu::retrieval_bce(&scores.data, spans, dilation)?;
        Ok((scalar(l), t(ds, &scores.shape)))
    }
    fn dsr_retrieval_kl(&self, scores: &Tensor, target: &Tensor) -> Result<(Tensor, Tensor)> {
        let (l, ds) = dsr::cpu::retrieval_kl(&scores.data, &target.data)?;
        Ok((scalar(l), t(ds, &scores.shape)))
    }
    fn dsr_compute_loss(&self, scores: &Tensor, cfg: &DsrConfig) -> Result<(Tensor, Tensor)> {
        let (l, ds) = dsr::cpu::compute_loss(&scores.data, cfg)?;
        Ok((scalar(l), t(ds, &scores.shape)))
    }
    fn dsr_backward(
        &self,
        e: &Tensor,
        w_r: &Tensor,
        w_q: &Tensor,
        fwd: &DsrFwd<Tensor>,
        ds: &Tensor,
        d: &DsrDims,
        cfg: &DsrConfig,
        want_de: bool,
    ) -> Result<DsrGrads<Tensor>> {
        // The backward never reads the scores; only the small vectors are copied.
        let state = dsr::cpu::DsrScores {
            scores: Vec::new(),
            qv: fwd.qv.data.clone(),
            u: fwd.u.data.clone(),
            e_mean: fwd.e_mean.data.clone(),
        };
        let g = dsr::cpu::backward(
            &e.data, &w_r.data, &w_q.data, &state, &ds.data, d, cfg, want_de,
        )?;
        let w_shape = [d.dm, cfg.reduced_dim];
        Ok(DsrGrads {
            dw_r: t(g.dw_r, &w_shape),
            dw_q: t(g.dw_q, &w_shape),
            de: g.de.map(|de| t(de, &[d.n, d.dm])),
        })
    }

    fn sqa_cluster(&self, q: &Tensor, k: &Tensor, cfg: &SqaConfig) -> Result<CpuClusters> {
        let s = sqa_shape("sqa_cluster", q, &[k])?;
        sqa::cpu::cluster(&q.data, &k.data, cfg, s)
    }
    fn sqa_forward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cl: &CpuClusters,
        cfg: &SqaConfig,
    ) -> Result<(Tensor, Tensor)> {
        let s = sqa_shape("sqa_forward", q, &[k, v])?;
        let (o, lse) = sqa::cpu::sqa_forward((&q.data, &k.data, &v.data), cl, cfg, s)?;
        Ok((t(o, &q.shape), t(lse, &[s.bh, s.n])))
    }
    fn sqa_backward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        lse: &Tensor,
        dout: &Tensor,
        cl: &CpuClusters,
        cfg: &SqaConfig,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let s = sqa_shape("sqa_backward", q, &[k, v, o, dout])?;
        let (dq, dk, dv) = sqa::cpu::sqa_backward(
            (&q.data, &k.data, &v.data),
            (&o.data, &lse.data, &dout.data),
            cl,
            cfg,
            s,
        )?;
        Ok((t(dq, &q.shape), t(dk, &q.shape), t(dv, &q.shape)))
    }
    fn sqa_recall(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        lse: &Tensor,
        cfg: &SqaConfig,
    ) -> Result<Tensor> {
        let s = sqa_shape("sqa_recall", q, &[k, v])?;
        let r = sqa::cpu::recall((&q.data, &k.data, &v.data), &lse.data, cfg, s)?;
        Ok(t(r, &[s.bh]))
    }

    fn gca_forward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        sel: &[u32],
        w: &Tensor,
        dims: &GcaDims,
    ) -> Result<Tensor> {
        gca_shapes("gca_forward", dims, &[q, k, v])?;
        let o = gca::cpu::forward(&q.data, &k.data, &v.data, sel, &w.data, dims)?;
        Ok(t(o, &q.shape))
    }
    fn gca_backward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        dout: &Tensor,
        sel: &[u32],
        w: &Tensor,
        dims: &GcaDims,
    ) -> Result<GcaGrads<Tensor>> {
        gca_shapes("gca_backward", dims, &[q, k, v, dout])?;
        let (dq, dk, dv, dw) =
            gca::cpu::backward(&q.data, &k.data, &v.data, &dout.data, sel, &w.data, dims)?;
        let wshape = [dims.b(), dims.n_chunks(), dims.top_k];
        Ok((
            t(dq, &q.shape),
            t(dk, &q.shape),
            t(dv, &q.shape),
            t(dw, &wshape),
        ))
    }
}

/// Every tensor must be `[bh, l, d]` of `dims` (the kernels check element counts only).
fn gca_shapes(op: &'static str, dims: &GcaDims, ts: &[&Tensor]) -> Result<()> {
    let want = [dims.bh, dims.l, dims.d];
    match ts.iter().find(|x| x.shape != want) {
        Some(x) => Err(shape_err(op, format!("{:?}, expected {want:?}", x.shape))),
        None => Ok(()),
    }
}
