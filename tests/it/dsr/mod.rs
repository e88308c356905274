//! DSR: wgpu vs CPU for every kernel (selection exactly), the selection's invariants, the fast
//! CPU path vs the unfactored f64 reference, CPU backward vs finite differences, bad input.

use crate::common;
mod selection;
mod training;

use dsrsq::device::{DeviceError, GpuContext, GpuTensor};
use dsrsq::kernels::check::{compare, grad_check, random_vec, Tol};
use dsrsq::kernels::dsr::{cpu, gpu, reference, DsrConfig, DsrDims, DsrSelection};

/// f32 dot products of length dm (and dr for the matmuls) summed in a different order than
/// the f64 reference or the other backend: a few ulps of the row's magnitude.
const SCORE_TOL: Tol = Tol::new(2e-5, 1e-4);
/// Softmax entropy from f32 partials (GPU) against f64 (CPU), over up to 70k terms.
const C_TOL: Tol = Tol::new(2e-5, 1e-5);
/// Loss values: f32 tree sums of up to 70k terms against f64 sums.
const LOSS_TOL: Tol = Tol::new(1e-5, 1e-4);
/// Per-token score gradients: one f32 sigmoid / exp each, against f64.
const DS_TOL: Tol = Tol::new(1e-7, 1e-4);
/// Weight gradients: sums over the context of f32 products, against gemm / f64.
const GRAD_TOL: Tol = Tol::new(1e-5, 1e-3);
/// Central differences in f32 with eps 1e-2 on smooth losses.
const FD: Tol = Tol::new(1e-3, 1e-2);

struct Case {
    e: Vec<f32>,
    w_r: Vec<f32>,
    w_q: Vec<f32>,
    d: DsrDims,
    cfg: DsrConfig,
}

/// An input `[context | SEP | question | answer]` with `nq` question tokens.
fn case(seed: u64, n_ctx: usize, nq: usize, dm: usize, cfg: DsrConfig) -> Case {
    let q0 = n_ctx + 1;
    let d = DsrDims {
        n: q0 + nq + 2,
        dm,
        n_ctx,
        q0,
        q1: q0 + nq,
    };
    let dr = cfg.reduced_dim;
    Case {
        e: random_vec(seed, d.n * dm, 1.0),
        w_r: random_vec(seed + 1, dm * dr, 0.5),
        w_q: random_vec(seed + 2, dm * dr, 0.5),
        d,
        cfg,
    }
}

fn cfg(dr: usize, block: usize, base_budget: usize) -> DsrConfig {
    DsrConfig {
        reduced_dim: dr,
        block,
        base_budget,
        ..DsrConfig::default()
    }
}

fn up(ctx: &GpuContext, c: &Case) -> (GpuTensor, GpuTensor, GpuTensor) {
    let (dm, dr) = (c.d.dm, c.cfg.reduced_dim);
    (
        ctx.upload(&c.e, &[c.d.n, dm]).unwrap(),
        ctx.upload(&c.w_r, &[dm, dr]).unwrap(),
        ctx.upload(&c.w_q, &[dm, dr]).unwrap(),
    )
}

/// The same selection, except `c`, which is compared within `C_TOL`.
fn assert_same_selection(what: &str, got: &DsrSelection, want: &DsrSelection) {
    common::assert_ok(compare(
        &format!("{what}: complexity"),
        &[got.complexity],
        &[want.complexity],
        C_TOL,
    ));
    let strip = |s: &DsrSelection| DsrSelection {
        complexity: 0.0,
        ..s.clone()
    };
    assert_eq!(strip(got), strip(want), "{what}");
}

/// The invariants every selection keeps: sink block first, whole blocks in increasing order,
/// the question last, `keep_blocks` blocks, at most the budget rounded up to whole blocks.
fn check_invariants(sel: &DsrSelection, n_ctx: usize, q0: usize, q1: usize, block: usize) {
    let (ctx_part, q_part) = sel.selected.split_at(sel.kept_ctx);
    assert_eq!(q_part, (q0 as u32..q1 as u32).collect::<Vec<_>>());
    let sink: Vec<u32> = (0..block.min(n_ctx) as u32).collect();
    assert_eq!(&ctx_part[..sink.len()], sink.as_slice(), "sink block kept");
    assert!(ctx_part.windows(2).all(|w| w[0] < w[1]), "original order");
    let mut blocks: Vec<usize> = ctx_part.iter().map(|&t| t as usize / block).collect();
    blocks.dedup();
    for &b in &blocks {
        let len = block.min(n_ctx - b * block);
        let got = ctx_part
            .iter()
            .filter(|&&t| t as usize / block == b)
            .count();
        assert_eq!(got, len, "block {b} kept whole");
    }
    assert_eq!(blocks.len(), sel.keep_blocks);
    assert!(sel.kept_ctx <= (sel.budget.div_ceil(block).max(1) * block).min(n_ctx));
}

#[test]
fn cpu_scores_and_backward_match_unfactored_reference() {
    for &(n_ctx, nq, dm, dr) in &[(1, 1, 3, 2), (37, 4, 8, 5), (200, 9, 16, 12)] {
        let c = case(n_ctx as u64, n_ctx, nq, dm, cfg(dr, 4, 16));
        let fwd = cpu::scores(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg).unwrap();
        let want = reference::scores_ref(&c.e, &c.w_r, &c.w_q, &c.d, dr);
        common::assert_ok(compare("scores", &fwd.scores, &want, SCORE_TOL));
        let ds = random_vec(9, n_ctx, 1.0);
        let g = cpu::backward(&c.e, &c.w_r, &c.w_q, &fwd, &ds, &c.d, &c.cfg, true).unwrap();
        let (dw_r, dw_q, de) = reference::backward_ref(&c.e, &c.w_r, &c.w_q, &ds, &c.d, dr);
        common::assert_ok(compare("dw_r", &g.dw_r, &dw_r, GRAD_TOL));
        common::assert_ok(compare("dw_q", &g.dw_q, &dw_q, GRAD_TOL));
        common::assert_ok(compare("de", g.de.as_deref().unwrap(), &de, GRAD_TOL));
    }
}

#[test]
fn gpu_forward_matches_cpu() {
    let Some(ctx) = common::gpu("gpu_forward_matches_cpu") else {
        return;
    };
    // (n_ctx, nq, dm, dr, block, base): odd sizes, dm / dr past the 64-wide matmul tile.
    for &(n_ctx, nq, dm, dr, block, base) in &[
        (1, 1, 3, 2, 16, 512),
        (300, 7, 16, 128, 16, 64),
        (1500, 3, 70, 33, 1, 100),
    ] {
        let c = case(n_ctx as u64 + 5, n_ctx, nq, dm, cfg(dr, block, base));
        let (e, wr, wq) = up(ctx, &c);
        let (gs, gsel) = gpu::forward(ctx, &e, &wr, &wq, &c.d, &c.cfg).unwrap();
        let (cs, csel) = cpu::forward(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg).unwrap();
        let what = format!("n_ctx {n_ctx} dm {dm} dr {dr}");
        let s = ctx.download(&gs.scores).unwrap();
        common::assert_ok(compare(&what, &s, &cs.scores, SCORE_TOL));
        let qv = ctx.download(&gs.qv).unwrap();
        common::assert_ok(compare(&format!("{what} qv"), &qv, &cs.qv, SCORE_TOL));
        assert_same_selection(&what, &gsel.selection, &csel.selection);
    }
}

fn assert_shape_err<T: std::fmt::Debug>(what: &str, r: Result<T, DeviceError>) {
    match r {
        Err(DeviceError::Shape { .. }) => {}
        other => panic!("{what}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let c = case(1, 20, 3, 4, cfg(5, 4, 8));
    let bad_dims = [
        (
            "q0 > q1",
            DsrDims {
                q0: 23,
                q1: 22,
                ..c.d
            },
        ),
        ("empty question", DsrDims { q1: c.d.q0, ..c.d }),
        (
            "question past n",
            DsrDims {
                q1: c.d.n + 1,
                ..c.d
            },
        ),
        ("question inside context", DsrDims { q0: 5, ..c.d }),
        ("no context", DsrDims { n_ctx: 0, ..c.d }),
    ];
    let ctx = common::gpu("bad_input_is_an_error_not_a_panic");
    let g = ctx.map(|ctx| (ctx, up(ctx, &c)));
    for (what, d) in bad_dims {
        assert_shape_err(what, cpu::scores(&c.e, &c.w_r, &c.w_q, &d, &c.cfg));
        if let Some((ctx, (e, wr, wq))) = &g {
            assert_shape_err(what, gpu::scores(ctx, e, wr, wq, &d, &c.cfg));
        }
    }
    let cfgs = [
        (
            "dr mismatch",
            DsrConfig {
                reduced_dim: 6,
                ..c.cfg
            },
        ),
        ("block 0", DsrConfig { block: 0, ..c.cfg }),
        (
            "temperature 0",
            DsrConfig {
                temperature: 0.0,
                ..c.cfg
            },
        ),
    ];
    let s = random_vec(2, 20, 1.0);
    for (what, k) in cfgs {
        assert_shape_err(what, cpu::scores(&c.e, &c.w_r, &c.w_q, &c.d, &k));
        if let Some((ctx, (e, wr, wq))) = &g {
            assert_shape_err(what, gpu::scores(ctx, e, wr, wq, &c.d, &k));
        }
        if what != "dr mismatch" {
            assert_shape_err(what, cpu::select(&s, 21, 23, &k));
            assert_shape_err(what, cpu::compute_loss(&s, &k));
        }
    }
    assert_shape_err("select q0 > q1", cpu::select(&s, 23, 21, &c.cfg));
    assert_shape_err("span end < start", cpu::retrieval_bce(&s, &[(5, 2)], 1));
    assert_shape_err("kl target length", cpu::retrieval_kl(&s, &[0.5; 3]));
    assert_shape_err("kl negative target", cpu::retrieval_kl(&s, &[-0.1; 20]));
    let fwd = cpu::scores(&c.e, &c.w_r, &c.w_q, &c.d, &c.cfg).unwrap();
    assert_shape_err(
        "ds length",
        cpu::backward(&c.e, &c.w_r, &c.w_q, &fwd, &s[..3], &c.d, &c.cfg, false),
    );
    if let Some((ctx, (e, wr, wq))) = &g {
        let gs = ctx.upload(&s, &[20]).unwrap();
        assert_shape_err("gpu select q0 > q1", gpu::select(ctx, &gs, 23, 21, &c.cfg));
        let k0 = DsrConfig { block: 0, ..c.cfg };
        assert_shape_err("gpu select block 0", gpu::select(ctx, &gs, 21, 23, &k0));
        assert_shape_err("gpu span", gpu::retrieval_bce(ctx, &gs, &[(5, 2)], 1));
        let t3 = ctx.upload(&[0.5; 3], &[3]).unwrap();
        assert_shape_err("gpu kl target", gpu::retrieval_kl(ctx, &gs, &t3));
        let fg = gpu::scores(ctx, e, wr, wq, &c.d, &c.cfg).unwrap();
        assert_shape_err(
            "gpu ds length",
            gpu::backward(ctx, e, wr, wq, &fg, &t3, &c.d, &c.cfg, false),
        );
    }
}
