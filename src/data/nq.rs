//! Natural Questions, the official "v1.0-simplified" JSONL (one example per line:
//! `example_id`, `question_text`, `document_text`, `annotations[]` with `long_answer`,
//! `short_answers[]` and `yes_no_answer` as whitespace-token spans of `document_text`).
//!
//! Streamed line by line (the real files are GBs). The document's HTML tokens (`<P>`,
//! `</Td>`, `<Th_colspan="2">`: any token starting with `<` and ending with `>`) are removed
//! and the rest joined with single spaces as the context; answer spans are moved through the
//! old→new token index map. Which annotation counts (dev has five per question):
//! 1. the first with short answers: answers = their texts, support = short spans then the
//!    long answer span;
//! 2. else the first with `yes_no_answer` YES/NO: answer "yes"/"no", support = long span;
//! 3. else the first with a long answer only: answer = the long answer's text (a passage;
//!    NQ has no shorter gold), support = long span;
//! 4. else unanswerable (no long answer and no short answers anywhere): kept, flagged,
//!    answers empty.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::error::{DataError, Loc};
use super::json::{bad_line, for_each_line, Place};
use super::record::{LoadOptions, LoadReport, QaRecord};

/// Which kind of gold answer a record has (see the module doc for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NqAnswer {
    Short,
    YesNo,
    LongOnly,
    None,
}

/// An NQ example: the common record plus the NQ-specific spans, in the file's ORIGINAL
/// whitespace-token coordinates (before HTML removal), for tracing back to the source.
#[derive(Debug, Clone, PartialEq)]
pub struct NqRecord {
    pub qa: QaRecord,
    pub kind: NqAnswer,
    /// Whitespace tokens of `document_text`, HTML included.
    pub doc_tokens: usize,
    /// Tokens left after HTML removal (the context's words).
    pub text_tokens: usize,
    pub long_answer: Option<(usize, usize)>,
    pub short_answers: Vec<(usize, usize)>,
}

/// Only the fields used; serde skips the rest (notably the large `long_answer_candidates`)
/// without building values for them.
#[derive(Deserialize)]
struct Line {
    example_id: Option<Value>,
    question_text: Option<Value>,
    document_text: Option<Value>,
    annotations: Option<Value>,
}

fn is_html(t: &str) -> bool {
    t.len() >= 2 && t.starts_with('<') && t.ends_with('>')
}

/// A `[start, end)` token span of an annotation, checked against the document; `None` for
/// NQ's "absent" marker (start -1).
fn span(
    at: &Place,
    o: &serde_json::Map<String, Value>,
    field: &str,
    n: usize,
) -> Result<Option<(usize, usize)>, DataError> {
    let s = at.get_int(o, field, "start_token")?;
    let e = at.get_int(o, field, "end_token")?;
    if s == -1 && e == -1 {
        return Ok(None);
    }
    if s < 0 || e <= s || e as u64 > n as u64 {
        return Err(at.err(
            format!("{field}.start_token"),
            format!("span [{s}, {e}) out of range for a document of {n} tokens"),
        ));
    }
    Ok(Some((s as usize, e as usize)))
}

struct Annotation {
    long: Option<(usize, usize)>,
    short: Vec<(usize, usize)>,
    yes_no: Option<bool>,
}

fn annotation(at: &Place, v: &Value, field: &str, n: usize) -> Result<Annotation, DataError> {
    let o = at.obj(v, field)?;
    let la = at.get_obj(o, field, "long_answer")?;
    let long = span(at, la, &format!("{field}.long_answer"), n)?;
    let mut short = Vec::new();
    for (j, s) in at.get_arr(o, field, "short_answers")?.iter().enumerate() {
        let f = format!("{field}.short_answers[{j}]");
        let so = at.obj(s, &f)?;
        match span(at, so, &f, n)? {
            Some(sp) => short.push(sp),
            None => return Err(at.err(f, "short answer without a span")),
        }
    }
    let yes_no = match at.get_str(o, field, "yes_no_answer")? {
        "YES" => Some(true),
        "NO" => Some(false),
        "NONE" => None,
        other => {
            return Err(at.err(
                format!("{field}.yes_no_answer"),
                format!("expected YES, NO or NONE, found {other:?}"),
            ))
        }
    };
    Ok(Annotation {
        long,
        short,
        yes_no,
    })
}

/// Parses one line (`line_no` 1-based, for errors).
pub fn parse_line(bytes: &[u8], path: &str, line_no: usize) -> Result<NqRecord, DataError> {
    let line: Line = serde_json::from_slice(bytes).map_err(|e| bad_line(path, line_no, &e))?;
    let at = Place {
        path,
        at: Loc::Line(line_no),
    };
    let need = |v: Option<Value>, f: &str| v.ok_or_else(|| at.err(f, "missing"));
    let id = match need(line.example_id, "example_id")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s,
        _ => return Err(at.err("example_id", "expected a number or a string")),
    };
    let question = need(line.question_text, "question_text")?;
    let question = at.str_at(&question, "question_text")?.to_string();
    if question.trim().is_empty() {
        return Err(at.err("question_text", "empty"));
    }
    let doc = need(line.document_text, "document_text")?;
    let doc = at.str_at(&doc, "document_text")?;
    let anns = need(line.annotations, "annotations")?;
    let anns = at.arr(&anns, "annotations")?;

    let tokens: Vec<&str> = doc.split(' ').collect();
    let n = tokens.len();
    // new_index[i] = kept tokens before old token i (n + 1 entries, so span ends map too).
    let mut new_index = Vec::with_capacity(n + 1);
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut context = String::with_capacity(doc.len());
    for t in &tokens {
        new_index.push(starts.len());
        if !is_html(t) {
            if !context.is_empty() {
                context.push(' ');
            }
            starts.push(context.len());
            context.push_str(t);
            ends.push(context.len());
        }
    }
    new_index.push(starts.len());
    let text_tokens = starts.len();
    // Byte range in `context` of the kept tokens of an original span; None if all HTML.
    let bytes_of = |(s, e): (usize, usize)| {
        let (a, b) = (new_index[s], new_index[e]);
        (a < b).then(|| (starts[a], ends[b - 1]))
    };

    let parsed = anns
        .iter()
        .enumerate()
        .map(|(i, a)| annotation(&at, a, &format!("annotations[{i}]"), n))
        .collect::<Result<Vec<_>, _>>()?;
    let pick = |f: &dyn Fn(&Annotation) -> bool| parsed.iter().position(f);
    let (kind, chosen) = if let Some(i) = pick(&|a| !a.short.is_empty()) {
        (NqAnswer::Short, Some(i))
    } else if let Some(i) = pick(&|a| a.yes_no.is_some()) {
        (NqAnswer::YesNo, Some(i))
    } else if let Some(i) = pick(&|a| a.long.is_some()) {
        (NqAnswer::LongOnly, Some(i))
    } else {
        (NqAnswer::None, None)
    };

    let mut answers = Vec::new();
    let mut support = Vec::new();
    let (mut long_answer, mut short_answers) = (None, Vec::new());
    if let Some(i) = chosen {
        let a = &parsed[i];
        long_answer = a.long;
        short_answers = a.short.clone();
        for (j, &sp) in a.short.iter().enumerate() {
            let Some((bs, be)) = bytes_of(sp) else {
                return Err(at.err(
                    format!("annotations[{i}].short_answers[{j}]"),
                    "span holds only HTML tokens",
                ));
            };
            let text = context[bs..be].to_string();
            if !answers.contains(&text) {
                answers.push(text);
            }
            support.push((bs, be));
        }
        if let Some(yes) = a.yes_no.filter(|_| kind == NqAnswer::YesNo) {
            answers.push(if yes { "yes" } else { "no" }.to_string());
        }
        if let Some(range) = a.long.and_then(bytes_of) {
            support.push(range);
            if kind == NqAnswer::LongOnly {
                answers.push(context[range.0..range.1].to_string());
            }
        } else if kind == NqAnswer::LongOnly {
            return Err(at.err(
                format!("annotations[{i}].long_answer"),
                "span holds only HTML tokens",
            ));
        }
    }
    Ok(NqRecord {
        qa: QaRecord {
            group: id.clone(),
            id,
            question,
            context,
            unanswerable: answers.is_empty(),
            answers,
            support,
        },
        kind,
        doc_tokens: n,
        text_tokens,
        long_answer,
        short_answers,
    })
}

/// Streams a file through `f`, one record at a time, applying the skip policy.
pub fn for_each(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
    f: impl FnMut(NqRecord) -> Result<(), DataError>,
) -> Result<LoadReport, DataError> {
    let label = path.as_ref().display().to_string();
    let file = File::open(path.as_ref()).map_err(|e| DataError::io(&label, e))?;
    for_each_from(BufReader::new(file), &label, opts, f)
}

/// [`for_each`] over any reader; `label` names it in errors.
pub fn for_each_from<R: BufRead>(
    r: R,
    label: &str,
    opts: &LoadOptions,
    mut f: impl FnMut(NqRecord) -> Result<(), DataError>,
) -> Result<LoadReport, DataError> {
    let mut report = LoadReport::default();
    for_each_line(r, label, |line_no, _, bytes| {
        match report.take(opts, parse_line(bytes, label, line_no))? {
            Some(rec) => f(rec),
            None => Ok(()),
        }
    })?;
    Ok(report)
}

/// Every record of a (small) file in memory. For full-size files use [`for_each`].
pub fn read(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<(Vec<NqRecord>, LoadReport), DataError> {
    let mut out = Vec::new();
    let report = for_each(path, opts, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok((out, report))
}
