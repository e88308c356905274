//! Typed errors of the evaluation metrics: bad shapes of the inputs, never of the text.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    #[error("{preds} predictions but {golds} gold entries: they must pair one to one")]
    LengthMismatch { preds: usize, golds: usize },
    #[error("item {index} has no gold answer")]
    NoGold { index: usize },
    #[error("nothing to score: no predictions")]
    Empty,
}
