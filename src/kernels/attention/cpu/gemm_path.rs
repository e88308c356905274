//! Short-sequence path: materialize each head's n×n scores and run every product through
//! `gemm`. At n ≤ [`GEMM_MAX_N`] the score block is small (4 MB per head at 1024) and the
//! products are the same BLAS-3 shapes as the rest of a transformer, while the flash tiles do
//! their inner products in hand-written loops: at n = 512, d = 32 this path trains a
//! transformer about twice as fast. Above the limit the flash path keeps memory linear in n.
//!
//! The masked half of the scores is computed and discarded (gemm has no triangular mode);
//! gemm still wins by a wide margin at these sizes.

use rayon::prelude::*;

use crate::kernels::fastmath::exp2_fast;
use crate::kernels::matmul::{cpu as mm, MatmulDims};

/// Longest sequence that takes this path.
pub(super) const GEMM_MAX_N: usize = 1024;
/// Score elements materialized at once (heads are grouped up to this): 16 MB.
const BLOCK_ELEMS: usize = 1 << 22;

fn dims(batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> MatmulDims {
    let d = MatmulDims::new(m, k, n).batched(batch);
    let d = if ta { d.transpose_a() } else { d };
    if tb {
        d.transpose_b()
    } else {
        d
    }
}

fn group(n: usize) -> usize {
    (BLOCK_ELEMS / (n * n).max(1)).max(1)
}

/// Row `i` of a head's scores → causal softmax probabilities in place; returns the row's lse.
fn softmax_row(row: &mut [f32], i: usize, scale: f32) -> f32 {
    let l2e = std::f32::consts::LOG2_E;
    let (live, masked) = row.split_at_mut(i + 1);
    let m = live.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x)) * scale;
    live.iter_mut()
        .for_each(|x| *x = exp2_fast::<false>((*x * scale - m) * l2e));
    let sum: f32 = live.iter().sum();
    let inv = 1.0 / sum;
    live.iter_mut().for_each(|x| *x *= inv);
    masked.fill(0.0);
    m + sum.ln()
}

pub(super) fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bh: usize,
    n: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (mut o, mut lse) = (vec![0.0_f32; bh * n * d], vec![0.0_f32; bh * n]);
    let scale = 1.0 / (d as f32).sqrt();
    let g = group(n);
    for h0 in (0..bh).step_by(g) {
        let gh = g.min(bh - h0);
        let (a, b) = (h0 * n * d, (h0 + gh) * n * d);
        let mut s = mm::matmul(&q[a..b], &k[a..b], &dims(gh, n, d, n, false, true));
        s.par_chunks_mut(n)
            .zip(lse[h0 * n..(h0 + gh) * n].par_iter_mut())
            .enumerate()
            .for_each(|(r, (row, l))| *l = softmax_row(row, r % n, scale));
        let og = mm::matmul(&s, &v[a..b], &dims(gh, n, n, d, false, false));
        o[a..b].copy_from_slice(&og);
    }
    (o, lse)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    [q, k, v, o, lse, dout]: [&[f32]; 6],
    bh: usize,
    n: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let zeros = || vec![0.0_f32; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    let scale = 1.0 / (d as f32).sqrt();
    let l2e = std::f32::consts::LOG2_E;
    let g = group(n);
    for h0 in (0..bh).step_by(g) {
        let gh = g.min(bh - h0);
        let (a, b) = (h0 * n * d, (h0 + gh) * n * d);
        let rows = h0 * n..(h0 + gh) * n;
        // P recomputed from the saved lse, exactly as the forward normalized it.
        let mut p = mm::matmul(&q[a..b], &k[a..b], &dims(gh, n, d, n, false, true));
        p.par_chunks_mut(n)
            .zip(lse[rows.clone()].par_iter())
            .enumerate()
            .for_each(|(r, (row, &l))| {
                let i = r % n;
                let (live, masked) = row.split_at_mut(i + 1);
                live.iter_mut()
                    .for_each(|x| *x = exp2_fast::<false>((*x * scale - l) * l2e));
                masked.fill(0.0);
            });
        let dvg = mm::matmul(&p, &dout[a..b], &dims(gh, n, n, d, true, false));
        let mut ds = mm::matmul(&dout[a..b], &v[a..b], &dims(gh, n, d, n, false, true));
        let delta: Vec<f32> = dout[a..b]
            .par_chunks(d)
            .zip(o[a..b].par_chunks(d))
            .map(|(x, y)| x.iter().zip(y).map(|(s, t)| s * t).sum())
            .collect();
        ds.par_chunks_mut(n)
            .zip(p.par_chunks(n))
            .zip(delta.par_iter())
            .for_each(|((dsr, pr), &dl)| {
                dsr.iter_mut()
                    .zip(pr)
                    .for_each(|(x, &pv)| *x = pv * (*x - dl) * scale);
            });
        let dqg = mm::matmul(&ds, &k[a..b], &dims(gh, n, n, d, false, false));
        let dkg = mm::matmul(&ds, &q[a..b], &dims(gh, n, n, d, true, false));
        dq[a..b].copy_from_slice(&dqg);
        dk[a..b].copy_from_slice(&dkg);
        dv[a..b].copy_from_slice(&dvg);
    }
    (dq, dk, dv)
}
