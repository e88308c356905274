//! Greedy decoding, the reference way: every new token reruns the whole forward over the
//! prompt plus what was generated so far, exactly the computation training scores.
//!
//! It costs one full forward per generated token, so it is only fit for the short answers
//! of QA (a handful of tokens); a cached decoder (per-layer K/V, the RCKV ring for DSRSQ)
//! must reproduce its tokens. DSR selects from the question, which does not change while
//! decoding, so every forward keeps the same context.

use crate::backend::Backend;
use crate::data::Example;
use crate::model::{KvDecoder, Model, ModelError};
use crate::train::eval::argmax;

/// What greedy decoding produced for one example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The answer tokens, without the EOS.
    pub tokens: Vec<u32>,
    /// Whether decoding stopped at EOS (rather than at the token limit).
    pub stopped: bool,
    /// Context tokens offered, and kept by DSR and the ring (at the last forward).
    pub ctx_tokens: usize,
    pub ctx_kept: usize,
}

/// Whether `ex` is laid out as `prompt [SEP] answer [EOS]` with every answer row scored,
/// i.e. free generation after `q1` reproduces its answer. MQAR interleaves given keys in
/// its answer region and is not.
pub fn is_generative(ex: &Example, eos: u32) -> bool {
    let n = ex.ids.len();
    n > ex.q1 + 1
        && ex.ids[n - 1] == eos
        && (ex.q1..n - 1).all(|p| ex.targets[p] == ex.ids[p + 1] as i32)
        && ex.targets[n - 1] < 0
}

/// The prompt of `ex` (everything up to and including the SEP at `q1`) plus `answer`, with
/// only the last row scored (its logits are the next token's).
fn prompt_with(ex: &Example, answer: &[u32]) -> Example {
    let mut ids = ex.ids[..=ex.q1].to_vec();
    ids.extend_from_slice(answer);
    let mut targets = vec![-1i32; ids.len()];
    if let Some(last) = targets.last_mut() {
        // Any valid id: the loss is discarded, the logits are what decoding reads.
        *last = 0;
    }
    Example {
        ids,
        n_ctx: ex.n_ctx,
        q0: ex.q0,
        q1: ex.q1,
        targets,
        spans: ex.spans.clone(),
        answers: Vec::new(),
    }
}

/// Greedy decoding of `ex`'s answer: up to `max_new` tokens, stopping at `eos`.
pub fn greedy_reference<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
    eos: u32,
    max_new: usize,
) -> Result<Generated, ModelError> {
    let vocab = model.cfg.model.vocab_size;
    let mut out = Generated {
        tokens: Vec::new(),
        stopped: false,
        ctx_tokens: 0,
        ctx_kept: 0,
    };
    while out.tokens.len() < max_new {
        let step = model.step(be, &[prompt_with(ex, &out.tokens)], 0, false, true)?;
        out.ctx_tokens = step.ctx_tokens;
        out.ctx_kept = step.ctx_kept;
        let Some(logits) = step.logits else {
            break;
        };
        let next = argmax_row(be, &logits, vocab)?;
        if next == eos {
            out.stopped = true;
            break;
        }
        out.tokens.push(next);
    }
    Ok(out)
}

fn argmax_row<B: Backend>(be: &B, logits: &B::T, vocab: usize) -> Result<u32, ModelError> {
    let logits = be.download(logits)?;
    let row = logits.data.get(..vocab).ok_or_else(|| {
        ModelError::Batch(format!(
            "greedy decoding: {} logits, fewer than one row of {vocab}",
            logits.data.len()
        ))
    })?;
    Ok(argmax(row) as u32)
}

/// Greedy decoding with the KV cache ([`KvDecoder`]): one prefill over the prompt, then one
/// row per token. Same tokens as [`greedy_reference`] wherever the full forward is causal
/// (see the decoder's notes on SQA routing). Also returns the cache's size after the prompt.
pub fn greedy_cached<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
    eos: u32,
    max_new: usize,
) -> Result<(Generated, usize), ModelError> {
    if model.cfg.model.use_gca() {
        return greedy_gca(be, model, ex, eos, max_new);
    }
    let vocab = model.cfg.model.vocab_size;
    let (mut dec, mut logits) = KvDecoder::prefill(be, model, &prompt_with(ex, &[]))?;
    let cache_bytes = dec.cache_bytes();
    let mut out = Generated {
        tokens: Vec::new(),
        stopped: false,
        ctx_tokens: dec.ctx_tokens,
        ctx_kept: dec.ctx_kept,
    };
    while out.tokens.len() < max_new {
        let next = argmax_row(be, &logits, vocab)?;
        if next == eos {
            out.stopped = true;
            break;
        }
        out.tokens.push(next);
        if out.tokens.len() < max_new {
            logits = dec.step(be, next)?;
        }
    }
    Ok((out, cache_bytes))
}

/// GCA models decode by recomputing the full forward per token (the reference path): the
/// KV decoder has no GCA attention. The forward is causal (chunk c retrieves with the
/// landmark of the complete chunk c − 1 among chunks ≤ c − 2), so this is what an
/// incremental GCA decoder would produce. The reported cache is what that recompute keeps
/// alive per layer: the prompt's keys and values (f32).
fn greedy_gca<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
    eos: u32,
    max_new: usize,
) -> Result<(Generated, usize), ModelError> {
    let out = greedy_reference(be, model, ex, eos, max_new)?;
    let m = &model.cfg.model;
    let prompt_rows = ex.q1 + 1;
    Ok((out, 2 * m.layers * prompt_rows * m.d_model * 4))
}
