//! The two backends agree on a chain of every core op, forward and backward, driven only through
//! the `Backend` trait — the way the model will use them.

mod common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::kernels::adamw::AdamW;
use dsrsq::kernels::check::{compare, random_vec, Tol};
use dsrsq::kernels::matmul::MatmulDims;
use dsrsq::Tensor;

/// Chained f32 ops of depth ~10 with sums of up to a few hundred terms.
const TOL: Tol = Tol::new(2e-4, 2e-3);

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

fn tensor(seed: u64, shape: &[usize], scale: f32) -> Tensor {
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
