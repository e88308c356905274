//! Training-free KV-cache policies for the decoder (`model.kv`): what the cache keeps of the
//! prompt after the normal full-forward prefill, per attention head.
//!
//! - [`razor`]: RazorAttention (Tang et al., ICLR 2025). Retrieval heads (echo / induction
//!   score on a repeated random-token probe) keep every row; the others keep the first
//!   `razor.sink` rows, the `razor.window` most recent rows and one compensation row (the mean
//!   of the dropped keys and values, weighted by the number of dropped rows in the softmax).
//! - [`pyramid`]: PyramidKV (Cai et al. 2024) with SnapKV scoring. Per-layer budgets that
//!   shrink linearly with depth; the prompt's last `pyramid.window` rows are always kept and
//!   are the observation queries whose (pooled) attention ranks every earlier row per head.
//!
//! Both papers compress once, after the prefill; the prefill itself (and so the first
//! generated token) is the exact forward. Tokens generated afterwards are appended to every
//! head's cache unchanged, as in both reference implementations.
//!
//! Layout: after compression heads can hold different numbers of rows, so a layer's cache is
//! a list of [`HeadGroup`]s, each a set of heads with the same row count stored as one
//! `[g·rows, d]` tensor (head-major). Razor has at most two groups per layer (retrieval heads,
//! compressed heads), PyramidKV one (a layer's heads share its budget). A decode step runs the
//! usual `q·Kᵀ → softmax → ·V` as batched matmuls per group, with an optional per-row logit
//! offset (`bias_forward`) for the compensation row, and scatters the groups' outputs back to
//! head order. With nothing dropped this is the exact decoder's arithmetic (same ops, a zero
//! added by the scatter), which is what `tests/it/kv_policy.rs` checks.

pub mod pyramid;
pub mod razor;

use super::ModelError;
use crate::backend::Backend;
use crate::kernels::matmul::MatmulDims;
use crate::Tensor;

/// Heads of one layer that cache the same number of rows, attended as one batch.
pub struct HeadGroup<B: Backend> {
    /// Head indices within the layer, ascending.
    pub heads: Vec<u32>,
    /// Post-RoPE keys and values `[g·rows, d]`, head-major (`g = heads.len()`).
    pub k: B::T,
    pub v: B::T,
    pub rows: usize,
    /// Per-row logit offsets shared by the group's heads (`ln m` on a compensation row that
    /// stands for `m` dropped rows, 0 elsewhere); `None` = no offsets. Host data: it only
    /// grows by one zero per step, and uploading `rows` floats is cheaper than a device concat.
    pub bias: Option<Vec<f32>>,
}

impl<B: Backend> HeadGroup<B> {
    /// Bytes held between steps: keys and values in f32, plus the dropped-row count of a
    /// compensation row (the offsets are `ln m` at one index and 0 elsewhere, so that count
    /// is all the bias vector really stores).
    pub fn bytes(&self, d: usize) -> usize {
        2 * self.heads.len() * self.rows * d * 4 + self.bias.as_ref().map_or(0, |_| 4)
    }
}

/// Rows `rows[i]` of head `heads[i]` from `x: [H·l, d]` (head-major), concatenated:
/// `[Σ|rows[i]|, d]`.
pub(crate) fn gather_rows<B: Backend>(
    be: &B,
    x: &B::T,
    l: usize,
    per_head: &[(u32, &[u32])],
) -> Result<B::T, ModelError> {
    let ids: Vec<u32> = per_head
        .iter()
        .flat_map(|&(h, rows)| rows.iter().map(move |&r| h * l as u32 + r))
        .collect();
    Ok(be.gather_rows(x, &ids)?)
}

/// `t: [g·rows, d]` with one more row per head (`new: [g, d]`) → `[g·(rows+1), d]`. The
/// backends have no in-place append, so both parts are scattered into the longer buffer
/// (`scatter_rows` places rows; distinct ids, so nothing is summed).
pub(crate) fn append_rows<B: Backend>(
    be: &B,
    t: &B::T,
    rows: usize,
    new: &B::T,
    g: usize,
) -> Result<B::T, ModelError> {
    let stride = rows as u32 + 1;
    let old: Vec<u32> = (0..g as u32)
        .flat_map(|h| (0..rows as u32).map(move |r| h * stride + r))
        .collect();
    let fresh: Vec<u32> = (0..g as u32).map(|h| h * stride + rows as u32).collect();
    let total = g * (rows + 1);
    Ok(be.add(
        &be.scatter_rows(t, &old, total)?,
        &be.scatter_rows(new, &fresh, total)?,
        1.0,
    )?)
}

/// One decode step of attention over grouped caches: appends the new row's key and value
/// (`k, v: [1, dm]`, `k` post-RoPE) to every group, attends with `q: [1, dm]` (post-RoPE)
/// and returns the heads' outputs merged back to `[1, dm]`.
pub fn attend<B: Backend>(
    be: &B,
    groups: &mut [HeadGroup<B>],
    q: &B::T,
    k: &B::T,
    v: &B::T,
    heads: usize,
) -> Result<B::T, ModelError> {
    let dm = be.shape(q).iter().product::<usize>();
    let d = dm / heads;
    let per_head = |x: &B::T| -> Result<B::T, ModelError> {
        Ok(be.reshape(&be.split_heads(x, 1, 1, heads)?, &[heads, d])?)
    };
    let (qh, kh, vh) = (per_head(q)?, per_head(k)?, per_head(v)?);
    let mut out: Option<B::T> = None;
    for g in groups.iter_mut() {
        let n = g.heads.len();
        let qg = be.gather_rows(&qh, &g.heads)?;
        g.k = append_rows(be, &g.k, g.rows, &be.gather_rows(&kh, &g.heads)?, n)?;
        g.v = append_rows(be, &g.v, g.rows, &be.gather_rows(&vh, &g.heads)?, n)?;
        g.rows += 1;
        if let Some(b) = g.bias.as_mut() {
            b.push(0.0);
        }
        let rows = g.rows;
        let scores = be.matmul(
            &qg,
            &g.k,
            &MatmulDims::new(1, d, rows).batched(n).transpose_b(),
        )?;
        // Scale before the offset: `ln m` is a logit-level weight, independent of 1/√d.
        let mut scores = be.reshape(&be.scale(&scores, 1.0 / (d as f32).sqrt())?, &[n, rows])?;
        if let Some(b) = &g.bias {
            let bias = be.upload(&Tensor::new(b.clone(), &[rows])?)?;
            scores = be.bias_forward(&scores, &bias)?;
        }
        let probs = be.softmax_forward(&scores)?;
        let o = be.matmul(&probs, &g.v, &MatmulDims::new(1, rows, d).batched(n))?;
        let placed = be.scatter_rows(&be.reshape(&o, &[n, d])?, &g.heads, heads)?;
        out = Some(match out {
            Some(acc) => be.add(&acc, &placed, 1.0)?,
            None => placed,
        });
    }
    let o = out.ok_or_else(|| ModelError::Batch("a layer cache with no head groups".into()))?;
    Ok(be.merge_heads(&be.reshape(&o, &[heads, 1, d])?, 1, 1, heads)?)
}

/// Every head keeps all `l` rows: one group (`kh, vh: [H·l, d]`).
pub(crate) fn full_group<B: Backend>(kh: &B::T, vh: &B::T, heads: usize, l: usize) -> HeadGroup<B> {
    HeadGroup {
        heads: (0..heads as u32).collect(),
        k: kh.clone(),
        v: vh.clone(),
        rows: l,
        bias: None,
    }
}
