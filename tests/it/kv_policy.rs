//! The training-free KV policies (`razor`, `pyramid`): at their limit (nothing dropped) every
//! decode step's logits equal the exact decoder's; below it the cache is smaller by exactly
//! the rows dropped and the logits stay finite (CPU and wgpu); plus the pieces on hand-made
//! inputs: PyramidKV's budgets, SnapKV's pooling, Razor's head scores and the compensation
//! token against a direct f64 computation.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::device::GpuContext;
use dsrsq::kernels::check::{compare, random_vec, Tol};
use dsrsq::model::kv_policy::{pyramid, razor};
use dsrsq::model::{AttentionKind, Config, KvDecoder, KvPolicy, Model};
use dsrsq::Tensor;

/// At the limit both decoders run the same matmul/softmax shapes on the same rows; only the
/// cache layout (one `[rows, dm]` buffer vs per-head groups) and a zero added by the head
/// scatter differ, so the logits agree to f32 rounding.
const LIMIT_TOL: Tol = Tol::new(1e-5, 1e-5);
/// The compressed decoder on wgpu vs on the CPU: same ops, different summation orders in the
/// matmuls and softmax over two layers (as `tests/it/decode.rs`).
const BACKEND_TOL: Tol = Tol::new(1e-4, 1e-4);
/// One softmax over 9 rows in f32 vs f64.
const COMP_TOL: Tol = Tol::new(1e-5, 1e-5);

fn examples(n: u64) -> Vec<Example> {
    let tok = Tok::bundled().expect("tokenizer");
    let ds = DataSpec::parse("passkey:ctx=64")
        .expect("spec")
        .open(&tok, 11, Split::Eval, &LoadOptions::default())
        .expect("open");
    (0..n).map(|i| ds.example(i).expect("example")).collect()
}

/// The standard dense model (the donor of both baselines) under `kv`.
fn config(kv: KvPolicy) -> Config {
    let mut c = common::small_model_config(1);
    c.model.use_dsr = false;
    c.model.attention = AttentionKind::Dense;
    c.model.use_rckv = false;
    c.model.kv = kv;
    c.razor.probe_len = 12;
    c.razor.retrieval_heads = 0.25;
    c.razor.echo_heads = 0.0;
    c.pyramid.window = 8;
    c.pyramid.kernel = 3;
    c.validate("test").expect("valid");
    c
}

fn prompt(ex: &Example) -> Example {
    let ids = ex.ids[..=ex.q1].to_vec();
    let mut targets = vec![-1i32; ids.len()];
    *targets.last_mut().expect("non-empty") = 0;
    Example {
        ids,
        targets,
        answers: Vec::new(),
        ..ex.clone()
    }
}

/// Logits of the prefill and of each step feeding the example's answer, and the cache size
/// after the prompt.
fn decode<B: Backend>(
    be: &B,
    cfg: &Config,
    host: &[Tensor],
    ex: &Example,
) -> (Vec<Vec<f32>>, usize) {
    let model = Model::from_host(be, cfg, host).expect("upload");
    let (mut dec, logits) = KvDecoder::prefill(be, &model, &prompt(ex)).expect("prefill");
    let bytes = dec.cache_bytes();
    let mut out = vec![be.download(&logits).unwrap().data];
    for &t in &ex.ids[ex.q1 + 1..] {
        out.push(be.download(&dec.step(be, t).unwrap()).unwrap().data);
    }
    (out, bytes)
}

fn host_weights(cfg: &Config, seed: u64) -> Vec<Tensor> {
    let cpu = CpuBackend;
    Model::new(&cpu, cfg, seed).unwrap().to_host(&cpu).unwrap()
}

fn check_limit<B: Backend>(be: &B, kv: KvPolicy) {
    let mut cfg = config(kv);
    cfg.razor.window = 4096;
    cfg.pyramid.budget = 4096;
    let exact = config(KvPolicy::Exact);
    let host = host_weights(&exact, 3);
    for (e, ex) in examples(2).iter().enumerate() {
        let (want, want_bytes) = decode(be, &exact, &host, ex);
        let (got, bytes) = decode(be, &cfg, &host, ex);
        assert_eq!(
            bytes, want_bytes,
            "{kv:?}: nothing dropped, same cache size"
        );
        for (t, (w, g)) in want.iter().zip(&got).enumerate() {
            common::assert_ok(compare(&format!("{kv:?} ex {e} step {t}"), g, w, LIMIT_TOL));
        }
    }
}

#[test]
fn at_the_limit_both_policies_equal_the_exact_decoder_on_the_cpu() {
    check_limit(&CpuBackend, KvPolicy::Razor);
    check_limit(&CpuBackend, KvPolicy::Pyramid);
}

fn wgpu() -> Option<WgpuBackend> {
    common::gpu("kv_policy on wgpu")?;
    Some(WgpuBackend::new(Arc::new(
        GpuContext::from_env().expect("adapter found above"),
    )))
}

#[test]
fn at_the_limit_both_policies_equal_the_exact_decoder_on_wgpu() {
    let Some(be) = wgpu() else { return };
    check_limit(&be, KvPolicy::Razor);
    check_limit(&be, KvPolicy::Pyramid);
}

/// Bytes of `rows` cached rows of one head (keys and values, f32).
fn head_bytes(cfg: &Config, rows: usize) -> usize {
    2 * rows * cfg.head_dim() * 4
}

fn check_below<B: Backend>(be: &B, kv: KvPolicy) -> Vec<Vec<Vec<f32>>> {
    let mut cfg = config(kv);
    cfg.razor.sink = 2;
    cfg.razor.window = 8;
    cfg.pyramid.budget = 24;
    let exact = config(KvPolicy::Exact);
    let host = host_weights(&exact, 4);
    let (layers, heads) = (cfg.model.layers, cfg.model.heads);
    let mut all = Vec::new();
    for ex in examples(2) {
        let l = ex.q1 + 1;
        let (_, exact_bytes) = decode(be, &exact, &host, &ex);
        let (got, bytes) = decode(be, &cfg, &host, &ex);
        assert_eq!(exact_bytes, layers * heads * head_bytes(&cfg, l));
        let want = match kv {
            // One retrieval head of the four (25%) keeps all rows; the others keep sinks +
            // window + the compensation row, and each compressed group its dropped count.
            KvPolicy::Razor => {
                // With one retrieval head in all, every layer has a compressed group.
                let cut = layers * heads - 1;
                head_bytes(&cfg, l) + cut * head_bytes(&cfg, 2 + 8 + 1) + 4 * layers
            }
            // The pyramid redistributes, so the total is a uniform budget's.
            _ => layers * heads * head_bytes(&cfg, 24),
        };
        assert_eq!(bytes, want, "{kv:?}: compressed cache size");
        assert!(bytes < exact_bytes);
        for (t, row) in got.iter().enumerate() {
            assert!(row.iter().all(|x| x.is_finite()), "{kv:?} step {t}");
        }
        all.push(got);
    }
    all
}

#[test]
fn below_the_limit_the_cache_shrinks_and_logits_stay_finite_on_the_cpu() {
    check_below(&CpuBackend, KvPolicy::Razor);
    check_below(&CpuBackend, KvPolicy::Pyramid);
}

/// The compressed decoders on wgpu give the CPU's logits (the head set is cached per model,
/// so both backends use the one the CPU scored).
#[test]
fn below_the_limit_wgpu_matches_the_cpu() {
    let Some(be) = wgpu() else { return };
    for kv in [KvPolicy::Razor, KvPolicy::Pyramid] {
        let want = check_below(&CpuBackend, kv);
        let got = check_below(&be, kv);
        for (e, (w, g)) in want.iter().zip(&got).enumerate() {
            for (t, (w, g)) in w.iter().zip(g).enumerate() {
                common::assert_ok(compare(
                    &format!("{kv:?} ex {e} step {t}"),
                    g,
                    w,
                    BACKEND_TOL,
                ));
            }
        }
    }
}

#[test]
fn pyramid_budgets_sum_to_the_total_and_shrink_with_depth() {
    for (avg, layers, beta, cap) in [
        (96, 4, 20.0, 1000),
        (120, 32, 20.0, 5000),
        (16, 2, 20.0, 100),
    ] {
        let b = pyramid::layer_budgets(avg, layers, beta, cap);
        assert_eq!(b.len(), layers);
        assert_eq!(b.iter().sum::<usize>(), layers * avg, "{b:?}");
        assert!(b.windows(2).all(|w| w[0] >= w[1]), "non-increasing: {b:?}");
        assert!(b[0] > b[layers - 1], "decreasing: {b:?}");
        // Rounded down, the top layer gets ⌊avg/β⌋ (the remainder goes to the bottom).
        assert_eq!(b[layers - 1], (avg as f32 / beta).floor() as usize, "{b:?}");
    }
    // 96 / 20 = 4.8 → 4; bottom 187.2; the two leftover rows go to the lowest layers.
    assert_eq!(
        pyramid::layer_budgets(96, 4, 20.0, 1000),
        vec![188, 127, 65, 4]
    );
    // Bottom capped at the 150 available rows: top = 2·96 − 150 = 42, same total.
    let capped = pyramid::layer_budgets(96, 4, 20.0, 150);
    assert_eq!(capped, vec![150, 114, 78, 42]);
    assert_eq!(pyramid::layer_budgets(7, 1, 20.0, 100), vec![7]);
}

#[test]
fn snapkv_average_pooling_and_top_k_on_a_hand_made_score() {
    let s = [0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 9.0];
    let pooled = pyramid::avg_pool(&s, 3);
    let want = [0.0, 2.0, 2.0, 2.0, 0.0, 3.0, 3.0];
    common::assert_ok(compare("avg_pool k=3", &pooled, &want, Tol::new(1e-6, 0.0)));
    // Rows 5 and 6 share the pooled peak; of the tied 2.0s the earliest (row 1) wins.
    assert_eq!(pyramid::top_rows(&pooled, 3), vec![1, 5, 6]);
    assert_eq!(pyramid::top_rows(&[1.0, 3.0, 3.0, 2.0], 2), vec![1, 2]);
    // Kernel 5 divides by 5 even at the edges (zero padding counts).
    let p5 = pyramid::avg_pool(&[5.0, 0.0, 0.0, 0.0, 0.0], 5);
    common::assert_ok(compare(
        "avg_pool k=5",
        &p5,
        &[1.0, 1.0, 1.0, 0.0, 0.0],
        Tol::new(1e-6, 0.0),
    ));
}

/// Attention `[H, 2p, 2p]` where head 0 is an induction head (each second-copy query looks at
/// the token after its earlier copy), head 1 an echo head, head 2 attends to itself.
fn hand_made_attention(p: usize) -> Vec<f32> {
    let n = 2 * p;
    let mut a = vec![0.0f32; 3 * n * n];
    for i in 0..n {
        let target = |h: usize| match (h, i >= p) {
            (0, true) => i - p + 1,
            (1, true) => i - p,
            _ => i,
        };
        for h in 0..3 {
            a[(h * n + i) * n + target(h)] = 1.0;
        }
    }
    a
}

#[test]
fn razor_scores_a_copying_head_high() {
    let p = 6;
    let att = hand_made_attention(p);
    let vals: Vec<f32> = razor::probe_indices(3, p)
        .iter()
        .map(|&i| att[i as usize])
        .collect();
    let s = razor::head_scores(&vals, 3, p);
    assert_eq!(s, vec![(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)]);
    // 1 of 3 heads (⌊0.34·3⌉ = 1) with no echo quota: the induction head.
    assert_eq!(razor::select_heads(&s, 0.34, 0.0), vec![true, false, false]);
    // An echo quota of one head picks the echo head first, induction fills the rest.
    assert_eq!(razor::select_heads(&s, 0.67, 0.34), vec![true, true, false]);
    // At least one head even for a zero fraction.
    assert_eq!(
        razor::select_heads(&s, 0.0, 0.0)
            .iter()
            .filter(|&&k| k)
            .count(),
        1
    );
    let probe = razor::probe_tokens(1000, 8);
    assert_eq!(&probe[..8], &probe[8..]);
    let distinct: std::collections::BTreeSet<_> = probe[..8].iter().collect();
    assert_eq!(distinct.len(), 8, "distinct probe tokens");
}

/// One compressed head (2 sinks, 3 recent, the 5 rows between folded into one) plus the new
/// row, against `(m·e^{s(k̂)}·v̂ + Σ e^{s(k)}·v) / (m·e^{s(k̂)} + Σ e^{s(k)})` in f64.
#[test]
fn razor_compensation_token_matches_the_f64_formula() {
    let be = CpuBackend;
    let (l, d, sink, window) = (10usize, 4usize, 2usize, 3usize);
    let kh = random_vec(1, l * d, 1.0);
    let vh = random_vec(2, l * d, 1.0);
    let (q, k, v) = (
        random_vec(3, d, 1.0),
        random_vec(4, d, 1.0),
        random_vec(5, d, 1.0),
    );
    let mut cfg = config(KvPolicy::Razor).razor;
    cfg.sink = sink;
    cfg.window = window;
    let t = |x: &[f32], s: &[usize]| Tensor::new(x.to_vec(), s).unwrap();
    let mut groups = razor::compress(&be, &cfg, &[false], &t(&kh, &[l, d]), &t(&vh, &[l, d]), l)
        .expect("compress");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].rows, sink + 1 + window);
    let o = dsrsq::model::kv_policy::attend(
        &be,
        &mut groups,
        &t(&q, &[1, d]),
        &t(&k, &[1, d]),
        &t(&v, &[1, d]),
        1,
    )
    .expect("attend");
    assert_eq!(groups[0].rows, sink + 1 + window + 1);

    let row = |x: &[f32], r: usize| -> Vec<f64> {
        x[r * d..(r + 1) * d].iter().map(|&a| a as f64).collect()
    };
    let dot =
        |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (d as f64).sqrt();
    let q64: Vec<f64> = q.iter().map(|&a| a as f64).collect();
    let m = l - sink - window;
    let mean = |x: &[f32]| -> Vec<f64> {
        (0..d)
            .map(|j| (sink..l - window).map(|r| x[r * d + j] as f64).sum::<f64>() / m as f64)
            .collect()
    };
    let (khat, vhat) = (mean(&kh), mean(&vh));
    let mut terms: Vec<(f64, Vec<f64>)> = (0..sink)
        .chain(l - window..l)
        .map(|r| (dot(&q64, &row(&kh, r)).exp(), row(&vh, r)))
        .collect();
    terms.push((m as f64 * dot(&q64, &khat).exp(), vhat));
    let k64: Vec<f64> = k.iter().map(|&a| a as f64).collect();
    terms.push((dot(&q64, &k64).exp(), v.iter().map(|&a| a as f64).collect()));
    let z: f64 = terms.iter().map(|(w, _)| w).sum();
    let want: Vec<f32> = (0..d)
        .map(|j| (terms.iter().map(|(w, v)| w * v[j]).sum::<f64>() / z) as f32)
        .collect();
    common::assert_ok(compare("compensated attention", &o.data, &want, COMP_TOL));
}
