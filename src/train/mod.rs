//! Training: the hybrid-loss step lives in `model`; here are the optimizer, the training session
//! (`session`, driven by `dsrsq train` and the app), its run folder's rules (`run_dir`), the
//! loop with its progress bar (`run`), the typed step record and its log, held-out evaluation,
//! and checkpoints.

pub mod checkpoint;
pub mod eval;
mod fsio;
pub mod metrics;
pub mod optim;
pub mod record;
pub mod run;
pub mod run_dir;
pub mod session;
pub mod step;

pub use fsio::TEMP_SUFFIX;
pub use record::StepRecord;
pub use run::{check_vocab, train, TrainSummary};
pub use run_dir::{RunDir, RunMode};
pub use session::{TrainOptions, TrainSession};

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
    /// Another process is training into the same folder.
    #[error("{path} is in use by another training run ({holder}): wait for it to finish or choose another output folder")]
    RunInUse { path: String, holder: String },
    /// A new run would mix with or clobber the one already in the folder.
    #[error("{path} holds a training run already ({found}): pass --resume to continue it, --overwrite to replace it, or choose another output folder")]
    RunExists { path: String, found: String },
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
