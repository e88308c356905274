//! Matmul: wgpu and the fast CPU path vs the f64 triple-loop reference over every transpose /
//! broadcast combination, and the backward vs finite differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::matmul::{cpu, gpu, MatmulDims};

/// (batch, m, k, n): size 1, primes off every tile edge, exact tiles, a tall-thin case.
const SHAPES: [(usize, usize, usize, usize); 5] = [
    (1, 1, 1, 1),
    (2, 3, 5, 7),
    (1, 17, 33, 65),
    (3, 64, 64, 64),
    (1, 130, 70, 9),
];
/// Central differences in f32 with eps 1e-2; the loss is linear in each input, so only
/// rounding separates them.
const FD: Tol = Tol::new(1e-3, 1e-2);

/// An f32 dot product of length k carries rounding error bounded by about k·u·Σ|aᵢbᵢ| (u = 6e-8),
/// which with inputs in [-1, 1] grows linearly in k while |C| itself only grows like √k — a
/// fixed tolerance would be either too loose at small k or too tight at large k. 1e-4 at k ≤ 64,
/// scaled linearly above that, leaves ~25× headroom over the observed error (≈1.5e-5 at k = 256, |C| ≈ 25).
fn tol_for(k: usize) -> Tol {
    let s = (k as f32 / 64.0).max(1.0);
    Tol::new(1e-4 * s, 1e-4)
}

fn all_dims(batch: usize, m: usize, k: usize, n: usize) -> Vec<MatmulDims> {
    let mut v = Vec::new();
    for bits in 0..8u32 {
        v.push(MatmulDims {
            batch,
            m,
            k,
            n,
            trans_a: bits & 1 != 0,
            trans_b: bits & 2 != 0,
            broadcast_b: bits & 4 != 0,
        });
    }
    v
}

fn inputs(d: &MatmulDims, seed: u64) -> (Vec<f32>, Vec<f32>) {
    (
        random_vec(seed, d.a_len(), 1.0),
        random_vec(seed + 1, d.b_len(), 1.0),
    )
}

fn a_shape(d: &MatmulDims) -> [usize; 3] {
    if d.trans_a {
        [d.batch, d.k, d.m]
    } else {
        [d.batch, d.m, d.k]
    }
}

fn b_shape(d: &MatmulDims) -> Vec<usize> {
    let mat = if d.trans_b { [d.n, d.k] } else { [d.k, d.n] };
    if d.broadcast_b {
        mat.to_vec()
    } else {
        vec![d.batch, mat[0], mat[1]]
    }
}

#[test]
fn fast_cpu_matches_reference() {
    let mut shapes = SHAPES.to_vec();
    shapes.push((1, 256, 256, 256));
    // Many small products: the rayon-over-batches path.
    shapes.push((40, 9, 12, 10));
    for (i, &(batch, m, k, n)) in shapes.iter().enumerate() {
        for d in all_dims(batch, m, k, n) {
            let (a, b) = inputs(&d, 10 * i as u64);
            common::assert_ok(compare(
                &format!("cpu matmul {d:?}"),
                &cpu::matmul(&a, &b, &d),
                &cpu::matmul_ref(&a, &b, &d),
                tol_for(k),
            ));
        }
    }
}

#[test]
fn gpu_matches_reference_every_layout() {
    let Some(ctx) = common::gpu("gpu_matches_reference_every_layout") else {
        return;
    };
    let mut shapes = SHAPES.to_vec();
    shapes.push((1, 256, 256, 256));
    for (i, &(batch, m, k, n)) in shapes.iter().enumerate() {
        for d in all_dims(batch, m, k, n) {
            let (a, b) = inputs(&d, 100 + 10 * i as u64);
            let ga = ctx.upload(&a, &a_shape(&d)).unwrap();
            let gb = ctx.upload(&b, &b_shape(&d)).unwrap();
            let gc = gpu::matmul(ctx, &ga, &gb, &d).unwrap();
            assert_eq!(gc.shape, d.c_shape());
            assert_eq!(gc.numel(), batch * m * n);
            common::assert_ok(compare(
                &format!("gpu matmul {d:?}"),
                &ctx.download(&gc).unwrap(),
                &cpu::matmul_ref(&a, &b, &d),
                tol_for(k),
            ));
        }
    }
}

#[test]
fn gpu_backward_matches_cpu_backward() {
    let Some(ctx) = common::gpu("gpu_backward_matches_cpu_backward") else {
        return;
    };
    for (i, &(batch, m, k, n)) in [(2, 3, 5, 7), (3, 17, 33, 65), (2, 70, 9, 66)]
        .iter()
        .enumerate()
    {
        for d in all_dims(batch, m, k, n) {
            let (a, b) = inputs(&d, 200 + 10 * i as u64);
            let dc = random_vec(300 + i as u64, d.c_len(), 1.0);
            let (da, db) = cpu::matmul_backward(&a, &b, &dc, &d);
            let ga = ctx.upload(&a, &a_shape(&d)).unwrap();
            let gb = ctx.upload(&b, &b_shape(&d)).unwrap();
            let gdc = ctx.upload(&dc, &[batch, m, n]).unwrap();
            let (gda, gdb) = gpu::matmul_backward(ctx, &ga, &gb, &gdc, &d).unwrap();
            assert_eq!(gda.shape, ga.shape);
            assert_eq!(gdb.shape, gb.shape);
            // dA reduces over n; dB over m, or batch·m when broadcast.
            let kb = if d.broadcast_b { batch * m } else { m };
            common::assert_ok(compare(
                &format!("gpu dA {d:?}"),
                &ctx.download(&gda).unwrap(),
                &da,
                tol_for(n),
            ));
            common::assert_ok(compare(
                &format!("gpu dB {d:?}"),
                &ctx.download(&gdb).unwrap(),
                &db,
                tol_for(kb),
            ));
        }
    }
}

#[test]
fn cpu_backward_matches_finite_differences() {
    for d in all_dims(2, 3, 4, 5) {
        let (a, b) = inputs(&d, 400);
        let w = random_vec(401, d.c_len(), 1.0);
        let (da, db) = cpu::matmul_backward(&a, &b, &w, &d);
        common::assert_ok(grad_check(&format!("dA {d:?}"), &a, &da, 1e-2, FD, |ap| {
            dot64(&cpu::matmul_ref(ap, &b, &d), &w)
        }));
        common::assert_ok(grad_check(&format!("dB {d:?}"), &b, &db, 1e-2, FD, |bp| {
            dot64(&cpu::matmul_ref(&a, bp, &d), &w)
        }));
    }
}

#[test]
fn zero_sized_dims_give_empty_or_zero_outputs() {
    let d = MatmulDims {
        batch: 2,
        m: 3,
        k: 0,
        n: 4,
        trans_a: false,
        trans_b: true,
        broadcast_b: true,
    };
    assert_eq!(cpu::matmul(&[], &[], &d), vec![0.0; 24]);
    let Some(ctx) = common::gpu("zero_sized_dims_give_empty_or_zero_outputs") else {
        return;
    };
    let ga = ctx.upload(&[], &[2, 3, 0]).unwrap();
    let gb = ctx.upload(&[], &[4, 0]).unwrap();
    let c = gpu::matmul(ctx, &ga, &gb, &d).unwrap();
    assert_eq!(ctx.download(&c).unwrap(), vec![0.0; 24]);
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let d = MatmulDims {
        batch: 2,
        m: 3,
        k: 4,
        n: 5,
        trans_a: false,
        trans_b: false,
        broadcast_b: true,
    };
    let err = d.validate(24, 40).unwrap_err().to_string();
    assert!(
        err.contains("matmul") && err.contains("broadcast_b"),
        "{err}"
    );
    assert!(d.validate(24, 20).is_ok());
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let a = ctx.upload(&[0.0; 24], &[2, 3, 4]).unwrap();
    let b = ctx.upload(&[0.0; 21], &[3, 7]).unwrap();
    let err = gpu::matmul(ctx, &a, &b, &d).unwrap_err().to_string();
    assert!(err.contains("matmul"), "{err}");
    let b = ctx.upload(&[0.0; 20], &[4, 5]).unwrap();
    let dc = ctx.upload(&[0.0; 29], &[29]).unwrap();
    let err = gpu::matmul_backward(ctx, &a, &b, &dc, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("matmul_backward"), "{err}");
}
