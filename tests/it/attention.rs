//! Causal attention: wgpu forward/backward vs the plain-loop f64 references, and the
//! reference backward vs central finite differences.

use crate::common;

use dsrsq::device::GpuContext;
use dsrsq::kernels::attention::{cpu, gpu};
use dsrsq::kernels::check::{compare, dot64, finite_diff, random_vec, Tol};

/// f32 tiles against an f64 reference: sums of up to n·d f32 products and exp/log with a
/// few ulps of driver error (the brief's atol 1e-4 + rtol 1e-3).
const TOL: Tol = Tol::new(1e-4, 1e-3);
/// Central differences with eps 1e-2 of an f64 loss over f32 forward outputs.
const FD: Tol = Tol::new(1e-3, 1e-2);

const NS: [usize; 7] = [1, 2, 15, 16, 17, 33, 100];
const DS: [usize; 4] = [1, 8, 64, 65];

/// Inputs for one case; `amp > 1` rounds q and k to integers so q·k is exact in f32 and the
/// comparison measures the kernel, not the rounding of logits of magnitude ~1e3 (one ulp at
/// 1e3 already moves P by ~6e-5 relative).
fn inputs(bh: usize, n: usize, d: usize, amp: f32, seed: u64) -> [Vec<f32>; 4] {
    let len = bh * n * d;
    let round = |x: Vec<f32>| -> Vec<f32> {
        if amp > 1.0 {
            x.into_iter().map(f32::round).collect()
        } else {
            x
        }
    };
    [
        round(random_vec(seed, len, amp)),
        round(random_vec(seed + 1, len, amp)),
        random_vec(seed + 2, len, 1.0),
        random_vec(seed + 3, len, 1.0),
    ]
}

fn check_case(ctx: &GpuContext, bh: usize, n: usize, d: usize, amp: f32, seed: u64) {
    let [q, k, v, dout] = inputs(bh, n, d, amp, seed);
    let tag = format!("bh={bh} n={n} d={d} amp={amp}");
    let up = |x: &[f32]| ctx.upload(x, &[bh, n, d]).unwrap();
    let (gq, gk, gv, gdo) = (up(&q), up(&k), up(&v), up(&dout));
    let (go, glse) = gpu::attention_forward(ctx, &gq, &gk, &gv).unwrap();
    let (o_ref, lse_ref) = cpu::attention_forward_ref(&q, &k, &v, bh, n, d);
    let o = ctx.download(&go).unwrap();
    let lse = ctx.download(&glse).unwrap();
    common::assert_ok(compare(&format!("o {tag}"), &o, &o_ref, TOL));
    common::assert_ok(compare(&format!("lse {tag}"), &lse, &lse_ref, TOL));
    // The backward gets the reference o/lse so each kernel is judged on its own error.
    let (go, glse) = (up(&o_ref), ctx.upload(&lse_ref, &[bh, n]).unwrap());
    let (gdq, gdk, gdv) = gpu::attention_backward(ctx, &gq, &gk, &gv, &go, &glse, &gdo).unwrap();
    let want = cpu::attention_backward_ref(&q, &k, &v, &o_ref, &lse_ref, &dout, bh, n, d);
    for (what, g, w) in [
        ("dq", &gdq, &want.0),
        ("dk", &gdk, &want.1),
        ("dv", &gdv, &want.2),
    ] {
        let got = ctx.download(g).unwrap();
        common::assert_ok(compare(&format!("{what} {tag}"), &got, w, TOL));
    }
}

#[test]
fn gpu_matches_reference_over_shapes() {
    let Some(ctx) = common::gpu("gpu_matches_reference_over_shapes") else {
        return;
    };
    let mut seed = 0;
    for bh in [1, 3] {
        for n in NS {
            for d in DS {
                seed += 10;
                check_case(ctx, bh, n, d, 1.0, seed);
            }
        }
    }
}

#[test]
fn gpu_matches_reference_with_large_logits() {
    let Some(ctx) = common::gpu("gpu_matches_reference_with_large_logits") else {
        return;
    };
    for (i, &(bh, n, d)) in [(1, 7, 1), (3, 33, 8), (1, 100, 64), (3, 17, 65)]
        .iter()
        .enumerate()
    {
        check_case(ctx, bh, n, d, 30.0, 1000 + i as u64);
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let (bh, n, d) = (1, 5, 3);
    let [q, k, v, w] = inputs(bh, n, d, 1.0, 77);
    let (o, lse) = cpu::attention_forward_ref(&q, &k, &v, bh, n, d);
    // dout = w makes the backward the gradient of Σ o·w.
    let grads = cpu::attention_backward_ref(&q, &k, &v, &o, &lse, &w, bh, n, d);
    let xs = [&q, &k, &v];
    for (which, grad) in [&grads.0, &grads.1, &grads.2].into_iter().enumerate() {
        let fd = finite_diff(xs[which], 1e-2, None, |xp| {
            let mut x = [q.clone(), k.clone(), v.clone()];
            x[which] = xp.to_vec();
            dot64(
                &cpu::attention_forward_ref(&x[0], &x[1], &x[2], bh, n, d).0,
                &w,
            )
        });
        let numeric: Vec<f32> = fd.into_iter().map(|(_, g)| g).collect();
        common::assert_ok(compare(["dq", "dk", "dv"][which], grad, &numeric, FD));
    }
}

#[test]
fn first_query_copies_first_value_and_lse_is_its_score() {
    // Causality pins row 0: it sees only key 0, so o_0 = v_0 and lse_0 = q_0·k_0/√d.
    let Some(ctx) = common::gpu("first_query_copies_first_value_and_lse_is_its_score") else {
        return;
    };
    let (bh, n, d) = (2, 9, 4);
    let [q, k, v, _] = inputs(bh, n, d, 1.0, 5);
    let up = |x: &[f32]| ctx.upload(x, &[bh, n, d]).unwrap();
    let (go, glse) = gpu::attention_forward(ctx, &up(&q), &up(&k), &up(&v)).unwrap();
    let (o, lse) = (ctx.download(&go).unwrap(), ctx.download(&glse).unwrap());
    for b in 0..bh {
        let row = b * n * d..b * n * d + d;
        common::assert_ok(compare("o_0", &o[row.clone()], &v[row.clone()], TOL));
        let s = dot64(&q[row.clone()], &k[row]) / (d as f64).sqrt();
        common::assert_ok(compare("lse_0", &lse[b * n..b * n + 1], &[s as f32], TOL));
    }
}

#[test]
fn shape_errors_are_errors_not_panics() {
    let Some(ctx) = common::gpu("shape_errors_are_errors_not_panics") else {
        return;
    };
    let a = ctx.upload(&[0.0; 24], &[1, 4, 6]).unwrap();
    let b = ctx.upload(&[0.0; 24], &[1, 6, 4]).unwrap();
    let err = gpu::attention_forward(ctx, &a, &b, &a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("attention_forward"), "{err}");
    let flat = ctx.upload(&[0.0; 24], &[24]).unwrap();
    assert!(gpu::attention_forward(ctx, &flat, &flat, &flat).is_err());
    let wide = ctx.upload(&vec![0.0; 2 * 129], &[1, 2, 129]).unwrap();
    let err = gpu::attention_forward(ctx, &wide, &wide, &wide)
        .unwrap_err()
        .to_string();
    assert!(err.contains("MAX_D"), "{err}");
    let lse = ctx.upload(&[0.0; 3], &[1, 3]).unwrap();
    let err = gpu::attention_backward(ctx, &a, &a, &a, &a, &lse, &a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lse"), "{err}");
}
