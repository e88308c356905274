//! A bounds-checked wrapper over `gemm` for the strided tile products of the fast path, and the
//! vectorized element-wise row kernels (exponentials), compiled per instruction set.

use crate::kernels::fastmath::{exp2_fast, fmadd};

/// Strided read-only matrix: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with row stride `ld`.
    pub(super) fn rows(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: ld,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with row stride `ld`.
    pub(super) fn cols(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: ld,
        }
    }
    /// Element `(r, c)` at `r·rs + c·cs`.
    pub(super) fn strided(data: &'a [f32], rs: usize, cs: usize) -> Self {
        Self { data, rs, cs }
    }
    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// `dst[m×n] = (acc ? dst : 0) + alpha · a[m×k] · b[k×n]`, `dst` row-major with row stride `ld`.
/// Single-threaded: the callers are already rayon tasks.
///
/// # Panics
/// When an operand is too short for its shape (an internal invariant of the callers).
pub(super) fn mm(
    dst: &mut [f32],
    ld: usize,
    [m, n, k]: [usize; 3],
    (a, b): (Mat<'_>, Mat<'_>),
    (accumulate, alpha): (bool, f32),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n <= ld && (m - 1) * ld + n <= dst.len(),
        "sqa mm: dst too short"
    );
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(ld).take(m).for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    assert!(a.fits(m, k) && b.fits(k, n), "sqa mm: operand too short");
    // SAFETY: the asserts above bound every element gemm touches: a's (r, t) at r·rs + t·cs
    // for r < m, t < k; b's likewise; dst's (r, c) at r·ld + c for r < m, c < n ≤ ld.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `e^x` as `2^(x·log2 e)`: `-inf` (and anything below about −88) gives exactly 0.
#[inline(always)]
fn exp_fast<const F: bool>(x: f32) -> f32 {
    exp2_fast::<F>(x * std::f32::consts::LOG2_E)
}

/// `row[..live] = exp(row·scale − shift)`, `row[live..] = 0`; returns the sum of the row.
/// Fixed 16-wide blocks (one AVX-512 register) so the loop vectorizes.
#[inline(always)]
fn exp_row<const F: bool>(row: &mut [f32], live: usize, scale: f32, shift: f32) -> f32 {
    let (l, dead) = row.split_at_mut(live);
    dead.fill(0.0);
    let mut acc = [0.0_f32; 16];
    let mut blocks = l.chunks_exact_mut(16);
    for ch in &mut blocks {
        for (x, a) in ch.iter_mut().zip(acc.iter_mut()) {
            *x = exp_fast::<F>(fmadd::<F>(*x, scale, -shift));
            *a += *x;
        }
    }
    let mut tail = 0.0;
    for x in blocks.into_remainder() {
        *x = exp_fast::<F>(fmadd::<F>(*x, scale, -shift));
        tail += *x;
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest of `row[..live]·scale` (`-inf` when empty).
#[inline(always)]
fn max_row(row: &[f32], live: usize, scale: f32) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let mut blocks = row[..live].chunks_exact(16);
    for ch in &mut blocks {
        for (&x, a) in ch.iter().zip(acc.iter_mut()) {
            *a = if x > *a { x } else { *a };
        }
    }
    let tail = blocks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let m = acc.iter().fold(tail, |m, &x| m.max(x));
    if live == 0 {
        m
    } else {
        m * scale
    }
}

/// `ds = p ∘ (ds − delta)` over a row.
#[inline(always)]
fn ds_row(p: &[f32], ds: &mut [f32], delta: f32) {
    ds.iter_mut()
        .zip(p)
        .for_each(|(g, &pv)| *g = pv * (*g - delta));
}

/// Defines `$name(args)` calling `$generic::<FMA>(args)` built for AVX-512, AVX2 or baseline
/// x86-64, whichever the CPU runs (the crate itself targets baseline x86-64).
macro_rules! isa_dispatch {
    ($(fn $name:ident => $generic:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        pub(super) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    $generic::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    $generic::<true>($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("avx2") && has!("fma") {
                    // SAFETY: the CPU has the features `avx512` was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: the CPU has the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic::<false>($($arg),*)
        }
    )*};
}

/// Online-softmax step of a tile: for each row r of `s` (`rows × w`, raw dot products), with
/// `live[r]` leading entries visible, updates the running max `m[r]` and sum `l[r]`, turns `s`
/// into probabilities relative to the new max, and returns in `alpha[r]` the factor by which
/// the row's accumulated output must be rescaled.
#[inline(always)]
fn online_rows<const F: bool>(
    s: &mut [f32],
    w: usize,
    live: &[usize],
    scale: f32,
    (m, l, alpha): (&mut [f32], &mut [f32], &mut [f32]),
) {
    for (r, row) in s.chunks_exact_mut(w).enumerate() {
        let m_new = m[r].max(max_row(row, live[r], scale));
        if m_new == f32::NEG_INFINITY {
            row.fill(0.0);
            alpha[r] = 1.0;
            continue;
        }
        alpha[r] = exp_fast::<F>(m[r] - m_new);
        l[r] = l[r] * alpha[r] + exp_row::<F>(row, live[r], scale, m_new);
        m[r] = m_new;
    }
}

/// Backward tile: `p = exp(s·scale − lse)` over each row's live prefix (0 elsewhere) and
/// `ds = p ∘ (dp − delta)`.
#[inline(always)]
fn p_ds_rows<const F: bool>(
    (s, dp): (&mut [f32], &mut [f32]),
    w: usize,
    live: &[usize],
    scale: f32,
    (lse, delta): (&[f32], &[f32]),
) {
    let rows = s.chunks_exact_mut(w).zip(dp.chunks_exact_mut(w));
    for (r, (p, ds)) in rows.enumerate() {
        exp_row::<F>(p, live[r], scale, lse[r]);
        ds_row(p, ds, delta[r]);
    }
}

isa_dispatch! {
    fn online_softmax => online_rows(
        s: &mut [f32], w: usize, live: &[usize], scale: f32,
        st: (&mut [f32], &mut [f32], &mut [f32])
    ) -> ();
    fn p_ds => p_ds_rows(
        sp: (&mut [f32], &mut [f32]), w: usize, live: &[usize], scale: f32,
        ld: (&[f32], &[f32])
    ) -> ();
}
