//! One optimizer step and its metrics record, shared by `dsrsq train`'s loop and the app's
//! step-wise session so both log the same keys from the same computation.

use std::time::Instant;

use serde_json::{json, Value};

use super::eval::EvalStats;
use super::metrics::peak_rss_bytes;
use super::optim::Optimizer;
use super::TrainError;
use crate::backend::Backend;
use crate::data::Example;
use crate::model::Model;

/// Forward, hybrid loss and backward on `examples` at training step `step` (0-based), a stop
/// on a non-finite loss term, then AdamW at learning rate `lr`; returns the step's record
/// (the keys of `metrics.jsonl`, `seconds` = `t0`'s elapsed time) and its total loss.
pub fn optimizer_step<B: Backend>(
    be: &B,
    model: &mut Model<B>,
    opt: &mut Optimizer<B>,
    examples: &[Example],
    step: usize,
    lr: f32,
    t0: Instant,
) -> Result<(Value, f32), TrainError> {
    let ts = Instant::now();
    let out = model.step(be, examples, step, true, false)?;
    if let Some((name, v)) = out.terms.non_finite() {
        return Err(TrainError::NonFinite {
            step,
            what: format!("loss term `{name}` = {v}"),
        });
    }
    let clip = model.cfg.train.grad_clip;
    let stats = opt.apply(be, &model.layout, &mut model.params, out.grads, clip, lr)?;
    be.sync()?;
    let tokens: usize = examples.iter().map(|e| e.ids.len()).sum();
    let dt = ts.elapsed().as_secs_f64();
    let t = out.terms;
    let mut rec = json!({
        "step": step + 1,
        "loss": t.total, "task": t.task, "retrieval": t.retrieval,
        "compression": t.compression, "compute": t.compute, "ramp": t.ramp,
        "lr": stats.lr, "grad_norm": stats.grad_norm, "clipped": stats.clipped,
        "tokens": tokens, "tokens_per_s": tokens as f64 / dt,
        "kept_fraction": out.ctx_kept as f64 / out.ctx_tokens.max(1) as f64,
        "seconds": t0.elapsed().as_secs_f64(),
        "step_seconds": dt,
    });
    if let Some((live, peak)) = be.device_bytes() {
        rec["device_bytes"] = json!(live);
        rec["device_peak_bytes"] = json!(peak);
    }
    if let Some(rss) = peak_rss_bytes() {
        rec["peak_rss_bytes"] = json!(rss);
    }
    Ok((rec, t.total))
}

/// Adds a held-out evaluation's figures to a step record.
pub fn add_eval(rec: &mut Value, ev: &EvalStats) {
    rec["eval_exact_match"] = json!(ev.exact_match());
    rec["eval_row_accuracy"] = json!(ev.row_accuracy());
    rec["eval_task_loss"] = json!(ev.task_loss);
    rec["eval_examples"] = json!(ev.examples);
    rec["eval_kept_fraction"] = json!(ev.kept_fraction());
    if ev.with_spans > 0 {
        rec["eval_support_recall"] = json!(ev.support_recall());
    }
}
