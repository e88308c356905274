//! The JSONL metrics log: create/append, cutting back on resume, and errors naming lines.

use std::fs;
use std::path::{Path, PathBuf};

use dsrsq::train::metrics::{read_jsonl, MetricsError, MetricsLog};
use dsrsq::train::TEMP_SUFFIX;
use serde_json::json;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "dsrsq-metrics-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn steps(path: &Path) -> Vec<Option<u64>> {
    read_jsonl(path)
        .unwrap()
        .iter()
        .map(|r| r.get("step").and_then(|s| s.as_u64()))
        .collect()
}

#[test]
fn log_then_read_back() {
    let tmp = TempDir::new("basic");
    let path = tmp.file("metrics.jsonl");
    let records = [
        json!({"run": "tiny", "seed": 7}),
        json!({"step": 1, "loss": 3.25, "lr": 1e-4, "nested": {"a": [1, 2]}}),
        json!({"step": 2, "loss": 3.0, "note": "line\nbreak"}),
    ];
    let log = MetricsLog::create(&path, false).unwrap();
    for r in &records {
        log.log(r).unwrap();
    }
    assert_eq!(log.path(), path);
    // Written through on return: readable while the log is still open.
    assert_eq!(read_jsonl(&path).unwrap(), records);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "one record per line:\n{text}");
}

#[test]
fn append_keeps_and_create_truncates() {
    let tmp = TempDir::new("append");
    let path = tmp.file("m.jsonl");
    MetricsLog::create(&path, true)
        .unwrap()
        .log(&json!({"step": 1}))
        .unwrap();
    MetricsLog::create(&path, true)
        .unwrap()
        .log(&json!({"step": 2}))
        .unwrap();
    assert_eq!(steps(&path), [Some(1), Some(2)]);
    MetricsLog::create(&path, false)
        .unwrap()
        .log(&json!({"step": 9}))
        .unwrap();
    assert_eq!(steps(&path), [Some(9)]);
}

#[test]
fn log_rejects_non_objects() {
    let tmp = TempDir::new("nonobject");
    let log = MetricsLog::create(&tmp.file("m.jsonl"), false).unwrap();
    let err = log.log(&json!([1, 2])).unwrap_err();
    assert!(matches!(err, MetricsError::NotObject { .. }), "{err}");
    assert!(err.to_string().contains("an array"), "{err}");
    assert_eq!(fs::read_to_string(tmp.file("m.jsonl")).unwrap(), "");
}

#[test]
fn resume_drops_records_after_the_checkpoint() {
    let tmp = TempDir::new("resume");
    let path = tmp.file("m.jsonl");
    let log = MetricsLog::create(&path, false).unwrap();
    log.log(&json!({"run": "header"})).unwrap();
    for step in 1..=6 {
        log.log(&json!({"step": step, "loss": 4.0 - step as f64 * 0.5}))
            .unwrap();
    }
    drop(log);

    let log = MetricsLog::resume(&path, 4).unwrap();
    assert_eq!(steps(&path), [None, Some(1), Some(2), Some(3), Some(4)]);
    log.log(&json!({"step": 5, "resumed": true})).unwrap();
    let records = read_jsonl(&path).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(records[5], json!({"step": 5, "resumed": true}));
    assert_eq!(records[2], json!({"step": 2, "loss": 3.0}));
    let temps: Vec<_> = fs::read_dir(&tmp.0)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(TEMP_SUFFIX)
        })
        .collect();
    assert!(temps.is_empty(), "resume left temp files");
}

#[test]
fn resume_drops_a_torn_last_line_only() {
    let tmp = TempDir::new("torn");
    let path = tmp.file("m.jsonl");
    fs::write(&path, "{\"step\": 1}\n\n{\"step\": 2}\n{\"step\": 3, \"lo").unwrap();
    MetricsLog::resume(&path, 10)
        .unwrap()
        .log(&json!({"step": 3}))
        .unwrap();
    assert_eq!(steps(&path), [Some(1), Some(2), Some(3)]);

    // A bad line that is not the last is damage, not a crash artefact: refuse to guess.
    fs::write(&path, "{\"step\": 1}\nnot json\n{\"step\": 2}\n").unwrap();
    let err = MetricsLog::resume(&path, 10).unwrap_err();
    assert!(matches!(err, MetricsError::Line { line: 2, .. }), "{err}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\"step\": 1}\nnot json\n{\"step\": 2}\n",
        "a failed resume leaves the file as it was"
    );

    fs::write(&path, "{\"step\": -3}\n").unwrap();
    let err = MetricsLog::resume(&path, 10).unwrap_err().to_string();
    assert!(err.contains(":1:") && err.contains("`step` is -3"), "{err}");
}

#[test]
fn resume_without_a_file_starts_empty() {
    let tmp = TempDir::new("fresh");
    let path = tmp.file("m.jsonl");
    MetricsLog::resume(&path, 3)
        .unwrap()
        .log(&json!({"step": 4}))
        .unwrap();
    assert_eq!(steps(&path), [Some(4)]);
}

#[test]
fn read_errors_name_the_line() {
    let tmp = TempDir::new("errors");
    let path = tmp.file("m.jsonl");
    fs::write(&path, "{\"step\": 1}\n{\"step\": 2}\n{\"step\": \n").unwrap();
    let err = read_jsonl(&path).unwrap_err();
    assert!(matches!(err, MetricsError::Line { line: 3, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("m.jsonl:3:"), "{text}");

    fs::write(&path, "{\"step\": 1}\n\n[1, 2]\n").unwrap();
    let text = read_jsonl(&path).unwrap_err().to_string();
    assert!(
        text.contains("m.jsonl:3:") && text.contains("expected a JSON object, got an array"),
        "{text}"
    );

    let err = read_jsonl(&tmp.file("missing.jsonl")).unwrap_err();
    assert!(matches!(err, MetricsError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}
