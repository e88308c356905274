//! One pre-norm transformer block, `_forward` / `_backward` under one shape legend (llm.c
//! style): the forward saves what the backward needs in a [`LayerCache`].
//!
//! Shape legend: `R = b·l` rows, `dm` = d_model, `H` heads of width `d = dm/H`, `f` MLP width,
//! `C` context rows (`batch.ctx_rows`), `lat` RCKV latent width.
//! ```text
//! h1 = LN1(x)                                  [R, dm]
//! h = h1 + conv(h1) with model.short_conv taps, else h1   [R, dm]  (per sequence, causal)
//! q, k, v = h·Wq, h·Wk, h·Wv                   [R, dm]
//! RCKV (context rows only, the rest exact):
//!   kc, vc = k[ctx], v[ctx]                    [C, dm]
//!   c = kc·Dk + vc·Dv                          [C, lat]
//!   k̂c, v̂c = c·Uk, c·Uv                        [C, dm]
//!   k' = k + scatter(k̂c − kc), v' likewise     [R, dm]  (context rows replaced)
//!   L_comp = mean((k̂c−kc)², (v̂c−vc)²)
//! qh, kh = RoPE(split(q)), RoPE(split(k'))     [b·H, l, d] at the ORIGINAL positions
//! o = SQA, dense causal attention, or GCA      [b·H, l, d]
//!     (GCA: local window + top-k past chunks fused by retrieval weights, see `model::gca`)
//! x2 = x + merge(o)·Wo                         [R, dm]
//! x3 = x2 + GELU(LN2(x2)·W1 + b1)·W2 + b2      [R, dm]
//! ```

use super::block::{self, MlpSaved, NormSaved};
use super::config::AttentionKind;
use super::gca::{self, GcaCache};
use super::{acc, Grads, ModelError, Weights};
use crate::backend::Backend;
use crate::kernels::matmul::MatmulDims;
use crate::kernels::shortconv::ConvDims;
use crate::model::batch::Batch;
use crate::model::params::LayerIdx;

/// The short convolution over a batch: one sequence per padded row block.
pub(crate) fn conv_dims(cfg: &super::Config, batch: &Batch) -> ConvDims {
    ConvDims {
        seqs: batch.b,
        len: batch.l,
        cols: cfg.model.d_model,
        taps: cfg.model.short_conv,
    }
}

/// What one block's backward needs from its forward.
pub struct LayerCache<B: Backend> {
    x: B::T,
    h1: B::T,
    /// `h1 + conv(h1)` when the block has a short convolution (the projections' input).
    hc: Option<B::T>,
    ln1: NormSaved<B>,
    pub(crate) rckv: Option<RckvCache<B>>,
    pub(crate) qh: B::T,
    pub(crate) kh: B::T,
    pub(crate) vh: B::T,
    o: B::T,
    attn: AttnSaved<B>,
    om: B::T,
    x2: B::T,
    h2: B::T,
    ln2: NormSaved<B>,
    mlp: MlpSaved<B>,
}

/// What each attention kind's backward needs besides q, k, v and o.
pub(crate) enum AttnSaved<B: Backend> {
    Dense {
        lse: B::T,
    },
    Sqa {
        lse: B::T,
        clusters: B::Clusters,
    },
    /// GCA's backward recomputes its own log-sum-exp.
    Gca(GcaCache<B>),
}

pub(crate) struct RckvCache<B: Backend> {
    pub(crate) kc: B::T,
    pub(crate) vc: B::T,
    pub(crate) c: B::T,
    gk: B::T,
    gv: B::T,
}

impl<B: Backend> LayerCache<B> {
    /// What the Q/K/V projections read: `h1`, after the short convolution if there is one.
    fn proj_in(&self) -> &B::T {
        self.hc.as_ref().unwrap_or(&self.h1)
    }

    /// `LN1(x)` of every row `[R, dm]`, before the short convolution (a decoder keeps the
    /// last rows of it to continue the convolution).
    pub(crate) fn normed(&self) -> &B::T {
        &self.h1
    }

    /// Post-RoPE keys and values `[b·H, l, d]` as attention read them (context rows already
    /// replaced by their RCKV reconstruction), and the context rows' latents `[C, lat]`.
    pub(crate) fn attention_kv(&self) -> (&B::T, &B::T, Option<&B::T>) {
        (&self.kh, &self.vh, self.rckv.as_ref().map(|r| &r.c))
    }
}

/// Per-layer forward outputs besides the cache.
pub struct LayerOut<B: Backend> {
    pub x: B::T,
    /// `[1]` compression loss of this layer's context KV (absent without RCKV or context).
    pub comp_loss: Option<B::T>,
}

pub(crate) fn forward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    batch: &Batch,
    x: B::T,
) -> Result<(LayerOut<B>, LayerCache<B>), ModelError> {
    let (be, cfg, p) = (w.be, w.cfg, w.p);
    let rows = batch.rows();
    let dm = cfg.model.d_model;
    let heads = cfg.model.heads;
    let (h1, ln1) = block::norm_forward(w, &x, &p[li.ln1_g], &p[li.ln1_b])?;
    let hc = match li.conv_w {
        Some(cw) => Some(be.shortconv_forward(&h1, &p[cw], &conv_dims(cfg, batch))?),
        None => None,
    };
    let hin = hc.as_ref().unwrap_or(&h1);
    let q = be.matmul(hin, &p[li.wq], &MatmulDims::new(rows, dm, dm))?;
    let k = be.matmul(hin, &p[li.wk], &MatmulDims::new(rows, dm, dm))?;
    let v = be.matmul(hin, &p[li.wv], &MatmulDims::new(rows, dm, dm))?;

    let use_rckv = cfg.model.use_rckv && !batch.ctx_rows.is_empty();
    let (k, v, rckv, comp_loss) = if use_rckv {
        let lat = cfg.rckv.compressed_dim;
        let cr = &batch.ctx_rows;
        let nc = cr.len();
        let kc = be.gather_rows(&k, cr)?;
        let vc = be.gather_rows(&v, cr)?;
        let c = be.add(
            &be.matmul(&kc, &p[li.rk_dk], &MatmulDims::new(nc, dm, lat))?,
            &be.matmul(&vc, &p[li.rk_dv], &MatmulDims::new(nc, dm, lat))?,
            1.0,
        )?;
        let khat = be.matmul(&c, &p[li.rk_uk], &MatmulDims::new(nc, lat, dm))?;
        let vhat = be.matmul(&c, &p[li.rk_uv], &MatmulDims::new(nc, lat, dm))?;
        let (lk, gk) = be.mse(&kc, &khat)?;
        let (lv, gv) = be.mse(&vc, &vhat)?;
        // Both halves have the same element count, so the mean over [k; v] is their average.
        let loss = be.scale(&be.add(&lk, &lv, 1.0)?, 0.5)?;
        let k2 = be.add(
            &k,
            &be.scatter_rows(&be.add(&khat, &kc, -1.0)?, cr, rows)?,
            1.0,
        )?;
        let v2 = be.add(
            &v,
            &be.scatter_rows(&be.add(&vhat, &vc, -1.0)?, cr, rows)?,
            1.0,
        )?;
        let cache = RckvCache { kc, vc, c, gk, gv };
        (k2, v2, Some(cache), Some(loss))
    } else {
        (k, v, None, None)
    };

    let (b, l) = (batch.b, batch.l);
    let d = dm / heads;
    let base = cfg.model.rope_base;
    let to4 = |t: &B::T| be.reshape(t, &[b, heads, l, d]);
    let to3 = |t: &B::T| be.reshape(t, &[b * heads, l, d]);
    let qh = to3(&be.rope_forward(
        &to4(&be.split_heads(&q, b, l, heads)?)?,
        &batch.positions,
        base,
    )?)?;
    let kh = to3(&be.rope_forward(
        &to4(&be.split_heads(&k, b, l, heads)?)?,
        &batch.positions,
        base,
    )?)?;
    let vh = be.split_heads(&v, b, l, heads)?;
    let (o, attn) = attend(w, li, batch, hin, &qh, &kh, &vh)?;
    let om = be.merge_heads(&o, b, l, heads)?;
    let x2 = be.add(
        &x,
        &be.matmul(&om, &p[li.wo], &MatmulDims::new(rows, dm, dm))?,
        1.0,
    )?;

    let (h2, ln2) = block::norm_forward(w, &x2, &p[li.ln2_g], &p[li.ln2_b])?;
    let (y, mlp) = block::mlp_forward(w, li, &h2, rows)?;
    let x3 = be.add(&x2, &y, 1.0)?;
    let cache = LayerCache {
        x,
        h1,
        hc,
        ln1,
        rckv,
        qh,
        kh,
        vh,
        o,
        attn,
        om,
        x2,
        h2,
        ln2,
        mlp,
    };
    Ok((LayerOut { x: x3, comp_loss }, cache))
}

/// Backward of one block given `dx3`; `comp_weight` is this layer's weight of its compression
/// loss in the total loss. Accumulates parameter gradients into `grads`, returns `dx`.
pub(crate) fn backward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    batch: &Batch,
    cache: &LayerCache<B>,
    dx3: &B::T,
    comp_weight: f32,
    grads: &mut Grads<B::T>,
) -> Result<B::T, ModelError> {
    let (be, cfg, p) = (w.be, w.cfg, w.p);
    let rows = batch.rows();
    let dm = cfg.model.d_model;
    let heads = cfg.model.heads;

    let dh2 = block::mlp_backward(w, li, &cache.h2, &cache.mlp, dx3, rows, grads)?;
    let (dx2_ln, dg2, db2) = block::norm_backward(w, &dh2, &cache.x2, &p[li.ln2_g], &cache.ln2)?;
    acc(be, &mut grads[li.ln2_g], dg2)?;
    acc(be, &mut grads[li.ln2_b], db2)?;
    let dx2 = be.add(dx3, &dx2_ln, 1.0)?;

    // Attention.
    let (dom, dwo) =
        be.matmul_backward(&cache.om, &p[li.wo], &dx2, &MatmulDims::new(rows, dm, dm))?;
    acc(be, &mut grads[li.wo], dwo)?;
    let (b, l) = (batch.b, batch.l);
    let d = dm / heads;
    let base = cfg.model.rope_base;
    let do_ = be.split_heads(&dom, b, l, heads)?;
    let (dqh, dkh, dvh, dh1_gca) = attend_backward(w, li, cache, &do_, grads)?;
    let unrope = |t: &B::T| -> Result<B::T, ModelError> {
        let t4 = be.reshape(t, &[b, heads, l, d])?;
        let r = be.rope_backward(&t4, &batch.positions, base)?;
        Ok(be.merge_heads(&be.reshape(&r, &[b * heads, l, d])?, b, l, heads)?)
    };
    let dq = unrope(&dqh)?;
    let mut dk = unrope(&dkh)?;
    let mut dv = be.merge_heads(&dvh, b, l, heads)?;

    if let Some(rc) = &cache.rckv {
        let lat = cfg.rckv.compressed_dim;
        let cr = &batch.ctx_rows;
        let nc = cr.len();
        // k' = k + S(k̂c − kc): the attention's gradient reaches k̂c through the scatter and
        // cancels on kc's rows of k; the compression loss adds its own gradient on k̂c.
        let half = 0.5 * comp_weight;
        let dkhat = be.add(&be.gather_rows(&dk, cr)?, &rc.gk, half)?;
        let dvhat = be.add(&be.gather_rows(&dv, cr)?, &rc.gv, half)?;
        let (dc1, duk) =
            be.matmul_backward(&rc.c, &p[li.rk_uk], &dkhat, &MatmulDims::new(nc, lat, dm))?;
        let (dc2, duv) =
            be.matmul_backward(&rc.c, &p[li.rk_uv], &dvhat, &MatmulDims::new(nc, lat, dm))?;
        acc(be, &mut grads[li.rk_uk], duk)?;
        acc(be, &mut grads[li.rk_uv], duv)?;
        let dc = be.add(&dc1, &dc2, 1.0)?;
        let (dkc, ddk) =
            be.matmul_backward(&rc.kc, &p[li.rk_dk], &dc, &MatmulDims::new(nc, dm, lat))?;
        let (dvc, ddv) =
            be.matmul_backward(&rc.vc, &p[li.rk_dv], &dc, &MatmulDims::new(nc, dm, lat))?;
        acc(be, &mut grads[li.rk_dk], ddk)?;
        acc(be, &mut grads[li.rk_dv], ddv)?;
        // On context rows: dk = dkc (through D) − dk̂c (the −kc of the blend and of the loss).
        let dk_ctx = be.add(&dkc, &dkhat, -1.0)?;
        let dv_ctx = be.add(&dvc, &dvhat, -1.0)?;
        dk = be.add(&dk, &be.scatter_rows(&dk_ctx, cr, rows)?, 1.0)?;
        dv = be.add(&dv, &be.scatter_rows(&dv_ctx, cr, rows)?, 1.0)?;
    }

    let hin = cache.proj_in();
    let (dh_q, dwq) = be.matmul_backward(hin, &p[li.wq], &dq, &MatmulDims::new(rows, dm, dm))?;
    let (dh_k, dwk) = be.matmul_backward(hin, &p[li.wk], &dk, &MatmulDims::new(rows, dm, dm))?;
    let (dh_v, dwv) = be.matmul_backward(hin, &p[li.wv], &dv, &MatmulDims::new(rows, dm, dm))?;
    acc(be, &mut grads[li.wq], dwq)?;
    acc(be, &mut grads[li.wk], dwk)?;
    acc(be, &mut grads[li.wv], dwv)?;
    let mut dh1 = be.add(&be.add(&dh_q, &dh_k, 1.0)?, &dh_v, 1.0)?;
    if let Some(g) = dh1_gca {
        dh1 = be.add(&dh1, &g, 1.0)?;
    }
    if let Some(cw) = li.conv_w {
        let (d, dw) = be.shortconv_backward(&cache.h1, &p[cw], &dh1, &conv_dims(cfg, batch))?;
        acc(be, &mut grads[cw], dw)?;
        dh1 = d;
    }
    let (dx_ln, dg1, db1) = block::norm_backward(w, &dh1, &cache.x, &p[li.ln1_g], &cache.ln1)?;
    acc(be, &mut grads[li.ln1_g], dg1)?;
    acc(be, &mut grads[li.ln1_b], db1)?;
    Ok(be.add(&dx2, &dx_ln, 1.0)?)
}

/// The block's attention on post-RoPE heads, by `model.attention` (the one place it is chosen);
/// `hin` is what the projections read (GCA retrieves chunks from it).
fn attend<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    batch: &Batch,
    hin: &B::T,
    qh: &B::T,
    kh: &B::T,
    vh: &B::T,
) -> Result<(B::T, AttnSaved<B>), ModelError> {
    let be = w.be;
    Ok(match w.cfg.model.attention {
        AttentionKind::Sqa => {
            let sq = w.cfg.sqa_kernel();
            let clusters = be.sqa_cluster(qh, kh, &sq)?;
            let (o, lse) = be.sqa_forward(qh, kh, vh, &clusters, &sq)?;
            (o, AttnSaved::Sqa { lse, clusters })
        }
        AttentionKind::Gca => {
            let gc = gca::retrieve(w, li, batch, hin)?;
            let o = be.gca_forward(qh, kh, vh, &gc.sel, &gc.w, &gc.dims)?;
            (o, AttnSaved::Gca(gc))
        }
        AttentionKind::Dense => {
            let (o, lse) = be.attention_forward(qh, kh, vh)?;
            (o, AttnSaved::Dense { lse })
        }
    })
}

/// `(dq, dk, dv)` on the heads, and a gradient on the block's normalized input from the
/// attention's own use of it (GCA's retrieval; the other kinds have none).
type AttnGrads<B> = (
    <B as Backend>::T,
    <B as Backend>::T,
    <B as Backend>::T,
    Option<<B as Backend>::T>,
);

/// Backward of [`attend`].
fn attend_backward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    cache: &LayerCache<B>,
    do_: &B::T,
    grads: &mut Grads<B::T>,
) -> Result<AttnGrads<B>, ModelError> {
    let be = w.be;
    let (qh, kh, vh, o) = (&cache.qh, &cache.kh, &cache.vh, &cache.o);
    Ok(match &cache.attn {
        AttnSaved::Gca(gc) => {
            let (dq, dk, dv, dw) = be.gca_backward(qh, kh, vh, do_, &gc.sel, &gc.w, &gc.dims)?;
            let dh = gca::backward(w, li, cache.proj_in(), gc, &dw, grads)?;
            (dq, dk, dv, Some(dh))
        }
        AttnSaved::Sqa { lse, clusters } => {
            let sq = w.cfg.sqa_kernel();
            let (dq, dk, dv) = be.sqa_backward(qh, kh, vh, o, lse, do_, clusters, &sq)?;
            (dq, dk, dv, None)
        }
        AttnSaved::Dense { lse } => {
            let (dq, dk, dv) = be.attention_backward(qh, kh, vh, o, lse, do_)?;
            (dq, dk, dv, None)
        }
    })
}
