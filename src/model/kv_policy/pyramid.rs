//! PyramidKV (Cai et al., "PyramidKV: Dynamic KV Cache Compression based on Pyramidal
//! Information Funneling", 2024) with SnapKV's row scoring (Li et al., "SnapKV: LLM Knows What
//! You are Looking for Before Generation", 2024).
//!
//! Algorithm, per prompt of `l` rows (nothing is compressed when `l ≤ pyramid.budget`):
//! 1. Budgets: the selectable rows per layer average `s = budget − window`; the top layer gets
//!    `s/β`, the bottom `2s − s/β`, the layers between an arithmetic progression, so they sum
//!    to `layers·s` (the paper's `k^{m−1} = k_total/(β·m)`, `k^0 = 2k_total/m − k^{m−1}`).
//!    Every layer also keeps the `window` observation rows, so the whole cache holds
//!    `layers·budget` rows per head, as a uniform budget would.
//! 2. Scores (SnapKV): the last `window` prompt rows are the observation queries; per head,
//!    `softmax(q_obs·Kᵀ/√d)` with the causal mask, summed over the observation queries, gives
//!    one score per earlier row.
//! 3. Pooling: the scores are smoothed by a 1-D average pool of width `pyramid.kernel`
//!    (stride 1, zero padding `kernel/2`, divisor `kernel`), so a kept row brings its
//!    neighbours' evidence; the reference code of both papers defaults to `avgpool` (a
//!    `maxpool` option exists), and we use the average.
//! 4. Each head keeps its top-`s_l` earlier rows by pooled score plus the observation window.
//!
//! Choices and differences from the reference code:
//! - The pyramid is applied to the selectable rows (`budget − window`) as the reference code
//!   does; the paper states it for whole budgets. Budgets are rounded down and the remainder
//!   handed to the lowest layers, so they still sum exactly and never increase with depth.
//! - When the bottom layer's share exceeds the rows available (`l − window`), it is capped there
//!   and the top layer gets `2s − cap` (the reference does this too); the reference then also
//!   switches to a uniform budget when `l < 2s`, which we do not: the capped pyramid already
//!   fits and keeps the same total.
//! - Score ties go to the earlier row. Scoring runs on the backend (matmul + softmax); only the
//!   summed `[H, l]` scores come to the host for pooling and top-k.

use super::{gather_rows, HeadGroup};
use crate::backend::Backend;
use crate::kernels::matmul::MatmulDims;
use crate::model::config::PyramidSection;
use crate::model::ModelError;
use crate::Tensor;

/// Selectable rows per layer (bottom first) for an average of `avg` rows, top layer
/// `avg/β`, linear in depth, each at most `cap`; the sum is `layers·avg` whenever
/// `cap ≥ avg`.
pub fn layer_budgets(avg: usize, layers: usize, beta: f32, cap: usize) -> Vec<usize> {
    if layers == 0 {
        return Vec::new();
    }
    if layers == 1 {
        return vec![avg.min(cap)];
    }
    let s = avg as f64;
    let mut top = s / beta as f64;
    let mut bottom = 2.0 * s - top;
    if bottom > cap as f64 {
        bottom = cap as f64;
        top = (2.0 * s - bottom).max(0.0);
    }
    let step = (bottom - top) / (layers - 1) as f64;
    let exact: Vec<f64> = (0..layers).map(|i| bottom - step * i as f64).collect();
    // The epsilon keeps a value that is whole up to f64 rounding (e.g. 5.999…) from losing a row.
    let mut out: Vec<usize> = exact
        .iter()
        .map(|&x| ((x + 1e-9).floor() as usize).min(cap))
        .collect();
    let target = (layers * avg).min(layers * cap);
    let mut left = target.saturating_sub(out.iter().sum());
    // The remainder goes to the lowest layers first, which keeps the sequence non-increasing.
    for b in out.iter_mut() {
        if left == 0 {
            break;
        }
        if *b < cap {
            *b += 1;
            left -= 1;
        }
    }
    out
}

/// 1-D average pool, stride 1, zero padding `kernel/2`, divisor `kernel` (PyTorch's
/// `avg_pool1d` with `count_include_pad`); same length as `x` for an odd `kernel`.
pub fn avg_pool(x: &[f32], kernel: usize) -> Vec<f32> {
    let half = kernel / 2;
    (0..x.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(x.len());
            let s: f64 = x[lo..hi].iter().map(|&v| v as f64).sum();
            (s / kernel as f64) as f32
        })
        .collect()
}

/// Indices of the `k` largest scores, ascending; ties go to the lower index.
pub fn top_rows(scores: &[f32], k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    order.truncate(k);
    order.sort_unstable();
    order
}

/// SnapKV scores `[H, l − w]` (host): attention of the last `w` rows' queries to every
/// earlier row, summed over those queries (`qh, kh: [H·l, d]`).
pub fn snapkv_scores<B: Backend>(
    be: &B,
    qh: &B::T,
    kh: &B::T,
    heads: usize,
    l: usize,
    w: usize,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let d = be.shape(qh).iter().product::<usize>() / (heads * l);
    let obs: Vec<u32> = ((l - w) as u32..l as u32).collect();
    let per: Vec<(u32, &[u32])> = (0..heads as u32).map(|h| (h, obs.as_slice())).collect();
    let q_obs = gather_rows(be, qh, l, &per)?;
    let s = be.matmul(
        &q_obs,
        kh,
        &MatmulDims::new(w, d, l).batched(heads).transpose_b(),
    )?;
    // Observation query `a` sits at row `l − w + a` and sees keys up to there.
    let mask: Vec<f32> = (0..w * l)
        .map(|f| if f % l > l - w + f / l { -1e9 } else { 0.0 })
        .collect();
    let mask = be.upload(&Tensor::new(mask, &[w * l])?)?;
    let s = be.reshape(&be.scale(&s, 1.0 / (d as f32).sqrt())?, &[heads, w * l])?;
    let s = be.reshape(&be.bias_forward(&s, &mask)?, &[heads * w, l])?;
    let probs = be.softmax_forward(&s)?;
    // Scatter-add of each head's `w` rows onto one row sums over the observation queries.
    let owner: Vec<u32> = (0..heads as u32)
        .flat_map(|h| std::iter::repeat_n(h, w))
        .collect();
    let sums = be.download(&be.scatter_rows(&probs, &owner, heads)?)?.data;
    Ok(sums.chunks(l).map(|row| row[..l - w].to_vec()).collect())
}

/// One layer's cache with `selected` rows per head kept besides the observation window
/// (`qh, kh, vh: [H·l, d]` post-RoPE).
#[allow(clippy::too_many_arguments)]
pub fn compress<B: Backend>(
    be: &B,
    cfg: &PyramidSection,
    selected: usize,
    qh: &B::T,
    kh: &B::T,
    vh: &B::T,
    heads: usize,
    l: usize,
) -> Result<Vec<HeadGroup<B>>, ModelError> {
    let w = cfg.window.min(l);
    if l <= cfg.budget || selected >= l - w {
        return Ok(vec![super::full_group(kh, vh, heads, l)]);
    }
    let scores = snapkv_scores(be, qh, kh, heads, l, w)?;
    let rows: Vec<Vec<u32>> = scores
        .iter()
        .map(|s| {
            let mut keep = top_rows(&avg_pool(s, cfg.kernel), selected);
            keep.extend((l - w) as u32..l as u32);
            keep
        })
        .collect();
    let per: Vec<(u32, &[u32])> = rows
        .iter()
        .enumerate()
        .map(|(h, r)| (h as u32, r.as_slice()))
        .collect();
    Ok(vec![HeadGroup {
        heads: (0..heads as u32).collect(),
        k: gather_rows(be, kh, l, &per)?,
        v: gather_rows(be, vh, l, &per)?,
        rows: selected + w,
        bias: None,
    }])
}
