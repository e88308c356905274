//! Snapshot tests of every view on a fixed seed, with a tiny checkpoint trained here (the
//! `micro` preset, 4 steps on the CPU backend), rendered headless through wgpu (lavapipe on
//! CI); and a test that drives the run panel's Start/Stop buttons.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test -p dsrsq-app` rewrites `tests/snapshots/*.png`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dsrsq::backend::CpuBackend;
use dsrsq::train::{TrainOptions, TrainSession};
use dsrsq_app::trainer::TrainState;
use dsrsq_app::{AppState, Tab};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use serde_json::Value;

const SIZE: [f32; 2] = [1000.0, 640.0];

struct Fixture {
    checkpoint: PathBuf,
    records: Vec<Value>,
}

/// A 4-step micro checkpoint under a fixed path (the path is drawn in the run panel).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join("dsrsq-app-snapshots");
        let _ = std::fs::remove_dir_all(&dir);
        let p = dsrsq::eval::reproduce::preset("micro").expect("micro preset");
        let be = CpuBackend;
        let mut opts = TrainOptions::new(p.config, &p.data, 4);
        opts.warmup = 1;
        opts.out_dir = Some(dir.clone());
        let mut s = TrainSession::open(&be, opts).expect("session");
        let mut records = Vec::new();
        while !s.finished() {
            let mut r = s.step(&be).expect("step");
            // Timing and memory differ per run and machine: pinned so the image is stable.
            r.tokens_per_s = 1000.0 + 50.0 * records.len() as f64;
            r.step_seconds = 0.25;
            r.seconds = records.len() as f64;
            r.peak_rss_bytes = Some(200_000_000);
            records.push(serde_json::to_value(&r).expect("record"));
        }
        let checkpoint = s.save_checkpoint(&be).expect("checkpoint");
        Fixture {
            checkpoint,
            records,
        }
    })
}

fn state(tab: Tab) -> AppState {
    let f = fixture();
    let mut st = AppState::new(None);
    st.frames.show = false;
    st.form.set_preset(2);
    st.form.checkpoint = f.checkpoint.display().to_string();
    st.form.input_spec = "passkey:ctx=256".into();
    st.load_from_form();
    assert!(st.errors.is_empty(), "{:?}", st.errors);
    st.tab = tab;
    st
}

fn harness(st: AppState) -> Harness<'static, AppState> {
    Harness::builder().with_size(SIZE).wgpu().build_ui_state(
        |ui, st: &mut AppState| {
            // What the window's clear colour gives the app (the harness clears to
            // transparent, and no panel paints the background).
            let bg = dsrsq_app::background(ui.visuals());
            ui.painter().rect_filled(ui.max_rect(), 0.0, bg);
            st.show(ui)
        },
        st,
    )
}

/// Runs frames until the view's data, computed off the UI thread, has arrived and drawn.
fn settle(h: &mut Harness<'static, AppState>) {
    let t0 = Instant::now();
    // `step`, not `run`: the spinner shown meanwhile keeps asking for frames.
    h.step();
    while h.state().view_busy() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the view's computation did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run();
}

#[test]
fn metrics_view() {
    let mut st = state(Tab::Metrics);
    st.metrics.set_records(fixture().records.clone());
    st.metrics.source = "fixture run".into();
    let mut h = harness(st);
    h.run();
    assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
    h.snapshot("metrics");
}

#[test]
fn attention_view() {
    let mut st = state(Tab::Attention);
    st.attention.query = Some(40);
    let mut h = harness(st);
    settle(&mut h);
    let a = h.state().attention.data.as_ref().expect("attention data");
    assert!(a.recall > 0.0 && a.recall <= 1.0 + 1e-6);
    assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
    h.snapshot("attention");
}

#[test]
fn dsr_view() {
    let mut h = harness(state(Tab::Dsr));
    settle(&mut h);
    let d = h.state().dsr.data.as_ref().expect("dsr data");
    assert_eq!(d.scores.len(), d.n_ctx);
    assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
    h.snapshot("dsr");
}

#[test]
fn cache_view() {
    let mut st = state(Tab::Cache);
    st.pending_feed = 150; // past the micro ring's 96 slots: it has rotated
    let mut h = harness(st);
    settle(&mut h);
    let r = h.state().cache.rings.first().expect("ring").clone();
    assert_eq!(r.written, 150);
    assert!(r.slots.iter().all(|s| s.live));
    assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
    h.snapshot("cache");
}

#[test]
fn a_failed_view_computation_is_an_error_in_the_ui() {
    // Parameters that do not fit their config: the model cannot be built on the view's
    // thread, and the error comes back to the UI.
    let mut st = state(Tab::Dsr);
    let mut s = (**st.subject.as_ref().expect("loaded")).clone();
    s.cfg.model.vocab_size += 1;
    st.subject = Some(std::sync::Arc::new(s));
    let mut h = harness(st);
    settle(&mut h);
    let errs = &h.state().errors;
    assert!(
        errs.iter()
            .any(|e| e.starts_with("DSR view: parameters: tensor `wte` has shape")),
        "{errs:?}"
    );
    assert!(h.state().dsr.data.is_none());
}

#[test]
fn bad_checkpoint_is_an_error_in_the_ui() {
    let mut st = AppState::new(None);
    st.form.checkpoint = "/nonexistent/run".into();
    st.load_from_form();
    assert!(st.subject.is_none());
    assert!(
        st.errors.iter().any(|e| e.contains("no such file")),
        "{:?}",
        st.errors
    );
    st.form.config = "no-such-preset".into();
    st.form.checkpoint = fixture().checkpoint.display().to_string();
    st.load_from_form();
    assert!(st.subject.is_none());
    assert_eq!(st.errors.len(), 2, "{:?}", st.errors);
}

#[test]
fn start_and_stop_buttons_drive_training() {
    let dir = std::env::temp_dir().join(format!("dsrsq-app-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut st = AppState::new(None);
    st.frames.show = false;
    st.form.set_preset(2); // micro
    st.form.steps = 100_000;
    st.form.out_dir = dir.display().to_string();
    let mut h = harness(st);
    h.step();
    h.get_by_label("Start training").click();
    h.step();
    assert_eq!(
        h.state().trainer.as_ref().map(|t| t.state),
        Some(TrainState::Running)
    );
    let t0 = Instant::now();
    while h.state().metrics.records().len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no training step arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.get_by_label("Pause").click();
    h.step();
    assert_eq!(
        h.state().trainer.as_ref().map(|t| t.state),
        Some(TrainState::Paused)
    );
    h.get_by_label("Stop").click();
    h.step();
    while h.state().trainer.as_ref().map(|t| t.state) != Some(TrainState::Ended) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "training did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let st = h.state();
    assert!(st.errors.is_empty(), "{:?}", st.errors);
    let steps = st.metrics.records().len();
    assert!((2..100_000).contains(&steps));
    assert!(
        st.subject.is_some(),
        "the stopped run's parameters are viewable"
    );
    assert!(
        st.form.checkpoint.ends_with(".safetensors"),
        "{}",
        st.form.checkpoint
    );
    let _ = std::fs::remove_dir_all(&dir);
}
