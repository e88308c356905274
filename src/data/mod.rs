//! Data: the tokenizer, loaders for Natural Questions (simplified and open) and SQuAD, the
//! long-context QA builder, and the seeded synthetic long-context tasks (MQAR, passkey,
//! needle-in-a-haystack). Everything ends as an [`Example`] in the model's input layout.

/// One input in the layout `[BOS] context [SEP] question [SEP] answer [EOS]` (DESIGN.md §2).
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
