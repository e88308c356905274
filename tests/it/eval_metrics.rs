//! `dsrsq::eval` against golden values from the reference implementations (official SQuAD
//! v1.1 functions, rouge_score 0.1.2, sacrebleu 2.6.0), made by
//! `tests/data/eval_metrics/make_golden.py`, plus hand-checked cases.

use std::path::Path;

use dsrsq::eval::{self, bleu, rouge, squad, EvalError, TaskScores};
use serde::Deserialize;

/// EM, F1 and ROUGE-L are a few exact integer counts and one or two f64 divisions done in the
/// reference's order, so they should match to the bit; 1e-9 only absorbs the last-digit
/// rounding of JSON float text.
const ATOL_RATIO: f64 = 1e-9;
/// BLEU goes through `ln`/`exp` of the platform libm on both sides; 1e-6 (on a 0..100 scale)
/// allows for a differently rounded libm, far below the 0.01 sacrebleu prints.
const ATOL_BLEU: f64 = 1e-6;

#[derive(Deserialize)]
struct Golden {
    items: Vec<Item>,
    corpus_bleu: GoldBleu,
    sentence_bleu: Vec<GoldBleu>,
    task_scores: TaskScores,
}

#[derive(Deserialize)]
struct Item {
    pred: String,
    golds: Vec<String>,
    norm_pred: String,
    norm_golds: Vec<String>,
    em_per_gold: Vec<f64>,
    f1_per_gold: Vec<f64>,
    em: f64,
    f1: f64,
    rouge_tokens_pred: Vec<String>,
    rouge_tokens_ref: Vec<String>,
    rouge_l: rouge::RougeScore,
    tok13a_pred: String,
    tok13a_ref: String,
}

#[derive(Deserialize)]
struct GoldBleu {
    score: f64,
    counts: Vec<u64>,
    totals: Vec<u64>,
    precisions: Vec<f64>,
    bp: f64,
    sys_len: u64,
    ref_len: u64,
    signature: String,
    #[serde(default)]
    pred: String,
    #[serde(default, rename = "ref")]
    reference: String,
}

fn golden() -> Golden {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval_metrics/golden.json");
    let text = std::fs::read_to_string(&path).expect("read golden.json");
    serde_json::from_str(&text).expect("parse golden.json")
}

fn close(what: &str, got: f64, want: f64, atol: f64) {
    assert!(
        (got - want).abs() <= atol,
        "{what}: got {got:.17}, reference {want:.17}"
    );
}

#[test]
fn golden_has_enough_items() {
    let g = golden();
    assert!(g.items.len() >= 30, "{} items", g.items.len());
    assert!(g.items.iter().any(|it| it.golds.len() > 1));
}

#[test]
fn squad_matches_official_v1_1() {
    for it in &golden().items {
        let ctx = format!("pred {:?} golds {:?}", it.pred, it.golds);
        assert_eq!(squad::normalize_answer(&it.pred), it.norm_pred, "{ctx}");
        for (k, gold) in it.golds.iter().enumerate() {
            assert_eq!(squad::normalize_answer(gold), it.norm_golds[k], "{ctx}");
            let em = squad::exact_match(&it.pred, gold);
            close(
                &format!("EM {ctx} gold {k}"),
                em,
                it.em_per_gold[k],
                ATOL_RATIO,
            );
            let f = squad::f1(&it.pred, gold);
            close(
                &format!("F1 {ctx} gold {k}"),
                f,
                it.f1_per_gold[k],
                ATOL_RATIO,
            );
        }
        close(
            &format!("EM max {ctx}"),
            squad::exact_match_max(&it.pred, &it.golds),
            it.em,
            ATOL_RATIO,
        );
        close(
            &format!("F1 max {ctx}"),
            squad::f1_max(&it.pred, &it.golds),
            it.f1,
            ATOL_RATIO,
        );
    }
}

#[test]
fn rouge_l_matches_rouge_score() {
    for it in &golden().items {
        let reference = &it.golds[0];
        let ctx = format!("pred {:?} ref {reference:?}", it.pred);
        assert_eq!(rouge::tokenize(&it.pred), it.rouge_tokens_pred, "{ctx}");
        assert_eq!(rouge::tokenize(reference), it.rouge_tokens_ref, "{ctx}");
        let s = eval::rouge_l(&it.pred, reference);
        close(
            &format!("P {ctx}"),
            s.precision,
            it.rouge_l.precision,
            ATOL_RATIO,
        );
        close(&format!("R {ctx}"), s.recall, it.rouge_l.recall, ATOL_RATIO);
        close(
            &format!("F {ctx}"),
            s.fmeasure,
            it.rouge_l.fmeasure,
            ATOL_RATIO,
        );
    }
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    for it in &golden().items {
        assert_eq!(bleu::preprocess(&it.pred), it.tok13a_pred, "{:?}", it.pred);
        assert_eq!(
            bleu::preprocess(&it.golds[0]),
            it.tok13a_ref,
            "{:?}",
            it.golds[0]
        );
    }
}

fn check_bleu(what: &str, got: &bleu::BleuScore, want: &GoldBleu) {
    close(&format!("{what} score"), got.score, want.score, ATOL_BLEU);
    for n in 0..bleu::MAX_NGRAM_ORDER {
        close(
            &format!("{what} precision {}", n + 1),
            got.precisions[n],
            want.precisions[n],
            ATOL_BLEU,
        );
    }
    close(&format!("{what} bp"), got.bp, want.bp, ATOL_BLEU);
    assert_eq!(got.counts.to_vec(), want.counts, "{what} counts");
    assert_eq!(got.totals.to_vec(), want.totals, "{what} totals");
    assert_eq!(got.sys_len, want.sys_len, "{what} sys_len");
    assert_eq!(got.ref_len, want.ref_len, "{what} ref_len");
    assert_eq!(got.signature(), want.signature, "{what} signature");
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    let g = golden();
    let hyps: Vec<&str> = g.items.iter().map(|it| it.pred.as_str()).collect();
    let refs: Vec<&str> = g.items.iter().map(|it| it.golds[0].as_str()).collect();
    let got = eval::corpus_bleu(&hyps, &refs).expect("corpus bleu");
    check_bleu("corpus", &got, &g.corpus_bleu);
    assert_eq!(
        got.signature(),
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    );
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    let g = golden();
    assert!(!g.sentence_bleu.is_empty());
    for s in &g.sentence_bleu {
        let got = eval::sentence_bleu(&s.pred, &s.reference);
        check_bleu(&format!("{:?} vs {:?}", s.pred, s.reference), &got, s);
    }
}

#[test]
fn score_all_matches_reference_means() {
    let g = golden();
    let preds: Vec<String> = g.items.iter().map(|it| it.pred.clone()).collect();
    let golds: Vec<Vec<String>> = g.items.iter().map(|it| it.golds.clone()).collect();
    let got = eval::score_all(&preds, &golds).expect("score_all");
    let want = &g.task_scores;
    assert_eq!(got.count, want.count);
    close("mean EM", got.exact_match, want.exact_match, ATOL_RATIO);
    close("mean F1", got.f1, want.f1, ATOL_RATIO);
    close("mean ROUGE-L F", got.rouge_l_f, want.rouge_l_f, ATOL_RATIO);
    close("corpus BLEU", got.bleu, want.bleu, ATOL_BLEU);
    let json = serde_json::to_string(&got).expect("serialize");
    let back: TaskScores = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, got);
}

#[test]
fn score_all_rejects_bad_shapes() {
    let preds = vec!["a".to_string(), "b".to_string()];
    let golds = vec![vec!["a".to_string()]];
    assert_eq!(
        eval::score_all(&preds, &golds),
        Err(EvalError::LengthMismatch { preds: 2, golds: 1 })
    );
    let golds = vec![vec!["a".to_string()], vec![]];
    assert_eq!(
        eval::score_all(&preds, &golds),
        Err(EvalError::NoGold { index: 1 })
    );
    assert_eq!(eval::score_all(&[], &[]), Err(EvalError::Empty));
    assert_eq!(
        eval::corpus_bleu(&["x"], &["x", "y"]),
        Err(EvalError::LengthMismatch { preds: 1, golds: 2 })
    );
}

#[test]
fn hand_checked_cases() {
    // "the cat sat" → [cat, sat]; "a cat sat down" → [cat, sat, down]: 2 shared,
    // P = 2/2, R = 2/3, F1 = 2·1·(2/3) / (1 + 2/3) = 0.8.
    close("f1", squad::f1("the cat sat", "a cat sat down"), 0.8, 1e-15);
    assert_eq!(squad::exact_match("The Cat!", "cat"), 1.0);
    // Both empty after normalization: EM 1, but F1 0 (no shared token), as in the v1.1 script.
    assert_eq!(squad::exact_match("the", ""), 1.0);
    assert_eq!(squad::f1("the", ""), 0.0);
    // Repeated tokens count at most as often as in the gold: [cat ×3, dog] vs [cat, dog ×2]
    // share 2; P = 2/4, R = 2/3, F1 = 4/7.
    close(
        "f1 repeats",
        squad::f1("cat cat cat dog", "cat dog dog"),
        4.0 / 7.0,
        1e-15,
    );
    assert_eq!(squad::f1_max("Tesla", &["Nikola Tesla", "tesla"]), 1.0);
    assert_eq!(squad::f1_max::<&str>("x", &[]), 0.0);
    // Articles go only as whole words, by Python's Unicode `\b`.
    assert_eq!(
        squad::normalize_answer("Theater AN anthem"),
        "theater anthem"
    );
    assert_eq!(squad::normalize_answer("the\u{301} cafe"), "\u{301} cafe");
    assert!(squad::word_pattern_compiled());

    // ROUGE-L: reference [a b c d e], prediction [a c e f]: LCS [a c e] = 3,
    // P = 3/4, R = 3/5, F = 2PR/(P+R) = 2/3.
    let s = eval::rouge_l("A, c; e f", "a b c d e");
    close("rouge P", s.precision, 0.75, 1e-15);
    close("rouge R", s.recall, 0.6, 1e-15);
    close("rouge F", s.fmeasure, 2.0 / 3.0, 1e-15);
    assert_eq!(rouge::tokenize("Don't café"), ["don", "t", "caf"]);
    assert_eq!(eval::rouge_l("", "x"), rouge::RougeScore::default());

    // 13a: periods and commas split off except between digits; a dash only after a digit.
    assert_eq!(
        bleu::tokenize_13a("It costs $1,000.50, e.g. 10-20."),
        "It costs $ 1,000.50 , e . g . 10 - 20 ."
    );
    // Identical 4-token sentences: every precision 100, BP 1, BLEU 100.
    let b = eval::sentence_bleu("a b c d", "a b c d");
    close("bleu identical", b.score, 100.0, 1e-9);
    // Hypothesis [the cat] vs reference [the cat sat]: corpus BLEU has no 3-grams, so its
    // 3-gram precision is 0 and the score 0; BP = exp(1 - 3/2).
    let c = eval::corpus_bleu(&["the cat"], &["the cat sat"]).expect("bleu");
    assert_eq!(c.score, 0.0);
    close("bp", c.bp, (-0.5f64).exp(), 1e-15);
    // Sentence BLEU uses the effective order (2): sqrt(100·100)·BP.
    let s = eval::sentence_bleu("the cat", "the cat sat");
    close("sentence bleu", s.score, 100.0 * (-0.5f64).exp(), 1e-9);
}
