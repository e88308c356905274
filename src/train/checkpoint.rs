//! Training checkpoints: one safetensors file with the parameters (`param/<name>`) and the Adam
//! moments (`adam_m/<name>`, `adam_v/<name>`), all f32 little endian, plus a JSON sidecar
//! `step-NNNNNNNN.json` with the run state (config, step, data position, seed, ...).
//!
//! Both files are written atomically (see `fsio`), the safetensors file first and the sidecar
//! last: a sidecar marks a complete checkpoint, and it records the safetensors file's length
//! and FNV-1a checksum, which `load` and `latest` verify. A crash at any moment therefore leaves
//! the previous checkpoints intact and at worst a temp file or an orphan safetensors file, both
//! ignored. `latest.json` points at the newest save for people and scripts; `latest` does not
//! trust it (it can lag a crash) and scans the directory instead.
//!
//! Moments are optional as a whole: both empty (a weights-only export) or both covering every
//! parameter with its shape.

mod dir;
mod file;

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use safetensors::SafeTensorError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::fsio::{self, HashingWriter};
use crate::Tensor;
pub use dir::{latest, prune, scan_latest, Latest};
use file::{file_name, Digest};

pub const CHECKPOINT_FORMAT: u32 = 1;
pub const LATEST_POINTER: &str = "latest.json";

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bad safetensors file {}: {source}", .path.display())]
    Safetensors {
        path: PathBuf,
        #[source]
        source: SafeTensorError,
    },
    #[error("bad checkpoint sidecar {}: {message}", .path.display())]
    Sidecar { path: PathBuf, message: String },
    #[error("{} is truncated or overwritten: the sidecar records {expected} bytes, the file has {found}", .path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("checksum mismatch in {}: the sidecar records FNV-1a {expected:016x}, the file hashes to {found:016x}", .path.display())]
    Checksum {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}: checkpoint format {found}, this build reads format {expected}", .path.display())]
    Format {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
    #[error("{at}: tensor `{name}`: checkpoint has {found:?}, this config expects {expected:?}")]
    Shape {
        at: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{at}: tensor `{name}` is missing from the checkpoint")]
    Missing { at: String, name: String },
    #[error("{at}: checkpoint tensor `{name}` is not expected here")]
    Extra { at: String, name: String },
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    #[error("{}: tensor `{tensor}` holds {value} at flat index {index}: the weights are unusable", .path.display())]
    NonFinite {
        path: PathBuf,
        tensor: String,
        index: usize,
        value: f32,
    },
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        action,
        path,
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Names and shapes of `tensors`, in order (what `Sidecar::tensors` must hold).
    pub fn list(tensors: &[(String, Tensor)]) -> Vec<TensorInfo> {
        tensors
            .iter()
            .map(|(name, t)| TensorInfo {
                name: name.clone(),
                shape: t.shape.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// `CHECKPOINT_FORMAT`.
    pub format: u32,
    pub config: crate::model::Config,
    /// Optimizer steps done.
    pub step: u64,
    /// Examples consumed from the training stream.
    pub data_position: u64,
    /// Run seed; the data and init RNG streams are derived from it.
    pub seed: u64,
    pub adam_step: u32,
    /// Name and shape of every parameter, in model order.
    pub tensors: Vec<TensorInfo>,
    /// Last logged metrics (free-form).
    pub metrics: serde_json::Value,
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub sidecar: Sidecar,
    pub params: Vec<(String, Tensor)>,
    /// Empty, or one per parameter in the same order (likewise `adam_v`).
    pub adam_m: Vec<(String, Tensor)>,
    pub adam_v: Vec<(String, Tensor)>,
}

/// `dir/step-NNNNNNNN.safetensors` (the name `save` writes).
pub fn tensors_path(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("step-{step:08}.safetensors"))
}

/// `dir/step-NNNNNNNN.json`.
pub fn sidecar_path(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("step-{step:08}.json"))
}

/// Writes `ck` as `dir/step-{step:08}.safetensors` + `.json` and returns the safetensors path.
pub fn save(dir: &Path, ck: &Checkpoint) -> Result<PathBuf> {
    file::validate(ck)?;
    fs::create_dir_all(dir).map_err(io_err("creating checkpoint dir", dir))?;
    let step = ck.sidecar.step;
    let (st_path, json_path) = (tensors_path(dir, step), sidecar_path(dir, step));
    // Re-saving a step: drop the old sidecar first so the pair reads as incomplete, never as a
    // complete checkpoint whose checksum belongs to the other file.
    match fs::remove_file(&json_path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(io_err("removing old sidecar", &json_path)(e))
        }
        _ => {}
    }

    let entries = file::stored_tensors(ck);
    let header =
        file::header_bytes(&entries, step).map_err(|source| CheckpointError::Safetensors {
            path: st_path.clone(),
            source,
        })?;
    let (bytes, hash) = fsio::write_atomic(&st_path, |w| {
        let mut w = HashingWriter::new(w);
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, t) in &entries {
            for chunk in t.data.chunks(1 << 14) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        Ok(w.digest())
    })
    .map_err(io_err("writing", &st_path))?;

    let digest = Digest {
        file: file_name(&st_path),
        bytes,
        fnv1a64: format!("{hash:016x}"),
    };
    let json = file::sidecar_json(&ck.sidecar, &digest).map_err(|e| CheckpointError::Sidecar {
        path: json_path.clone(),
        message: e.to_string(),
    })?;
    fsio::write_atomic(&json_path, |w| w.write_all(&json))
        .map_err(io_err("writing", &json_path))?;

    let pointer = serde_json::json!({
        "step": step,
        "sidecar": file_name(&json_path),
        "safetensors": digest.file,
    });
    let pointer_path = dir.join(LATEST_POINTER);
    fsio::write_atomic(&pointer_path, |w| {
        serde_json::to_writer_pretty(&mut *w, &pointer)?;
        w.write_all(b"\n")
    })
    .map_err(io_err("writing", &pointer_path))?;
    Ok(st_path)
}

/// Checks the sidecar and the safetensors file's length and checksum without decoding any
/// tensor (what `latest` runs on each candidate); returns the sidecar.
pub fn verify(path: &Path) -> Result<Sidecar> {
    let opened = file::open(path)?;
    let st_path = &opened.st_path;
    let len = fs::metadata(st_path)
        .map_err(io_err("reading", st_path))?
        .len();
    opened.check_len(len)?;
    let (_, hash) = fsio::digest_file(st_path).map_err(io_err("reading", st_path))?;
    opened.check_hash(hash)?;
    Ok(opened.sidecar)
}

/// Loads and verifies the checkpoint `path` (either file of the pair), every value as stored
/// (NaN and infinities included: this is the file format's round trip).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let opened = file::open(path)?;
    let bytes = fs::read(&opened.st_path).map_err(io_err("reading", &opened.st_path))?;
    opened.check_len(bytes.len() as u64)?;
    let mut hash = fsio::Fnv64::new();
    hash.update(&bytes);
    opened.check_hash(hash.finish())?;
    file::decode(opened, &bytes)
}

/// [`load`] for use: a checkpoint to evaluate, resume or inspect, where a NaN or infinity in
/// any tensor is an error naming it (such weights would give garbage without a word).
pub fn load_weights(path: &Path) -> Result<Checkpoint> {
    let ck = load(path)?;
    let stored = [
        ("param/", &ck.params),
        ("adam_m/", &ck.adam_m),
        ("adam_v/", &ck.adam_v),
    ];
    for (prefix, tensors) in stored {
        for (name, t) in tensors.iter() {
            if let Some((index, &value)) = t.data.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(CheckpointError::NonFinite {
                    path: file::pair(path)?.0,
                    tensor: format!("{prefix}{name}"),
                    index,
                    value,
                });
            }
        }
    }
    Ok(ck)
}

/// Whether `ck` holds exactly the tensors `expected` (a model's names and shapes, in any
/// order). The error names the first expected tensor that is missing or shaped differently,
/// else the first unexpected one.
pub fn check_compatible(expected: &[TensorInfo], ck: &Checkpoint) -> Result<()> {
    let at = format!("checkpoint step {}", ck.sidecar.step);
    let found: HashMap<&str, &[usize]> = ck
        .params
        .iter()
        .map(|(n, t)| (n.as_str(), t.shape.as_slice()))
        .collect();
    for e in expected {
        match found.get(e.name.as_str()) {
            None => {
                return Err(CheckpointError::Missing {
                    at,
                    name: e.name.clone(),
                })
            }
            Some(shape) if *shape != e.shape.as_slice() => {
                return Err(CheckpointError::Shape {
                    at,
                    name: e.name.clone(),
                    found: shape.to_vec(),
                    expected: e.shape.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let wanted: std::collections::HashSet<&str> =
        expected.iter().map(|e| e.name.as_str()).collect();
    if let Some((name, _)) = ck.params.iter().find(|(n, _)| !wanted.contains(n.as_str())) {
        return Err(CheckpointError::Extra {
            at,
            name: name.clone(),
        });
    }
    Ok(())
}
