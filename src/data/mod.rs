//! Data: the tokenizer, loaders for Natural Questions (simplified and open) and SQuAD, the
//! long-context QA builder, and the seeded synthetic long-context tasks (MQAR, passkey,
//! needle-in-a-haystack). Everything ends as an [`Example`] in the model's input layout.
//!
//! Files: `tokenizer` ([`Tok`], [`Specials`]: BOS = `[CLS]`, SEP = `[SEP]`, EOS = `[unused0]`,
//! PAD = `[PAD]`), `example` ([`Example::qa`], [`Example::validate`], the context [`window`]),
//! `record` (the loaders' common [`QaRecord`], [`LoadOptions`] / [`LoadReport`] for skipping
//! and counting bad input, record → example), `nq`, `nq_open`, `squad` (loaders; errors name
//! file, line or JSON path, and field), `longqa` (gold paragraph among distractors at a
//! depth), `synthetic` (passkey, MQAR, needle), `split` (train/eval and per-index seeding),
//! `spec` ([`DataSpec`], the `--data` flag) and `source` ([`Dataset`]: `example(index)`).
//!
//! Choices that hold everywhere:
//! - `ctx` parameters count context tokens INCLUDING BOS (`n_ctx`).
//! - Unanswerable questions are kept and flagged: `answers` empty, and the model is trained
//!   to answer [`UNANSWERABLE`].
//! - `example(index)` is a pure function of `(seed, split, index)` (files: plus the file),
//!   so training resumes at any index.

pub mod error;
pub mod example;
mod json;
pub mod longqa;
pub mod nq;
pub mod nq_open;
pub mod record;
pub mod source;
pub mod spec;
pub mod split;
pub mod squad;
pub mod synthetic;
pub mod tokenizer;

pub use error::{DataError, ExampleError, Loc};
pub use example::{window, Window};
pub use record::{Converted, LoadOptions, LoadReport, QaRecord, UNANSWERABLE};
pub use source::{Dataset, DatasetReport};
pub use spec::DataSpec;
pub use split::Split;
pub use tokenizer::{Specials, Tok};

/// One input in the layout `[BOS] context [SEP] question [SEP] answer [EOS]` (docs/DESIGN.md §2).
///
/// Coordinates are token indices into `ids`:
/// - context = `[0, n_ctx)` (BOS at 0, so the first selection block always holds it);
/// - question = `[q0, q1)` with `n_ctx ≤ q0 < q1`;
/// - `targets[p]` is the token the model must predict at position `p` (i.e. `ids[p + 1]`),
///   or −1 where nothing is scored. Only positions `≥ q1` may carry targets (the answer
///   region), so selecting context never moves a target.
/// - `spans` are the supporting spans `[start, end)` inside the context (empty = unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub n_ctx: usize,
    pub q0: usize,
    pub q1: usize,
    pub targets: Vec<i32>,
    pub spans: Vec<(usize, usize)>,
    /// Gold answer texts (several where the dataset lists several; empty = unanswerable).
    pub answers: Vec<String>,
}
