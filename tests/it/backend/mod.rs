//! The two backends agree on a chain of every core op, forward and backward, driven only through
//! the `Backend` trait — the way the model will use them. The DSR and SQA ops are in `sparse`.

use crate::common;
mod sparse;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::device::GpuContext;
use dsrsq::kernels::adamw::AdamW;
use dsrsq::kernels::check::{compare, random_vec, Tol};
use dsrsq::kernels::matmul::MatmulDims;
use dsrsq::Tensor;

/// Chained f32 ops of depth ~10 with sums of up to a few hundred terms.
const TOL: Tol = Tol::new(2e-4, 2e-3);
/// Element-wise ops that are the same one or two f32 roundings on both backends (scale, the mse
/// gradient `scale·(x̂ − x)`): at most an ulp apart.
const ELEM_TOL: Tol = Tol::new(0.0, 2e-7);
/// Sums of squares over up to 70k terms: f32 tree partials (wgpu) against f64 (CPU), about
/// log2(n) ulps relative.
const REDUCE_TOL: Tol = Tol::new(1e-7, 1e-5);

const T: usize = 13;
const C: usize = 24;
const VOCAB: usize = 37;
const HEADS: usize = 2;

fn dims(m: usize, k: usize, n: usize, trans_b: bool) -> MatmulDims {
    MatmulDims {
        batch: 1,
        m,
        k,
        n,
        trans_a: false,
        trans_b,
        broadcast_b: true,
    }
}

pub fn tensor(seed: u64, shape: &[usize], scale: f32) -> Tensor {
    Tensor::new(random_vec(seed, shape.iter().product(), scale), shape).unwrap()
}

/// Embedding → LayerNorm → MLP (bias, GELU) → residual → tied LM head → masked cross-entropy,
/// then the whole backward and one AdamW step on the embedding; plus RoPE + attention + softmax.
fn chain<B: Backend>(b: &B) -> Vec<(&'static str, Tensor)> {
    let ids: Vec<u32> = (0..T as u32).map(|i| (i * 7 + 3) % VOCAB as u32).collect();
    let targets: Vec<i32> = (0..T as i32)
        .map(|i| {
            if i % 4 == 0 {
                -1
            } else {
                (i * 5) % VOCAB as i32
            }
        })
        .collect();
    let up = |t: &Tensor| b.upload(t).unwrap();
    let mut wte = up(&tensor(1, &[VOCAB, C], 0.5));
    let gamma = up(&tensor(2, &[C], 1.0));
    let beta = up(&tensor(3, &[C], 0.2));
    let w1 = up(&tensor(4, &[C, 4 * C], 0.3));
    let b1 = up(&tensor(5, &[4 * C], 0.1));
    let w2 = up(&tensor(6, &[4 * C, C], 0.3));

    let e = b.embedding_forward(&wte, &ids).unwrap();
    let (h, mean, rstd) = b.layernorm_forward(&e, &gamma, &beta, 1e-5).unwrap();
    let u = b.matmul(&h, &w1, &dims(T, C, 4 * C, false)).unwrap();
    let ub = b.bias_forward(&u, &b1).unwrap();
    let g = b.gelu_forward(&ub).unwrap();
    let z = b.matmul(&g, &w2, &dims(T, 4 * C, C, false)).unwrap();
    let r = b.add(&e, &z, 1.0).unwrap();
    let head = dims(T, C, VOCAB, true);
    let logits = b.matmul(&r, &wte, &head).unwrap();
    let (losses, dlogits) = b.cross_entropy(&logits, &targets).unwrap();

    let (dr, dwte_head) = b.matmul_backward(&r, &wte, &dlogits, &head).unwrap();
    let (dg, dw2) = b
        .matmul_backward(&g, &w2, &dr, &dims(T, 4 * C, C, false))
        .unwrap();
    let dub = b.gelu_backward(&ub, &dg).unwrap();
    let db1 = b.bias_backward(&dub).unwrap();
    let (dh, dw1) = b
        .matmul_backward(&h, &w1, &dub, &dims(T, C, 4 * C, false))
        .unwrap();
    let (de_ln, dgamma, dbeta) = b.layernorm_backward(&dh, &e, &gamma, &mean, &rstd).unwrap();
    let de = b.add(&dr, &de_ln, 1.0).unwrap();
    let dwte_emb = b.embedding_backward(&de, &ids, VOCAB).unwrap();
    let dwte = b.add(&dwte_head, &dwte_emb, 1.0).unwrap();
    let mut m = up(&Tensor::zeros(&[VOCAB, C]));
    let mut v = up(&Tensor::zeros(&[VOCAB, C]));
    let hp = AdamW {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    b.adamw_step(&mut wte, &dwte, &mut m, &mut v, &hp, 1)
        .unwrap();

    let n = 9;
    let positions: Vec<u32> = (0..n as u32).map(|i| i * 3 + 1).collect();
    let q = b
        .rope_forward(&up(&tensor(7, &[1, HEADS, n, 8], 1.0)), &positions, 10000.0)
        .unwrap();
    let k = b
        .rope_forward(&up(&tensor(8, &[1, HEADS, n, 8], 1.0)), &positions, 10000.0)
        .unwrap();
    let as3 = |t: &B::T| b.reshape(t, &[HEADS, n, 8]).unwrap();
    let (q3, k3, v3) = (as3(&q), as3(&k), up(&tensor(9, &[HEADS, n, 8], 1.0)));
    let (o, lse) = b.attention_forward(&q3, &k3, &v3).unwrap();
    let dout = up(&tensor(10, &[HEADS, n, 8], 1.0));
    let (dq, dk, dv) = b
        .attention_backward(&q3, &k3, &v3, &o, &lse, &dout)
        .unwrap();
    let dq4 = b.reshape(&dq, &[1, HEADS, n, 8]).unwrap();
    let dq4 = b.rope_backward(&dq4, &positions, 10000.0).unwrap();
    let p = b.softmax_forward(&o).unwrap();
    let dp = b.softmax_backward(&p, &dout).unwrap();

    let named: Vec<(&'static str, &B::T)> = vec![
        ("logits", &logits),
        ("losses", &losses),
        ("dlogits", &dlogits),
        ("dw2", &dw2),
        ("db1", &db1),
        ("dw1", &dw1),
        ("dgamma", &dgamma),
        ("dbeta", &dbeta),
        ("dwte", &dwte),
        ("wte after adamw", &wte),
        ("attention o", &o),
        ("lse", &lse),
        ("dq (rope back)", &dq4),
        ("dk", &dk),
        ("dv", &dv),
        ("softmax", &p),
        ("softmax dx", &dp),
    ];
    named
        .into_iter()
        .map(|(name, t)| (name, b.download(t).unwrap()))
        .collect()
}

/// A wgpu backend with a context of its own (the backend owns an Arc, the shared test context is
/// 'static), or `None` after the loud SKIP when there is no adapter.
pub fn wgpu_backend(test: &str) -> Option<WgpuBackend> {
    common::gpu(test)?;
    Some(WgpuBackend::new(Arc::new(
        GpuContext::from_env().expect("adapter found above"),
    )))
}

/// Downloads through the trait.
pub fn down<B: Backend>(b: &B, t: &B::T) -> Tensor {
    b.download(t).unwrap()
}

#[test]
fn wgpu_backend_matches_cpu_backend_on_every_op() {
    let Some(ctx) = common::gpu("wgpu_backend_matches_cpu_backend_on_every_op") else {
        return;
    };
    // A fresh context of our own: the backend owns an Arc, the shared test context is 'static.
    let gpu = WgpuBackend::new(Arc::new(
        dsrsq::device::GpuContext::from_env().expect("adapter found above"),
    ));
    assert!(gpu.name().contains(&ctx.adapter.name));
    let want = chain(&CpuBackend);
    let got = chain(&gpu);
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert_eq!(w.shape, g.shape, "{name}");
        common::assert_ok(compare(name, &g.data, &w.data, TOL));
    }
}

#[test]
fn backends_report_shape_errors() {
    let cpu = CpuBackend;
    let a = tensor(1, &[3, 4], 1.0);
    let b = tensor(2, &[4, 3], 1.0);
    assert!(cpu.add(&a, &b, 1.0).is_err());
    assert!(cpu.attention_forward(&a, &a, &a).is_err());
    assert!(cpu.reshape(&a, &[5, 2]).is_err());
    let hp = AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let (mut p, mut m, mut v) = (a.clone(), a.clone(), a.clone());
    assert!(cpu.adamw_step(&mut p, &a, &mut m, &mut v, &hp, 0).is_err());
    assert_eq!(cpu.reshape(&a, &[2, 6]).unwrap().shape, vec![2, 6]);
    if let Some(ctx) = common::gpu("backends_report_shape_errors") {
        let _ = ctx;
        let gpu = WgpuBackend::from_env().expect("adapter");
        let (ga, gb) = (gpu.upload(&a).unwrap(), gpu.upload(&b).unwrap());
        assert!(gpu.add(&ga, &gb, 1.0).is_err());
        assert!(gpu.attention_forward(&ga, &ga, &ga).is_err());
        assert!(gpu.reshape(&ga, &[5, 2]).is_err());
    }
}

/// `(b, n, h, d)` head layouts: size 1, and sizes that are not multiples of any workgroup.
const HEAD_SHAPES: [(usize, usize, usize, usize); 3] =
    [(1, 1, 1, 1), (2, 13, 3, 7), (3, 100, 4, 33)];
/// Element counts for the reductions: size 1, past a workgroup, a long row.
const REDUCE_SIZES: [usize; 3] = [1, 257, 70_001];

#[test]
fn heads_scale_and_reductions_agree() {
    let Some(gpu) = wgpu_backend("heads_scale_and_reductions_agree") else {
        return;
    };
    let cpu = CpuBackend;
    for (i, &(b, n, h, d)) in HEAD_SHAPES.iter().enumerate() {
        let x = tensor(30 + i as u64, &[b * n, h * d], 2.0);
        let gx = gpu.upload(&x).unwrap();
        let (cy, gy) = (
            cpu.split_heads(&x, b, n, h).unwrap(),
            gpu.split_heads(&gx, b, n, h).unwrap(),
        );
        assert_eq!(cy.shape, vec![b * h, n, d]);
        // A permutation: bit-identical on both backends, and merge inverts it.
        assert!(down(&gpu, &gy) == cy, "split {b}x{n}x{h}x{d}");
        let (cm, gm) = (
            cpu.merge_heads(&cy, b, n, h).unwrap(),
            gpu.merge_heads(&gy, b, n, h).unwrap(),
        );
        assert!(cm == x, "cpu merge(split(x))");
        assert!(down(&gpu, &gm) == x, "wgpu merge(split(x))");
    }
    for (i, &len) in REDUCE_SIZES.iter().enumerate() {
        let x = tensor(40 + i as u64, &[len], 3.0);
        let xhat = tensor(50 + i as u64, &[len], 3.0);
        let (gx, gxh) = (gpu.upload(&x).unwrap(), gpu.upload(&xhat).unwrap());
        let (cl, cg) = cpu.mse(&x, &xhat).unwrap();
        let (gl, gg) = gpu.mse(&gx, &gxh).unwrap();
        let (gl, gg) = (down(&gpu, &gl), down(&gpu, &gg));
        assert_eq!((cl.shape.clone(), gl.shape.clone()), (vec![1], vec![1]));
        common::assert_ok(compare("mse loss", &gl.data, &cl.data, REDUCE_TOL));
        common::assert_ok(compare("mse grad", &gg.data, &cg.data, ELEM_TOL));
        let want = x.data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() as f32;
        let cs = cpu.sum_squares(&x).unwrap();
        let gs = down(&gpu, &gpu.sum_squares(&gx).unwrap());
        assert_eq!(gs.shape, vec![1]);
        common::assert_ok(compare("cpu sum_squares", &cs.data, &[want], REDUCE_TOL));
        common::assert_ok(compare("wgpu sum_squares", &gs.data, &[want], REDUCE_TOL));
        let c = cpu.scale(&x, 0.7).unwrap();
        let g = down(&gpu, &gpu.scale(&gx, 0.7).unwrap());
        assert_eq!(g.shape, x.shape);
        common::assert_ok(compare("scale", &g.data, &c.data, ELEM_TOL));
    }
}

/// The model gathers the DSR-kept rows of an activation `[rows, w]` with `embedding_forward`
/// and scatter-adds their gradient back with `embedding_backward`.
fn gather_scatter<B: Backend>(b: &B, x: &Tensor, ids: &[u32], dy: &Tensor) -> (Tensor, Tensor) {
    let gathered = b.embedding_forward(&b.upload(x).unwrap(), ids).unwrap();
    let rows = x.shape[0];
    let dx = b
        .embedding_backward(&b.upload(dy).unwrap(), ids, rows)
        .unwrap();
    (down(b, &gathered), down(b, &dx))
}

#[test]
fn embedding_ops_gather_and_scatter_activation_rows() {
    let (rows, w) = (11, 20);
    let ids: [u32; 8] = [3, 0, 10, 3, 7, 7, 7, 1];
    let x = tensor(60, &[rows, w], 2.0);
    let dy = tensor(61, &[ids.len(), w], 1.0);
    let mut want_g = Vec::new();
    let mut want_dx = vec![0.0f32; rows * w];
    for (p, &r) in ids.iter().enumerate() {
        let r = r as usize;
        want_g.extend_from_slice(&x.data[r * w..][..w]);
        for c in 0..w {
            want_dx[r * w + c] += dy.data[p * w + c];
        }
    }
    let mut results = vec![("cpu", gather_scatter(&CpuBackend, &x, &ids, &dy))];
    if let Some(gpu) = wgpu_backend("embedding_ops_gather_and_scatter_activation_rows") {
        results.push(("wgpu", gather_scatter(&gpu, &x, &ids, &dy)));
    }
    for (name, (g, dx)) in results {
        assert_eq!(g.shape, vec![ids.len(), w], "{name}");
        assert!(g.data == want_g, "{name}: the gather copies rows");
        assert_eq!(dx.shape, vec![rows, w], "{name}");
        // Each row's sum runs over its positions in ascending order, as the loop above.
        common::assert_ok(compare(name, &dx.data, &want_dx, ELEM_TOL));
    }
}

/// Every new op refuses inconsistent shapes with an error (a panic fails the test).
fn new_ops_reject_bad_shapes<B: Backend>(b: &B) {
    let up = |t: &Tensor| b.upload(t).unwrap();
    let x = up(&tensor(70, &[10], 1.0));
    assert!(b.split_heads(&x, 1, 3, 1).is_err());
    assert!(b.split_heads(&x, 0, 5, 2).is_err());
    assert!(b.merge_heads(&x, 2, 5, 0).is_err());
    let y = up(&tensor(71, &[2, 5], 1.0));
    assert!(b.mse(&x, &y).is_err());
    assert!(b.mse(&x, &up(&tensor(72, &[11], 1.0))).is_err());
    sparse::sparse_ops_reject_bad_shapes(b);
}

#[test]
fn new_ops_report_shape_errors() {
    new_ops_reject_bad_shapes(&CpuBackend);
    if let Some(gpu) = wgpu_backend("new_ops_report_shape_errors") {
        new_ops_reject_bad_shapes(&gpu);
    }
}
