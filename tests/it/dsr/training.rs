//! DSR training: CPU backward vs finite differences for each loss, GPU losses and backward
//! against the CPU.

use super::*;

/// Finite differences of `loss(scores(e, w_r, w_q))` w.r.t. `w_r`, `w_q` and `e`.
fn fd_check(name: &str, loss: impl Fn(&[f32]) -> (f32, Vec<f32>)) {
    let c = case(21, 11, 3, 4, cfg(3, 4, 4));
    let (d, k) = (c.d, c.cfg);
    let f = |e: &[f32], wr: &[f32], wq: &[f32]| -> f64 {
        loss(&cpu::scores(e, wr, wq, &d, &k).unwrap().scores).0 as f64
    };
    let fwd = cpu::scores(&c.e, &c.w_r, &c.w_q, &d, &k).unwrap();
    let ds = loss(&fwd.scores).1;
    let g = cpu::backward(&c.e, &c.w_r, &c.w_q, &fwd, &ds, &d, &k, true).unwrap();
    common::assert_ok(grad_check(
        &format!("{name} dw_r"),
        &c.w_r,
        &g.dw_r,
        1e-2,
        FD,
        |w| f(&c.e, w, &c.w_q),
    ));
    common::assert_ok(grad_check(
        &format!("{name} dw_q"),
        &c.w_q,
        &g.dw_q,
        1e-2,
        FD,
        |w| f(&c.e, &c.w_r, w),
    ));
    let de = g.de.unwrap();
    common::assert_ok(grad_check(
        &format!("{name} de"),
        &c.e,
        &de,
        1e-2,
        FD,
        |e| f(e, &c.w_r, &c.w_q),
    ));
}

#[test]
fn retrieval_bce_backward_matches_finite_differences() {
    fd_check("bce", |s| {
        cpu::retrieval_bce(s, &[(2, 4), (9, 9)], 1).unwrap()
    });
}

#[test]
fn retrieval_kl_backward_matches_finite_differences() {
    let t: Vec<f32> = (0..11)
        .map(|i| if i % 3 == 0 { 0.0 } else { 0.125 })
        .collect();
    fd_check("kl", |s| cpu::retrieval_kl(s, &t).unwrap());
}

#[test]
fn compute_loss_backward_matches_finite_differences() {
    let k = DsrConfig {
        tau: 0.3,
        temperature: 0.7,
        ..DsrConfig::default()
    };
    fd_check("compute", |s| cpu::compute_loss(s, &k).unwrap());
}

#[test]
fn gpu_losses_match_cpu() {
    let Some(ctx) = common::gpu("gpu_losses_match_cpu") else {
        return;
    };
    for &(n, scale) in &[(1usize, 2.0f32), (300, 4.0), (70_001, 4.0), (1000, 1e4)] {
        let s = random_vec(n as u64, n, scale);
        let gs = ctx.upload(&s, &[n]).unwrap();
        let what = format!("n {n} scale {scale}");
        let check = |name: &str, got: (GpuTensor, GpuTensor), want: (f32, Vec<f32>)| {
            let l = ctx.download(&got.0).unwrap();
            common::assert_ok(compare(
                &format!("{name} {what}"),
                &l[..1],
                &[want.0],
                LOSS_TOL,
            ));
            let ds = ctx.download(&got.1).unwrap();
            common::assert_ok(compare(&format!("{name} ds {what}"), &ds, &want.1, DS_TOL));
        };
        let spans = [(0, 1), (n / 2, n / 2 + 3), (n + 5, n + 9), (7, 7)];
        check(
            "bce",
            gpu::retrieval_bce(ctx, &gs, &spans, 2).unwrap(),
            cpu::retrieval_bce(&s, &spans, 2).unwrap(),
        );
        let raw: Vec<f32> = random_vec(n as u64 + 1, n, 1.0)
            .iter()
            .map(|v| v.max(0.0))
            .collect();
        let total: f32 = raw.iter().sum::<f32>().max(1e-3);
        let t: Vec<f32> = raw.iter().map(|v| v / total).collect();
        let gt = ctx.upload(&t, &[n]).unwrap();
        check(
            "kl",
            gpu::retrieval_kl(ctx, &gs, &gt).unwrap(),
            cpu::retrieval_kl(&s, &t).unwrap(),
        );
        let k = DsrConfig {
            tau: 0.5,
            temperature: 0.8,
            ..DsrConfig::default()
        };
        check(
            "compute",
            gpu::compute_loss(ctx, &gs, &k).unwrap(),
            cpu::compute_loss(&s, &k).unwrap(),
        );
    }
}

#[test]
fn gpu_backward_matches_cpu() {
    let Some(ctx) = common::gpu("gpu_backward_matches_cpu") else {
        return;
    };
    for &(n_ctx, nq, dm, dr) in &[(1, 1, 3, 2), (333, 5, 16, 128), (2000, 2, 70, 9)] {
        let c = case(n_ctx as u64 + 11, n_ctx, nq, dm, cfg(dr, 16, 64));
        let (e, wr, wq) = up(ctx, &c);
        let ds = random_vec(77, n_ctx, 0.01);
        let fwd_g = gpu::scores(ctx, &e, &wr, &wq, &c.d, &c.cfg).unwrap();
        let gds = ctx.upload(&ds, &[n_ctx]).unwrap();
        let g = gpu::backward(ctx, &e, &wr, &wq, &fwd_g, &gds, &c.d, &c.cfg, true).unwrap();
        let fwd = cpu::scores(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg).unwrap();
        let want = cpu::backward(&c.e, &c.w_r, &c.w_q, &fwd, &ds, &c.d, &c.cfg, true).unwrap();
        let what = format!("n_ctx {n_ctx} dm {dm} dr {dr}");
        let dl = |t: &GpuTensor| ctx.download(t).unwrap();
        common::assert_ok(compare(
            &format!("dw_r {what}"),
            &dl(&g.dw_r),
            &want.dw_r,
            GRAD_TOL,
        ));
        common::assert_ok(compare(
            &format!("dw_q {what}"),
            &dl(&g.dw_q),
            &want.dw_q,
            GRAD_TOL,
        ));
        let de = dl(g.de.as_ref().unwrap());
        common::assert_ok(compare(
            &format!("de {what}"),
            &de,
            want.de.as_ref().unwrap(),
            GRAD_TOL,
        ));
    }
}
