//! AdamW: several in-place steps on wgpu vs the CPU reference, and hand-derivable cases.

use crate::common;

use dsrsq::kernels::adamw::{cpu, gpu, AdamW};
use dsrsq::kernels::check::{compare, random_vec, Tol};

/// Identical f32 operations on both sides; only sqrt/division rounding of the driver may
/// differ by an ulp, and that compounds over a few steps through m, v and p.
const TOL: Tol = Tol::new(1e-6, 1e-5);

const HP: AdamW = AdamW {
    lr: 1e-2,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weight_decay: 0.1,
};

#[test]
fn several_steps_match_cpu() {
    let Some(ctx) = common::gpu("several_steps_match_cpu") else {
        return;
    };
    for (i, &n) in [1usize, 255, 257, 70_001].iter().enumerate() {
        let seed = 10 * i as u64;
        let mut p = random_vec(seed, n, 1.0);
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let (gp, gm, gv) = (
            ctx.upload(&p, &[n]).unwrap(),
            ctx.upload(&m, &[n]).unwrap(),
            ctx.upload(&v, &[n]).unwrap(),
        );
        for step in 1..=4u32 {
            let g = random_vec(seed + step as u64, n, 2.0);
            let gg = ctx.upload(&g, &[n]).unwrap();
            gpu::adamw_step(ctx, &gp, &gg, &gm, &gv, &HP, step).unwrap();
            cpu::adamw_step(&mut p, &g, &mut m, &mut v, &HP, step);
        }
        for (what, t, want) in [("param", &gp, &p), ("m", &gm, &m), ("v", &gv, &v)] {
            let got = ctx.download(t).unwrap();
            common::assert_ok(compare(&format!("{what} n={n}"), &got, want, TOL));
        }
    }
}

#[test]
fn first_step_without_decay_moves_by_lr_times_sign() {
    // Step 1: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
    let hp = AdamW {
        weight_decay: 0.0,
        ..HP
    };
    let n = 300;
    let p0 = random_vec(1, n, 1.0);
    let g: Vec<f32> = random_vec(2, n, 3.0)
        .into_iter()
        .map(|x| if x.abs() < 1e-3 { 0.5 } else { x })
        .collect();
    let want: Vec<f32> = p0
        .iter()
        .zip(&g)
        .map(|(p, g)| p - hp.lr * g.signum())
        .collect();
    // |g| ≥ 1e-3 keeps eps/|g| ≤ 1e-5, i.e. the step is lr·(1 − 1e-5) at worst.
    let hand = Tol::new(1e-6, 1e-6);
    let (mut p, mut m, mut v) = (p0.clone(), vec![0.0; n], vec![0.0; n]);
    cpu::adamw_step(&mut p, &g, &mut m, &mut v, &hp, 1);
    common::assert_ok(compare("cpu step 1", &p, &want, hand));
    let Some(ctx) = common::gpu("first_step_without_decay_moves_by_lr_times_sign") else {
        return;
    };
    let gp = ctx.upload(&p0, &[n]).unwrap();
    let (gm, gv) = (
        ctx.upload(&vec![0.0; n], &[n]).unwrap(),
        ctx.upload(&vec![0.0; n], &[n]).unwrap(),
    );
    let gg = ctx.upload(&g, &[n]).unwrap();
    gpu::adamw_step(ctx, &gp, &gg, &gm, &gv, &hp, 1).unwrap();
    common::assert_ok(compare(
        "gpu step 1",
        &ctx.download(&gp).unwrap(),
        &want,
        hand,
    ));
}

#[test]
fn zero_gradient_only_decays_the_weights() {
    // g = 0 leaves m = v = 0, so the Adam term is 0/(0 + eps) = 0 and p ← p·(1 − lr·wd):
    // the decay is decoupled from the gradient statistics.
    let n = 33;
    let p0 = random_vec(3, n, 2.0);
    let (mut p, mut m, mut v) = (p0.clone(), vec![0.0; n], vec![0.0; n]);
    for step in 1..=3 {
        cpu::adamw_step(&mut p, &vec![0.0; n], &mut m, &mut v, &HP, step);
    }
    let k = (1.0 - HP.lr * HP.weight_decay).powi(3);
    let want: Vec<f32> = p0.iter().map(|x| x * k).collect();
    common::assert_ok(compare("decay only", &p, &want, Tol::new(1e-7, 1e-6)));
}

#[test]
fn shape_mismatch_and_step_zero_are_errors() {
    let Some(ctx) = common::gpu("shape_mismatch_and_step_zero_are_errors") else {
        return;
    };
    let a = ctx.upload(&[1.0, 2.0], &[2]).unwrap();
    let b = ctx.upload(&[1.0, 2.0, 3.0], &[3]).unwrap();
    let (m, v) = (
        ctx.upload(&[0.0; 2], &[2]).unwrap(),
        ctx.upload(&[0.0; 2], &[2]).unwrap(),
    );
    let err = gpu::adamw_step(ctx, &a, &b, &m, &v, &HP, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("adamw_step"), "{err}");
    let g = ctx.upload(&[0.5, 0.5], &[2]).unwrap();
    assert!(gpu::adamw_step(ctx, &a, &g, &m, &v, &HP, 0).is_err());
}
