//! Typed errors of the data layer. Every malformed-input error names the file, where in it
//! (a line for JSONL, a JSON path for SQuAD) and the field, so a bad record in a multi-GB
//! file can be found without guessing.

use std::fmt;

use thiserror::Error;

/// Where in a file a problem is: a 1-based line (JSONL) or a JSON path (whole-file JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    Line(usize),
    Path(String),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Path(p) => f.write_str(p),
        }
    }
}

/// A broken invariant of an [`crate::data::Example`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExampleError {
    #[error("ids has {ids} tokens but targets has {targets}")]
    Lengths { ids: usize, targets: usize },
    #[error(
        "regions out of order: need 1 <= n_ctx ({n_ctx}) <= q0 ({q0}) < q1 ({q1}) < len ({len})"
    )]
    Regions {
        n_ctx: usize,
        q0: usize,
        q1: usize,
        len: usize,
    },
    #[error("target at position {pos} lies before the answer region (q1 = {q1})")]
    TargetBeforeAnswer { pos: usize, q1: usize },
    #[error("target at position {pos} is {target}, expected the next id {expected}")]
    TargetMismatch {
        pos: usize,
        target: i32,
        expected: i64,
    },
    #[error("no position carries a target: nothing to learn or score")]
    NoTargets,
    #[error("supporting span [{start}, {end}) is empty or outside the context [0, {n_ctx})")]
    Span {
        start: usize,
        end: usize,
        n_ctx: usize,
    },
}

#[derive(Debug, Error)]
pub enum DataError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: bad JSON: {message}")]
    Json {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path} {at}: field `{field}`: {problem}")]
    Field {
        path: String,
        at: Loc,
        field: String,
        problem: String,
    },
    #[error("tokenizer {what}: {message}")]
    Tokenizer { what: String, message: String },
    #[error("tokenizer has no token {0:?}")]
    MissingToken(String),
    #[error("invalid example: {0}")]
    Example(#[from] ExampleError),
    #[error("data spec {spec:?}: {problem}")]
    Spec { spec: String, problem: String },
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
}

impl DataError {
    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, problem: impl Into<String>) -> Self {
        DataError::Invalid {
            what: what.into(),
            problem: problem.into(),
        }
    }

    /// True for errors that describe one bad record (which `skip_bad` may skip), false for
    /// errors that make the whole input unreadable (I/O, tokenizer).
    pub fn is_record_error(&self) -> bool {
        matches!(self, DataError::Json { .. } | DataError::Field { .. })
    }
}
