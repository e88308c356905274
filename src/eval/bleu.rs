//! BLEU as sacrebleu (version [`SACREBLEU_VERSION`]) computes it with its defaults: one
//! reference per hypothesis, tokenizer `13a`, case kept, n-grams up to 4, `exp` smoothing.
//! [`corpus_bleu`] is `sacrebleu.corpus_bleu(hyps, [refs])` (no effective order);
//! [`sentence_bleu`] is `sacrebleu.sentence_bleu(hyp, [ref])` (effective order on).
//!
//! Pre-processing is `Tokenizer13a(line.rstrip())`:
//! 1. drop `<skipped>` and `-\n`, turn `\n` into a space, and if the line has a `&`, unescape
//!    `&quot;`, `&amp;`, `&lt;`, `&gt;` in that order (each a plain left-to-right replace);
//! 2. pad with one space each side, then apply `TokenizerRegexp`'s four substitutions in order,
//!    each as Python's `re.sub` does (leftmost, non-overlapping):
//!    a. every ASCII symbol except `'`, `,`, `-`, `.` (and every space) gets a space each side;
//!    b. `([^0-9])([\.,])` → `\1 \2 ` (period/comma split off unless after a digit);
//!    c. `([\.,])([^0-9])` → ` \1 \2` (… unless before a digit);
//!    d. `([0-9])(-)` → `\1 \2 ` (a dash after a digit);
//! 3. `' '.join(line.split())` with Python's whitespace set.
//!
//! Both patterns in b–d are two fixed characters wide, so `re.sub` is a left-to-right scan
//! that, on a match at `i`, emits the replacement and resumes at `i + 2`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{pytext, EvalError};

/// The sacrebleu release the golden fixture was made with; the signature names it.
pub const SACREBLEU_VERSION: &str = "2.6.0";
/// sacrebleu's `MAX_NGRAM_ORDER`.
pub const MAX_NGRAM_ORDER: usize = 4;
/// sacrebleu's `my_log(0)`: a floor so that a zero precision drives the score to 0.
const LOG_ZERO: f64 = -9_999_999_999.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BleuScore {
    /// 0..=100.
    pub score: f64,
    /// Matched n-grams per order (clipped by the reference counts).
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Percent per order, after smoothing; all 0 when nothing matched at all.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
    /// Whether orders with no hypothesis n-grams were left out of the mean.
    pub effective_order: bool,
}

impl BleuScore {
    /// sacrebleu 2.x's signature string for these settings, e.g.
    /// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub fn signature(&self) -> String {
        let eff = if self.effective_order { "yes" } else { "no" };
        format!("nrefs:1|case:mixed|eff:{eff}|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}")
    }
}

/// Characters of `TokenizerRegexp`'s first pattern `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

fn not_digit(c: char) -> bool {
    !c.is_ascii_digit()
}

/// `re.sub(r'(A)(B)', repl, s)` for single-character classes `A` and `B`.
fn sub_pair(
    s: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    repl: impl Fn(char, char, &mut Vec<char>),
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
            repl(s[i], s[i + 1], &mut out);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// sacrebleu's `Tokenizer13a` on one line (without the `rstrip` BLEU applies first).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut s: Vec<char> = Vec::with_capacity(line.len() * 2 + 2);
    for c in std::iter::once(' ')
        .chain(line.chars())
        .chain(std::iter::once(' '))
    {
        if is_13a_symbol(c) {
            s.extend([' ', c, ' ']);
        } else {
            s.push(c);
        }
    }
    let s = sub_pair(&s, not_digit, is_period_or_comma, |a, b, out| {
        out.extend([a, ' ', b, ' '])
    });
    let s = sub_pair(&s, is_period_or_comma, not_digit, |a, b, out| {
        out.extend([' ', a, ' ', b])
    });
    let s = sub_pair(
        &s,
        |c| c.is_ascii_digit(),
        |c| c == '-',
        |a, b, out| out.extend([a, ' ', b, ' ']),
    );
    let s: String = s.into_iter().collect();
    pytext::squeeze_spaces(&s)
}

/// BLEU's pre-processing of a segment: `rstrip` then 13a.
pub fn preprocess(line: &str) -> String {
    tokenize_13a(line.trim_end_matches(pytext::is_space))
}

/// One segment's sufficient statistics.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    hyp_len: u64,
    ref_len: u64,
    correct: [u64; MAX_NGRAM_ORDER],
    total: [u64; MAX_NGRAM_ORDER],
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

/// Counts of every n-gram of order 1..=MAX_NGRAM_ORDER, keyed by the token slice.
fn ngram_counts<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], u64> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_NGRAM_ORDER.min(tokens.len()) {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

fn segment_stats(hyp: &str, reference: &str) -> Stats {
    let hyp = preprocess(hyp);
    let reference = preprocess(reference);
    let hyp_toks: Vec<&str> = pytext::split(&hyp).collect();
    let ref_toks: Vec<&str> = pytext::split(&reference).collect();
    let ref_counts = ngram_counts(&ref_toks);
    let mut st = Stats {
        hyp_len: hyp_toks.len() as u64,
        ref_len: ref_toks.len() as u64,
        ..Stats::default()
    };
    for (gram, &count) in &ngram_counts(&hyp_toks) {
        let n = gram.len() - 1;
        st.total[n] += count;
        if let Some(&r) = ref_counts.get(gram) {
            st.correct[n] += count.min(r);
        }
    }
    st
}

/// `BLEU.compute_bleu` with `smooth_method='exp'`.
fn compute(st: &Stats, effective_order: bool) -> BleuScore {
    let (sys_len, ref_len) = (st.hyp_len, st.ref_len);
    let bp = if sys_len >= ref_len {
        1.0
    } else if sys_len > 0 {
        (1.0 - ref_len as f64 / sys_len as f64).exp()
    } else {
        0.0
    };
    let mut out = BleuScore {
        score: 0.0,
        counts: st.correct,
        totals: st.total,
        precisions: [0.0; MAX_NGRAM_ORDER],
        bp,
        sys_len,
        ref_len,
        effective_order,
    };
    if st.correct.iter().all(|&c| c == 0) {
        return out;
    }
    let mut smooth = 1.0f64;
    let mut eff_order = MAX_NGRAM_ORDER;
    for n in 0..MAX_NGRAM_ORDER {
        if st.total[n] == 0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        out.precisions[n] = if st.correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * st.total[n] as f64)
        } else {
            100.0 * st.correct[n] as f64 / st.total[n] as f64
        };
    }
    // Summed left to right like Python's `sum`, so the result is bit-identical.
    let log_sum = out.precisions[..eff_order]
        .iter()
        .map(|&p| if p == 0.0 { LOG_ZERO } else { p.ln() })
        .fold(0.0, |acc, l| acc + l);
    out.score = bp * (log_sum / eff_order as f64).exp();
    out
}

/// Corpus BLEU of `hyps` against one reference each (`sacrebleu.corpus_bleu(hyps, [refs])`).
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    refs: &[R],
) -> Result<BleuScore, EvalError> {
    if hyps.len() != refs.len() {
        return Err(EvalError::LengthMismatch {
            preds: hyps.len(),
            golds: refs.len(),
        });
    }
    if hyps.is_empty() {
        return Err(EvalError::Empty);
    }
    let mut total = Stats::default();
    for (h, r) in hyps.iter().zip(refs) {
        total.add(&segment_stats(h.as_ref(), r.as_ref()));
    }
    Ok(compute(&total, false))
}

/// Sentence BLEU of one hypothesis (`sacrebleu.sentence_bleu(hyp, [reference])`, which turns
/// effective order on: orders with no hypothesis n-grams are left out of the mean).
pub fn sentence_bleu(hyp: &str, reference: &str) -> BleuScore {
    compute(&segment_stats(hyp, reference), true)
}
