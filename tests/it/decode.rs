//! The KV-cache decoder computes what the full forward computes for the newest row: the
//! logits of every decode step equal the reference forward over prompt + tokens so far, for
//! the dense model, DSR + RCKV (context read back from latents), and SQA with every cluster
//! routed (dense by definition), on the CPU and on wgpu; and with a short convolution in the
//! blocks, whose decode step continues the convolution from the prompt's last rows.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::device::GpuContext;
use dsrsq::eval::generate::{greedy_cached, greedy_reference};
use dsrsq::kernels::check::{random_vec, Tol};
use dsrsq::model::{AttentionKind, Config, KvDecoder, Model, ParamLayout};

/// Both paths run the same f32 ops but sum in different orders (tiled causal attention over
/// all rows vs one softmax row per step; a scatter-built cache), over two layers.
const LOGITS_TOL: Tol = Tol {
    atol: 1e-4,
    rtol: 1e-4,
};

fn examples(n: u64) -> (Tok, Vec<Example>) {
    let tok = Tok::bundled().expect("tokenizer");
    let ds = DataSpec::parse("passkey:ctx=96")
        .expect("spec")
        .open(&tok, 11, Split::Eval, &LoadOptions::default())
        .expect("open");
    let ex = (0..n).map(|i| ds.example(i).expect("example")).collect();
    (tok, ex)
}

const VARIANTS: [&str; 5] = [
    "standard",
    "dsr_rckv",
    "sqa_all_clusters",
    "standard_conv",
    "dsr_rckv_conv",
];

fn variant(name: &str) -> Config {
    let mut c = common::small_model_config(1);
    match name {
        "standard" => {
            c.model.use_dsr = false;
            c.model.attention = AttentionKind::Dense;
            c.model.use_rckv = false;
        }
        "dsr_rckv" => c.model.attention = AttentionKind::Dense,
        "sqa_all_clusters" => c.sqa.top_k = c.sqa.clusters,
        "standard_conv" => {
            c.model.use_dsr = false;
            c.model.attention = AttentionKind::Dense;
            c.model.use_rckv = false;
            c.model.short_conv = 3;
        }
        "dsr_rckv_conv" => {
            c.model.attention = AttentionKind::Dense;
            c.model.short_conv = 4;
        }
        _ => panic!("unknown variant {name}"),
    }
    c
}

/// `ex`'s prompt plus `answer`, only the last row scored: its logits are the next token's.
fn prompt_plus(ex: &Example, answer: &[u32]) -> Example {
    let mut ids = ex.ids[..=ex.q1].to_vec();
    ids.extend_from_slice(answer);
    let mut targets = vec![-1i32; ids.len()];
    *targets.last_mut().expect("non-empty") = 0;
    Example {
        ids,
        targets,
        answers: Vec::new(),
        ..ex.clone()
    }
}

fn full_logits<B: Backend>(be: &B, model: &Model<B>, ex: &Example, answer: &[u32]) -> Vec<f32> {
    let out = model
        .step(be, &[prompt_plus(ex, answer)], 0, false, true)
        .expect("forward");
    be.download(&out.logits.expect("logits kept")).unwrap().data
}

fn compare(want: &[f32], got: &[f32], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: logits length");
    for (i, (&w, &g)) in want.iter().zip(got).enumerate() {
        let bound = LOGITS_TOL.atol + LOGITS_TOL.rtol * w.abs();
        assert!(
            (w - g).abs() <= bound,
            "{what}: logit {i}: reference {w}, cached {g} (bound {bound})"
        );
    }
}

/// Feeds each example's true answer through the cache and checks every step's logits against
/// the CPU full forward of the same prefix.
fn check_variant<B: Backend>(be: &B, name: &str) {
    let cfg = variant(name);
    let cpu = CpuBackend;
    let mut params = Model::new(&cpu, &cfg, 5)
        .expect("model")
        .to_host(&cpu)
        .unwrap();
    // Convolution taps start at 0; random ones make the decoder's carried rows matter.
    for l in &ParamLayout::new(&cfg).idx.layers {
        if let Some(cw) = l.conv_w {
            let n = params[cw].data.len();
            params[cw].data = random_vec(cw as u64, n, 0.5);
        }
    }
    let host = Model::from_host(&cpu, &cfg, &params).expect("model");
    let model = Model::from_host(be, &cfg, &params).expect("upload");
    let (_, exs) = examples(2);
    for (e, ex) in exs.iter().enumerate() {
        let answer: Vec<u32> = ex.ids[ex.q1 + 1..].to_vec();
        assert!(answer.len() >= 3, "passkey answers have digits and EOS");
        let (mut dec, logits) = KvDecoder::prefill(be, &model, &prompt_plus(ex, &[])).unwrap();
        let what = format!("{name}, example {e}, prompt");
        compare(
            &full_logits(&cpu, &host, ex, &[]),
            &be.download(&logits).unwrap().data,
            &what,
        );
        for t in 0..answer.len() {
            let logits = dec.step(be, answer[t]).unwrap();
            let what = format!("{name}, example {e}, after {} answer tokens", t + 1);
            compare(
                &full_logits(&cpu, &host, ex, &answer[..=t]),
                &be.download(&logits).unwrap().data,
                &what,
            );
        }
        assert!(dec.cache_bytes() > 0);
    }
}

#[test]
fn cached_logits_equal_the_full_forward_on_the_cpu() {
    for name in VARIANTS {
        check_variant(&CpuBackend, name);
    }
}

#[test]
fn cached_logits_on_wgpu_equal_the_cpu_full_forward() {
    if common::gpu("cached_logits_on_wgpu_equal_the_cpu_full_forward").is_none() {
        return;
    }
    let be = WgpuBackend::new(Arc::new(
        GpuContext::from_env().expect("adapter found above"),
    ));
    for name in VARIANTS {
        check_variant(&be, name);
    }
}

#[test]
fn cached_greedy_decoding_gives_the_reference_tokens() {
    let be = CpuBackend;
    let (tok, exs) = examples(3);
    let eos = tok.specials().eos;
    for name in ["standard", "dsr_rckv"] {
        let model = Model::new(&be, &variant(name), 9).expect("model");
        for ex in &exs {
            let want = greedy_reference(&be, &model, ex, eos, 6).unwrap();
            let (got, bytes) = greedy_cached(&be, &model, ex, eos, 6).unwrap();
            assert_eq!(want, got, "{name}");
            assert!(bytes > 0);
        }
    }
}

/// The compressed cache holds C latents instead of C exact key/value rows.
#[test]
fn the_rckv_cache_is_smaller_than_the_exact_one() {
    let be = CpuBackend;
    let (_, exs) = examples(1);
    let mut exact = variant("dsr_rckv");
    exact.model.use_rckv = false;
    let rckv = variant("dsr_rckv");
    let size = |cfg: &Config| {
        let model = Model::new(&be, cfg, 1).unwrap();
        let (dec, _) = KvDecoder::prefill(&be, &model, &prompt_plus(&exs[0], &[])).unwrap();
        (dec.cache_bytes(), dec.ctx_kept)
    };
    let (exact_bytes, exact_kept) = size(&exact);
    let (rckv_bytes, rckv_kept) = size(&rckv);
    let (dm, lat) = (rckv.model.d_model, rckv.rckv.compressed_dim);
    let q_rows = exs[0].q1 + 1 - exs[0].n_ctx;
    let layers = rckv.model.layers;
    assert_eq!(exact_bytes, layers * 4 * 2 * dm * (exact_kept + q_rows));
    assert_eq!(rckv_bytes, layers * 4 * (lat * rckv_kept + 2 * dm * q_rows));
    assert!(rckv_bytes < exact_bytes);
}
