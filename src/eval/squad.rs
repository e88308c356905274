//! SQuAD v1.1 answer normalization, exact match and token F1, as the official
//! `evaluate-v1.1.py` computes them.
//!
//! Normalization is `white_space_fix(remove_articles(remove_punc(lower(s))))`, in that order:
//! - `lower`: full Unicode lowercasing (`str.lower()`; Rust's `to_lowercase` agrees, final
//!   sigma included, for every code point both Unicode versions assign).
//! - `remove_punc`: drops the 32 characters of Python's `string.punctuation`, i.e. ASCII
//!   punctuation only ("—", "“" and "…" stay).
//! - `remove_articles`: `re.sub(r'\b(a|an|the)\b', ' ', text)`. Python's `\b` is Unicode-aware:
//!   a word character is any letter or number (general category L* or N*) or `_` — not Rust's
//!   `char::is_alphanumeric`, which also counts marks such as Arabic harakat and circled
//!   letters. `\b(a|an|the)\b` matches exactly the maximal runs of word characters that equal
//!   an article, so that is how it is done here.
//! - `white_space_fix`: `' '.join(text.split())` with Python's whitespace set.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::pytext;

/// A maximal run of Python `\w` characters (letters, numbers, underscore).
static WORD_RUN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[\p{L}\p{N}_]+").ok());

const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The byte ranges of the maximal word runs of `text`.
fn word_runs(text: &str) -> Vec<(usize, usize)> {
    if let Some(re) = WORD_RUN.as_ref() {
        return re.find_iter(text).map(|m| (m.start(), m.end())).collect();
    }
    // Only reached if the constant pattern failed to compile (a test rules that out); the
    // std predicate differs from Python's `\w` only on combining marks and a few symbols.
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, text.len()));
    }
    runs
}

/// True when the word-run pattern compiled (exposed for the test that guards the fallback).
pub fn word_pattern_compiled() -> bool {
    WORD_RUN.is_some()
}

fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in word_runs(text) {
        if ARTICLES.contains(&&text[start..end]) {
            out.push_str(&text[last..start]);
            out.push(' ');
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The official SQuAD v1.1 `normalize_answer`.
pub fn normalize_answer(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punc: String = lowered
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    pytext::squeeze_spaces(&remove_articles(&no_punc))
}

/// Normalized answer tokens. The normalized string is already single-space separated.
fn tokens(s: &str) -> Vec<&str> {
    s.split(' ').filter(|t| !t.is_empty()).collect()
}

/// 1.0 when the normalized answers are equal, else 0.0 (two answers that normalize to the
/// empty string, e.g. "the" and "", match).
pub fn exact_match(pred: &str, gold: &str) -> f64 {
    if normalize_answer(pred) == normalize_answer(gold) {
        1.0
    } else {
        0.0
    }
}

/// Token-level F1 over bags of normalized tokens (multiset intersection). As in the v1.1
/// script it is 0 whenever no token is shared — including when both sides normalize to
/// nothing, where exact match is 1.
pub fn f1(pred: &str, gold: &str) -> f64 {
    let pred_norm = normalize_answer(pred);
    let gold_norm = normalize_answer(gold);
    let pred_toks = tokens(&pred_norm);
    let gold_toks = tokens(&gold_norm);
    let mut gold_counts: HashMap<&str, usize> = HashMap::new();
    for t in &gold_toks {
        *gold_counts.entry(t).or_default() += 1;
    }
    // Taking each predicted token from the gold bag while any are left sums min(count_p,
    // count_g) over tokens: Python's `sum((Counter(p) & Counter(g)).values())`.
    let mut num_same = 0usize;
    for t in &pred_toks {
        if let Some(left) = gold_counts.get_mut(t) {
            if *left > 0 {
                *left -= 1;
                num_same += 1;
            }
        }
    }
    if num_same == 0 {
        return 0.0;
    }
    // Same operations in the same order as the script, so the f64 results are identical.
    let precision = num_same as f64 / pred_toks.len() as f64;
    let recall = num_same as f64 / gold_toks.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// `metric_max_over_ground_truths`: the best score of `pred` against any gold. With no gold
/// at all (which the official script cannot be given) the score is 0.
pub fn max_over_ground_truths<S: AsRef<str>>(
    metric: impl Fn(&str, &str) -> f64,
    pred: &str,
    golds: &[S],
) -> f64 {
    golds
        .iter()
        .map(|g| metric(pred, g.as_ref()))
        .fold(None, |best: Option<f64>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        })
        .unwrap_or(0.0)
}

/// Exact match against the best of several golds.
pub fn exact_match_max<S: AsRef<str>>(pred: &str, golds: &[S]) -> f64 {
    max_over_ground_truths(exact_match, pred, golds)
}

/// F1 against the best of several golds.
pub fn f1_max<S: AsRef<str>>(pred: &str, golds: &[S]) -> f64 {
    max_over_ground_truths(f1, pred, golds)
}
