//! Dense causal scaled-dot-product attention on the CPU, f32, forward and backward.
//!
//! Shape legend (all buffers contiguous, row-major):
//! - `bh`: batch × heads, independent attention problems
//! - `n`: sequence length (queries and keys)
//! - `d`: head dimension; scores are `q_i · k_j / sqrt(d)`
//! - `q`, `k`, `v`, `o`, `dout`, `dq`, `dk`, `dv`: `[bh, n, d]`
//! - `lse`: `[bh, n]`, natural-log-sum-exp of the scaled scores of each query row
//!
//! Query `i` attends keys `j <= i`. The `_ref` functions are plain loops with f64
//! accumulation and serve as the numerical ground truth; the others are tiled
//! FlashAttention-2 kernels whose memory is linear in `n`.
//!
//! # Panics
//! Every function panics if `d == 0` or a buffer length does not match its shape.

use rayon::prelude::*;

/// Query rows per tile. Measured on a 2-core AVX-512 Xeon; 64..128 are within a few percent.
const BQ: usize = 64;
/// Keys per tile.
const BK: usize = 128;
/// Accumulator width for reductions; wide enough for AVX-512, harmless for narrower SIMD.
const LANES: usize = 16;

fn check_shapes(bh: usize, n: usize, d: usize, bufs: &[(&str, &[f32], usize)]) {
    assert!(d > 0, "attention: head dimension must be positive");
    for &(name, buf, row) in bufs {
        assert_eq!(
            buf.len(),
            bh * n * row,
            "attention: `{name}` has wrong length"
        );
    }
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Plain-loop reference (llm.c style, subtracting the row max). Memory O(n) per row.
/// Returns `(o, lse)`.
pub fn attention_forward_ref(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bh: usize,
    n: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>) {
    check_shapes(bh, n, d, &[("q", q, d), ("k", k, d), ("v", v, d)]);
    let scale = 1.0 / (d as f64).sqrt();
    let mut o = vec![0.0f32; bh * n * d];
    let mut lse = vec![0.0f32; bh * n];
    let mut s = vec![0.0f64; n];
    let mut acc = vec![0.0f64; d];
    for b in 0..bh {
        let base = b * n * d;
        for i in 0..n {
            let qi = &q[base + i * d..][..d];
            let mut mx = f64::NEG_INFINITY;
            for (j, sj) in s[..=i].iter_mut().enumerate() {
                *sj = dot64(qi, &k[base + j * d..][..d]) * scale;
                mx = mx.max(*sj);
            }
            acc.fill(0.0);
            let mut sum = 0.0;
            for (j, &sj) in s[..=i].iter().enumerate() {
                let p = (sj - mx).exp();
                sum += p;
                for (a, &x) in acc.iter_mut().zip(&v[base + j * d..][..d]) {
                    *a += p * f64::from(x);
                }
            }
            for (out, a) in o[base + i * d..][..d].iter_mut().zip(&acc) {
                *out = (a / sum) as f32;
            }
            lse[b * n + i] = (mx + sum.ln()) as f32;
        }
    }
    (o, lse)
}

/// Plain-loop reference backward from the forward's `o` and `lse`. Returns `(dq, dk, dv)`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_ref(
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
    let row_bufs = [("q", q, d), ("k", k, d), ("v", v, d), ("o", o, d)];
    check_shapes(bh, n, d, &row_bufs);
    check_shapes(bh, n, d, &[("lse", lse, 1), ("dout", dout, d)]);
    let scale = 1.0 / (d as f64).sqrt();
    let mut dq = vec![0.0f32; bh * n * d];
    let mut dk = vec![0.0f32; bh * n * d];
    let mut dv = vec![0.0f32; bh * n * d];
    // dk/dv rows receive contributions from many queries, so accumulate them in f64.
    let mut dk64 = vec![0.0f64; n * d];
    let mut dv64 = vec![0.0f64; n * d];
    let mut dqi = vec![0.0f64; d];
    for b in 0..bh {
        let base = b * n * d;
        dk64.fill(0.0);
        dv64.fill(0.0);
        for i in 0..n {
            let row = |j: usize| base + j * d..base + (j + 1) * d;
            let (qi, doi) = (&q[row(i)], &dout[row(i)]);
            let delta = dot64(doi, &o[row(i)]);
            let lse_i = f64::from(lse[b * n + i]);
            dqi.fill(0.0);
            for j in 0..=i {
                let (kj, vj) = (&k[row(j)], &v[row(j)]);
                let p = (dot64(qi, kj) * scale - lse_i).exp();
                let ds = p * (dot64(doi, vj) - delta) * scale;
                let (dkj, dvj) = (&mut dk64[j * d..][..d], &mut dv64[j * d..][..d]);
                for c in 0..d {
                    dvj[c] += p * f64::from(doi[c]);
                    dkj[c] += ds * f64::from(qi[c]);
                    dqi[c] += ds * f64::from(kj[c]);
                }
            }
            for (out, &g) in dq[base + i * d..][..d].iter_mut().zip(&dqi) {
                *out = g as f32;
            }
        }
        for (out, &g) in dk[base..][..n * d].iter_mut().zip(&dk64) {
            *out = g as f32;
        }
        for (out, &g) in dv[base..][..n * d].iter_mut().zip(&dv64) {
            *out = g as f32;
        }
    }
    (dq, dk, dv)
}

/// `2^x` for `x <= 127`: round-to-nearest range reduction plus a degree-6 Taylor polynomial
/// on `[-0.5, 0.5]` (truncation error < 1.7e-7 relative). Branch-free so loops over it
/// vectorize; inputs below -127 (including the `-inf` of masked scores) give exactly 0.
#[inline(always)]
fn exp2_fast(x: f32) -> f32 {
    // 1.5 * 2^23: adding it pushes the fraction out of the mantissa, i.e. rounds to integer.
    const SHIFTER: f32 = 12_582_912.0;
    let x = if x < -127.0 { -127.0 } else { x };
    let x = if x > 127.0 { 127.0 } else { x };
    let t = x + SHIFTER;
    let f = x - (t - SHIFTER);
    let e = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    let p = 1.540_353_1e-4_f32;
    let p = p * f + 1.333_355_8e-3;
    let p = p * f + 9.618_129e-3;
    let p = p * f + 5.550_411e-2;
    let p = p * f + 0.240_226_5;
    let p = p * f + std::f32::consts::LN_2;
    let p = p * f + 1.0;
    // e = -127 yields a zero bit pattern, i.e. 2^-127 underflows to exactly 0.
    p * f32::from_bits(((e + 127) as u32) << 23)
}

#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let tail = chunks.remainder().iter();
    tail.chain(&acc).fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

#[inline(always)]
fn sum_of(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    chunks.remainder().iter().chain(&acc).sum()
}

#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (mut cx, mut cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    for (a, b) in (&mut cx).zip(&mut cy) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    let tail: f32 = cx
        .remainder()
        .iter()
        .zip(cy.remainder())
        .map(|(a, b)| a * b)
        .sum();
    tail + acc.iter().sum::<f32>()
}

/// Strided read-only matrix: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    fn rows(data: &'a [f32], rs: usize) -> Self {
        View { data, rs, cs: 1 }
    }
    fn skip(self, r: usize, c: usize) -> Self {
        let data = &self.data[r * self.rs + c * self.cs..];
        View { data, ..self }
    }
}

#[inline(always)]
fn fmadd<const F: bool>(a: f32, b: f32, acc: f32) -> f32 {
    // Without hardware FMA `mul_add` becomes a libm call, so the baseline build must not use it.
    if F {
        a.mul_add(b, acc)
    } else {
        a * b + acc
    }
}

/// Register-blocked `c[..R][..W] = (acc ? c : 0) + alpha · Σ_{t<tl} a(r, t) · b(t, ..W)`: the
/// R×W accumulator stays in vector registers, each step costs R broadcasts and W/lanes loads.
#[inline(always)]
fn micro<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    (a, b): (View, View),
    tl: usize,
    (accumulate, alpha): (bool, f32),
) {
    let mut acc = [[0.0f32; W]; R];
    let mut step = |t: usize, at: [f32; R]| {
        let bt = &b.data[t * b.rs..][..W];
        for (accr, &ar) in acc.iter_mut().zip(&at) {
            for (s, &bx) in accr.iter_mut().zip(bt) {
                *s = fmadd::<F>(ar, bx, *s);
            }
        }
    };
    // Pre-slicing lets the compiler drop the per-element bounds checks on `a`.
    if a.cs == 1 {
        let rows: [&[f32]; R] = std::array::from_fn(|r| &a.data[r * a.rs..][..tl]);
        (0..tl).for_each(|t| step(t, std::array::from_fn(|r| rows[r][t])));
    } else {
        debug_assert_eq!(a.rs, 1);
        (0..tl).for_each(|t| step(t, std::array::from_fn(|r| a.data[t * a.cs..][..R][r])));
    }
    for (r, accr) in acc.iter().enumerate() {
        for (out, &s) in c[r * ldc..][..W].iter_mut().zip(accr) {
            *out = if accumulate {
                *out + alpha * s
            } else {
                alpha * s
            };
        }
    }
}

/// Columns `x0..x0+W` of `mm`, all rows.
#[inline(always)]
fn panel<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    (a, b): (View, View),
    [m, x0, tl]: [usize; 3],
    op: (bool, f32),
) {
    let b = b.skip(0, x0);
    for r0 in (0..m - m % R).step_by(R) {
        micro::<R, W, F>(&mut c[r0 * ldc + x0..], ldc, (a.skip(r0, 0), b), tl, op);
    }
    for r in m - m % R..m {
        micro::<1, W, F>(&mut c[r * ldc + x0..], ldc, (a.skip(r, 0), b), tl, op);
    }
}

/// `c[m×w] = (acc ? c : 0) + alpha · a[m×tl] · b[tl×w]`; `c` row-major with stride `ldc`,
/// `b` needs unit column stride.
#[inline(always)]
fn mm<const R: usize, const W: usize, const F: bool>(
    c: &mut [f32],
    ldc: usize,
    ab: (View, View),
    [m, w, tl]: [usize; 3],
    op: (bool, f32),
) {
    debug_assert_eq!(ab.1.cs, 1);
    let mut x0 = 0;
    while x0 + W <= w {
        panel::<R, W, F>(c, ldc, ab, [m, x0, tl], op);
        x0 += W;
    }
    while x0 + 8 <= w {
        panel::<R, 8, F>(c, ldc, ab, [m, x0, tl], op);
        x0 += 8;
    }
    // Ragged right edge (odd d, short key tiles): plain loops, rare enough not to matter.
    for r in 0..m {
        let cr = &mut c[r * ldc + x0..][..w - x0];
        if !op.0 {
            cr.fill(0.0);
        }
        for t in 0..tl {
            let s = op.1 * ab.0.data[r * ab.0.rs + t * ab.0.cs];
            for (out, &bx) in cr.iter_mut().zip(&ab.1.data[t * ab.1.rs + x0..]) {
                *out = fmadd::<F>(s, bx, *out);
            }
        }
    }
}

/// Instruction sets the tile kernels are compiled for, chosen at run time because the crate
/// is built for baseline x86-64. Ordered, so a forced level can be capped by `detect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                return if has!("avx512f") {
                    Isa::Avx512
                } else {
                    Isa::Avx2
                };
            }
        }
        Isa::Baseline
    }
}

/// Wraps each const-generic tile function `$generic::<R, W, FMA>` in a function taking an
/// `Isa`; the block sizes fill the register file of each level (32 zmm / 16 ymm).
macro_rules! isa_dispatch {
    ($(fn $name:ident => $generic:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $generic::<4, 64, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $generic::<6, 16, true>($($arg),*)
                }
                match isa.min(Isa::detect()) {
                    // SAFETY: `detect` saw the CPU features these were compiled for.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = isa;
            $generic::<4, 8, false>($($arg),*)
        }
    )*};
}

/// One head's inputs. `kt`/`vt` hold each key tile transposed (see `transpose_tiles`).
#[derive(Clone, Copy)]
struct Head<'a> {
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
    /// Slices head `b` out of `[q, k, v, kt, vt, dout, lse, delta]`; empty buffers (the
    /// backward-only ones, in the forward) stay empty.
    fn new(b: usize, [n, d]: [usize; 2], bufs: [&'a [f32]; 8]) -> Self {
        let part = |x: &'a [f32], w: usize| {
            if x.is_empty() {
                x
            } else {
                &x[b * n * w..][..n * w]
            }
        };
        let [q, k, v, kt, vt, dout, lse, delta] = bufs;
        let (q, k, v, kt, vt, dout) = (
            part(q, d),
            part(k, d),
            part(v, d),
            part(kt, d),
            part(vt, d),
            part(dout, d),
        );
        let (lse, delta) = (part(lse, 1), part(delta, 1));
        Head {
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
    fn scale(&self) -> f32 {
        1.0 / (self.d as f32).sqrt()
    }
    fn rows(&self, x: &'a [f32], r0: usize, len: usize) -> View<'a> {
        View::rows(&x[r0 * self.d..][..len * self.d], self.d)
    }
    /// The transposed key tile starting at key `k0` (row stride = its stored width).
    fn tile_t(&self, xt: &'a [f32], k0: usize) -> View<'a> {
        let kn = BK.min(self.n - k0);
        View::rows(&xt[k0 * self.d..][..kn * self.d], kn)
    }
}

/// Per head, stores key tile `k0..k0+kn` transposed (`[d, kn]`) at offset `k0 * d`, so the
/// QKᵀ and dO·Vᵀ kernels read short contiguous rows; a plain `[d, n]` transpose would put
/// all rows of a tile `4n` bytes apart, i.e. into the same L1 set.
fn transpose_tiles(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(n * d)
        .zip(x.par_chunks(n * d))
        .for_each(|(o, x)| {
            for k0 in (0..n).step_by(BK) {
                let kn = BK.min(n - k0);
                let o = &mut o[k0 * d..][..kn * d];
                for (j, row) in x[k0 * d..][..kn * d].chunks_exact(d).enumerate() {
                    for (c, &val) in row.iter().enumerate() {
                        o[c * kn + j] = val;
                    }
                }
            }
        });
    out
}

/// Number of keys in `k0..k0+kn` visible to query `qi` (the causal mask of a tile row).
#[inline(always)]
fn visible(qi: usize, k0: usize, kn: usize) -> usize {
    kn.min((qi + 1).saturating_sub(k0))
}

/// Online-softmax forward for queries `q0..q0+qn` (`qn = lse.len()`), FlashAttention-2 style.
/// Scores are kept in log2 units (`log2(e)/sqrt(d)` folded into QKᵀ): exponentials are bare
/// `exp2_fast`.
#[inline(always)]
fn fwd_block<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    q0: usize,
    o: &mut [f32],
    lse: &mut [f32],
) {
    let (d, qn) = (h.d, lse.len());
    let qs = h.rows(h.q, q0, qn);
    let c = h.scale() * std::f32::consts::LOG2_E;
    let mut s = vec![0.0f32; qn * BK];
    let (mut m, mut l) = ([f32::NEG_INFINITY; BQ], [0.0f32; BQ]);
    // Key tiles entirely above the diagonal are never visited.
    for k0 in (0..q0 + qn).step_by(BK) {
        let kn = BK.min(q0 + qn - k0);
        let s = &mut s[..qn * kn];
        mm::<R, W, F>(s, kn, (qs, h.tile_t(h.kt, k0)), [qn, kn, d], (false, c));
        for (r, row) in s.chunks_exact_mut(kn).enumerate() {
            // Only tiles crossing the diagonal have a non-empty `dead` part.
            let (live, dead) = row.split_at_mut(visible(q0 + r, k0, kn));
            dead.fill(0.0);
            if live.is_empty() {
                continue;
            }
            let m_new = m[r].max(max_of(live));
            live.iter_mut().for_each(|x| *x = exp2_fast(*x - m_new));
            // First visit: m = -inf gives alpha = 0, which also clears the zeroed `o`.
            let alpha = exp2_fast(m[r] - m_new);
            l[r] = l[r] * alpha + sum_of(live);
            m[r] = m_new;
            if alpha != 1.0 {
                o[r * d..][..d].iter_mut().for_each(|x| *x *= alpha);
            }
        }
        let ab = (View::rows(s, kn), h.rows(h.v, k0, kn));
        mm::<R, W, F>(o, d, ab, [qn, d, kn], (true, 1.0));
    }
    for (r, orow) in o.chunks_exact_mut(d).enumerate() {
        let inv = 1.0 / l[r];
        orow.iter_mut().for_each(|x| *x *= inv);
        lse[r] = (m[r] + l[r].log2()) * std::f32::consts::LN_2;
    }
}

/// Recomputes `p = exp(S - lse)` and `ds = p ∘ (dO·Vᵀ - delta)` for one `qn × kn` tile.
#[inline(always)]
fn p_ds_tile<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    (q0, qn): (usize, usize),
    (k0, kn): (usize, usize),
    p: &mut [f32],
    ds: &mut [f32],
) {
    let (d, scale) = (h.d, h.scale());
    let ab = (h.rows(h.q, q0, qn), h.tile_t(h.kt, k0));
    mm::<R, W, F>(p, kn, ab, [qn, kn, d], (false, scale));
    let ab = (h.rows(h.dout, q0, qn), h.tile_t(h.vt, k0));
    mm::<R, W, F>(ds, kn, ab, [qn, kn, d], (false, 1.0));
    let rows = p.chunks_exact_mut(kn).zip(ds.chunks_exact_mut(kn));
    for (r, (pr, dsr)) in rows.enumerate() {
        let (live, dead) = pr.split_at_mut(visible(q0 + r, k0, kn));
        dead.fill(0.0);
        let (lse, delta) = (h.lse[q0 + r], h.delta[q0 + r]);
        // Subtract in natural units: rounding lse·log2(e) at |lse| ~ 1e3 would cost ~1e-4 in p.
        live.iter_mut()
            .for_each(|x| *x = exp2_fast((*x - lse) * std::f32::consts::LOG2_E));
        for (g, &pv) in dsr.iter_mut().zip(pr.iter()) {
            *g = pv * (*g - delta);
        }
    }
}

/// dk, dv for keys `k0..k0+kn`, looping over the query tiles at or below the diagonal.
#[inline(always)]
fn dkdv_block<const R: usize, const W: usize, const F: bool>(
    h: Head<'_>,
    k0: usize,
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (d, kn, scale) = (h.d, dk.len() / h.d, h.scale());
    let (mut p, mut ds) = (vec![0.0f32; BQ * kn], vec![0.0f32; BQ * kn]);
    // Query tiles start at k0 so that none lies entirely above the diagonal.
    for q0 in (k0..h.n).step_by(BQ) {
        let qn = BQ.min(h.n - q0);
        let (p, ds) = (&mut p[..qn * kn], &mut ds[..qn * kn]);
        p_ds_tile::<R, W, F>(h, (q0, qn), (k0, kn), p, ds);
        let pt = View {
            data: p,
            rs: 1,
            cs: kn,
        };
        mm::<R, W, F>(
            dv,
            d,
            (pt, h.rows(h.dout, q0, qn)),
            [kn, d, qn],
            (true, 1.0),
        );
        let dst = View {
            data: ds,
            rs: 1,
            cs: kn,
        };
        mm::<R, W, F>(
            dk,
            d,
            (dst, h.rows(h.q, q0, qn)),
            [kn, d, qn],
            (true, scale),
        );
    }
}

/// dq for queries `q0..q0+qn`.
#[inline(always)]
fn dq_block<const R: usize, const W: usize, const F: bool>(h: Head<'_>, q0: usize, dq: &mut [f32]) {
    let (d, qn, scale) = (h.d, dq.len() / h.d, h.scale());
    let (mut p, mut ds) = (vec![0.0f32; qn * BK], vec![0.0f32; qn * BK]);
    for k0 in (0..q0 + qn).step_by(BK) {
        let kn = BK.min(q0 + qn - k0);
        let (p, ds) = (&mut p[..qn * kn], &mut ds[..qn * kn]);
        p_ds_tile::<R, W, F>(h, (q0, qn), (k0, kn), p, ds);
        let ab = (View::rows(ds, kn), h.rows(h.k, k0, kn));
        mm::<R, W, F>(dq, d, ab, [qn, d, kn], (true, scale));
    }
}

isa_dispatch! {
    fn fwd_tile => fwd_block(h: Head<'_>, q0: usize, o: &mut [f32], lse: &mut [f32]);
    fn dkdv_tile => dkdv_block(h: Head<'_>, k0: usize, dk: &mut [f32], dv: &mut [f32]);
    fn dq_tile => dq_block(h: Head<'_>, q0: usize, dq: &mut [f32]);
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
    forward(Isa::detect(), [q, k, v], [bh, n, d])
}

fn forward(isa: Isa, [q, k, v]: [&[f32]; 3], [bh, n, d]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    check_shapes(bh, n, d, &[("q", q, d), ("k", k, d), ("v", v, d)]);
    let mut o = vec![0.0f32; bh * n * d];
    let mut lse = vec![0.0f32; bh * n];
    if bh * n == 0 {
        return (o, lse);
    }
    let kt = transpose_tiles(k, n, d);
    let per_head = o.par_chunks_mut(n * d).zip(lse.par_chunks_mut(n));
    per_head.enumerate().for_each(|(b, (ob, lb))| {
        let h = Head::new(b, [n, d], [q, k, v, &kt, &[], &[], &[], &[]]);
        let tiles = ob.par_chunks_mut(BQ * d).zip(lb.par_chunks_mut(BQ));
        tiles
            .enumerate()
            .for_each(|(t, (oc, lc))| fwd_tile(isa, h, t * BQ, oc, lc));
    });
    (o, lse)
}

/// FlashAttention-2 backward: recomputes P per tile from `lse`, with `delta = rowsum(dO ∘ O)`.
/// dk/dv are parallel over (bh, key tile) and dq over (bh, query tile), so no output is
/// shared between tasks. Returns `(dq, dk, dv)`.
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
    backward(Isa::detect(), [q, k, v, o, lse, dout], [bh, n, d])
}

type Grads = (Vec<f32>, Vec<f32>, Vec<f32>);

fn backward(isa: Isa, bufs: [&[f32]; 6], [bh, n, d]: [usize; 3]) -> Grads {
    let [q, k, v, o, lse, dout] = bufs;
    let row_bufs = [("q", q, d), ("k", k, d), ("v", v, d), ("o", o, d)];
    check_shapes(bh, n, d, &row_bufs);
    check_shapes(bh, n, d, &[("lse", lse, 1), ("dout", dout, d)]);
    let zeros = || vec![0.0f32; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    if bh * n == 0 {
        return (dq, dk, dv);
    }
    let (kt, vt) = rayon::join(|| transpose_tiles(k, n, d), || transpose_tiles(v, n, d));
    let rows = dout.par_chunks(d).zip(o.par_chunks(d));
    let delta: Vec<f32> = rows.map(|(a, b)| dot(a, b)).collect();
    let head = |b| Head::new(b, [n, d], [q, k, v, &kt, &vt, dout, lse, &delta]);
    // Running both passes at once lets each fill the other's load-imbalance tail.
    rayon::join(
        || {
            let per_head = dk.par_chunks_mut(n * d).zip(dv.par_chunks_mut(n * d));
            per_head.enumerate().for_each(|(b, (dkb, dvb))| {
                let tiles = dkb.par_chunks_mut(BK * d).zip(dvb.par_chunks_mut(BK * d));
                tiles
                    .enumerate()
                    .for_each(|(t, (dkc, dvc))| dkdv_tile(isa, head(b), t * BK, dkc, dvc));
            })
        },
        || {
            dq.par_chunks_mut(n * d).enumerate().for_each(|(b, dqb)| {
                let tiles = dqb.par_chunks_mut(BQ * d).enumerate();
                tiles.for_each(|(t, dqc)| dq_tile(isa, head(b), t * BQ, dqc));
            })
        },
    );
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Fast vs reference: `|fast - ref| <= ATOL + RTOL * |ref|`.
    const ATOL: f32 = 1e-4;
    const RTOL: f32 = 1e-3;
    /// Central finite differences (f32 inputs, f64 loss): `|fd - grad| <= FD_ATOL + FD_RTOL * |grad|`.
    const FD_EPS: f32 = 1e-2;
    const FD_ATOL: f64 = 2e-3;
    const FD_RTOL: f64 = 2e-2;

    type Fwd = fn(&[f32], &[f32], &[f32], usize, usize, usize) -> (Vec<f32>, Vec<f32>);
    type Bwd = fn(
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        usize,
        usize,
        usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>);

    /// Uniform in `(-amp, amp)`; for `amp > 1` rounded to integers, so that q·k is exact in
    /// f32 and the comparison measures the kernel rather than the conditioning of f32 logits
    /// of magnitude ~1e3 (whose rounding alone moves P by ~1e-4 relative).
    fn rand_vec(rng: &mut StdRng, len: usize, amp: f32) -> Vec<f32> {
        let x = (0..len).map(|_| rng.random_range(-amp..amp));
        x.map(|x| if amp > 1.0 { x.round() } else { x }).collect()
    }

    fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            if std::env::var("DIAG").is_ok() {
                let r = (g - w).abs() / (ATOL + RTOL * w.abs());
                if r > 0.3 {
                    eprintln!("{what}[{i}] ratio {r}");
                }
                continue;
            }
            assert!(
                (g - w).abs() <= ATOL + RTOL * w.abs(),
                "{what}[{i}]: fast {g} vs ref {w}"
            );
        }
    }

    fn compare(bh: usize, n: usize, d: usize, amp: f32, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = bh * n * d;
        let (q, k) = (rand_vec(&mut rng, len, amp), rand_vec(&mut rng, len, amp));
        let (v, dout) = (rand_vec(&mut rng, len, 1.0), rand_vec(&mut rng, len, 1.0));
        let tag = format!("bh={bh} n={n} d={d} amp={amp}");
        let (o_ref, lse_ref) = attention_forward_ref(&q, &k, &v, bh, n, d);
        let (o, lse) = attention_forward(&q, &k, &v, bh, n, d);
        assert_close(&format!("o {tag}"), &o, &o_ref);
        assert_close(&format!("lse {tag}"), &lse, &lse_ref);
        let want = attention_backward_ref(&q, &k, &v, &o_ref, &lse_ref, &dout, bh, n, d);
        let got = attention_backward(&q, &k, &v, &o_ref, &lse_ref, &dout, bh, n, d);
        assert_close(&format!("dq {tag}"), &got.0, &want.0);
        assert_close(&format!("dk {tag}"), &got.1, &want.1);
        assert_close(&format!("dv {tag}"), &got.2, &want.2);
    }

    #[test]
    fn fast_matches_reference() {
        let mut seed = 0;
        for bh in [1, 3] {
            for n in [1, 2, 7, 63, 64, 65, 130, 300] {
                for d in [1, 8, 64, 65] {
                    seed += 1;
                    compare(bh, n, d, 1.0, seed);
                }
            }
        }
    }

    #[test]
    fn fast_matches_reference_large_logits() {
        for (i, &(bh, n, d)) in [
            (1, 7, 1),
            (3, 65, 8),
            (1, 130, 64),
            (3, 300, 65),
            (1, 600, 64),
        ]
        .iter()
        .enumerate()
        {
            compare(bh, n, d, 30.0, 100 + i as u64);
        }
    }

    #[test]
    fn empty_shapes() {
        assert!(attention_forward(&[], &[], &[], 0, 5, 4).0.is_empty());
        let (dq, dk, dv) = attention_backward(&[], &[], &[], &[], &[], &[], 2, 0, 4);
        assert!(dq.is_empty() && dk.is_empty() && dv.is_empty());
    }

    fn gradient_check(fwd: Fwd, bwd: Bwd) {
        let (bh, n, d) = (2, 5, 3);
        let mut rng = StdRng::seed_from_u64(7);
        let len = bh * n * d;
        let inputs = [
            rand_vec(&mut rng, len, 1.0),
            rand_vec(&mut rng, len, 1.0),
            rand_vec(&mut rng, len, 1.0),
        ];
        let w = rand_vec(&mut rng, len, 1.0);
        let loss = |x: &[Vec<f32>; 3]| -> f64 {
            let o = fwd(&x[0], &x[1], &x[2], bh, n, d).0;
            o.iter()
                .zip(&w)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum()
        };
        let (o, lse) = fwd(&inputs[0], &inputs[1], &inputs[2], bh, n, d);
        let (dq, dk, dv) = bwd(&inputs[0], &inputs[1], &inputs[2], &o, &lse, &w, bh, n, d);
        for (which, grad) in [dq, dk, dv].iter().enumerate() {
            for i in 0..len {
                let mut x = inputs.clone();
                x[which][i] = inputs[which][i] + FD_EPS;
                let plus = loss(&x);
                x[which][i] = inputs[which][i] - FD_EPS;
                let minus = loss(&x);
                let fd = (plus - minus) / (2.0 * f64::from(FD_EPS));
                let g = f64::from(grad[i]);
                assert!(
                    (fd - g).abs() <= FD_ATOL + FD_RTOL * g.abs(),
                    "input {which} [{i}]: fd {fd} vs grad {g}"
                );
            }
        }
    }

    #[test]
    fn reference_gradients_match_finite_differences() {
        gradient_check(attention_forward_ref, attention_backward_ref);
    }

    #[test]
    fn fast_gradients_match_finite_differences() {
        gradient_check(attention_forward, attention_backward);
    }

    #[test]
    fn exp2_fast_accuracy() {
        let mut worst = 0.0f64;
        for i in 0..=2_000_000 {
            let x = -126.0 + 127.0 * i as f32 / 2e6;
            let want = f64::from(x).exp2();
            worst = worst.max((f64::from(exp2_fast(x)) - want).abs() / want);
        }
        assert!(worst < 1e-6, "max relative error {worst}");
        assert_eq!(exp2_fast(-127.5), 0.0);
        assert_eq!(exp2_fast(-1e30), 0.0);
        assert_eq!(exp2_fast(f32::NEG_INFINITY), 0.0);
    }
}
