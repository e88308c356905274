//! One optimizer step and its metrics record, shared by `dsrsq train`'s loop and the app's
//! step-wise session so both log the same keys from the same computation.

use std::time::Instant;

use super::metrics::peak_rss_bytes;
use super::optim::Optimizer;
use super::record::StepRecord;
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
) -> Result<(StepRecord, f32), TrainError> {
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
    let (device_bytes, device_peak_bytes) = be.device_bytes().unzip();
    let rec = StepRecord {
        step: step as u64 + 1,
        loss: f64::from(t.total),
        task: f64::from(t.task),
        retrieval: f64::from(t.retrieval),
        compression: f64::from(t.compression),
        compute: f64::from(t.compute),
        ramp: f64::from(t.ramp),
        lr: f64::from(stats.lr),
        grad_norm: f64::from(stats.grad_norm),
        clipped: stats.clipped,
        tokens: tokens as u64,
        tokens_per_s: tokens as f64 / dt,
        kept_fraction: out.ctx_kept as f64 / out.ctx_tokens.max(1) as f64,
        seconds: t0.elapsed().as_secs_f64(),
        step_seconds: dt,
        device_bytes,
        device_peak_bytes,
        peak_rss_bytes: peak_rss_bytes(),
        eval_exact_match: None,
        eval_row_accuracy: None,
        eval_task_loss: None,
        eval_examples: None,
        eval_kept_fraction: None,
        eval_support_recall: None,
    };
    Ok((rec, t.total))
}
