//! Kernel families. Each folder holds the host launchers (`gpu.rs`) for its WGSL in
//! `shaders/<family>/` and the CPU reference (`cpu.rs`) every kernel is tested against.

pub mod adamw;
pub mod attention;
pub mod check;
pub mod dsr;
pub mod elementwise;
pub mod embedding;
pub(crate) mod fastmath;
pub mod gca;
pub mod heads;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod rckv;
pub mod rope;
pub mod shortconv;
pub mod softmax;
pub mod sqa;

use crate::device::KernelSpec;

/// Every WGSL kernel the crate can launch (the naga test validates each with its defaults).
pub fn all_specs() -> Vec<&'static KernelSpec> {
    [
        elementwise::SPECS,
        matmul::SPECS,
        softmax::SPECS,
        layernorm::SPECS,
        embedding::SPECS,
        rope::SPECS,
        loss::SPECS,
        adamw::SPECS,
        attention::SPECS,
        dsr::SPECS,
        sqa::SPECS,
        rckv::SPECS,
        heads::SPECS,
        gca::SPECS,
        shortconv::SPECS,
    ]
    .concat()
}
