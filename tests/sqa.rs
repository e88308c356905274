//! SQA: exactness against dense attention, fast CPU path vs the plain-loop references,
//! finite differences, recall, errors; and every WGSL kernel against its CPU reference.

mod common;

use dsrsq::kernels::attention::cpu as dense;
use dsrsq::kernels::check::{compare, dot64, finite_diff, random_vec, Tol};
use dsrsq::kernels::sqa::{cpu, CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};

/// f32 products and sums (gemm tiles, a polynomial exp with 2e-7 relative error, f32 merges
/// of partial softmaxes) against f64 references: the tolerance of the dense attention tests.
const TOL: Tol = Tol::new(1e-4, 1e-3);
/// Central differences with eps 1e-2 of an f64 loss over f32 forward outputs.
const FD: Tol = Tol::new(1e-3, 1e-2);

/// Standard normal samples (Box–Muller over the crate's seeded uniforms).
fn gauss(seed: u64, len: usize) -> Vec<f32> {
    let u = random_vec(seed, 2 * len, 1.0);
    let pairs = u.chunks_exact(2).map(|p| {
        let (a, b) = ((f64::from(p[0]) + 1.0) / 2.0, (f64::from(p[1]) + 1.0) / 2.0);
        let r = (-2.0 * (1.0 - a).ln()).sqrt();
        (r * (2.0 * std::f64::consts::PI * b).cos()) as f32
    });
    pairs.collect()
}

/// Inputs on which every clustering decision is exact in f32 on any device: keys are positive
/// integer multiples of one of `protos` one-hot directions (so normalized keys are exactly
/// one-hot and centroid scores are sums of few exact terms), queries small integers. Ties are
/// then exact or f32-rounding-level, and the tie rule resolves both the same way everywhere.
fn exact_inputs(seed: u64, s: SqaShape, protos: usize) -> (Vec<f32>, Vec<f32>) {
    let len = s.bh * s.n * s.d;
    let u = random_vec(seed, 2 * s.bh * s.n, 1.0);
    let mut k = vec![0.0_f32; len];
    for (r, key) in k.chunks_exact_mut(s.d).enumerate() {
        let p = ((u[2 * r] + 1.0) / 2.0 * protos as f32) as usize % protos.min(s.d);
        key[p] = 1.0 + ((u[2 * r + 1] + 1.0) * 1.5).floor();
    }
    let q = random_vec(seed + 1, len, 3.5)
        .into_iter()
        .map(f32::round)
        .collect();
    (q, k)
}

fn cfg(clusters: usize, top_k: usize, window: usize, sink: usize, iters: usize) -> SqaConfig {
    SqaConfig {
        clusters,
        top_k,
        window,
        sink,
        iters,
    }
}

fn shape(bh: usize, n: usize, d: usize) -> SqaShape {
    SqaShape { bh, n, d }
}

type Qkv = (Vec<f32>, Vec<f32>, Vec<f32>);

fn qkv(seed: u64, s: SqaShape) -> Qkv {
    let len = s.bh * s.n * s.d;
    (gauss(seed, len), gauss(seed + 1, len), gauss(seed + 2, len))
}

/// Fast and reference forward + backward on the given clusters, compared with each other (and
/// with dense attention when `dense_too`).
fn check_fast_vs_ref(
    tag: &str,
    (q, k, v): &Qkv,
    cl: &CpuClusters,
    c: &SqaConfig,
    s: SqaShape,
    dense_too: bool,
) {
    let x = (&q[..], &k[..], &v[..]);
    let dout = gauss(999, q.len());
    let (o_ref, lse_ref) = cpu::sqa_forward_ref(x, cl, c, s).unwrap();
    let (o, lse) = cpu::sqa_forward(x, cl, c, s).unwrap();
    common::assert_ok(compare(&format!("o {tag}"), &o, &o_ref, TOL));
    common::assert_ok(compare(&format!("lse {tag}"), &lse, &lse_ref, TOL));
    let saved = (&o_ref[..], &lse_ref[..], &dout[..]);
    let want = cpu::sqa_backward_ref(x, saved, cl, c, s).unwrap();
    let got = cpu::sqa_backward(x, saved, cl, c, s).unwrap();
    for (what, g, w) in [
        ("dq", &got.0, &want.0),
        ("dk", &got.1, &want.1),
        ("dv", &got.2, &want.2),
    ] {
        common::assert_ok(compare(&format!("{what} {tag}"), g, w, TOL));
    }
    if dense_too {
        let (od, lsed) = dense::attention_forward_ref(q, k, v, s.bh, s.n, s.d);
        common::assert_ok(compare(&format!("o vs dense {tag}"), &o_ref, &od, TOL));
        common::assert_ok(compare(
            &format!("lse vs dense {tag}"),
            &lse_ref,
            &lsed,
            TOL,
        ));
        let gd = dense::attention_backward_ref(q, k, v, &od, &lsed, &dout, s.bh, s.n, s.d);
        for (what, g, w) in [
            ("dq", &want.0, &gd.0),
            ("dk", &want.1, &gd.1),
            ("dv", &want.2, &gd.2),
        ] {
            common::assert_ok(compare(&format!("{what} vs dense {tag}"), g, w, TOL));
        }
    }
}

#[test]
fn all_clusters_equals_dense_attention_cpu() {
    let cases = [
        (2, 37, 8, 4, 3, 2),
        (1, 70, 16, 7, 0, 0),
        (3, 5, 4, 8, 1, 1),
        (1, 1, 3, 2, 0, 0),
    ];
    for (i, &(bh, n, d, c, w, sink)) in cases.iter().enumerate() {
        let s = shape(bh, n, d);
        let x = qkv(10 * i as u64, s);
        for top_k in [c, c + 3] {
            let cf = cfg(c, top_k, w, sink, 2);
            let cl = cpu::cluster(&x.0, &x.1, &cf, s).unwrap();
            check_fast_vs_ref(&format!("case {i} top_k {top_k}"), &x, &cl, &cf, s, true);
        }
    }
}

#[test]
fn fast_cpu_matches_reference_over_shapes() {
    let cases = [
        (shape(2, 130, 16), cfg(4, 2, 8, 3, 2)),
        (shape(1, 65, 64), cfg(5, 1, 4, 0, 1)),
        (shape(1, 300, 8), cfg(16, 3, 16, 4, 2)),
        (shape(2, 17, 3), cfg(4, 1, 40, 2, 2)),  // window ≥ n
        (shape(1, 20, 5), cfg(3, 2, 2, 25, 2)),  // sink ≥ n
        (shape(1, 33, 1), cfg(6, 2, 0, 0, 0)),   // no window, no sink, d = 1
        (shape(3, 1, 7), cfg(4, 2, 1, 1, 2)),    // n = 1
        (shape(1, 6, 4), cfg(9, 4, 1, 0, 2)),    // n < C
        (shape(1, 700, 16), cfg(3, 1, 5, 2, 2)), // clusters with > KC keys
    ];
    for (i, (s, c)) in cases.into_iter().enumerate() {
        let x = qkv(100 + 7 * i as u64, s);
        let cl = cpu::cluster(&x.0, &x.1, &c, s).unwrap();
        check_fast_vs_ref(&format!("case {i} {s:?} {c:?}"), &x, &cl, &c, s, false);
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let (s, c) = (shape(1, 9, 3), cfg(3, 1, 2, 1, 2));
    let (q, k, v) = qkv(77, s);
    let w = random_vec(78, q.len(), 1.0);
    // The clustering is a constant of the backward: fix it at the unperturbed inputs.
    let cl = cpu::cluster_ref(&q, &k, &c, s).unwrap();
    let x = (&q[..], &k[..], &v[..]);
    let (o, lse) = cpu::sqa_forward_ref(x, &cl, &c, s).unwrap();
    let grads = cpu::sqa_backward_ref(x, (&o, &lse, &w), &cl, &c, s).unwrap();
    for (which, grad) in [&grads.0, &grads.1, &grads.2].into_iter().enumerate() {
        let base = [&q, &k, &v][which];
        let fd = finite_diff(base, 1e-2, None, |xp| {
            let mut x = [q.clone(), k.clone(), v.clone()];
            x[which] = xp.to_vec();
            let out = cpu::sqa_forward_ref((&x[0], &x[1], &x[2]), &cl, &c, s).unwrap();
            dot64(&out.0, &w)
        });
        let numeric: Vec<f32> = fd.into_iter().map(|(_, g)| g).collect();
        common::assert_ok(compare(["dq", "dk", "dv"][which], grad, &numeric, FD));
    }
}

#[test]
fn recall_is_one_with_all_clusters_and_in_unit_interval_otherwise() {
    let s = shape(2, 90, 8);
    let (q, k, v) = qkv(5, s);
    for (top_k, window, sink) in [(4, 2, 1), (1, 2, 1), (2, 0, 0)] {
        let c = cfg(4, top_k, window, sink, 2);
        let cl = cpu::cluster(&q, &k, &c, s).unwrap();
        let want = cpu::recall_ref((&q, &k), &cl, &c, s).unwrap();
        let (_, lse) = cpu::sqa_forward((&q, &k, &v), &cl, &c, s).unwrap();
        let got = cpu::recall((&q, &k, &v), &lse, &c, s).unwrap();
        common::assert_ok(compare(&format!("recall top_k {top_k}"), &got, &want, TOL));
        for &r in &want {
            if top_k >= 4 {
                assert!((r - 1.0).abs() < 1e-6, "recall {r} with all clusters");
            } else {
                assert!(
                    r > 0.0 && r < 1.0,
                    "recall {r} outside (0, 1) with top_k {top_k}"
                );
            }
        }
    }
}

/// Clusterings of the exact inputs: n < C, n = 1, all keys identical, empty clusters, n not a
/// multiple of the workgroup size. `(shape, config, prototypes)`.
fn exact_cases() -> Vec<(SqaShape, SqaConfig, usize)> {
    vec![
        (shape(2, 100, 8), cfg(6, 2, 4, 2, 2), 8),
        (shape(1, 5, 8), cfg(8, 3, 1, 1, 2), 8),     // n < C
        (shape(3, 1, 4), cfg(4, 2, 1, 0, 2), 4),     // n = 1
        (shape(1, 77, 6), cfg(5, 2, 3, 1, 3), 1),    // all keys identical in direction
        (shape(2, 131, 16), cfg(12, 4, 8, 4, 2), 3), // most clusters empty
        (shape(1, 67, 32), cfg(9, 9, 2, 2, 0), 32),  // iters = 0, top_k = C
    ]
}

#[test]
fn fast_clustering_matches_reference_exactly() {
    for (i, (s, c, protos)) in exact_cases().into_iter().enumerate() {
        let (q, k) = exact_inputs(300 + i as u64, s, protos);
        let want = cpu::cluster_ref(&q, &k, &c, s).unwrap();
        let got = cpu::cluster(&q, &k, &c, s).unwrap();
        let tag = format!("case {i} {s:?}");
        assert_eq!(got.assign, want.assign, "assign {tag}");
        assert_eq!(got.offsets, want.offsets, "offsets {tag}");
        assert_eq!(got.order, want.order, "order {tag}");
        assert_eq!(got.routes, want.routes, "routes {tag}");
        common::assert_ok(compare(
            &tag,
            &got.centroids,
            &want.centroids,
            Tol::new(1e-6, 1e-6),
        ));
    }
}

#[test]
fn clustering_invariants_hold_on_gaussian_inputs() {
    let (s, c) = (shape(2, 500, 16), cfg(8, 3, 4, 2, 2));
    let (q, k, _) = qkv(9, s);
    let cl = cpu::cluster(&q, &k, &c, s).unwrap();
    let kk = c.routes();
    for b in 0..s.bh {
        let off = &cl.offsets[b * 9..][..9];
        let ord = &cl.order[b * s.n..][..s.n];
        let mut seen = vec![false; s.n];
        for ci in 0..8 {
            for &j in &ord[off[ci] as usize..off[ci + 1] as usize] {
                assert_eq!(cl.assign[b * s.n + j as usize] as usize, ci);
                seen[j as usize] = true;
            }
        }
        assert!(seen.iter().all(|&x| x), "order is a permutation");
        for i in 0..s.n {
            let r = &cl.routes[(b * s.n + i) * kk..][..kk];
            assert_ne!(r[0], NO_CLUSTER, "query {i} has a route");
            for &ci in r.iter().filter(|&&x| x != NO_CLUSTER) {
                let first = ord[off[ci as usize] as usize] as usize;
                assert!(first <= i, "route {ci} of query {i} is not eligible");
            }
        }
    }
}

#[test]
fn cpu_config_and_shape_errors_are_errors() {
    let s = shape(1, 4, 2);
    let x = vec![0.5_f32; 8];
    let ok = cfg(2, 1, 1, 1, 1);
    for (bad, what) in [
        (cfg(0, 1, 1, 1, 1), "clusters"),
        (cfg(2, 0, 1, 1, 1), "top_k"),
    ] {
        let err = cpu::cluster(&x, &x, &bad, s).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
    assert!(cpu::cluster(&x[..7], &x, &ok, s).is_err());
    assert!(cpu::cluster(&x, &x, &ok, shape(1, 4, 0)).is_err());
    let mut cl = cpu::cluster(&x, &x, &ok, s).unwrap();
    assert!(cpu::sqa_forward((&x, &x, &x), &cl, &ok, s).is_ok());
    cl.routes[0] = 7;
    let err = cpu::sqa_forward((&x, &x, &x), &cl, &ok, s).unwrap_err();
    assert!(err.to_string().contains("routes"), "{err}");
    let other = cfg(3, 1, 1, 1, 1);
    assert!(cpu::sqa_backward((&x, &x, &x), (&x, &x[..4], &x), &cl, &other, s).is_err());
}

// ---------------------------------------------------------------- GPU

use dsrsq::device::GpuContext;
use dsrsq::kernels::sqa::gpu::{self, GpuClusters};

fn up(ctx: &GpuContext, x: &[f32], s: SqaShape) -> dsrsq::device::GpuTensor {
    ctx.upload(x, &[s.bh, s.n, s.d]).unwrap()
}

fn upload_clusters(ctx: &GpuContext, cl: &CpuClusters, c: &SqaConfig, s: SqaShape) -> GpuClusters {
    let u = |x: &[u32], shape: &[usize]| ctx.upload_u32(x, shape).unwrap();
    GpuClusters {
        centroids: ctx.upload(&cl.centroids, &[s.bh, c.clusters, s.d]).unwrap(),
        assign: u(&cl.assign, &[s.bh, s.n]),
        offsets: u(&cl.offsets, &[s.bh, c.clusters + 1]),
        order: u(&cl.order, &[s.bh, s.n]),
        routes: u(&cl.routes, &[s.bh, s.n, c.routes()]),
    }
}

fn download_clusters(ctx: &GpuContext, g: &GpuClusters) -> CpuClusters {
    let u = |t| ctx.download_u32(t).unwrap();
    CpuClusters {
        centroids: ctx.download(&g.centroids).unwrap(),
        assign: u(&g.assign),
        offsets: u(&g.offsets),
        order: u(&g.order),
        routes: u(&g.routes),
    }
}

/// GPU forward and backward on the given clusters against the CPU references (and against
/// dense attention when `dense_too`).
fn check_gpu_attention(
    ctx: &GpuContext,
    tag: &str,
    x: &Qkv,
    cl: &CpuClusters,
    c: &SqaConfig,
    s: SqaShape,
    dense_too: bool,
) {
    let (q, k, v) = (&x.0[..], &x.1[..], &x.2[..]);
    let dout = gauss(4242, q.len());
    let (o_ref, lse_ref) = cpu::sqa_forward_ref((q, k, v), cl, c, s).unwrap();
    let saved = (&o_ref[..], &lse_ref[..], &dout[..]);
    let want = cpu::sqa_backward_ref((q, k, v), saved, cl, c, s).unwrap();
    let (gq, gk, gv) = (up(ctx, q, s), up(ctx, k, s), up(ctx, v, s));
    let gcl = upload_clusters(ctx, cl, c, s);
    let (go, glse) = gpu::sqa_forward(ctx, (&gq, &gk, &gv), &gcl, c).unwrap();
    let o = ctx.download(&go).unwrap();
    common::assert_ok(compare(&format!("gpu o {tag}"), &o, &o_ref, TOL));
    let lse = ctx.download(&glse).unwrap();
    common::assert_ok(compare(&format!("gpu lse {tag}"), &lse, &lse_ref, TOL));
    // The backward gets the reference o/lse so that it is judged on its own error.
    let (go, glse) = (
        up(ctx, &o_ref, s),
        ctx.upload(&lse_ref, &[s.bh, s.n]).unwrap(),
    );
    let saved = (&go, &glse, &up(ctx, &dout, s));
    let got = gpu::sqa_backward(ctx, (&gq, &gk, &gv), saved, &gcl, c).unwrap();
    for (what, g, w) in [
        ("dq", &got.0, &want.0),
        ("dk", &got.1, &want.1),
        ("dv", &got.2, &want.2),
    ] {
        let g = ctx.download(g).unwrap();
        common::assert_ok(compare(&format!("gpu {what} {tag}"), &g, w, TOL));
    }
    if dense_too {
        let (od, lsed) = dense::attention_forward_ref(q, k, v, s.bh, s.n, s.d);
        common::assert_ok(compare(&format!("gpu o vs dense {tag}"), &o, &od, TOL));
        common::assert_ok(compare(
            &format!("gpu lse vs dense {tag}"),
            &lse,
            &lsed,
            TOL,
        ));
        let gd = dense::attention_backward_ref(q, k, v, &od, &lsed, &dout, s.bh, s.n, s.d);
        for (what, g, w) in [
            ("dq", &got.0, &gd.0),
            ("dk", &got.1, &gd.1),
            ("dv", &got.2, &gd.2),
        ] {
            let g = ctx.download(g).unwrap();
            common::assert_ok(compare(&format!("gpu {what} vs dense {tag}"), &g, w, TOL));
        }
    }
}

#[test]
fn gpu_all_clusters_equals_dense_attention() {
    let Some(ctx) = common::gpu("gpu_all_clusters_equals_dense_attention") else {
        return;
    };
    for (i, &(bh, n, d, c, w, sink)) in [
        (2, 70, 8, 4, 3, 2),
        (1, 33, 65, 5, 0, 0),
        (1, 3, 4, 6, 1, 1),
    ]
    .iter()
    .enumerate()
    {
        let s = shape(bh, n, d);
        let x = qkv(500 + i as u64, s);
        let cf = cfg(c, c, w, sink, 2);
        let gcl = gpu::cluster(ctx, &up(ctx, &x.0, s), &up(ctx, &x.1, s), &cf).unwrap();
        let cl = download_clusters(ctx, &gcl);
        check_gpu_attention(ctx, &format!("case {i}"), &x, &cl, &cf, s, true);
    }
}

#[test]
fn gpu_clustering_matches_cpu_reference_exactly() {
    let Some(ctx) = common::gpu("gpu_clustering_matches_cpu_reference_exactly") else {
        return;
    };
    for (i, (s, c, protos)) in exact_cases().into_iter().enumerate() {
        let (q, k) = exact_inputs(300 + i as u64, s, protos);
        let want = cpu::cluster_ref(&q, &k, &c, s).unwrap();
        let got = download_clusters(
            ctx,
            &gpu::cluster(ctx, &up(ctx, &q, s), &up(ctx, &k, s), &c).unwrap(),
        );
        let tag = format!("case {i} {s:?}");
        assert_eq!(got.assign, want.assign, "assign {tag}");
        assert_eq!(got.offsets, want.offsets, "offsets {tag}");
        assert_eq!(got.order, want.order, "order {tag}");
        assert_eq!(got.routes, want.routes, "routes {tag}");
        // Centroids are sums of few exact terms over a norm: a few ulps of sqrt and division.
        common::assert_ok(compare(
            &tag,
            &got.centroids,
            &want.centroids,
            Tol::new(1e-6, 1e-6),
        ));
    }
}

/// An arg-max decision of the GPU that differs from the CPU's is accepted only when the two
/// candidates' scores (f64) are within `NEAR_TIE`: then f32 rounding can decide either way.
const NEAR_TIE: f64 = 1e-4;

fn score64(x: &[f32], y: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

#[test]
fn gpu_clustering_steps_match_cpu_on_gaussian_inputs() {
    let Some(ctx) = common::gpu("gpu_clustering_steps_match_cpu_on_gaussian_inputs") else {
        return;
    };
    for (i, (s, c)) in [
        (shape(2, 130, 16), 7),
        (shape(1, 65, 3), 5),
        (shape(1, 4, 8), 9),
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("case {i} {s:?}");
        let (q, k, _) = qkv(700 + i as u64, s);
        let khat = cpu::normalize_keys_ref(&k, s.d);
        let gkhat = gpu::normalize_keys(ctx, &up(ctx, &k, s)).unwrap();
        common::assert_ok(compare(
            &format!("khat {tag}"),
            &ctx.download(&gkhat).unwrap(),
            &khat,
            Tol::new(1e-6, 1e-5),
        ));
        let gkhat = up(ctx, &khat, s);
        let cent = cpu::kmeans_init_ref(&khat, s, c);
        let gcent = gpu::kmeans_init(ctx, &gkhat, c).unwrap();
        assert_eq!(ctx.download(&gcent).unwrap(), cent, "init {tag}");
        // Perturbed centroids so that the assignment is not trivially the init keys.
        let mut cent = cent;
        let noise = gauss(9, cent.len());
        cent.iter_mut().zip(noise).for_each(|(x, g)| *x += 0.3 * g);
        let gcent = ctx.upload(&cent, &[s.bh, c, s.d]).unwrap();
        let want = cpu::kmeans_assign_ref(&khat, &cent, s, c);
        let got = ctx
            .download_u32(&gpu::kmeans_assign(ctx, &gkhat, &gcent).unwrap())
            .unwrap();
        for (r, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let key = &khat[r * s.d..][..s.d];
            let b = r / s.n;
            let sc = |a: u32| score64(key, &cent[(b * c + a as usize) * s.d..][..s.d]);
            assert!(
                g == w || (sc(g) - sc(w)).abs() < NEAR_TIE,
                "assign {tag} key {r}: {g} vs {w}"
            );
        }
        let assign = want;
        let gassign = ctx.upload_u32(&assign, &[s.bh, s.n]).unwrap();
        gpu::kmeans_update(ctx, &gkhat, &gassign, &gcent).unwrap();
        cpu::kmeans_update_ref(&khat, &assign, &mut cent, s, c);
        common::assert_ok(compare(
            &format!("update {tag}"),
            &ctx.download(&gcent).unwrap(),
            &cent,
            Tol::new(1e-6, 1e-5),
        ));
        let (off, ord) = cpu::cluster_sort_ref(&assign, s.bh, s.n, c);
        let (goff, gord) = gpu::cluster_sort(ctx, &gassign, c).unwrap();
        assert_eq!(ctx.download_u32(&goff).unwrap(), off, "offsets {tag}");
        assert_eq!(ctx.download_u32(&gord).unwrap(), ord, "order {tag}");
        for top_k in [1, 3, c + 1] {
            let kk = top_k.min(c);
            let want = cpu::route_ref(&q, &cent, (&off, &ord), s, (c, kk));
            let gcent = ctx.upload(&cent, &[s.bh, c, s.d]).unwrap();
            let gr = gpu::route(ctx, &up(ctx, &q, s), &gcent, (&goff, &gord), top_k).unwrap();
            let got = ctx.download_u32(&gr).unwrap();
            for (e, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let r = e / kk;
                let qi = &q[r * s.d..][..s.d];
                let b = r / s.n;
                let sc = |a: u32| score64(qi, &cent[(b * c + a as usize) * s.d..][..s.d]);
                let near = g != NO_CLUSTER && w != NO_CLUSTER && (sc(g) - sc(w)).abs() < NEAR_TIE;
                assert!(
                    g == w || near,
                    "route {tag} top_k {top_k} entry {e}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn gpu_attention_matches_cpu_reference_over_shapes() {
    let Some(ctx) = common::gpu("gpu_attention_matches_cpu_reference_over_shapes") else {
        return;
    };
    let cases = [
        (shape(2, 70, 16), cfg(4, 2, 8, 3, 2)),
        (shape(1, 130, 64), cfg(5, 1, 4, 0, 1)),
        (shape(2, 17, 3), cfg(4, 1, 40, 2, 2)), // window ≥ n
        (shape(1, 20, 5), cfg(3, 2, 2, 25, 2)), // sink ≥ n
        (shape(1, 33, 1), cfg(6, 2, 0, 0, 0)),  // no window, no sink, d = 1
        (shape(3, 1, 7), cfg(4, 2, 1, 1, 2)),   // n = 1
        (shape(1, 6, 128), cfg(9, 4, 1, 0, 2)), // n < C, d = MAX_D
    ];
    for (i, (s, c)) in cases.into_iter().enumerate() {
        let x = qkv(900 + 7 * i as u64, s);
        let cl = cpu::cluster(&x.0, &x.1, &c, s).unwrap();
        check_gpu_attention(ctx, &format!("case {i} {s:?} {c:?}"), &x, &cl, &c, s, false);
    }
}

#[test]
fn gpu_recall_matches_cpu() {
    let Some(ctx) = common::gpu("gpu_recall_matches_cpu") else {
        return;
    };
    let s = shape(2, 90, 8);
    let (q, k, v) = qkv(31, s);
    for top_k in [1, 2, 4] {
        let c = cfg(4, top_k, 2, 1, 2);
        let cl = cpu::cluster(&q, &k, &c, s).unwrap();
        let want = cpu::recall_ref((&q, &k), &cl, &c, s).unwrap();
        let (_, lse) = cpu::sqa_forward_ref((&q, &k, &v), &cl, &c, s).unwrap();
        let lse = ctx.upload(&lse, &[s.bh, s.n]).unwrap();
        let got = ctx
            .download(&gpu::recall(ctx, &up(ctx, &q, s), &up(ctx, &k, s), &lse).unwrap())
            .unwrap();
        common::assert_ok(compare(
            &format!("gpu recall top_k {top_k}"),
            &got,
            &want,
            TOL,
        ));
        if top_k == 4 {
            assert!(got.iter().all(|&r| (r - 1.0).abs() < 1e-5), "{got:?}");
        }
    }
}

#[test]
fn gpu_shape_and_config_errors_are_errors_not_panics() {
    let Some(ctx) = common::gpu("gpu_shape_and_config_errors_are_errors_not_panics") else {
        return;
    };
    let s = shape(1, 4, 2);
    let x = up(ctx, &[0.5; 8], s);
    for (bad, what) in [
        (cfg(0, 1, 1, 1, 1), "clusters"),
        (cfg(2, 0, 1, 1, 1), "top_k"),
        (cfg(300, 1, 1, 1, 1), "MAX_C"),
    ] {
        let err = gpu::cluster(ctx, &x, &x, &bad).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
    let wide = ctx.upload(&vec![0.0; 2 * 129], &[1, 2, 129]).unwrap();
    let err = gpu::cluster(ctx, &wide, &wide, &SqaConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("MAX_D"), "{err}");
    let other = ctx.upload(&[0.5; 8], &[1, 2, 4]).unwrap();
    assert!(gpu::cluster(ctx, &x, &other, &SqaConfig::default()).is_err());
    let ok = cfg(2, 1, 1, 1, 1);
    let cl = gpu::cluster(ctx, &x, &x, &ok).unwrap();
    assert!(gpu::sqa_forward(ctx, (&x, &x, &x), &cl, &ok).is_ok());
    let err = gpu::sqa_forward(ctx, (&x, &x, &x), &cl, &cfg(3, 1, 1, 1, 1)).unwrap_err();
    assert!(err.to_string().contains("centroids"), "{err}");
    let lse = ctx.upload(&[0.0; 3], &[1, 3]).unwrap();
    let err = gpu::sqa_backward(ctx, (&x, &x, &x), (&x, &lse, &x), &cl, &ok).unwrap_err();
    assert!(err.to_string().contains("lse"), "{err}");
}
