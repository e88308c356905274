//! SQuAD v1.1 / v2.0 JSON (`data[].paragraphs[].qas[]`). `answer_start` is a CHARACTER
//! index (Python string index) into `context`; it is turned into a byte span and checked:
//! `context[answer_start..]` must start with the answer text, else the record is an error
//! naming the question id. v2.0's `is_impossible` questions are kept and flagged
//! unanswerable (answers empty; their `plausible_answers` are not gold and are ignored);
//! v1.1 has no `is_impossible`, so it defaults to false.
//!
//! Errors name the JSON path, e.g. `data[0].paragraphs[3].qas[2] (id 56dd…)` and the field.
//! With `skip_bad`, the unit skipped is the smallest one that is broken (a question, or a
//! whole paragraph / article when its own fields are), each counted once.

use std::path::Path;

use serde_json::Value;

use super::error::{DataError, Loc};
use super::json::{Obj, Place};
use super::record::{LoadOptions, LoadReport, QaRecord};

/// All questions of a SQuAD file, in file order.
pub fn read(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<(Vec<QaRecord>, LoadReport), DataError> {
    let label = path.as_ref().display().to_string();
    let text = std::fs::read(path.as_ref()).map_err(|e| DataError::io(&label, e))?;
    read_slice(&text, &label, opts)
}

/// [`read`] over bytes in memory; `label` names them in errors.
pub fn read_slice(
    bytes: &[u8],
    label: &str,
    opts: &LoadOptions,
) -> Result<(Vec<QaRecord>, LoadReport), DataError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| DataError::Json {
        path: label.to_string(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let top = Place {
        path: label,
        at: Loc::Path("top level".to_string()),
    };
    let data = top.get_arr(top.obj(&root, "")?, "", "data")?;
    let mut out = Vec::new();
    let mut report = LoadReport::default();
    for (ai, article) in data.iter().enumerate() {
        let at = Place {
            path: label,
            at: Loc::Path(format!("data[{ai}]")),
        };
        let parsed = at.obj(article, "").and_then(|a| {
            Ok((
                at.get_str(a, "", "title")?,
                at.get_arr(a, "", "paragraphs")?,
            ))
        });
        let Some((title, paragraphs)) = report.take_unit(opts, parsed)? else {
            continue;
        };
        for (pi, para) in paragraphs.iter().enumerate() {
            let ppath = format!("data[{ai}].paragraphs[{pi}]");
            let at = Place {
                path: label,
                at: Loc::Path(ppath.clone()),
            };
            let parsed = at
                .obj(para, "")
                .and_then(|p| Ok((at.get_str(p, "", "context")?, at.get_arr(p, "", "qas")?)));
            let Some((context, qas)) = report.take_unit(opts, parsed)? else {
                continue;
            };
            let chars = char_starts(context);
            let group = format!("{title}#{pi}");
            for (qi, qa) in qas.iter().enumerate() {
                let rec = question(label, &format!("{ppath}.qas[{qi}]"), qa, context, &chars).map(
                    |mut r| {
                        r.group.clone_from(&group);
                        r
                    },
                );
                if let Some(r) = report.take(opts, rec)? {
                    out.push(r);
                }
            }
        }
    }
    Ok((out, report))
}

/// Byte offset of every character of `s`, plus `s.len()` (so index `n_chars` is valid).
fn char_starts(s: &str) -> Vec<usize> {
    s.char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()))
        .collect()
}

fn question(
    label: &str,
    qpath: &str,
    v: &Value,
    context: &str,
    chars: &[usize],
) -> Result<QaRecord, DataError> {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
    let at = Place {
        path: label,
        at: Loc::Path(format!("{qpath} (id {id})")),
    };
    let o: &Obj = at.obj(v, "")?;
    let id = at.get_str(o, "", "id")?;
    let q = at.get_str(o, "", "question")?;
    if q.trim().is_empty() {
        return Err(at.err("question", "empty"));
    }
    let impossible = at.opt_bool(o, "", "is_impossible", false)?;
    let list = at.get_arr(o, "", "answers")?;
    if impossible && !list.is_empty() {
        return Err(at.err("answers", "non-empty although is_impossible is true"));
    }
    if !impossible && list.is_empty() {
        return Err(at.err(
            "answers",
            "empty although the question is not is_impossible",
        ));
    }
    let mut answers: Vec<String> = Vec::new();
    let mut support = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let f = format!("answers[{i}]");
        let a = at.obj(a, &f)?;
        let text = at.get_str(a, &f, "text")?;
        let start = at.get_int(a, &f, "answer_start")?;
        let field = format!("{f}.answer_start");
        let b = usize::try_from(start)
            .ok()
            .and_then(|c| chars.get(c).copied())
            .ok_or_else(|| {
                at.err(
                    &field,
                    format!(
                        "{start} out of range for a context of {} characters",
                        chars.len() - 1
                    ),
                )
            })?;
        if text.is_empty() || !context[b..].starts_with(text) {
            let found: String = context[b..]
                .chars()
                .take(text.chars().count().max(1))
                .collect();
            return Err(at.err(
                field,
                format!("context at {start} reads {found:?}, not the answer text {text:?}"),
            ));
        }
        let span = (b, b + text.len());
        if !support.contains(&span) {
            support.push(span);
        }
        if !answers.iter().any(|x| x == text) {
            answers.push(text.to_string());
        }
    }
    Ok(QaRecord {
        id: id.to_string(),
        group: String::new(),
        question: q.to_string(),
        context: context.to_string(),
        answers,
        support,
        unanswerable: impossible,
    })
}
