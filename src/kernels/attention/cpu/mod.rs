//! Dense causal scaled-dot-product attention on the CPU (f32): forward and backward.
//!
//! Shape legend (all buffers contiguous, row-major):
//! - `bh`: batch × heads; `n`: sequence length; `d`: head dimension
//! - `q`, `k`, `v`, `o`, `dout`, `dq`, `dk`, `dv`: `[bh, n, d]`
//! - `lse`: `[bh, n]`, natural-log-sum-exp of the scaled scores `q_i·k_j / sqrt(d)` of row `i`
//!
//! Query `i` attends keys `j <= i`. The `_ref` functions are plain loops with f64
//! accumulation (the numerical ground truth). The fast functions use FlashAttention-2 tiles
//! (memory linear in `n`) above `gemm_path::GEMM_MAX_N` and, at or below it, materialized
//! per-head score blocks multiplied through `gemm` (see `gemm_path`), which is faster there. Every function panics if `d == 0` or a buffer length mismatches.

mod gemm_path;
mod reference;
#[cfg(test)]
mod tests;
mod tiles;

use rayon::prelude::*;

pub use reference::{attention_backward_ref, attention_forward_ref};
use tiles::*;

/// Query rows per tile; 64 × 128 measured best on a 2-core Sapphire Rapids (BQ = 128 and
/// BK = 64 or 256 were 5-15% slower).
const BQ: usize = 64;
/// Keys per tile.
const BK: usize = 128;
/// Independent accumulators in reductions: one AVX-512 register's worth.
const LANES: usize = 16;

pub(super) fn check(rows: usize, d: usize, bufs: &[&[f32]]) {
    assert!(d > 0, "attention: head dimension must be positive");
    for (i, buf) in bufs.iter().enumerate() {
        assert_eq!(
            buf.len(),
            rows * d,
            "attention: buffer #{i} has a wrong length"
        );
    }
}

/// Tiled online-softmax forward (FlashAttention-2): never stores n×n scores, memory linear
/// in n. Parallel over (bh, query tile). Returns `(o, lse)`.
pub fn attention_forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bh: usize,
    n: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>) {
    if n <= gemm_path::GEMM_MAX_N && bh * n > 0 {
        check(bh * n, d, &[q, k, v]);
        return gemm_path::forward(q, k, v, bh, n, d);
    }
    forward(Isa::detect(), [q, k, v], [bh, n, d])
}

fn forward(isa: Isa, [q, k, v]: [&[f32]; 3], [bh, n, d]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    check(bh * n, d, &[q, k, v]);
    let (mut o, mut lse) = (vec![0.0_f32; bh * n * d], vec![0.0_f32; bh * n]);
    if bh * n == 0 {
        return (o, lse);
    }
    let kt = transpose_tiles(k, n, d);
    let heads = o.par_chunks_mut(n * d).zip(lse.par_chunks_mut(n));
    heads.enumerate().for_each(|(b, (o_b, lse_b))| {
        let h = Head::new(b, [n, d], [q, k, v, &kt, &[], &[], &[], &[]]);
        let tiles = o_b
            .par_chunks_mut(BQ * d)
            .zip(lse_b.par_chunks_mut(BQ))
            .enumerate();
        tiles.for_each(|(t, (o_t, lse_t))| fwd_tile(isa, h, t * BQ, o_t, lse_t));
    });
    (o, lse)
}

/// FlashAttention-2 backward: recomputes P per tile from `lse`, with
/// `delta = rowsum(dO ∘ O)`. dk/dv are parallel over (bh, key tile) and dq over
/// (bh, query tile), so no output is shared and no atomics are needed. Returns `(dq, dk, dv)`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    o: &[f32],
    lse: &[f32],
    dout: &[f32],
    bh: usize,
    n: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    if n <= gemm_path::GEMM_MAX_N && bh * n > 0 {
        check(bh * n, d, &[q, k, v, o, dout]);
        check(bh * n, 1, &[lse]);
        return gemm_path::backward([q, k, v, o, lse, dout], bh, n, d);
    }
    backward(Isa::detect(), [q, k, v, o, lse, dout], [bh, n, d])
}

type Grads = (Vec<f32>, Vec<f32>, Vec<f32>);

fn backward(isa: Isa, [q, k, v, o, lse, dout]: [&[f32]; 6], [bh, n, d]: [usize; 3]) -> Grads {
    check(bh * n, d, &[q, k, v, o, dout]);
    check(bh * n, 1, &[lse]);
    let zeros = || vec![0.0_f32; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    if bh * n == 0 {
        return (dq, dk, dv);
    }
    let (kt, vt) = rayon::join(|| transpose_tiles(k, n, d), || transpose_tiles(v, n, d));
    let dot = |(a, b): (&[f32], &[f32])| a.iter().zip(b).map(|(x, y)| x * y).sum();
    let delta: Vec<f32> = dout.par_chunks(d).zip(o.par_chunks(d)).map(dot).collect();
    let head = |b| Head::new(b, [n, d], [q, k, v, &kt, &vt, dout, lse, &delta]);
    // Running both passes at once lets each fill the other's load-imbalance tail.
    rayon::join(
        || {
            let heads = dk.par_chunks_mut(n * d).zip(dv.par_chunks_mut(n * d));
            heads.enumerate().for_each(|(b, (dk_b, dv_b))| {
                let (h, tiles) = (head(b), dk_b.par_chunks_mut(BK * d));
                let tiles = tiles.zip(dv_b.par_chunks_mut(BK * d)).enumerate();
                tiles.for_each(|(t, (dk_t, dv_t))| dkdv_tile(isa, h, t * BK, dk_t, dv_t));
            });
        },
        || {
            dq.par_chunks_mut(n * d).enumerate().for_each(|(b, dq_b)| {
                let (h, tiles) = (head(b), dq_b.par_chunks_mut(BQ * d).enumerate());
                tiles.for_each(|(t, dq_t)| dq_tile(isa, h, t * BQ, dq_t));
            });
        },
    );
    (dq, dk, dv)
}
