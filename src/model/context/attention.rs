//! `attention_rag`'s scorer: the dense model's attention from the prompt's last row (the
//! `[SEP]` at `q1`, after which the answer comes) over the context, summed per chunk.
//!
//! Shape legend: a pass runs `b` windows of `l` rows each (`l` = `c` context rows + the `t`
//! rows `[n_ctx, q1]`: separator, question, closing separator), `H` heads of width `d`.
//! ```text
//! per layer:  qh, kh          [b·H, l, d]   (post-RoPE, from the block's forward cache)
//!             q = qh[:, l−1]  [b·H, 1, d]   (row gather)
//!             p = softmax(q·khᵀ / √d)        [b·H, l]
//! chunk mass = Σ over the chunk's rows of p, averaged over heads and layers
//! ```
//! Choices:
//! - The context is read in windows of whole chunks, as many as fit `model.max_len` beside
//!   the `t` prompt rows (at least one chunk even if that overflows it: RoPE and the kernels
//!   take any length, max_len is only where the standard model truncates). Each window's
//!   context rows keep their ORIGINAL positions and the prompt follows the window directly
//!   (positions continue from its end), so every window looks like an example whose context
//!   ends there — the question-to-context distances the model saw in training, not the
//!   distance in the full document, which the standard model never sees beyond max_len.
//! - No BOS is prepended to later windows: the standard model trains on truncated contexts,
//!   which have lost their BOS too.
//! - A chunk's score is its raw attention mass (not renormalized over the window's context
//!   rows): windows hold the same number of context rows (but the last), so raw mass compares
//!   across them, and renormalizing would inflate a window with nothing relevant in it.
//! - Softmax is over the window's real rows only: windows of equal length go in one pass
//!   (the last, shorter window gets its own), so no padding enters a softmax row.
//! - Only the small `[b·H, l]` probability rows come back to the host, once per layer.

use super::super::forward::forward_blocks;
use super::super::{Batch, ModelError, ParamLayout, Weights};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::matmul::MatmulDims;

/// Windows per forward pass: one block's cache for `b` windows of up to max_len rows is alive
/// at a time, so this bounds the scorer's memory to about four standard forwards (the seed
/// config's 4096-row window × 4 is already ~1 GB of activations) while still batching.
const WINDOWS_PER_PASS: usize = 4;

/// One window: context rows `[c0, c1)` followed by the prompt rows.
#[derive(Debug, Clone, Copy)]
struct Window {
    c0: usize,
    c1: usize,
}

/// Each chunk's attention mass from `ex`'s focus row (see the module docs). `chunks` tile
/// `[0, n_ctx)` in order, as [`super::chunks`] makes them.
pub(crate) fn chunk_scores<B: Backend>(
    w: &Weights<'_, B>,
    ex: &Example,
    chunks: &[(usize, usize)],
) -> Result<Vec<f64>, ModelError> {
    let cfg = w.cfg;
    if ex.q1 >= ex.ids.len() || ex.n_ctx > ex.q1 {
        return Err(ModelError::Batch(format!(
            "attention_rag: prompt end {} outside {} tokens (context {})",
            ex.q1,
            ex.ids.len(),
            ex.n_ctx
        )));
    }
    let tail = ex.q1 + 1 - ex.n_ctx;
    let room = cfg.model.max_len.saturating_sub(tail);
    let chunk = cfg.rag.chunk.max(1);
    let per_window = (room / chunk).max(1);
    let windows: Vec<Window> = chunks
        .chunks(per_window)
        .filter_map(|g| {
            Some(Window {
                c0: g.first()?.0,
                c1: g.last()?.1,
            })
        })
        .collect();

    // Attention mass per context position, summed over heads and layers.
    let mut mass = vec![0f64; ex.n_ctx];
    let mut start = 0;
    while start < windows.len() {
        let len = windows[start].c1 - windows[start].c0;
        let mut end = start + 1;
        while end < windows.len()
            && end - start < WINDOWS_PER_PASS
            && windows[end].c1 - windows[end].c0 == len
        {
            end += 1;
        }
        window_pass(w, ex, &windows[start..end], tail, &mut mass)?;
        start = end;
    }
    let norm = (cfg.model.heads * cfg.model.layers) as f64;
    Ok(chunks
        .iter()
        .map(|&(s, e)| mass[s..e].iter().sum::<f64>() / norm)
        .collect())
}

/// The batch of `windows` (all of one length): context rows, then the prompt rows with
/// positions continuing from the window's end.
fn window_batch(ex: &Example, windows: &[Window], tail: usize) -> Batch {
    let b = windows.len();
    let c = windows.first().map_or(0, |w| w.c1 - w.c0);
    let l = c + tail;
    let mut batch = Batch {
        b,
        l,
        ids: Vec::with_capacity(b * l),
        positions: Vec::with_capacity(b * l),
        ctx_rows: Vec::with_capacity(b * c),
        target_rows: Vec::new(),
        targets: Vec::new(),
        kept_ctx: vec![c; b],
        seq_len: vec![l; b],
        target_seq: Vec::new(),
    };
    for (s, win) in windows.iter().enumerate() {
        for p in win.c0..win.c1 {
            batch.ctx_rows.push((s * l + p - win.c0) as u32);
            batch.ids.push(ex.ids[p]);
            batch.positions.push(p as u32);
        }
        for j in 0..tail {
            batch.ids.push(ex.ids[ex.n_ctx + j]);
            batch.positions.push((win.c1 + j) as u32);
        }
    }
    batch
}

/// Runs one pass and adds each window's focus-row attention over its context rows to `mass`.
fn window_pass<B: Backend>(
    w: &Weights<'_, B>,
    ex: &Example,
    windows: &[Window],
    tail: usize,
    mass: &mut [f64],
) -> Result<(), ModelError> {
    let (be, cfg) = (w.be, w.cfg);
    // The retriever's callers pass only the indices DSR needs; the layout is cheap to rebuild
    // and is the same one the parameters were made from.
    let idx = ParamLayout::new(cfg).idx;
    let batch = window_batch(ex, windows, tail);
    let (b, l, heads) = (batch.b, batch.l, cfg.model.heads);
    let d = cfg.head_dim();
    let bh = b * heads;
    // Row `l − 1` of every (window, head) slice of `[b·H·l, d]`.
    let focus: Vec<u32> = (0..bh).map(|i| (i * l + l - 1) as u32).collect();
    let dims = MatmulDims::new(1, d, l).batched(bh).transpose_b();
    let scale = 1.0 / (d as f32).sqrt();
    forward_blocks(w, &idx, &batch, None, |_, cache| {
        let q = be.gather_rows(&be.reshape(&cache.qh, &[bh * l, d])?, &focus)?;
        let q = be.reshape(&q, &[bh, 1, d])?;
        let s = be.scale(&be.matmul(&q, &cache.kh, &dims)?, scale)?;
        let p = be.download(&be.softmax_forward(&be.reshape(&s, &[bh, l])?)?)?;
        for (s, win) in windows.iter().enumerate() {
            for h in 0..heads {
                let row = &p.data[(s * heads + h) * l..][..win.c1 - win.c0];
                for (m, &v) in mass[win.c0..win.c1].iter_mut().zip(row) {
                    *m += f64::from(v);
                }
            }
        }
        Ok(false)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::model::layer;
    use crate::model::{AttentionKind, Config, Model};

    /// The scores from backend matmul + softmax equal an f64 softmax of the focus row's
    /// dot products, read from the same layer caches; windows of 2 chunks, the last shorter.
    #[test]
    fn chunk_masses_equal_an_f64_softmax_of_the_focus_row() {
        let mut cfg = Config::preset("tiny").expect("tiny");
        cfg.model.d_model = 16;
        cfg.model.hidden_dim = 8;
        cfg.model.heads = 2;
        cfg.model.layers = 2;
        cfg.model.use_dsr = false;
        cfg.model.attention = AttentionKind::Dense;
        cfg.model.use_rckv = false;
        cfg.rag.chunk = 4;
        let be = CpuBackend;
        let model = Model::new(&be, &cfg, 7).expect("model");
        // Context of 19 tokens, question of 3: tail = SEP + 3 + SEP = 5 rows.
        let mut ids: Vec<u32> = (0..19).map(|i| 1000 + 37 * i).collect();
        let n_ctx = ids.len();
        ids.extend([102, 2000, 2001, 2002, 102, 3000]);
        let ex = Example {
            targets: vec![-1; ids.len()],
            n_ctx,
            q0: n_ctx + 1,
            q1: n_ctx + 4,
            spans: Vec::new(),
            answers: Vec::new(),
            ids,
        };
        cfg.model.max_len = 5 + 8;
        let model = Model {
            cfg: cfg.clone(),
            ..model
        };
        let w = Weights {
            be: &be,
            cfg: &cfg,
            p: &model.params,
        };
        let chunks = super::super::chunks(n_ctx, 4);
        let got = chunk_scores(&w, &ex, &chunks).expect("scores");

        let (heads, d) = (cfg.model.heads, cfg.head_dim());
        let mut mass = vec![0f64; n_ctx];
        for group in chunks.chunks(2) {
            let win = Window {
                c0: group[0].0,
                c1: group[group.len() - 1].1,
            };
            let batch = window_batch(&ex, &[win], 5);
            let l = batch.l;
            let mut x = be
                .embedding_forward(&model.params[model.layout.idx.wte], &batch.ids)
                .expect("embed");
            for li in &model.layout.idx.layers {
                let (out, cache) = layer::forward(&w, li, &batch, x).expect("layer");
                x = out.x;
                let q = be.download(&cache.qh).expect("q").data;
                let k = be.download(&cache.kh).expect("k").data;
                for h in 0..heads {
                    let row = |r: usize| &q[(h * l + r) * d..][..d];
                    let qf = row(l - 1);
                    let logits: Vec<f64> = (0..l)
                        .map(|j| {
                            let kj = &k[(h * l + j) * d..][..d];
                            let dot: f64 =
                                qf.iter().zip(kj).map(|(&a, &b)| a as f64 * b as f64).sum();
                            dot / (d as f64).sqrt()
                        })
                        .collect();
                    let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = logits.iter().map(|v| (v - mx).exp()).sum();
                    for (j, p) in (win.c0..win.c1).enumerate() {
                        mass[p] += (logits[j] - mx).exp() / z;
                    }
                }
            }
        }
        let norm = (heads * cfg.model.layers) as f64;
        assert_eq!(got.len(), 5);
        for (c, &(s, e)) in chunks.iter().enumerate() {
            let want = mass[s..e].iter().sum::<f64>() / norm;
            // f32 matmul and softmax against f64 over ≤ 13 rows of width 8.
            assert!(
                (got[c] - want).abs() <= 1e-5,
                "chunk {c}: {} vs {want}",
                got[c]
            );
        }
    }
}
