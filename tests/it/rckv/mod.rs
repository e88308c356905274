//! RCKV: compression / reconstruction / compression loss (wgpu vs CPU, CPU backward vs finite
//! differences, exactness with U·D = I) and bad input. The ring buffer tests are in `rckv/ring.rs`.

use crate::common;
mod ring;

use dsrsq::device::{GpuContext, GpuTensor};
use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::rckv::{cpu, gpu, RckvDims};

/// Central differences in f32 with eps 1e-2; the compression loss is quadratic in each input,
/// so the central difference is exact up to rounding of an O(1) loss.
const FD: Tol = Tol::new(1e-3, 1e-2);
/// Loss values: f32 tree sums on the device vs an f64 sum on the CPU, over up to ~70k terms.
const LOSS_TOL: Tol = Tol::new(1e-6, 1e-4);

/// (n, dm, latent): size 1, widths off the 256 workgroup and 64 matmul tiles, the seed latent.
const SHAPES: [(usize, usize, usize); 5] = [
    (1, 1, 1),
    (1, 5, 3),
    (7, 13, 5),
    (37, 100, 64),
    (130, 24, 17),
];

/// An f32 dot product of length `red` with operands of magnitude ≤ `scale` (product of both
/// operands' bounds) accumulates rounding ~ red·u·Σ|aᵢbᵢ|: 1e-4 at `red` ≤ 64 and unit scale,
/// growing linearly past 64, as the matmul tests (≈25× headroom there). The backward chains
/// two products, so both reduction lengths count.
fn tol_for(red: usize, scale: f32) -> Tol {
    let s = (red as f32 / 64.0).max(1.0);
    Tol::new(1e-4 * s * scale, 1e-4 * s)
}

fn up(ctx: &GpuContext, v: &[f32], shape: &[usize]) -> GpuTensor {
    ctx.upload(v, shape).unwrap()
}

fn down(ctx: &GpuContext, t: &GpuTensor) -> Vec<f32> {
    ctx.download(t).unwrap()
}

struct Inputs {
    d: RckvDims,
    k: Vec<f32>,
    v: Vec<f32>,
    dmat: Vec<f32>,
    u: Vec<f32>,
}

fn inputs(n: usize, dm: usize, latent: usize, seed: u64, kv_scale: f32) -> Inputs {
    let d = RckvDims { n, dm, latent };
    // Projections scaled like an init (≈ 1/√fan-in) so reconstructions stay O(|x|).
    let ps = 1.0 / (2.0 * dm as f32).sqrt();
    Inputs {
        d,
        k: random_vec(seed, n * dm, kv_scale),
        v: random_vec(seed + 1, n * dm, kv_scale),
        dmat: random_vec(seed + 2, d.proj_len(), ps),
        u: random_vec(seed + 3, d.proj_len(), 1.0 / (latent as f32).sqrt()),
    }
}

fn identity(w: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; w * w];
    (0..w).for_each(|i| m[i * w + i] = 1.0);
    m
}

/// A random orthogonal `w × w` matrix (Gram–Schmidt in f64 on random rows).
fn orthogonal(w: usize, seed: u64) -> Vec<f32> {
    let raw = random_vec(seed, w * w, 1.0);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for r in raw.chunks(w) {
        let mut v: Vec<f64> = r.iter().map(|&x| x as f64).collect();
        for q in &rows {
            let p: f64 = v.iter().zip(q).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(q).for_each(|(a, b)| *a -= p * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        rows.push(v.into_iter().map(|a| a / norm).collect());
    }
    rows.into_iter().flatten().map(|a| a as f32).collect()
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

#[test]
fn identity_projection_reproduces_kv_exactly() {
    let (n, dm) = (9, 5);
    let d = RckvDims {
        n,
        dm,
        latent: 2 * dm,
    };
    let k = random_vec(1, n * dm, 50.0);
    let v = random_vec(2, n * dm, 50.0);
    let eye = identity(2 * dm);
    let c = cpu::compress(&k, &v, &eye, &d).unwrap();
    let (kh, vh) = cpu::reconstruct(&c, &eye, &d).unwrap();
    assert_eq!((&kh, &vh), (&k, &v), "CPU identity round trip");
    let l = cpu::compression_loss(&k, &v, &eye, &eye, &d).unwrap();
    assert_eq!(l.loss, 0.0);
    let Some(ctx) = common::gpu("identity_projection_reproduces_kv_exactly") else {
        return;
    };
    let (gk, gv, ge) = (
        up(ctx, &k, &[n, dm]),
        up(ctx, &v, &[n, dm]),
        up(ctx, &eye, &[2 * dm, 2 * dm]),
    );
    let gc = gpu::compress(ctx, &gk, &gv, &ge).unwrap();
    let (kh, vh) = gpu::reconstruct(ctx, &gc, &ge).unwrap();
    assert_eq!(
        (down(ctx, &kh), down(ctx, &vh)),
        (k, v),
        "GPU identity round trip"
    );
}

#[test]
fn orthogonal_projection_reproduces_kv() {
    // |x| ≤ 1 and each output sums 2·dm = 16 products twice: error ≈ 32·u ≈ 2e-6.
    const ORTHO: Tol = Tol::new(2e-5, 1e-5);
    let (n, dm) = (11, 8);
    let d = RckvDims {
        n,
        dm,
        latent: 2 * dm,
    };
    let k = random_vec(3, n * dm, 1.0);
    let v = random_vec(4, n * dm, 1.0);
    let dmat = orthogonal(2 * dm, 5);
    let u = transpose(&dmat, 2 * dm, 2 * dm);
    let c = cpu::compress(&k, &v, &dmat, &d).unwrap();
    let (kh, vh) = cpu::reconstruct(&c, &u, &d).unwrap();
    common::assert_ok(compare("ortho k̂", &kh, &k, ORTHO));
    common::assert_ok(compare("ortho v̂", &vh, &v, ORTHO));
    let l = cpu::compression_loss(&k, &v, &dmat, &u, &d).unwrap();
    assert!(l.loss < 1e-10, "orthogonal loss {}", l.loss);
    let Some(ctx) = common::gpu("orthogonal_projection_reproduces_kv") else {
        return;
    };
    let gc = gpu::compress(
        ctx,
        &up(ctx, &k, &[n, dm]),
        &up(ctx, &v, &[n, dm]),
        &up(ctx, &dmat, &[2 * dm, 2 * dm]),
    )
    .unwrap();
    let (kh, vh) = gpu::reconstruct(ctx, &gc, &up(ctx, &u, &[2 * dm, 2 * dm])).unwrap();
    common::assert_ok(compare("gpu ortho k̂", &down(ctx, &kh), &k, ORTHO));
    common::assert_ok(compare("gpu ortho v̂", &down(ctx, &vh), &v, ORTHO));
}

#[test]
fn concat_and_split_are_exact_copies() {
    for &(n, dm) in &[(1, 1), (3, 7), (5, 130)] {
        let k = random_vec(20, n * dm, 9.0);
        let v = random_vec(21, n * dm, 9.0);
        let x = cpu::concat_kv(&k, &v, dm).unwrap();
        assert_eq!(&x[dm..2 * dm], &v[..dm]);
        assert_eq!(cpu::split_kv(&x, dm).unwrap(), (k.clone(), v.clone()));
        let Some(ctx) = common::gpu("concat_and_split_are_exact_copies") else {
            return;
        };
        let gx = gpu::concat_kv(ctx, &up(ctx, &k, &[n, dm]), &up(ctx, &v, &[n, dm])).unwrap();
        assert_eq!(down(ctx, &gx), x);
        let (gk, gv) = gpu::split_kv(ctx, &gx).unwrap();
        assert_eq!((down(ctx, &gk), down(ctx, &gv)), (k, v));
    }
}

#[test]
fn compress_and_reconstruct_match_cpu_forward_and_backward() {
    let Some(ctx) = common::gpu("compress_and_reconstruct_match_cpu_forward_and_backward") else {
        return;
    };
    for (i, &(n, dm, latent)) in SHAPES.iter().enumerate() {
        for kv_scale in [1.0f32, 1e3] {
            let x = inputs(n, dm, latent, 10 * i as u64, kv_scale);
            let d = x.d;
            let (gk, gv) = (up(ctx, &x.k, &[n, dm]), up(ctx, &x.v, &[n, dm]));
            let gd = up(ctx, &x.dmat, &[latent, 2 * dm]);
            let gu = up(ctx, &x.u, &[2 * dm, latent]);
            let what = format!("n={n} dm={dm} latent={latent} scale={kv_scale}");
            let red = n.max(2 * dm).max(latent);
            let tol = tol_for(red, kv_scale);

            let c = cpu::compress(&x.k, &x.v, &x.dmat, &d).unwrap();
            let gc = gpu::compress(ctx, &gk, &gv, &gd).unwrap();
            common::assert_ok(compare(&format!("c {what}"), &down(ctx, &gc), &c, tol));

            let (kh, vh) = cpu::reconstruct(&c, &x.u, &d).unwrap();
            let (gkh, gvh) = gpu::reconstruct(ctx, &gc, &gu).unwrap();
            common::assert_ok(compare(&format!("k̂ {what}"), &down(ctx, &gkh), &kh, tol));
            common::assert_ok(compare(&format!("v̂ {what}"), &down(ctx, &gvh), &vh, tol));

            let dkh = random_vec(77 + i as u64, n * dm, 1.0);
            let dvh = random_vec(78 + i as u64, n * dm, 1.0);
            let (dc, du) = cpu::reconstruct_backward(&c, &x.u, &dkh, &dvh, &d).unwrap();
            let (gdc, gdu) = gpu::reconstruct_backward(
                ctx,
                &gc,
                &gu,
                &up(ctx, &dkh, &[n, dm]),
                &up(ctx, &dvh, &[n, dm]),
            )
            .unwrap();
            common::assert_ok(compare(&format!("dc {what}"), &down(ctx, &gdc), &dc, tol));
            common::assert_ok(compare(&format!("dU {what}"), &down(ctx, &gdu), &du, tol));

            let gdc_in = up(ctx, &dc, &[n, latent]);
            let (dk, dv, dd) = cpu::compress_backward(&x.k, &x.v, &x.dmat, &dc, &d).unwrap();
            let (gdk, gdv, gdd) = gpu::compress_backward(ctx, &gk, &gv, &gd, &gdc_in).unwrap();
            common::assert_ok(compare(&format!("dk {what}"), &down(ctx, &gdk), &dk, tol));
            common::assert_ok(compare(&format!("dv {what}"), &down(ctx, &gdv), &dv, tol));
            common::assert_ok(compare(&format!("dD {what}"), &down(ctx, &gdd), &dd, tol));
        }
    }
}

#[test]
fn mse_and_compression_loss_match_cpu() {
    let Some(ctx) = common::gpu("mse_and_compression_loss_match_cpu") else {
        return;
    };
    // Lengths around the workgroup, 1, and a long vector (274 partials > one sum workgroup).
    for (i, &len) in [1usize, 255, 256, 257, 70_001].iter().enumerate() {
        let x = random_vec(200 + i as u64, len, 3.0);
        let xh = random_vec(300 + i as u64, len, 3.0);
        let (loss, g) = cpu::mse(&x, &xh).unwrap();
        let (gl, gg) = gpu::mse(ctx, &up(ctx, &x, &[len]), &up(ctx, &xh, &[len])).unwrap();
        common::assert_ok(compare(
            &format!("mse len={len}"),
            &down(ctx, &gl),
            &[loss],
            LOSS_TOL,
        ));
        // The gradient is one subtraction and one multiply per element.
        common::assert_ok(compare(
            "mse grad",
            &down(ctx, &gg),
            &g,
            Tol::new(1e-7, 1e-6),
        ));
    }
    for (i, &(n, dm, latent)) in SHAPES.iter().enumerate() {
        for kv_scale in [1.0f32, 1e3] {
            let x = inputs(n, dm, latent, 40 + i as u64, kv_scale);
            let d = x.d;
            let want = cpu::compression_loss(&x.k, &x.v, &x.dmat, &x.u, &d).unwrap();
            let got = gpu::compression_loss(
                ctx,
                &up(ctx, &x.k, &[n, dm]),
                &up(ctx, &x.v, &[n, dm]),
                &up(ctx, &x.dmat, &[latent, 2 * dm]),
                &up(ctx, &x.u, &[2 * dm, latent]),
            )
            .unwrap();
            let what = format!("n={n} dm={dm} latent={latent} scale={kv_scale}");
            // Loss and gradients scale like |x|² and |x|; normalise by the loss scale.
            let loss_tol = Tol::new(LOSS_TOL.atol * kv_scale * kv_scale, 1e-4);
            common::assert_ok(compare(
                &format!("loss {what}"),
                &down(ctx, &got.loss),
                &[want.loss],
                loss_tol,
            ));
            let red = n.max(2 * dm).max(latent);
            // dL/dx̂ is O(|x| / len); dD and dU multiply it by x or c (O(|x|) again), dk and dv
            // by the O(1) projections.
            let len = d.x_len() as f32;
            let tol_p = tol_for(red, kv_scale * kv_scale / len);
            let tol_x = tol_for(red, kv_scale / len);
            common::assert_ok(compare(
                &format!("dD {what}"),
                &down(ctx, &got.dd),
                &want.dd,
                tol_p,
            ));
            common::assert_ok(compare(
                &format!("dU {what}"),
                &down(ctx, &got.du),
                &want.du,
                tol_p,
            ));
            common::assert_ok(compare(
                &format!("dk {what}"),
                &down(ctx, &got.dk),
                &want.dk,
                tol_x,
            ));
            common::assert_ok(compare(
                &format!("dv {what}"),
                &down(ctx, &got.dv),
                &want.dv,
                tol_x,
            ));
        }
    }
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let x = inputs(4, 3, 2, 90, 1.0);
    let d = x.d;
    let c = cpu::compress(&x.k, &x.v, &x.dmat, &d).unwrap();
    let wc = random_vec(91, d.n * d.latent, 1.0);
    let (dk, dv, dd) = cpu::compress_backward(&x.k, &x.v, &x.dmat, &wc, &d).unwrap();
    let comp = |k: &[f32], v: &[f32], dm: &[f32]| dot64(&cpu::compress(k, v, dm, &d).unwrap(), &wc);
    common::assert_ok(grad_check("compress dk", &x.k, &dk, 1e-2, FD, |p| {
        comp(p, &x.v, &x.dmat)
    }));
    common::assert_ok(grad_check("compress dv", &x.v, &dv, 1e-2, FD, |p| {
        comp(&x.k, p, &x.dmat)
    }));
    common::assert_ok(grad_check("compress dD", &x.dmat, &dd, 1e-2, FD, |p| {
        comp(&x.k, &x.v, p)
    }));

    let wk = random_vec(92, d.n * d.dm, 1.0);
    let wv = random_vec(93, d.n * d.dm, 1.0);
    let (dc, du) = cpu::reconstruct_backward(&c, &x.u, &wk, &wv, &d).unwrap();
    let rec = |c: &[f32], u: &[f32]| {
        let (kh, vh) = cpu::reconstruct(c, u, &d).unwrap();
        dot64(&kh, &wk) + dot64(&vh, &wv)
    };
    common::assert_ok(grad_check("reconstruct dc", &c, &dc, 1e-2, FD, |p| {
        rec(p, &x.u)
    }));
    common::assert_ok(grad_check("reconstruct dU", &x.u, &du, 1e-2, FD, |p| {
        rec(&c, p)
    }));

    let xs = random_vec(94, 24, 1.0);
    let xh = random_vec(95, 24, 1.0);
    let (_, g) = cpu::mse(&xs, &xh).unwrap();
    common::assert_ok(grad_check("mse dx̂", &xh, &g, 1e-2, FD, |p| {
        cpu::mse(&xs, p).unwrap().0 as f64
    }));

    let l = cpu::compression_loss(&x.k, &x.v, &x.dmat, &x.u, &d).unwrap();
    let loss = |k: &[f32], v: &[f32], dm: &[f32], u: &[f32]| {
        cpu::compression_loss(k, v, dm, u, &d).unwrap().loss as f64
    };
    common::assert_ok(grad_check("loss dk", &x.k, &l.dk, 1e-2, FD, |p| {
        loss(p, &x.v, &x.dmat, &x.u)
    }));
    common::assert_ok(grad_check("loss dv", &x.v, &l.dv, 1e-2, FD, |p| {
        loss(&x.k, p, &x.dmat, &x.u)
    }));
    common::assert_ok(grad_check("loss dD", &x.dmat, &l.dd, 1e-2, FD, |p| {
        loss(&x.k, &x.v, p, &x.u)
    }));
    common::assert_ok(grad_check("loss dU", &x.u, &l.du, 1e-2, FD, |p| {
        loss(&x.k, &x.v, &x.dmat, p)
    }));
}

#[test]
fn bad_compression_shapes_are_errors_not_panics() {
    let x = inputs(3, 4, 2, 7, 1.0);
    let d = x.d;
    let short = &x.dmat[1..];
    assert!(cpu::compress(&x.k, &x.v, short, &d).is_err());
    assert!(cpu::compress(&x.k, &x.v[1..], &x.dmat, &d).is_err());
    assert!(cpu::reconstruct(&x.k, &x.u, &d).is_err());
    let zero = RckvDims { latent: 0, ..d };
    assert!(cpu::compress(&x.k, &x.v, &[], &zero).is_err());
    assert!(cpu::mse(&x.k, &x.v[1..]).is_err());
    assert!(cpu::concat_kv(&x.k, &x.v[1..], 4).is_err());
    assert!(cpu::concat_kv(&x.k, &x.v, 5).is_err());
    assert!(cpu::split_kv(&x.k, 5).is_err());
    let Some(ctx) = common::gpu("bad_compression_shapes_are_errors_not_panics") else {
        return;
    };
    let (gk, gv) = (up(ctx, &x.k, &[3, 4]), up(ctx, &x.v, &[3, 4]));
    // D for dm = 3 (width 6) against k, v with dm = 4.
    let wrong_d = up(ctx, &[0.0; 12], &[2, 6]);
    let err = gpu::compress(ctx, &gk, &gv, &wrong_d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rckv_compress"), "{err}");
    let c = up(ctx, &[0.0; 6], &[3, 2]);
    // U with latent 3 for latents of width 2.
    let wrong_u = up(ctx, &[0.0; 24], &[8, 3]);
    assert!(gpu::reconstruct(ctx, &c, &wrong_u).is_err());
    assert!(gpu::compress(ctx, &gk, &up(ctx, &x.v, &[4, 3]), &wrong_d).is_err());
    assert!(gpu::mse(ctx, &gk, &c).is_err());
}
