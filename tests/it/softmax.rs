//! Row softmax: wgpu vs the CPU reference over awkward widths and extreme logits, and the CPU
//! backward vs finite differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::softmax::{cpu, gpu};

/// exp differs by a few ulps between drivers and the GPU merges partial sums in another order
/// (online max/sum tree vs sequential): relative error of a few 1e-7 per element, more over the
/// 70k-wide sum, so 1e-5 relative; outputs are ≤ 1, so 1e-7 absolute covers values near 0.
const TOL: Tol = Tol::new(1e-7, 1e-5);
/// The backward subtracts a row dot product from dy: its absolute error scales with |dy| ≈ 1,
/// times the summation error over the row.
const TOL_BWD: Tol = Tol::new(1e-6, 1e-5);
/// Central differences in f32 with eps 1e-2 on a smooth function.
const FD: Tol = Tol::new(1e-3, 1e-2);
/// Widths around the workgroup size (256), width 1 and a long row.
const COLS: [usize; 6] = [1, 3, 255, 256, 257, 70_001];
const ROWS: [usize; 3] = [1, 5, 70];

fn run(ctx: &dsrsq::device::GpuContext, x: &[f32], dy: &[f32], rows: usize, cols: usize) {
    let gx = ctx.upload(x, &[rows, cols]).unwrap();
    let gy = gpu::softmax_forward(ctx, &gx).unwrap();
    let y = ctx.download(&gy).unwrap();
    let want = cpu::softmax_forward(x, rows, cols);
    assert!(y.iter().all(|v| v.is_finite()), "non-finite softmax");
    common::assert_ok(compare(
        &format!("softmax forward {rows}x{cols}"),
        &y,
        &want,
        TOL,
    ));
    // The backward is fed the same y on both sides, so only its own arithmetic is compared.
    let gdy = ctx.upload(dy, &[rows, cols]).unwrap();
    let gwant = ctx.upload(&want, &[rows, cols]).unwrap();
    let dx = ctx
        .download(&gpu::softmax_backward(ctx, &gwant, &gdy).unwrap())
        .unwrap();
    common::assert_ok(compare(
        &format!("softmax backward {rows}x{cols}"),
        &dx,
        &cpu::softmax_backward(&want, dy, rows, cols),
        TOL_BWD,
    ));
}

#[test]
fn gpu_matches_cpu_on_awkward_shapes() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_on_awkward_shapes") else {
        return;
    };
    for &cols in &COLS {
        for &rows in &ROWS {
            if rows * cols > 400_000 {
                continue; // 70 rows of 70k: slow on a software adapter and adds no coverage.
            }
            let seed = (rows * 1000 + cols) as u64;
            let x = random_vec(seed, rows * cols, 5.0);
            let dy = random_vec(seed + 1, rows * cols, 1.0);
            run(ctx, &x, &dy, rows, cols);
        }
    }
}

#[test]
fn large_logits_and_constant_rows_stay_finite_and_exact() {
    let cols = 300;
    let rows = 4;
    let mut x = random_vec(9, rows * cols, 1e4);
    // Row 1: all equal, so every output is exactly 1/cols.
    x[cols..2 * cols].fill(1e4);
    // Row 2: one dominant logit among huge negatives, so the output is one-hot.
    x[2 * cols..3 * cols].fill(-1e4);
    x[2 * cols + 17] = 1e4;
    let y = cpu::softmax_forward(&x, rows, cols);
    assert!(y.iter().all(|v| v.is_finite()));
    assert!(y[cols..2 * cols].iter().all(|&v| v == 1.0 / cols as f32));
    assert_eq!(y[2 * cols + 17], 1.0);
    let dy = random_vec(10, rows * cols, 1.0);
    let Some(ctx) = common::gpu("large_logits_and_constant_rows_stay_finite_and_exact") else {
        return;
    };
    run(ctx, &x, &dy, rows, cols);
    let gx = ctx.upload(&x, &[rows, cols]).unwrap();
    let g = ctx
        .download(&gpu::softmax_forward(ctx, &gx).unwrap())
        .unwrap();
    assert!(g[cols..2 * cols].iter().all(|&v| v == 1.0 / cols as f32));
    assert_eq!(g[2 * cols + 17], 1.0);
}

#[test]
fn leading_dims_flatten_into_rows() {
    let Some(ctx) = common::gpu("leading_dims_flatten_into_rows") else {
        return;
    };
    let x = random_vec(11, 2 * 3 * 7, 3.0);
    let gx = ctx.upload(&x, &[2, 3, 7]).unwrap();
    let y = gpu::softmax_forward(ctx, &gx).unwrap();
    assert_eq!(y.shape, vec![2, 3, 7]);
    common::assert_ok(compare(
        "softmax [2,3,7]",
        &ctx.download(&y).unwrap(),
        &cpu::softmax_forward(&x, 6, 7),
        TOL,
    ));
}

#[test]
fn backward_matches_finite_differences() {
    let (rows, cols) = (3, 11);
    let x = random_vec(12, rows * cols, 2.0);
    let w = random_vec(13, rows * cols, 1.0);
    let y = cpu::softmax_forward(&x, rows, cols);
    let analytic = cpu::softmax_backward(&y, &w, rows, cols);
    common::assert_ok(grad_check("softmax dx", &x, &analytic, 1e-2, FD, |xp| {
        dot64(&cpu::softmax_forward(xp, rows, cols), &w)
    }));
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let y = ctx.upload(&[0.5; 6], &[2, 3]).unwrap();
    let dy = ctx.upload(&[0.5; 6], &[3, 2]).unwrap();
    let err = gpu::softmax_backward(ctx, &y, &dy).unwrap_err().to_string();
    assert!(err.contains("softmax_backward"), "{err}");
    let scalar = ctx.upload(&[1.0], &[]).unwrap();
    assert!(gpu::softmax_forward(ctx, &scalar).is_err());
}
