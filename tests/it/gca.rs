//! GCA kernels: wgpu forward/backward and the fast f32 CPU path vs the CPU reference (f64
//! accumulation), the reference backward vs central finite differences, and shape/causality
//! errors.

use crate::common;

use dsrsq::device::GpuContext;
use dsrsq::kernels::check::{compare, dot64, grad_check, random_vec, Tol};
use dsrsq::kernels::gca::{cpu, gpu, GcaDims, NONE};
use rand::{Rng, SeedableRng};

/// f32 kernels against an f64 reference: sums of up to (K+2)·S·d f32 products and exps
/// with a few ulps of driver error (the attention family's tolerance).
const TOL: Tol = Tol::new(1e-4, 1e-3);
/// The fast f32 CPU path against the f64 reference: the same f32 sums as the GPU kernels
/// (dot products over d, softmax sums over ≤ (K+2)·S keys, dk/dv sums over their readers),
/// so the GPU tolerance applies; no driver error, but CPU `exp` and summation order differ.
const FAST_CPU: Tol = Tol::new(1e-4, 1e-3);
/// Central differences with eps 1e-2 of an f64 loss over f32 forward outputs.
const FD: Tol = Tol::new(1e-3, 1e-2);
const FD_EPS: f32 = 1e-2;

fn dims(b: usize, heads: usize, l: usize, d: usize, chunk: usize, top_k: usize) -> GcaDims {
    GcaDims {
        bh: b * heads,
        heads,
        l,
        d,
        chunk,
        top_k,
    }
}

/// A valid random retrieval: distinct chunks `≤ c − 2` per slot (NONE when too few), and
/// softmax weights over the filled slots.
fn retrieval(dm: &GcaDims, seed: u64) -> (Vec<u32>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (nc, kk) = (dm.n_chunks(), dm.top_k);
    let mut sel = vec![NONE; dm.sel_len()];
    let mut w = vec![0f32; dm.sel_len()];
    for bi in 0..dm.b() {
        for c in 0..nc {
            let mut pool: Vec<u32> = (0..c.saturating_sub(1) as u32).collect();
            let row = (bi * nc + c) * kk;
            let scores: Vec<f32> = (0..kk).map(|_| rng.random_range(-2.0..2.0)).collect();
            let mut z = 0.0;
            for k in 0..kk.min(pool.len()) {
                let pick = rng.random_range(0..pool.len());
                sel[row + k] = pool.swap_remove(pick);
                w[row + k] = scores[k].exp();
                z += w[row + k];
            }
            for x in &mut w[row..row + kk] {
                *x /= z.max(f32::MIN_POSITIVE);
            }
        }
    }
    (sel, w)
}

/// q, k rounded to integers when `amp > 1` so q·k is exact in f32 (see tests/it/attention.rs).
fn qkv(dm: &GcaDims, amp: f32, seed: u64) -> [Vec<f32>; 4] {
    let n = dm.bh * dm.l * dm.d;
    let round = |x: Vec<f32>| -> Vec<f32> {
        if amp > 1.0 {
            x.into_iter().map(f32::round).collect()
        } else {
            x
        }
    };
    [
        round(random_vec(seed, n, amp)),
        round(random_vec(seed + 1, n, amp)),
        random_vec(seed + 2, n, 1.0),
        random_vec(seed + 3, n, 1.0),
    ]
}

fn check_case(ctx: &GpuContext, dm: GcaDims, amp: f32, seed: u64) {
    let [q, k, v, dout] = qkv(&dm, amp, seed);
    let (sel, w) = retrieval(&dm, seed + 7);
    let tag = format!("{dm:?} amp={amp}");
    let shape = [dm.bh, dm.l, dm.d];
    let up = |x: &[f32]| ctx.upload(x, &shape).unwrap();
    let (gq, gk, gv, gdo) = (up(&q), up(&k), up(&v), up(&dout));
    let gw = ctx.upload(&w, &[dm.b(), dm.n_chunks(), dm.top_k]).unwrap();
    let go = gpu::gca_forward(ctx, &gq, &gk, &gv, &sel, &gw, &dm).unwrap();
    let o_ref = cpu::forward_ref(&q, &k, &v, &sel, &w, &dm).unwrap();
    common::assert_ok(compare(
        &format!("o {tag}"),
        &ctx.download(&go).unwrap(),
        &o_ref,
        TOL,
    ));
    let g = gpu::gca_backward(ctx, &gq, &gk, &gv, &gdo, &sel, &gw, &dm).unwrap();
    let want = cpu::backward_ref(&q, &k, &v, &dout, &sel, &w, &dm).unwrap();
    for (what, got, w) in [
        ("dq", &g.0, &want.0),
        ("dk", &g.1, &want.1),
        ("dv", &g.2, &want.2),
        ("dw", &g.3, &want.3),
    ] {
        let got = ctx.download(got).unwrap();
        common::assert_ok(compare(&format!("{what} {tag}"), &got, w, TOL));
    }
}

#[test]
fn gpu_matches_reference_over_shapes() {
    let Some(ctx) = common::gpu("gpu_matches_reference_over_shapes") else {
        return;
    };
    // Sizes 1, lengths not multiples of the chunk or of the workgroup (64), chunk 1, top_k
    // larger than the past, d above 64.
    let cases = [
        dims(1, 1, 1, 1, 1, 1),
        dims(1, 2, 17, 8, 4, 2),
        dims(2, 1, 33, 5, 3, 3),
        dims(1, 1, 9, 4, 1, 4),
        dims(2, 2, 70, 3, 8, 2),
        dims(1, 1, 20, 65, 5, 2),
    ];
    for (i, dm) in cases.into_iter().enumerate() {
        check_case(ctx, dm, 1.0, 10 * i as u64);
    }
}

#[test]
fn gpu_matches_reference_with_large_values() {
    let Some(ctx) = common::gpu("gpu_matches_reference_with_large_values") else {
        return;
    };
    check_case(ctx, dims(1, 2, 26, 8, 4, 2), 8.0, 99);
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let dm = dims(2, 2, 11, 3, 3, 2);
    let [q, k, v, r] = qkv(&dm, 1.0, 5);
    let (sel, w) = retrieval(&dm, 6);
    let (dq, dk, dv, dw) = cpu::backward_ref(&q, &k, &v, &r, &sel, &w, &dm).unwrap();
    let loss = |q: &[f32], k: &[f32], v: &[f32], w: &[f32]| {
        dot64(&cpu::forward_ref(q, k, v, &sel, w, &dm).unwrap(), &r)
    };
    common::assert_ok(grad_check("dq", &q, &dq, FD_EPS, FD, |x| {
        loss(x, &k, &v, &w)
    }));
    common::assert_ok(grad_check("dk", &k, &dk, FD_EPS, FD, |x| {
        loss(&q, x, &v, &w)
    }));
    common::assert_ok(grad_check("dv", &v, &dv, FD_EPS, FD, |x| {
        loss(&q, &k, x, &w)
    }));
    common::assert_ok(grad_check("dw", &w, &dw, FD_EPS, FD, |x| {
        loss(&q, &k, &v, x)
    }));
    // Chunks 0 and 1 have nothing to retrieve, so some slots are empty and get no gradient.
    assert!(sel.iter().zip(&dw).any(|(&s, &g)| s == NONE && g == 0.0));
}

#[test]
fn bad_shapes_and_non_causal_retrieval_are_errors() {
    let dm = dims(1, 2, 12, 4, 4, 2);
    let [q, k, v, dout] = qkv(&dm, 1.0, 1);
    let (sel, w) = retrieval(&dm, 2);
    assert!(cpu::forward(&q[1..], &k, &v, &sel, &w, &dm).is_err());
    assert!(cpu::forward(&q, &k, &v, &sel[1..], &w, &dm).is_err());
    assert!(cpu::backward(&q, &k, &v, &dout, &sel, &w[1..], &dm).is_err());
    // Chunk 2 may read chunk 0 only: chunk 1 is inside its local window.
    let mut leak = sel.clone();
    leak[2 * dm.top_k] = 1;
    assert!(cpu::forward(&q, &k, &v, &leak, &w, &dm).is_err());
    assert!(cpu::forward(&q, &k, &v, &sel, &w, &GcaDims { heads: 3, ..dm }).is_err());
    assert!(cpu::forward(&q, &k, &v, &sel, &w, &GcaDims { d: 0, ..dm }).is_err());
    let Some(ctx) = common::gpu("bad_shapes_and_non_causal_retrieval_are_errors") else {
        return;
    };
    let up = |x: &[f32], s: &[usize]| ctx.upload(x, s).unwrap();
    let (gq, gk, gv) = (
        up(&q, &[2, 12, 4]),
        up(&k, &[2, 12, 4]),
        up(&v, &[2, 12, 4]),
    );
    let gw = up(&w, &[w.len()]);
    let wrong = up(&q, &[2, 4, 12]);
    assert!(gpu::gca_forward(ctx, &wrong, &gk, &gv, &sel, &gw, &dm).is_err());
    assert!(gpu::gca_forward(ctx, &gq, &gk, &gv, &leak, &gw, &dm).is_err());
    assert!(gpu::gca_backward(ctx, &gq, &gk, &gv, &wrong, &sel, &gw, &dm).is_err());
    assert!(gpu::gca_forward(ctx, &gq, &gk, &gv, &sel, &gw, &dm).is_ok());
}

#[test]
fn local_only_equals_windowed_softmax() {
    // With every slot empty, o is plain causal attention over the window [(c−1)·S, t]; with
    // a chunk larger than l that is dense causal attention.
    let dm = dims(1, 1, 10, 4, 16, 1);
    let [q, k, v, _] = qkv(&dm, 1.0, 3);
    let sel = vec![NONE; dm.sel_len()];
    let w = vec![0.0; dm.sel_len()];
    let o = cpu::forward_ref(&q, &k, &v, &sel, &w, &dm).unwrap();
    let (dense, _) = dsrsq::kernels::attention::cpu::attention_forward_ref(&q, &k, &v, 1, 10, 4);
    common::assert_ok(compare("local vs dense", &o, &dense, TOL));
}

#[test]
fn fast_cpu_matches_reference() {
    // Size 1, lengths not multiples of the chunk or of the 8 dot-product lanes, chunk 1,
    // top_k larger than the past, d above and below 8, and large (integer) q, k.
    let cases = [
        (dims(1, 1, 1, 1, 1, 1), 1.0),
        (dims(1, 2, 17, 8, 4, 2), 1.0),
        (dims(2, 1, 33, 5, 3, 3), 1.0),
        (dims(1, 1, 9, 4, 1, 4), 1.0),
        (dims(2, 2, 70, 3, 8, 2), 1.0),
        (dims(1, 1, 20, 65, 5, 2), 1.0),
        (dims(3, 2, 101, 19, 7, 5), 1.0),
        (dims(1, 2, 26, 8, 4, 2), 8.0),
        (dims(2, 1, 45, 12, 6, 3), 8.0),
    ];
    for (i, (dm, amp)) in cases.into_iter().enumerate() {
        let seed = 1000 + 10 * i as u64;
        let [q, k, v, dout] = qkv(&dm, amp, seed);
        let (sel, w) = retrieval(&dm, seed + 7);
        let tag = format!("{dm:?} amp={amp}");
        let o = cpu::forward(&q, &k, &v, &sel, &w, &dm).unwrap();
        let o_ref = cpu::forward_ref(&q, &k, &v, &sel, &w, &dm).unwrap();
        common::assert_ok(compare(&format!("o {tag}"), &o, &o_ref, FAST_CPU));
        let got = cpu::backward(&q, &k, &v, &dout, &sel, &w, &dm).unwrap();
        let want = cpu::backward_ref(&q, &k, &v, &dout, &sel, &w, &dm).unwrap();
        for (what, g, r) in [
            ("dq", &got.0, &want.0),
            ("dk", &got.1, &want.1),
            ("dv", &got.2, &want.2),
            ("dw", &got.3, &want.3),
        ] {
            common::assert_ok(compare(&format!("{what} {tag}"), g, r, FAST_CPU));
        }
        // Empty slots get exactly zero, like the reference.
        for (&s, &g) in sel.iter().zip(&got.3) {
            assert!(s != NONE || g == 0.0, "{tag}: dw of an empty slot is {g}");
        }
    }
}

#[test]
fn fast_cpu_is_independent_of_the_thread_count() {
    // Per-row / per-head ownership and a head-ordered dw sum: one thread and the default
    // pool must give bit-identical results.
    let dm = dims(2, 3, 57, 16, 6, 3);
    let [q, k, v, dout] = qkv(&dm, 1.0, 77);
    let (sel, w) = retrieval(&dm, 78);
    let run = || {
        let o = cpu::forward(&q, &k, &v, &sel, &w, &dm).unwrap();
        (o, cpu::backward(&q, &k, &v, &dout, &sel, &w, &dm).unwrap())
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(run);
    assert!(one == many, "fast GCA results depend on the thread count");
}
