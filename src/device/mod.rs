//! The wgpu device layer: adapter choice, limits, buffers that know their shape, a pipeline
//! cache, batched dispatch, readback, error scopes, byte accounting and GPU timestamps.

mod context;
mod dispatch;
mod error;
mod kernel;
mod memory;
mod params;
pub mod select;
mod tensor;
pub mod wgsl_common;

pub use context::GpuContext;
pub use error::{DeviceError, Result};
pub use kernel::{groups_1d, Access, KernelSpec};
pub use memory::MemCounter;
pub use params::{GpuParams, ParamField, ParamsLayout};
pub use tensor::{DType, GpuTensor};
