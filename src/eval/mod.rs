//! Task metrics for evaluating generated answers, each matching a reference implementation
//! to the last bit (golden values from the reference code live in `tests/data/eval_metrics/`):
//!
//! - `squad`: SQuAD v1.1 answer normalization, exact match and token F1, with the maximum
//!   over several gold answers — the official `evaluate-v1.1.py` functions.
//! - `rouge`: ROUGE-L precision / recall / F from the longest common subsequence of tokens —
//!   Google's `rouge_score` 0.1.2, `RougeScorer(['rougeL'], use_stemmer=False)`.
//! - `bleu`: corpus and sentence BLEU with the `13a` tokenizer, `exp` smoothing, 4-grams and
//!   the reproducibility signature — sacrebleu 2.6.0's `corpus_bleu` / `sentence_bleu`
//!   defaults.
//!
//! Choices:
//! - Python's text semantics are reproduced where the references depend on them: `str.split`
//!   whitespace (`pytext`), full Unicode `str.lower`, and `re`'s Unicode `\b` for articles.
//!   Unicode tables are Rust's (newer than CPython 3.11's 14.0), so characters assigned after
//!   Unicode 14 may be cased or classed differently; no other divergence is known.
//! - EM, F1 and ROUGE-L are in [0, 1]; BLEU is in [0, 100] as sacrebleu reports it.
//! - [`score_all`] takes every gold answer for EM and F1 (max over golds, as SQuAD does) but
//!   only the FIRST gold as the reference for ROUGE-L and BLEU: it keeps BLEU's reference
//!   count fixed at one (the signature says `nrefs:1`) and ROUGE-L comparable with it.
//! - sacrebleu raises on an empty corpus; here that, a length mismatch, and an item with no
//!   gold answer are [`EvalError`]s.

pub mod bleu;
pub mod error;
pub mod generate;
pub mod harness;
mod pytext;
pub mod report;
pub mod reproduce;
pub mod rouge;
pub mod squad;
pub mod stream;
pub mod sweep;

pub use bleu::{corpus_bleu, sentence_bleu, BleuScore};
pub use error::EvalError;
pub use rouge::{rouge_l, RougeScore};
pub use squad::{exact_match, exact_match_max, f1, f1_max, normalize_answer};

use serde::{Deserialize, Serialize};

/// Scores of a prediction set; means are plain averages over items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// Mean SQuAD exact match (max over golds), in [0, 1].
    pub exact_match: f64,
    /// Mean SQuAD token F1 (max over golds), in [0, 1].
    pub f1: f64,
    /// Mean ROUGE-L F-measure against the first gold, in [0, 1].
    pub rouge_l_f: f64,
    /// Corpus BLEU against the first gold, in [0, 100].
    pub bleu: f64,
    pub count: usize,
}

/// Scores `preds[i]` against `golds[i]` for every metric.
pub fn score_all(preds: &[String], golds: &[Vec<String>]) -> Result<TaskScores, EvalError> {
    if preds.len() != golds.len() {
        return Err(EvalError::LengthMismatch {
            preds: preds.len(),
            golds: golds.len(),
        });
    }
    if preds.is_empty() {
        return Err(EvalError::Empty);
    }
    let mut refs = Vec::with_capacity(golds.len());
    for (index, g) in golds.iter().enumerate() {
        refs.push(g.first().ok_or(EvalError::NoGold { index })?.as_str());
    }
    let (mut em, mut f, mut rl) = (0.0, 0.0, 0.0);
    for ((p, g), r) in preds.iter().zip(golds).zip(&refs) {
        em += exact_match_max(p, g);
        f += f1_max(p, g);
        rl += rouge_l(p, r).fmeasure;
    }
    let n = preds.len() as f64;
    Ok(TaskScores {
        exact_match: em / n,
        f1: f / n,
        rouge_l_f: rl / n,
        bleu: corpus_bleu(preds, &refs)?.score,
        count: preds.len(),
    })
}
