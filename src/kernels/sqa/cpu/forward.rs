//! Fast forward of one head: cluster tiles and band tiles produce partial (o, lse) pairs over
//! disjoint key sets, merged per query by log-sum-exp.

use rayon::prelude::*;

use super::mm::{mm, online_softmax, Mat};
use super::plan::{gather, split_rows, Plan, BQ, KC};

/// Forward of head `p` into its `o` (`[n, d]`) and `lse` (`[n]`).
pub(super) fn head(p: &Plan<'_>, o: &mut [f32], lse: &mut [f32]) {
    let (n, d) = (p.n, p.d);
    let total = p.qoff[p.c];
    let (mut part_o, mut part_lse) = (vec![0.0_f32; total * d], vec![0.0_f32; total]);
    let (mut band_o, mut band_lse) = (vec![0.0_f32; n * d], vec![0.0_f32; n]);
    // Tiles of BQ routed queries within each cluster, in qlist order.
    let tiles: Vec<(usize, usize, usize)> = (0..p.c)
        .flat_map(|c| {
            let (a, z) = (p.qoff[c], p.qoff[c + 1]);
            (a..z).step_by(BQ).map(move |p0| (c, p0, (p0 + BQ).min(z)))
        })
        .collect();
    let sizes = || tiles.iter().map(|&(_, a, z)| z - a);
    let o_parts = split_rows(&mut part_o, sizes(), d);
    let lse_parts = split_rows(&mut part_lse, sizes(), 1);
    rayon::join(
        || {
            let work = tiles.par_iter().zip(o_parts).zip(lse_parts);
            work.for_each(|((&(c, p0, p1), o_t), lse_t)| cluster_tile(p, c, (p0, p1), o_t, lse_t));
        },
        || {
            let blocks = band_o
                .par_chunks_mut(BQ * d)
                .zip(band_lse.par_chunks_mut(BQ));
            blocks
                .enumerate()
                .for_each(|(t, (o_t, lse_t))| band_tile(p, t * BQ, o_t, lse_t));
        },
    );
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

/// Online softmax of the gathered queries `qt` (`rows × d`) over key rows `k0..k1` of
/// `kperm`/`vperm` (or the given key/value rows), row r reading its first `live[r]` keys.
/// Leaves the normalized output in `o` and returns per-row lse in `lse`.
#[allow(clippy::too_many_arguments)]
pub(super) fn attend(
    qt: &[f32],
    (kx, vx): (&[f32], &[f32]),
    (k0, k1): (usize, usize),
    live_end: &[usize],
    d: usize,
    scale: f32,
    o: &mut [f32],
    lse: &mut [f32],
) {
    let rows = lse.len();
    let mut m = vec![f32::NEG_INFINITY; rows];
    let (mut l, mut alpha) = (vec![0.0_f32; rows], vec![1.0_f32; rows]);
    let mut s = vec![0.0_f32; rows * KC.min(k1.saturating_sub(k0)).max(1)];
    let mut live = vec![0_usize; rows];
    o.fill(0.0);
    for c0 in (k0..k1).step_by(KC) {
        let kn = KC.min(k1 - c0);
        for (lv, &e) in live.iter_mut().zip(live_end) {
            *lv = e.saturating_sub(c0).min(kn);
        }
        if live.iter().all(|&x| x == 0) {
            continue;
        }
        let s = &mut s[..rows * kn];
        let kt = Mat::cols(&kx[c0 * d..][..kn * d], d);
        mm(s, kn, [rows, kn, d], (Mat::rows(qt, d), kt), (false, 1.0));
        online_softmax(s, kn, &live, scale, (&mut m, &mut l, &mut alpha));
        for (o_r, &a) in o.chunks_exact_mut(d).zip(&alpha) {
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
fn cluster_tile(p: &Plan<'_>, c: usize, (p0, p1): (usize, usize), o: &mut [f32], lse: &mut [f32]) {
    let d = p.d;
    let qs = &p.qlist[p0..p1];
    let qt = gather(p.q, qs.iter().map(|&i| i as usize), d);
    let (a, _) = p.range(c);
    // Key range of this tile, relative to the cluster start: lo..hi of the last (latest) query.
    let ends: Vec<usize> = qs.iter().map(|&i| p.hi(c, i as usize)).collect();
    let (lo, hi) = (p.lo[c], ends.iter().copied().max().unwrap_or(0));
    let kx = (&p.kperm[a * d..], &p.vperm[a * d..]);
    attend(&qt, kx, (lo, hi.max(lo)), &ends, d, p.scale, o, lse);
}

/// Band pass (window + sink keys outside the window) of queries `q0..q0 + lse.len()`.
fn band_tile(p: &Plan<'_>, q0: usize, o: &mut [f32], lse: &mut [f32]) {
    let (d, qn) = (p.d, lse.len());
    let keys = p.band_keys(q0, q0 + qn);
    let (kb, vb) = (
        gather(p.k, keys.iter().copied(), d),
        gather(p.v, keys.iter().copied(), d),
    );
    let kn = keys.len();
    if kn == 0 {
        o.fill(0.0);
        lse.fill(f32::NEG_INFINITY);
        return;
    }
    let (mut m, mut l, mut alpha) = (vec![f32::NEG_INFINITY; qn], vec![0.0; qn], vec![1.0; qn]);
    let mut s = vec![0.0_f32; qn * kn];
    let qt = &p.q[q0 * d..][..qn * d];
    mm(
        &mut s,
        kn,
        [qn, kn, d],
        (Mat::rows(qt, d), Mat::cols(&kb, d)),
        (false, 1.0),
    );
    for (r, row) in s.chunks_exact_mut(kn).enumerate() {
        for (x, &j) in row.iter_mut().zip(&keys) {
            if !p.band_live(q0 + r, j) {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    let live = vec![kn; qn];
    online_softmax(&mut s, kn, &live, p.scale, (&mut m, &mut l, &mut alpha));
    mm(
        o,
        d,
        [qn, d, kn],
        (Mat::rows(&s, kn), Mat::rows(&vb, d)),
        (false, 1.0),
    );
    for (r, o_r) in o.chunks_exact_mut(d).enumerate() {
        if l[r] > 0.0 {
            o_r.iter_mut().for_each(|x| *x /= l[r]);
            lse[r] = m[r] + l[r].ln();
        } else {
            o_r.fill(0.0);
            lse[r] = f32::NEG_INFINITY;
        }
    }
}
