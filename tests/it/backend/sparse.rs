//! DSR and SQA through the `Backend` trait: each op on both backends from the same inputs (the
//! CPU's scores for the selection and the losses, the same `ds` for the DSR backward, the CPU's
//! `o`/`lse` for the SQA backward and recall), so each is judged on its own error.

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::kernels::check::{compare, Tol};
use dsrsq::kernels::dsr::{DsrConfig, DsrDims, DsrSelection};
use dsrsq::kernels::sqa::{gpu::GpuClusters, CpuClusters, SqaConfig};
use dsrsq::Tensor;

use super::{common, down, tensor, wgpu_backend};

/// DSR scores: f32 dot products of length dm (and dr in the matmuls) summed in another order.
const SCORE_TOL: Tol = Tol::new(2e-5, 1e-4);
/// Softmax entropy from f32 partials (wgpu) against f64 (CPU).
const C_TOL: Tol = Tol::new(2e-5, 1e-5);
/// Loss values: f32 tree sums against f64 sums.
const LOSS_TOL: Tol = Tol::new(1e-5, 1e-4);
/// Per-token score gradients: one f32 sigmoid / exp each, against f64.
const DS_TOL: Tol = Tol::new(1e-7, 1e-4);
/// DSR weight / embedding gradients: sums over the context of f32 products.
const GRAD_TOL: Tol = Tol::new(1e-5, 1e-3);
/// SQA outputs: f32 online softmax (wgpu) against gemm tiles with a polynomial exp (CPU) — the
/// tolerance of the SQA and dense attention tests.
const SQA_TOL: Tol = Tol::new(1e-4, 1e-3);

struct DsrCase {
    e: Tensor,
    w_r: Tensor,
    w_q: Tensor,
    target: Tensor,
    d: DsrDims,
    cfg: DsrConfig,
}

/// `[context | SEP | question | answer]` with `nq` question tokens.
fn dsr_case(seed: u64, n_ctx: usize, nq: usize, dm: usize, dr: usize, block: usize) -> DsrCase {
    let q0 = n_ctx + 1;
    let d = DsrDims {
        n: q0 + nq + 2,
        dm,
        n_ctx,
        q0,
        q1: q0 + nq,
    };
    let cfg = DsrConfig {
        reduced_dim: dr,
        block,
        base_budget: 40,
        ..DsrConfig::default()
    };
    // A distillation target with zero masses (their KL terms vanish).
    let mut target = tensor(seed + 3, &[n_ctx], 1.0);
    target.data.iter_mut().enumerate().for_each(|(i, t)| {
        *t = if i % 3 == 1 { 0.0 } else { t.abs() };
    });
    DsrCase {
        e: tensor(seed, &[d.n, dm], 1.0),
        w_r: tensor(seed + 1, &[dm, dr], 0.5),
        w_q: tensor(seed + 2, &[dm, dr], 0.5),
        target,
        d,
        cfg,
    }
}

const SPANS: [(usize, usize); 3] = [(10, 20), (100, 101), (290, 300)];

struct DsrOut {
    named: Vec<(&'static str, Tensor)>,
    selection: DsrSelection,
}

/// Scores from `b`'s own forward; selection and losses from the shared `scores`; the backward
/// from the shared `ds`.
fn dsr_ops<B: Backend>(b: &B, c: &DsrCase, scores: &Tensor, ds: &Tensor) -> DsrOut {
    let up = |t: &Tensor| b.upload(t).unwrap();
    let (e, w_r, w_q) = (up(&c.e), up(&c.w_r), up(&c.w_q));
    let fwd = b.dsr_scores(&e, &w_r, &w_q, &c.d, &c.cfg).unwrap();
    let s = up(scores);
    let selection = b.dsr_select(&s, c.d.q0, c.d.q1, &c.cfg).unwrap();
    let (l_bce, ds_bce) = b.dsr_retrieval_bce(&s, &SPANS, c.cfg.dilation).unwrap();
    let (l_kl, ds_kl) = b.dsr_retrieval_kl(&s, &up(&c.target)).unwrap();
    let (l_c, ds_c) = b.dsr_compute_loss(&s, &c.cfg).unwrap();
    let g = b
        .dsr_backward(&e, &w_r, &w_q, &fwd, &up(ds), &c.d, &c.cfg, true)
        .unwrap();
    let no_de = b
        .dsr_backward(&e, &w_r, &w_q, &fwd, &up(ds), &c.d, &c.cfg, false)
        .unwrap();
    assert!(no_de.de.is_none());
    let de = g.de.as_ref().expect("de was asked for");
    let named = vec![
        ("scores", &fwd.scores),
        ("qv", &fwd.qv),
        ("u", &fwd.u),
        ("e_mean", &fwd.e_mean),
        ("bce loss", &l_bce),
        ("bce ds", &ds_bce),
        ("kl loss", &l_kl),
        ("kl ds", &ds_kl),
        ("compute loss", &l_c),
        ("compute ds", &ds_c),
        ("dw_r", &g.dw_r),
        ("dw_q", &g.dw_q),
        ("de", de),
    ];
    DsrOut {
        named: named.into_iter().map(|(n, t)| (n, down(b, t))).collect(),
        selection,
    }
}

fn dsr_tol(name: &str) -> Tol {
    match name {
        "scores" | "qv" | "u" | "e_mean" => SCORE_TOL,
        n if n.ends_with("loss") => LOSS_TOL,
        n if n.ends_with(" ds") => DS_TOL,
        _ => GRAD_TOL,
    }
}

#[test]
fn dsr_ops_agree() {
    let Some(gpu) = wgpu_backend("dsr_ops_agree") else {
        return;
    };
    let cpu = CpuBackend;
    // (n_ctx, nq, dm, dr, block): a context not a multiple of the 256-wide workgroups, and the
    // smallest input (one context token, one question token).
    for (i, &(n_ctx, nq, dm, dr, block)) in
        [(300, 5, 24, 16, 4), (1, 1, 3, 2, 16)].iter().enumerate()
    {
        let c = dsr_case(80 + 10 * i as u64, n_ctx, nq, dm, dr, block);
        let scores = cpu
            .dsr_scores(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg)
            .unwrap()
            .scores;
        let ds = tensor(90 + i as u64, &[n_ctx], 1.0);
        let want = dsr_ops(&cpu, &c, &scores, &ds);
        let got = dsr_ops(&gpu, &c, &scores, &ds);
        for ((name, w), (_, g)) in want.named.iter().zip(&got.named) {
            assert_eq!(w.shape, g.shape, "{name} n_ctx={n_ctx}");
            common::assert_ok(compare(name, &g.data, &w.data, dsr_tol(name)));
        }
        let shape_of = |name: &str| &want.named.iter().find(|(n, _)| *n == name).unwrap().1.shape;
        assert_eq!(shape_of("dw_r"), &vec![dm, dr]);
        assert_eq!(shape_of("de"), &vec![c.d.n, dm]);
        assert_eq!(shape_of("kl loss"), &vec![1]);
        // The same scores give the same blocks on both backends (c within rounding).
        common::assert_ok(compare(
            "complexity",
            &[got.selection.complexity],
            &[want.selection.complexity],
            C_TOL,
        ));
        let strip = |s: &DsrSelection| DsrSelection {
            complexity: 0.0,
            ..s.clone()
        };
        assert_eq!(strip(&got.selection), strip(&want.selection));
        assert!(
            want.selection.kept_ctx >= block.min(n_ctx),
            "sink block kept"
        );
    }
}

fn cpu_clusters(gpu: &WgpuBackend, g: &GpuClusters) -> CpuClusters {
    let u = |t| gpu.ctx.download_u32(t).unwrap();
    CpuClusters {
        centroids: gpu.ctx.download(&g.centroids).unwrap(),
        assign: u(&g.assign),
        offsets: u(&g.offsets),
        order: u(&g.order),
        routes: u(&g.routes),
    }
}

#[test]
fn sqa_ops_agree() {
    let Some(gpu) = wgpu_backend("sqa_ops_agree") else {
        return;
    };
    let cpu = CpuBackend;
    // (bh, n, d, config): n not a multiple of the 64-wide workgroups, odd head widths.
    let cases = [
        (3, 70, 8, (4, 2, 5, 2, 2)),
        (2, 131, 33, (6, 3, 8, 4, 1)),
        (1, 1, 1, (2, 1, 1, 0, 1)),
    ];
    for (i, &(bh, n, d, (clusters, top_k, window, sink, iters))) in cases.iter().enumerate() {
        let cfg = SqaConfig {
            clusters,
            top_k,
            window,
            sink,
            iters,
        };
        let seed = 200 + 10 * i as u64;
        let [q, k, v, dout] = [0, 1, 2, 3].map(|j| tensor(seed + j, &[bh, n, d], 1.5));
        let up = |t: &Tensor| gpu.upload(t).unwrap();
        let (gq, gk, gv) = (up(&q), up(&k), up(&v));
        let ccl = cpu.sqa_cluster(&q, &k, &cfg).unwrap();
        let gcl = gpu.sqa_cluster(&gq, &gk, &cfg).unwrap();
        let gcl_host = cpu_clusters(&gpu, &gcl);
        // Clustering decisions agree exactly on random inputs (tie handling: tests/it/sqa).
        assert_eq!(gcl_host.assign, ccl.assign, "assign case {i}");
        assert_eq!(gcl_host.order, ccl.order, "order case {i}");
        assert_eq!(gcl_host.offsets, ccl.offsets, "offsets case {i}");
        assert_eq!(gcl_host.routes, ccl.routes, "routes case {i}");
        common::assert_ok(compare(
            "centroids",
            &gcl_host.centroids,
            &ccl.centroids,
            SQA_TOL,
        ));

        let (o, lse) = cpu.sqa_forward(&q, &k, &v, &ccl, &cfg).unwrap();
        let (go, glse) = gpu.sqa_forward(&gq, &gk, &gv, &gcl, &cfg).unwrap();
        assert_eq!((&o.shape, &lse.shape), (&vec![bh, n, d], &vec![bh, n]));
        for (name, g, w) in [("o", &go, &o), ("lse", &glse, &lse)] {
            let g = down(&gpu, g);
            assert_eq!(g.shape, w.shape, "{name}");
            common::assert_ok(compare(name, &g.data, &w.data, SQA_TOL));
        }
        let want = cpu
            .sqa_backward(&q, &k, &v, &o, &lse, &dout, &ccl, &cfg)
            .unwrap();
        let (go, glse) = (up(&o), up(&lse));
        let got = gpu
            .sqa_backward(&gq, &gk, &gv, &go, &glse, &up(&dout), &gcl, &cfg)
            .unwrap();
        for (name, g, w) in [
            ("dq", &got.0, &want.0),
            ("dk", &got.1, &want.1),
            ("dv", &got.2, &want.2),
        ] {
            let g = down(&gpu, g);
            assert_eq!(g.shape, w.shape, "{name}");
            common::assert_ok(compare(name, &g.data, &w.data, SQA_TOL));
        }
        let r = cpu.sqa_recall(&q, &k, &v, &lse, &cfg).unwrap();
        let gr = down(&gpu, &gpu.sqa_recall(&gq, &gk, &gv, &glse, &cfg).unwrap());
        assert_eq!((&r.shape, &gr.shape), (&vec![bh], &vec![bh]));
        common::assert_ok(compare("recall", &gr.data, &r.data, SQA_TOL));
        assert!(r.data.iter().all(|&x| x > 0.0 && x <= 1.0), "{:?}", r.data);
    }
}

/// The DSR and SQA ops refuse inconsistent shapes with an error.
pub fn sparse_ops_reject_bad_shapes<B: Backend>(b: &B) {
    let up = |t: &Tensor| b.upload(t).unwrap();
    let c = dsr_case(300, 20, 3, 4, 3, 4);
    let (e, w_r, w_q) = (up(&c.e), up(&c.w_r), up(&c.w_q));
    let past_end = DsrDims {
        n_ctx: c.d.n + 1,
        ..c.d
    };
    assert!(b.dsr_scores(&e, &w_r, &w_q, &past_end, &c.cfg).is_err());
    assert!(b.dsr_scores(&w_r, &w_r, &w_q, &c.d, &c.cfg).is_err());
    let fwd = b.dsr_scores(&e, &w_r, &w_q, &c.d, &c.cfg).unwrap();
    assert!(
        b.dsr_select(&fwd.scores, 5, 9, &c.cfg).is_err(),
        "q0 < n_ctx"
    );
    let short = up(&tensor(301, &[7], 1.0));
    assert!(b.dsr_retrieval_kl(&fwd.scores, &short).is_err());
    assert!(b
        .dsr_backward(&e, &w_r, &w_q, &fwd, &short, &c.d, &c.cfg, true)
        .is_err());
    let cfg = SqaConfig {
        clusters: 2,
        top_k: 1,
        window: 2,
        sink: 1,
        iters: 1,
    };
    let q = up(&tensor(302, &[2, 5, 4], 1.0));
    let other = up(&tensor(303, &[2, 6, 4], 1.0));
    assert!(b.sqa_cluster(&q, &other, &cfg).is_err());
    let cl = b.sqa_cluster(&q, &q, &cfg).unwrap();
    assert!(b.sqa_forward(&q, &q, &other, &cl, &cfg).is_err());
    let (o, lse) = b.sqa_forward(&q, &q, &q, &cl, &cfg).unwrap();
    assert!(b
        .sqa_backward(&q, &q, &q, &o, &lse, &other, &cl, &cfg)
        .is_err());
    assert!(
        b.sqa_recall(&q, &q, &q, &o, &cfg).is_err(),
        "lse of the wrong shape"
    );
    // Clusters made for another sequence length.
    let cl_other = b.sqa_cluster(&other, &other, &cfg).unwrap();
    assert!(b.sqa_forward(&q, &q, &q, &cl_other, &cfg).is_err());
}
