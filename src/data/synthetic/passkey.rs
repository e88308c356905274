//! Passkey retrieval, Landmark Attention's recipe: a fixed instruction, the filler
//! "The grass is green. ..." repeated, and one key line with a random 5-digit number
//! inserted at a random sentence boundary of the filler; the question asks for the number.
//!
//! The context (BOS included) is filled with whole filler sentences up to the requested
//! `ctx` tokens, so its length is in `(ctx - longest sentence, ctx]`. The supporting span is
//! exactly the key line's tokens.

use rand::Rng;

use super::super::error::DataError;
use super::super::split::{rng_for, Split};
use super::super::tokenizer::Tok;
use super::super::Example;

pub const INTRO: &str = "There is an important info hidden inside a lot of irrelevant text. \
Find it and memorize them. I will quiz you about the important information there.";
pub const FILLER: [&str; 5] = [
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
];
pub const QUESTION: &str = "What is the pass key?";

pub fn key_line(n: u32) -> String {
    format!("The pass key is {n}. Remember it. {n} is the pass key.")
}

#[derive(Debug, Clone)]
pub struct Passkey {
    tok: Tok,
    ctx: usize,
    seed: u64,
    split: Split,
    intro: Vec<u32>,
    filler: Vec<Vec<u32>>,
    question: Vec<u32>,
}

impl Passkey {
    /// `ctx` = context tokens including BOS.
    pub fn new(tok: &Tok, ctx: usize, seed: u64, split: Split) -> Result<Self, DataError> {
        let intro = tok.encode(INTRO)?;
        let filler = FILLER
            .iter()
            .map(|s| tok.encode(s))
            .collect::<Result<Vec<_>, _>>()?;
        // A 5-digit number is at most 5 word pieces; "0" is one, and it occurs twice.
        let longest_key = tok.encode(&key_line(0))?.len() + 2 * 4;
        let longest = filler.iter().map(Vec::len).max().unwrap_or(0);
        let min_ctx = 1 + intro.len() + longest_key + longest;
        if ctx < min_ctx {
            return Err(DataError::invalid(
                "passkey",
                format!("ctx {ctx} below the minimum {min_ctx} (instruction + key line + one filler sentence)"),
            ));
        }
        Ok(Passkey {
            tok: tok.clone(),
            ctx,
            seed,
            split,
            intro,
            filler,
            question: tok.encode(QUESTION)?,
        })
    }

    pub fn ctx(&self) -> usize {
        self.ctx
    }

    /// Example `index`: depends only on `(seed, split, index)`.
    pub fn example(&self, index: u64) -> Result<Example, DataError> {
        let mut rng = rng_for(self.seed, self.split, index);
        let n: u32 = rng.random_range(10_000..=99_999);
        let key = self.tok.encode(&key_line(n))?;
        let budget = (self.ctx - 1).saturating_sub(self.intro.len() + key.len());
        let mut sentences = Vec::new();
        let mut used = 0;
        for s in self.filler.iter().cycle() {
            if used + s.len() > budget {
                break;
            }
            used += s.len();
            sentences.push(s);
        }
        let at = rng.random_range(0..=sentences.len());
        let mut ctx = Vec::with_capacity(self.ctx);
        ctx.extend_from_slice(&self.intro);
        let mut span = (0, 0);
        for (i, s) in sentences.iter().enumerate() {
            if i == at {
                span = (ctx.len(), ctx.len() + key.len());
                ctx.extend_from_slice(&key);
            }
            ctx.extend_from_slice(s);
        }
        if at == sentences.len() {
            span = (ctx.len(), ctx.len() + key.len());
            ctx.extend_from_slice(&key);
        }
        let answer = n.to_string();
        let ex = Example::qa(
            self.tok.specials(),
            &ctx,
            &self.question,
            &self.tok.encode(&answer)?,
            &[span],
            vec![answer],
        );
        ex.validate()?;
        Ok(ex)
    }
}
