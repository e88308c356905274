//! Shared fixtures and helpers of the data tests.
#![allow(dead_code)]

use dsrsq::data::{Example, LoadOptions, Tok};

pub const NQ_DEV: &str = "tests/data/nq_simplified/farm_dev_sample.jsonl";
pub const NQ_TRAIN: &str = "tests/data/nq_simplified/farm_train_sample.jsonl";
pub const NQ_OPEN: &str = "tests/data/nq_open/NQ-open.efficientqa.dev.1.1.sample.jsonl";
pub const SQUAD: &str = "tests/data/squad/squad_v2_dev_Normans.json";
pub const BAD_NQ_OPEN: &str = "tests/data/malformed/nq_open_bad.jsonl";
pub const BAD_NQ: &str = "tests/data/malformed/nq_bad.jsonl";
pub const BAD_SQUAD: &str = "tests/data/malformed/squad_bad.json";
pub const STRICT: LoadOptions = LoadOptions { skip_bad: false };
pub const SKIP: LoadOptions = LoadOptions { skip_bad: true };

pub fn tok() -> Tok {
    Tok::bundled().expect("bundled tokenizer")
}

/// Text of the tokens `[s, e)` of an example.
pub fn text(t: &Tok, ex: &Example, (s, e): (usize, usize)) -> String {
    t.decode(&ex.ids[s..e]).unwrap()
}

/// The answer region's tokens (after the SEP at q1, before a trailing EOS).
pub fn answer_text(t: &Tok, ex: &Example) -> String {
    let end = ex.ids.len() - usize::from(*ex.ids.last().unwrap() == t.specials().eos);
    text(t, ex, (ex.q1 + 1, end))
}

/// The tokenizer's normal form of `s` (lower case, spaced punctuation).
pub fn norm(t: &Tok, s: &str) -> String {
    t.decode(&t.encode(s).unwrap()).unwrap()
}

// ---------- tokenizer ----------
