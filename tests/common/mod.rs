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
