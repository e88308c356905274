//! Datasets behind the `--data` flag: [`DataSpec::open`] gives a [`Dataset`] whose
//! `example(index)` is deterministic in `(seed, split, index)`. Generated tasks have no end
//! (`len() == None`); file datasets have `len()` records per epoch and walk epochs as
//! [`super::split`] describes (Train: a fresh permutation per epoch; Eval: file order;
//! the held-out records are those whose group hashes into the first `holdout` fraction).
//!
//! SQuAD and NQ-open files are held in memory. NQ files (GBs) are not: opening streams the
//! file once, checking every line and remembering where the lines of the split start, and
//! `example` seeks back to re-read one line.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::error::DataError;
use super::longqa::LongQa;
use super::record::{LoadOptions, LoadReport, QaRecord};
use super::spec::DataSpec;
use super::split::{epoch_order, in_split, Split};
use super::synthetic::{Mqar, Needle, Passkey};
use super::tokenizer::Tok;
use super::{nq, nq_open, squad, Example};

/// What opening and using a dataset did, so nothing is dropped unseen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetReport {
    /// Records read and bad records skipped (files only).
    pub load: LoadReport,
    /// Records of this split (one epoch; files only).
    pub in_split: usize,
    /// Records of this split that cannot be used by the task (longqa: unanswerable ones).
    pub excluded: usize,
    /// Examples produced so far whose context was cut to the `ctx` window.
    pub truncated: u64,
}

/// A source of examples.
pub trait Dataset: Send + Sync {
    /// Example number `index` (any `u64`; file datasets wrap around in epochs).
    fn example(&self, index: u64) -> Result<Example, DataError>;
    /// Examples per epoch; `None` for generated tasks, which never run out.
    fn len(&self) -> Option<usize>;
    /// True for a file dataset without records (opening refuses those, so never in practice).
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    fn report(&self) -> DatasetReport;
    /// The spec it was opened from, in canonical form.
    fn describe(&self) -> String;
    /// One past the largest token id any example can hold, when the task draws its tokens
    /// from a known range (MQAR); `None` = any id of the tokenizer. Lets a synthetic-task
    /// model carry a vocabulary of just the ids it will see.
    fn token_bound(&self) -> Option<u32> {
        None
    }
}

impl DataSpec {
    pub fn open(
        &self,
        tok: &Tok,
        seed: u64,
        split: Split,
        opts: &LoadOptions,
    ) -> Result<Box<dyn Dataset>, DataError> {
        let name = self.to_string();
        let gen = |g: Gen| -> Result<Box<dyn Dataset>, DataError> {
            Ok(Box::new(Generated {
                g,
                name: name.clone(),
            }))
        };
        match self {
            DataSpec::Passkey { ctx } => gen(Gen::Passkey(Passkey::new(tok, *ctx, seed, split)?)),
            DataSpec::Mqar {
                ctx,
                pairs,
                queries,
                range,
            } => gen(Gen::Mqar(Mqar::new(
                tok, *ctx, *pairs, *queries, *range, seed, split,
            )?)),
            DataSpec::Needle { ctx, depth } => {
                gen(Gen::Needle(Needle::new(tok, *ctx, *depth, seed, split)?))
            }
            DataSpec::Squad { path, ctx, holdout } => {
                let (recs, load) = squad::read(path, opts)?;
                Records::boxed(tok, recs, load, *ctx, *holdout, seed, split, path, name)
            }
            DataSpec::NqOpen { path, holdout } => {
                let (recs, load) = nq_open::read(path, opts)?;
                Records::boxed(
                    tok,
                    recs,
                    load,
                    usize::MAX,
                    *holdout,
                    seed,
                    split,
                    path,
                    name,
                )
            }
            DataSpec::Nq { path, ctx, holdout } => {
                NqFile::open(tok, path, opts, *ctx, *holdout, seed, split, name)
            }
            DataSpec::LongQa {
                path,
                ctx,
                depth,
                holdout,
            } => {
                let (recs, load) = squad::read(path, opts)?;
                let h = *holdout;
                let inner = LongQa::new(
                    tok,
                    &recs,
                    |r| in_split(&r.group, split, h),
                    *ctx,
                    *depth,
                    seed,
                    split,
                )?;
                let in_split_n = recs.iter().filter(|r| in_split(&r.group, split, h)).count();
                let walk = Walk::new(inner.len(), seed, split, path, &name)?;
                Ok(Box::new(LongQaSet {
                    report: DatasetReport {
                        load,
                        in_split: in_split_n,
                        excluded: inner.excluded,
                        truncated: 0,
                    },
                    inner,
                    walk,
                    name,
                }))
            }
        }
    }
}

enum Gen {
    Passkey(Passkey),
    Mqar(Mqar),
    Needle(Needle),
}

struct Generated {
    g: Gen,
    name: String,
}

impl Dataset for Generated {
    fn example(&self, index: u64) -> Result<Example, DataError> {
        match &self.g {
            Gen::Passkey(g) => g.example(index),
            Gen::Mqar(g) => g.example(index),
            Gen::Needle(g) => g.example(index),
        }
    }
    fn len(&self) -> Option<usize> {
        None
    }
    fn report(&self) -> DatasetReport {
        DatasetReport::default()
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn token_bound(&self) -> Option<u32> {
        match &self.g {
            Gen::Mqar(g) => Some(g.token_bound()),
            Gen::Passkey(_) | Gen::Needle(_) => None,
        }
    }
}

/// Index → record position, epoch by epoch (see the module doc).
struct Walk {
    n: usize,
    seed: u64,
    split: Split,
    /// The permutation of the epoch last asked for (consecutive indices share it).
    cache: Mutex<Option<(u64, Vec<u32>)>>,
}

impl Walk {
    fn new(n: usize, seed: u64, split: Split, path: &Path, name: &str) -> Result<Self, DataError> {
        if n == 0 {
            return Err(DataError::invalid(
                name,
                format!(
                    "{} has no usable record in the {split:?} split",
                    path.display()
                ),
            ));
        }
        Ok(Walk {
            n,
            seed,
            split,
            cache: Mutex::new(None),
        })
    }

    fn position(&self, index: u64) -> usize {
        let n = self.n as u64;
        let (epoch, pos) = (index / n, (index % n) as usize);
        if self.split == Split::Eval {
            return pos;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match &*cache {
            Some((e, order)) if *e == epoch => order[pos] as usize,
            _ => {
                let order = epoch_order(self.seed, epoch, self.n);
                let p = order[pos] as usize;
                *cache = Some((epoch, order));
                p
            }
        }
    }
}

/// SQuAD / NQ-open records in memory.
struct Records {
    tok: Tok,
    recs: Vec<QaRecord>,
    max_ctx: usize,
    walk: Walk,
    report: DatasetReport,
    truncated: AtomicU64,
    name: String,
}

impl Records {
    #[allow(clippy::too_many_arguments)]
    fn boxed(
        tok: &Tok,
        all: Vec<QaRecord>,
        load: LoadReport,
        max_ctx: usize,
        holdout: f64,
        seed: u64,
        split: Split,
        path: &Path,
        name: String,
    ) -> Result<Box<dyn Dataset>, DataError> {
        let recs: Vec<QaRecord> = all
            .into_iter()
            .filter(|r| in_split(&r.group, split, holdout))
            .collect();
        let walk = Walk::new(recs.len(), seed, split, path, &name)?;
        Ok(Box::new(Records {
            tok: tok.clone(),
            report: DatasetReport {
                load,
                in_split: recs.len(),
                ..DatasetReport::default()
            },
            recs,
            max_ctx,
            walk,
            truncated: AtomicU64::new(0),
            name,
        }))
    }
}

impl Dataset for Records {
    fn example(&self, index: u64) -> Result<Example, DataError> {
        let c = self.recs[self.walk.position(index)].to_example(&self.tok, self.max_ctx)?;
        if c.truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(c.example)
    }
    fn len(&self) -> Option<usize> {
        Some(self.walk.n)
    }
    fn report(&self) -> DatasetReport {
        DatasetReport {
            truncated: self.truncated.load(Ordering::Relaxed),
            ..self.report.clone()
        }
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// An NQ simplified file, indexed by line offsets.
struct NqFile {
    tok: Tok,
    path: PathBuf,
    label: String,
    /// (byte offset, byte length, 1-based line number) of each line of the split.
    lines: Vec<(u64, usize, usize)>,
    file: Mutex<File>,
    max_ctx: usize,
    walk: Walk,
    report: DatasetReport,
    truncated: AtomicU64,
    name: String,
}

impl NqFile {
    #[allow(clippy::too_many_arguments)]
    fn open(
        tok: &Tok,
        path: &Path,
        opts: &LoadOptions,
        max_ctx: usize,
        holdout: f64,
        seed: u64,
        split: Split,
        name: String,
    ) -> Result<Box<dyn Dataset>, DataError> {
        let label = path.display().to_string();
        let f = File::open(path).map_err(|e| DataError::io(&label, e))?;
        let mut lines = Vec::new();
        let mut load = LoadReport::default();
        super::json::for_each_line(BufReader::new(f), &label, |line_no, offset, bytes| {
            if let Some(r) = load.take(opts, nq::parse_line(bytes, &label, line_no))? {
                if in_split(&r.qa.group, split, holdout) {
                    lines.push((offset, bytes.len(), line_no));
                }
            }
            Ok(())
        })?;
        let walk = Walk::new(lines.len(), seed, split, path, &name)?;
        let file = File::open(path).map_err(|e| DataError::io(&label, e))?;
        Ok(Box::new(NqFile {
            tok: tok.clone(),
            path: path.to_path_buf(),
            report: DatasetReport {
                load,
                in_split: lines.len(),
                ..DatasetReport::default()
            },
            label,
            lines,
            file: Mutex::new(file),
            max_ctx,
            walk,
            truncated: AtomicU64::new(0),
            name,
        }))
    }

    fn record(&self, i: usize) -> Result<nq::NqRecord, DataError> {
        let (offset, len, line_no) = self.lines[i];
        let mut buf = vec![0u8; len];
        {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let io = |e| DataError::io(&self.label, e);
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            f.read_exact(&mut buf).map_err(io)?;
        }
        nq::parse_line(&buf, &self.label, line_no).map_err(|e| match e {
            // The line parsed at open: a failure now means the file changed under us.
            DataError::Json { .. } | DataError::Field { .. } => DataError::invalid(
                self.path.display().to_string(),
                format!("changed since it was opened: {e}"),
            ),
            e => e,
        })
    }
}

impl Dataset for NqFile {
    fn example(&self, index: u64) -> Result<Example, DataError> {
        let r = self.record(self.walk.position(index))?;
        let c = r.qa.to_example(&self.tok, self.max_ctx)?;
        if c.truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(c.example)
    }
    fn len(&self) -> Option<usize> {
        Some(self.walk.n)
    }
    fn report(&self) -> DatasetReport {
        DatasetReport {
            truncated: self.truncated.load(Ordering::Relaxed),
            ..self.report.clone()
        }
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

struct LongQaSet {
    inner: LongQa,
    walk: Walk,
    report: DatasetReport,
    name: String,
}

impl Dataset for LongQaSet {
    fn example(&self, index: u64) -> Result<Example, DataError> {
        self.inner.example(self.walk.position(index), index)
    }
    fn len(&self) -> Option<usize> {
        Some(self.walk.n)
    }
    fn report(&self) -> DatasetReport {
        self.report.clone()
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}
