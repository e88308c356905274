//! Shared test plumbing: one device per test binary, loud SKIPs, and the strict mode CI uses.
#![allow(dead_code)]

use std::io::Write;
use std::sync::OnceLock;

use dsrsq::device::GpuContext;

/// The wgpu context for adapter tests, or `None` (after a loud SKIP line) when no adapter
/// exists. With `DSRSQ_REQUIRE_GPU=1` (set by `.ci/run`) a missing adapter fails the test.
pub fn gpu(test: &str) -> Option<&'static GpuContext> {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        let r = GpuContext::from_env().map_err(|e| e.to_string());
        if let Ok(c) = &r {
            loud(&format!("wgpu adapter for kernel tests: {}", c.adapter));
        }
        r
    });
    match ctx {
        Ok(c) => Some(c),
        Err(e) => {
            if std::env::var("DSRSQ_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("DSRSQ_REQUIRE_GPU=1 but no wgpu adapter: {e}");
            }
            loud(&format!("!!!!!!!! SKIP {test}: {e} !!!!!!!!"));
            None
        }
    }
}

/// Writes straight to stderr: libtest captures `eprintln!` of passing tests, and a SKIP or the
/// adapter in use must be seen.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Asserts with the helper's message on failure.
#[track_caller]
pub fn assert_ok(r: Result<(), String>) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A model small enough for lavapipe with all three components on: MQAR or passkey contexts
/// of ~64 tokens against a 32-token DSR budget and a 40-slot ring.
pub fn small_model_config(batch: usize) -> dsrsq::model::Config {
    let mut c = dsrsq::model::Config::preset("tiny").expect("tiny preset");
    c.model.d_model = 32;
    c.model.hidden_dim = 16;
    c.model.heads = 2;
    c.model.layers = 2;
    c.dsr.reduced_dim = 8;
    c.dsr.base_budget = 32;
    c.dsr.block = 8;
    c.sqa.clusters = 4;
    c.sqa.top_k = 2;
    c.sqa.window = 8;
    c.sqa.sink = 4;
    c.rckv.compressed_dim = 8;
    c.rckv.buffer_size = 40;
    c.rckv.sink = 4;
    c.train.batch_size = batch;
    c.validate("test").expect("valid");
    c
}
