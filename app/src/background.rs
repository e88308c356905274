//! Background work (training, evaluation, a view's forward pass) runs below the UI thread in
//! the scheduler's order, on its own thread pool, so frames keep their pace.

/// Puts the calling thread below the UI thread in the scheduler's order, so background work
/// takes whatever CPU the frames leave instead of delaying them (on 2 cores, lavapipe renders
/// the frame on the CPU too). SCHED_IDLE rather than a nice value: measured on the 2-core VM
/// while training `tiny`, nice 10 and nice 19 both left frame intervals of 40-48 ms at p95,
/// SCHED_IDLE 34-36 ms, and with frames capped at 30 fps the training kept the same pace.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let idle = libc::sched_param { sched_priority: 0 };
        // SAFETY: both calls only read their arguments; on Linux, pid/who 0 names the
        // calling thread, not the whole process.
        let ok = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) } == 0;
        if !ok {
            let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        }
    }
}

/// Lowers the calling thread and runs `f` on a pool of all cores but one, whose threads are
/// lowered too (the CPU backend's kernels use the pool they are called from).
pub fn run_lowered<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    lower_priority();
    let threads =
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| lower_priority())
        .build()
        .map(|pool| pool.install(f))
        .map_err(|e| format!("thread pool: {e}"))
}

/// The message a panic carried.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
