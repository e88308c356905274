//! The `--data` flag: `KIND[:ARGS]`, ARGS comma-separated `key=value` pairs, file kinds
//! taking the path as their first argument (so a path cannot contain a comma):
//!
//! | spec | keys (default) |
//! |---|---|
//! | `passkey:ctx=2048` | `ctx` (2048) context tokens incl. BOS |
//! | `mqar:ctx=256,pairs=16` | `ctx` (256), `pairs` (16), `queries` (= pairs), `range` (a third of the word pieces) |
//! | `needle:ctx=4096,depth=0.5` | `ctx` (4096), `depth` (random per example) |
//! | `squad:PATH` | `ctx` (4096) max context tokens incl. BOS (longer ones are cut around the answer), `holdout` (0.1) |
//! | `nq:PATH` | `ctx` (4096), `holdout` (0.1) |
//! | `nq-open:PATH` | `holdout` (0.1) |
//! | `longqa:PATH,ctx=4096,depth=0.5` | `ctx` (4096), `depth` (random), `holdout` (0.1); PATH is SQuAD JSON |
//!
//! Unknown kinds and keys, repeated keys, bad values and a `ctx` over [`MAX_CTX`] are errors
//! that name them.

use std::fmt;
use std::path::PathBuf;

use super::error::DataError;

pub const DEFAULT_FILE_CTX: usize = 4096;
pub const DEFAULT_HOLDOUT: f64 = 0.1;
/// The longest context a spec may ask for: 1M tokens, 8x the 128K the long-context evaluation
/// uses. A typo like `ctx=99999999999` would otherwise allocate until the kernel kills the process.
pub const MAX_CTX: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    Passkey {
        ctx: usize,
    },
    Mqar {
        ctx: usize,
        pairs: usize,
        queries: usize,
        range: Option<u32>,
    },
    Needle {
        ctx: usize,
        depth: Option<f64>,
    },
    Squad {
        path: PathBuf,
        ctx: usize,
        holdout: f64,
    },
    Nq {
        path: PathBuf,
        ctx: usize,
        holdout: f64,
    },
    NqOpen {
        path: PathBuf,
        holdout: f64,
    },
    LongQa {
        path: PathBuf,
        ctx: usize,
        depth: Option<f64>,
        holdout: f64,
    },
}

pub const KINDS: &[&str] = &[
    "passkey", "mqar", "needle", "squad", "nq", "nq-open", "longqa",
];

/// The `key=value` arguments of one spec, consumed as they are read so leftovers (unknown
/// keys) can be reported.
struct Args<'a> {
    spec: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    fn err(&self, problem: impl Into<String>) -> DataError {
        DataError::Spec {
            spec: self.spec.to_string(),
            problem: problem.into(),
        }
    }

    fn take<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, DataError> {
        let Some(i) = self.pairs.iter().position(|p| p.0 == key) else {
            return Ok(None);
        };
        let (_, v) = self.pairs.remove(i);
        v.parse()
            .map(Some)
            .map_err(|_| self.err(format!("`{key}` has a bad value {v:?}")))
    }

    fn fraction(&mut self, key: &str) -> Result<Option<f64>, DataError> {
        match self.take::<f64>(key)? {
            Some(x) if !(0.0..=1.0).contains(&x) => {
                Err(self.err(format!("`{key}` = {x} is not in [0, 1]")))
            }
            x => Ok(x),
        }
    }

    fn positive(&mut self, key: &str, default: usize) -> Result<usize, DataError> {
        match self.take::<usize>(key)?.unwrap_or(default) {
            0 => Err(self.err(format!("`{key}` must be positive"))),
            n => Ok(n),
        }
    }

    /// A context length: positive and at most [`MAX_CTX`].
    fn context(&mut self, key: &str, default: usize) -> Result<usize, DataError> {
        match self.positive(key, default)? {
            n if n > MAX_CTX => Err(self.err(format!(
                "`{key}` = {n} is over the limit of {MAX_CTX} tokens"
            ))),
            n => Ok(n),
        }
    }

    fn finish(self) -> Result<(), DataError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.err(format!("unknown key `{k}`"))),
        }
    }
}

impl DataSpec {
    pub fn parse(spec: &str) -> Result<DataSpec, DataError> {
        let err = |p: String| DataError::Spec {
            spec: spec.to_string(),
            problem: p,
        };
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut items: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split(',').collect()
        };
        let file_kind = matches!(kind, "squad" | "nq" | "nq-open" | "longqa");
        let path = if file_kind {
            if items.is_empty() || items[0].is_empty() || items[0].contains('=') {
                return Err(err(format!(
                    "`{kind}` needs a path: {kind}:PATH[,key=value…]"
                )));
            }
            Some(PathBuf::from(items.remove(0)))
        } else {
            None
        };
        let mut pairs = Vec::with_capacity(items.len());
        for it in items {
            let Some((k, v)) = it.split_once('=') else {
                return Err(err(format!("argument {it:?} is not key=value")));
            };
            if pairs.iter().any(|p: &(&str, &str)| p.0 == k) {
                return Err(err(format!("key `{k}` given twice")));
            }
            pairs.push((k, v));
        }
        let mut a = Args { spec, pairs };
        let path = path.unwrap_or_default();
        let out = match kind {
            "passkey" => DataSpec::Passkey {
                ctx: a.context("ctx", 2048)?,
            },
            "mqar" => {
                let ctx = a.context("ctx", 256)?;
                let pairs = a.positive("pairs", 16)?;
                let queries = a.positive("queries", pairs)?;
                let range = a.take("range")?;
                DataSpec::Mqar {
                    ctx,
                    pairs,
                    queries,
                    range,
                }
            }
            "needle" => DataSpec::Needle {
                ctx: a.context("ctx", 4096)?,
                depth: a.fraction("depth")?,
            },
            "squad" | "nq" => {
                let ctx = a.context("ctx", DEFAULT_FILE_CTX)?;
                let holdout = a.fraction("holdout")?.unwrap_or(DEFAULT_HOLDOUT);
                if kind == "squad" {
                    DataSpec::Squad { path, ctx, holdout }
                } else {
                    DataSpec::Nq { path, ctx, holdout }
                }
            }
            "nq-open" => DataSpec::NqOpen {
                path,
                holdout: a.fraction("holdout")?.unwrap_or(DEFAULT_HOLDOUT),
            },
            "longqa" => DataSpec::LongQa {
                path,
                ctx: a.context("ctx", DEFAULT_FILE_CTX)?,
                depth: a.fraction("depth")?,
                holdout: a.fraction("holdout")?.unwrap_or(DEFAULT_HOLDOUT),
            },
            other => {
                return Err(err(format!(
                    "unknown kind `{other}` (known: {})",
                    KINDS.join(", ")
                )))
            }
        };
        a.finish()?;
        Ok(out)
    }
}

/// The canonical spelling, every key written out; `parse` reads it back to the same spec.
impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let depth = |d: &Option<f64>| d.map(|d| format!(",depth={d}")).unwrap_or_default();
        match self {
            DataSpec::Passkey { ctx } => write!(f, "passkey:ctx={ctx}"),
            DataSpec::Mqar {
                ctx,
                pairs,
                queries,
                range,
            } => {
                write!(f, "mqar:ctx={ctx},pairs={pairs},queries={queries}")?;
                match range {
                    Some(r) => write!(f, ",range={r}"),
                    None => Ok(()),
                }
            }
            DataSpec::Needle { ctx, depth: d } => write!(f, "needle:ctx={ctx}{}", depth(d)),
            DataSpec::Squad { path, ctx, holdout } => {
                write!(f, "squad:{},ctx={ctx},holdout={holdout}", path.display())
            }
            DataSpec::Nq { path, ctx, holdout } => {
                write!(f, "nq:{},ctx={ctx},holdout={holdout}", path.display())
            }
            DataSpec::NqOpen { path, holdout } => {
                write!(f, "nq-open:{},holdout={holdout}", path.display())
            }
            DataSpec::LongQa {
                path,
                ctx,
                depth: d,
                holdout,
            } => write!(
                f,
                "longqa:{},ctx={ctx}{},holdout={holdout}",
                path.display(),
                depth(d)
            ),
        }
    }
}
