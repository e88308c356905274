//! CPU DSR: the reference every WGSL kernel is tested against and the CPU backend. Products go
//! through the fast `matmul` path; per-token work is split over threads with rayon for long
//! contexts; reductions accumulate in f64 over fixed chunks (deterministic).

use rayon::prelude::*;

use super::*;
use crate::kernels::matmul::{cpu as mm, MatmulDims};

/// Below this many elements threading costs more than it saves.
const PAR_MIN: usize = 1 << 14;
/// Fixed reduction chunk, so the f64 sums do not depend on the thread count.
const CHUNK: usize = 4096;

/// What the scoring pass produces and the backward needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DsrScores {
    /// `s: [n_ctx]`.
    pub scores: Vec<f32>,
    /// Question vector `qv = ē_Q·W_q: [dr]`.
    pub qv: Vec<f32>,
    /// `u = W_r·qv: [dm]` (unscaled).
    pub u: Vec<f32>,
    /// Mean question embedding `ē_Q: [dm]`.
    pub e_mean: Vec<f32>,
}

/// The selection plus the block scores (diagnostics).
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSelection {
    pub selection: DsrSelection,
    /// Max score of each block: `[nb]`.
    pub block_scores: Vec<f32>,
}

/// Gradients of a loss whose gradient w.r.t. the scores is `ds`.
#[derive(Debug, Clone, PartialEq)]
pub struct DsrGrads {
    pub dw_r: Vec<f32>,
    pub dw_q: Vec<f32>,
    /// `de: [n, dm]` (zero outside context and question), when asked for.
    pub de: Option<Vec<f32>>,
}

pub(crate) fn scale(cfg: &DsrConfig) -> f32 {
    1.0 / (cfg.reduced_dim as f32).sqrt()
}

fn shape_err(op: &'static str, detail: String) -> DeviceError {
    DeviceError::Shape { op, detail }
}

/// `ē_Q[c] = mean_{j∈[q0,q1)} e[j, c]`.
pub fn question_mean(e: &[f32], d: &DsrDims) -> Vec<f32> {
    let mut acc = vec![0.0f64; d.dm];
    for row in e[d.q0 * d.dm..d.q1 * d.dm].chunks_exact(d.dm) {
        acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x as f64);
    }
    acc.iter().map(|&a| (a / d.nq() as f64) as f32).collect()
}

/// Scores of the context tokens (forward step 1).
pub fn scores(
    e: &[f32],
    w_r: &[f32],
    w_q: &[f32],
    d: &DsrDims,
    cfg: &DsrConfig,
) -> Result<DsrScores, DeviceError> {
    d.validate("dsr_scores", cfg, e.len(), w_r.len(), w_q.len())?;
    let (dm, dr) = (d.dm, cfg.reduced_dim);
    let e_mean = question_mean(e, d);
    let qv = mm::matmul(&e_mean, w_q, &MatmulDims::new(1, dm, dr));
    let u = mm::matmul(w_r, &qv, &MatmulDims::new(dm, dr, 1));
    let sc = scale(cfg);
    // Same accumulation order as the WGSL: a running f32 sum over the row, scaled at the end.
    let row = |r: &[f32]| sc * r.iter().zip(&u).fold(0.0f32, |a, (&x, &y)| a + x * y);
    let ctx = &e[..d.n_ctx * dm];
    let scores = if ctx.len() >= PAR_MIN {
        ctx.par_chunks(dm).map(row).collect()
    } else {
        ctx.chunks(dm).map(row).collect()
    };
    Ok(DsrScores {
        scores,
        qv,
        u,
        e_mean,
    })
}

/// Max score of each block of `block` tokens (the last one may be partial).
pub fn block_scores(s: &[f32], block: usize) -> Vec<f32> {
    let max = |c: &[f32]| c[1..].iter().fold(c[0], |m, &v| m.max(v));
    if s.len() >= PAR_MIN {
        s.par_chunks(block.max(1)).map(max).collect()
    } else {
        s.chunks(block.max(1)).map(max).collect()
    }
}

/// Softmax statistics of the scores: `max`, `ln Σ exp(s − max)` and the complexity `c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxStats {
    pub max: f32,
    pub log_z: f64,
    pub complexity: f32,
}

pub fn softmax_stats(s: &[f32]) -> SoftmaxStats {
    let m = s.iter().fold(f32::MIN, |a, &v| a.max(v));
    let part = |c: &[f32]| {
        c.iter().fold((0.0f64, 0.0f64), |(z, t), &v| {
            let x = v as f64 - m as f64;
            let w = x.exp();
            (z + w, t + w * x)
        })
    };
    let parts: Vec<(f64, f64)> = if s.len() >= PAR_MIN {
        s.par_chunks(CHUNK).map(part).collect()
    } else {
        s.chunks(CHUNK).map(part).collect()
    };
    let (z, t) = parts
        .iter()
        .fold((0.0, 0.0), |(a, b), &(z, t)| (a + z, b + t));
    let h = z.ln() - t / z;
    let complexity = if s.len() <= 1 {
        0.0
    } else {
        (h / (s.len() as f64).ln()).clamp(0.0, 1.0) as f32
    };
    SoftmaxStats {
        max: m,
        log_z: z.ln(),
        complexity,
    }
}

pub(crate) fn check_question(
    op: &'static str,
    n_ctx: usize,
    q0: usize,
    q1: usize,
) -> Result<(), DeviceError> {
    if n_ctx == 0 || q0 >= q1 || q0 < n_ctx || u32::try_from(q1).is_err() {
        return Err(shape_err(
            op,
            format!(
                "context {n_ctx} with question [{q0}, {q1}): need n_ctx ≥ 1 and n_ctx ≤ q0 < q1"
            ),
        ));
    }
    Ok(())
}

/// Forward steps 2–4 from the scores: block scores, complexity, budget and the kept positions.
pub fn select(
    s: &[f32],
    q0: usize,
    q1: usize,
    cfg: &DsrConfig,
) -> Result<CpuSelection, DeviceError> {
    validate_config("dsr_select", cfg)?;
    check_question("dsr_select", s.len(), q0, q1)?;
    let n_ctx = s.len();
    let bs = block_scores(s, cfg.block);
    let nb = bs.len();
    let c = softmax_stats(s).complexity;
    let (budget, keep_blocks) = budget(c, n_ctx, cfg);
    let mut keep = vec![false; nb];
    keep[0] = true;
    let m = keep_blocks - 1;
    if m > 0 {
        let mut cand: Vec<(u32, u32)> = (1..nb).map(|b| (order_key(bs[b]), b as u32)).collect();
        // Higher key first, then the lower block index: a strict total order, so the kept set
        // is unique and matches the GPU's radix select.
        let order = |a: &(u32, u32), b: &(u32, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if m < cand.len() {
            cand.select_nth_unstable_by(m - 1, order);
            cand.truncate(m);
        }
        cand.iter().for_each(|&(_, b)| keep[b as usize] = true);
    }
    let mut selected = Vec::with_capacity(budget + cfg.block + (q1 - q0));
    for (b, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
        selected.extend((b * cfg.block) as u32..((b + 1) * cfg.block).min(n_ctx) as u32);
    }
    let kept_ctx = selected.len();
    selected.extend(q0 as u32..q1 as u32);
    Ok(CpuSelection {
        selection: DsrSelection {
            selected,
            kept_ctx,
            budget,
            keep_blocks,
            complexity: c,
        },
        block_scores: bs,
    })
}

/// Scores then selection: the whole forward.
pub fn forward(
    e: &[f32],
    w_r: &[f32],
    w_q: &[f32],
    d: &DsrDims,
    cfg: &DsrConfig,
) -> Result<(DsrScores, CpuSelection), DeviceError> {
    let sc = scores(e, w_r, w_q, d, cfg)?;
    let sel = select(&sc.scores, d.q0, d.q1, cfg)?;
    Ok((sc, sel))
}

/// The spans `[start, end)` widened by `dilation` on each side and clipped to the context, as
/// flat `[a0, b0, a1, b1, ...]`; empty spans are dropped and `start > end` is an error.
pub fn dilated_spans(
    n_ctx: usize,
    spans: &[(usize, usize)],
    dilation: usize,
) -> Result<Vec<u32>, DeviceError> {
    let mut out = Vec::with_capacity(2 * spans.len());
    for &(a, b) in spans {
        if a > b {
            return Err(shape_err(
                "dsr_retrieval_bce",
                format!("span [{a}, {b}) ends before it starts"),
            ));
        }
        let lo = a.saturating_sub(dilation).min(n_ctx);
        let hi = b.saturating_add(dilation).min(n_ctx);
        if a < b && lo < hi {
            out.extend([lo as u32, hi as u32]);
        }
    }
    if u32::try_from(n_ctx).is_err() || u32::try_from(spans.len()).is_err() {
        return Err(shape_err(
            "dsr_retrieval_bce",
            format!("{n_ctx} tokens or {} spans do not fit 32 bits", spans.len()),
        ));
    }
    Ok(out)
}

/// Retrieval labels: 1 inside any span `[start, end)` widened by `dilation` on each side
/// (clipped to the context), else 0.
pub fn span_labels(
    n_ctx: usize,
    spans: &[(usize, usize)],
    dilation: usize,
) -> Result<Vec<f32>, DeviceError> {
    let mut y = vec![0.0f32; n_ctx];
    for ab in dilated_spans(n_ctx, spans, dilation)?.chunks_exact(2) {
        y[ab[0] as usize..ab[1] as usize].fill(1.0);
    }
    Ok(y)
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Mean per-element value and per-element gradient of `f(s_i, i) -> (loss_i, dloss_i/ds_i)`.
fn mean_loss(s: &[f32], f: impl Fn(f64, usize) -> (f64, f64) + Sync) -> (f32, Vec<f32>) {
    let inv = 1.0 / s.len().max(1) as f64;
    let (l, ds): (Vec<f64>, Vec<f32>) = s
        .par_iter()
        .with_min_len(CHUNK)
        .enumerate()
        .map(|(i, &v)| {
            let (l, g) = f(v as f64, i);
            (l, (g * inv) as f32)
        })
        .unzip();
    (
        (l.chunks(CHUNK).map(|c| c.iter().sum::<f64>()).sum::<f64>() * inv) as f32,
        ds,
    )
}

/// Retrieval loss with known spans: mean stable BCE-with-logits of `s` against the labels;
/// returns `(loss, ds)`.
pub fn retrieval_bce(
    s: &[f32],
    spans: &[(usize, usize)],
    dilation: usize,
) -> Result<(f32, Vec<f32>), DeviceError> {
    if s.is_empty() {
        return Err(shape_err("dsr_retrieval_bce", "no context scores".into()));
    }
    let y = span_labels(s.len(), spans, dilation)?;
    Ok(mean_loss(s, |x, i| {
        let t = y[i] as f64;
        let l = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        (l, sigmoid(x) - t)
    }))
}

/// Attention distillation: `KL(t ‖ softmax(s)) = Σ t ln t − Σ t ln p` (terms with `t = 0` are
/// 0); `ds = p·Σt − t`. Returns `(loss, ds)`.
pub fn retrieval_kl(s: &[f32], target: &[f32]) -> Result<(f32, Vec<f32>), DeviceError> {
    if target.len() != s.len() || s.is_empty() {
        return Err(shape_err(
            "dsr_retrieval_kl",
            format!("target of {} for {} scores", target.len(), s.len()),
        ));
    }
    if let Some(i) = target.iter().position(|t| !(*t >= 0.0 && t.is_finite())) {
        return Err(shape_err(
            "dsr_retrieval_kl",
            format!("target[{i}] = {} is not a finite mass ≥ 0", target[i]),
        ));
    }
    let st = softmax_stats(s);
    let lnp = |i: usize| s[i] as f64 - st.max as f64 - st.log_z;
    let total: f64 = target.iter().map(|&t| t as f64).sum();
    let loss: f64 = (0..s.len())
        .filter(|&i| target[i] > 0.0)
        .map(|i| {
            let t = target[i] as f64;
            t * (t.ln() - lnp(i))
        })
        .sum();
    let ds = (0..s.len())
        .map(|i| (lnp(i).exp() * total - target[i] as f64) as f32)
        .collect();
    Ok((loss as f32, ds))
}

/// Compute loss: the expected kept fraction `mean σ((s − τ)/T)`; returns `(loss, ds)`.
pub fn compute_loss(s: &[f32], cfg: &DsrConfig) -> Result<(f32, Vec<f32>), DeviceError> {
    validate_config("dsr_compute_loss", cfg)?;
    if s.is_empty() {
        return Err(shape_err("dsr_compute_loss", "no context scores".into()));
    }
    let (tau, t) = (cfg.tau as f64, cfg.temperature as f64);
    Ok(mean_loss(s, |x, _| {
        let p = sigmoid((x - tau) / t);
        (p, p * (1.0 - p) / t)
    }))
}

/// Maps `ds` (the summed, weighted score gradient) to `dW_r`, `dW_q` and optionally `de`
/// (factored form, see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    e: &[f32],
    w_r: &[f32],
    w_q: &[f32],
    fwd: &DsrScores,
    ds: &[f32],
    d: &DsrDims,
    cfg: &DsrConfig,
    want_de: bool,
) -> Result<DsrGrads, DeviceError> {
    d.validate("dsr_backward", cfg, e.len(), w_r.len(), w_q.len())?;
    let (dm, dr, n_ctx) = (d.dm, cfg.reduced_dim, d.n_ctx);
    if ds.len() != n_ctx || fwd.qv.len() != dr || fwd.u.len() != dm || fwd.e_mean.len() != dm {
        return Err(shape_err(
            "dsr_backward",
            format!(
                "ds of {} for {n_ctx} context tokens, or forward state of another shape",
                ds.len()
            ),
        ));
    }
    let sc = scale(cfg);
    let dss: Vec<f32> = ds.iter().map(|&g| g * sc).collect();
    let g = mm::matmul(&dss, &e[..n_ctx * dm], &MatmulDims::new(1, n_ctx, dm));
    let dw_r = mm::matmul(&g, &fwd.qv, &MatmulDims::new(dm, 1, dr));
    let dqv = mm::matmul(&g, w_r, &MatmulDims::new(1, dm, dr));
    let dw_q = mm::matmul(&fwd.e_mean, &dqv, &MatmulDims::new(dm, 1, dr));
    let de = want_de.then(|| {
        let v = mm::matmul(w_q, &dqv, &MatmulDims::new(dm, dr, 1));
        let inv_nq = 1.0 / d.nq() as f32;
        let mut de = vec![0.0f32; d.n * dm];
        de[..n_ctx * dm]
            .par_chunks_mut(dm)
            .with_min_len(64)
            .zip(&dss)
            .for_each(|(row, &g)| row.iter_mut().zip(&fwd.u).for_each(|(o, &u)| *o = g * u));
        for row in de[d.q0 * dm..d.q1 * dm].chunks_mut(dm) {
            row.iter_mut().zip(&v).for_each(|(o, &x)| *o = x * inv_nq);
        }
        de
    });
    Ok(DsrGrads { dw_r, dw_q, de })
}
