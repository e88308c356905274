//! Model-level checks: the whole tiny DSRSQ on wgpu equals the CPU backend (losses and every
//! gradient), and the CPU gradients of the whole loss match central finite differences.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::Example;
use dsrsq::kernels::check::{compare, Tol};
use dsrsq::model::{AttentionKind, Config, Model, ParamLayout};
use dsrsq::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A model small enough for finite differences and lavapipe, with every component active:
/// the 60-token contexts exceed the DSR budget (so selection drops blocks) and the kept
/// context can exceed the 40-slot ring (so eviction happens too). The blocks have a 3-tap
/// short convolution, so its weights are in every gradient comparison too.
fn test_config(top_k: usize) -> Config {
    let mut c = Config::preset("tiny").expect("tiny preset");
    c.model.vocab_size = 97;
    c.model.d_model = 32;
    c.model.hidden_dim = 16;
    c.model.heads = 2;
    c.model.layers = 2;
    c.dsr.reduced_dim = 8;
    c.dsr.base_budget = 24;
    c.dsr.block = 4;
    c.sqa.clusters = 4;
    c.sqa.top_k = top_k;
    c.sqa.window = 6;
    c.sqa.sink = 4;
    c.rckv.compressed_dim = 8;
    c.rckv.buffer_size = 30;
    c.rckv.sink = 4;
    c.hof.rampup_steps = 10;
    c.model.short_conv = 3;
    c.validate("test").expect("valid test config");
    c
}

/// `[BOS] ctx [SEP] q [SEP] answer [EOS]` with random tokens and a supporting span.
fn example(rng: &mut ChaCha8Rng, n_ctx: usize, nq: usize, na: usize, vocab: u32) -> Example {
    let mut ids: Vec<u32> = (0..n_ctx).map(|_| rng.random_range(4..vocab)).collect();
    ids[0] = 1;
    ids.push(2);
    let q0 = ids.len();
    ids.extend((0..nq).map(|_| rng.random_range(4..vocab)));
    let q1 = ids.len();
    ids.push(2);
    ids.extend((0..na).map(|_| rng.random_range(4..vocab)));
    ids.push(3);
    let mut targets = vec![-1i32; ids.len()];
    for p in q1..ids.len() - 1 {
        targets[p] = ids[p + 1] as i32;
    }
    let s = rng.random_range(1..n_ctx - 5);
    Example {
        ids,
        n_ctx,
        q0,
        q1,
        targets,
        spans: vec![(s, s + 4)],
        answers: vec![],
    }
}

fn examples() -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    vec![
        example(&mut rng, 60, 5, 3, 97),
        example(&mut rng, 45, 3, 2, 97),
        example(&mut rng, 70, 4, 4, 97),
    ]
}

/// Parameters with the DSR projections scaled up so block scores are well separated: the
/// selection is then far from ties and both backends (or a perturbed copy) keep the same blocks.
fn params(cfg: &Config) -> Vec<Tensor> {
    let layout = ParamLayout::new(cfg);
    let mut p = layout.init(3);
    for i in [layout.idx.dsr_wr, layout.idx.dsr_wq] {
        p[i].data.iter_mut().for_each(|x| *x *= 50.0);
    }
    // Scale attention projections up from 0.02 so attention is not uniform and the
    // gradients are well above f32 noise.
    for l in &layout.idx.layers {
        for i in [l.wq, l.wk, l.wv] {
            p[i].data.iter_mut().for_each(|x| *x *= 10.0);
        }
        // Taps start at 0 (the identity); give them values so the convolution mixes rows.
        let cw = l.conv_w.expect("test_config has a short convolution");
        let n = p[cw].data.len();
        p[cw].data = dsrsq::kernels::check::random_vec(cw as u64, n, 0.5);
    }
    p
}

/// GPU vs CPU: f32 with different summation orders over a whole model; differences grow with
/// depth through two blocks and the LM head. 2e-4 absolute / 2e-3 relative covers that and
/// would still catch any wrong term (those are O(1e-2) and larger).
const MODEL_TOL: Tol = Tol::new(2e-4, 2e-3);

#[test]
fn tiny_model_wgpu_matches_cpu_losses_and_every_gradient() {
    if common::gpu("tiny_model_wgpu_matches_cpu_losses_and_every_gradient").is_none() {
        return;
    }
    let cfg = test_config(2);
    let host = params(&cfg);
    let cpu = CpuBackend;
    let gpu = WgpuBackend::new(Arc::new(
        dsrsq::device::GpuContext::from_env().expect("adapter found above"),
    ));
    let mc = Model::from_host(&cpu, &cfg, &host).expect("cpu model");
    let mg = Model::from_host(&gpu, &cfg, &host).expect("gpu model");
    let ex = examples();
    let oc = mc.step(&cpu, &ex, 20, true, false).expect("cpu step");
    let og = mg.step(&gpu, &ex, 20, true, false).expect("gpu step");
    assert_eq!(
        oc.batch, og.batch,
        "same selection, ring trimming and batch"
    );
    assert!(
        oc.ctx_kept < oc.ctx_tokens,
        "DSR/ring must drop context here"
    );
    let t =
        |x: &dsrsq::model::LossTerms| vec![x.task, x.retrieval, x.compression, x.compute, x.total];
    common::assert_ok(compare(
        "loss terms",
        &t(&og.terms),
        &t(&oc.terms),
        MODEL_TOL,
    ));
    for (i, name) in mc.layout.names.iter().enumerate() {
        match (&oc.grads[i], &og.grads[i]) {
            (Some(a), Some(b)) => {
                let b = gpu.download(b).expect("download");
                common::assert_ok(compare(
                    &format!("grad {name}"),
                    &b.data,
                    &a.data,
                    MODEL_TOL,
                ));
            }
            (None, None) => panic!("`{name}` got no gradient on either backend"),
            _ => panic!("`{name}` has a gradient on one backend only"),
        }
    }
}

/// Central differences in f32 of a loss of size ~5: rounding puts ~2 ulp (1e-6) on the
/// difference, 1.6e-4 after dividing by 2·eps = 6e-3, hence 3e-4 absolute; the truncation
/// error (eps²·f''') stays under the 3e-2 relative part at eps 3e-3 (at 1e-2 the embedding's
/// curvature through the ×50 DSR scorer exceeds it; at 1e-3 rounding does).
const FD_TOL: Tol = Tol::new(3e-4, 3e-2);
const FD_EPS: f32 = 3e-3;

#[test]
fn whole_model_gradient_matches_finite_differences() {
    // top_k = clusters: routing reads every cluster, so a perturbation cannot flip a discrete
    // routing choice (the SQA backward over routed keys has its own finite-difference test).
    let cfg = test_config(4);
    let host = params(&cfg);
    let be = CpuBackend;
    let ex = examples();
    let step = 20; // past the ramp: every loss term at full weight
    let model = Model::from_host(&be, &cfg, &host).expect("model");
    let out = model.step(&be, &ex, step, true, false).expect("step");
    // The loss and the batch it ran on (the discrete decisions: DSR selection, ring trimming).
    let loss_at = |p: &[Tensor]| {
        let m = Model::from_host(&be, &cfg, p).expect("model");
        let o = m.step(&be, &ex, step, false, false).expect("step");
        (o.terms.total, o.batch)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut flipped = 0;
    for (i, name) in model.layout.names.iter().enumerate() {
        let g = out.grads[i]
            .as_ref()
            .unwrap_or_else(|| panic!("`{name}` has no gradient"));
        let n = host[i].data.len();
        let dm = cfg.model.d_model;
        let mut picks = Vec::new();
        let mut got = Vec::new();
        let mut want = Vec::new();
        while picks.len() < 4 {
            // For the embedding, probe rows that occur in the batch (others have zero gradient).
            let j = if name == "wte" {
                let s = &ex[rng.random_range(0..ex.len())].ids;
                s[rng.random_range(0..s.len())] as usize * dm + rng.random_range(0..dm)
            } else {
                rng.random_range(0..n)
            };
            let mut p = host.clone();
            p[i].data[j] += FD_EPS;
            let (lp, bp) = loss_at(&p);
            p[i].data[j] -= 2.0 * FD_EPS;
            let (lm, bm) = loss_at(&p);
            // A perturbation that changes which tokens are kept makes the loss jump: the
            // gradient of a selection is not defined there, so probe another element.
            if bp != out.batch || bm != out.batch {
                flipped += 1;
                assert!(flipped < 20, "too many probes change the selection");
                continue;
            }
            picks.push(j);
            want.push((lp - lm) / (2.0 * FD_EPS));
            got.push(g.data[j]);
        }
        common::assert_ok(compare(
            &format!("d loss / d {name} at {picks:?}"),
            &got,
            &want,
            FD_TOL,
        ));
    }
}

#[test]
fn dense_variant_runs_without_components() {
    let mut cfg = test_config(2);
    cfg.model.short_conv = 0;
    cfg.model.use_dsr = false;
    cfg.model.attention = AttentionKind::Dense;
    cfg.model.use_rckv = false;
    let be = CpuBackend;
    let model = Model::new(&be, &cfg, 1).expect("model");
    let ex = examples();
    let out = model.step(&be, &ex, 0, true, false).expect("step");
    assert_eq!(
        out.ctx_kept, out.ctx_tokens,
        "dense keeps every context token"
    );
    assert_eq!(out.terms.compression, 0.0);
    assert!(out.grads[model.layout.idx.dsr_wr].is_none());
    assert!(
        !model.layout.names.iter().any(|n| n.contains("conv")),
        "short_conv = 0 adds no tensors"
    );
    assert!(
        out.terms.task > 3.0 && out.terms.task < 6.0,
        "≈ ln 97 at init: {}",
        out.terms.task
    );
}
