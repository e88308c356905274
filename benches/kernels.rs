//! `cargo bench`: the kernels suite of `dsrsq bench kernels` (quick sizes unless
//! `DSRSQ_BENCH_FULL=1`), CPU backend plus any wgpu adapter.

fn main() {
    let full = std::env::var("DSRSQ_BENCH_FULL").is_ok_and(|v| v == "1");
    if let Err(e) = dsrsq::bench::kernels(dsrsq::bench::BackendChoice::All, !full) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
