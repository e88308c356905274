//! Short convolution: CPU vs an f64 reference written from the definition, wgpu vs CPU on
//! odd shapes and large values, CPU backward vs finite differences, and shape errors.

use crate::common;

use dsrsq::backend::{Backend, CpuBackend};
use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::shortconv::{cpu, gpu, ConvDims, DW_CHUNK};
use dsrsq::Tensor;

/// (seqs, len, cols, taps): size 1, taps beyond the sequence, column counts that are not
/// multiples of the 64-thread workgroup, and more rows than one `dw` chunk.
const SHAPES: [(usize, usize, usize, usize); 6] = [
    (1, 1, 1, 1),
    (3, 5, 3, 2),
    (4, 3, 7, 8),
    (2, 70, 65, 4),
    (1, 200, 129, 3),
    (5, 33, 64, 1),
];

fn dims(s: (usize, usize, usize, usize)) -> ConvDims {
    ConvDims {
        seqs: s.0,
        len: s.1,
        cols: s.2,
        taps: s.3,
    }
}

/// `n` f32 roundings of partial sums no larger than `mag`: the distance between two
/// summation orders (or an FMA and a separate multiply-add) of the same terms is at most
/// `n·ε·mag`.
fn order_tol(n: usize, mag: f32) -> Tol {
    Tol::new(n as f32 * f32::EPSILON * mag, 0.0)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// y, dx, dw in f64 straight from the definition.
fn reference(x: &[f32], w: &[f32], dy: &[f32], d: &ConvDims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (len, cols, taps) = (d.len, d.cols, d.taps);
    let mut y = vec![0.0f64; x.len()];
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; w.len()];
    for s in 0..d.seqs {
        for t in 0..len {
            for c in 0..cols {
                let i = (s * len + t) * cols + c;
                y[i] += x[i] as f64;
                dx[i] += dy[i] as f64;
                for j in 0..taps {
                    if j <= t {
                        let src = i - j * cols;
                        y[i] += w[j * cols + c] as f64 * x[src] as f64;
                        // y[i] reads x[src] through w[j]: the gradient flows back along it.
                        dx[src] += w[j * cols + c] as f64 * dy[i] as f64;
                        dw[j * cols + c] += x[src] as f64 * dy[i] as f64;
                    }
                }
            }
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
    (f(y), f(dx), f(dw))
}

fn inputs(seed: u64, d: &ConvDims, scale: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = d.rows() * d.cols;
    (
        random_vec(seed, n, scale),
        random_vec(seed + 1, d.taps * d.cols, 1.0),
        random_vec(seed + 2, n, 1.0),
    )
}

/// Tolerances for inputs of magnitude `xs` (weights and upstream gradients in [-1, 1)).
fn tols(d: &ConvDims, xs: f32) -> (Tol, Tol) {
    let elem = order_tol(d.taps + 1, (d.taps + 1) as f32 * xs.max(1.0));
    let chunks = d.rows().div_ceil(DW_CHUNK);
    let dw = order_tol(DW_CHUNK + chunks, (d.rows() as f32) * xs);
    (elem, dw)
}

#[test]
fn cpu_matches_f64_definition() {
    for (i, &s) in SHAPES.iter().enumerate() {
        let d = dims(s);
        for scale in [1.0f32, 1e3] {
            let (x, w, dy) = inputs(10 * i as u64, &d, scale);
            let (ry, rdx, rdw) = reference(&x, &w, &dy, &d);
            let y = cpu::forward(&x, &w, &d);
            let (dx, dw) = cpu::backward(&x, &w, &dy, &d);
            let (elem, dwt) = tols(&d, max_abs(&x));
            let what = |n: &str| format!("{n} {d:?} scale {scale}");
            common::assert_ok(compare(&what("y"), &y, &ry, elem));
            common::assert_ok(compare(&what("dx"), &dx, &rdx, elem));
            common::assert_ok(compare(&what("dw"), &dw, &rdw, dwt));
        }
    }
}

#[test]
fn gpu_matches_cpu() {
    let Some(ctx) = common::gpu("shortconv gpu_matches_cpu") else {
        return;
    };
    for (i, &s) in SHAPES.iter().enumerate() {
        let d = dims(s);
        for scale in [1.0f32, 1e3] {
            let (x, w, dy) = inputs(100 + 10 * i as u64, &d, scale);
            let y = cpu::forward(&x, &w, &d);
            let (dx, dw) = cpu::backward(&x, &w, &dy, &d);
            let shape = [d.rows(), d.cols];
            let gx = ctx.upload(&x, &shape).unwrap();
            let gw = ctx.upload(&w, &[d.taps, d.cols]).unwrap();
            let gdy = ctx.upload(&dy, &shape).unwrap();
            let gy = gpu::forward(ctx, &gx, &gw, &d).unwrap();
            let (gdx, gdw) = gpu::backward(ctx, &gx, &gw, &gdy, &d).unwrap();
            assert_eq!(gdw.shape, vec![d.taps, d.cols]);
            // Same terms in the same order on both sides: only FMA contraction can differ.
            let (elem, dwt) = tols(&d, max_abs(&x));
            let what = |n: &str| format!("{n} {d:?} scale {scale}");
            let get = |t| ctx.download(t).unwrap();
            common::assert_ok(compare(&what("gpu y"), &get(&gy), &y, elem));
            common::assert_ok(compare(&what("gpu dx"), &get(&gdx), &dx, elem));
            common::assert_ok(compare(&what("gpu dw"), &get(&gdw), &dw, dwt));
        }
    }
}

#[test]
fn backward_matches_finite_differences() {
    let d = dims((2, 6, 5, 3));
    let (x, w, dy) = inputs(7, &d, 1.0);
    let (dx, dw) = cpu::backward(&x, &w, &dy, &d);
    // Linear in each argument: central differences are exact up to f32 rounding of the sums.
    let fd = Tol::new(1e-3, 1e-3);
    common::assert_ok(grad_check("shortconv dx", &x, &dx, 1e-2, fd, |xp| {
        dot64(&cpu::forward(xp, &w, &d), &dy)
    }));
    common::assert_ok(grad_check("shortconv dw", &w, &dw, 1e-2, fd, |wp| {
        dot64(&cpu::forward(&x, wp, &d), &dy)
    }));
}

#[test]
fn sequences_do_not_read_each_other() {
    let d = dims((2, 4, 3, 4));
    let (x, w, _) = inputs(3, &d, 1.0);
    let y = cpu::forward(&x, &w, &d);
    let mut x2 = x.clone();
    let half = d.len * d.cols;
    x2[..half].iter_mut().for_each(|v| *v += 5.0);
    let y2 = cpu::forward(&x2, &w, &d);
    assert_ne!(y[..half], y2[..half], "sequence 0 must change");
    assert_eq!(y[half..], y2[half..], "sequence 1 read sequence 0");
}

#[test]
fn zero_taps_are_the_identity() {
    let d = dims((2, 9, 4, 3));
    let (x, _, _) = inputs(5, &d, 1.0);
    assert_eq!(cpu::forward(&x, &[0.0; 12], &d), x);
}

#[test]
fn size_mismatches_are_errors_naming_the_op() {
    let be = CpuBackend;
    let d = dims((2, 3, 4, 2));
    let x = Tensor::new(vec![0.0; 24], &[6, 4]).unwrap();
    let w_bad = Tensor::new(vec![0.0; 6], &[2, 3]).unwrap();
    let e = be
        .shortconv_forward(&x, &w_bad, &d)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shortconv_forward") && e.contains("w has 6"),
        "{e}"
    );
    let x_bad = Tensor::new(vec![0.0; 20], &[5, 4]).unwrap();
    let w = Tensor::new(vec![0.0; 8], &[2, 4]).unwrap();
    let e = be
        .shortconv_backward(&x_bad, &w, &x_bad, &d)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shortconv_backward") && e.contains("x has 20"),
        "{e}"
    );
}
