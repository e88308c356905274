//! The `rag` (BM25) and `attention_rag` context baselines: BM25 against hand-computed scores,
//! chunking edge cases, the budget and order of what is kept, exactness against the standard
//! model when everything fits (CPU and wgpu), the attention scorer on both backends, and
//! `dsrsq eval --model rag` on a standard checkpoint.

use crate::common;

use std::sync::Arc;

use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::device::GpuContext;
use dsrsq::eval::generate::greedy_cached;
use dsrsq::kernels::check::Tol;
use dsrsq::model::context::{self, bm25::Bm25};
use dsrsq::model::{variants, Config, Model};

/// BM25 is f64 arithmetic on a handful of terms: only the last bits of `ln` may differ.
const BM25_TOL: f64 = 1e-12;

/// With the whole context in budget the plan, hence the batch and every op, is the standard
/// model's: the same kernels on the same inputs are deterministic, so logits match bit for bit.
const EXACT: Tol = Tol {
    atol: 0.0,
    rtol: 0.0,
};

/// Chunk masses on wgpu vs the CPU: f32 attention over ≤ 60 rows and two layers, summed in a
/// different order per backend (tiled matmul, tree-reduced softmax), then f64 sums of ≤ 16
/// probabilities; masses are ≤ 1, so an absolute bound of a few f32 ulps of 1 fits.
const SCORES_TOL: Tol = Tol {
    atol: 2e-6,
    rtol: 1e-4,
};

fn passkey(ctx: usize, n: u64) -> (Tok, Vec<Example>) {
    let tok = Tok::bundled().expect("tokenizer");
    let ds = DataSpec::parse(&format!("passkey:ctx={ctx}"))
        .expect("spec")
        .open(&tok, 11, Split::Eval, &LoadOptions::default())
        .expect("open");
    let ex = (0..n).map(|i| ds.example(i).expect("example")).collect();
    (tok, ex)
}

fn model_cfg(name: &str) -> Config {
    let c = variants::apply(&common::small_model_config(1), name).expect("known model");
    c.validate("test").expect("valid");
    c
}

fn close(want: &[f32], got: &[f32], tol: Tol, what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: length");
    for (i, (&w, &g)) in want.iter().zip(got).enumerate() {
        let bound = tol.atol + tol.rtol * w.abs();
        assert!(
            (w - g).abs() <= bound,
            "{what}: element {i}: {w} vs {g} (bound {bound})"
        );
    }
}

#[test]
fn bm25_scores_equal_hand_computed_values() {
    // Three documents, avgdl = (4 + 2 + 3) / 3 = 3; query terms 1, 2 and the absent 6.
    let docs: [&[u32]; 3] = [&[1, 2, 3, 1], &[2, 4], &[5, 5, 5]];
    let bm = Bm25 { k1: 1.2, b: 0.75 };
    let got = bm.scores(&docs, &[1, 2, 6], &[]);
    // idf(1) = ln(1 + (3 − 1 + .5)/(1 + .5)) = ln(8/3); idf(2) = ln(1 + 1.5/2.5) = ln(1.6).
    // D0: |D| = 4, k1·(1 − b + b·4/3) = 1.5; f(1) = 2, f(2) = 1.
    // D1: |D| = 2, k1·(1 − b + b·2/3) = 0.9; f(2) = 1.   D2: no query term.
    let want = [
        (8.0f64 / 3.0).ln() * 2.0 * 2.2 / (2.0 + 1.5) + 1.6f64.ln() * 2.2 / (1.0 + 1.5),
        1.6f64.ln() * 2.2 / (1.0 + 0.9),
        0.0,
    ];
    for (d, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= BM25_TOL, "document {d}: {g} vs {w}");
    }
    // k1 = 0: every matched term adds exactly its idf, whatever its count or the length.
    let flat = Bm25 { k1: 0.0, b: 0.75 }.scores(&docs, &[1, 2], &[]);
    let w0 = (8.0f64 / 3.0).ln() + 1.6f64.ln();
    assert!((flat[0] - w0).abs() <= BM25_TOL && (flat[1] - 1.6f64.ln()).abs() <= BM25_TOL);
    // b = 0: length is ignored, so one occurrence scores idf·(k1+1)/(1+k1) = idf everywhere.
    let nolen = Bm25 { k1: 1.2, b: 0.0 }.scores(&docs, &[2], &[]);
    assert!((nolen[0] - nolen[1]).abs() <= BM25_TOL);
    assert!(bm.scores(&[], &[1], &[]).is_empty());
}

#[test]
fn chunks_cover_the_context_with_a_short_last_chunk() {
    assert_eq!(
        context::chunks(130, 64),
        vec![(0, 64), (64, 128), (128, 130)]
    );
    assert_eq!(context::chunks(128, 64), vec![(0, 64), (64, 128)]);
    assert_eq!(context::chunks(10, 64), vec![(0, 10)]);
    assert_eq!(context::chunks(1, 64), vec![(0, 1)]);
    assert!(context::chunks(0, 64).is_empty());
    // A 1-token context is one chunk and is kept whole by any budget ≥ 1, dropped by 0.
    assert_eq!(context::select(&context::chunks(1, 64), &[0.0], 1), vec![0]);
    assert!(context::select(&context::chunks(1, 64), &[0.0], 0).is_empty());
}

/// The chunk holding the question's rare token is the one BM25 keeps.
#[test]
fn rag_keeps_the_chunk_that_matches_the_question() {
    let tok = Tok::bundled().expect("tokenizer");
    let ctx: Vec<u32> = (0..250).map(|i| 2000 + (i % 40)).collect();
    let mut ctx = ctx;
    ctx[150] = 5000; // context position 151 after BOS: chunk [128, 192)
    let ex = Example::qa(
        tok.specials(),
        &ctx,
        &[5000, 2001],
        &[3000],
        &[],
        Vec::new(),
    );
    let mut cfg = model_cfg("rag");
    cfg.rag.budget = 64;
    let model = Model::new(&CpuBackend, &cfg, 3).expect("model");
    let plan = context::context_plan(&CpuBackend, &model, &ex).expect("plan");
    assert_eq!(plan.kept_ctx, 64);
    assert_eq!(&plan.kept[..64], &(128..192).collect::<Vec<u32>>()[..]);
    assert_eq!(
        plan.kept[64], ex.n_ctx as u32,
        "everything after the context follows"
    );
}

/// Below the limit: at most `budget` context tokens, whole chunks, ascending, tail intact.
#[test]
fn plans_below_the_limit_keep_at_most_the_budget_in_whole_chunks_in_order() {
    let (_, exs) = passkey(300, 2);
    for name in ["rag", "attention_rag"] {
        for (budget, max_len) in [(100, 2048), (64, 2048), (0, 200), (0, 30)] {
            let mut cfg = model_cfg(name);
            cfg.rag.budget = budget;
            cfg.model.max_len = max_len;
            let model = Model::new(&CpuBackend, &cfg, 4).expect("model");
            for ex in &exs {
                let limit = context::budget(&cfg, ex);
                let tail = ex.ids.len() - ex.n_ctx;
                assert_eq!(
                    limit,
                    if budget > 0 {
                        budget
                    } else {
                        max_len.saturating_sub(tail)
                    }
                );
                let plan = context::context_plan(&CpuBackend, &model, ex).expect("plan");
                let what = format!("{name}, budget {budget}, max_len {max_len}");
                assert!(plan.kept_ctx <= limit, "{what}: kept {}", plan.kept_ctx);
                let ctx = &plan.kept[..plan.kept_ctx];
                assert!(ctx.windows(2).all(|w| w[0] < w[1]), "{what}: in order");
                let chunks = context::chunks(ex.n_ctx, 64);
                for &(s, e) in &chunks {
                    let n = ctx
                        .iter()
                        .filter(|&&p| (s..e).contains(&(p as usize)))
                        .count();
                    assert!(
                        n == 0 || n == e - s,
                        "{what}: chunk [{s}, {e}) kept in part"
                    );
                }
                // Whole chunks are as many as fit: one more full chunk would exceed the limit.
                assert!(plan.kept_ctx + 64 > limit, "{what}: budget left unused");
                let after: Vec<u32> = (ex.n_ctx as u32..ex.ids.len() as u32).collect();
                assert_eq!(&plan.kept[plan.kept_ctx..], &after[..], "{what}: tail");
            }
            // The forward runs on the selection and reports what it kept.
            let out = model
                .step(&CpuBackend, &exs, 0, false, false)
                .expect("step");
            assert!(out.ctx_kept <= exs.len() * limit_of(&cfg, &exs));
        }
    }
}

fn limit_of(cfg: &Config, exs: &[Example]) -> usize {
    exs.iter()
        .map(|e| context::budget(cfg, e))
        .max()
        .unwrap_or(0)
}

/// With the whole context in budget, `rag` and `attention_rag` are the standard model: same
/// losses and logits from `Model::step`, and the same greedy tokens from the cached decoder.
fn check_limit<B: Backend>(be: &B) {
    let (tok, exs) = passkey(96, 2);
    let eos = tok.specials().eos;
    let std_cfg = model_cfg("standard");
    let host = Model::new(&CpuBackend, &std_cfg, 5)
        .expect("model")
        .to_host(&CpuBackend)
        .expect("host");
    let standard = Model::from_host(be, &std_cfg, &host).expect("standard");
    let want = standard
        .step(be, &exs, 0, false, true)
        .expect("standard step");
    let want_logits = be
        .download(want.logits.as_ref().expect("logits"))
        .unwrap()
        .data;
    assert_eq!(
        want.ctx_kept, want.ctx_tokens,
        "the standard model reads everything here"
    );
    for name in ["rag", "attention_rag"] {
        for budget in [0, 10_000] {
            let mut cfg = model_cfg(name);
            cfg.rag.budget = budget;
            let model = Model::from_host(be, &cfg, &host).expect("donor weights load");
            for ex in &exs {
                let plan = context::context_plan(be, &model, ex).expect("plan");
                assert_eq!(plan, dsrsq::model::SeqPlan::dense(ex), "{name}: dense plan");
            }
            let got = model.step(be, &exs, 0, false, true).expect("step");
            let what = format!("{name}, budget {budget}");
            assert_eq!(got.ctx_kept, want.ctx_kept, "{what}");
            close(
                &[want.terms.task],
                &[got.terms.task],
                EXACT,
                &format!("{what}: loss"),
            );
            let got_logits = be
                .download(got.logits.as_ref().expect("logits"))
                .unwrap()
                .data;
            close(&want_logits, &got_logits, EXACT, &format!("{what}: logits"));
            for ex in &exs {
                let (a, _) = greedy_cached(be, &standard, ex, eos, 4).expect("standard");
                let (b, _) = greedy_cached(be, &model, ex, eos, 4).expect(name);
                assert_eq!(a, b, "{what}: greedy tokens");
            }
        }
    }
}

#[test]
fn at_the_limit_both_baselines_equal_the_standard_model_on_the_cpu() {
    check_limit(&CpuBackend);
}

#[test]
fn at_the_limit_both_baselines_equal_the_standard_model_on_wgpu() {
    if common::gpu("at_the_limit_both_baselines_equal_the_standard_model_on_wgpu").is_none() {
        return;
    }
    check_limit(&WgpuBackend::new(Arc::new(
        GpuContext::from_env().expect("adapter found above"),
    )));
}

/// Several windows (16-token chunks, two per window, the last window shorter).
fn scoring_setup() -> (Config, Vec<Example>) {
    let (_, exs) = passkey(96, 2);
    let mut cfg = model_cfg("attention_rag");
    cfg.rag.chunk = 16;
    let tail = exs[0].q1 + 1 - exs[0].n_ctx;
    cfg.model.max_len = tail + 40;
    (cfg, exs)
}

#[test]
fn attention_scores_are_attention_masses() {
    let (cfg, exs) = scoring_setup();
    let model = Model::new(&CpuBackend, &cfg, 6).expect("model");
    for ex in &exs {
        let s = context::attention_chunk_scores(&CpuBackend, &model, ex).expect("scores");
        assert_eq!(s.len(), context::chunks(ex.n_ctx, 16).len());
        // Two chunks per window; a window's context mass is part of one softmax row per head
        // and layer, so it lies in [0, 1].
        for w in s.chunks(2) {
            let m: f64 = w.iter().sum();
            assert!(
                w.iter().all(|&v| v >= 0.0) && m <= 1.0 + 1e-6,
                "window mass {m}"
            );
        }
        assert!(s.iter().any(|&v| v > 0.0));
    }
}

#[test]
fn attention_chunk_scores_on_wgpu_equal_the_cpu() {
    if common::gpu("attention_chunk_scores_on_wgpu_equal_the_cpu").is_none() {
        return;
    }
    let be = WgpuBackend::new(Arc::new(
        GpuContext::from_env().expect("adapter found above"),
    ));
    let (cfg, exs) = scoring_setup();
    let cpu_model = Model::new(&CpuBackend, &cfg, 6).expect("model");
    let host = cpu_model.to_host(&CpuBackend).expect("host");
    let gpu_model = Model::from_host(&be, &cfg, &host).expect("upload");
    for (e, ex) in exs.iter().enumerate() {
        let want = context::attention_chunk_scores(&CpuBackend, &cpu_model, ex).expect("cpu");
        let got = context::attention_chunk_scores(&be, &gpu_model, ex).expect("wgpu");
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        close(&f(&want), &f(&got), SCORES_TOL, &format!("example {e}"));
        let plan_c = context::context_plan(&CpuBackend, &cpu_model, ex).expect("plan");
        let plan_g = context::context_plan(&be, &gpu_model, ex).expect("plan");
        assert!(plan_g.kept_ctx <= context::budget(&cfg, ex));
        assert_eq!(plan_c.kept_ctx, plan_g.kept_ctx);
    }
}

/// `dsrsq eval --model rag|attention_rag` on a standard checkpoint whose window (max_len 96)
/// is shorter than the evaluated contexts, so both really select.
#[test]
fn eval_cli_runs_rag_and_attention_rag_on_a_standard_checkpoint() {
    let dir = std::env::temp_dir().join(format!("dsrsq-rag-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut c = model_cfg("standard");
    c.model.layers = 1;
    c.model.max_len = 96;
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, toml::to_string(&c).expect("serialize")).expect("write config");
    let run = dir.join("run");
    let exe = env!("CARGO_BIN_EXE_dsrsq");
    let status = std::process::Command::new(exe)
        .args(["train", "--quiet", "--eval-every", "0", "--steps", "2"])
        .args([
            "--data",
            "passkey:ctx=64",
            "--model",
            "standard",
            "--config",
        ])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .status()
        .expect("dsrsq train");
    assert!(status.success(), "training the donor failed");
    for name in ["rag", "attention_rag"] {
        let out = dir.join(format!("eval-{name}.json"));
        let o = std::process::Command::new(exe)
            .args([
                "eval",
                "--quiet",
                "--data",
                "passkey:ctx=160",
                "--examples",
                "2",
            ])
            .args(["--max-new", "3", "--model", name, "--checkpoint"])
            .arg(&run)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("dsrsq eval");
        assert!(
            o.status.success(),
            "eval --model {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let json = std::fs::read_to_string(&out).expect("eval json written");
        assert!(
            json.contains(&format!("\"{name}\"")),
            "{name} named in {json}"
        );
    }
}
