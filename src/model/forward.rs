//! The one forward path through the blocks: embed the batch's ids, then run each block in
//! order. Training (`Model::step`), the KV decoder's prefill, the razor probe, attention_rag's
//! chunk scoring and `inspect` all go through [`forward_blocks`], so a new block kind or a
//! change of what precedes the blocks is made here once.

use super::layer::{self, LayerCache};
use super::params::ParamIdx;
use super::{acc, Batch, ModelError, Weights};
use crate::backend::Backend;

/// What [`forward_blocks`] returns.
pub(crate) struct Blocks<B: Backend> {
    /// The last block's output `[rows, dm]` (before the final norm).
    pub x: B::T,
    /// The caches the visitor asked to keep, in block order.
    pub caches: Vec<LayerCache<B>>,
    /// Sum of the blocks' RCKV compression losses, and how many blocks had one.
    pub comp_sum: Option<B::T>,
    pub comp_layers: usize,
}

/// Runs blocks `0..count` (every block when `count` is `None`) on `batch`. `visit(i, cache)`
/// sees each block's cache as soon as it exists and says whether to keep it (a caller that
/// only reads each block once keeps none, so only one block's activations live at a time).
pub(crate) fn forward_blocks<B: Backend>(
    w: &Weights<'_, B>,
    idx: &ParamIdx,
    batch: &Batch,
    count: Option<usize>,
    mut visit: impl FnMut(usize, &LayerCache<B>) -> Result<bool, ModelError>,
) -> Result<Blocks<B>, ModelError> {
    let be = w.be;
    let layers = &idx.layers[..count.unwrap_or(idx.layers.len()).min(idx.layers.len())];
    let mut x = be.embedding_forward(&w.p[idx.wte], &batch.ids)?;
    let mut caches = Vec::with_capacity(layers.len());
    let (mut comp_sum, mut comp_layers) = (None, 0);
    for (i, li) in layers.iter().enumerate() {
        let (o, cache) = layer::forward(w, li, batch, x)?;
        if let Some(c) = o.comp_loss {
            comp_layers += 1;
            acc(be, &mut comp_sum, c)?;
        }
        x = o.x;
        if visit(i, &cache)? {
            caches.push(cache);
        }
    }
    Ok(Blocks {
        x,
        caches,
        comp_sum,
        comp_layers,
    })
}
