//! DSRSQ: long-context question answering with a Dynamic Sparse Retriever, Sub-Quadratic
//! Sparse Attention and a Rotating Compressive KV Cache — WGSL kernels through wgpu and a CPU
//! backend that runs the same model and is the reference every kernel is tested against.

pub mod backend;
pub mod bench;
pub mod data;
pub mod device;
pub mod eval;
pub mod inspect;
pub mod kernels;
pub mod model;
pub mod tensor;
pub mod train;

pub use tensor::Tensor;
