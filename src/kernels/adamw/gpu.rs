//! Host launcher for the in-place AdamW step.

use super::*;
use crate::device::{groups_1d, DeviceError, GpuContext, GpuTensor, Result};

crate::gpu_params! {
    pub(crate) struct Params {
        n: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        wd: f32,
        bc1: f32,
        bc2: f32,
    }
}

/// Updates `param`, `m` and `v` in place from `grad`; `step` is 1-based.
pub fn adamw_step(
    ctx: &GpuContext,
    param: &GpuTensor,
    grad: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    hp: &AdamW,
    step: u32,
) -> Result<()> {
    if step == 0 {
        return Err(DeviceError::Shape {
            op: "adamw_step",
            detail: "step is 1-based, got 0".into(),
        });
    }
    let n = param.numel();
    if [grad, m, v].iter().any(|t| t.numel() != n) {
        return Err(DeviceError::Shape {
            op: "adamw_step",
            detail: format!(
                "param {:?}, grad {:?}, m {:?}, v {:?}",
                param.shape, grad.shape, m.shape, v.shape
            ),
        });
    }
    let (bc1, bc2) = hp.bias_corrections(step);
    let p = Params {
        n: n as u32,
        lr: hp.lr,
        beta1: hp.beta1,
        beta2: hp.beta2,
        eps: hp.eps,
        wd: hp.weight_decay,
        bc1,
        bc2,
    };
    ctx.dispatch(&STEP, &[], &p, &[param, grad, m, v], groups_1d(n, WG))
}
