//! The evaluation harness: greedy decoding agrees with the teacher-forced forward it is the
//! reference for, the report's task scores are those of its own predictions, and
//! `dsrsq eval` writes every figure to JSON (or names what is wrong with its input).

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use dsrsq::backend::CpuBackend;
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::eval::generate::{greedy_reference, is_generative};
use dsrsq::eval::harness::{evaluate_model, quantile};
use dsrsq::eval::score_all;
use dsrsq::model::{Config, Model};
use dsrsq::train::eval::evaluate;
use dsrsq::train::{train, TrainOptions};

fn small_config() -> Config {
    common::small_model_config(2)
}

fn examples(spec: &str, n: u64) -> (Tok, Vec<Example>) {
    let tok = Tok::bundled().expect("tokenizer");
    let ds = DataSpec::parse(spec)
        .expect("spec")
        .open(&tok, 7, Split::Eval, &LoadOptions::default())
        .expect("open");
    let ex = (0..n).map(|i| ds.example(i).expect("example")).collect();
    (tok, ex)
}

/// `ex` with its answer replaced by `answer` (+ EOS), every answer row scored.
fn with_answer(ex: &Example, answer: &[u32], eos: u32) -> Example {
    let mut ids = ex.ids[..=ex.q1].to_vec();
    ids.extend_from_slice(answer);
    ids.push(eos);
    let mut targets = vec![-1i32; ids.len()];
    for p in ex.q1..ids.len() - 1 {
        targets[p] = ids[p + 1] as i32;
    }
    Example {
        ids,
        targets,
        ..ex.clone()
    }
}

#[test]
fn greedy_answers_are_what_the_teacher_forced_forward_predicts() {
    let be = CpuBackend;
    let model = Model::new(&be, &small_config(), 3).expect("model");
    let (tok, exs) = examples("passkey:ctx=96", 3);
    let eos = tok.specials().eos;
    for ex in &exs {
        assert!(is_generative(ex, eos), "passkey is free-form QA");
        // An untrained model rarely says EOS: most answers are cut at 4 tokens.
        let g = greedy_reference(&be, &model, ex, eos, 4).expect("decode");
        assert!(g.stopped || g.tokens.len() == 4, "{g:?}");
        assert!(g.ctx_tokens > 0 && g.ctx_kept <= g.ctx_tokens, "{g:?}");
        // Teacher-forced on its own greedy answer + EOS, every generated row is predicted
        // right; the EOS row too exactly when decoding stopped there.
        let own = with_answer(ex, &g.tokens, eos);
        let st = evaluate(&be, &model, &[own], 1, 0).expect("teacher-forced");
        assert_eq!(st.rows, g.tokens.len() + 1);
        assert_eq!(
            st.rows_correct,
            st.rows - usize::from(!g.stopped),
            "greedy {:?} (stopped: {}) not reproduced",
            g.tokens,
            g.stopped
        );
    }
}

#[test]
fn mqar_is_scored_teacher_forced_only() {
    let be = CpuBackend;
    let model = Model::new(&be, &small_config(), 3).expect("model");
    let (tok, exs) = examples("mqar:ctx=64,pairs=4", 3);
    assert!(!is_generative(&exs[0], tok.specials().eos));
    let r = evaluate_model(&be, &model, &tok, &exs, 2, 4, &mut |_, _| {}).expect("eval");
    assert_eq!(r.examples, 3);
    assert!(r.task.is_none() && r.efficiency.is_none() && r.predictions.is_empty());
    assert!((0.0..=1.0).contains(&r.teacher_forced.row_accuracy));
}

#[test]
fn the_report_scores_its_own_predictions() {
    let be = CpuBackend;
    let model = Model::new(&be, &small_config(), 5).expect("model");
    let (tok, exs) = examples("passkey:ctx=80", 4);
    let mut calls = Vec::new();
    let r = evaluate_model(&be, &model, &tok, &exs, 2, 3, &mut |d, n| {
        calls.push((d, n))
    })
    .expect("eval");
    assert_eq!(calls, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    assert_eq!(r.predictions.len(), 4);
    let preds: Vec<String> = r.predictions.iter().map(|p| p.prediction.clone()).collect();
    let golds: Vec<Vec<String>> = r.predictions.iter().map(|p| p.gold.clone()).collect();
    assert_eq!(golds[0], exs[0].answers);
    let again = score_all(&preds, &golds).expect("score");
    assert_eq!(r.task.as_ref(), Some(&again));
    let e = r.efficiency.expect("efficiency");
    let prompt: usize = exs.iter().map(|x| x.q1 + 1).sum();
    assert_eq!(e.prompt_tokens, prompt);
    let generated: usize = r
        .predictions
        .iter()
        .map(|p| tok.encode(&p.prediction).expect("encode").len())
        .sum();
    assert!(
        e.generated_tokens <= 4 * 3 && generated <= 4 * 3 + 4,
        "{e:?}"
    );
    assert!(e.tokens_per_second > 0.0 && e.latency_p50_s <= e.latency_p95_s);
    assert!(e.token_efficiency > 0.0 && e.token_efficiency <= 1.0);
    assert!(e.peak_rss_bytes.is_some_and(|b| b > 0));
}

#[test]
fn quantiles_use_the_nearest_rank() {
    let v: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(quantile(&v, 0.5), 10.0);
    assert_eq!(quantile(&v, 0.95), 19.0);
    assert_eq!(quantile(&v, 1.0), 20.0);
    assert_eq!(quantile(&[3.0], 0.95), 3.0);
    assert!(quantile(&[], 0.5).is_nan());
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsrsq-eval-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn dsrsq_eval_writes_every_figure_and_names_bad_input() {
    let dir = tmp("cli");
    let mut opts = TrainOptions::new(small_config(), "passkey:ctx=80", 2);
    opts.out_dir = Some(dir.clone());
    opts.checkpoint_every = 2;
    opts.warmup = 1;
    train(&CpuBackend, &opts).expect("train");
    let out = dir.join("eval.json");
    let run = Command::new(env!("CARGO_BIN_EXE_dsrsq"))
        .args([
            "eval",
            "--quiet",
            "--data",
            "passkey:ctx=80",
            "--examples",
            "3",
        ])
        .args(["--max-new", "2", "--checkpoint"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run dsrsq eval");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("json")).expect("parse");
    assert_eq!(j["step"], 2);
    assert_eq!(j["metrics"]["examples"], 3);
    for key in ["exact_match", "f1", "rouge_l_f", "bleu"] {
        assert!(j["metrics"]["task"][key].is_number(), "{key}: {j}");
    }
    for key in [
        "tokens_per_second",
        "latency_p50_s",
        "latency_p95_s",
        "token_efficiency",
    ] {
        assert!(j["metrics"]["efficiency"][key].is_number(), "{key}: {j}");
    }
    assert!(j["config"]["model"]["d_model"] == 32 && j["device"].is_string());

    let missing = Command::new(env!("CARGO_BIN_EXE_dsrsq"))
        .args(["eval", "--data", "passkey:ctx=80", "--checkpoint"])
        .arg(dir.join("nothing-here"))
        .output()
        .expect("run");
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("nothing-here"), "{err}");
}
