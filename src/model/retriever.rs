//! The model's use of DSR: per example, score the context against the question from the token
//! embeddings, keep the selected blocks (then what the RCKV ring can hold), and — when
//! training — the retrieval and compute losses with their gradient into `W_r`, `W_q` and the
//! embedding.
//!
//! Losses: `L_retrieval` = mean over the examples that have supporting spans of the span BCE;
//! `L_compute` = mean over all examples of the expected kept fraction. Examples without
//! spans contribute no retrieval term (the attention-distillation KL target is not wired into
//! the model yet) and are counted in [`RetrievalOut::without_spans`].

use super::{acc, context, Grads, ModelError, SeqPlan, Weights};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::dsr::DsrDims;

/// Selection results and loss values of one batch.
pub struct RetrievalOut<B: Backend> {
    pub plans: Vec<SeqPlan>,
    /// Sum over examples with spans of their BCE (`[1]`), and how many there were.
    pub retrieval_sum: Option<B::T>,
    pub with_spans: usize,
    pub without_spans: usize,
    /// Sum over examples of the compute loss (`[1]`).
    pub compute_sum: Option<B::T>,
    /// Context tokens in, context tokens kept (after the ring), summed over the batch.
    pub ctx_tokens: usize,
    pub ctx_kept: usize,
}

/// Loss weights applied to the score gradient: `(retrieval, compute)` per unit of the mean.
pub(crate) struct DsrTrain {
    pub retrieval: f32,
    pub compute: f32,
}

pub(crate) fn run<B: Backend>(
    w: &Weights<'_, B>,
    examples: &[Example],
    train: Option<(&DsrTrain, &mut Grads<B::T>)>,
    idx: (usize, usize, usize),
) -> Result<RetrievalOut<B>, ModelError> {
    let (be, cfg, p) = (w.be, w.cfg, w.p);
    let (wte, w_r, w_q) = idx;
    let dsr = cfg.dsr_kernel();
    let n_spans = examples.iter().filter(|e| !e.spans.is_empty()).count();
    let mut out = RetrievalOut {
        plans: Vec::with_capacity(examples.len()),
        retrieval_sum: None,
        with_spans: n_spans,
        without_spans: examples.len() - n_spans,
        compute_sum: None,
        ctx_tokens: 0,
        ctx_kept: 0,
    };
    let mut train = train;
    for (i, ex) in examples.iter().enumerate() {
        let bad = |detail: String| ModelError::Example { index: i, detail };
        if ex.ids.len() != ex.targets.len() || ex.n_ctx == 0 || ex.n_ctx > ex.ids.len() {
            return Err(bad(format!(
                "{} ids, {} targets, context of {}",
                ex.ids.len(),
                ex.targets.len(),
                ex.n_ctx
            )));
        }
        out.ctx_tokens += ex.n_ctx;
        let plan = if cfg.model.use_dsr {
            let e = be.embedding_forward(&p[wte], &ex.ids)?;
            let dims = DsrDims {
                n: ex.ids.len(),
                dm: cfg.model.d_model,
                n_ctx: ex.n_ctx,
                q0: ex.q0,
                q1: ex.q1,
            };
            let fwd = be.dsr_scores(&e, &p[w_r], &p[w_q], &dims, &dsr)?;
            let sel = be.dsr_select(&fwd.scores, ex.q0, ex.q1, &dsr)?;
            if let Some((t, grads)) = train.as_mut() {
                let (lc, dsc) = be.dsr_compute_loss(&fwd.scores, &dsr)?;
                let n = examples.len() as f32;
                let mut ds = be.scale(&dsc, t.compute / n)?;
                out.compute_sum = Some(match out.compute_sum.take() {
                    Some(a) => be.add(&a, &lc, 1.0)?,
                    None => lc,
                });
                if !ex.spans.is_empty() {
                    let (lr, dsr_) = be.dsr_retrieval_bce(&fwd.scores, &ex.spans, dsr.dilation)?;
                    ds = be.add(&ds, &dsr_, t.retrieval / n_spans as f32)?;
                    out.retrieval_sum = Some(match out.retrieval_sum.take() {
                        Some(a) => be.add(&a, &lr, 1.0)?,
                        None => lr,
                    });
                }
                if t.compute != 0.0 || (t.retrieval != 0.0 && !ex.spans.is_empty()) {
                    let g = be.dsr_backward(&e, &p[w_r], &p[w_q], &fwd, &ds, &dims, &dsr, true)?;
                    acc(be, &mut grads[w_r], g.dw_r)?;
                    acc(be, &mut grads[w_q], g.dw_q)?;
                    if let Some(de) = g.de {
                        let v = cfg.model.vocab_size;
                        acc(be, &mut grads[wte], be.scatter_rows(&de, &ex.ids, v)?)?;
                    }
                }
            }
            let kept = sel.selected[..sel.kept_ctx].to_vec();
            SeqPlan::from_context(ex, kept)
        } else if cfg.model.use_gca() {
            // GCA reads the whole context: its cost is linear in it (local window plus
            // top-k retrieved chunks), which is the point of the baseline.
            SeqPlan::dense(ex)
        } else {
            // Truncation (standard), BM25 chunks (rag) or attention-ranked chunks
            // (attention_rag): see `context`.
            context::plan(w, ex, i)?
        };
        let plan = if cfg.model.use_rckv {
            plan.ring_trim(cfg.rckv.buffer_size, cfg.rckv.sink)
        } else {
            plan
        };
        out.ctx_kept += plan.kept_ctx;
        out.plans.push(plan);
    }
    Ok(out)
}
