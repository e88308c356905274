//! GCA's causal chunk retrieval for one layer (the `gca` baseline; the attention itself is
//! `kernels::gca`): landmarks, retrieval scores, host top-k, fusion weights, and the backward
//! that carries the fusion weights' gradient into the landmark projections and `h1`.
//!
//! Shape legend: `b` sequences of `l` rows, `S` = `gca.chunk`, `nc = ⌈l/S⌉`, `K` =
//! `gca.top_k`, `dg` = `gca.landmark_dim`, `dm` = d_model.
//! ```text
//! pool   [b, nc, l]    1/|c| on chunk c's real rows (host-built, uploaded)
//! mean   = pool·h1     [b·nc, dm]  chunk c's mean of LN1(x)
//! lq, lk = mean·Wlq, mean·Wlk      [b·nc, dg]
//! s      = lq·lkᵀ/√dg  [b, nc, nc] s[c', j]: chunk c'’s landmark query against chunk j
//! for chunk c: candidates j ≤ c − 2 scored by s[c − 1, j]; top-K on the host → sel [b, nc, K]
//! w      = softmax over the K picked scores (empty slots masked to −1e30) [b, nc, K]
//! ```
//! Choices (how this differs from the paper):
//! - The paper appends a landmark token to each chunk; its representation (it attends to
//!   the chunk) is the chunk's key and the query of the next chunk's retrieval. Here the
//!   landmark is the chunk's mean of `h1 = LN1(x)` under two learned projections (query
//!   side, key side): no extra tokens in the sequence, and it is built from ops every
//!   backend has. As in the paper, chunk c retrieves with the landmark of chunk c − 1 (all
//!   of whose tokens precede c), so the retrieval is causal.
//! - Candidates are chunks ≤ c − 2: chunk c − 1 is already in the local window.
//! - One retrieval per chunk and layer, shared by the heads.
//! - The scores are read back to the host once per layer and step for the top-k (a sync
//!   point on wgpu; `b·nc²` floats), as the design allows for small score arrays.
//! - Top-k is not differentiable; the gradient reaches the scores through the fusion
//!   weights `w` (the paper's end-to-end retrieval training).

use super::{acc, Batch, Grads, ModelError, Weights};
use crate::backend::Backend;
use crate::kernels::gca::{GcaDims, NONE};
use crate::kernels::matmul::MatmulDims;
use crate::model::params::LayerIdx;
use crate::Tensor;

/// Empty-slot score: far below any real score, finite so that softmax stays NaN-free.
const MASKED: f32 = -1e30;

/// What the backward needs from one layer's retrieval.
pub(crate) struct GcaCache<B: Backend> {
    pub(crate) dims: GcaDims,
    pub(crate) sel: Vec<u32>,
    /// Fusion weights `[b, nc, K]`.
    pub(crate) w: B::T,
    pool: B::T,
    mean: B::T,
    lq: B::T,
    lk: B::T,
    /// Flat index into `s [b·nc·nc]` of each slot's score (0 for empty slots).
    ids: Vec<u32>,
}

fn pool_dims(b: usize, nc: usize, l: usize, dm: usize) -> MatmulDims {
    MatmulDims::new(nc, l, dm).batched(b)
}

fn score_dims(b: usize, nc: usize, dg: usize) -> MatmulDims {
    MatmulDims::new(nc, dg, nc).batched(b).transpose_b()
}

/// Parameter indices of the landmark projections, or an error for a non-GCA layout.
fn proj(li: &LayerIdx) -> Result<(usize, usize), ModelError> {
    match (li.gca_lq, li.gca_lk) {
        (Some(q), Some(k)) => Ok((q, k)),
        _ => Err(ModelError::Params(
            "model.attention = \"gca\" but the layout has no gca.lq / gca.lk".into(),
        )),
    }
}

/// Landmarks, scores, top-k and fusion weights of one layer; `h1: [b·l, dm]`.
pub(crate) fn retrieve<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    batch: &Batch,
    h1: &B::T,
) -> Result<GcaCache<B>, ModelError> {
    let (be, cfg, p) = (w.be, w.cfg, w.p);
    let (wq, wk) = proj(li)?;
    let (b, l, dm) = (batch.b, batch.l, cfg.model.d_model);
    let (s, kk, dg) = (cfg.gca.chunk, cfg.gca.top_k, cfg.gca.landmark_dim);
    let heads = cfg.model.heads;
    let dims = GcaDims {
        bh: b * heads,
        heads,
        l,
        d: dm / heads,
        chunk: s,
        top_k: kk,
    };
    let nc = dims.n_chunks();
    let mut pool = vec![0f32; b * nc * l];
    for (bi, &len) in batch.seq_len.iter().enumerate() {
        for c in 0..nc {
            let rows = (c * s).min(len)..((c + 1) * s).min(len);
            let inv = 1.0 / rows.len().max(1) as f32;
            for t in rows {
                pool[(bi * nc + c) * l + t] = inv;
            }
        }
    }
    let pool = be.upload(&Tensor {
        data: pool,
        shape: vec![b, nc, l],
    })?;
    let mean = be.reshape(
        &be.matmul(&pool, h1, &pool_dims(b, nc, l, dm))?,
        &[b * nc, dm],
    )?;
    let lq = be.matmul(&mean, &p[wq], &MatmulDims::new(b * nc, dm, dg))?;
    let lk = be.matmul(&mean, &p[wk], &MatmulDims::new(b * nc, dm, dg))?;
    let scores = be.scale(
        &be.matmul(&lq, &lk, &score_dims(b, nc, dg))?,
        1.0 / (dg as f32).sqrt(),
    )?;
    // Top-k on the host: b·nc² scores, small next to the activations.
    let host = be.download(&scores)?.data;
    let mut sel = vec![NONE; b * nc * kk];
    let mut ids = vec![0u32; b * nc * kk];
    let mut mask = vec![MASKED; b * nc * kk];
    for bi in 0..b {
        for c in 2..nc {
            let row = (bi * nc + c - 1) * nc;
            let mut cand: Vec<usize> = (0..c - 1).collect();
            // Highest score first; ties to the earlier chunk so the choice is deterministic.
            cand.sort_by(|&x, &y| host[row + y].total_cmp(&host[row + x]).then(x.cmp(&y)));
            for (k, &j) in cand.iter().take(kk).enumerate() {
                let slot = (bi * nc + c) * kk + k;
                sel[slot] = j as u32;
                ids[slot] = (row + j) as u32;
                mask[slot] = 0.0;
            }
        }
    }
    let picked = be.gather_rows(&be.reshape(&scores, &[b * nc * nc, 1])?, &ids)?;
    let mask = be.upload(&Tensor {
        data: mask,
        shape: vec![b * nc * kk, 1],
    })?;
    let logits = be.reshape(&be.add(&picked, &mask, 1.0)?, &[b * nc, kk])?;
    let wts = be.reshape(&be.softmax_forward(&logits)?, &[b, nc, kk])?;
    Ok(GcaCache {
        dims,
        sel,
        w: wts,
        pool,
        mean,
        lq,
        lk,
        ids,
    })
}

/// Backward of [`retrieve`] given `dw [b, nc, K]`: accumulates the projections' gradients
/// and returns the contribution to `dh1 [b·l, dm]`.
pub(crate) fn backward<B: Backend>(
    w: &Weights<'_, B>,
    li: &LayerIdx,
    h1: &B::T,
    cache: &GcaCache<B>,
    dw: &B::T,
    grads: &mut Grads<B::T>,
) -> Result<B::T, ModelError> {
    let (be, cfg, p) = (w.be, w.cfg, w.p);
    let (wq, wk) = proj(li)?;
    let dm = cfg.model.d_model;
    let dg = cfg.gca.landmark_dim;
    let d = &cache.dims;
    let (b, nc, kk, l) = (d.b(), d.n_chunks(), d.top_k, d.l);
    let flat = |t: &B::T| be.reshape(t, &[b * nc, kk]);
    let dlogits = be.softmax_backward(&flat(&cache.w)?, &flat(dw)?)?;
    // Empty slots have w = 0 exactly, so their dlogits are 0 and the scatter to index 0 adds
    // nothing.
    let dscores = be.scatter_rows(
        &be.reshape(&dlogits, &[b * nc * kk, 1])?,
        &cache.ids,
        b * nc * nc,
    )?;
    let dscores = be.scale(
        &be.reshape(&dscores, &[b, nc, nc])?,
        1.0 / (dg as f32).sqrt(),
    )?;
    let (dlq, dlk) = be.matmul_backward(&cache.lq, &cache.lk, &dscores, &score_dims(b, nc, dg))?;
    let (dm_q, dwq) =
        be.matmul_backward(&cache.mean, &p[wq], &dlq, &MatmulDims::new(b * nc, dm, dg))?;
    let (dm_k, dwk) =
        be.matmul_backward(&cache.mean, &p[wk], &dlk, &MatmulDims::new(b * nc, dm, dg))?;
    acc(be, &mut grads[wq], dwq)?;
    acc(be, &mut grads[wk], dwk)?;
    let dmean = be.reshape(&be.add(&dm_q, &dm_k, 1.0)?, &[b, nc, dm])?;
    let (_, dh1) = be.matmul_backward(&cache.pool, h1, &dmean, &pool_dims(b, nc, l, dm))?;
    Ok(dh1)
}
