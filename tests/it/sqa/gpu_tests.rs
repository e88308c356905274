//! GPU: every WGSL kernel against its CPU reference, exactness against dense attention, errors.

use super::*;
use dsrsq::device::GpuContext;
use dsrsq::kernels::check::{compare, Tol};
use dsrsq::kernels::sqa::gpu::{self, GpuClusters};
use dsrsq::kernels::sqa::{cpu, CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};

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

#[test]
fn gpu_empty_sequence_gives_empty_outputs() {
    let Some(ctx) = common::gpu("gpu_empty_sequence_gives_empty_outputs") else {
        return;
    };
    let c = SqaConfig::default();
    let x = ctx.upload(&[], &[2, 0, 4]).unwrap();
    let cl = gpu::cluster(ctx, &x, &x, &c).unwrap();
    assert_eq!(cl.routes.shape, vec![2, 0, 8]);
    let (o, lse) = gpu::sqa_forward(ctx, (&x, &x, &x), &cl, &c).unwrap();
    assert_eq!(
        (o.shape.clone(), lse.shape.clone()),
        (vec![2, 0, 4], vec![2, 0])
    );
    let (dq, _, _) = gpu::sqa_backward(ctx, (&x, &x, &x), (&o, &lse, &x), &cl, &c).unwrap();
    assert_eq!(dq.shape, vec![2, 0, 4]);
    let r = gpu::recall(ctx, &x, &x, &lse).unwrap();
    assert_eq!(ctx.download(&r).unwrap(), vec![0.0; 2]);
}
