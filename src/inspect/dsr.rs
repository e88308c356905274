//! The retriever on one input: each context token's score, the block scores, the kept blocks,
//! the budget and the complexity `c`, as the model computes them (the backend's `dsr_scores`
//! and `dsr_select` on the token embeddings), and what the RCKV ring then keeps.

use super::{check_example, model_plan, InspectError, Result};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::dsr::{self, DsrDims};
use crate::model::Model;

#[derive(Debug, Clone)]
pub struct DsrInspect {
    /// The whole input and its layout (context `[0, n_ctx)`, question `[q0, q1)`).
    pub ids: Vec<u32>,
    pub n_ctx: usize,
    pub q0: usize,
    pub q1: usize,
    /// Supporting spans `[start, end)` of the example (empty = unknown).
    pub spans: Vec<(usize, usize)>,
    /// `[n_ctx]` retrieval score of each context token.
    pub scores: Vec<f32>,
    /// Tokens per block and `[blocks]` block scores (max over the block).
    pub block: usize,
    pub block_scores: Vec<f32>,
    /// `[blocks]` whether DSR keeps the block (block 0, the sinks, always).
    pub kept_blocks: Vec<bool>,
    /// Token budget `B`, blocks kept `K` and complexity `c` (normalized entropy of softmax(s)).
    pub budget: usize,
    pub keep_blocks: usize,
    pub complexity: f32,
    /// Context positions DSR keeps, ascending.
    pub kept: Vec<u32>,
    /// Context positions the transformer finally reads (after the ring trims the kept ones).
    pub read: Vec<u32>,
    /// Whether the model runs DSR at all (`model.use_dsr`); the scores are shown either way.
    pub used_by_model: bool,
}

/// Scores and selection of `model`'s retriever on `ex`.
pub fn inspect<B: Backend>(be: &B, model: &Model<B>, ex: &Example) -> Result<DsrInspect> {
    check_example(model, ex)?;
    let cfg = &model.cfg;
    let idx = &model.layout.idx;
    let dcfg = cfg.dsr_kernel();
    let e = be.embedding_forward(&model.params[idx.wte], &ex.ids)?;
    let dims = DsrDims {
        n: ex.ids.len(),
        dm: cfg.model.d_model,
        n_ctx: ex.n_ctx,
        q0: ex.q0,
        q1: ex.q1,
    };
    let fwd = be.dsr_scores(
        &e,
        &model.params[idx.dsr_wr],
        &model.params[idx.dsr_wq],
        &dims,
        &dcfg,
    )?;
    let sel = be.dsr_select(&fwd.scores, ex.q0, ex.q1, &dcfg)?;
    let scores = be.download(&fwd.scores)?.data;
    if scores.len() != ex.n_ctx {
        return Err(InspectError::Input(format!(
            "{} scores for a context of {}",
            scores.len(),
            ex.n_ctx
        )));
    }
    let block = dcfg.block.max(1);
    let block_scores = dsr::cpu::block_scores(&scores, block);
    let kept: Vec<u32> = sel.selected[..sel.kept_ctx].to_vec();
    let mut kept_blocks = vec![false; block_scores.len()];
    for &p in &kept {
        if let Some(b) = kept_blocks.get_mut(p as usize / block) {
            *b = true;
        }
    }
    let plan = model_plan(be, model, ex)?;
    Ok(DsrInspect {
        ids: ex.ids.clone(),
        n_ctx: ex.n_ctx,
        q0: ex.q0,
        q1: ex.q1,
        spans: ex.spans.clone(),
        scores,
        block,
        block_scores,
        kept_blocks,
        budget: sel.budget,
        keep_blocks: sel.keep_blocks,
        complexity: sel.complexity,
        kept,
        read: plan.kept[..plan.kept_ctx].to_vec(),
        used_by_model: cfg.model.use_dsr,
    })
}
