//! RoPE (half-split): wgpu vs CPU reference at large original positions, angle reduction vs f64,
//! and the CPU backward vs finite differences.

use crate::common;

use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::rope::{cpu, gpu, inv_freq};

const BASE: f32 = 10_000.0;
/// CPU and GPU share θ bit for bit and reduce it with the same f32 steps (an FMA may change the
/// last one by an ulp of π, 2.4e-7); what remains is the drivers' sin/cos error on [−π, π]
/// (~1e-6 on real hardware; WGSL's floor of 2^-11 would fail this on purpose). With |x| ≤ 1 a
/// sin/cos error δ moves y by ≤ 2δ, so 1e-5 covers δ up to 5e-6.
const TOL: Tol = Tol::new(1e-5, 1e-5);
/// Central differences of a linear loss in f32 with eps 1e-2.
const FD: Tol = Tol::new(1e-3, 1e-2);
/// Original positions after sparse selection: arbitrary, up to ~70k.
const POSITIONS: [u32; 4] = [0, 5, 17, 65_000];

fn gpu_vs_cpu(ctx: &dsrsq::device::GpuContext, pos: &[u32], b: usize, h: usize, d: usize) {
    let n = pos.len() / b;
    let x = random_vec((h * 1000 + d) as u64, b * h * n * d, 1.0);
    let gx = ctx.upload(&x, &[b, h, n, d]).unwrap();
    let what = |s: &str| format!("{s} b={b} h={h} n={n} d={d}");
    let y = gpu::rope_forward(ctx, &gx, pos, BASE).unwrap();
    let want = cpu::rope_forward(&x, pos, b, h, n, d, BASE).unwrap();
    common::assert_ok(compare(
        &what("forward"),
        &ctx.download(&y).unwrap(),
        &want,
        TOL,
    ));
    let dx = gpu::rope_backward(ctx, &gx, pos, BASE).unwrap();
    let want = cpu::rope_backward(&x, pos, b, h, n, d, BASE).unwrap();
    common::assert_ok(compare(
        &what("backward"),
        &ctx.download(&dx).unwrap(),
        &want,
        TOL,
    ));
}

#[test]
fn gpu_matches_cpu_at_large_positions() {
    let Some(ctx) = common::gpu("gpu_matches_cpu_at_large_positions") else {
        return;
    };
    for &d in &[2, 64, 66] {
        gpu_vs_cpu(ctx, &POSITIONS, 2, 3, d);
        gpu_vs_cpu(ctx, &POSITIONS, 1, 1, d);
    }
    // Pairs not a multiple of the workgroup size, random positions up to 70k.
    let pos: Vec<u32> = random_vec(5, 2 * 37, 1.0)
        .into_iter()
        .map(|v| ((v + 1.0) * 35_000.0) as u32)
        .collect();
    gpu_vs_cpu(ctx, &pos, 2, 5, 66);
}

/// The rotation in f64 from the same f32 angle θ = f32(pos)·inv_freq[i] the kernels use.
fn rope_f64(x: &[f32], pos: &[u32], (b, h, n, d): (usize, usize, usize, usize)) -> Vec<f32> {
    let half = d / 2;
    let inv = inv_freq(d, BASE);
    let mut y = vec![0.0f32; x.len()];
    for row in 0..b * h * n {
        let p = pos[row / (h * n) * n + row % n] as f32;
        for (i, &f) in inv.iter().enumerate() {
            let t = (p * f) as f64;
            let (a, c) = (x[row * d + i] as f64, x[row * d + i + half] as f64);
            y[row * d + i] = (a * t.cos() - c * t.sin()) as f32;
            y[row * d + i + half] = (a * t.sin() + c * t.cos()) as f32;
        }
    }
    y
}

#[test]
fn large_angles_are_accurate_against_f64() {
    let (b, h, d) = (2, 2, 64);
    let n = POSITIONS.len() / b;
    let x = random_vec(8, b * h * n * d, 1.0);
    let want = rope_f64(&x, &POSITIONS, (b, h, n, d));
    let y = cpu::rope_forward(&x, &POSITIONS, b, h, n, d, BASE).unwrap();
    common::assert_ok(compare("cpu vs f64", &y, &want, TOL));
    let Some(ctx) = common::gpu("large_angles_are_accurate_against_f64") else {
        return;
    };
    let gx = ctx.upload(&x, &[b, h, n, d]).unwrap();
    let gy = gpu::rope_forward(ctx, &gx, &POSITIONS, BASE).unwrap();
    common::assert_ok(compare(
        "gpu vs f64",
        &ctx.download(&gy).unwrap(),
        &want,
        TOL,
    ));
}

#[test]
fn angle_reduction_matches_f64() {
    for k in 0..20_000u32 {
        // Up to ~1e6: beyond the 70k positions of the model, within the exact-split range.
        let t = k as f32 * 52.123 + 0.001 * k as f32;
        let r = cpu::reduce_angle(t) as f64;
        let exact = (t as f64).rem_euclid(std::f64::consts::TAU);
        // Same point on the circle to ~an ulp of π...
        let diff = (r - exact).rem_euclid(std::f64::consts::TAU);
        let diff = diff.min(std::f64::consts::TAU - diff);
        assert!(diff < 1e-6, "t={t}: reduced {r}, exact mod 2π {exact}");
        // ...and within [−π, π] up to the error of the f32 quotient t·f32(1/2π) that picks k:
        // half an ulp of the quotient plus the constant's rounding, together < q·2^-23 turns
        // (≈ 0.003 rad at position 70k).
        let q = t as f64 / std::f64::consts::TAU;
        let slack = std::f64::consts::TAU * q * 2f64.powi(-23) + 1e-6;
        assert!(r.abs() <= std::f64::consts::PI + slack, "t={t}: {r}");
    }
}

#[test]
fn position_zero_is_identity_and_backward_inverts_forward() {
    let (b, h, n, d) = (1, 2, 4, 66);
    let x = random_vec(3, b * h * n * d, 1.0);
    let y = cpu::rope_forward(&x, &[0; 4], b, h, n, d, BASE).unwrap();
    assert_eq!(y, x);
    let pos = [9, 70_000, 3, 12_345];
    let y = cpu::rope_forward(&x, &pos, b, h, n, d, BASE).unwrap();
    let back = cpu::rope_backward(&y, &pos, b, h, n, d, BASE).unwrap();
    // Two rotations of unit-scale values: a few ulps.
    common::assert_ok(compare(
        "backward(forward(x))",
        &back,
        &x,
        Tol::new(1e-6, 1e-6),
    ));
}

#[test]
fn backward_matches_finite_differences() {
    let (b, h, n, d) = (2, 1, 2, 6);
    let x = random_vec(4, b * h * n * d, 1.0);
    let w = random_vec(5, x.len(), 1.0);
    let analytic = cpu::rope_backward(&w, &POSITIONS, b, h, n, d, BASE).unwrap();
    common::assert_ok(grad_check("rope dx", &x, &analytic, 1e-2, FD, |xp| {
        dot64(
            &cpu::rope_forward(xp, &POSITIONS, b, h, n, d, BASE).unwrap(),
            &w,
        )
    }));
}

#[test]
fn odd_head_dim_and_bad_shapes_are_errors() {
    let x = vec![0.0; 2 * 3];
    let err = cpu::rope_forward(&x, &[0, 1], 1, 1, 2, 3, BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("even"), "{err}");
    let err = cpu::rope_backward(&x, &[0, 1], 1, 1, 2, 3, BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("even"), "{err}");
    let err = cpu::rope_forward(&x, &[0], 1, 1, 2, 3, BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("positions") || err.contains("even"), "{err}");
    let err = cpu::rope_forward(&[0.0; 8], &[0], 1, 1, 2, 2, BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("positions"), "{err}");
    let Some(ctx) = common::gpu("odd_head_dim_and_bad_shapes_are_errors") else {
        return;
    };
    let odd = ctx.upload(&x, &[1, 1, 2, 3]).unwrap();
    let err = gpu::rope_forward(ctx, &odd, &[0, 1], BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("even"), "{err}");
    let err = gpu::rope_backward(ctx, &odd, &[0, 1], BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("even"), "{err}");
    let flat = ctx.upload(&[0.0; 8], &[2, 4]).unwrap();
    let err = gpu::rope_forward(ctx, &flat, &[0, 1], BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[b, h, n, d]"), "{err}");
    let even = ctx.upload(&[0.0; 8], &[1, 1, 2, 4]).unwrap();
    let err = gpu::rope_forward(ctx, &even, &[0, 1, 2], BASE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("positions"), "{err}");
}
