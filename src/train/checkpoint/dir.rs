//! A checkpoint directory as a whole: finding the newest complete checkpoint and pruning old
//! ones. Files are recognised by name only (`step-N.json`, `step-N.safetensors`, and temp files
//! `step-N.<ext>.<pid>.tmp`); anything else in the directory is left alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::file::open;
use super::{io_err, tensors_path, verify, CheckpointError, Result};
use crate::train::fsio::{self, TEMP_SUFFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sidecar,
    Tensors,
    Temp,
}

struct Entry {
    step: u64,
    kind: Kind,
    path: PathBuf,
}

fn classify(name: &str) -> Option<(u64, Kind)> {
    let rest = name.strip_prefix("step-")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let step = rest[..digits].parse().ok()?;
    let kind = match &rest[digits..] {
        ".json" => Kind::Sidecar,
        ".safetensors" => Kind::Tensors,
        tail if tail.ends_with(TEMP_SUFFIX) => Kind::Temp,
        _ => return None,
    };
    Some((step, kind))
}

/// The checkpoint files in `dir`; none when it does not exist yet.
fn entries(dir: &Path) -> Result<Vec<Entry>> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name();
        if let Some((step, kind)) = name.to_str().and_then(classify) {
            out.push(Entry {
                step,
                kind,
                path: entry.path(),
            });
        }
    }
    // Newest first; at one step the sidecar sorts first, which `prune` relies on.
    out.sort_by_key(|e| (std::cmp::Reverse(e.step), e.kind != Kind::Sidecar));
    Ok(out)
}

/// What `scan_latest` found.
#[derive(Debug)]
pub struct Latest {
    /// The newest checkpoint that verified (its `.safetensors` path).
    pub path: Option<PathBuf>,
    /// Newer checkpoints passed over, each with the reason (worth a warning on resume).
    pub skipped: Vec<CheckpointError>,
}

/// The newest checkpoint in `dir` whose sidecar parses and whose safetensors file has the
/// recorded length and checksum. Temp files, orphan safetensors files and broken pairs are
/// passed over. Only an unreadable directory is an error.
pub fn scan_latest(dir: &Path) -> Result<Latest> {
    let mut skipped = Vec::new();
    for e in entries(dir)?
        .into_iter()
        .filter(|e| e.kind == Kind::Sidecar)
    {
        match verify(&e.path) {
            Ok(sidecar) if sidecar.step == e.step => {
                return Ok(Latest {
                    path: Some(tensors_path(dir, e.step)),
                    skipped,
                })
            }
            Ok(sidecar) => skipped.push(CheckpointError::Sidecar {
                path: e.path,
                message: format!("records step {}, its name says {}", sidecar.step, e.step),
            }),
            Err(err) => skipped.push(err),
        }
    }
    Ok(Latest {
        path: None,
        skipped,
    })
}

/// The newest complete checkpoint in `dir` (see `scan_latest`).
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(scan_latest(dir)?.path)
}

/// Keeps the newest `keep` complete checkpoints and deletes every checkpoint file (pairs,
/// orphans, stale temp files) older than the oldest one kept. Newer broken files are left: one
/// may be a write in progress.
///
/// "Complete" here means the sidecar parses and the safetensors file has the recorded length;
/// the checksum is not re-hashed, as that would read every kept checkpoint on each save.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Err(CheckpointError::Invalid {
            at: format!("pruning {}", dir.display()),
            message: "keep must be at least 1 (0 would delete every checkpoint)".into(),
        });
    }
    let all = entries(dir)?;
    let complete = all.iter().filter(|e| {
        e.kind == Kind::Sidecar
            && open(&e.path)
                .is_ok_and(|o| fs::metadata(&o.st_path).is_ok_and(|m| o.check_len(m.len()).is_ok()))
    });
    let Some(oldest_kept) = complete.map(|e| e.step).nth(keep - 1) else {
        return Ok(());
    };
    // Sidecars go before their safetensors files (sort order), so a crash mid-prune leaves at
    // worst an orphan, never a sidecar without its data.
    for e in all.iter().filter(|e| e.step < oldest_kept) {
        match fs::remove_file(&e.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("removing", &e.path)(err))
            }
            _ => {}
        }
    }
    fsio::sync_dir(&tensors_path(dir, oldest_kept)).map_err(io_err("syncing", dir))
}
