//! Typed field access on parsed JSON with errors that name file, place and field path.

use serde_json::{Map, Value};

use super::error::{DataError, Loc};

pub(crate) type Obj = Map<String, Value>;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Joins a field path: `join("annotations[0]", "long_answer")`.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// One record's place in one file: errors built here carry both.
pub(crate) struct Place<'a> {
    pub path: &'a str,
    pub at: Loc,
}

impl Place<'_> {
    pub fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> DataError {
        DataError::Field {
            path: self.path.to_string(),
            at: self.at.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn wrong(&self, field: &str, want: &str, v: &Value) -> DataError {
        self.err(field, format!("expected {want}, found {}", kind(v)))
    }

    /// `v` as an object; `field` names it in errors ("" for the record itself).
    pub fn obj<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Obj, DataError> {
        v.as_object()
            .ok_or_else(|| self.wrong(field, "an object", v))
    }

    pub fn arr<'v>(&self, v: &'v Value, field: &str) -> Result<&'v [Value], DataError> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong(field, "an array", v))
    }

    /// The member `key` of `o`, whose own path is `prefix`; missing is an error.
    pub fn get<'v>(&self, o: &'v Obj, prefix: &str, key: &str) -> Result<&'v Value, DataError> {
        o.get(key)
            .ok_or_else(|| self.err(join(prefix, key), "missing"))
    }

    pub fn get_str<'v>(&self, o: &'v Obj, prefix: &str, key: &str) -> Result<&'v str, DataError> {
        let v = self.get(o, prefix, key)?;
        v.as_str()
            .ok_or_else(|| self.wrong(&join(prefix, key), "a string", v))
    }

    pub fn get_int(&self, o: &Obj, prefix: &str, key: &str) -> Result<i64, DataError> {
        let v = self.get(o, prefix, key)?;
        v.as_i64()
            .ok_or_else(|| self.wrong(&join(prefix, key), "an integer", v))
    }

    pub fn get_arr<'v>(
        &self,
        o: &'v Obj,
        prefix: &str,
        key: &str,
    ) -> Result<&'v [Value], DataError> {
        let v = self.get(o, prefix, key)?;
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong(&join(prefix, key), "an array", v))
    }

    pub fn get_obj<'v>(&self, o: &'v Obj, prefix: &str, key: &str) -> Result<&'v Obj, DataError> {
        let v = self.get(o, prefix, key)?;
        self.obj(v, &join(prefix, key))
    }

    /// An optional boolean (absent = `default`), e.g. SQuAD v1.1 has no `is_impossible`.
    pub fn opt_bool(
        &self,
        o: &Obj,
        prefix: &str,
        key: &str,
        default: bool,
    ) -> Result<bool, DataError> {
        match o.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.wrong(&join(prefix, key), "a boolean", v)),
        }
    }

    /// Element `i` of an array field as a string.
    pub fn str_at<'v>(&self, v: &'v Value, field: &str) -> Result<&'v str, DataError> {
        v.as_str().ok_or_else(|| self.wrong(field, "a string", v))
    }
}

/// A parse error of one JSONL line, with the 1-based line number of the file.
pub(crate) fn bad_line(path: &str, line: usize, e: &serde_json::Error) -> DataError {
    DataError::Json {
        path: path.to_string(),
        line,
        message: e.to_string(),
    }
}

/// Calls `f(line_no, offset, bytes)` for each non-blank line of a JSONL stream (1-based line
/// numbers; `offset` = byte position of the line start, for seeking back to it later). Lines
/// are read as bytes into one reused buffer, so a multi-GB file streams in constant memory
/// and invalid UTF-8 surfaces as a JSON error of that line, not an I/O failure.
pub(crate) fn for_each_line<R: std::io::BufRead>(
    mut r: R,
    path: &str,
    mut f: impl FnMut(usize, u64, &[u8]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if !buf.iter().all(u8::is_ascii_whitespace) {
            f(line_no, offset, &buf)?;
        }
        offset += n as u64;
    }
}
