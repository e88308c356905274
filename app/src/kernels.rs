//! Which backend the views and the trainer run the library on: the CPU backend, or the wgpu
//! backend on the very device eframe renders with (shared when the adapter allows).

use std::sync::Arc;

use dsrsq::backend::{CpuBackend, WgpuBackend};
use dsrsq::device::GpuContext;

/// The device eframe was given, when the library could open one for it.
#[derive(Clone)]
pub struct SharedDevice {
    pub ctx: Arc<GpuContext>,
    /// Adapter name and whether it is a software (CPU) adapter such as lavapipe.
    pub name: String,
    pub software: bool,
}

/// A backend choice; `Wgpu` is only offered with a shared device.
#[derive(Clone)]
pub enum Kernels {
    Cpu(CpuBackend),
    Wgpu(WgpuBackend),
}

impl Kernels {
    /// The default: the shared device on a real GPU, else the CPU (a software adapter is
    /// about 100x slower than the CPU backend on the same cores).
    pub fn preferred(shared: Option<&SharedDevice>) -> Self {
        match shared {
            Some(s) if !s.software => Kernels::Wgpu(WgpuBackend::new(s.ctx.clone())),
            _ => Kernels::Cpu(CpuBackend),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Kernels::Cpu(_) => "CPU backend".into(),
            Kernels::Wgpu(b) => format!("wgpu, shared with the renderer ({})", b.ctx.adapter.name),
        }
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Kernels::Cpu(_))
    }
}

/// Runs a generic library call on whichever backend `k` holds: `with_backend!(k, be => f(be))`.
#[macro_export]
macro_rules! with_backend {
    ($k:expr, $be:ident => $body:expr) => {
        match $k {
            $crate::kernels::Kernels::Cpu($be) => $body,
            $crate::kernels::Kernels::Wgpu($be) => $body,
        }
    };
}
