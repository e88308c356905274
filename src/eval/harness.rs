//! Evaluating a trained model on held-out examples: teacher-forced accuracy, greedy answers
//! scored by the task metrics, and the efficiency figures measured while doing it.
//!
//! Answers are decoded greedily with the KV cache (`KvDecoder`: RCKV latents for the
//! context of a model with RCKV). Efficiency is measured on the generation pass, one example at a time so that each
//! example's latency is its own: throughput counts the context and question tokens read plus
//! the tokens generated, per second of decoding. Token efficiency is the fraction of offered
//! context tokens kept for attention by DSR and the ring (for a model without DSR: the
//! fraction inside its window); it bounds what attention reads from above.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::generate::{greedy_cached, is_generative};
use super::{score_all, TaskScores};
use crate::backend::Backend;
use crate::data::{Example, Tok};
use crate::model::Model;
use crate::train::eval::{evaluate, EvalStats};
use crate::train::metrics::peak_rss_bytes;
use crate::train::TrainError;

/// Teacher-forced figures (each target row given the true prefix).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TeacherForced {
    pub exact_match: f64,
    pub row_accuracy: f64,
    pub task_loss: f64,
    /// Fraction of examples with supporting spans whose every span token was kept (null
    /// when no example has spans).
    pub support_recall: Option<f64>,
}

impl From<&EvalStats> for TeacherForced {
    fn from(s: &EvalStats) -> Self {
        TeacherForced {
            exact_match: s.exact_match(),
            row_accuracy: s.row_accuracy(),
            task_loss: s.task_loss,
            support_recall: (s.with_spans > 0).then(|| s.support_recall()),
        }
    }
}

/// Efficiency figures of the generation pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Efficiency {
    /// (prompt + generated tokens) / seconds of decoding.
    pub tokens_per_second: f64,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    /// Context tokens kept for attention / context tokens offered.
    pub token_efficiency: f64,
    /// Peak bytes of the backend's live buffers during decoding (weights included): wgpu
    /// device buffers, or CPU heap bytes when the binary counts them.
    pub peak_bytes: Option<u64>,
    /// `peak_bytes` minus what was live when decoding began (weights, tokenizer, the
    /// examples): the memory decoding itself needed — activations and the KV cache.
    #[serde(default)]
    pub working_peak_bytes: Option<u64>,
    /// The process's peak resident set over its whole life (the fallback memory figure).
    pub peak_rss_bytes: Option<u64>,
    pub generated_tokens: usize,
    pub prompt_tokens: usize,
    /// The largest KV cache a prompt left (latents + exact rows, all layers), bytes.
    #[serde(default)]
    pub kv_cache_bytes: usize,
}

/// One example's greedy answer beside its gold answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prediction {
    pub prediction: String,
    pub gold: Vec<String>,
    pub stopped_at_eos: bool,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    pub examples: usize,
    pub teacher_forced: TeacherForced,
    /// Task metrics of the greedy answers; `None` when the data is not free-form QA (MQAR
    /// gives the keys in its answer region, so only teacher-forced figures apply).
    pub task: Option<TaskScores>,
    pub efficiency: Option<Efficiency>,
    pub predictions: Vec<Prediction>,
}

/// `q`-quantile of ascending `sorted` by the nearest-rank method.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Evaluates `model` on `examples`: teacher-forced in batches of `batch`, then (for QA data)
/// greedy answers of at most `max_new` tokens, one example at a time. `progress` is called
/// after each generated example with (done, total).
pub fn evaluate_model<B: Backend>(
    be: &B,
    model: &Model<B>,
    tok: &Tok,
    examples: &[Example],
    batch: usize,
    max_new: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport, TrainError> {
    let tf = evaluate(be, model, examples, batch, usize::MAX)?;
    let mut report = EvalReport {
        examples: examples.len(),
        teacher_forced: TeacherForced::from(&tf),
        task: None,
        efficiency: None,
        predictions: Vec::new(),
    };
    if let Some(g) = generate_and_score(be, model, tok, examples, max_new, progress)? {
        report.task = Some(g.task);
        report.efficiency = Some(g.efficiency);
        report.predictions = g.predictions;
    }
    Ok(report)
}

/// What the generation pass measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub task: TaskScores,
    pub efficiency: Efficiency,
    pub predictions: Vec<Prediction>,
}

/// Greedy answers of at most `max_new` tokens, one example at a time, scored by the task
/// metrics and timed; `None` when the data is not free-form QA.
pub fn generate_and_score<B: Backend>(
    be: &B,
    model: &Model<B>,
    tok: &Tok,
    examples: &[Example],
    max_new: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Generation>, TrainError> {
    let eos = tok.specials().eos;
    let generative = !examples.is_empty() && examples.iter().all(|e| is_generative(e, eos));
    if !generative {
        return Ok(None);
    }
    let (mut prompt_tokens, mut generated, mut ctx, mut kept, mut cache) = (0, 0, 0, 0, 0);
    let mut latencies = Vec::with_capacity(examples.len());
    let mut preds = Vec::with_capacity(examples.len());
    let mut golds = Vec::with_capacity(examples.len());
    let mut predictions = Vec::with_capacity(examples.len());
    be.reset_memory_peak();
    let live_before = be.device_bytes().map(|(live, _)| live);
    let all = Instant::now();
    for (i, ex) in examples.iter().enumerate() {
        let t = Instant::now();
        let (g, cache_bytes) = greedy_cached(be, model, ex, eos, max_new)?;
        be.sync()?;
        cache = cache.max(cache_bytes);
        let secs = t.elapsed().as_secs_f64();
        latencies.push(secs);
        prompt_tokens += ex.q1 + 1;
        generated += g.tokens.len();
        ctx += g.ctx_tokens;
        kept += g.ctx_kept;
        let text = tok.decode(&g.tokens)?;
        let gold = if ex.answers.is_empty() {
            // Examples built from ids alone carry their answer only as tokens.
            let n = ex.ids.len();
            vec![tok.decode(&ex.ids[ex.q1 + 1..n - 1])?]
        } else {
            ex.answers.clone()
        };
        preds.push(text.clone());
        golds.push(gold.clone());
        predictions.push(Prediction {
            prediction: text,
            gold,
            stopped_at_eos: g.stopped,
            seconds: secs,
        });
        progress(i + 1, examples.len());
    }
    let seconds = all.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let peak = be.device_bytes().map(|(_, peak)| peak);
    let efficiency = Efficiency {
        tokens_per_second: (prompt_tokens + generated) as f64 / seconds.max(1e-12),
        latency_p50_s: quantile(&latencies, 0.50),
        latency_p95_s: quantile(&latencies, 0.95),
        token_efficiency: kept as f64 / ctx.max(1) as f64,
        peak_bytes: peak,
        working_peak_bytes: peak.zip(live_before).map(|(p, l)| p.saturating_sub(l)),
        peak_rss_bytes: peak_rss_bytes(),
        generated_tokens: generated,
        prompt_tokens,
        kv_cache_bytes: cache,
    };
    Ok(Some(Generation {
        task: score_all(&preds, &golds)?,
        efficiency,
        predictions,
    }))
}

/// The JSON `dsrsq eval` writes (and `dsrsq report` reads): the metrics with everything
/// needed to know where they came from.
#[allow(clippy::too_many_arguments)]
pub fn eval_record(
    model: &str,
    checkpoint: &std::path::Path,
    step: u64,
    data: &str,
    config: &crate::model::Config,
    device: &str,
    commit: Option<String>,
    wall_seconds: f64,
    report: &EvalReport,
) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "checkpoint": checkpoint.display().to_string(),
        "step": step,
        "data": data,
        "seed": config.train.seed,
        "config": config,
        "device": device,
        "commit": commit,
        "wall_seconds": wall_seconds,
        "metrics": report,
    })
}
