//! GCA on the CPU: `forward_ref` / `backward_ref` are the f64 references the kernels (and
//! the fast path) are tested against; `forward` / `backward` (in `fast`) are the f32 CPU
//! backend. The reference uses f64 accumulation per row and rayon over the `bh` heads (each
//! head's rows are independent, and `dw` is summed over heads afterwards in head order, so
//! results do not depend on the thread count).

use rayon::prelude::*;

use super::{GcaDims, NONE};
use crate::device::Result;

mod fast;
pub use fast::{backward, forward};

/// One attended key range `[start, end)` with its fusion weight and `dw` slot.
#[derive(Debug, Clone, Copy)]
struct Seg {
    start: usize,
    end: usize,
    alpha: f64,
    /// `Some(k)` for the k-th retrieved chunk, `None` for the local window.
    slot: Option<usize>,
}

/// Segments of token `t` of sequence `bi`: the local window, then each non-empty slot.
fn segments(dm: &GcaDims, sel: &[u32], w: &[f32], bi: usize, t: usize) -> Vec<Seg> {
    let (s, kk, nc) = (dm.chunk, dm.top_k, dm.n_chunks());
    let c = t / s;
    let mut out = vec![Seg {
        start: c.saturating_sub(1) * s,
        end: t + 1,
        alpha: 1.0,
        slot: None,
    }];
    for k in 0..kk {
        let i = (bi * nc + c) * kk + k;
        let ch = sel[i];
        if ch != NONE {
            let start = ch as usize * s;
            out.push(Seg {
                start,
                end: (start + s).min(dm.l),
                alpha: w[i] as f64,
                slot: Some(k),
            });
        }
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Softmax of query `q`'s scaled scores over the keys of `seg` (one head's `k`).
fn probs(q: &[f32], k: &[f32], d: usize, seg: &Seg, scale: f64) -> Vec<f64> {
    let s: Vec<f64> = (seg.start..seg.end)
        .map(|j| scale * dot(q, &k[j * d..(j + 1) * d]))
        .collect();
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

/// The f64 reference forward: `o [bh, l, d]`.
pub fn forward_ref(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    sel: &[u32],
    w: &[f32],
    dm: &GcaDims,
) -> Result<Vec<f32>> {
    dm.validate("gca_forward", &[q.len(), k.len(), v.len()], sel, w.len())?;
    let (l, d) = (dm.l, dm.d);
    let scale = 1.0 / (d as f64).sqrt();
    let mut o = vec![0f32; q.len()];
    if o.is_empty() {
        return Ok(o);
    }
    o.par_chunks_mut(l * d).enumerate().for_each(|(h, oh)| {
        let bi = h / dm.heads;
        let (qh, kh, vh) = (&q[h * l * d..], &k[h * l * d..], &v[h * l * d..]);
        for t in 0..l {
            let qt = &qh[t * d..(t + 1) * d];
            let mut acc = vec![0f64; d];
            for seg in segments(dm, sel, w, bi, t) {
                let p = probs(qt, kh, d, &seg, scale);
                for (j, &pj) in (seg.start..seg.end).zip(&p) {
                    for (a, &x) in acc.iter_mut().zip(&vh[j * d..(j + 1) * d]) {
                        *a += seg.alpha * pj * x as f64;
                    }
                }
            }
            for (y, a) in oh[t * d..(t + 1) * d].iter_mut().zip(acc) {
                *y = a as f32;
            }
        }
    });
    Ok(o)
}

/// `(dq, dk, dv, dw)`: `[bh, l, d]` ×3 and `dw [b, nc, K]`.
pub type GcaGrads = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// The f64 reference backward, recomputing each segment's softmax.
pub fn backward_ref(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dout: &[f32],
    sel: &[u32],
    w: &[f32],
    dm: &GcaDims,
) -> Result<GcaGrads> {
    let lens = [q.len(), k.len(), v.len(), dout.len()];
    dm.validate("gca_backward", &lens, sel, w.len())?;
    let (l, d, s, kk, nc) = (dm.l, dm.d, dm.chunk, dm.top_k, dm.n_chunks());
    let scale = 1.0 / (d as f64).sqrt();
    let per_head: Vec<_> = (0..dm.bh)
        .into_par_iter()
        .map(|h| {
            let bi = h / dm.heads;
            let r = h * l * d..(h + 1) * l * d;
            let (qh, kh, vh, doh) = (&q[r.clone()], &k[r.clone()], &v[r.clone()], &dout[r]);
            let (mut dq, mut dk, mut dv) =
                (vec![0f64; l * d], vec![0f64; l * d], vec![0f64; l * d]);
            let mut dw = vec![0f64; nc * kk];
            for t in 0..l {
                let (qt, dot_t) = (&qh[t * d..(t + 1) * d], &doh[t * d..(t + 1) * d]);
                for seg in segments(dm, sel, w, bi, t) {
                    let p = probs(qt, kh, d, &seg, scale);
                    // dO·O^g: the unweighted segment output's inner product with dO.
                    let dov: Vec<f64> = (seg.start..seg.end)
                        .map(|j| dot(dot_t, &vh[j * d..(j + 1) * d]))
                        .collect();
                    let do_o: f64 = p.iter().zip(&dov).map(|(a, b)| a * b).sum();
                    if let Some(slot) = seg.slot {
                        dw[(t / s) * kk + slot] += do_o;
                    }
                    for ((j, &pj), &dvj) in (seg.start..seg.end).zip(&p).zip(&dov) {
                        let ds = seg.alpha * pj * (dvj - do_o) * scale;
                        for x in 0..d {
                            dq[t * d + x] += ds * kh[j * d + x] as f64;
                            dk[j * d + x] += ds * qt[x] as f64;
                            dv[j * d + x] += seg.alpha * pj * dot_t[x] as f64;
                        }
                    }
                }
            }
            (dq, dk, dv, dw)
        })
        .collect();
    let mut dw = vec![0f64; dm.sel_len()];
    let (mut dq, mut dk, mut dv) = (
        Vec::with_capacity(q.len()),
        Vec::with_capacity(q.len()),
        Vec::with_capacity(q.len()),
    );
    let f = |x: &Vec<f64>| x.iter().map(|&y| y as f32).collect::<Vec<f32>>();
    for (h, (hq, hk, hv, hw)) in per_head.iter().enumerate() {
        dq.extend(f(hq));
        dk.extend(f(hk));
        dv.extend(f(hv));
        let bi = h / dm.heads;
        for (a, b) in dw[bi * nc * kk..(bi + 1) * nc * kk].iter_mut().zip(hw) {
            *a += b;
        }
    }
    // Empty slots get no gradient (their weight never touched the output).
    Ok((dq, dk, dv, dw.iter().map(|&x| x as f32).collect()))
}
