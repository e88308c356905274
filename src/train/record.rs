//! One training step's record: a line of `metrics.jsonl`, a checkpoint sidecar's `metrics`, a
//! point of the app's live curves and of the report's figures. Typed, so the writer and every
//! reader agree on the keys at compile time.
//!
//! Loss terms are f32 in the model and stored here widened to f64 (as JSON numbers), exactly as
//! the log has always held them.

use serde::{Deserialize, Serialize};

use super::eval::EvalStats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based: the number of optimizer steps done when the record was made.
    pub step: u64,
    pub loss: f64,
    pub task: f64,
    pub retrieval: f64,
    pub compression: f64,
    pub compute: f64,
    /// The HOF warm-up ramp's factor on the auxiliary terms at this step.
    pub ramp: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub clipped: bool,
    /// Tokens in the step's batch.
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub kept_fraction: f64,
    /// Since the session started.
    pub seconds: f64,
    pub step_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_exact_match: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_row_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_task_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_examples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_kept_fraction: Option<f64>,
    /// Only for data with supporting spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_support_recall: Option<f64>,
}

impl StepRecord {
    /// Adds a held-out evaluation's figures.
    pub fn add_eval(&mut self, ev: &EvalStats) {
        self.eval_exact_match = Some(ev.exact_match());
        self.eval_row_accuracy = Some(ev.row_accuracy());
        self.eval_task_loss = Some(ev.task_loss);
        self.eval_examples = Some(ev.examples as u64);
        self.eval_kept_fraction = Some(ev.kept_fraction());
        if ev.with_spans > 0 {
            self.eval_support_recall = Some(ev.support_recall());
        }
    }

    /// The device's memory figure where there is one, else the process's peak RSS.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.device_bytes.or(self.peak_rss_bytes)
    }

    /// A named numeric field (`"loss"`, `"tokens_per_s"`, ...), for plotting code that picks
    /// its series by name; `None` for a field this record lacks or an unknown name.
    pub fn get(&self, key: &str) -> Option<f64> {
        let opt = |v: Option<u64>| v.map(|x| x as f64);
        match key {
            "step" => Some(self.step as f64),
            "loss" => Some(self.loss),
            "task" => Some(self.task),
            "retrieval" => Some(self.retrieval),
            "compression" => Some(self.compression),
            "compute" => Some(self.compute),
            "ramp" => Some(self.ramp),
            "lr" => Some(self.lr),
            "grad_norm" => Some(self.grad_norm),
            "tokens" => Some(self.tokens as f64),
            "tokens_per_s" => Some(self.tokens_per_s),
            "kept_fraction" => Some(self.kept_fraction),
            "seconds" => Some(self.seconds),
            "step_seconds" => Some(self.step_seconds),
            "device_bytes" => opt(self.device_bytes),
            "device_peak_bytes" => opt(self.device_peak_bytes),
            "peak_rss_bytes" => opt(self.peak_rss_bytes),
            "eval_exact_match" => self.eval_exact_match,
            "eval_row_accuracy" => self.eval_row_accuracy,
            "eval_task_loss" => self.eval_task_loss,
            "eval_examples" => opt(self.eval_examples),
            "eval_kept_fraction" => self.eval_kept_fraction,
            "eval_support_recall" => self.eval_support_recall,
            _ => None,
        }
    }
}
