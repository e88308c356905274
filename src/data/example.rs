//! Building and checking [`Example`]s, and cutting long contexts to a window.

use super::error::ExampleError;
use super::tokenizer::Specials;
use super::Example;

impl Example {
    /// `[BOS] ctx [SEP] question [SEP] answer [EOS]`, scoring every answer token and EOS.
    ///
    /// `spans` are supporting spans in `ctx` coordinates; they shift by one for BOS, which
    /// counts as context (`n_ctx = 1 + ctx.len()`). The SEP before the answer sits at `q1`
    /// and predicts the first answer token, so targets cover `[q1, len - 1)`.
    /// Infallible by construction except for out-of-range spans, which [`Example::validate`]
    /// reports.
    pub fn qa(
        sp: Specials,
        ctx: &[u32],
        question: &[u32],
        answer: &[u32],
        spans: &[(usize, usize)],
        answers: Vec<String>,
    ) -> Example {
        let n_ctx = 1 + ctx.len();
        let q0 = n_ctx + 1;
        let q1 = q0 + question.len();
        let mut ids = Vec::with_capacity(q1 + answer.len() + 2);
        ids.push(sp.bos);
        ids.extend_from_slice(ctx);
        ids.push(sp.sep);
        ids.extend_from_slice(question);
        ids.push(sp.sep);
        ids.extend_from_slice(answer);
        ids.push(sp.eos);
        let mut targets = vec![-1i32; ids.len()];
        for p in q1..ids.len() - 1 {
            targets[p] = ids[p + 1] as i32;
        }
        Example {
            ids,
            n_ctx,
            q0,
            q1,
            targets,
            spans: spans.iter().map(|&(s, e)| (s + 1, e + 1)).collect(),
            answers,
        }
    }

    /// Checks every layout invariant the model relies on.
    pub fn validate(&self) -> Result<(), ExampleError> {
        let len = self.ids.len();
        if self.targets.len() != len {
            return Err(ExampleError::Lengths {
                ids: len,
                targets: self.targets.len(),
            });
        }
        if !(1 <= self.n_ctx && self.n_ctx <= self.q0 && self.q0 < self.q1 && self.q1 < len) {
            return Err(ExampleError::Regions {
                n_ctx: self.n_ctx,
                q0: self.q0,
                q1: self.q1,
                len,
            });
        }
        let mut scored = 0usize;
        for (pos, &t) in self.targets.iter().enumerate() {
            if t == -1 {
                continue;
            }
            if pos < self.q1 {
                return Err(ExampleError::TargetBeforeAnswer { pos, q1: self.q1 });
            }
            let expected = self.ids.get(pos + 1).map_or(-1, |&id| i64::from(id));
            if i64::from(t) != expected {
                return Err(ExampleError::TargetMismatch {
                    pos,
                    target: t,
                    expected,
                });
            }
            scored += 1;
        }
        if scored == 0 {
            return Err(ExampleError::NoTargets);
        }
        for &(start, end) in &self.spans {
            if start >= end || end > self.n_ctx {
                return Err(ExampleError::Span {
                    start,
                    end,
                    n_ctx: self.n_ctx,
                });
            }
        }
        Ok(())
    }

    /// Number of scored positions.
    pub fn n_targets(&self) -> usize {
        self.targets.iter().filter(|&&t| t != -1).count()
    }
}

/// A `[start, end)` window of a token sequence, chosen by [`window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub end: usize,
    /// True when the window is shorter than the sequence (something was cut).
    pub truncated: bool,
}

/// The window of at most `max_len` of `len` tokens to keep.
///
/// Keeps the start when the sequence fits or every span fits in the first `max_len` tokens
/// (the document's own beginning is the least surprising cut). Otherwise it keeps all spans
/// if they fit together, else the FIRST span (loaders list the most specific span first,
/// e.g. NQ's short answer before its long answer), centred, clamped to the sequence.
/// A span longer than `max_len` keeps its beginning.
pub fn window(len: usize, max_len: usize, spans: &[(usize, usize)]) -> Window {
    if len <= max_len {
        return Window {
            start: 0,
            end: len,
            truncated: false,
        };
    }
    let union_end = spans.iter().map(|s| s.1).max().unwrap_or(0);
    let union_start = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let (a, b) = if union_end <= max_len {
        (0, 0)
    } else if union_end - union_start <= max_len {
        (union_start, union_end)
    } else {
        spans[0]
    };
    let start = if b - a >= max_len {
        a
    } else {
        let slack = max_len - (b - a);
        a.saturating_sub(slack / 2).min(len - max_len)
    };
    Window {
        start,
        end: start + max_len,
        truncated: true,
    }
}

/// `spans` moved into window coordinates, clipped to it; spans entirely outside are dropped.
pub fn spans_in_window(spans: &[(usize, usize)], w: Window) -> Vec<(usize, usize)> {
    spans
        .iter()
        .filter_map(|&(s, e)| {
            let (s, e) = (s.max(w.start), e.min(w.end));
            (s < e).then_some((s - w.start, e - w.start))
        })
        .collect()
}
