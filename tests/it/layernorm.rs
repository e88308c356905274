//! LayerNorm: wgpu vs CPU reference, accuracy on large-offset rows, and CPU backward vs finite
//! differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::layernorm::{cpu, gpu, PARAM_CHUNK};

const EPS: f32 = 1e-5;
/// y, dx: O(1) values; the GPU sums a row in f32 (per-thread strides then a tree) where the CPU
/// sums in f64, and drivers may round `sqrt` and `/` by a couple of ulps. Observed on lavapipe:
/// ≤ 5e-7 absolute for up to 70k columns; this leaves a 10× margin for other drivers.
const TOL: Tol = Tol::new(5e-6, 1e-5);
/// dgamma/dbeta: both sides add the same f32 terms in the same chunked order (bit-identical on
/// lavapipe); a driver that contracts `s += d·x̂` into an FMA changes the last bit per add over
/// ≤ 64 + rows/64 adds of O(1) terms.
const PARAM_TOL: Tol = Tol::new(2e-6, 2e-6);
/// Central differences in f32 with eps 1e-2 on a smooth function.
const FD: Tol = Tol::new(1e-3, 1e-2);
/// Column counts around the workgroup size (256), size 1, and a long row.
const COLS: [usize; 6] = [1, 3, 255, 256, 257, 70_001];

fn rows_for(cols: usize) -> usize {
    // Enough rows to cross a PARAM_CHUNK boundary where it is cheap.
    if cols <= 3 {
        2 * PARAM_CHUNK + 5
    } else if cols < 1000 {
        7
    } else {
        2
    }
}

/// Runs forward and backward on the GPU and compares all six outputs with the CPU.
fn check_gpu_vs_cpu(ctx: &dsrsq::device::GpuContext, x: &[f32], rows: usize, cols: usize) {
    let gamma = random_vec(11, cols, 1.5);
    let beta = random_vec(12, cols, 0.5);
    let dy = random_vec(13, rows * cols, 1.0);
    let (y, mean, rstd) = cpu::layernorm_forward(x, &gamma, &beta, rows, cols, EPS);
    let (dx, dg, db) = cpu::layernorm_backward(&dy, x, &gamma, &mean, &rstd, rows, cols);

    let gx = ctx.upload(x, &[rows, cols]).unwrap();
    let gg = ctx.upload(&gamma, &[cols]).unwrap();
    let gb = ctx.upload(&beta, &[cols]).unwrap();
    let gdy = ctx.upload(&dy, &[rows, cols]).unwrap();
    let (gy, gm, gr) = gpu::layernorm_forward(ctx, &gx, &gg, &gb, EPS).unwrap();
    let what = |s: &str| format!("{s} rows={rows} cols={cols}");
    let ok = common::assert_ok;
    ok(compare(&what("y"), &ctx.download(&gy).unwrap(), &y, TOL));
    // The mean is stored in f32: allow an ulp or two of its magnitude.
    ok(compare(
        &what("mean"),
        &ctx.download(&gm).unwrap(),
        &mean,
        Tol::new(1e-6, 3e-7),
    ));
    ok(compare(
        &what("rstd"),
        &ctx.download(&gr).unwrap(),
        &rstd,
        TOL,
    ));
    // The backward gets the CPU's saved statistics so it is tested on its own.
    let cm = ctx.upload(&mean, &[rows]).unwrap();
    let cr = ctx.upload(&rstd, &[rows]).unwrap();
    let (gdx, gdg, gdb) = gpu::layernorm_backward(ctx, &gdy, &gx, &gg, &cm, &cr).unwrap();
    ok(compare(&what("dx"), &ctx.download(&gdx).unwrap(), &dx, TOL));
    ok(compare(
        &what("dgamma"),
        &ctx.download(&gdg).unwrap(),
        &dg,
        PARAM_TOL,
    ));
    ok(compare(
        &what("dbeta"),
        &ctx.download(&gdb).unwrap(),
        &db,
        PARAM_TOL,
    ));
}

#[test]
fn gpu_matches_cpu_for_all_column_counts() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_for_all_column_counts") else {
        return;
    };
    for (i, &cols) in COLS.iter().enumerate() {
        let rows = rows_for(cols);
        let x = random_vec(i as u64, rows * cols, 2.0);
        check_gpu_vs_cpu(ctx, &x, rows, cols);
    }
}

/// Rows near 1e3 with spread 0.5: E[x²] − E[x]² would lose every digit here.
fn offset_rows(seed: u64, rows: usize, cols: usize) -> Vec<f32> {
    random_vec(seed, rows * cols, 0.5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| 1000.0 + 37.0 * (i / cols) as f32 + v)
        .collect()
}

#[test]
fn gpu_matches_cpu_on_large_offset_rows() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_on_large_offset_rows") else {
        return;
    };
    for &cols in &[3, 257, 70_001] {
        let rows = 3;
        check_gpu_vs_cpu(ctx, &offset_rows(cols as u64, rows, cols), rows, cols);
    }
}

/// y of each row in f64 from the f32 inputs: the exact answer the f32 kernels approximate.
fn layernorm_f64(x: &[f32], gamma: &[f32], beta: &[f32], cols: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let n = cols as f64;
        let m = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
        let rs = 1.0 / (var + EPS as f64).sqrt();
        for ((&v, &g), &b) in row.iter().zip(gamma).zip(beta) {
            y.push(((v as f64 - m) * rs * g as f64 + b as f64) as f32);
        }
    }
    y
}

#[test]
fn large_offset_rows_are_accurate_against_f64() {
    // Shifted two-pass statistics keep y as accurate as for centred data: the same TOL as the
    // GPU comparison, not a looser one for the offset.
    let (rows, cols) = (3, 70_001);
    let x = offset_rows(5, rows, cols);
    let gamma = random_vec(6, cols, 1.5);
    let beta = random_vec(7, cols, 0.5);
    let want = layernorm_f64(&x, &gamma, &beta, cols);
    let (y, _, _) = cpu::layernorm_forward(&x, &gamma, &beta, rows, cols, EPS);
    common::assert_ok(compare("cpu y vs f64", &y, &want, TOL));
    let Some(ctx) = common::gpu("large_offset_rows_are_accurate_against_f64") else {
        return;
    };
    let gx = ctx.upload(&x, &[rows, cols]).unwrap();
    let gg = ctx.upload(&gamma, &[cols]).unwrap();
    let gb = ctx.upload(&beta, &[cols]).unwrap();
    let (gy, _, _) = gpu::layernorm_forward(ctx, &gx, &gg, &gb, EPS).unwrap();
    common::assert_ok(compare(
        "gpu y vs f64",
        &ctx.download(&gy).unwrap(),
        &want,
        TOL,
    ));
}

#[test]
fn backward_matches_finite_differences() {
    let (rows, cols) = (3, 7);
    let x = random_vec(21, rows * cols, 1.0);
    let gamma = random_vec(22, cols, 1.5);
    let beta = random_vec(23, cols, 0.5);
    let w = random_vec(24, rows * cols, 1.0);
    let (_, mean, rstd) = cpu::layernorm_forward(&x, &gamma, &beta, rows, cols, EPS);
    let (dx, dg, db) = cpu::layernorm_backward(&w, &x, &gamma, &mean, &rstd, rows, cols);
    let loss = |x: &[f32], g: &[f32], b: &[f32]| {
        dot64(&cpu::layernorm_forward(x, g, b, rows, cols, EPS).0, &w)
    };
    let ok = common::assert_ok;
    ok(grad_check("layernorm dx", &x, &dx, 1e-2, FD, |xp| {
        loss(xp, &gamma, &beta)
    }));
    ok(grad_check(
        "layernorm dgamma",
        &gamma,
        &dg,
        1e-2,
        FD,
        |gp| loss(&x, gp, &beta),
    ));
    ok(grad_check("layernorm dbeta", &beta, &db, 1e-2, FD, |bp| {
        loss(&x, &gamma, bp)
    }));
}

#[test]
fn param_grads_use_fixed_chunks_across_many_rows() {
    // More rows than PARAM_CHUNK: the column sums go through the partial + column-sum path.
    let (rows, cols) = (3 * PARAM_CHUNK + 1, 5);
    let x = random_vec(31, rows * cols, 1.0);
    let gamma = random_vec(32, cols, 1.0);
    let dy = random_vec(33, rows * cols, 1.0);
    let (_, mean, rstd) = cpu::layernorm_forward(&x, &gamma, &gamma, rows, cols, EPS);
    let (_, dg, db) = cpu::layernorm_backward(&dy, &x, &gamma, &mean, &rstd, rows, cols);
    let mut want_g = vec![0.0f64; cols];
    let mut want_b = vec![0.0f64; cols];
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            let xh = (x[i] - mean[r]) as f64 * rstd[r] as f64;
            want_g[c] += dy[i] as f64 * xh;
            want_b[c] += dy[i] as f64;
        }
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<_>>();
    common::assert_ok(compare("dgamma vs f64", &dg, &f32s(want_g), PARAM_TOL));
    common::assert_ok(compare("dbeta vs f64", &db, &f32s(want_b), PARAM_TOL));
    let Some(ctx) = common::gpu("param_grads_use_fixed_chunks_across_many_rows") else {
        return;
    };
    check_gpu_vs_cpu(ctx, &x, rows, cols);
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let Some(ctx) = common::gpu("shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let x = ctx.upload(&[1.0; 6], &[2, 3]).unwrap();
    let g4 = ctx.upload(&[1.0; 4], &[4]).unwrap();
    let g3 = ctx.upload(&[1.0; 3], &[3]).unwrap();
    let b2 = ctx.upload(&[0.0; 2], &[2]).unwrap();
    let err = gpu::layernorm_forward(ctx, &x, &g4, &g4, EPS)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layernorm_forward"), "{err}");
    let err = gpu::layernorm_forward(ctx, &x, &g3, &b2, EPS)
        .unwrap_err()
        .to_string();
    assert!(err.contains("beta"), "{err}");
    let (_, m, r) = gpu::layernorm_forward(ctx, &x, &g3, &g3, EPS).unwrap();
    let dy_bad = ctx.upload(&[1.0; 6], &[3, 2]).unwrap();
    let err = gpu::layernorm_backward(ctx, &dy_bad, &x, &g3, &m, &r)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layernorm_backward"), "{err}");
    let err = gpu::layernorm_backward(ctx, &x, &x, &g3, &b2, &g3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rstd"), "{err}");
}

#[test]
fn more_rows_than_one_grid_dimension() {
    // 65 537 rows: the one-workgroup-per-row grid folds into 2-D (65 535 is the per-dim limit).
    let Some(ctx) = common::gpu("more_rows_than_one_grid_dimension") else {
        return;
    };
    let (rows, cols) = (65_537, 2);
    check_gpu_vs_cpu(ctx, &random_vec(41, rows * cols, 1.0), rows, cols);
}
