//! Fast forward of one head: cluster tiles and band tiles produce partial (o, lse) pairs over
//! disjoint key sets, merged per query by log-sum-exp.

use rayon::prelude::*;

use super::mm::{mm, online_softmax, Mat};
use super::plan::{gather, gather_into, gather_t, reset, sized, split_rows, Plan, Scratch};
use super::plan::{BQ, KC};

/// Per-head partial results, kept by the caller so that their memory is reused by every head.
#[derive(Default)]
pub(super) struct Parts {
    o: Vec<f32>,
    lse: Vec<f32>,
    band_o: Vec<f32>,
    band_lse: Vec<f32>,
}

/// Forward of head `p` into its `o` (`[n, d]`) and `lse` (`[n]`).
pub(super) fn head(p: &Plan<'_>, parts: &mut Parts, o: &mut [f32], lse: &mut [f32]) {
    let (n, d) = (p.n, p.d);
    let total = p.qoff[p.c];
    // Every element is overwritten below: the fill only sizes the buffers.
    reset(&mut parts.o, total * d, 0.0);
    reset(&mut parts.lse, total, 0.0);
    reset(&mut parts.band_o, n * d, 0.0);
    reset(&mut parts.band_lse, n, 0.0);
    // Tiles of BQ routed queries within each cluster, in qlist order.
    let tiles: Vec<(usize, usize, usize)> = (0..p.c)
        .flat_map(|c| {
            let (a, z) = (p.qoff[c], p.qoff[c + 1]);
            (a..z).step_by(BQ).map(move |p0| (c, p0, (p0 + BQ).min(z)))
        })
        .collect();
    let sizes = || tiles.iter().map(|&(_, a, z)| z - a);
    let o_parts = split_rows(&mut parts.o, sizes(), d);
    let lse_parts = split_rows(&mut parts.lse, sizes(), 1);
    let (band_o, band_lse) = (&mut parts.band_o, &mut parts.band_lse);
    rayon::join(
        || {
            let work = tiles.par_iter().zip(o_parts).zip(lse_parts);
            work.for_each_init(Scratch::default, |scr, ((&(c, p0, p1), o_t), lse_t)| {
                cluster_tile(p, c, (p0, p1), scr, (o_t, lse_t))
            });
        },
        || {
            let blocks = band_o
                .par_chunks_mut(BQ * d)
                .zip(band_lse.par_chunks_mut(BQ));
            blocks
                .enumerate()
                .for_each_init(Scratch::default, |scr, (t, (o_t, lse_t))| {
                    band_tile(p, t * BQ, scr, (o_t, lse_t))
                });
        },
    );
    let (part_o, part_lse) = (&parts.o, &parts.lse);
    let (band_o, band_lse) = (&parts.band_o, &parts.band_lse);
    let rows = o.par_chunks_mut(d).zip(lse.par_iter_mut()).enumerate();
    rows.for_each(|(i, (o_i, lse_i))| {
        let band = (&band_o[i * d..][..d], band_lse[i]);
        let routed = p.pos[i * p.kk..][..p.kk]
            .iter()
            .filter(|&&x| x != u32::MAX)
            .map(|&x| (&part_o[x as usize * d..][..d], part_lse[x as usize]));
        *lse_i = merge(std::iter::once(band).chain(routed), o_i);
    });
}

/// Log-sum-exp merge of normalized partials `(o_s, lse_s)` into `o`; returns the merged lse.
fn merge<'x>(parts: impl Iterator<Item = (&'x [f32], f32)> + Clone, o: &mut [f32]) -> f32 {
    let m = parts.clone().fold(f32::NEG_INFINITY, |m, (_, l)| m.max(l));
    o.fill(0.0);
    if m == f32::NEG_INFINITY {
        return m;
    }
    let mut total = 0.0_f32;
    for (o_s, l) in parts {
        let w = (l - m).exp();
        total += w;
        o.iter_mut().zip(o_s).for_each(|(y, &x)| *y += w * x);
    }
    o.iter_mut().for_each(|y| *y /= total);
    m + total.ln()
}

/// Online softmax of the queries in `scr.qt` (`rows × d`) over key positions `k0..k1`:
/// `kt(c0)` views keys `c0..` as columns of `Kᵀ`, `vx` holds the value rows from position 0.
/// Row r reads its keys below `scr.ends[r]`; `mask(s, c0)` may set further scores of the chunk
/// at `c0` to -inf. Leaves the normalized output in `o` and each row's lse in `lse`.
pub(super) fn attend<'x>(
    scr: &mut Scratch,
    (kt, vx): (impl Fn(usize) -> Mat<'x>, &[f32]),
    (k0, k1): (usize, usize),
    mask: impl Fn(&mut [f32], usize),
    (d, scale): (usize, f32),
    (o, lse): (&mut [f32], &mut [f32]),
) {
    let rows = lse.len();
    reset(&mut scr.m, rows, f32::NEG_INFINITY);
    reset(&mut scr.l, rows, 0.0);
    reset(&mut scr.alpha, rows, 1.0);
    reset(&mut scr.live, rows, 0);
    let Scratch {
        s,
        qt,
        m,
        l,
        alpha,
        live,
        ends,
        ..
    } = scr;
    o.fill(0.0);
    for c0 in (k0..k1).step_by(KC) {
        let kn = KC.min(k1 - c0);
        for (lv, &e) in live.iter_mut().zip(ends.iter()) {
            *lv = e.saturating_sub(c0).min(kn);
        }
        if live.iter().all(|&x| x == 0) {
            continue;
        }
        let s = sized(s, rows * kn);
        mm(
            s,
            kn,
            [rows, kn, d],
            (Mat::rows(qt, d), kt(c0)),
            (false, 1.0),
        );
        mask(s, c0);
        online_softmax(s, kn, live, scale, (m, l, alpha));
        for (o_r, &a) in o.chunks_exact_mut(d).zip(alpha.iter()) {
            if a != 1.0 {
                o_r.iter_mut().for_each(|x| *x *= a);
            }
        }
        let vt = Mat::rows(&vx[c0 * d..][..kn * d], d);
        mm(o, d, [rows, d, kn], (Mat::rows(s, kn), vt), (true, 1.0));
    }
    for (r, o_r) in o.chunks_exact_mut(d).enumerate() {
        if l[r] > 0.0 {
            o_r.iter_mut().for_each(|x| *x /= l[r]);
            lse[r] = m[r] + l[r].ln();
        } else {
            lse[r] = f32::NEG_INFINITY;
        }
    }
}

/// Routed queries `qlist[p0..p1]` of cluster c against the cluster's non-sink, pre-window keys.
fn cluster_tile(
    p: &Plan<'_>,
    c: usize,
    (p0, p1): (usize, usize),
    scr: &mut Scratch,
    out: (&mut [f32], &mut [f32]),
) {
    let d = p.d;
    let qs = &p.qlist[p0..p1];
    gather_into(&mut scr.qt, p.q, qs.iter().map(|&i| i as usize), d);
    let (a, z) = p.range(c);
    // Key range of this tile, relative to the cluster start: lo..hi of the last (latest) query.
    scr.ends.clear();
    scr.ends.extend(qs.iter().map(|&i| p.hi(c, i as usize)));
    let (lo, hi) = (p.lo[c], scr.ends.iter().copied().max().unwrap_or(0));
    let keys = (|c0| p.kt(c, c0), &p.vperm[a * d..z * d]);
    attend(scr, keys, (lo, hi.max(lo)), |_, _| {}, (d, p.scale), out);
}

/// Band pass (window + sink keys outside the window) of queries `q0..q0 + lse.len()`.
fn band_tile(p: &Plan<'_>, q0: usize, scr: &mut Scratch, (o, lse): (&mut [f32], &mut [f32])) {
    let (d, qn) = (p.d, lse.len());
    let keys = p.band_keys(q0, q0 + qn);
    let kn = keys.len();
    let kbt = gather_t(p.k, keys.iter().copied(), d);
    let vb = gather(p.v, keys.iter().copied(), d);
    let kt = |c0: usize| Mat::strided(&kbt[c0..], kn, 1);
    let mask = |s: &mut [f32], c0: usize| p.band_mask(s, s.len() / qn, q0, c0, q0 + qn);
    scr.qt.clear();
    scr.qt.extend_from_slice(&p.q[q0 * d..][..qn * d]);
    reset(&mut scr.ends, qn, kn);
    attend(scr, (kt, &vb), (0, kn), mask, (d, p.scale), (o, lse));
}
