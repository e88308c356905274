//! Efficiency and accuracy against context length: the same held-out task generated at each
//! length, answered greedily with the KV cache, one example at a time.
//!
//! A data spec template holds `{ctx}` where the length goes (`passkey:ctx={ctx}`). Each length
//! draws its own held-out examples from the evaluation seed stream, so every model sees the
//! same examples at a given length. `sweep.json` beside a run's `eval.json` holds the points;
//! `dsrsq report` draws throughput and memory against length from it.

use serde::{Deserialize, Serialize};

use super::harness::generate_and_score;
use crate::backend::Backend;
use crate::data::{DataSpec, LoadOptions, Split, Tok};
use crate::model::Model;
use crate::train::TrainError;

/// One context length's measurements.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    /// Context tokens per example (the task's `ctx`).
    pub context_length: usize,
    pub examples: usize,
    pub f1: f64,
    pub exact_match: f64,
    pub tokens_per_second: f64,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub token_efficiency: f64,
    pub peak_bytes: Option<u64>,
    pub working_peak_bytes: Option<u64>,
    pub kv_cache_bytes: usize,
}

/// `template` with `{ctx}` replaced by `len`; an error when it has no `{ctx}`.
pub fn spec_at(template: &str, len: usize) -> Result<String, TrainError> {
    if !template.contains("{ctx}") {
        return Err(TrainError::Setup(format!(
            "length sweep data `{template}` has no `{{ctx}}` to put the length in"
        )));
    }
    Ok(template.replace("{ctx}", &len.to_string()))
}

/// Evaluates `model` on `examples` held-out examples of `template` at each length in
/// `lengths`. `progress(length, done, total)` after each example.
#[allow(clippy::too_many_arguments)]
pub fn length_sweep<B: Backend>(
    be: &B,
    model: &Model<B>,
    tok: &Tok,
    template: &str,
    lengths: &[usize],
    examples: usize,
    max_new: usize,
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<Vec<SweepPoint>, TrainError> {
    let seed = model.cfg.train.seed;
    let mut points = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let spec = spec_at(template, len)?;
        let ds = DataSpec::parse(&spec)?.open(tok, seed, Split::Eval, &LoadOptions::default())?;
        let n = ds.len().map_or(examples, |l| l.min(examples));
        let exs = (0..n as u64)
            .map(|i| ds.example(i))
            .collect::<Result<Vec<_>, _>>()?;
        let g = generate_and_score(be, model, tok, &exs, max_new, &mut |d, t| {
            progress(len, d, t)
        })?
        .ok_or_else(|| {
            TrainError::Setup(format!(
                "length sweep data `{spec}` is not free-form QA (no greedy answers to time)"
            ))
        })?;
        let e = &g.efficiency;
        points.push(SweepPoint {
            context_length: len,
            examples: n,
            f1: g.task.f1,
            exact_match: g.task.exact_match,
            tokens_per_second: e.tokens_per_second,
            latency_p50_s: e.latency_p50_s,
            latency_p95_s: e.latency_p95_s,
            token_efficiency: e.token_efficiency,
            peak_bytes: e.peak_bytes,
            working_peak_bytes: e.working_peak_bytes,
            kv_cache_bytes: e.kv_cache_bytes,
        });
    }
    Ok(points)
}
