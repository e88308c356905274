//! ROUGE-L (sentence level) as Google's `rouge_score` package computes it with
//! `RougeScorer(['rougeL'], use_stemmer=False)`.
//!
//! Tokenizer (`rouge_score/tokenize.py`): lowercase (full Unicode, so "İ" gives "i" + a
//! combining dot and the Kelvin sign gives "k"), replace every run of characters outside
//! `[a-z0-9]` with a space, split, and keep only tokens matching `^[a-z0-9]+$`. The result is
//! exactly the maximal runs of ASCII lowercase letters and digits of the lowercased text:
//! "café" gives "caf", "don't" gives "don" and "t", and text with no ASCII alphanumerics gives
//! no tokens at all.
//!
//! Score (`_score_lcs`): with `lcs` the longest common subsequence of the two token lists,
//! precision = lcs / |prediction|, recall = lcs / |reference|,
//! F = 2PR / (P + R) (0 when P + R = 0); all three are 0 when either side has no tokens.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScore {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

/// `rouge_score`'s default tokenizer without stemming.
pub fn tokenize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Length of the longest common subsequence, in O(|a|·|b|) time and O(|b|) memory.
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `rouge_score.scoring.fmeasure`: the harmonic mean, 0 when both are 0.
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// ROUGE-L of `prediction` against one `reference` (`scorer.score(reference, prediction)`).
pub fn rouge_l(prediction: &str, reference: &str) -> RougeScore {
    let pred = tokenize(prediction);
    let refr = tokenize(reference);
    if pred.is_empty() || refr.is_empty() {
        return RougeScore::default();
    }
    let lcs = lcs_len(&refr, &pred) as f64;
    let precision = lcs / pred.len() as f64;
    let recall = lcs / refr.len() as f64;
    RougeScore {
        precision,
        recall,
        fmeasure: fmeasure(precision, recall),
    }
}
