//! CPU: exactness against dense attention, the fast path against the plain-loop references,
//! finite differences, recall, clustering, errors.

use super::*;
use dsrsq::kernels::check::{compare, dot64, finite_diff, random_vec, Tol};
use dsrsq::kernels::sqa::{cpu, CpuClusters, SqaConfig, SqaShape, NO_CLUSTER};

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
        (shape(1, 900, 16), cfg(2, 1, 5, 2, 2)), // > 256 keys and routed queries per cluster
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

#[test]
fn empty_sequence_gives_empty_outputs() {
    let (s, c) = (shape(2, 0, 4), SqaConfig::default());
    let cl = cpu::cluster(&[], &[], &c, s).unwrap();
    let (o, lse) = cpu::sqa_forward((&[], &[], &[]), &cl, &c, s).unwrap();
    assert!(o.is_empty() && lse.is_empty());
    let g = cpu::sqa_backward((&[], &[], &[]), (&[], &[], &[]), &cl, &c, s).unwrap();
    assert!(g.0.is_empty() && g.1.is_empty() && g.2.is_empty());
    assert_eq!(
        cpu::recall((&[], &[], &[]), &[], &c, s).unwrap(),
        vec![0.0; 2]
    );
}

#[test]
fn sqrt_cluster_option_is_ceil_sqrt_n() {
    for (n, want) in [(0, 1), (1, 1), (2, 2), (1000, 32), (1024, 32), (1025, 33)] {
        assert_eq!(
            SqaConfig::default().with_sqrt_clusters(n).clusters,
            want,
            "n = {n}"
        );
    }
}
