//! Needle in a haystack: one fixed sentence (the needle) inserted at a chosen depth of a
//! haystack of real text, asked about afterwards. The haystack is the SQuAD "Normans"
//! article (assets/data/haystack_squad_normans.txt, compiled in), repeated from a random
//! paragraph as often as the length needs.
//!
//! Depth `d` places the needle's first token at haystack position `round(d · (T − n))`
//! (T = haystack tokens, n = needle tokens), moved back to just after the nearest preceding
//! sentence end when one lies within [`MAX_BACKOFF`] tokens, so the needle starts a
//! sentence, as in the original test. The context (BOS included) is exactly `ctx` tokens.

use rand::Rng;

use super::super::error::DataError;
use super::super::split::{rng_for, Split};
use super::super::tokenizer::Tok;
use super::super::Example;

pub const NEEDLE: &str =
    "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.";
pub const QUESTION: &str = "What is the best thing to do in San Francisco?";
pub const ANSWER: &str = "eat a sandwich and sit in Dolores Park on a sunny day";
/// The haystack paragraphs, one per line.
pub const HAYSTACK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/data/haystack_squad_normans.txt"
));
/// How far (tokens) the needle may move back from its nominal depth to start a sentence.
pub const MAX_BACKOFF: usize = 64;

#[derive(Debug, Clone)]
pub struct Needle {
    tok: Tok,
    ctx: usize,
    depth: Option<f64>,
    seed: u64,
    split: Split,
    needle: Vec<u32>,
    question: Vec<u32>,
    answer: Vec<u32>,
    hay: Vec<u32>,
    /// Token offsets in `hay` where paragraphs start (random haystack starts).
    para_starts: Vec<usize>,
    period: Option<u32>,
}

/// One point of a length × depth sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedleCase {
    pub ctx: usize,
    pub depth: f64,
    pub example: Example,
}

impl Needle {
    /// `ctx` context tokens (BOS included); `depth` in [0, 1], or `None` for a uniform random
    /// depth per example.
    pub fn new(
        tok: &Tok,
        ctx: usize,
        depth: Option<f64>,
        seed: u64,
        split: Split,
    ) -> Result<Self, DataError> {
        if let Some(d) = depth {
            if !(0.0..=1.0).contains(&d) {
                return Err(DataError::invalid(
                    "needle",
                    format!("depth {d} not in [0, 1]"),
                ));
            }
        }
        let needle = tok.encode(NEEDLE)?;
        if ctx < needle.len() + 2 {
            return Err(DataError::invalid(
                "needle",
                format!(
                    "ctx {ctx} cannot hold BOS, the needle ({} tokens) and haystack",
                    needle.len()
                ),
            ));
        }
        let mut hay = Vec::new();
        let mut para_starts = Vec::new();
        for p in HAYSTACK.lines().filter(|l| !l.trim().is_empty()) {
            para_starts.push(hay.len());
            hay.extend(tok.encode(p)?);
        }
        if hay.is_empty() {
            return Err(DataError::invalid("needle", "empty haystack"));
        }
        Ok(Needle {
            ctx,
            depth,
            seed,
            split,
            needle,
            question: tok.encode(QUESTION)?,
            answer: tok.encode(ANSWER)?,
            hay,
            para_starts,
            period: tok.token_to_id("."),
            tok: tok.clone(),
        })
    }

    pub fn needle_len(&self) -> usize {
        self.needle.len()
    }

    /// The depth a generated example's needle actually sits at (see the module doc).
    pub fn depth_of(&self, ex: &Example) -> Option<f64> {
        let start = ex.spans.first()?.0.checked_sub(1)?;
        let room = self.ctx - 1 - self.needle.len();
        Some(if room == 0 {
            0.0
        } else {
            start as f64 / room as f64
        })
    }

    /// Example `index`: depends only on `(seed, split, index)` (and the fixed depth).
    pub fn example(&self, index: u64) -> Result<Example, DataError> {
        let mut rng = rng_for(self.seed, self.split, index);
        let depth = match self.depth {
            Some(d) => d,
            None => rng.random_range(0.0..=1.0),
        };
        let start = self.para_starts[rng.random_range(0..self.para_starts.len())];
        let room = self.ctx - 1 - self.needle.len();
        let hay: Vec<u32> = self.hay[start..]
            .iter()
            .chain(self.hay.iter().cycle())
            .take(room)
            .copied()
            .collect();
        let target = (depth * room as f64).round() as usize;
        let at = self
            .period
            .and_then(|dot| {
                (target.saturating_sub(MAX_BACKOFF)..target)
                    .rev()
                    .find(|&p| hay[p] == dot)
                    .map(|p| p + 1)
            })
            .unwrap_or(target);
        let mut ctx = Vec::with_capacity(self.ctx);
        ctx.extend_from_slice(&hay[..at]);
        ctx.extend_from_slice(&self.needle);
        ctx.extend_from_slice(&hay[at..]);
        let ex = Example::qa(
            self.tok.specials(),
            &ctx,
            &self.question,
            &self.answer,
            &[(at, at + self.needle.len())],
            vec![ANSWER.to_string()],
        );
        ex.validate()?;
        Ok(ex)
    }
}

/// Every (length, depth) pair, example 0 of each (same haystack start, so only length and
/// depth vary), on the Eval stream.
pub fn sweep(
    tok: &Tok,
    seed: u64,
    lengths: &[usize],
    depths: &[f64],
) -> Result<Vec<NeedleCase>, DataError> {
    let mut out = Vec::with_capacity(lengths.len() * depths.len());
    for &ctx in lengths {
        for &depth in depths {
            let g = Needle::new(tok, ctx, Some(depth), seed, Split::Eval)?;
            out.push(NeedleCase {
                ctx,
                depth,
                example: g.example(0)?,
            });
        }
    }
    Ok(out)
}
