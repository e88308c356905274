//! The f32 CPU backend of GCA. Same math as the f64 reference in the parent module, organised
//! for speed: every segment is a contiguous key range, so scores are contiguous f32 dot
//! products over `d` (split into 8 lanes so the compiler vectorizes them without needing
//! reassociation of a single sum), outputs are `axpy`s straight into the output rows, and the
//! only scratch is one score buffer per rayon task (`for_each_init`), never per token.
//! Softmax subtracts the segment's max in f32 before `exp`, so large scores do not overflow.
//!
//! Parallelism: the forward splits over (head, query chunk): every output row has one writer
//! and heads alone leave cores idle when `bh` is small. The backward keeps per-head ownership
//! (dk/dv rows of a chunk are written by the local windows of two chunks and by every chunk
//! that retrieved it), and sums `dw` over heads in head order, so results do not depend on
//! the thread count.

use rayon::prelude::*;

use super::super::{GcaDims, NONE};
use crate::device::Result;

/// Lanes of the split dot-product accumulator: 8 f32 fill one AVX2 register, and a fixed
/// lane count keeps the summation order (hence the result) independent of the target.
const LANES: usize = 8;

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// The key ranges `[start, end)` and weights `α` query `t` of sequence `bi` attends: the
/// local window first, then each non-empty retrieval slot `(k, range, α)`. Returned as an
/// iterator so no per-token `Vec` is built.
fn segments<'a>(
    dm: &'a GcaDims,
    sel: &'a [u32],
    w: &'a [f32],
    bi: usize,
    t: usize,
) -> impl Iterator<Item = (Option<usize>, usize, usize, f32)> + 'a {
    let (s, kk, nc) = (dm.chunk, dm.top_k, dm.n_chunks());
    let c = t / s;
    let local = std::iter::once((None, c.saturating_sub(1) * s, t + 1, 1.0));
    let retrieved = (0..kk).filter_map(move |k| {
        let i = (bi * nc + c) * kk + k;
        let ch = sel[i];
        (ch != NONE).then(|| {
            let start = ch as usize * s;
            (Some(k), start, (start + s).min(dm.l), w[i])
        })
    });
    local.chain(retrieved)
}

/// Fills `p[..end-start]` with the softmax of `q`'s scaled scores over keys `[start, end)`.
fn softmax_into(
    q: &[f32],
    kh: &[f32],
    d: usize,
    start: usize,
    end: usize,
    scale: f32,
    p: &mut [f32],
) {
    let p = &mut p[..end - start];
    for (pj, j) in p.iter_mut().zip(start..end) {
        *pj = scale * dot(q, &kh[j * d..(j + 1) * d]);
    }
    let m = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut z = 0f32;
    for pj in p.iter_mut() {
        *pj = (*pj - m).exp();
        z += *pj;
    }
    // z ≥ 1 (the max term is exp(0)), so the division is safe.
    let inv = 1.0 / z;
    for pj in p.iter_mut() {
        *pj *= inv;
    }
}

/// `o [bh, l, d]`, f32 (see the module doc); same contract as `forward_ref`.
pub fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    sel: &[u32],
    w: &[f32],
    dm: &GcaDims,
) -> Result<Vec<f32>> {
    dm.validate("gca_forward", &[q.len(), k.len(), v.len()], sel, w.len())?;
    let (l, d, s) = (dm.l, dm.d, dm.chunk);
    let scale = 1.0 / (d as f32).sqrt();
    let mut o = vec![0f32; q.len()];
    if o.is_empty() {
        return Ok(o);
    }
    // The longest segment is the local window of 2·S keys (a retrieved chunk has ≤ S).
    let scratch = (2 * s).min(l).max(1);
    o.par_chunks_mut(l * d).enumerate().for_each(|(h, oh)| {
        let bi = h / dm.heads;
        let hr = h * l * d..(h + 1) * l * d;
        let (qh, kh, vh) = (&q[hr.clone()], &k[hr.clone()], &v[hr]);
        oh.par_chunks_mut(s * d).enumerate().for_each_init(
            || vec![0f32; scratch],
            |p, (c, oc)| {
                for (i, ot) in oc.chunks_exact_mut(d).enumerate() {
                    let t = c * s + i;
                    let qt = &qh[t * d..(t + 1) * d];
                    for (_, start, end, alpha) in segments(dm, sel, w, bi, t) {
                        softmax_into(qt, kh, d, start, end, scale, p);
                        for (&pj, j) in p.iter().zip(start..end) {
                            axpy(ot, alpha * pj, &vh[j * d..(j + 1) * d]);
                        }
                    }
                }
            },
        );
    });
    Ok(o)
}

/// `(dq, dk, dv, dw)`, f32 (see the module doc); same contract as `backward_ref`.
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dout: &[f32],
    sel: &[u32],
    w: &[f32],
    dm: &GcaDims,
) -> Result<super::GcaGrads> {
    let lens = [q.len(), k.len(), v.len(), dout.len()];
    dm.validate("gca_backward", &lens, sel, w.len())?;
    let (l, d, s, kk, nc) = (dm.l, dm.d, dm.chunk, dm.top_k, dm.n_chunks());
    let scale = 1.0 / (d as f32).sqrt();
    let n = q.len();
    let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    if n == 0 {
        return Ok((dq, dk, dv, vec![0f32; dm.sel_len()]));
    }
    let scratch = (2 * s).min(l).max(1);
    // dw partials per head in f64: one scalar per (token, segment), so the wider type is free
    // and keeps the sum over a chunk's S tokens and the heads as exact as the reference.
    let mut dw_heads = vec![0f64; dm.bh * nc * kk];
    dq.par_chunks_mut(l * d)
        .zip(dk.par_chunks_mut(l * d))
        .zip(dv.par_chunks_mut(l * d))
        .zip(dw_heads.par_chunks_mut(nc * kk))
        .enumerate()
        .for_each_init(
            || (vec![0f32; scratch], vec![0f32; scratch]),
            |(p, dov), (h, (((dqh, dkh), dvh), dwh))| {
                let bi = h / dm.heads;
                let hr = h * l * d..(h + 1) * l * d;
                let (qh, kh, vh, doh) = (&q[hr.clone()], &k[hr.clone()], &v[hr.clone()], &dout[hr]);
                for t in 0..l {
                    let (qt, dot_t) = (&qh[t * d..(t + 1) * d], &doh[t * d..(t + 1) * d]);
                    let dqt = &mut dqh[t * d..(t + 1) * d];
                    for (slot, start, end, alpha) in segments(dm, sel, w, bi, t) {
                        softmax_into(qt, kh, d, start, end, scale, p);
                        let mut do_o = 0f32;
                        for ((g, &pj), j) in dov.iter_mut().zip(p.iter()).zip(start..end) {
                            *g = dot(dot_t, &vh[j * d..(j + 1) * d]);
                            do_o += pj * *g;
                        }
                        if let Some(k) = slot {
                            dwh[(t / s) * kk + k] += do_o as f64;
                        }
                        for ((&pj, &g), j) in p.iter().zip(dov.iter()).zip(start..end) {
                            let a = alpha * pj;
                            let ds = a * (g - do_o) * scale;
                            let r = j * d..(j + 1) * d;
                            axpy(dqt, ds, &kh[r.clone()]);
                            axpy(&mut dkh[r.clone()], ds, qt);
                            axpy(&mut dvh[r], a, dot_t);
                        }
                    }
                }
            },
        );
    let mut dw = vec![0f64; dm.sel_len()];
    for (h, hw) in dw_heads.chunks_exact(nc * kk).enumerate() {
        let bi = h / dm.heads;
        for (a, b) in dw[bi * nc * kk..(bi + 1) * nc * kk].iter_mut().zip(hw) {
            *a += b;
        }
    }
    Ok((dq, dk, dv, dw.iter().map(|&x| x as f32).collect()))
}
