//! RazorAttention (Tang et al., "RazorAttention: Efficient KV Cache Compression Through
//! Retrieval Heads", ICLR 2025) on a RoPE model.
//!
//! Algorithm:
//! 1. Head scoring, once per model and data-free: a probe of `p` random tokens repeated twice
//!    runs through the model; for every query `i` of the second copy, the echo score is the
//!    attention to the same token in the first copy (`i − p`) and the induction score the
//!    attention to the token after it (`i − p + 1`), each averaged over the second copy.
//! 2. Retrieval heads: the top `razor.echo_heads` fraction of all (layer, head) pairs by echo
//!    score, plus the best by induction score among the rest until `razor.retrieval_heads` of
//!    all pairs (at least one) are chosen. These keep their whole KV cache.
//! 3. Every other head keeps the first `razor.sink` rows, the `razor.window` most recent rows
//!    and one compensation row: `k̂ = mean(dropped keys)`, `v̂ = mean(dropped values)`, entered
//!    into the softmax with weight `m` = number of dropped rows, i.e. logit `q·k̂/√d + ln m`.
//!    That is the paper's compensation formula
//!    `Attn = (m·e^{q·k̂} v̂ + Σ_kept e^{q·k} v) / (m·e^{q·k̂} + Σ_kept e^{q·k})`: the `m` dropped
//!    tokens are approximated by `m` copies of their mean. (Written from the paper as we know
//!    it; its text could not be re-read when this was written, while the reference code was:
//!    see below.)
//!
//! Choices and differences from the paper / its reference code (MindSpore golden-stick):
//! - Probe: `razor.probe_len` distinct random tokens (fixed seed) repeated twice, no BOS (the
//!   model has none); the reference repeats 2500 random ids four times. Scores are means over
//!   the second copy only, where both targets exist.
//! - Selection: the reference picks top 1% echo and top 14% induction heads separately and
//!   unions them (overlaps shrink the set); here the echo picks come first and induction fills
//!   up to exactly `retrieval_heads`, so the kept fraction is what the config says.
//! - The head set is cached per process, keyed by the config and a fingerprint of every
//!   layer's `Wq` (the probe costs one forward; eval decodes many prompts with one model).
//! - The reference deploy code inserts the mean row as a plain cache row (no `ln m`); we
//!   follow the paper's formula. Keys are averaged after RoPE (what the cache holds).
//! - Scoring uses the probe's dense softmax `q·kᵀ` (with a causal mask) even when the model
//!   routes its own attention through SQA; the decoder targets the standard model.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{gather_rows, HeadGroup};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::matmul::MatmulDims;
use crate::model::config::RazorSection;
use crate::model::forward::forward_blocks;
use crate::model::{Batch, Model, ModelError, SeqPlan};
use crate::Tensor;

/// Seed of the probe's random tokens (fixed so the head set is a function of the weights).
const PROBE_SEED: u64 = 0x0052_415a_4f52;

/// `p` distinct random tokens below `vocab`, then the same `p` again.
pub fn probe_tokens(vocab: usize, p: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(PROBE_SEED);
    let first: Vec<u32> = sample(&mut rng, vocab, p.min(vocab))
        .into_iter()
        .map(|t| t as u32)
        .collect();
    [first.clone(), first].concat()
}

/// Flat indices into head-major attention probabilities `[H, 2p, 2p]`: for each head and each
/// query `i` in the second copy, its echo entry `(i, i−p)` then its induction entry
/// `(i, i−p+1)`.
pub fn probe_indices(heads: usize, p: usize) -> Vec<u32> {
    let n = 2 * p;
    let mut ids = Vec::with_capacity(heads * p * 2);
    for h in 0..heads {
        for i in p..n {
            let row = (h * n + i) * n;
            ids.push((row + i - p) as u32);
            ids.push((row + i - p + 1) as u32);
        }
    }
    ids
}

/// `(echo, induction)` per head from the values at [`probe_indices`].
pub fn head_scores(vals: &[f32], heads: usize, p: usize) -> Vec<(f32, f32)> {
    (0..heads)
        .map(|h| {
            let part = &vals[h * 2 * p..(h + 1) * 2 * p];
            let echo: f64 = part.iter().step_by(2).map(|&x| x as f64).sum();
            let ind: f64 = part.iter().skip(1).step_by(2).map(|&x| x as f64).sum();
            ((echo / p as f64) as f32, (ind / p as f64) as f32)
        })
        .collect()
}

/// Which of the scored heads (layer-major) keep the full cache: the top `echo_frac` of all by
/// echo score, then the best by induction score until `frac` of all (at least 1) are chosen.
pub fn select_heads(scores: &[(f32, f32)], frac: f32, echo_frac: f32) -> Vec<bool> {
    let total = scores.len();
    let want = ((frac as f64 * total as f64).round() as usize).clamp(1.min(total), total);
    let n_echo = ((echo_frac as f64 * total as f64).round() as usize).min(want);
    let mut keep = vec![false; total];
    let ranked = |key: &dyn Fn(&(f32, f32)) -> f32| {
        let mut order: Vec<usize> = (0..total).collect();
        // Stable sort, descending: ties go to the lower (layer, head) index.
        order.sort_by(|&a, &b| key(&scores[b]).total_cmp(&key(&scores[a])));
        order
    };
    for i in ranked(&|s| s.0).into_iter().take(n_echo) {
        keep[i] = true;
    }
    let mut chosen = n_echo;
    for i in ranked(&|s| s.1) {
        if chosen >= want {
            break;
        }
        if !keep[i] {
            keep[i] = true;
            chosen += 1;
        }
    }
    keep
}

/// Echo and induction scores of every (layer, head), layer-major, from one probe forward.
pub fn score_heads<B: Backend>(be: &B, model: &Model<B>) -> Result<Vec<(f32, f32)>, ModelError> {
    let cfg = &model.cfg;
    let (heads, d) = (cfg.model.heads, cfg.head_dim());
    let p = cfg.razor.probe_len.min(cfg.model.max_len / 2).max(1);
    let n = 2 * p;
    let ids = probe_tokens(cfg.model.vocab_size, p);
    // A batch needs one target row; the probe's logits are never computed.
    let mut targets = vec![-1; ids.len()];
    targets[ids.len() - 1] = 0;
    let ex = Example {
        targets,
        n_ctx: 0,
        q0: 0,
        q1: ids.len() - 1,
        spans: Vec::new(),
        answers: Vec::new(),
        ids,
    };
    let batch = Batch::build(std::slice::from_ref(&ex), &[SeqPlan::dense(&ex)], 0)?;
    let w = model.weights(be);
    let idx = &model.layout.idx;
    // Causal mask as a per-column offset of the flattened `[n·n]` score rows of each head.
    let mask: Vec<f32> = (0..n * n)
        .map(|f| if f % n > f / n { -1e9 } else { 0.0 })
        .collect();
    let mask = be.upload(&Tensor::new(mask, &[n * n])?)?;
    let picks = probe_indices(heads, p);
    let mut out = Vec::with_capacity(idx.layers.len() * heads);
    forward_blocks(&w, idx, &batch, None, |_, cache| {
        let s = be.matmul(
            &cache.qh,
            &cache.kh,
            &MatmulDims::new(n, d, n).batched(heads).transpose_b(),
        )?;
        let s = be.reshape(&be.scale(&s, 1.0 / (d as f32).sqrt())?, &[heads, n * n])?;
        let s = be.reshape(&be.bias_forward(&s, &mask)?, &[heads * n, n])?;
        let probs = be.reshape(&be.softmax_forward(&s)?, &[heads * n * n, 1])?;
        // Only the 2·p entries per head the scores need come back to the host.
        let vals = be.download(&be.gather_rows(&probs, &picks)?)?.data;
        out.extend(head_scores(&vals, heads, p));
        Ok(false)
    })?;
    Ok(out)
}

type HeadCache = Mutex<Vec<(u64, Arc<Vec<bool>>)>>;
static HEAD_SETS: HeadCache = Mutex::new(Vec::new());

/// The retrieval-head mask (layer-major) of `model`, computed on first use and cached.
pub fn retrieval_heads<B: Backend>(be: &B, model: &Model<B>) -> Result<Arc<Vec<bool>>, ModelError> {
    let cfg = &model.cfg;
    let mut h = DefaultHasher::new();
    format!("{:?}{:?}", cfg.model, cfg.razor).hash(&mut h);
    for li in &model.layout.idx.layers {
        for x in be.download(&model.params[li.wq])?.data {
            x.to_bits().hash(&mut h);
        }
    }
    let key = h.finish();
    let lock = |m: &'static HeadCache| {
        m.lock()
            .map_err(|_| ModelError::Params("razor head cache poisoned".into()))
    };
    if let Some((_, set)) = lock(&HEAD_SETS)?.iter().find(|(k, _)| *k == key) {
        return Ok(set.clone());
    }
    let scores = score_heads(be, model)?;
    let set = Arc::new(select_heads(
        &scores,
        cfg.razor.retrieval_heads,
        cfg.razor.echo_heads,
    ));
    lock(&HEAD_SETS)?.push((key, set.clone()));
    Ok(set)
}

/// One layer's compressed cache from its post-RoPE `kh, vh: [H·l, d]`; `retrieval[h]` marks
/// the heads that keep everything.
pub fn compress<B: Backend>(
    be: &B,
    cfg: &RazorSection,
    retrieval: &[bool],
    kh: &B::T,
    vh: &B::T,
    l: usize,
) -> Result<Vec<HeadGroup<B>>, ModelError> {
    let heads = retrieval.len();
    let (sink, window) = (cfg.sink.min(l), cfg.window);
    let m = l.saturating_sub(sink + window);
    let (full, cut): (Vec<u32>, Vec<u32>) = (0..heads as u32).partition(|&h| retrieval[h as usize]);
    // With at most one row to drop the compensation row would be that row itself (ln 1 = 0):
    // keep it as is.
    if m <= 1 || cut.is_empty() {
        return Ok(vec![super::full_group(kh, vh, heads, l)]);
    }
    let mut groups = Vec::with_capacity(2);
    if !full.is_empty() {
        let all: Vec<u32> = (0..l as u32).collect();
        let per: Vec<(u32, &[u32])> = full.iter().map(|&h| (h, all.as_slice())).collect();
        groups.push(HeadGroup {
            k: gather_rows(be, kh, l, &per)?,
            v: gather_rows(be, vh, l, &per)?,
            heads: full,
            rows: l,
            bias: None,
        });
    }
    let rows = sink + 1 + window;
    let kept: Vec<u32> = (0..sink as u32)
        .chain((l - window) as u32..l as u32)
        .collect();
    let dropped: Vec<u32> = (sink as u32..(l - window) as u32).collect();
    // Destinations in the `[g·rows, d]` group: sinks, the compensation row, the window.
    let kept_at: Vec<u32> = (0..cut.len() as u32)
        .flat_map(|g| {
            let base = g * rows as u32;
            (0..sink as u32)
                .chain(sink as u32 + 1..rows as u32)
                .map(move |r| base + r)
        })
        .collect();
    let comp_at: Vec<u32> = (0..cut.len() as u32)
        .flat_map(|g| std::iter::repeat_n(g * rows as u32 + sink as u32, m))
        .collect();
    let total = cut.len() * rows;
    let build = |x: &B::T| -> Result<B::T, ModelError> {
        let keep: Vec<(u32, &[u32])> = cut.iter().map(|&h| (h, kept.as_slice())).collect();
        let drop: Vec<(u32, &[u32])> = cut.iter().map(|&h| (h, dropped.as_slice())).collect();
        let kept_rows = be.scatter_rows(&gather_rows(be, x, l, &keep)?, &kept_at, total)?;
        // Scatter-add of the pre-scaled dropped rows sums each head's mean into its slot.
        let scaled = be.scale(&gather_rows(be, x, l, &drop)?, 1.0 / m as f32)?;
        let mean = be.scatter_rows(&scaled, &comp_at, total)?;
        Ok(be.add(&kept_rows, &mean, 1.0)?)
    };
    let mut bias = vec![0.0f32; rows];
    bias[sink] = (m as f32).ln();
    groups.push(HeadGroup {
        k: build(kh)?,
        v: build(vh)?,
        heads: cut,
        rows,
        bias: Some(bias),
    });
    Ok(groups)
}
