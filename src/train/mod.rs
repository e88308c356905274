//! Training: the hybrid-loss step lives in `model`; here are the optimizer, the loop with its
//! progress bar and metrics log, held-out evaluation, and checkpoints.

pub mod checkpoint;
pub mod eval;
mod fsio;
pub mod metrics;
pub mod optim;
pub mod run;
pub mod step;

pub use fsio::TEMP_SUFFIX;
pub use run::{check_vocab, train, TrainOptions, TrainSummary};

use thiserror::Error;

use crate::device::DeviceError;
use crate::model::ModelError;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("{0}")]
    Setup(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A loss term or gradient went NaN/inf: training stops before the parameters move.
    #[error("step {step}: {what} is not finite; stopping before the update")]
    NonFinite { step: usize, what: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
}
