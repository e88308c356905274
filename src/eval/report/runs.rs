//! Reading what runs left on disk: each model's `eval.json` (from `dsrsq eval`) and its
//! `metrics.jsonl` (from `dsrsq train`), found one folder below the report's root.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ReportError;
use crate::eval::stream::StreamReport;
use crate::eval::sweep::SweepPoint;
use crate::train::metrics::read_steps;
use crate::train::record::StepRecord;

/// One model's evaluation, as the tables need it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRun {
    pub name: String,
    pub folder: PathBuf,
    /// Task metrics of greedy answers (None for data scored teacher-forced only).
    pub task: Option<Task>,
    pub efficiency: Option<Efficiency>,
    /// Teacher-forced row accuracy (MQAR's metric).
    pub row_accuracy: f64,
    pub device: String,
    pub commit: Option<String>,
    pub seed: u64,
    pub data: String,
    pub wall_seconds: f64,
    /// Training log (empty when the folder has none).
    pub log: Vec<StepRecord>,
    /// The length sweep beside it (`sweep.json`; empty when there is none).
    pub sweep: Vec<SweepPoint>,
    /// The streaming scenario beside it (`stream.json`).
    pub stream: Option<StreamReport>,
    /// Further evaluations beside it (`eval-<label>.json`): label, data spec, task metrics.
    pub extra: Vec<(String, String, Option<Task>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task {
    pub f1: f64,
    pub exact_match: f64,
    pub rouge_l: f64,
    /// On the 0–1 scale, as the seed's tables print it (sacrebleu's score / 100).
    pub bleu: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Efficiency {
    /// Peak bytes of live buffers during decoding (wgpu device / counted CPU heap), or else
    /// the process's peak RSS, in MB (10^6 bytes).
    pub memory_mb: f64,
    pub tokens_per_second: f64,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub token_efficiency: f64,
}

fn num(v: &Value, path: &[&str], file: &Path) -> Result<f64, ReportError> {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    cur.as_f64().ok_or_else(|| ReportError::Field {
        file: file.display().to_string(),
        field: path.join("."),
    })
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ReportError::Json {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(v)
}

fn task_of(v: &Value, path: &Path) -> Result<Option<Task>, ReportError> {
    if v["metrics"]["task"].is_null() {
        return Ok(None);
    }
    Ok(Some(Task {
        f1: num(v, &["metrics", "task", "f1"], path)?,
        exact_match: num(v, &["metrics", "task", "exact_match"], path)?,
        rouge_l: num(v, &["metrics", "task", "rouge_l_f"], path)?,
        bleu: num(v, &["metrics", "task", "bleu"], path)? / 100.0,
    }))
}

/// Parses one `eval.json`.
pub fn read_eval(path: &Path) -> Result<ModelRun, ReportError> {
    let v = read_json(path)?;
    let m = &v["metrics"];
    let task = task_of(&v, path)?;
    let efficiency = if m["efficiency"].is_null() {
        None
    } else {
        let e = &m["efficiency"];
        let bytes = e["peak_bytes"]
            .as_f64()
            .or_else(|| e["peak_rss_bytes"].as_f64())
            .ok_or_else(|| ReportError::Field {
                file: path.display().to_string(),
                field: "metrics.efficiency.peak_bytes or peak_rss_bytes".into(),
            })?;
        Some(Efficiency {
            memory_mb: bytes / 1e6,
            tokens_per_second: num(&v, &["metrics", "efficiency", "tokens_per_second"], path)?,
            latency_p50_s: num(&v, &["metrics", "efficiency", "latency_p50_s"], path)?,
            latency_p95_s: num(&v, &["metrics", "efficiency", "latency_p95_s"], path)?,
            token_efficiency: num(&v, &["metrics", "efficiency", "token_efficiency"], path)?,
        })
    };
    let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let log_path = folder.join("metrics.jsonl");
    let log = if log_path.is_file() {
        read_steps(&log_path).map_err(|e| ReportError::Json {
            path: log_path.display().to_string(),
            detail: e.to_string(),
        })?
    } else {
        Vec::new()
    };
    let sweep_path = folder.join("sweep.json");
    let sweep = if sweep_path.is_file() {
        read_sweep(&sweep_path)?
    } else {
        Vec::new()
    };
    let stream_path = folder.join("stream.json");
    let stream = if stream_path.is_file() {
        let v = read_json(&stream_path)?;
        Some(
            serde_json::from_value(v["stream"].clone()).map_err(|e| ReportError::Json {
                path: stream_path.display().to_string(),
                detail: format!("`stream`: {e}"),
            })?,
        )
    } else {
        None
    };
    let extra = read_extra(&folder)?;
    let name = v["model"]
        .as_str()
        .ok_or_else(|| ReportError::Field {
            file: path.display().to_string(),
            field: "model".into(),
        })?
        .to_string();
    Ok(ModelRun {
        name,
        folder,
        task,
        efficiency,
        row_accuracy: num(&v, &["metrics", "teacher_forced", "row_accuracy"], path)?,
        device: v["device"].as_str().unwrap_or("unknown").to_string(),
        commit: v["commit"].as_str().map(str::to_string),
        seed: v["seed"].as_u64().unwrap_or(0),
        data: v["data"].as_str().unwrap_or("").to_string(),
        wall_seconds: v["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        log,
        sweep,
        stream,
        extra,
    })
}

/// `eval-<label>.json` files in `folder`, by label.
fn read_extra(folder: &Path) -> Result<Vec<(String, String, Option<Task>)>, ReportError> {
    let rd = std::fs::read_dir(folder).map_err(|e| ReportError::Io {
        path: folder.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(label) = file
            .strip_prefix("eval-")
            .and_then(|f| f.strip_suffix(".json"))
        else {
            continue;
        };
        let v = read_json(&entry.path())?;
        let data = v["data"].as_str().unwrap_or("").to_string();
        out.push((label.to_string(), data, task_of(&v, &entry.path())?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn read_sweep(path: &Path) -> Result<Vec<SweepPoint>, ReportError> {
    let v = read_json(path)?;
    serde_json::from_value(v["points"].clone()).map_err(|e| ReportError::Json {
        path: path.display().to_string(),
        detail: format!("`points`: {e}"),
    })
}

/// Every `*/eval.json` one level below `root`, in the order of the seed's tables (DSRSQ,
/// the baselines, then the ablations), unknown names last alphabetically.
pub fn find_runs(root: &Path) -> Result<Vec<ModelRun>, ReportError> {
    let rd = std::fs::read_dir(root).map_err(|e| ReportError::Io {
        path: root.display().to_string(),
        source: e,
    })?;
    let mut runs = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| ReportError::Io {
            path: root.display().to_string(),
            source: e,
        })?;
        let p = entry.path().join("eval.json");
        if p.is_file() {
            runs.push(read_eval(&p)?);
        }
    }
    runs.sort_by(|a, b| (order(&a.name), a.name.as_str()).cmp(&(order(&b.name), b.name.as_str())));
    Ok(runs)
}

/// The seed's row order.
pub const MODEL_ORDER: &[&str] = &[
    "dsrsq",
    "standard",
    "rag",
    "attention_rag",
    "gca",
    "razor",
    "pyramid",
    "no_dsr",
    "no_sqa",
    "no_rckv",
];

fn order(name: &str) -> usize {
    MODEL_ORDER
        .iter()
        .position(|m| *m == name)
        .unwrap_or(MODEL_ORDER.len())
}
