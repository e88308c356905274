//! The DSRSQ model (docs/DESIGN.md §2), written once against the [`Backend`] trait so the CPU and
//! wgpu backends run the same code: embedding → DSR selection → blocks (LayerNorm, QKV, RoPE at
//! original positions, SQA over context KV read through RCKV, GELU MLP) → tied LM head, with the
//! hybrid (HOF) loss.

pub mod batch;
pub(crate) mod block;
pub mod config;
pub mod context;
pub mod decode;
pub(crate) mod forward;
pub(crate) mod gca;
pub mod kv_policy;
pub mod layer;
pub mod network;
pub mod params;
pub mod retriever;
pub mod variants;

pub use batch::{Batch, SeqPlan};
pub use config::{AttentionKind, Config, ConfigError, ContextPolicy, KvPolicy, MlpKind, NormKind};
pub use decode::KvDecoder;
pub use network::{LossTerms, Model, StepOutput};
pub use params::{ParamIdx, ParamLayout};

use thiserror::Error;

use crate::backend::Backend;
use crate::device::DeviceError;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("batch: {0}")]
    Batch(String),
    #[error("example {index}: {detail}")]
    Example { index: usize, detail: String },
    #[error("parameters: {0}")]
    Params(String),
}

/// Gradients aligned with the parameter list; `None` = the tensor got no gradient this step.
pub type Grads<T> = Vec<Option<T>>;

/// Borrowed view of everything a forward or backward pass reads.
pub(crate) struct Weights<'a, B: Backend> {
    pub be: &'a B,
    pub cfg: &'a Config,
    pub p: &'a [B::T],
}

/// `slot += g` (or `slot = g` when empty).
pub(crate) fn acc<B: Backend>(be: &B, slot: &mut Option<B::T>, g: B::T) -> Result<(), ModelError> {
    *slot = Some(match slot.take() {
        Some(a) => be.add(&a, &g, 1.0)?,
        None => g,
    });
    Ok(())
}
