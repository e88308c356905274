//! The `gca` model: finite loss with gradient reaching the landmark projections, wgpu equal
//! to the CPU backend (losses and every gradient), the CPU gradient of the whole loss w.r.t.
//! landmark-projection weights against central differences, and greedy decoding.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::Example;
use dsrsq::eval::generate::{greedy_cached, greedy_reference};
use dsrsq::kernels::check::{compare, Tol};
use dsrsq::model::{AttentionKind, Config, Model, ParamLayout};
use dsrsq::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: u32 = 97;

/// Micro GCA model: chunks of 8 over ~60-token sequences, so most chunks retrieve.
fn gca_config(top_k: usize) -> Config {
    let mut c = Config::preset("tiny").expect("tiny preset");
    c.model.vocab_size = VOCAB as usize;
    c.model.d_model = 32;
    c.model.hidden_dim = 16;
    c.model.heads = 2;
    c.model.layers = 2;
    c.model.use_dsr = false;
    c.model.use_rckv = false;
    c.model.attention = AttentionKind::Gca;
    c.gca.chunk = 8;
    c.gca.top_k = top_k;
    c.gca.landmark_dim = 8;
    c.validate("test").expect("valid test config");
    c
}

/// `[BOS] ctx [SEP] q [SEP] answer [EOS]` with random tokens.
fn example(rng: &mut ChaCha8Rng, n_ctx: usize, nq: usize, na: usize) -> Example {
    let mut ids: Vec<u32> = (0..n_ctx).map(|_| rng.random_range(4..VOCAB)).collect();
    ids[0] = 1;
    ids.push(2);
    let q0 = ids.len();
    ids.extend((0..nq).map(|_| rng.random_range(4..VOCAB)));
    let q1 = ids.len();
    ids.push(2);
    ids.extend((0..na).map(|_| rng.random_range(4..VOCAB)));
    ids.push(3);
    let mut targets = vec![-1i32; ids.len()];
    for p in q1..ids.len() - 1 {
        targets[p] = ids[p + 1] as i32;
    }
    Example {
        ids,
        n_ctx,
        q0,
        q1,
        targets,
        spans: vec![],
        answers: vec![],
    }
}

fn examples() -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    vec![example(&mut rng, 50, 4, 3), example(&mut rng, 37, 3, 2)]
}

/// Attention projections scaled up from 0.02 (as tests/it/model.rs) so attention is not uniform
/// and gradients stand well above f32 noise.
fn params(cfg: &Config) -> Vec<Tensor> {
    let layout = ParamLayout::new(cfg);
    let mut p = layout.init(3);
    for l in &layout.idx.layers {
        for i in [l.wq, l.wk, l.wv] {
            p[i].data.iter_mut().for_each(|x| *x *= 10.0);
        }
    }
    p
}

fn landmark_params(cfg: &Config) -> Vec<usize> {
    let layout = ParamLayout::new(cfg);
    layout
        .idx
        .layers
        .iter()
        .flat_map(|l| [l.gca_lq, l.gca_lk])
        .map(|i| i.expect("gca layout has landmark projections"))
        .collect()
}

#[test]
fn gca_layout_adds_landmark_projections_only_when_on() {
    let on = gca_config(2);
    let mut off = on.clone();
    off.model.attention = AttentionKind::Dense;
    let (a, b) = (ParamLayout::new(&on), ParamLayout::new(&off));
    assert_eq!(a.len(), b.len() + 2 * on.model.layers);
    assert!(b.names.iter().all(|n| !n.contains("gca")));
    assert!(b.idx.layers.iter().all(|l| l.gca_lq.is_none()));
}

#[test]
fn gca_loss_is_finite_and_the_landmarks_get_gradient() {
    let cfg = gca_config(2);
    let be = CpuBackend;
    let model = Model::from_host(&be, &cfg, &params(&cfg)).expect("model");
    let out = model.step(&be, &examples(), 0, true, false).expect("step");
    assert!(out.terms.non_finite().is_none(), "{:?}", out.terms);
    assert!(
        out.terms.task > 2.0 && out.terms.task < 8.0,
        "≈ ln 97: {:?}",
        out.terms
    );
    assert_eq!(out.ctx_kept, out.ctx_tokens, "GCA reads the whole context");
    for i in landmark_params(&cfg) {
        let g = out.grads[i].as_ref().expect("landmark gradient");
        assert!(
            g.data.iter().any(|&x| x != 0.0),
            "{}",
            model.layout.names[i]
        );
    }
}

/// Same bound as tests/it/model.rs: f32 with different summation orders through two blocks
/// and the LM head; a wrong term would be O(1e-2).
const MODEL_TOL: Tol = Tol::new(2e-4, 2e-3);

#[test]
fn gca_model_wgpu_matches_cpu_losses_and_every_gradient() {
    if common::gpu("gca_model_wgpu_matches_cpu_losses_and_every_gradient").is_none() {
        return;
    }
    let cfg = gca_config(2);
    let host = params(&cfg);
    let cpu = CpuBackend;
    let gpu = WgpuBackend::new(Arc::new(
        dsrsq::device::GpuContext::from_env().expect("adapter found above"),
    ));
    let mc = Model::from_host(&cpu, &cfg, &host).expect("cpu model");
    let mg = Model::from_host(&gpu, &cfg, &host).expect("gpu model");
    let ex = examples();
    let oc = mc.step(&cpu, &ex, 0, true, false).expect("cpu step");
    let og = mg.step(&gpu, &ex, 0, true, false).expect("gpu step");
    common::assert_ok(compare(
        "total loss",
        &[og.terms.total],
        &[oc.terms.total],
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
            (None, None) => {
                assert!(
                    name.starts_with("dsr.") || name.contains("rckv."),
                    "`{name}` got no gradient"
                );
            }
            _ => panic!("`{name}` has a gradient on one backend only"),
        }
    }
}

/// Central differences in f32 of a loss of size ~5: one ulp of the loss (5e-7) over
/// 2·eps = 6e-2 is ~1e-5, hence 3e-5 absolute; the landmark weights act through two
/// softmaxes whose curvature keeps the truncation error (eps²·f''') under 3e-2 relative at
/// eps 3e-2, and a larger step than tests/it/model.rs's 3e-3 keeps the rounding small next to
/// gradients of ~1e-3.
const FD_TOL: Tol = Tol::new(3e-5, 3e-2);
const LANDMARK_EPS: f32 = 3e-2;

#[test]
fn landmark_gradient_matches_finite_differences() {
    // top_k ≥ every chunk's candidate count: each chunk retrieves all its candidates, so a
    // perturbation reorders slots at most (the fused sum does not depend on slot order) and
    // never changes the selection; the gradient still flows through the fusion softmax.
    let cfg = gca_config(8);
    let mut host = params(&cfg);
    // Sharper retrieval weights, and every row a language-modelling target, so the loss's
    // dependence on the landmarks stands well above f32 rounding of the loss.
    for i in landmark_params(&cfg) {
        host[i].data.iter_mut().for_each(|x| *x *= 4.0);
    }
    for l in &ParamLayout::new(&cfg).idx.layers {
        host[l.wo].data.iter_mut().for_each(|x| *x *= 10.0);
    }
    let be = CpuBackend;
    let ex: Vec<Example> = examples()
        .into_iter()
        .map(|mut e| {
            for p in 0..e.ids.len() - 1 {
                e.targets[p] = e.ids[p + 1] as i32;
            }
            e
        })
        .collect();
    let model = Model::from_host(&be, &cfg, &host).expect("model");
    let out = model.step(&be, &ex, 0, true, false).expect("step");
    let loss_at = |p: &[Tensor]| {
        let m = Model::from_host(&be, &cfg, p).expect("model");
        m.step(&be, &ex, 0, false, false).expect("step").terms.total
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut largest = 0f32;
    for i in landmark_params(&cfg) {
        let g = out.grads[i].as_ref().expect("gradient");
        let (mut got, mut want, mut picks) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let j = rng.random_range(0..host[i].data.len());
            let mut p = host.clone();
            p[i].data[j] += LANDMARK_EPS;
            let lp = loss_at(&p);
            p[i].data[j] -= 2.0 * LANDMARK_EPS;
            let lm = loss_at(&p);
            picks.push(j);
            want.push((lp - lm) / (2.0 * LANDMARK_EPS));
            got.push(g.data[j]);
        }
        let name = &model.layout.names[i];
        largest = want.iter().fold(largest, |m: f32, w| m.max(w.abs()));
        common::assert_ok(compare(
            &format!("d loss / d {name} at {picks:?}"),
            &got,
            &want,
            FD_TOL,
        ));
    }
    // The check is not vacuous: some probed derivatives are well above the absolute bound.
    assert!(
        largest > 10.0 * FD_TOL.atol,
        "largest probed derivative {largest}"
    );
}

#[test]
fn gca_cached_greedy_decoding_gives_the_reference_tokens() {
    let cfg = gca_config(2);
    let be = CpuBackend;
    let model = Model::from_host(&be, &cfg, &params(&cfg)).expect("model");
    for ex in &examples() {
        let want = greedy_reference(&be, &model, ex, 3, 4).unwrap();
        let (got, bytes) = greedy_cached(&be, &model, ex, 3, 4).unwrap();
        assert_eq!(want, got);
        let m = &cfg.model;
        assert_eq!(bytes, 2 * m.layers * (ex.q1 + 1) * m.d_model * 4);
    }
}
