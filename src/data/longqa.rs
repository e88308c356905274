//! Long-context QA from real text, the "lost in the middle" construction: a question's
//! gold paragraph placed among distractor paragraphs (other records' contexts) at a chosen
//! depth, filled to a chosen context length, with the supporting span known exactly.
//!
//! Layout of the context (BOS included, exactly `ctx` tokens): BOS, `before` tokens of
//! distractors, the gold paragraph, `after` tokens of distractors, where
//! `before = round(depth · (T − g))`, T = ctx − 1, g = gold tokens. Each side is filled with
//! whole paragraphs and its last paragraph cut to fit, so the gold's token depth is exact.
//! A gold paragraph longer than T is cut to a window around its answer.
//!
//! Only answerable records serve as gold (the count of the others is reported).
//! Distractors come from every distinct context of the file except the gold's own and any
//! that contain one of the question's answers (case-insensitive), so the answer is only
//! in the gold paragraph; they are drawn without repeats while the pool lasts. Distractors
//! may be paragraphs of the other split: they carry no question, so nothing held out is
//! scored on.

use std::collections::{HashMap, HashSet};

use rand::Rng;

use super::error::DataError;
use super::example::{spans_in_window, window};
use super::record::QaRecord;
use super::split::{rng_for, Split};
use super::tokenizer::Tok;
use super::Example;

/// Rejected distractor draws tolerated before giving up on one example.
const MAX_REJECTS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct LongQa {
    tok: Tok,
    ctx: usize,
    depth: Option<f64>,
    seed: u64,
    split: Split,
    /// Distinct contexts, and their lower-cased text for the answer-containment check.
    paragraphs: Vec<String>,
    lowered: Vec<String>,
    /// Gold records: the record and the index of its paragraph.
    gold: Vec<(QaRecord, usize)>,
    /// Records that could not be gold (unanswerable or no context).
    pub excluded: usize,
}

impl LongQa {
    /// `records` = the file (all splits; gold ones are chosen by the caller's filter `keep`).
    pub fn new(
        tok: &Tok,
        records: &[QaRecord],
        keep: impl Fn(&QaRecord) -> bool,
        ctx: usize,
        depth: Option<f64>,
        seed: u64,
        split: Split,
    ) -> Result<Self, DataError> {
        if let Some(d) = depth {
            if !(0.0..=1.0).contains(&d) {
                return Err(DataError::invalid(
                    "longqa",
                    format!("depth {d} not in [0, 1]"),
                ));
            }
        }
        if ctx < 2 {
            return Err(DataError::invalid("longqa", format!("ctx {ctx} below 2")));
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut paragraphs = Vec::new();
        let mut gold = Vec::new();
        let mut excluded = 0;
        for r in records {
            let p = *index.entry(r.context.as_str()).or_insert_with(|| {
                paragraphs.push(r.context.clone());
                paragraphs.len() - 1
            });
            if !keep(r) {
                continue;
            }
            if r.unanswerable || r.context.is_empty() || r.support.is_empty() {
                excluded += 1;
            } else {
                gold.push((r.clone(), p));
            }
        }
        let lowered = paragraphs.iter().map(|p| p.to_lowercase()).collect();
        Ok(LongQa {
            tok: tok.clone(),
            ctx,
            depth,
            seed,
            split,
            paragraphs,
            lowered,
            gold,
            excluded,
        })
    }

    /// Gold questions available (one epoch).
    pub fn len(&self) -> usize {
        self.gold.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gold.is_empty()
    }

    /// The example for gold record `item`, its distractors and depth drawn from the stream
    /// of `index` (so it depends only on `(seed, split, index, item)`).
    pub fn example(&self, item: usize, index: u64) -> Result<Example, DataError> {
        let (rec, own) = self.gold.get(item).ok_or_else(|| {
            DataError::invalid("longqa", format!("item {item} of {}", self.gold.len()))
        })?;
        let mut rng = rng_for(self.seed, self.split, index);
        let depth = match self.depth {
            Some(d) => d,
            None => rng.random_range(0.0..=1.0),
        };
        let (ids, offsets) = self.tok.encode_with_offsets(&rec.context)?;
        let spans: Vec<(usize, usize)> = rec
            .support
            .iter()
            .filter_map(|&(s, e)| Tok::byte_span_to_tokens(&offsets, s, e))
            .collect();
        let total = self.ctx - 1;
        let w = window(ids.len(), total, &spans);
        let gold_ids = &ids[w.start..w.end];
        let spans = spans_in_window(&spans, w);
        let room = total - gold_ids.len();
        let before = (depth * room as f64).round() as usize;

        let answers: Vec<String> = rec.answers.iter().map(|a| a.to_lowercase()).collect();
        let mut picker = Picker {
            owner: self,
            own: *own,
            answers: &answers,
            used: HashSet::new(),
        };
        let mut ctx = Vec::with_capacity(total);
        picker.fill(&mut rng, &mut ctx, before)?;
        let shift = ctx.len();
        ctx.extend_from_slice(gold_ids);
        picker.fill(&mut rng, &mut ctx, total)?;
        let spans: Vec<(usize, usize)> =
            spans.iter().map(|&(s, e)| (s + shift, e + shift)).collect();
        let ex = Example::qa(
            self.tok.specials(),
            &ctx,
            &self.tok.encode(&rec.question)?,
            &self.tok.encode(&rec.answers[0])?,
            &spans,
            rec.answers.clone(),
        );
        ex.validate()?;
        Ok(ex)
    }
}

/// Draws distractor paragraphs for one example.
struct Picker<'a> {
    owner: &'a LongQa,
    own: usize,
    answers: &'a [String],
    used: HashSet<usize>,
}

impl Picker<'_> {
    /// Appends distractor tokens to `ctx` until it holds exactly `until` tokens.
    fn fill(
        &mut self,
        rng: &mut impl Rng,
        ctx: &mut Vec<u32>,
        until: usize,
    ) -> Result<(), DataError> {
        let mut empty = 0;
        while ctx.len() < until {
            let p = self.draw(rng)?;
            let ids = self.owner.tok.encode(&self.owner.paragraphs[p])?;
            if ids.is_empty() {
                empty += 1;
                if empty >= MAX_REJECTS {
                    return Err(DataError::invalid(
                        "longqa",
                        "distractor paragraphs have no tokens",
                    ));
                }
                continue;
            }
            let take = ids.len().min(until - ctx.len());
            ctx.extend_from_slice(&ids[..take]);
        }
        Ok(())
    }

    fn draw(&mut self, rng: &mut impl Rng) -> Result<usize, DataError> {
        let n = self.owner.paragraphs.len();
        let mut rejects = 0;
        loop {
            let p = rng.random_range(0..n);
            let ok = p != self.own
                && !self.used.contains(&p)
                && !self
                    .answers
                    .iter()
                    .any(|a| self.owner.lowered[p].contains(a.as_str()));
            if ok {
                self.used.insert(p);
                return Ok(p);
            }
            rejects += 1;
            // Pool exhausted (small files): allow repeats rather than fail.
            if rejects % 64 == 0 {
                self.used.clear();
            }
            if rejects >= MAX_REJECTS {
                return Err(DataError::invalid(
                    "longqa",
                    format!(
                        "no distractor paragraph without the answer {:?} among {n} paragraphs",
                        self.answers.first()
                    ),
                ));
            }
        }
    }
}
