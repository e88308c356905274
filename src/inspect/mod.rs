//! Inspection: what the model does on one input, as host data a viewer can draw (the desktop
//! app's views), built only from the model's own forward pieces and the kernels' CPU code.
//!
//! - [`attention`]: one layer/head's keys, their k-means clusters and the queries' routes,
//!   the dense and SQA attention weights and the attention recall;
//! - [`dsr`]: the retriever's per-token scores, block scores, kept blocks, budget and `c`;
//! - [`cache`]: the RCKV ring of every layer while the context streams in, token by token,
//!   with each slot's age, source position and reconstruction error;
//! - [`pca`]: the 2-D projection the attention view draws keys in.
//!
//! Training one step at a time (the app's live run) is `train::TrainSession`.

pub mod attention;
pub mod cache;
pub mod dsr;
pub mod pca;

use thiserror::Error;

use crate::backend::Backend;
use crate::data::{DataError, Example};
use crate::device::DeviceError;
use crate::model::forward::forward_blocks;
use crate::model::layer::LayerCache;
use crate::model::retriever;
use crate::model::{Batch, Model, ModelError, SeqPlan};
use crate::train::TrainError;

#[derive(Debug, Error)]
pub enum InspectError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
}

pub type Result<T> = std::result::Result<T, InspectError>;

/// The example is well formed and its ids fit the model's vocabulary.
pub(crate) fn check_example<B: Backend>(model: &Model<B>, ex: &Example) -> Result<()> {
    ex.validate()
        .map_err(|e| InspectError::Input(format!("example: {e}")))?;
    let vocab = model.cfg.model.vocab_size;
    if let Some(&id) = ex.ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(InspectError::Input(format!(
            "token id {id} is outside the model's vocabulary of {vocab} (pick data this config was made for)"
        )));
    }
    Ok(())
}

/// The plan the model itself makes for `ex` (DSR selection, then what the ring holds).
pub(crate) fn model_plan<B: Backend>(be: &B, model: &Model<B>, ex: &Example) -> Result<SeqPlan> {
    let w = model.weights(be);
    let idx = &model.layout.idx;
    let mut out = retriever::run(
        &w,
        std::slice::from_ref(ex),
        None,
        (idx.wte, idx.dsr_wr, idx.dsr_wq),
    )?;
    out.plans
        .pop()
        .ok_or_else(|| InspectError::Input("the retriever made no plan".into()))
}

/// Runs the blocks `0..=last` of the model on one sequence with `plan` and returns the batch
/// and each block's forward cache.
pub(crate) fn forward_layers<B: Backend>(
    be: &B,
    model: &Model<B>,
    ex: &Example,
    plan: SeqPlan,
    last: usize,
) -> Result<(Batch, Vec<LayerCache<B>>)> {
    let layers = &model.layout.idx.layers;
    if last >= layers.len() {
        return Err(InspectError::Input(format!(
            "layer {last} does not exist (the model has {})",
            layers.len()
        )));
    }
    let batch = Batch::build(std::slice::from_ref(ex), &[plan], 0)?;
    let w = model.weights(be);
    let caches = forward_blocks(&w, &model.layout.idx, &batch, Some(last + 1), |_, _| {
        Ok(true)
    })?
    .caches;
    Ok((batch, caches))
}
