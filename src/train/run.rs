//! `dsrsq train`'s loop: a [`TrainSession`] stepped to the end under a progress bar, with
//! periodic held-out evaluation lines, checkpoints every `checkpoint_every` steps and at the
//! end, and `summary.json`, all while the session holds the run folder's lock.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use super::eval::EvalStats;
use super::fsio;
use super::session::{TrainOptions, TrainSession};
use super::TrainError;
use crate::backend::Backend;
use crate::data::{Dataset, Tok};

/// How a run ended (`summary.json` in the run folder holds it with the run's config).
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub steps: usize,
    pub resumed_from: Option<usize>,
    pub last_loss: f32,
    pub last_eval: Option<EvalStats>,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub checkpoint: Option<PathBuf>,
    /// What opening the run reported (see `TrainSession::notices`).
    pub notices: Vec<String>,
}

/// The model's vocabulary must hold every id the data can produce: the whole tokenizer,
/// unless every dataset draws from a known smaller range (synthetic tasks).
pub fn check_vocab(
    vocab_size: usize,
    tok: &Tok,
    datasets: &[&dyn Dataset],
) -> Result<(), TrainError> {
    let mut need = 0u64;
    let mut from = String::new();
    for ds in datasets {
        let (n, what) = match ds.token_bound() {
            Some(b) => (
                u64::from(b),
                format!("`{}` uses token ids below {b}", ds.describe()),
            ),
            None => (
                tok.vocab_size() as u64,
                format!(
                    "`{}` can hold any of the tokenizer's {} tokens",
                    ds.describe(),
                    tok.vocab_size()
                ),
            ),
        };
        if n > need {
            need = n;
            from = what;
        }
    }
    if need > vocab_size as u64 {
        return Err(TrainError::Setup(format!(
            "model.vocab_size is {vocab_size} but {from}"
        )));
    }
    Ok(())
}

/// Runs training on backend `be`.
pub fn train<B: Backend>(be: &B, opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let mut s = TrainSession::open(be, opts.clone())?;
    // On stderr, not through the bar: a hidden bar (--quiet, or no terminal) prints nothing.
    for n in s.notices() {
        eprintln!("note: {n}");
    }
    let bar = progress_bar(opts.progress, s.total_steps())?;
    bar.set_position(s.steps_done() as u64);
    let mut last_ck = None;
    while !s.finished() {
        let rec = s.step(be)?;
        if let (Some(ev), Some(_)) = (s.last_eval(), rec.eval_exact_match) {
            bar.println(eval_line(rec.step, &ev));
        }
        bar.set_message(format!(
            "loss {:.4} (task {:.4} ret {:.4} comp {:.4} cmp {:.4}) {:.0} tok/s",
            rec.loss, rec.task, rec.retrieval, rec.compression, rec.compute, rec.tokens_per_s
        ));
        bar.set_position(rec.step);
        if s.out_dir().is_some() && (s.checkpoint_due() || s.finished()) {
            last_ck = Some(s.save_checkpoint(be)?);
        }
    }
    bar.finish();
    let (seconds, tokens) = s.throughput();
    let summary = TrainSummary {
        steps: s.total_steps(),
        resumed_from: s.resumed_from(),
        last_loss: s.last_record().map_or(f32::NAN, |r| r.loss as f32),
        last_eval: s.last_eval(),
        seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
        checkpoint: last_ck,
        notices: s.notices().to_vec(),
    };
    if let Some(dir) = s.out_dir() {
        write_summary(&dir.join("summary.json"), be, opts, &summary)?;
    }
    Ok(summary)
}

fn progress_bar(show: bool, total: usize) -> Result<ProgressBar, TrainError> {
    let bar = if show {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}",
        )
        .map_err(|e| TrainError::Setup(e.to_string()))?,
    );
    Ok(bar)
}

fn eval_line(step: u64, ev: &EvalStats) -> String {
    format!(
        "step {step}: eval exact match {:.3}, row accuracy {:.3}, evidence kept {:.3} ({:.1}% of context) on {} held-out examples",
        ev.exact_match(),
        ev.row_accuracy(),
        ev.support_recall(),
        100.0 * ev.kept_fraction(),
        ev.examples
    )
}

/// `summary.json`, written atomically while the run folder is still locked.
fn write_summary<B: Backend>(
    path: &std::path::Path,
    be: &B,
    opts: &TrainOptions,
    s: &TrainSummary,
) -> Result<(), TrainError> {
    let json = serde_json::json!({
        "config": opts.config, "data": opts.data, "stages": opts.stages, "backend": be.name(),
        "steps": s.steps, "resumed_from": s.resumed_from,
        "last_loss": s.last_loss, "seconds": s.seconds,
        "tokens_per_second": s.tokens_per_second,
        "eval_exact_match": s.last_eval.map(|e| e.exact_match()),
        "eval_row_accuracy": s.last_eval.map(|e| e.row_accuracy()),
        "eval_examples": s.last_eval.map(|e| e.examples),
        "checkpoint": s.checkpoint.as_ref().map(|p| p.display().to_string()),
        "notices": s.notices,
        "commit": opts.commit,
    });
    fsio::write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, &json)?;
        std::io::Write::write_all(w, b"\n")
    })
    .map_err(|source| TrainError::Io {
        path: path.display().to_string(),
        source,
    })
}
