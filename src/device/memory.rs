use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes held by live device buffers, now and at the high-water mark. This is what the
/// report calls "memory usage" on the wgpu backend.
#[derive(Debug, Default)]
pub struct MemCounter {
    current: AtomicU64,
    peak: AtomicU64,
}

impl MemCounter {
    pub fn alloc(&self, bytes: u64) {
        let now = self.current.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    pub fn free(&self, bytes: u64) {
        self.current.fetch_sub(bytes, Ordering::SeqCst);
    }
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::SeqCst)
    }
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
    /// Starts a new measurement window: the peak becomes what is live now.
    pub fn reset_peak(&self) {
        self.peak.store(self.current(), Ordering::SeqCst);
    }
}
