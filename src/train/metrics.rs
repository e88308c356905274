//! The metrics log: one JSON object per line (JSONL), each written with a single `write` on an
//! append-mode file, so a crash leaves at most a torn last line and earlier records intact.
//!
//! A resumed run first cuts the log back to the checkpoint it resumes from (`resume`): records
//! with a `step` above it were logged after that checkpoint and are about to be redone, so
//! keeping them would leave two histories in one file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use super::fsio;
use super::record::StepRecord;

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: {message}", .path.display())]
    Line {
        path: PathBuf,
        /// 1-based.
        line: usize,
        message: String,
    },
    #[error("metrics record for {} must be a JSON object, got {found}", .path.display())]
    NotObject { path: PathBuf, found: String },
}

type Result<T> = std::result::Result<T, MetricsError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MetricsError {
    let path = path.to_path_buf();
    move |source| MetricsError::Io {
        action,
        path,
        source,
    }
}

#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path` for logging: appended to when `append`, else started empty. Created either way.
    pub fn create(path: &Path, append: bool) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(path).map_err(io_err("opening", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Cuts `path` back to the records with `step <= step` (records without a `step`, e.g. run
    /// headers, stay; a torn last line from a crash is dropped), atomically, and opens it for
    /// appending. A missing file starts empty.
    pub fn resume(path: &Path, step: u64) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err("reading", path)(e)),
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut kept = String::with_capacity(text.len());
        for (i, raw) in lines.iter().enumerate() {
            let torn_tail = i + 1 == lines.len() && !raw.ends_with('\n');
            let record = match parse_line(path, i + 1, raw) {
                Ok(None) => continue,
                Ok(Some(r)) => r,
                Err(_) if torn_tail => break,
                Err(e) => return Err(e),
            };
            if record_step(path, i + 1, &record)?.is_none_or(|s| s <= step) {
                kept.push_str(raw.trim_end_matches(['\n', '\r']));
                kept.push('\n');
            }
        }
        fsio::write_atomic(path, |w| w.write_all(kept.as_bytes()))
            .map_err(io_err("rewriting", path))?;
        Self::create(path, true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` (one that serializes to a JSON object, e.g. a
    /// [`StepRecord`](super::record::StepRecord)) as one line. The line goes out in one `write`
    /// on an unbuffered file, so it is in the OS (and survives a crash of this process) on return.
    pub fn log<T: Serialize + ?Sized>(&self, record: &T) -> Result<()> {
        let record = serde_json::to_value(record).map_err(|e| MetricsError::NotObject {
            path: self.path.clone(),
            found: format!("a value that does not serialize ({e})"),
        })?;
        if !record.is_object() {
            return Err(MetricsError::NotObject {
                path: self.path.clone(),
                found: type_name(&record).into(),
            });
        }
        let mut line = record.to_string();
        line.push('\n');
        (&self.file)
            .write_all(line.as_bytes())
            .map_err(io_err("writing", &self.path))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One line as a record; `None` for a blank line.
fn parse_line(path: &Path, line: usize, raw: &str) -> Result<Option<Value>> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |message: String| MetricsError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad(format!(
            "expected a JSON object, got {}",
            type_name(&value)
        )));
    }
    Ok(Some(value))
}

/// A record's `step`, which must be a non-negative integer when present.
fn record_step(path: &Path, line: usize, record: &Value) -> Result<Option<u64>> {
    match record.get("step") {
        None => Ok(None),
        Some(s) => s.as_u64().map(Some).ok_or_else(|| MetricsError::Line {
            path: path.to_path_buf(),
            line,
            message: format!("`step` is {s}, expected a non-negative integer"),
        }),
    }
}

/// Every record of a JSONL file, in order; blank lines are skipped. Errors name the line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    let mut records = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some(r) = parse_line(path, i + 1, raw)? {
            records.push(r);
        }
    }
    Ok(records)
}

/// The step records of a metrics log, in order; errors name the line and the field.
pub fn read_steps(path: &Path) -> Result<Vec<StepRecord>> {
    let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    let mut records = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let r = serde_json::from_str(raw).map_err(|e| MetricsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        records.push(r);
    }
    Ok(records)
}

/// The process's peak resident set (`VmHWM`), the CPU backend's memory figure; Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
