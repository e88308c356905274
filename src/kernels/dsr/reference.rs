//! The unfactored DSR scorer in f64 plain loops, exactly as written in the design
//! (`r = e_ctx·W_r` materialized), for tests: the fast CPU path and the GPU compute the same
//! function in a factored order (see the module doc), and these check that they do.

use super::DsrDims;

fn project(e: &[f32], w: &[f32], row: usize, dm: usize, dr: usize) -> Vec<f64> {
    (0..dr)
        .map(|k| {
            (0..dm)
                .map(|c| e[row * dm + c] as f64 * w[c * dr + k] as f64)
                .sum()
        })
        .collect()
}

/// `(r [n_ctx][dr], qv [dr])`.
fn projections(
    e: &[f32],
    w_r: &[f32],
    w_q: &[f32],
    d: &DsrDims,
    dr: usize,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let r = (0..d.n_ctx).map(|i| project(e, w_r, i, d.dm, dr)).collect();
    let mut qv = vec![0.0f64; dr];
    for j in d.q0..d.q1 {
        let pj = project(e, w_q, j, d.dm, dr);
        qv.iter_mut().zip(&pj).for_each(|(a, &b)| *a += b);
    }
    qv.iter_mut().for_each(|a| *a /= d.nq() as f64);
    (r, qv)
}

/// `s_i = <qv, r_i>/sqrt(dr)` for every context token.
pub fn scores_ref(e: &[f32], w_r: &[f32], w_q: &[f32], d: &DsrDims, dr: usize) -> Vec<f32> {
    let (r, qv) = projections(e, w_r, w_q, d, dr);
    let sc = 1.0 / (dr as f64).sqrt();
    r.iter()
        .map(|ri| (ri.iter().zip(&qv).map(|(a, b)| a * b).sum::<f64>() * sc) as f32)
        .collect()
}

/// `(dW_r, dW_q, de)` from `ds` by the design's formulas: `dr_i = ds_i·qv/√dr`,
/// `dqv = Σ ds_i r_i/√dr`, `dW_r = e_ctxᵀ·dr`, `dW_q = Σ_{j∈Q} e_jᵀ·dqv/|Q|`,
/// `de_i = dr_i·W_rᵀ` (context) and `dqv·W_qᵀ/|Q|` (question).
pub fn backward_ref(
    e: &[f32],
    w_r: &[f32],
    w_q: &[f32],
    ds: &[f32],
    d: &DsrDims,
    dr: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dm = d.dm;
    let (r, qv) = projections(e, w_r, w_q, d, dr);
    let sc = 1.0 / (dr as f64).sqrt();
    let mut dqv = vec![0.0f64; dr];
    let mut dw_r = vec![0.0f64; dm * dr];
    let mut de = vec![0.0f64; d.n * dm];
    for i in 0..d.n_ctx {
        let g = ds[i] as f64 * sc;
        for k in 0..dr {
            dqv[k] += g * r[i][k];
            let dri = g * qv[k];
            for c in 0..dm {
                dw_r[c * dr + k] += e[i * dm + c] as f64 * dri;
                de[i * dm + c] += dri * w_r[c * dr + k] as f64;
            }
        }
    }
    let inv_nq = 1.0 / d.nq() as f64;
    let mut dw_q = vec![0.0f64; dm * dr];
    for j in d.q0..d.q1 {
        for c in 0..dm {
            for k in 0..dr {
                dw_q[c * dr + k] += e[j * dm + c] as f64 * dqv[k] * inv_nq;
                de[j * dm + c] += dqv[k] * w_q[c * dr + k] as f64 * inv_nq;
            }
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (f(dw_r), f(dw_q), f(de))
}
