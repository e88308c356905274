//! `dsrsq train` as a user runs it: SIGKILL while a checkpoint is being written leaves the
//! previous checkpoint loadable, and `--resume` finishes the run from it; bad flags and
//! configs fail with messages that name the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dsrsq::model::Config;
use dsrsq::train::checkpoint;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_dsrsq")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsrsq-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// A small model (its checkpoint is ~12 MB: embedding + two AdamW moments) as a TOML file.
fn write_config(dir: &Path) -> PathBuf {
    let mut c = Config::preset("tiny").expect("preset");
    c.model.d_model = 32;
    c.model.hidden_dim = 16;
    c.model.heads = 2;
    c.model.layers = 1;
    c.dsr.reduced_dim = 8;
    c.dsr.base_budget = 32;
    c.dsr.block = 8;
    c.sqa.clusters = 4;
    c.sqa.window = 8;
    c.sqa.sink = 4;
    c.rckv.compressed_dim = 8;
    c.rckv.buffer_size = 40;
    c.rckv.sink = 4;
    c.train.batch_size = 2;
    let path = dir.join("small.toml");
    std::fs::write(&path, toml::to_string(&c).expect("serialize")).expect("write config");
    path
}

fn train_cmd(cfg: &Path, out: &Path, steps: usize) -> Command {
    let mut cmd = Command::new(exe());
    cmd.args([
        "train",
        "--quiet",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "1",
    ])
    .args([
        "--data",
        "mqar:ctx=64,pairs=4",
        "--steps",
        &steps.to_string(),
    ])
    .arg("--config")
    .arg(cfg)
    .arg("--out")
    .arg(out);
    cmd
}

fn has_temp(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(dsrsq::train::TEMP_SUFFIX)
            })
        })
        .unwrap_or(false)
}

#[test]
fn sigkill_during_a_checkpoint_write_keeps_the_previous_one_and_resume_finishes() {
    let dir = tmp("kill");
    let cfg = write_config(&dir);
    let out = dir.join("run");
    let ck = out.join("checkpoints");
    let mut child = train_cmd(&cfg, &out, 10_000)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dsrsq train");
    // Wait for one complete checkpoint, then for a write in progress, and kill right there.
    let t0 = Instant::now();
    let mut killed_mid_write = false;
    while t0.elapsed() < Duration::from_secs(120) {
        let complete = checkpoint::latest(&ck).ok().flatten().is_some();
        if complete && has_temp(&ck) {
            killed_mid_write = true;
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(killed_mid_write, "never saw a checkpoint write in progress");
    let latest = checkpoint::latest(&ck)
        .expect("scan")
        .expect("a complete checkpoint survives");
    let loaded = checkpoint::load(&latest).expect("the surviving checkpoint loads");
    let step = loaded.sidecar.step as usize;
    assert!(step >= 1);

    let status = train_cmd(&cfg, &out, step + 2)
        .arg("--resume")
        .status()
        .expect("resume");
    assert!(status.success(), "resume failed");
    let last = checkpoint::latest(&ck).expect("scan").expect("checkpoint");
    assert_eq!(
        checkpoint::load(&last).expect("load").sidecar.step as usize,
        step + 2
    );
}

#[test]
fn unknown_config_key_and_bad_data_spec_are_named() {
    let dir = tmp("bad");
    let cfg = dir.join("bad.toml");
    let good = std::fs::read_to_string(write_config(&dir)).expect("read");
    std::fs::write(&cfg, good.replace("[model]\n", "[model]\nwidth = 3\n")).expect("write");
    let out = Command::new(exe())
        .args(["train", "--steps", "1", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("width"), "names the unknown key: {err}");

    let out = Command::new(exe())
        .args([
            "train",
            "--steps",
            "1",
            "--data",
            "passkey:ctx=2048,depth=3",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("depth"), "names the bad key: {err}");
}
