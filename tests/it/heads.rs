//! Head split / merge: exact permutations (CPU against the index formula, GPU against CPU bit
//! for bit, each the other's inverse and backward), and shape errors.

use crate::common;

use dsrsq::kernels::check::{dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::heads::{cpu, gpu};

/// Central differences in f32 with eps 1e-2 of a linear map (exact up to f32 rounding).
const FD: Tol = Tol::new(1e-3, 1e-2);

/// `(b, n, h, d)`: size 1, sizes that are not multiples of the workgroup (256), odd head widths.
const SHAPES: [(usize, usize, usize, usize); 6] = [
    (1, 1, 1, 1),
    (1, 3, 2, 5),
    (2, 7, 3, 11),
    (3, 17, 5, 7),
    (2, 129, 4, 33),
    (1, 1, 12, 64),
];

/// Split by the legend's formula, one element at a time.
fn split_naive(x: &[f32], b: usize, n: usize, h: usize, d: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for bi in 0..b {
        for hi in 0..h {
            for ni in 0..n {
                for di in 0..d {
                    y[((bi * h + hi) * n + ni) * d + di] = x[(bi * n + ni) * h * d + hi * d + di];
                }
            }
        }
    }
    y
}

#[test]
fn cpu_split_follows_the_legend_and_merge_inverts_it() {
    for (i, &(b, n, h, d)) in SHAPES.iter().enumerate() {
        let x = random_vec(i as u64, b * n * h * d, 2.0);
        let (y, got_d) = cpu::split_heads(&x, b, n, h).unwrap();
        assert_eq!(got_d, d);
        assert_eq!(y, split_naive(&x, b, n, h, d), "split {b}x{n}x{h}x{d}");
        let (back, _) = cpu::merge_heads(&y, b, n, h).unwrap();
        assert_eq!(back, x, "merge(split(x)) {b}x{n}x{h}x{d}");
        let (y2, _) = cpu::merge_heads(&x, b, n, h).unwrap();
        assert_eq!(
            cpu::split_heads(&y2, b, n, h).unwrap().0,
            x,
            "split(merge(x))"
        );
    }
}

#[test]
fn cpu_parallel_path_matches_formula() {
    // Above the threading threshold (2^15 elements).
    let (b, n, h, d) = (2, 300, 6, 37);
    let x = random_vec(11, b * n * h * d, 1.0);
    let (y, _) = cpu::split_heads(&x, b, n, h).unwrap();
    assert_eq!(y, split_naive(&x, b, n, h, d));
    assert_eq!(cpu::merge_heads(&y, b, n, h).unwrap().0, x);
}

#[test]
fn backward_of_each_is_the_other() {
    let (b, n, h, d) = (2, 3, 2, 4);
    let x = random_vec(3, b * n * h * d, 1.0);
    let w = random_vec(4, x.len(), 1.0);
    let dx = cpu::merge_heads(&w, b, n, h).unwrap().0;
    common::assert_ok(grad_check("split dx", &x, &dx, 1e-2, FD, |xp| {
        dot64(&cpu::split_heads(xp, b, n, h).unwrap().0, &w)
    }));
    let dx = cpu::split_heads(&w, b, n, h).unwrap().0;
    common::assert_ok(grad_check("merge dx", &x, &dx, 1e-2, FD, |xp| {
        dot64(&cpu::merge_heads(xp, b, n, h).unwrap().0, &w)
    }));
}

#[test]
fn gpu_matches_cpu_exactly() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_exactly") else {
        return;
    };
    // The last shape has more than 65535·256 elements: the 2-D folded grid.
    let large = [(2, 300, 6, 37), (1, 2049, 32, 256)];
    for (i, &(b, n, h, d)) in SHAPES.iter().chain(&large).enumerate() {
        let x = random_vec(100 + i as u64, b * n * h * d, 3.0);
        let gx = ctx.upload(&x, &[b * n, h * d]).unwrap();
        let gy = gpu::split_heads(ctx, &gx, b, n, h).unwrap();
        assert_eq!(gy.shape, vec![b * h, n, d]);
        let want = cpu::split_heads(&x, b, n, h).unwrap().0;
        assert!(ctx.download(&gy).unwrap() == want, "split {b}x{n}x{h}x{d}");
        let gm = gpu::merge_heads(ctx, &gy, b, n, h).unwrap();
        assert_eq!(gm.shape, vec![b * n, h * d]);
        assert!(ctx.download(&gm).unwrap() == x, "merge {b}x{n}x{h}x{d}");
        // Merge on its own (not only as split's inverse) against the CPU.
        let gm = gpu::merge_heads(ctx, &gx, b, n, h).unwrap();
        let want = cpu::merge_heads(&x, b, n, h).unwrap().0;
        assert!(
            ctx.download(&gm).unwrap() == want,
            "merge alone {b}x{n}x{h}x{d}"
        );
    }
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let x = random_vec(1, 10, 1.0);
    for (b, n, h) in [(1, 3, 1), (0, 1, 1), (1, 0, 2), (1, 1, 0), (2, 5, 2)] {
        assert!(cpu::split_heads(&x, b, n, h).is_err(), "{b} {n} {h}");
        assert!(cpu::merge_heads(&x, b, n, h).is_err(), "{b} {n} {h}");
    }
    assert!(cpu::split_heads(&[], 1, 1, 1).is_err());
    let Some(ctx) = common::gpu("heads shape_mismatch_is_an_error_not_a_panic") else {
        return;
    };
    let gx = ctx.upload(&x, &[10]).unwrap();
    let err = gpu::split_heads(ctx, &gx, 1, 3, 1).unwrap_err().to_string();
    assert!(err.contains("split_heads"), "{err}");
    let err = gpu::merge_heads(ctx, &gx, 1, 1, 0).unwrap_err().to_string();
    assert!(err.contains("merge_heads"), "{err}");
    let gu = ctx.upload_u32(&[1, 2], &[2]).unwrap();
    assert!(gpu::split_heads(ctx, &gu, 1, 1, 1).is_err());
}
