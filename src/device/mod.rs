//! The wgpu device layer: adapter choice, limits, buffers that know their shape, a pipeline
//! cache, batched dispatch, readback, error scopes, byte accounting and GPU timestamps.

mod context;
mod error;
mod kernel;
mod memory;
pub mod select;
mod tensor;

pub use context::GpuContext;
pub use error::{DeviceError, Result};
pub use kernel::{groups_1d, Access, KernelSpec};
pub use memory::MemCounter;
pub use tensor::{DType, GpuTensor};
