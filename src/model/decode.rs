//! Incremental inference with a KV cache: one forward over the prompt (the prefill), then one
//! row per generated token.
//!
//! Per layer the cache holds the kept context as RCKV latents `[C, lat]` (when RCKV is on)
//! and every other row's post-RoPE key and value exactly (`[m, dm]`). A decode step
//! reconstructs the context keys and values from the latents (`k̂ = c·Uk`, RoPE at their
//! original positions; `v̂ = c·Uv`), so between steps only the latents are resident: that is
//! the compressed cache's memory saving. The context does not grow while answering, so the
//! ring does not rotate during decoding; DSR's selection is fixed by the question.
//!
//! With `model.kv = razor | pyramid` (training-free baselines on the standard model) the
//! prefill is the same full forward, and then each layer's cache is compressed per head by
//! [`kv_policy`]; decode steps attend per group of heads with equal row counts.
//!
//! Choices:
//! - A decode step's single query reads every cached key (`q·Kᵀ`, softmax, `·V` as batched
//!   matmuls over the heads, the same ops on both backends). That is linear in the cache per
//!   token; SQA's routing is what makes the prefill sub-quadratic. Without SQA (or with
//!   `top_k = clusters`, which SQA defines as dense attention) the cached decoder computes
//!   exactly what the full forward computes for the last row; with routing the full forward's
//!   k-means depends on every key including later ones, so no causal cache can reproduce it
//!   bit for bit, and the evaluation reports how often the two agree.
//! - The backends have no in-place row append, so a new row is added by two scatters into a
//!   buffer one row longer (`scatter_rows` sums rows into place): O(cache) per token,
//!   the same order as the attention itself.

use super::block;
use super::config::KvPolicy;
use super::forward::forward_blocks;
use super::kv_policy::{self, pyramid, razor, HeadGroup};
use super::layer;
use super::{retriever, Batch, Model, ModelError};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::matmul::MatmulDims;
use crate::kernels::shortconv::ConvDims;
use crate::model::params::LayerIdx;

struct ExactKv<B: Backend> {
    /// RCKV latents of the kept context `[C, lat]` and the context rows' positions.
    latent: Option<(B::T, Vec<u32>)>,
    /// Exact post-RoPE keys and values `[rows, dm]` (everything not in `latent`).
    k: B::T,
    v: B::T,
    rows: usize,
}

/// One layer's cache: every row of every head (`model.kv = exact`), or per-head row sets
/// after a training-free compression (`razor`, `pyramid`; see [`kv_policy`]).
enum LayerKv<B: Backend> {
    Exact(ExactKv<B>),
    Heads(Vec<HeadGroup<B>>),
}

/// A prompt's cached state; [`KvDecoder::step`] feeds one token and returns its logits.
pub struct KvDecoder<'m, B: Backend> {
    model: &'m Model<B>,
    layers: Vec<LayerKv<B>>,
    /// Per layer, the newest `min(K−1, rows)` rows of `LN1(x)` `[n, dm]` that the short
    /// convolution of the next row reads (`None` without one, or with K = 1).
    conv_tail: Vec<ConvTail<B>>,
    /// Original position of the next token.
    pos: u32,
    /// Context tokens offered, and kept by DSR and the ring.
    pub ctx_tokens: usize,
    pub ctx_kept: usize,
}

type ConvTail<B> = Option<(<B as Backend>::T, usize)>;

/// The newest `min(taps − 1, n)` rows of `h: [n, dm]`.
fn conv_tail<B: Backend>(
    be: &B,
    h: &B::T,
    n: usize,
    taps: usize,
) -> Result<ConvTail<B>, ModelError> {
    let keep = n.min(taps.saturating_sub(1));
    if keep == 0 {
        return Ok(None);
    }
    let rows: Vec<u32> = ((n - keep) as u32..n as u32).collect();
    Ok(Some((be.gather_rows(h, &rows)?, keep)))
}

/// `[a; b]` along rows (`a: [na, w]`, `b: [nb, w]`).
fn concat_rows<B: Backend>(
    be: &B,
    a: &B::T,
    na: usize,
    b: &B::T,
    nb: usize,
) -> Result<B::T, ModelError> {
    let n = na + nb;
    let ia: Vec<u32> = (0..na as u32).collect();
    let ib: Vec<u32> = (na as u32..n as u32).collect();
    Ok(be.add(
        &be.scatter_rows(a, &ia, n)?,
        &be.scatter_rows(b, &ib, n)?,
        1.0,
    )?)
}

impl<'m, B: Backend> KvDecoder<'m, B> {
    /// Runs `prompt` (its last row's logits are the first generated token's) and keeps each
    /// layer's keys and values. Returns the decoder and those logits `[1, vocab]`.
    pub fn prefill(
        be: &B,
        model: &'m Model<B>,
        prompt: &Example,
    ) -> Result<(Self, B::T), ModelError> {
        let cfg = &model.cfg;
        let w = model.weights(be);
        let idx = &model.layout.idx;
        let ret = retriever::run(
            &w,
            std::slice::from_ref(prompt),
            None,
            (idx.wte, idx.dsr_wr, idx.dsr_wq),
        )?;
        let batch = Batch::build(std::slice::from_ref(prompt), &ret.plans, 0)?;
        let (l, heads) = (batch.l, cfg.model.heads);
        let kept_ctx = batch.kept_ctx.first().copied().unwrap_or(0);
        let policy = Policy::new(be, model, l)?;
        let mut layers = Vec::with_capacity(idx.layers.len());
        let mut tails = Vec::with_capacity(idx.layers.len());
        let blocks = forward_blocks(&w, idx, &batch, None, |i, cache| {
            let li = &idx.layers[i];
            tails.push(match li.conv_w {
                Some(_) => conv_tail(be, cache.normed(), l, cfg.model.short_conv)?,
                None => None,
            });
            if let Some(groups) = policy.compress(be, model, i, cache, l)? {
                layers.push(LayerKv::Heads(groups));
                return Ok(false);
            }
            let (kh, vh, latent) = cache.attention_kv();
            let k = be.merge_heads(kh, 1, l, heads)?;
            let v = be.merge_heads(vh, 1, l, heads)?;
            let kv = match latent {
                Some(c) => {
                    let rest: Vec<u32> = (kept_ctx as u32..l as u32).collect();
                    ExactKv {
                        latent: Some((c.clone(), batch.positions[..kept_ctx].to_vec())),
                        k: be.gather_rows(&k, &rest)?,
                        v: be.gather_rows(&v, &rest)?,
                        rows: rest.len(),
                    }
                }
                None => ExactKv {
                    latent: None,
                    k,
                    v,
                    rows: l,
                },
            };
            layers.push(LayerKv::Exact(kv));
            Ok(false)
        })?;
        let x = blocks.x;
        let last = be.gather_rows(&x, &[l as u32 - 1])?;
        let dec = KvDecoder {
            model,
            layers,
            conv_tail: tails,
            pos: prompt.ids.len() as u32,
            ctx_tokens: ret.ctx_tokens,
            ctx_kept: ret.ctx_kept,
        };
        let logits = dec.head(be, &last)?;
        Ok((dec, logits))
    }

    /// Feeds `token` at the next position; returns its logits `[1, vocab]`.
    pub fn step(&mut self, be: &B, token: u32) -> Result<B::T, ModelError> {
        let model = self.model;
        let idx = &model.layout.idx;
        let mut x = be.embedding_forward(&model.params[idx.wte], &[token])?;
        let pos = self.pos;
        let per_layer = self.layers.iter_mut().zip(self.conv_tail.iter_mut());
        for (li, (kv, tail)) in idx.layers.iter().zip(per_layer) {
            x = layer_step(be, model, li, kv, tail, x, pos)?;
        }
        self.pos += 1;
        self.head(be, &x)
    }

    /// Bytes the cache holds between steps (latents plus exact rows, f32; or the kept rows
    /// of every head after a KV policy's compression).
    pub fn cache_bytes(&self) -> usize {
        let be_len = |shape_rows: usize, width: usize| shape_rows * width * 4;
        let cfg = &self.model.cfg;
        let d = cfg.head_dim();
        self.layers
            .iter()
            .map(|kv| {
                let kv = match kv {
                    LayerKv::Exact(kv) => kv,
                    LayerKv::Heads(groups) => return groups.iter().map(|g| g.bytes(d)).sum(),
                };
                let lat = kv
                    .latent
                    .as_ref()
                    .map_or(0, |(_, pos)| be_len(pos.len(), cfg.rckv.compressed_dim));
                lat + 2 * be_len(kv.rows, cfg.model.d_model)
            })
            .sum()
    }

    fn head(&self, be: &B, x: &B::T) -> Result<B::T, ModelError> {
        let m = self.model;
        let idx = &m.layout.idx;
        let w = m.weights(be);
        let cfg = &m.cfg.model;
        let (h, _) = block::norm_forward(&w, x, &m.params[idx.lnf_g], &m.params[idx.lnf_b])?;
        let dims = MatmulDims::new(1, cfg.d_model, cfg.vocab_size).transpose_b();
        Ok(be.matmul(&h, &m.params[idx.wte], &dims)?)
    }
}

/// `[1, dm]` heads → RoPE at `positions` → `[n, dm]` (`x: [n, dm]`).
fn rope_rows<B: Backend>(
    be: &B,
    x: &B::T,
    n: usize,
    heads: usize,
    positions: &[u32],
    base: f32,
) -> Result<B::T, ModelError> {
    let d = be.shape(x)[1] / heads;
    let split = be.reshape(&be.split_heads(x, 1, n, heads)?, &[1, heads, n, d])?;
    let r = be.reshape(&be.rope_forward(&split, positions, base)?, &[heads, n, d])?;
    Ok(be.merge_heads(&r, 1, n, heads)?)
}

/// One block for one new row `x: [1, dm]` at position `pos`, appending its key and value.
fn layer_step<B: Backend>(
    be: &B,
    model: &Model<B>,
    li: &LayerIdx,
    kv: &mut LayerKv<B>,
    tail: &mut ConvTail<B>,
    x: B::T,
    pos: u32,
) -> Result<B::T, ModelError> {
    let cfg = &model.cfg;
    let p = &model.params;
    let w = model.weights(be);
    let (dm, heads) = (cfg.model.d_model, cfg.model.heads);
    let base = cfg.model.rope_base;
    let (h1, _) = block::norm_forward(&w, &x, &p[li.ln1_g], &p[li.ln1_b])?;
    let h = match li.conv_w {
        // The convolution of the new row over [tail; row], then the tail moves on one row.
        Some(cw) => {
            let (rows, n) = match tail.take() {
                Some((t, m)) => (concat_rows(be, &t, m, &h1, 1)?, m + 1),
                None => (h1, 1),
            };
            let taps = cfg.model.short_conv;
            let d = ConvDims {
                seqs: 1,
                len: n,
                cols: dm,
                taps,
            };
            let y = be.shortconv_forward(&rows, &p[cw], &d)?;
            *tail = conv_tail(be, &rows, n, taps)?;
            be.gather_rows(&y, &[n as u32 - 1])?
        }
        None => h1,
    };
    let q = be.matmul(&h, &p[li.wq], &MatmulDims::new(1, dm, dm))?;
    let k = be.matmul(&h, &p[li.wk], &MatmulDims::new(1, dm, dm))?;
    let v = be.matmul(&h, &p[li.wv], &MatmulDims::new(1, dm, dm))?;
    let q = rope_rows(be, &q, 1, heads, &[pos], base)?;
    let k = rope_rows(be, &k, 1, heads, &[pos], base)?;
    let om = match kv {
        LayerKv::Exact(kv) => exact_attention(be, model, li, kv, &q, &k, &v)?,
        LayerKv::Heads(groups) => kv_policy::attend(be, groups, &q, &k, &v, heads)?,
    };
    let x2 = be.add(
        &x,
        &be.matmul(&om, &p[li.wo], &MatmulDims::new(1, dm, dm))?,
        1.0,
    )?;
    let (h2, _) = block::norm_forward(&w, &x2, &p[li.ln2_g], &p[li.ln2_b])?;
    let (y, _) = block::mlp_forward(&w, li, &h2, 1)?;
    Ok(be.add(&x2, &y, 1.0)?)
}

/// The exact cache's attention for one new row: appends its key and value, reads every
/// cached row (context keys and values rebuilt from RCKV latents), returns `[1, dm]`.
fn exact_attention<B: Backend>(
    be: &B,
    model: &Model<B>,
    li: &LayerIdx,
    kv: &mut ExactKv<B>,
    q: &B::T,
    k: &B::T,
    v: &B::T,
) -> Result<B::T, ModelError> {
    let cfg = &model.cfg;
    let p = &model.params;
    let (dm, heads) = (cfg.model.d_model, cfg.model.heads);
    let base = cfg.model.rope_base;
    let d = dm / heads;
    kv.k = concat_rows(be, &kv.k, kv.rows, k, 1)?;
    kv.v = concat_rows(be, &kv.v, kv.rows, v, 1)?;
    kv.rows += 1;

    let (keys, values, n) = match &kv.latent {
        Some((c, positions)) => {
            let (nc, lat) = (positions.len(), cfg.rckv.compressed_dim);
            let khat = be.matmul(c, &p[li.rk_uk], &MatmulDims::new(nc, lat, dm))?;
            let vhat = be.matmul(c, &p[li.rk_uv], &MatmulDims::new(nc, lat, dm))?;
            let khat = rope_rows(be, &khat, nc, heads, positions, base)?;
            (
                concat_rows(be, &khat, nc, &kv.k, kv.rows)?,
                concat_rows(be, &vhat, nc, &kv.v, kv.rows)?,
                nc + kv.rows,
            )
        }
        None => (kv.k.clone(), kv.v.clone(), kv.rows),
    };
    let qh = be.split_heads(q, 1, 1, heads)?;
    let kh = be.split_heads(&keys, 1, n, heads)?;
    let vh = be.split_heads(&values, 1, n, heads)?;
    let scores = be.matmul(
        &qh,
        &kh,
        &MatmulDims::new(1, d, n).batched(heads).transpose_b(),
    )?;
    let scores = be.reshape(&be.scale(&scores, 1.0 / (d as f32).sqrt())?, &[heads, n])?;
    let probs = be.softmax_forward(&scores)?;
    let o = be.matmul(&probs, &vh, &MatmulDims::new(1, n, d).batched(heads))?;
    Ok(be.merge_heads(&be.reshape(&o, &[heads, 1, d])?, 1, 1, heads)?)
}

/// What the prefill does to each layer's cache under `model.kv`.
enum Policy {
    Exact,
    /// Retrieval-head mask, layer-major.
    Razor(std::sync::Arc<Vec<bool>>),
    /// Selectable rows per layer, bottom first.
    Pyramid(Vec<usize>),
}

impl Policy {
    fn new<B: Backend>(be: &B, model: &Model<B>, l: usize) -> Result<Self, ModelError> {
        let cfg = &model.cfg;
        if cfg.model.kv != KvPolicy::Exact && cfg.model.use_rckv {
            return Err(ModelError::Params(format!(
                "model.kv = {:?} compresses exact keys and values; it needs model.use_rckv = false",
                cfg.model.kv
            )));
        }
        Ok(match cfg.model.kv {
            KvPolicy::Exact => Policy::Exact,
            KvPolicy::Razor => Policy::Razor(razor::retrieval_heads(be, model)?),
            KvPolicy::Pyramid => {
                let pc = &cfg.pyramid;
                let w = pc.window.min(l);
                Policy::Pyramid(pyramid::layer_budgets(
                    pc.budget.saturating_sub(pc.window),
                    cfg.model.layers,
                    pc.beta,
                    l - w,
                ))
            }
        })
    }

    /// Layer `i`'s compressed cache, or `None` to keep the exact one.
    fn compress<B: Backend>(
        &self,
        be: &B,
        model: &Model<B>,
        i: usize,
        cache: &layer::LayerCache<B>,
        l: usize,
    ) -> Result<Option<Vec<HeadGroup<B>>>, ModelError> {
        let cfg = &model.cfg;
        let (heads, d) = (cfg.model.heads, cfg.head_dim());
        let flat = |t: &B::T| be.reshape(t, &[heads * l, d]);
        let (kh, vh, _) = cache.attention_kv();
        Ok(match self {
            Policy::Exact => None,
            Policy::Razor(mask) => {
                let layer_mask = mask.get(i * heads..(i + 1) * heads).ok_or_else(|| {
                    ModelError::Params(format!("razor head mask has no layer {i}"))
                })?;
                let (k, v) = (flat(kh)?, flat(vh)?);
                Some(razor::compress(be, &cfg.razor, layer_mask, &k, &v, l)?)
            }
            Policy::Pyramid(budgets) => {
                let sel = budgets.get(i).copied().ok_or_else(|| {
                    ModelError::Params(format!("pyramid budgets have no layer {i}"))
                })?;
                let (q, k, v) = (flat(&cache.qh)?, flat(kh)?, flat(vh)?);
                Some(pyramid::compress(
                    be,
                    &cfg.pyramid,
                    sel,
                    &q,
                    &k,
                    &v,
                    heads,
                    l,
                )?)
            }
        })
    }
}
