use std::sync::Arc;

use super::memory::MemCounter;

/// Element type of a device tensor. Everything numeric is f32; indices are u32 / i32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
    I32,
}

/// A device buffer that gives its bytes back to the counter when dropped.
#[derive(Debug)]
pub struct TrackedBuffer {
    pub buffer: wgpu::Buffer,
    pub bytes: u64,
    pub(crate) mem: Arc<MemCounter>,
}

impl Drop for TrackedBuffer {
    fn drop(&mut self) {
        self.mem.free(self.bytes);
    }
}

/// A storage buffer that knows its logical shape. Cloning shares the buffer.
#[derive(Debug, Clone)]
pub struct GpuTensor {
    pub buf: Arc<TrackedBuffer>,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl GpuTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buf.buffer
    }
}
