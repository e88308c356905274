//! AdamW with global gradient-norm clipping and a warmup + cosine learning-rate schedule.
//!
//! Clipping: `g ← g · min(1, clip / ‖g‖₂)` over all tensors together (‖g‖ summed in f64 from
//! per-tensor `Σg²` on the backend). A non-finite per-tensor sum stops the step with the
//! tensor's name, before any parameter moves. Weight decay applies to matrices only.

use super::TrainError;
use crate::backend::Backend;
use crate::kernels::adamw::AdamW;
use crate::model::{Grads, ParamLayout};

/// Learning rate at 0-based `step`: linear warmup over `warmup` steps, then a cosine from
/// `lr` down to `0.1·lr` at `total` (constant `lr` when `total` is unknown).
pub fn lr_at(lr: f32, step: usize, warmup: usize, total: Option<usize>) -> f32 {
    if step < warmup {
        return lr * (step + 1) as f32 / warmup as f32;
    }
    match total {
        Some(total) if total > warmup => {
            let t = ((step - warmup) as f32 / (total - warmup) as f32).min(1.0);
            let floor = 0.1 * lr;
            floor + (lr - floor) * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
        }
        _ => lr,
    }
}

/// What one optimizer step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub grad_norm: f32,
    pub clipped: bool,
    pub lr: f32,
}

/// AdamW state: first and second moments per tensor plus the step count.
pub struct Optimizer<B: Backend> {
    pub m: Vec<B::T>,
    pub v: Vec<B::T>,
    /// Steps taken (AdamW's `t` of the next step is `step + 1`).
    pub step: u32,
    pub hp: AdamW,
    decays: Vec<bool>,
}

impl<B: Backend> Optimizer<B> {
    pub fn new(be: &B, layout: &ParamLayout, hp: AdamW) -> Result<Self, TrainError> {
        let zeros = |s: &Vec<usize>| be.upload(&crate::Tensor::zeros(s));
        Ok(Self {
            m: layout.shapes.iter().map(zeros).collect::<Result<_, _>>()?,
            v: layout.shapes.iter().map(zeros).collect::<Result<_, _>>()?,
            step: 0,
            hp,
            decays: (0..layout.len()).map(|i| layout.decays(i)).collect(),
        })
    }

    /// Restores moments (a checkpoint) in layout order.
    pub fn restore(&mut self, m: Vec<B::T>, v: Vec<B::T>, step: u32) {
        self.m = m;
        self.v = v;
        self.step = step;
    }

    /// Clips and applies `grads` to `params` at learning rate `lr`.
    pub fn apply(
        &mut self,
        be: &B,
        layout: &ParamLayout,
        params: &mut [B::T],
        grads: Grads<B::T>,
        clip: f32,
        lr: f32,
    ) -> Result<StepStats, TrainError> {
        let mut sq = 0.0f64;
        for (i, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                let s = be.download(&be.sum_squares(g)?)?;
                let s = s.data.first().copied().unwrap_or(0.0);
                if !s.is_finite() {
                    return Err(TrainError::NonFinite {
                        step: self.step as usize,
                        what: format!("gradient of `{}` (Σg² = {s})", layout.names[i]),
                    });
                }
                sq += s as f64;
            }
        }
        let norm = sq.sqrt() as f32;
        let factor = if clip > 0.0 && norm > clip {
            clip / norm
        } else {
            1.0
        };
        self.step += 1;
        for (i, g) in grads.into_iter().enumerate() {
            let Some(g) = g else { continue };
            let g = if factor < 1.0 {
                be.scale(&g, factor)?
            } else {
                g
            };
            let hp = AdamW {
                lr,
                weight_decay: if self.decays[i] {
                    self.hp.weight_decay
                } else {
                    0.0
                },
                ..self.hp
            };
            be.adamw_step(
                &mut params[i],
                &g,
                &mut self.m[i],
                &mut self.v[i],
                &hp,
                self.step,
            )?;
        }
        Ok(StepStats {
            grad_norm: norm,
            clipped: factor < 1.0,
            lr,
        })
    }
}
