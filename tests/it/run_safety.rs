//! A training run is never lost or mixed with another: one writer per folder, no silent reuse of
//! a finished run, no rewinding a run, no NaN weights loaded, no unbounded allocation from a
//! typo, stale temp files cleared, and every skip or fallback said out loud.

use std::path::{Path, PathBuf};
use std::process::Command;

use dsrsq::backend::CpuBackend;
use dsrsq::data::DataSpec;
use dsrsq::model::Config;
use dsrsq::train::checkpoint::{self, CheckpointError};
use dsrsq::train::{train, RunMode, TrainError, TrainOptions, TrainSession};

use crate::common;

fn small_config() -> Config {
    let mut c = common::small_model_config(2);
    c.hof.rampup_steps = 2;
    c
}

fn options(out: &Path, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(small_config(), "mqar:ctx=64,pairs=4", steps);
    o.out_dir = Some(out.to_path_buf());
    o.checkpoint_every = 3;
    o.keep_checkpoints = 5;
    o.warmup = 1;
    o
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsrsq-safety-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Every file under `dir` with its bytes, sorted (the lock file aside: it names its holder).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "train.lock") {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_run_into_a_folder_in_use_is_refused_naming_the_holder() {
    let dir = tmp("lock");
    let holder = TrainSession::open(&CpuBackend, options(&dir, 3)).expect("first session");
    let err = train(&CpuBackend, &options(&dir, 3)).expect_err("second writer must be refused");
    match &err {
        TrainError::RunInUse { holder, .. } => {
            assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "{err}"
            );
        }
        other => panic!("expected RunInUse, got {other}"),
    }
    // Resuming is a writer too.
    let mut o = options(&dir, 3);
    o.mode = RunMode::Resume;
    assert!(matches!(
        train(&CpuBackend, &o),
        Err(TrainError::RunInUse { .. })
    ));
    drop(holder);
    // The lock goes with its holder: the folder is usable again (it holds an empty log only,
    // which counts as a run, so overwrite it).
    let mut o = options(&dir, 1);
    o.mode = RunMode::Overwrite;
    train(&CpuBackend, &o).expect("after the holder is gone");
}

#[test]
fn a_new_run_into_a_finished_one_is_refused_and_leaves_it_intact() {
    let dir = tmp("exists");
    train(&CpuBackend, &options(&dir, 3)).expect("run");
    let before = snapshot(&dir);
    for steps in [3, 1] {
        let err = train(&CpuBackend, &options(&dir, steps)).expect_err("must refuse");
        assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("metrics.jsonl")
                && text.contains("--resume")
                && text.contains("--overwrite"),
            "{text}"
        );
    }
    assert_eq!(snapshot(&dir), before, "a refused run changed the folder");
    let err = TrainSession::open(&CpuBackend, options(&dir, 0))
        .err()
        .expect("--steps 0 must be refused");
    assert!(err.to_string().contains("--steps is 0"), "{err}");
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn overwrite_replaces_only_a_runs_own_files() {
    let dir = tmp("overwrite");
    train(&CpuBackend, &options(&dir, 6)).expect("run");
    let mut o = options(&dir, 2);
    o.mode = RunMode::Overwrite;
    let s = train(&CpuBackend, &o).expect("overwrite");
    assert!(
        s.notices
            .iter()
            .any(|n| n.contains("removed the previous run")),
        "{:?}",
        s.notices
    );
    let records = dsrsq::train::metrics::read_steps(&dir.join("metrics.jsonl")).expect("log");
    assert_eq!(
        records.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let latest = checkpoint::latest(&dir.join("checkpoints"))
        .expect("scan")
        .expect("checkpoint");
    assert_eq!(checkpoint::load(&latest).expect("load").sidecar.step, 2);
    let old: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("step-0000000"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with("step-00000002"))
        .collect();
    assert!(old.is_empty(), "checkpoints of the old run survived");

    std::fs::write(dir.join("notes.txt"), "mine").expect("write");
    let err = train(&CpuBackend, &o).expect_err("a foreign file must stop --overwrite");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).expect("kept"),
        "mine"
    );
}

#[test]
fn resume_never_rewinds_a_run() {
    let dir = tmp("rewind");
    train(&CpuBackend, &options(&dir, 6)).expect("run");
    let before = snapshot(&dir);
    for steps in [6, 2] {
        let mut o = options(&dir, steps);
        o.mode = RunMode::Resume;
        let err = train(&CpuBackend, &o).expect_err("must refuse");
        let text = err.to_string();
        assert!(
            text.contains("already at step 6") && text.contains(&format!("--steps {steps}")),
            "{text}"
        );
    }
    assert_eq!(
        snapshot(&dir),
        before,
        "a refused resume changed the folder"
    );
}

#[test]
fn a_checkpoint_holding_nan_is_refused_naming_the_tensor() {
    let dir = tmp("nan");
    let s = train(&CpuBackend, &options(&dir, 1)).expect("run");
    let path = s.checkpoint.expect("checkpoint");
    let mut ck = checkpoint::load(&path).expect("load");
    let (name, t) = &mut ck.params[1];
    t.data[3] = f32::NAN;
    let name = name.clone();
    ck.sidecar.step = 7;
    let bad = checkpoint::save(&dir.join("bad"), &ck).expect("save");
    // The file format round-trips any value; loading the weights for use refuses it.
    assert!(checkpoint::load(&bad).is_ok());
    match checkpoint::load_weights(&bad) {
        Err(CheckpointError::NonFinite { tensor, index, .. }) => {
            assert_eq!(tensor, format!("param/{name}"));
            assert_eq!(index, 3);
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    // As a user meets it: `dsrsq eval` on that checkpoint fails naming the tensor.
    let out = Command::new(env!("CARGO_BIN_EXE_dsrsq"))
        .args([
            "eval",
            "--quiet",
            "--data",
            "mqar:ctx=64,pairs=4",
            "--examples",
            "1",
        ])
        .arg("--checkpoint")
        .arg(&bad)
        .output()
        .expect("run dsrsq eval");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("param/{name}")) && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn a_context_over_the_limit_is_refused_before_any_allocation() {
    for spec in [
        "passkey:ctx=99999999999",
        "mqar:ctx=2000000,pairs=4",
        "needle:ctx=1048577",
    ] {
        let err = DataSpec::parse(spec).expect_err(spec).to_string();
        assert!(
            err.contains("ctx") && err.contains("limit"),
            "{spec}: {err}"
        );
    }
    assert!(DataSpec::parse("passkey:ctx=1048576").is_ok());
}

#[test]
fn stale_temp_files_are_removed_and_reported() {
    let dir = tmp("temps");
    train(&CpuBackend, &options(&dir, 3)).expect("run");
    let stale = [
        dir.join("checkpoints/latest.json.4194304.tmp"),
        dir.join("checkpoints/step-00000006.safetensors.4194304.tmp"),
        dir.join("metrics.jsonl.4194304.tmp"),
    ];
    for p in &stale {
        std::fs::write(p, b"torn").expect("write");
    }
    // A file of the user's that merely ends in `.tmp` is not a writer's temp file.
    let mine = dir.join("notes.tmp");
    std::fs::write(&mine, b"mine").expect("write");
    let mut o = options(&dir, 4);
    o.mode = RunMode::Resume;
    let s = train(&CpuBackend, &o).expect("resume");
    for p in &stale {
        assert!(!p.exists(), "{} survived", p.display());
    }
    assert!(mine.exists(), "a user's .tmp file was removed");
    let note = s
        .notices
        .iter()
        .find(|n| n.contains("temp file"))
        .expect("a notice");
    assert!(note.starts_with("removed 3 temp file(s)"), "{note}");
    assert!(note.contains("latest.json.4194304.tmp"), "{note}");
}

#[test]
fn skip_bad_says_how_many_records_it_skipped() {
    let dir = tmp("skip");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let data = dir.join("qa.jsonl");
    let mut lines: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"question": "what is item {i}", "answer": ["thing {i}"]}}"#))
        .collect();
    lines.insert(3, r#"{"question": "no answer"}"#.into());
    lines.insert(7, r#"{"question": "torn", "answer": ["x"]"#.into());
    std::fs::write(&data, lines.join("\n")).expect("write");
    let spec = format!("nq-open:{},holdout=0.25", data.display());
    let mut o = TrainOptions::new(small_config(), &spec, 1);
    o.skip_bad = true;
    let s = train(&CpuBackend, &o).expect("train with --skip-bad");
    let note = s
        .notices
        .iter()
        .find(|n| n.contains("--skip-bad"))
        .expect("a notice");
    assert!(note.contains("skipped 2 malformed record(s)"), "{note}");
    assert!(note.contains("kept 12"), "{note}");
    o.skip_bad = false;
    assert!(
        train(&CpuBackend, &o).is_err(),
        "without --skip-bad it stops"
    );
}

#[test]
fn resume_past_a_corrupt_newest_checkpoint_says_so() {
    let dir = tmp("fallback");
    train(&CpuBackend, &options(&dir, 6)).expect("run");
    let newest = checkpoint::tensors_path(&dir.join("checkpoints"), 6);
    let mut bytes = std::fs::read(&newest).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&newest, bytes).expect("corrupt");
    let mut o = options(&dir, 7);
    o.mode = RunMode::Resume;
    let s = train(&CpuBackend, &o).expect("resume");
    assert_eq!(s.resumed_from, Some(3));
    assert!(
        s.notices
            .iter()
            .any(|n| n.contains("passed over") && n.contains("step-00000006")),
        "{:?}",
        s.notices
    );
    assert!(
        s.notices
            .iter()
            .any(|n| n.contains("continuing from") && n.contains("step-00000003")),
        "{:?}",
        s.notices
    );
}
