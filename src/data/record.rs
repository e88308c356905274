//! The record every loader produces, the skip-and-count policy for bad input, and the
//! conversion of a record into an [`Example`].

use super::error::DataError;
use super::example::{spans_in_window, window};
use super::tokenizer::Tok;
use super::Example;

/// The answer text an unanswerable question is trained to produce. One word piece sequence
/// that no dataset uses as a real answer (unlike "no", which is NQ's yes/no answer), so the
/// model's "cannot answer" is distinct. `Example::answers` stays EMPTY for these, which is
/// what marks them unanswerable for scoring.
pub const UNANSWERABLE: &str = "unanswerable";

/// One question with its (optional) context, in text form.
#[derive(Debug, Clone, PartialEq)]
pub struct QaRecord {
    /// Dataset id (SQuAD question id, NQ `example_id`, `nq-open:LINE` for NQ-open).
    pub id: String,
    /// Records with the same group share a context; train/eval splits go by group so no
    /// context is seen in both (SQuAD: `title#paragraph`, NQ: the example id).
    pub group: String,
    pub question: String,
    /// Empty for closed-book data (NQ-open).
    pub context: String,
    /// Gold answers, most authoritative first; empty iff `unanswerable`.
    pub answers: Vec<String>,
    /// Supporting spans as BYTE ranges `[start, end)` of `context`, most specific first.
    pub support: Vec<(usize, usize)>,
    pub unanswerable: bool,
}

/// How loaders treat malformed records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Skip malformed records (counting them in the [`LoadReport`]) instead of failing on
    /// the first one. I/O errors always fail.
    pub skip_bad: bool,
}

/// How many reasons a report keeps verbatim (the count is always complete).
pub const REPORT_REASONS: usize = 5;

/// What a load did: records kept, records skipped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub records: usize,
    pub skipped: usize,
    /// The first [`REPORT_REASONS`] skip reasons (file, place, field, problem).
    pub reasons: Vec<String>,
}

impl LoadReport {
    /// Applies the skip policy to one record's outcome: `Ok(Some(r))` to keep, `Ok(None)` when
    /// skipped (counted), `Err` when the error is fatal or skipping is off.
    pub(crate) fn take<T>(
        &mut self,
        opts: &LoadOptions,
        r: Result<T, DataError>,
    ) -> Result<Option<T>, DataError> {
        match r {
            Ok(v) => {
                self.records += 1;
                Ok(Some(v))
            }
            Err(e) if opts.skip_bad && e.is_record_error() => {
                self.skip(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// [`LoadReport::take`] for a container (an article or paragraph): skipping it counts
    /// once, keeping it counts nothing (its records are counted one by one).
    pub(crate) fn take_unit<T>(
        &mut self,
        opts: &LoadOptions,
        r: Result<T, DataError>,
    ) -> Result<Option<T>, DataError> {
        let kept = self.records;
        let out = self.take(opts, r);
        self.records = kept;
        out
    }

    pub(crate) fn skip(&mut self, reason: String) {
        self.skipped += 1;
        if self.reasons.len() < REPORT_REASONS {
            self.reasons.push(reason);
        }
    }
}

/// An [`Example`] with what the conversion had to do to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub example: Example,
    /// The context was longer than the limit and cut to a window.
    pub truncated: bool,
}

impl QaRecord {
    /// Tokenizes into the model layout. The context is cut so that `n_ctx <= max_ctx` (BOS
    /// counted, like every `ctx` of the data layer), keeping a window around the supporting
    /// spans ([`window`]); the answer tokens are those of
    /// the first gold answer, or of [`UNANSWERABLE`].
    pub fn to_example(&self, tok: &Tok, max_ctx: usize) -> Result<Converted, DataError> {
        let (ctx_ids, offsets) = tok.encode_with_offsets(&self.context)?;
        let spans: Vec<(usize, usize)> = self
            .support
            .iter()
            .filter_map(|&(s, e)| Tok::byte_span_to_tokens(&offsets, s, e))
            .collect();
        let w = window(ctx_ids.len(), max_ctx.saturating_sub(1), &spans);
        let spans = spans_in_window(&spans, w);
        let question = tok.encode(&self.question)?;
        if question.is_empty() {
            return Err(DataError::invalid(
                format!("record {}", self.id),
                "question has no tokens",
            ));
        }
        let answer_text = self.answers.first().map_or(UNANSWERABLE, String::as_str);
        let answer = tok.encode(answer_text)?;
        let example = Example::qa(
            tok.specials(),
            &ctx_ids[w.start..w.end],
            &question,
            &answer,
            &spans,
            self.answers.clone(),
        );
        example.validate()?;
        Ok(Converted {
            example,
            truncated: w.truncated,
        })
    }
}
