//! Plain-loop references of the SQA attention and of the recall diagnostic, with f64
//! accumulation: the ground truth for the fast path and the WGSL kernels.

use super::super::{CpuClusters, SqaConfig, SqaShape};
use super::{check_clusters, check_inputs};
use crate::device::Result;

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Whether query i of head b reads key j (the selection rule of the module doc).
pub fn selected(
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
    b: usize,
    i: usize,
    j: usize,
) -> bool {
    let kk = cfg.routes();
    let routes = &cl.routes[(b * s.n + i) * kk..][..kk];
    j <= i && (j < cfg.sink || j + cfg.window > i || routes.contains(&cl.assign[b * s.n + j]))
}

/// The keys query i of head b reads, ascending.
fn keys(cl: &CpuClusters, cfg: &SqaConfig, s: SqaShape, b: usize, i: usize) -> Vec<usize> {
    (0..=i).filter(|&j| selected(cl, cfg, s, b, i, j)).collect()
}

/// Reference forward over exactly the selected keys. Returns `(o, lse)`.
pub fn sqa_forward_ref(
    (q, k, v): (&[f32], &[f32], &[f32]),
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let op = "sqa_forward_ref";
    check_inputs(op, cfg, s, &[("q", q), ("k", k), ("v", v)])?;
    check_clusters(op, cfg, s, cl)?;
    let SqaShape { bh, n, d } = s;
    let scale = 1.0 / (d as f64).sqrt();
    let (mut o, mut lse) = (vec![0.0_f32; bh * n * d], vec![0.0_f32; bh * n]);
    let mut acc = vec![0.0_f64; d];
    for (b, i) in (0..bh).flat_map(|b| (0..n).map(move |i| (b, i))) {
        let row = |j: usize| (b * n + j) * d..(b * n + j + 1) * d;
        let sel = keys(cl, cfg, s, b, i);
        let sc: Vec<f64> = sel
            .iter()
            .map(|&j| dot64(&q[row(i)], &k[row(j)]) * scale)
            .collect();
        let mx = sc.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        acc.fill(0.0);
        let mut sum = 0.0;
        for (&j, &sj) in sel.iter().zip(&sc) {
            let p = (sj - mx).exp();
            sum += p;
            acc.iter_mut()
                .zip(&v[row(j)])
                .for_each(|(a, &x)| *a += p * f64::from(x));
        }
        o[row(i)]
            .iter_mut()
            .zip(&acc)
            .for_each(|(y, a)| *y = (a / sum) as f32);
        lse[b * n + i] = (mx + sum.ln()) as f32;
    }
    Ok((o, lse))
}

/// Reference backward through the attention over the selected keys (clusters and routes are
/// constants), from the forward's `o` and `lse`. Returns `(dq, dk, dv)`.
pub fn sqa_backward_ref(
    (q, k, v): (&[f32], &[f32], &[f32]),
    (o, lse, dout): (&[f32], &[f32], &[f32]),
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let op = "sqa_backward_ref";
    check_inputs(
        op,
        cfg,
        s,
        &[("q", q), ("k", k), ("v", v), ("o", o), ("dout", dout)],
    )?;
    check_clusters(op, cfg, s, cl)?;
    super::check_len(op, "lse", lse, s.bh * s.n)?;
    let SqaShape { bh, n, d } = s;
    let scale = 1.0 / (d as f64).sqrt();
    let zeros = || vec![0.0_f64; bh * n * d];
    let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
    for (b, i) in (0..bh).flat_map(|b| (0..n).map(move |i| (b, i))) {
        let row = |j: usize| (b * n + j) * d..(b * n + j + 1) * d;
        let (qi, doi, bi) = (&q[row(i)], &dout[row(i)], b * n + i);
        let delta = dot64(doi, &o[row(i)]);
        for j in keys(cl, cfg, s, b, i) {
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
    Ok((narrow(dq), narrow(dk), narrow(dv)))
}

/// Attention recall per head: the mean over queries of the dense causal softmax mass
/// (f64) on the keys SQA selects. Returns `[bh]` (0 for a head with n = 0).
pub fn recall_ref(
    (q, k): (&[f32], &[f32]),
    cl: &CpuClusters,
    cfg: &SqaConfig,
    s: SqaShape,
) -> Result<Vec<f32>> {
    let op = "sqa recall_ref";
    check_inputs(op, cfg, s, &[("q", q), ("k", k)])?;
    check_clusters(op, cfg, s, cl)?;
    let SqaShape { bh, n, d } = s;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0_f32; bh];
    for (b, r) in out.iter_mut().enumerate() {
        let row = |j: usize| (b * n + j) * d..(b * n + j + 1) * d;
        let mut total = 0.0;
        for i in 0..n {
            let sc: Vec<f64> = (0..=i)
                .map(|j| dot64(&q[row(i)], &k[row(j)]) * scale)
                .collect();
            let mx = sc.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            let p: Vec<f64> = sc.iter().map(|&x| (x - mx).exp()).collect();
            let all: f64 = p.iter().sum();
            let sel: f64 = keys(cl, cfg, s, b, i).iter().map(|&j| p[j]).sum();
            total += sel / all;
        }
        *r = if n > 0 {
            (total / n as f64) as f32
        } else {
            0.0
        };
    }
    Ok(out)
}
