//! NQ-open JSONL (`{"question": ..., "answer": [...]}`): closed-book questions, no context.
//! Records get the id `line N` (the format has none) and an empty context; every listed
//! answer is gold, the first is the one trained on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::error::{DataError, Loc};
use super::json::{bad_line, for_each_line, Place};
use super::record::{LoadOptions, LoadReport, QaRecord};

pub fn parse_line(bytes: &[u8], path: &str, line_no: usize) -> Result<QaRecord, DataError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_line(path, line_no, &e))?;
    let at = Place {
        path,
        at: Loc::Line(line_no),
    };
    let o = at.obj(&v, "")?;
    let question = at.get_str(o, "", "question")?;
    if question.trim().is_empty() {
        return Err(at.err("question", "empty"));
    }
    let list = at.get_arr(o, "", "answer")?;
    if list.is_empty() {
        return Err(at.err(
            "answer",
            "empty list (NQ-open has no unanswerable questions)",
        ));
    }
    let answers = list
        .iter()
        .enumerate()
        .map(|(i, a)| at.str_at(a, &format!("answer[{i}]")).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(QaRecord {
        id: format!("line {line_no}"),
        group: question.to_string(),
        question: question.to_string(),
        context: String::new(),
        answers,
        support: Vec::new(),
        unanswerable: false,
    })
}

/// All records of a file (NQ-open files are small: one short line per question).
pub fn read(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<(Vec<QaRecord>, LoadReport), DataError> {
    let label = path.as_ref().display().to_string();
    let file = File::open(path.as_ref()).map_err(|e| DataError::io(&label, e))?;
    read_from(BufReader::new(file), &label, opts)
}

/// [`read`] over any reader; `label` names it in errors.
pub fn read_from<R: BufRead>(
    r: R,
    label: &str,
    opts: &LoadOptions,
) -> Result<(Vec<QaRecord>, LoadReport), DataError> {
    let mut out = Vec::new();
    let mut report = LoadReport::default();
    for_each_line(r, label, |line_no, _, bytes| {
        if let Some(rec) = report.take(opts, parse_line(bytes, label, line_no))? {
            out.push(rec);
        }
        Ok(())
    })?;
    Ok((out, report))
}
