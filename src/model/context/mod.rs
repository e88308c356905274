//! How the dense model without DSR picks the context it reads: the `rag` (BM25) and
//! `attention_rag` (the model's own attention) baselines of docs/DESIGN.md §3.
//!
//! Both split the context (`[0, n_ctx)`, BOS included) into chunks of `rag.chunk` tokens (the
//! last one shorter when `n_ctx` is not a multiple), score every chunk against the question,
//! and keep whole chunks, best first, while they fit a token budget; the kept chunks stay in
//! their original order and at their ORIGINAL positions (RoPE index), as DSR's selection does.
//! The budget is `rag.budget`, or with 0 the dense model's window: `model.max_len` minus the
//! tokens after the context (separator, question, answer) — exactly as many context tokens as
//! the `standard` model reads. When the whole context fits, nothing is scored and the plan is
//! [`SeqPlan::dense`], so both baselines then ARE the standard model.
//!
//! Ranking: score descending, ties to the earlier chunk; a chunk that does not fit what is left
//! of the budget is skipped and the next one tried (only the last, shorter chunk can fit after
//! a full one did not). A budget below one chunk keeps no context at all rather than a partial
//! chunk: the unit of retrieval is the chunk in both papers.
//!
//! `rag` — BM25 (Robertson & Zaragoza 2009; idf as Lucene's), see [`bm25`]. Documents are the
//! chunks, the query the question's token ids (`[q0, q1)`): matching is on WordPiece ids, not
//! on words, so a word split into pieces matches piecewise and there is no stemming or stop
//! list (idf discounts frequent pieces instead). The BOS and separator ids, read from the
//! layout (`ids[0]`, `ids[n_ctx]`), are never query terms.
//!
//! `attention_rag` — AttentionRAG (Fang et al. 2025, arXiv:2503.10720), see [`attention`]. The
//! paper has an LLM write an "answer hint prefix" for each query (e.g. "Mary is in the") so
//! that the next token to predict IS the answer, feeds each context chunk followed by the
//! query and that prefix to the LLM, takes the attention of the prefix's last token over the
//! chunk (aggregated over layers and heads), keeps the most-attended tokens and finally the
//! sentences that contain them. Differences here:
//! - No generated hint: our input layout already ends the prompt with the `[SEP]` at `q1`,
//!   which the model is trained to follow with the answer's first token, so that row is the
//!   focus token (the same "next token is the answer" role, at no extra generation cost).
//! - Selection unit: whole 64-token chunks ranked by their summed attention mass, not
//!   sentences around top-attended tokens (our token ids carry no sentence boundaries, and
//!   chunks make `rag` and `attention_rag` differ only in the scorer).
//! - Windows: one forward reads as many chunks as fit `model.max_len` together with the
//!   question (not one chunk per forward), since the scorer is the answering model itself
//!   and cannot read more than its window at once.
//! - The scorer and the reader are the same dense model (the paper allows a separate,
//!   smaller compressor model).

pub mod attention;
pub mod bm25;

use super::{ContextPolicy, Model, ModelError, SeqPlan, Weights};
use crate::backend::Backend;
use crate::data::Example;
use bm25::Bm25;

/// `[start, end)` chunks of `chunk` tokens covering `[0, n_ctx)`; the last may be shorter.
pub fn chunks(n_ctx: usize, chunk: usize) -> Vec<(usize, usize)> {
    let chunk = chunk.max(1);
    (0..n_ctx)
        .step_by(chunk)
        .map(|s| (s, (s + chunk).min(n_ctx)))
        .collect()
}

/// Context tokens `ex` may keep under `cfg` (see the module docs).
pub fn budget(cfg: &super::Config, ex: &Example) -> usize {
    match cfg.rag.budget {
        0 => {
            let tail = ex.ids.len().saturating_sub(ex.n_ctx);
            cfg.model.max_len.saturating_sub(tail)
        }
        b => b,
    }
}

/// Kept context positions, ascending: chunks by score (descending, ties to the earlier chunk;
/// NaN ranks last) while they fit `budget`.
pub fn select(chunks: &[(usize, usize)], scores: &[f64], budget: usize) -> Vec<u32> {
    let key = |i: usize| match scores.get(i) {
        Some(s) if !s.is_nan() => *s,
        _ => f64::NEG_INFINITY,
    };
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let mut keep = vec![false; chunks.len()];
    let mut left = budget;
    for i in order {
        let len = chunks[i].1 - chunks[i].0;
        if len <= left {
            keep[i] = true;
            left -= len;
        }
    }
    chunks
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .flat_map(|(&(s, e), _)| s as u32..e as u32)
        .collect()
}

/// BM25 scores of `ex`'s chunks with its question as the query.
pub fn bm25_scores(cfg: &super::Config, ex: &Example, chunks: &[(usize, usize)]) -> Vec<f64> {
    let docs: Vec<&[u32]> = chunks.iter().map(|&(s, e)| &ex.ids[s..e]).collect();
    let q = &ex.ids[ex.q0.min(ex.q1)..ex.q1.min(ex.ids.len())];
    let layout: Vec<u32> = [ex.ids.first(), ex.ids.get(ex.n_ctx)]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let bm = Bm25 {
        k1: f64::from(cfg.rag.k1),
        b: f64::from(cfg.rag.b),
    };
    bm.scores(&docs, q, &layout)
}

/// The plan of example `index` under the config's context policy (a model without DSR).
pub(crate) fn plan<B: Backend>(
    w: &Weights<'_, B>,
    ex: &Example,
    index: usize,
) -> Result<SeqPlan, ModelError> {
    let cfg = w.cfg;
    if cfg.model.context == ContextPolicy::Truncate {
        return Ok(SeqPlan::dense(ex).truncate(cfg.model.max_len));
    }
    if !(ex.n_ctx <= ex.q0 && ex.q0 <= ex.q1 && ex.q1 < ex.ids.len()) {
        return Err(ModelError::Example {
            index,
            detail: format!(
                "context {}, question [{}, {}) in {} tokens: not a prompt layout",
                ex.n_ctx,
                ex.q0,
                ex.q1,
                ex.ids.len()
            ),
        });
    }
    let budget = budget(cfg, ex);
    if ex.n_ctx <= budget {
        return Ok(SeqPlan::dense(ex));
    }
    let chunks = chunks(ex.n_ctx, cfg.rag.chunk);
    let scores = match cfg.model.context {
        ContextPolicy::Attention => attention::chunk_scores(w, ex, &chunks)?,
        _ => bm25_scores(cfg, ex, &chunks),
    };
    Ok(SeqPlan::from_context(ex, select(&chunks, &scores, budget)))
}

/// The plan `model` makes for `ex` (for tests and inspection; the forward calls [`plan`]).
pub fn context_plan<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
) -> Result<SeqPlan, ModelError> {
    let w = model.weights(be);
    plan(&w, ex, 0)
}

/// `attention_rag`'s score of each of `ex`'s chunks under `model`'s weights.
pub fn attention_chunk_scores<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
) -> Result<Vec<f64>, ModelError> {
    let w = model.weights(be);
    attention::chunk_scores(&w, ex, &chunks(ex.n_ctx, model.cfg.rag.chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_ranks_by_score_breaks_ties_by_position_and_fills_with_the_short_chunk() {
        let c = chunks(10, 4); // [0,4) [4,8) [8,10)
        assert_eq!(c, vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(select(&c, &[1.0, 1.0, 0.0], 4), vec![0, 1, 2, 3]);
        // Budget 6: the best full chunk, then the second full does not fit, the short one does.
        assert_eq!(select(&c, &[0.0, 2.0, 1.0], 6), vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(select(&c, &[f64::NAN, 0.0, -1.0], 4), vec![4, 5, 6, 7]);
        assert!(select(&c, &[1.0, 2.0, 3.0], 1).is_empty());
    }
}
