//! Plain-loop references with f64 accumulation: the numerical ground truth for the fast
//! CPU path and the WGSL kernels.

use super::check;

pub(super) fn dot64(a: &[f32], b: &[f32]) -> f64 {
    let products = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y));
    products.sum()
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
    check(bh * n, d, &[q, k, v]);
    let scale = 1.0 / (d as f64).sqrt();
    let (mut o, mut lse) = (vec![0.0_f32; bh * n * d], vec![0.0_f32; bh * n]);
    let (mut s, mut acc) = (vec![0.0_f64; n], vec![0.0_f64; d]);
    for (b, i) in (0..bh).flat_map(|b| (0..n).map(move |i| (b, i))) {
        let row = |j: usize| (b * n + j) * d..(b * n + j + 1) * d;
        for (j, sj) in s[..=i].iter_mut().enumerate() {
            *sj = dot64(&q[row(i)], &k[row(j)]) * scale;
        }
        let mx = s[..=i].iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        acc.fill(0.0);
        let mut sum = 0.0;
        for (j, &sj) in s[..=i].iter().enumerate() {
            let p = (sj - mx).exp();
            sum += p;
            for (a, &x) in acc.iter_mut().zip(&v[row(j)]) {
                *a += p * f64::from(x);
            }
        }
        for (y, a) in o[row(i)].iter_mut().zip(&acc) {
            *y = (a / sum) as f32;
        }
        lse[b * n + i] = (mx + sum.ln()) as f32;
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
    check(bh * n, d, &[q, k, v, o, dout]);
    check(bh * n, 1, &[lse]);
    let scale = 1.0 / (d as f64).sqrt();
    // f64 accumulators: a dk/dv row sums contributions from up to n queries.
    let zeros = || vec![0.0_f64; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    for (b, i) in (0..bh).flat_map(|b| (0..n).map(move |i| (b, i))) {
        let (bi, row) = (b * n + i, |j: usize| (b * n + j) * d..(b * n + j + 1) * d);
        let (qi, doi) = (&q[row(i)], &dout[row(i)]);
        let delta = dot64(doi, &o[row(i)]);
        for j in 0..=i {
            let (kj, vj, ri, rj) = (&k[row(j)], &v[row(j)], bi * d, (b * n + j) * d);
            let p = (dot64(qi, kj) * scale - f64::from(lse[bi])).exp();
            let ds = p * (dot64(doi, vj) - delta) * scale;
            for c in 0..d {
                dq[ri + c] += ds * f64::from(kj[c]);
                dk[rj + c] += ds * f64::from(qi[c]);
                dv[rj + c] += p * f64::from(doi[c]);
            }
        }
    }
    let narrow = |x: Vec<f64>| -> Vec<f32> { x.into_iter().map(|g| g as f32).collect() };
    (narrow(dq), narrow(dk), narrow(dv))
}
