//! Training-run state on disk: crash-safe checkpoints and the JSONL metrics log.

pub mod checkpoint;
mod fsio;
pub mod metrics;

pub use fsio::TEMP_SUFFIX;
