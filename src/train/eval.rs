//! Accuracy on held-out examples during training, teacher-forced.
//!
//! Each target row's prediction is the argmax of its logits given the true prefix. An example
//! is an exact match when every one of its target rows is right: for a QA example (answer then
//! EOS) that is exactly the condition under which greedy decoding reproduces the answer and
//! stops, so this equals greedy-decoding exact match without a decoding loop. Row accuracy is
//! Zoology's MQAR metric (each queried value counts once).

use super::TrainError;
use crate::backend::Backend;
use crate::data::Example;
use crate::model::Model;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalStats {
    pub examples: usize,
    pub exact: usize,
    pub rows: usize,
    pub rows_correct: usize,
    pub task_loss: f64,
    /// Context tokens offered / kept after DSR and the ring.
    pub ctx_tokens: usize,
    pub ctx_kept: usize,
    /// Examples with supporting spans, and those whose every span token was kept: when the
    /// retriever drops the evidence the answer cannot be read, whatever the transformer does.
    pub with_spans: usize,
    pub spans_kept: usize,
}

impl EvalStats {
    pub fn exact_match(&self) -> f64 {
        self.exact as f64 / self.examples.max(1) as f64
    }
    pub fn row_accuracy(&self) -> f64 {
        self.rows_correct as f64 / self.rows.max(1) as f64
    }
    pub fn kept_fraction(&self) -> f64 {
        self.ctx_kept as f64 / self.ctx_tokens.max(1) as f64
    }
    /// Fraction of examples with spans whose evidence survived selection (NaN when none).
    pub fn support_recall(&self) -> f64 {
        self.spans_kept as f64 / self.with_spans as f64
    }
}

/// Evaluates `examples` in batches of `batch`.
pub fn evaluate<B: Backend>(
    be: &B,
    model: &Model<B>,
    examples: &[Example],
    batch: usize,
    step: usize,
) -> Result<EvalStats, TrainError> {
    let mut st = EvalStats::default();
    for chunk in examples.chunks(batch.max(1)) {
        let out = model.step(be, chunk, step, false, true)?;
        let Some(logits) = out.logits else {
            continue;
        };
        let logits = be.download(&logits)?;
        let vocab = model.cfg.model.vocab_size;
        let mut all_right = vec![true; chunk.len()];
        for (r, row) in logits.data.chunks_exact(vocab).enumerate() {
            let pred = argmax(row);
            let right = pred as i64 == out.batch.targets[r] as i64;
            st.rows += 1;
            st.rows_correct += right as usize;
            if !right {
                all_right[out.batch.target_seq[r] as usize] = false;
            }
        }
        st.examples += chunk.len();
        st.exact += all_right.iter().filter(|&&b| b).count();
        st.task_loss += out.terms.task as f64 * chunk.len() as f64;
        for (s, ex) in chunk.iter().enumerate() {
            if ex.spans.is_empty() {
                continue;
            }
            let b = &out.batch;
            let kept = &b.positions[s * b.l..][..b.kept_ctx[s]];
            st.with_spans += 1;
            let all = ex
                .spans
                .iter()
                .all(|&(a, e)| (a..e).all(|p| kept.binary_search(&(p as u32)).is_ok()));
            st.spans_kept += all as usize;
        }
        st.ctx_tokens += out.ctx_tokens;
        st.ctx_kept += out.ctx_kept;
    }
    st.task_loss /= st.examples.max(1) as f64;
    Ok(st)
}

/// Index of the largest value (the first on ties; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}
