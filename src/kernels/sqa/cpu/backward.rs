//! Fast backward of one head (FlashAttention-2 style: P rebuilt from the final lse,
//! `dS = P ∘ (dP − delta)`), over the same disjoint key sets as the forward:
//! - per cluster, one task owns the dK/dV rows of the cluster's keys and the dQ partials of
//!   its routed queries, so no two tasks write the same row;
//! - the band (window + sink) has a query-centric dQ pass and a key-centric dK/dV pass.

use rayon::prelude::*;

use super::mm::{mm, p_ds, Mat};
use super::plan::{gather, sized, split_rows, Plan, BQ, KC};

/// Gradients of head `p` given its `o`, `lse` and `dout` (`[n, d]`, `[n]`, `[n, d]`), written
/// into `dq`, `dk`, `dv` (`[n, d]`).
pub(super) fn head(
    p: &Plan<'_>,
    bufs: &mut Bufs,
    (o, lse, dout): (&[f32], &[f32], &[f32]),
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let (n, d) = (p.n, p.d);
    let delta: Vec<f32> = dout
        .par_chunks(d)
        .zip(o.par_chunks(d))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
        .collect();
    let g = Grad {
        lse,
        dout,
        delta: &delta,
    };
    let total = p.qoff[p.c];
    // The cluster tasks zero what they accumulate into; these calls only size the buffers.
    let Bufs {
        dq_part,
        dk_perm,
        dv_perm,
    } = bufs;
    let (dq_part, dk_perm) = (sized(dq_part, total * d), sized(dk_perm, n * d));
    let dv_perm = sized(dv_perm, n * d);
    let q_parts = split_rows(dq_part, p.qoff.windows(2).map(|w| w[1] - w[0]), d);
    let key_sizes = || p.off.windows(2).map(|w| (w[1] - w[0]) as usize);
    let k_parts = split_rows(dk_perm, key_sizes(), d);
    let v_parts = split_rows(dv_perm, key_sizes(), d);
    let blocks = band_blocks(p);
    let kb_sizes = || blocks.iter().map(|&(a, z)| z - a);
    let (dk_b, dv_b) = (split_rows(dk, kb_sizes(), d), split_rows(dv, kb_sizes(), d));
    rayon::join(
        || {
            let work = q_parts
                .into_par_iter()
                .zip(k_parts)
                .zip(v_parts)
                .enumerate();
            work.for_each(|(c, ((dq_c, dk_c), dv_c))| cluster(p, g, c, dq_c, (dk_c, dv_c)));
        },
        || {
            rayon::join(
                || {
                    let tiles = dq.par_chunks_mut(BQ * d).enumerate();
                    tiles.for_each(|(t, dq_t)| band_dq(p, g, t * BQ, dq_t));
                },
                || {
                    let work = blocks.par_iter().zip(dk_b).zip(dv_b);
                    work.for_each(|((&kr, dk_t), dv_t)| band_dkdv(p, g, kr, dk_t, dv_t));
                },
            )
        },
    );
    let (dq_part_r, dk_perm, dv_perm) = (&bufs.dq_part, &bufs.dk_perm, &bufs.dv_perm);
    // Route partials back onto dq; cluster-ordered dk/dv rows back to their keys.
    let rows = dq.par_chunks_mut(d).enumerate();
    rows.for_each(|(i, dq_i)| {
        for &x in p.pos[i * p.kk..][..p.kk].iter().filter(|&&x| x != u32::MAX) {
            let src = &dq_part_r[x as usize * d..][..d];
            dq_i.iter_mut().zip(src).for_each(|(y, &s)| *y += s);
        }
    });
    let mut inv = vec![0_usize; n];
    p.ord
        .iter()
        .enumerate()
        .for_each(|(pos, &j)| inv[j as usize] = pos);
    let add_back = |dst: &mut [f32], src: &[f32]| {
        let rows = dst.par_chunks_mut(d).zip(inv.par_iter());
        rows.for_each(|(y, &pos)| {
            y.iter_mut()
                .zip(&src[pos * d..][..d])
                .for_each(|(a, &s)| *a += s);
        });
    };
    add_back(dk, dk_perm);
    add_back(dv, dv_perm);
}

/// Per-head buffers kept by the caller so that their memory is reused by every head.
#[derive(Default)]
pub(super) struct Bufs {
    dq_part: Vec<f32>,
    dk_perm: Vec<f32>,
    dv_perm: Vec<f32>,
}

/// Per-query backward inputs of one head.
#[derive(Clone, Copy)]
struct Grad<'a> {
    lse: &'a [f32],
    dout: &'a [f32],
    delta: &'a [f32],
}

/// Cluster c: its routed queries in tiles of BQ against its non-sink, pre-window keys.
fn cluster(
    p: &Plan<'_>,
    g: Grad<'_>,
    c: usize,
    dq_c: &mut [f32],
    (dk_c, dv_c): (&mut [f32], &mut [f32]),
) {
    let d = p.d;
    dq_c.fill(0.0);
    dk_c.fill(0.0);
    dv_c.fill(0.0);
    let (a, z) = p.range(c);
    let kc = &p.kperm[a * d..z * d];
    let qs = &p.qlist[p.qoff[c]..p.qoff[c + 1]];
    let mut s = Vec::new();
    let mut dp = Vec::new();
    let mut live = vec![0_usize; BQ];
    for (t, dq_t) in dq_c.chunks_mut(BQ * d).enumerate() {
        let rows = &qs[t * BQ..][..dq_t.len() / d];
        let qn = rows.len();
        let idx = || rows.iter().map(|&i| i as usize);
        let (qt, dot) = (gather(p.q, idx(), d), gather(g.dout, idx(), d));
        let lse: Vec<f32> = idx().map(|i| g.lse[i]).collect();
        let delta: Vec<f32> = idx().map(|i| g.delta[i]).collect();
        let ends: Vec<usize> = idx().map(|i| p.hi(c, i)).collect();
        let hi = ends.iter().copied().max().unwrap_or(0);
        for c0 in (p.lo[c]..hi).step_by(KC) {
            let kn = KC.min(hi - c0);
            let live = &mut live[..qn];
            live.iter_mut()
                .zip(&ends)
                .for_each(|(lv, &e)| *lv = e.saturating_sub(c0).min(kn));
            s.resize(qn * kn, 0.0);
            dp.resize(qn * kn, 0.0);
            let kts = (p.kt(c, c0), p.vt(c, c0));
            tile(p, (&qt, &dot), kts, (&mut s, &mut dp), live, (&lse, &delta));
            let kx = &kc[c0 * d..][..kn * d];
            let (dk_x, dv_x) = (&mut dk_c[c0 * d..][..kn * d], &mut dv_c[c0 * d..][..kn * d]);
            accumulate(p, (&qt, &dot), kx, (&s, &dp), (dq_t, dk_x, dv_x));
        }
    }
}

/// `s = P`, `dp = dS` of one tile: scores of queries `qt` against the keys viewed as `Kᵀ`
/// columns by `kt`, dP from `dot` and `vt`, rows reading their first `live[r]` keys.
fn tile(
    p: &Plan<'_>,
    (qt, dot): (&[f32], &[f32]),
    (kt, vt): (Mat<'_>, Mat<'_>),
    (s, dp): (&mut [f32], &mut [f32]),
    live: &[usize],
    (lse, delta): (&[f32], &[f32]),
) {
    let (d, qn) = (p.d, live.len());
    let kn = s.len() / qn.max(1);
    mm(s, kn, [qn, kn, d], (Mat::rows(qt, d), kt), (false, 1.0));
    mm(dp, kn, [qn, kn, d], (Mat::rows(dot, d), vt), (false, 1.0));
    p_ds((s, dp), kn, live, p.scale, (lse, delta));
}

/// `dq += scale·dS·K`, `dk += scale·dSᵀ·Q`, `dv += Pᵀ·dO` for one tile (any of the three
/// outputs may be empty to skip it).
fn accumulate(
    p: &Plan<'_>,
    (qt, dot): (&[f32], &[f32]),
    kx: &[f32],
    (pm, ds): (&[f32], &[f32]),
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let d = p.d;
    let qn = qt.len() / d;
    let kn = kx.len() / d;
    if !dq.is_empty() {
        mm(
            dq,
            d,
            [qn, d, kn],
            (Mat::rows(ds, kn), Mat::rows(kx, d)),
            (true, p.scale),
        );
    }
    if !dk.is_empty() {
        mm(
            dk,
            d,
            [kn, d, qn],
            (Mat::cols(ds, kn), Mat::rows(qt, d)),
            (true, p.scale),
        );
        mm(
            dv,
            d,
            [kn, d, qn],
            (Mat::cols(pm, kn), Mat::rows(dot, d)),
            (true, 1.0),
        );
    }
}

/// dQ of queries `q0..` from their band keys.
fn band_dq(p: &Plan<'_>, g: Grad<'_>, q0: usize, dq: &mut [f32]) {
    let d = p.d;
    let qn = dq.len() / d;
    let keys = p.band_keys(q0, q0 + qn);
    dq.fill(0.0);
    if keys.is_empty() {
        return;
    }
    let (kb, vb) = (
        gather(p.k, keys.iter().copied(), d),
        gather(p.v, keys.iter().copied(), d),
    );
    let kn = keys.len();
    let (mut s, mut dp) = (vec![0.0_f32; qn * kn], vec![0.0_f32; qn * kn]);
    let (qt, dot) = (&p.q[q0 * d..][..qn * d], &g.dout[q0 * d..][..qn * d]);
    mm(
        &mut s,
        kn,
        [qn, kn, d],
        (Mat::rows(qt, d), Mat::cols(&kb, d)),
        (false, 1.0),
    );
    p.band_mask(&mut s, kn, q0, 0, q0 + qn);
    mm(
        &mut dp,
        kn,
        [qn, kn, d],
        (Mat::rows(dot, d), Mat::cols(&vb, d)),
        (false, 1.0),
    );
    let st = (&g.lse[q0..][..qn], &g.delta[q0..][..qn]);
    p_ds((&mut s, &mut dp), kn, &vec![kn; qn], p.scale, st);
    accumulate(p, (qt, dot), &kb, (&s, &dp), (dq, &mut [], &mut []));
}

/// Key blocks of the band's dK/dV pass: sink keys first (read by every later query), then
/// blocks of BQ keys (read by the w queries from themselves on), never straddling `sink`.
fn band_blocks(p: &Plan<'_>) -> Vec<(usize, usize)> {
    let s0 = p.sink.min(p.n);
    let sink = (0..s0).step_by(BQ).map(|a| (a, (a + BQ).min(s0)));
    sink.chain((s0..p.n).step_by(BQ).map(|a| (a, (a + BQ).min(p.n))))
        .collect()
}

/// dK, dV of keys `k0..k1` from the queries that read them through the band.
fn band_dkdv(p: &Plan<'_>, g: Grad<'_>, (k0, k1): (usize, usize), dk: &mut [f32], dv: &mut [f32]) {
    let d = p.d;
    dk.fill(0.0);
    dv.fill(0.0);
    let qend = if k0 < p.sink {
        p.n
    } else {
        p.n.min((k1 - 1) + p.w)
    };
    let kn = k1 - k0;
    let (kx, vx) = (&p.k[k0 * d..k1 * d], &p.v[k0 * d..k1 * d]);
    let (mut s, mut dp) = (vec![0.0_f32; BQ * kn], vec![0.0_f32; BQ * kn]);
    for q0 in (k0..qend).step_by(BQ) {
        let qn = BQ.min(qend - q0);
        let (s, dp) = (&mut s[..qn * kn], &mut dp[..qn * kn]);
        let (qt, dot) = (&p.q[q0 * d..][..qn * d], &g.dout[q0 * d..][..qn * d]);
        mm(
            s,
            kn,
            [qn, kn, d],
            (Mat::rows(qt, d), Mat::cols(kx, d)),
            (false, 1.0),
        );
        p.band_mask_range(s, kn, q0, k0);
        mm(
            dp,
            kn,
            [qn, kn, d],
            (Mat::rows(dot, d), Mat::cols(vx, d)),
            (false, 1.0),
        );
        let st = (&g.lse[q0..][..qn], &g.delta[q0..][..qn]);
        p_ds((s, dp), kn, &vec![kn; qn], p.scale, st);
        accumulate(p, (qt, dot), kx, (s, dp), (&mut [], dk, dv));
    }
}
