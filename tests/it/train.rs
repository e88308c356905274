//! The training loop end to end: resume reproduces the uninterrupted loss curve, the wgpu
//! backend trains with the CPU backend's losses, a NaN stops the run naming what went bad.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use dsrsq::backend::{CpuBackend, WgpuBackend};
use dsrsq::model::Config;
use dsrsq::train::metrics::read_jsonl;
use dsrsq::train::{train, RunMode, TrainError, TrainOptions};

/// The shared small model, batch 4, with a HOF ramp short enough to reach within a test.
fn small_config() -> Config {
    let mut c = common::small_model_config(4);
    c.hof.rampup_steps = 4;
    c
}

fn options(out: &Path, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(small_config(), "mqar:ctx=64,pairs=4", steps);
    o.out_dir = Some(out.to_path_buf());
    o.checkpoint_every = 3;
    o.keep_checkpoints = 5;
    o.warmup = 2;
    o
}

fn losses(dir: &Path) -> Vec<(u64, f64)> {
    read_jsonl(&dir.join("metrics.jsonl"))
        .expect("metrics")
        .iter()
        .map(|r| {
            (
                r["step"].as_u64().expect("step"),
                r["loss"].as_f64().expect("loss"),
            )
        })
        .collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dsrsq-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn resume_reproduces_the_uninterrupted_loss_curve_bit_for_bit() {
    let full = tmp("full");
    train(&CpuBackend, &options(&full, 6)).expect("uninterrupted run");
    // An interrupted copy: everything after the step-3 checkpoint is gone (as after a crash),
    // including the metrics lines of steps 4..6.
    let cut = tmp("cut");
    std::fs::create_dir_all(cut.join("checkpoints")).expect("mkdir");
    for f in ["step-00000003.safetensors", "step-00000003.json"] {
        std::fs::copy(
            full.join("checkpoints").join(f),
            cut.join("checkpoints").join(f),
        )
        .expect("copy checkpoint");
    }
    std::fs::copy(full.join("metrics.jsonl"), cut.join("metrics.jsonl")).expect("copy metrics");
    let mut o = options(&cut, 6);
    o.mode = RunMode::Resume;
    let s = train(&CpuBackend, &o).expect("resumed run");
    assert_eq!(s.resumed_from, Some(3));
    let (a, b) = (losses(&full), losses(&cut));
    assert_eq!(a.len(), 6);
    // Same seed, same data positions, same optimizer state, deterministic CPU kernels:
    // the curves must be identical, not merely close.
    assert_eq!(a, b, "resumed loss curve differs");
}

#[test]
fn resume_refuses_a_checkpoint_of_another_config() {
    let dir = tmp("other");
    train(&CpuBackend, &options(&dir, 3)).expect("run");
    let mut o = options(&dir, 6);
    o.mode = RunMode::Resume;
    o.config.model.d_model = 64;
    let err = train(&CpuBackend, &o).expect_err("must refuse").to_string();
    assert!(
        err.contains("h0.") || err.contains("wte"),
        "error must name a tensor: {err}"
    );
    assert!(
        err.contains("[30522, 32]") && err.contains("[30522, 64]"),
        "{err}"
    );
}

#[test]
fn a_non_finite_loss_stops_training_with_the_step_and_term() {
    let dir = tmp("nan");
    let mut o = options(&dir, 3);
    o.config.train.learning_rate = f32::INFINITY;
    // An infinite learning rate passes no validation, so set it after: step 1 updates the
    // parameters to inf/NaN and step 2's loss is not finite.
    let err = train(&CpuBackend, &o).expect_err("must stop");
    match err {
        TrainError::NonFinite { step, ref what } => {
            assert_eq!(step, 1, "{err}");
            assert!(
                what.contains("loss term") || what.contains("gradient"),
                "{what}"
            );
        }
        other => panic!("expected NonFinite, got {other}"),
    }
}

/// Loss per step on wgpu vs CPU over 20 optimizer steps. Early steps agree to f32 rounding;
/// AdamW's normalized updates then let rounding differences grow slowly. 2e-3 relative on a
/// loss of ~10 is far below what any wrong gradient or op would cause (a single wrong term
/// changes the curve by O(0.1) within a few steps).
const CURVE_RTOL: f64 = 2e-3;

#[test]
fn wgpu_trains_20_steps_with_the_cpu_losses() {
    if common::gpu("wgpu_trains_20_steps_with_the_cpu_losses").is_none() {
        return;
    }
    let gpu = WgpuBackend::new(Arc::new(
        dsrsq::device::GpuContext::from_env().expect("adapter found above"),
    ));
    let (dc, dg) = (tmp("cpu20"), tmp("gpu20"));
    let mut oc = options(&dc, 20);
    oc.checkpoint_every = 0;
    let mut og = options(&dg, 20);
    og.checkpoint_every = 0;
    train(&CpuBackend, &oc).expect("cpu run");
    train(&gpu, &og).expect("wgpu run");
    let (a, b) = (losses(&dc), losses(&dg));
    assert_eq!(a.len(), 20);
    for ((s, x), (_, y)) in a.iter().zip(&b) {
        let lim = CURVE_RTOL * x.abs();
        assert!(
            (x - y).abs() <= lim,
            "step {s}: cpu loss {x}, wgpu loss {y}"
        );
    }
    let rec = read_jsonl(&dg.join("metrics.jsonl")).expect("metrics");
    assert!(
        rec[0]["device_peak_bytes"].as_u64().unwrap_or(0) > 0,
        "wgpu runs log device memory"
    );
}

#[test]
fn curriculum_stages_feed_their_steps_then_the_target_data() {
    let dir = tmp("stages");
    let mut o = options(&dir, 4);
    o.stages = vec![("mqar:ctx=32,pairs=2".into(), 2)];
    o.checkpoint_every = 0;
    train(&CpuBackend, &o).expect("run");
    let rec = read_jsonl(&dir.join("metrics.jsonl")).expect("metrics");
    let tokens: Vec<u64> = rec
        .iter()
        .map(|r| r["tokens"].as_u64().expect("tokens"))
        .collect();
    // 4 examples per step: ctx 32 + 2 questions... vs ctx 64 + 4 questions.
    assert!(
        tokens[0] == tokens[1] && tokens[2] == tokens[3],
        "{tokens:?}"
    );
    assert!(
        tokens[0] < tokens[2],
        "stage data first, then --data: {tokens:?}"
    );

    let mut bad = options(&tmp("stages-bad"), 4);
    bad.stages = vec![
        ("mqar:ctx=32,pairs=2".into(), 3),
        ("mqar:ctx=48,pairs=2".into(), 2),
    ];
    let err = train(&CpuBackend, &bad)
        .expect_err("out of order")
        .to_string();
    assert!(err.contains("stage 2"), "{err}");
}

#[test]
fn a_synthetic_task_trains_with_just_the_vocabulary_it_uses() {
    // MQAR with 64-id ranges uses ids below 1996 + 3·64 = 2188 (the specials are below 1996).
    let data = "mqar:ctx=64,pairs=4,range=64";
    let mut o = options(&tmp("vocab-fits"), 2);
    o.data = data.into();
    o.checkpoint_every = 0;
    o.config.model.vocab_size = 2188;
    train(&CpuBackend, &o).expect("a vocabulary covering the task's ids trains");

    let mut small = options(&tmp("vocab-small"), 2);
    small.data = data.into();
    small.config.model.vocab_size = 2187;
    let err = train(&CpuBackend, &small)
        .expect_err("one id short")
        .to_string();
    assert!(
        err.contains("model.vocab_size is 2187") && err.contains("below 2188"),
        "{err}"
    );

    // A stage drawing text from the whole tokenizer needs the whole vocabulary.
    let mut stage = options(&tmp("vocab-stage"), 2);
    stage.data = data.into();
    stage.config.model.vocab_size = 2188;
    stage.stages = vec![("passkey:ctx=64".into(), 1)];
    let err = train(&CpuBackend, &stage)
        .expect_err("passkey needs the tokenizer's vocabulary")
        .to_string();
    assert!(err.contains("passkey") && err.contains("30522"), "{err}");
}
