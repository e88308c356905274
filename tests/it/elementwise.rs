//! Element-wise kernels: wgpu vs CPU reference, and CPU backward vs finite differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::elementwise::{cpu, gpu};

/// f32 element-wise arithmetic; tanh may differ by a few ulps between drivers.
const TOL: Tol = Tol::new(1e-6, 1e-5);
/// Central differences in f32 with eps 1e-2 on smooth functions.
const FD: Tol = Tol::new(1e-3, 1e-2);
/// Sizes around the workgroup size (256), size 1, and a long row.
const SIZES: [usize; 7] = [1, 3, 255, 256, 257, 1000, 70_001];

#[test]
fn add_shapes_not_multiple_of_workgroup() {
    let Some(ctx) = common::gpu("add_shapes_not_multiple_of_workgroup") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        let a = random_vec(i as u64, n, 3.0);
        let b = random_vec(100 + i as u64, n, 3.0);
        let ga = ctx.upload(&a, &[n]).unwrap();
        let gb = ctx.upload(&b, &[n]).unwrap();
        let y = ctx
            .download(&gpu::add(ctx, &ga, &gb, -0.5).unwrap())
            .unwrap();
        common::assert_ok(compare(
            &format!("add n={n}"),
            &y,
            &cpu::add(&a, &b, -0.5),
            TOL,
        ));
    }
}

#[test]
fn bias_forward_and_backward_match_cpu() {
    let Some(ctx) = common::gpu("bias_forward_and_backward_match_cpu") else {
        return;
    };
    for &(rows, cols) in &[(1, 1), (3, 5), (17, 65), (300, 7), (2, 1000)] {
        let x = random_vec(1, rows * cols, 2.0);
        let b = random_vec(2, cols, 2.0);
        let gx = ctx.upload(&x, &[rows, cols]).unwrap();
        let gb = ctx.upload(&b, &[cols]).unwrap();
        let y = ctx
            .download(&gpu::bias_forward(ctx, &gx, &gb).unwrap())
            .unwrap();
        common::assert_ok(compare("bias_forward", &y, &cpu::bias_forward(&x, &b), TOL));
        let db = ctx
            .download(&gpu::bias_backward(ctx, &gx).unwrap())
            .unwrap();
        let want = cpu::bias_backward(&x, cols);
        common::assert_ok(compare("bias_backward", &db, &want, Tol::new(1e-5, 1e-5)));
    }
}

#[test]
fn gelu_matches_cpu_including_large_values() {
    let Some(ctx) = common::gpu("gelu_matches_cpu_including_large_values") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        let mut x = random_vec(7 + i as u64, n, 6.0);
        if n > 4 {
            x[0] = 80.0;
            x[1] = -80.0;
            x[2] = 1e4;
            x[3] = -1e4;
        }
        let dy = random_vec(50 + i as u64, n, 1.0);
        let gx = ctx.upload(&x, &[n]).unwrap();
        let gdy = ctx.upload(&dy, &[n]).unwrap();
        let y = ctx.download(&gpu::gelu_forward(ctx, &gx).unwrap()).unwrap();
        common::assert_ok(compare("gelu_forward", &y, &cpu::gelu_forward(&x), TOL));
        let dx = ctx
            .download(&gpu::gelu_backward(ctx, &gx, &gdy).unwrap())
            .unwrap();
        common::assert_ok(compare(
            "gelu_backward",
            &dx,
            &cpu::gelu_backward(&x, &dy),
            TOL,
        ));
    }
}

#[test]
fn gelu_backward_matches_finite_differences() {
    let x = random_vec(3, 64, 4.0);
    let w = random_vec(4, 64, 1.0);
    let analytic = cpu::gelu_backward(&x, &w);
    common::assert_ok(grad_check("gelu dx", &x, &analytic, 1e-2, FD, |xp| {
        dot64(&cpu::gelu_forward(xp), &w)
    }));
}

#[test]
fn bias_backward_matches_finite_differences() {
    let (rows, cols) = (5, 4);
    let x = random_vec(5, rows * cols, 1.0);
    let b = random_vec(6, cols, 1.0);
    let w = random_vec(7, rows * cols, 1.0);
    let analytic = cpu::bias_backward(&w, cols);
    common::assert_ok(grad_check("bias db", &b, &analytic, 1e-2, FD, |bp| {
        dot64(&cpu::bias_forward(&x, bp), &w)
    }));
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let a = ctx.upload(&[1.0, 2.0], &[2]).unwrap();
    let b = ctx.upload(&[1.0, 2.0, 3.0], &[3]).unwrap();
    let err = gpu::add(ctx, &a, &b, 1.0).unwrap_err().to_string();
    assert!(err.contains("add"), "{err}");
}

/// Σx² over up to 70k terms: f32 tree partials against an f64 sum (relative error ~log2(n) ulps).
const SUMSQ_TOL: Tol = Tol::new(1e-7, 1e-5);

#[test]
fn scale_and_sum_squares_match_cpu() {
    let Some(ctx) = common::gpu("scale_and_sum_squares_match_cpu") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        let mut x = random_vec(200 + i as u64, n, 4.0);
        if n > 2 {
            x[1] = 1e4;
        }
        let gx = ctx.upload(&x, &[n]).unwrap();
        let y = ctx.download(&gpu::scale(ctx, &gx, -0.37).unwrap()).unwrap();
        // One f32 multiply on both sides: bit-identical.
        assert!(y == cpu::scale(&x, -0.37), "scale n={n}");
        let s = gpu::sum_squares(ctx, &gx).unwrap();
        assert_eq!(s.shape, vec![1]);
        let s = ctx.download(&s).unwrap();
        let want = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32;
        common::assert_ok(compare("sum_squares gpu", &s, &[want], SUMSQ_TOL));
        assert_eq!(cpu::sum_squares(&x), want, "cpu sum_squares n={n}");
    }
    let empty = ctx.zeros(&[0], dsrsq::device::DType::F32).unwrap();
    let s = ctx
        .download(&gpu::sum_squares(ctx, &empty).unwrap())
        .unwrap();
    assert_eq!(s, vec![0.0]);
}

#[test]
fn sum_squares_is_deterministic() {
    let Some(ctx) = common::gpu("sum_squares_is_deterministic") else {
        return;
    };
    let x = random_vec(9, 70_001, 1.0);
    let gx = ctx.upload(&x, &[70_001]).unwrap();
    let a = ctx.download(&gpu::sum_squares(ctx, &gx).unwrap()).unwrap();
    let b = ctx.download(&gpu::sum_squares(ctx, &gx).unwrap()).unwrap();
    assert_eq!(a[0].to_bits(), b[0].to_bits());
    assert_eq!(
        cpu::sum_squares(&x).to_bits(),
        cpu::sum_squares(&x).to_bits()
    );
}
