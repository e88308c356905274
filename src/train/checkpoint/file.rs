//! The on-disk encoding of one checkpoint pair: the safetensors header and tensor bytes, the
//! sidecar JSON with its digest, and the checks `load`/`verify` run on them.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Metadata, TensorInfo as StInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};

use super::{io_err, Checkpoint, CheckpointError, Result, Sidecar, TensorInfo, CHECKPOINT_FORMAT};
use crate::Tensor;

const PARAM: &str = "param/";
const ADAM_M: &str = "adam_m/";
const ADAM_V: &str = "adam_v/";
/// The sidecar key holding the safetensors file's digest (kept out of `Sidecar` so a caller
/// never has to fill it in).
const DIGEST_KEY: &str = "safetensors";

/// What the sidecar records about its safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Digest {
    pub file: String,
    pub bytes: u64,
    /// FNV-1a 64 as 16 hex digits (JSON numbers above 2^53 are not portable).
    pub fnv1a64: String,
}

/// A sidecar read and checked against its safetensors file's name; the tensors are not read.
pub(super) struct Opened {
    pub st_path: PathBuf,
    pub sidecar: Sidecar,
    pub bytes: u64,
    pub hash: u64,
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The tensors in file order, under their prefixed names.
pub(super) fn stored_tensors(ck: &Checkpoint) -> Vec<(String, &Tensor)> {
    [
        (PARAM, &ck.params),
        (ADAM_M, &ck.adam_m),
        (ADAM_V, &ck.adam_v),
    ]
    .into_iter()
    .flat_map(|(prefix, list)| list.iter().map(move |(n, t)| (format!("{prefix}{n}"), t)))
    .collect()
}

/// The safetensors header (JSON padded to 8 bytes, as the format asks), built here rather than
/// by `safetensors::serialize` so the tensors stream to disk instead of being copied into one
/// buffer the size of the checkpoint.
pub(super) fn header_bytes(
    entries: &[(String, &Tensor)],
    step: u64,
) -> std::result::Result<Vec<u8>, SafeTensorError> {
    let mut offset = 0;
    let infos = entries
        .iter()
        .map(|(name, t)| {
            let end = offset + t.data.len() * 4;
            let info = StInfo {
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                data_offsets: (offset, end),
            };
            offset = end;
            (name.clone(), info)
        })
        .collect();
    let meta = HashMap::from([
        (
            "format".to_string(),
            format!("dsrsq-checkpoint-{CHECKPOINT_FORMAT}"),
        ),
        ("step".to_string(), step.to_string()),
    ]);
    let mut header = serde_json::to_vec(&Metadata::new(Some(meta), infos)?)?;
    header.resize(header.len().next_multiple_of(8), b' ');
    Ok(header)
}

pub(super) fn sidecar_json(sidecar: &Sidecar, digest: &Digest) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(sidecar)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(DIGEST_KEY.into(), serde_json::to_value(digest)?);
    }
    let mut bytes = serde_json::to_vec_pretty(&value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Rejects a checkpoint whose parts disagree, before anything is written.
pub(super) fn validate(ck: &Checkpoint) -> Result<()> {
    let invalid = |message: String| {
        Err(CheckpointError::Invalid {
            at: format!("saving checkpoint step {}", ck.sidecar.step),
            message,
        })
    };
    if ck.sidecar.format != CHECKPOINT_FORMAT {
        return invalid(format!(
            "sidecar format is {}, expected {CHECKPOINT_FORMAT}",
            ck.sidecar.format
        ));
    }
    if ck.sidecar.tensors != TensorInfo::list(&ck.params) {
        return invalid("sidecar.tensors does not list the params' names and shapes".into());
    }
    let mut seen = HashSet::new();
    if let Some((name, _)) = ck
        .params
        .iter()
        .find(|(n, _)| n.is_empty() || !seen.insert(n.as_str()))
    {
        return invalid(format!("parameter name `{name}` is empty or repeated"));
    }
    if ck.adam_m.is_empty() != ck.adam_v.is_empty() {
        return invalid("adam_m and adam_v must both be empty or both be present".into());
    }
    for (kind, list) in [
        ("param", &ck.params),
        ("adam_m", &ck.adam_m),
        ("adam_v", &ck.adam_v),
    ] {
        if !list.is_empty() && TensorInfo::list(list) != ck.sidecar.tensors {
            return invalid(format!(
                "{kind} does not match the params' names and shapes"
            ));
        }
        if let Some((name, t)) = list
            .iter()
            .find(|(_, t)| t.data.len() != t.shape.iter().product::<usize>())
        {
            return invalid(format!(
                "{kind} `{name}` has {} values for shape {:?}",
                t.data.len(),
                t.shape
            ));
        }
    }
    Ok(())
}

/// The `(safetensors, sidecar)` pair `path` (either of them) belongs to.
pub(super) fn pair(path: &Path) -> Result<(PathBuf, PathBuf)> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors" | "json") => Ok((
            path.with_extension("safetensors"),
            path.with_extension("json"),
        )),
        _ => Err(CheckpointError::Invalid {
            at: path.display().to_string(),
            message: "a checkpoint path ends in .safetensors or .json".into(),
        }),
    }
}

/// Reads the sidecar of the pair `path` belongs to.
pub(super) fn open(path: &Path) -> Result<Opened> {
    let (st_path, json_path) = pair(path)?;
    let bad = |message: String| CheckpointError::Sidecar {
        path: json_path.clone(),
        message,
    };
    let text = fs::read(&json_path).map_err(io_err("reading", &json_path))?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    // The version is checked before the rest is parsed, so another format's fields surface as
    // a version mismatch rather than as a confusing parse error.
    let format = map
        .get("format")
        .and_then(|f| f.as_u64())
        .ok_or_else(|| bad("no numeric `format`".into()))?;
    if format != u64::from(CHECKPOINT_FORMAT) {
        return Err(CheckpointError::Format {
            path: json_path,
            found: format,
            expected: CHECKPOINT_FORMAT,
        });
    }
    let digest = map
        .remove(DIGEST_KEY)
        .ok_or_else(|| bad(format!("no `{DIGEST_KEY}` digest")))?;
    let digest: Digest =
        serde_json::from_value(digest).map_err(|e| bad(format!("`{DIGEST_KEY}`: {e}")))?;
    if digest.file != file_name(&st_path) {
        return Err(bad(format!(
            "describes {:?}, not {:?}",
            digest.file,
            file_name(&st_path)
        )));
    }
    let hash = u64::from_str_radix(&digest.fnv1a64, 16)
        .map_err(|e| bad(format!("fnv1a64 {:?}: {e}", digest.fnv1a64)))?;
    let sidecar: Sidecar = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    Ok(Opened {
        st_path,
        sidecar,
        bytes: digest.bytes,
        hash,
    })
}

impl Opened {
    pub fn check_len(&self, found: u64) -> Result<()> {
        if found != self.bytes {
            return Err(CheckpointError::Truncated {
                path: self.st_path.clone(),
                expected: self.bytes,
                found,
            });
        }
        Ok(())
    }

    pub fn check_hash(&self, found: u64) -> Result<()> {
        if found != self.hash {
            return Err(CheckpointError::Checksum {
                path: self.st_path.clone(),
                expected: self.hash,
                found,
            });
        }
        Ok(())
    }
}

/// All tensors of a verified safetensors file, in the sidecar's order.
pub(super) fn decode(opened: Opened, bytes: &[u8]) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|source| CheckpointError::Safetensors {
        path: opened.st_path.clone(),
        source,
    })?;
    let at = opened.st_path.display().to_string();
    let sidecar = opened.sidecar;
    let get = |prefix: &str, info: &TensorInfo| -> Result<(String, Tensor)> {
        let key = format!("{prefix}{}", info.name);
        let view = st.tensor(&key).map_err(|_| CheckpointError::Missing {
            at: at.clone(),
            name: key.clone(),
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Invalid {
                at: at.clone(),
                message: format!("tensor `{key}` is {:?}, expected F32", view.dtype()),
            });
        }
        if view.shape() != info.shape.as_slice() {
            return Err(CheckpointError::Shape {
                at: at.clone(),
                name: key,
                found: view.shape().to_vec(),
                expected: info.shape.clone(),
            });
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape = info.shape.clone();
        Ok((info.name.clone(), Tensor { data, shape }))
    };
    let all = |prefix: &str| -> Result<Vec<(String, Tensor)>> {
        sidecar.tensors.iter().map(|i| get(prefix, i)).collect()
    };
    let params = all(PARAM)?;
    let has_moments = st.names().iter().any(|n| n.starts_with(ADAM_M));
    let (adam_m, adam_v) = if has_moments {
        (all(ADAM_M)?, all(ADAM_V)?)
    } else {
        (Vec::new(), Vec::new())
    };
    if st.len() != params.len() + adam_m.len() + adam_v.len() {
        let prefixes: &[&str] = if has_moments {
            &[PARAM, ADAM_M, ADAM_V]
        } else {
            &[PARAM]
        };
        let known: HashSet<String> = sidecar
            .tensors
            .iter()
            .flat_map(|i| prefixes.iter().map(move |p| format!("{p}{}", i.name)))
            .collect();
        let mut names = st.names();
        names.sort();
        let name = names
            .into_iter()
            .find(|n| !known.contains(*n))
            .unwrap_or_default()
            .to_string();
        return Err(CheckpointError::Extra { at, name });
    }
    Ok(Checkpoint {
        sidecar,
        params,
        adam_m,
        adam_v,
    })
}
