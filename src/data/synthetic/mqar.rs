//! Multi-query associative recall, Zoology's MQAR recipe adapted to the QA layout.
//!
//! Zoology puts key-value pairs first and queries later in one stream, scoring the token
//! after each repeated key. Here the pairs live in the CONTEXT, at random non-overlapping
//! positions among random filler tokens (so retrieval must find them anywhere, which is
//! what DSR is for); the QUESTION lists the queried keys once each in random order; the
//! ANSWER region repeats them in the same order, each followed by its value:
//! `[BOS] ctx [SEP] k_a k_b … [SEP] k_a v_a k_b v_b …`. Only the positions of the answer
//! keys carry targets (`k_a` predicts `v_a`); the keys themselves are given by the question
//! order and there is no EOS target, so the loss is pure recall. Supporting spans are the
//! queried pairs' two context tokens.
//!
//! Keys, values and filler come from three disjoint id ranges starting at 1996 ("the"), the
//! first real word pieces of the BERT vocabulary (below are `[PAD]`, `[unusedN]`, `[CLS]`, `[SEP]`,
//! `[MASK]` and single characters). Keys and values are drawn without replacement, so every
//! key is unique in the context and recall is unambiguous.

use std::ops::Range;

use rand::seq::index::sample;
use rand::seq::SliceRandom;
use rand::Rng;

use super::super::error::DataError;
use super::super::split::{rng_for, Split};
use super::super::tokenizer::Tok;
use super::super::Example;

/// First id of the key range (the BERT vocabulary's first ordinary word piece).
pub const FIRST_WORD_ID: u32 = 1996;

#[derive(Debug, Clone)]
pub struct Mqar {
    tok: Tok,
    ctx: usize,
    pairs: usize,
    queries: usize,
    seed: u64,
    split: Split,
    pub keys: Range<u32>,
    pub values: Range<u32>,
    pub filler: Range<u32>,
}

impl Mqar {
    /// `ctx` context tokens (BOS included) holding `pairs` pairs, `queries` of them asked.
    /// `range` = size of each of the three id ranges (`None` = a third of the word pieces).
    pub fn new(
        tok: &Tok,
        ctx: usize,
        pairs: usize,
        queries: usize,
        range: Option<u32>,
        seed: u64,
        split: Split,
    ) -> Result<Self, DataError> {
        let bad = |p: String| Err(DataError::invalid("mqar", p));
        let words = (tok.vocab_size() as u32).saturating_sub(FIRST_WORD_ID);
        let r = range.unwrap_or(words / 3);
        if r == 0 || 3 * u64::from(r) > u64::from(words) {
            return bad(format!(
                "id range {r} must be in 1..={} (three disjoint ranges)",
                words / 3
            ));
        }
        if pairs == 0 || pairs as u64 > u64::from(r) {
            return bad(format!("pairs {pairs} must be in 1..={r} (distinct keys)"));
        }
        if queries == 0 || queries > pairs {
            return bad(format!("queries {queries} must be in 1..={pairs}"));
        }
        if ctx < 1 + 2 * pairs {
            return bad(format!("ctx {ctx} cannot hold BOS and {pairs} pairs"));
        }
        let k0 = FIRST_WORD_ID;
        Ok(Mqar {
            tok: tok.clone(),
            ctx,
            pairs,
            queries,
            seed,
            split,
            keys: k0..k0 + r,
            values: k0 + r..k0 + 2 * r,
            filler: k0 + 2 * r..k0 + 3 * r,
        })
    }

    /// One past the largest id an example holds (the ranges and the BOS/SEP specials).
    pub fn token_bound(&self) -> u32 {
        let sp = self.tok.specials();
        [sp.bos, sp.sep, sp.eos, sp.pad]
            .iter()
            .fold(self.filler.end, |m, &s| m.max(s + 1))
    }

    /// Example `index`: depends only on `(seed, split, index)`.
    pub fn example(&self, index: u64) -> Result<Example, DataError> {
        let mut rng = rng_for(self.seed, self.split, index);
        let sp = self.tok.specials();
        let r = self.keys.len();
        let keys: Vec<u32> = sample(&mut rng, r, self.pairs)
            .iter()
            .map(|i| self.keys.start + i as u32)
            .collect();
        let values: Vec<u32> = sample(&mut rng, r, self.pairs)
            .iter()
            .map(|i| self.values.start + i as u32)
            .collect();
        // Non-overlapping 2-token slots, uniformly: choose the pairs' ranks among the
        // (free - pairs) items "pair or filler token", then pair i starts at rank_i + i.
        let free = self.ctx - 1;
        let mut ranks = sample(&mut rng, free - self.pairs, self.pairs).into_vec();
        ranks.sort_unstable();
        let f = self.filler.len();
        let mut ids = Vec::with_capacity(self.ctx + 2 + 3 * self.queries);
        ids.push(sp.bos);
        ids.extend((0..free).map(|_| self.filler.start + rng.random_range(0..f as u32)));
        let mut starts = Vec::with_capacity(self.pairs);
        for (i, &rank) in ranks.iter().enumerate() {
            let p = 1 + rank + i;
            ids[p] = keys[i];
            ids[p + 1] = values[i];
            starts.push(p);
        }
        // Pairs were placed in key-sample order, so pair i holds (keys[i], values[i]).
        let mut asked: Vec<usize> = (0..self.pairs).collect();
        asked.shuffle(&mut rng);
        asked.truncate(self.queries);
        let n_ctx = ids.len();
        ids.push(sp.sep);
        let q0 = ids.len();
        ids.extend(asked.iter().map(|&i| keys[i]));
        let q1 = ids.len();
        ids.push(sp.sep);
        let mut targets = vec![-1i32; ids.len()];
        for &i in &asked {
            targets.push(values[i] as i32);
            ids.push(keys[i]);
            targets.push(-1);
            ids.push(values[i]);
        }
        let mut spans: Vec<(usize, usize)> =
            asked.iter().map(|&i| (starts[i], starts[i] + 2)).collect();
        spans.sort_unstable();
        let answers = asked
            .iter()
            .map(|&i| self.tok.id_to_token(values[i]).unwrap_or_default())
            .collect();
        let ex = Example {
            ids,
            n_ctx,
            q0,
            q1,
            targets,
            spans,
            answers,
        };
        ex.validate()?;
        Ok(ex)
    }
}
