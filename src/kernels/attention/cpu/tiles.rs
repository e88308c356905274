//! Register-blocked tile kernels of the fast CPU attention, compiled per instruction set
//! and chosen at run time.

use rayon::prelude::*;

use super::{BK, BQ, LANES};

pub(super) use crate::kernels::fastmath::{exp2_fast, fmadd};

/// Folds `x` into `LANES` independent accumulators so the loop vectorizes, then combines them
/// pairwise (also vectorized) instead of in a 16-step scalar chain.
#[inline(always)]
pub(super) fn fold_lanes(x: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        acc.iter_mut().zip(c).for_each(|(a, &v)| *a = op(*a, v));
    }
    let tail = chunks.remainder();
    acc.iter_mut().zip(tail).for_each(|(a, &v)| *a = op(*a, v));
    let mut w = LANES / 2;
    while w > 0 {
        (0..w).for_each(|i| acc[i] = op(acc[i], acc[i + w]));
        w /= 2;
    }
    acc[0]
}

/// Strided read-only matrix: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    pub(super) fn rows(data: &'a [f32], rs: usize) -> Self {
        Self { data, rs, cs: 1 }
    }
    pub(super) fn cols(data: &'a [f32], cs: usize) -> Self {
        Self { data, rs: 1, cs }
    }
    pub(super) fn skip(self, r: usize, c: usize) -> Self {
        let data = &self.data[r * self.rs + c * self.cs..];
        Self { data, ..self }
    }
}

/// A separate function rather than a closure: as a closure the accumulator was not kept in
/// registers.
#[inline(always)]
pub(super) fn rank1<const R: usize, const W: usize, const F: bool>(
    acc: &mut [[f32; W]; R],
    a: [f32; R],
    b: &[f32],
) {
    for (acc_r, &a_r) in acc.iter_mut().zip(&a) {
        for (s, &bx) in acc_r.iter_mut().zip(b) {
            *s = fmadd::<F>(a_r, bx, *s);
        }
    }
}

/// Register-blocked `c[..R][..W] = (acc ? c : 0) + alpha · Σ_{t<tl} a(r, t) · b(t, ..W)`:
/// the R×W accumulator lives in vector registers; each step costs R broadcasts, W/lanes
/// loads and R·W/lanes FMAs.
#[inline(always)]
pub(super) fn micro<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    (a, b): (View<'_>, View<'_>),
    tl: usize,
    (accumulate, alpha): (bool, f32),
) {
    let mut acc = [[0.0_f32; W]; R];
    for t in 0..tl {
        let at = std::array::from_fn(|r| a.data[r * a.rs + t * a.cs]);
        rank1::<R, W, F>(&mut acc, at, &b.data[t * b.rs..][..W]);
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (y, &s) in c[r * ldc..][..W].iter_mut().zip(acc_r) {
            *y = alpha * s + if accumulate { *y } else { 0.0 };
        }
    }
}

/// Columns `x0..x0 + W` of `mm`.
#[inline(always)]
pub(super) fn panel<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    (a, b): (View<'_>, View<'_>),
    [m, x0, tl]: [usize; 3],
    op: (bool, f32),
) {
    let (b, full) = (b.skip(0, x0), m - m % R);
    for r0 in (0..full).step_by(R) {
        micro::<R, W, F>(&mut c[r0 * ldc + x0..], ldc, (a.skip(r0, 0), b), tl, op);
    }
    for r in full..m {
        micro::<1, W, F>(&mut c[r * ldc + x0..], ldc, (a.skip(r, 0), b), tl, op);
    }
}

/// `c[m×w] = (acc ? c : 0) + alpha · a[m×tl] · b[tl×w]`, `c` row-major with row stride
/// `ldc`, `b` with unit column stride.
#[inline(always)]
pub(super) fn mm<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    (a, b): (View<'_>, View<'_>),
    [m, w, tl]: [usize; 3],
    op: (bool, f32),
) {
    debug_assert_eq!(b.cs, 1);
    let mut x0 = 0;
    while x0 + W <= w {
        panel::<R, W, F>(c, ldc, (a, b), [m, x0, tl], op);
        x0 += W;
    }
    while x0 + 8 <= w {
        panel::<R, 8, F>(c, ldc, (a, b), [m, x0, tl], op);
        x0 += 8;
    }
    // Ragged right edge (odd d, short diagonal tiles): plain loops, too rare to matter.
    for r in (0..m).filter(|_| x0 < w) {
        let c_r = &mut c[r * ldc + x0..][..w - x0];
        if !op.0 {
            c_r.fill(0.0);
        }
        for t in 0..tl {
            let s = op.1 * a.data[r * a.rs + t * a.cs];
            let b_t = &b.data[t * b.rs + x0..];
            for (y, &bx) in c_r.iter_mut().zip(b_t) {
                *y = fmadd::<F>(s, bx, *y);
            }
        }
    }
}

/// Instruction sets the tile kernels are compiled for, picked at run time since the crate is
/// built for baseline x86-64. Ordered, so that a requested level can be capped by `detect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                return if has!("avx512f") {
                    Self::Avx512
                } else {
                    Self::Avx2
                };
            }
        }
        Self::Baseline
    }
}

/// Wraps each `$generic::<R, W, FMA>` tile function into one taking an `Isa`. The R×W
/// register blocks were measured: others (e.g. 6×64 or 4×32 on AVX-512, 6×16 on AVX2) made
/// the compiler spill or vectorize across rows, running 3-15× slower.
macro_rules! isa_dispatch {
    ($(fn $name:ident => $generic:ident($($arg:ident: $ty:ty),*);)*) => {$(
        pub(super) fn $name(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $generic::<4, 64, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $generic::<2, 32, true>($($arg),*)
                }
                match isa.min(Isa::detect()) {
                    // SAFETY: `detect` found the CPU features `avx512` was compiled for.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `detect` found the CPU features `avx2` was compiled for.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = isa;
            $generic::<2, 16, false>($($arg),*)
        }
    )*};
}

/// The inputs of one head. `kt`/`vt` come from `transpose_tiles`; the backward-only
/// `dout`/`lse`/`delta` are empty in the forward.
#[derive(Clone, Copy)]
pub(super) struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    kt: &'a [f32],
    vt: &'a [f32],
    dout: &'a [f32],
    lse: &'a [f32],
    delta: &'a [f32],
    n: usize,
    d: usize,
}

impl<'a> Head<'a> {
    /// Head `b` of the whole-batch buffers `[q, k, v, kt, vt, dout, lse, delta]`.
    pub(super) fn new(b: usize, [n, d]: [usize; 2], x: [&'a [f32]; 8]) -> Self {
        let part = |x: &'a [f32], w: usize| x.get(b * n * w..(b + 1) * n * w).unwrap_or(&[]);
        let [q, k, v, kt, vt] = [x[0], x[1], x[2], x[3], x[4]].map(|x| part(x, d));
        let [dout, lse, delta] = [part(x[5], d), part(x[6], 1), part(x[7], 1)];
        Self {
            q,
            k,
            v,
            kt,
            vt,
            dout,
            lse,
            delta,
            n,
            d,
        }
    }
    pub(super) fn scale(&self) -> f32 {
        1.0 / (self.d as f32).sqrt()
    }
    pub(super) fn rows(&self, x: &'a [f32], r0: usize, len: usize) -> View<'a> {
        View::rows(&x[r0 * self.d..][..len * self.d], self.d)
    }
    /// The transposed tile of keys from `k0`; its row stride is the tile's stored width.
    pub(super) fn tile_t(&self, xt: &'a [f32], k0: usize) -> View<'a> {
        let kn = BK.min(self.n - k0);
        View::rows(&xt[k0 * self.d..][..kn * self.d], kn)
    }
}

/// Stores each head's key tile `k0..k0 + kn` transposed (`[d, kn]`) at offset `k0 * d`, so
/// the `QKᵀ` and `dO·Vᵀ` kernels read contiguous rows. A plain `[d, n]` transpose would place a
/// tile's rows `4n` bytes apart, all in one L1 set.
pub(super) fn transpose_tiles(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0_f32; x.len()];
    let heads = out.par_chunks_mut(n * d).zip(x.par_chunks(n * d));
    heads.for_each(|(y, x)| {
        for k0 in (0..n).step_by(BK) {
            let kn = BK.min(n - k0);
            let y = &mut y[k0 * d..][..kn * d];
            for (j, row) in x[k0 * d..][..kn * d].chunks_exact(d).enumerate() {
                for (c, &val) in row.iter().enumerate() {
                    y[c * kn + j] = val;
                }
            }
        }
    });
    out
}

/// How many keys of `k0..k0 + kn` query `qi` sees: the causal mask of one tile row.
#[inline(always)]
pub(super) fn visible(qi: usize, k0: usize, kn: usize) -> usize {
    kn.min((qi + 1).saturating_sub(k0))
}

/// Online-softmax forward of queries `q0..q0 + lse.len()`. Scores are kept in log2 units
/// (`log2(e)/sqrt(d)` is folded into `QKᵀ`) so each exponential is a bare `exp2_fast`.
#[inline(always)]
pub(super) fn fwd_block<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    q0: usize,
    o: &mut [f32],
    lse: &mut [f32],
) {
    let (d, qn, c) = (h.d, lse.len(), h.scale() * std::f32::consts::LOG2_E);
    let mut s = vec![0.0_f32; qn * BK];
    let (mut m, mut l) = ([f32::NEG_INFINITY; BQ], [0.0_f32; BQ]);
    // Key tiles entirely above the diagonal are never visited.
    for k0 in (0..q0 + qn).step_by(BK) {
        let kn = BK.min(q0 + qn - k0);
        let s = &mut s[..qn * kn];
        let ab = (h.rows(h.q, q0, qn), h.tile_t(h.kt, k0));
        mm::<R, W, F>(s, kn, ab, [qn, kn, d], (false, c));
        for (r, row) in s.chunks_exact_mut(kn).enumerate() {
            // Only tiles crossing the diagonal have a non-empty `dead` part.
            let (live, dead) = row.split_at_mut(visible(q0 + r, k0, kn));
            dead.fill(0.0);
            if live.is_empty() {
                continue;
            }
            let m_new = fold_lanes(live, m[r], |a, b| if b > a { b } else { a });
            for x in live.iter_mut() {
                *x = exp2_fast::<F>(*x - m_new);
            }
            // On the first visit m = -inf gives alpha = 0, harmless on the zeroed `o`.
            let alpha = exp2_fast::<F>(m[r] - m_new);
            l[r] = l[r] * alpha + fold_lanes(live, 0.0, |a, b| a + b);
            if m_new > m[r] {
                o[r * d..][..d].iter_mut().for_each(|x| *x *= alpha);
            }
            m[r] = m_new;
        }
        let ab = (View::rows(s, kn), h.rows(h.v, k0, kn));
        mm::<R, W, F>(o, d, ab, [qn, d, kn], (true, 1.0));
    }
    for (r, o_r) in o.chunks_exact_mut(d).enumerate() {
        for x in o_r.iter_mut() {
            *x /= l[r];
        }
        lse[r] = (m[r] + l[r].log2()) * std::f32::consts::LN_2;
    }
}

/// Recomputes `p = exp(S - lse)` and `ds = p ∘ (dO·Vᵀ - delta)` for one `qn × kn` tile.
#[inline(always)]
pub(super) fn p_ds_tile<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    (q0, qn): (usize, usize),
    (k0, kn): (usize, usize),
    p: &mut [f32],
    ds: &mut [f32],
) {
    let ab = (h.rows(h.q, q0, qn), h.tile_t(h.kt, k0));
    mm::<R, W, F>(p, kn, ab, [qn, kn, h.d], (false, h.scale()));
    let ab = (h.rows(h.dout, q0, qn), h.tile_t(h.vt, k0));
    mm::<R, W, F>(ds, kn, ab, [qn, kn, h.d], (false, 1.0));
    let rows = p.chunks_exact_mut(kn).zip(ds.chunks_exact_mut(kn));
    for (r, (p_r, ds_r)) in rows.enumerate() {
        let (live, dead) = p_r.split_at_mut(visible(q0 + r, k0, kn));
        dead.fill(0.0);
        let (lse, delta) = (h.lse[q0 + r], h.delta[q0 + r]);
        // Subtract in natural units: rounding lse·log2(e) at |lse| ~ 1e3 would cost ~1e-4 in p.
        for x in live.iter_mut() {
            *x = exp2_fast::<F>((*x - lse) * std::f32::consts::LOG2_E);
        }
        ds_r.iter_mut()
            .zip(p_r.iter())
            .for_each(|(g, &pv)| *g = pv * (*g - delta));
    }
}

/// dk and dv of keys `k0..k0 + dk.len() / d`, over the query tiles on or below the diagonal.
#[inline(always)]
pub(super) fn dkdv_block<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    k0: usize,
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (d, kn) = (h.d, dk.len() / h.d);
    let (mut p, mut ds) = (vec![0.0_f32; BQ * kn], vec![0.0_f32; BQ * kn]);
    // Query tiles start at k0, so none lies entirely above the diagonal.
    for q0 in (k0..h.n).step_by(BQ) {
        let qn = BQ.min(h.n - q0);
        let (p, ds) = (&mut p[..qn * kn], &mut ds[..qn * kn]);
        p_ds_tile::<R, W, F>(h, (q0, qn), (k0, kn), p, ds);
        let ab = (View::cols(p, kn), h.rows(h.dout, q0, qn));
        mm::<R, W, F>(dv, d, ab, [kn, d, qn], (true, 1.0));
        let ab = (View::cols(ds, kn), h.rows(h.q, q0, qn));
        mm::<R, W, F>(dk, d, ab, [kn, d, qn], (true, h.scale()));
    }
}

/// dq of queries `q0..q0 + dq.len() / d`.
#[inline(always)]
pub(super) fn dq_block<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    q0: usize,
    dq: &mut [f32],
) {
    let (d, qn) = (h.d, dq.len() / h.d);
    let (mut p, mut ds) = (vec![0.0_f32; qn * BK], vec![0.0_f32; qn * BK]);
    for k0 in (0..q0 + qn).step_by(BK) {
        let kn = BK.min(q0 + qn - k0);
        let (p, ds) = (&mut p[..qn * kn], &mut ds[..qn * kn]);
        p_ds_tile::<R, W, F>(h, (q0, qn), (k0, kn), p, ds);
        let ab = (View::rows(ds, kn), h.rows(h.k, k0, kn));
        mm::<R, W, F>(dq, d, ab, [qn, d, kn], (true, h.scale()));
    }
}

isa_dispatch! {
    fn fwd_tile => fwd_block(h: Head<'_>, q0: usize, o: &mut [f32], lse: &mut [f32]);
    fn dkdv_tile => dkdv_block(h: Head<'_>, k0: usize, dk: &mut [f32], dv: &mut [f32]);
    fn dq_tile => dq_block(h: Head<'_>, q0: usize, dq: &mut [f32]);
}
