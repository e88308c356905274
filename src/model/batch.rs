//! From examples and their selected tokens to one padded batch the transformer runs on.
//!
//! Shape legend: `b` sequences, each padded to `l` rows, `R = b·l` rows in total; row
//! `r = s·l + j` holds the `j`-th kept token of sequence `s`. Padding goes at the END of a
//! sequence, so causal attention keeps it out of every real token's view; pad rows carry no
//! target, no context flag, and position 0.

use super::ModelError;
use crate::data::Example;

/// The tokens of one example that the transformer sees.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqPlan {
    /// Original positions of the kept tokens, ascending: the kept context first, then every
    /// token from the end of the context on (separator, question, answer).
    pub kept: Vec<u32>,
    /// How many of `kept` are context tokens (read through the compressed cache).
    pub kept_ctx: usize,
}

impl SeqPlan {
    /// Every token kept (no retriever).
    pub fn dense(ex: &Example) -> Self {
        Self::from_context(ex, (0..ex.n_ctx as u32).collect())
    }

    /// The given context positions (ascending, `< n_ctx`) plus everything after the context.
    pub fn from_context(ex: &Example, ctx: Vec<u32>) -> Self {
        let kept_ctx = ctx.len();
        let mut kept = ctx;
        kept.extend(ex.n_ctx as u32..ex.ids.len() as u32);
        Self { kept, kept_ctx }
    }

    /// At most `max_len` tokens in all: a model without a retriever reads the context's last
    /// tokens before the question (the most recent text, as a sliding window would), and
    /// drops the rest. Everything after the context is always kept.
    pub fn truncate(mut self, max_len: usize) -> Self {
        let tail = self.kept.len() - self.kept_ctx;
        let room = max_len.saturating_sub(tail);
        if self.kept_ctx > room {
            self.kept.drain(..self.kept_ctx - room);
            self.kept_ctx = room;
        }
        self
    }

    /// What a ring of `capacity` slots whose first `sink` slots never rotate still holds after
    /// the kept context streamed through it: the first `sink` tokens and the newest
    /// `capacity − sink`. The rest is evicted, so the question never sees it.
    pub fn ring_trim(mut self, capacity: usize, sink: usize) -> Self {
        if self.kept_ctx > capacity {
            let drop_from = sink.min(capacity);
            let drop = self.kept_ctx - capacity;
            self.kept.drain(drop_from..drop_from + drop);
            self.kept_ctx = capacity;
        }
        self
    }
}

/// The padded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub l: usize,
    /// `[R]` token ids (pads: `pad`).
    pub ids: Vec<u32>,
    /// `[R]` original positions (the RoPE index).
    pub positions: Vec<u32>,
    /// Rows holding context tokens, ascending.
    pub ctx_rows: Vec<u32>,
    /// Rows with a target, ascending, and their targets.
    pub target_rows: Vec<u32>,
    pub targets: Vec<i32>,
    /// `[b]` kept context tokens and real (unpadded) length per sequence.
    pub kept_ctx: Vec<usize>,
    pub seq_len: Vec<usize>,
    /// Per target row, the sequence it belongs to.
    pub target_seq: Vec<u32>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.b * self.l
    }

    /// Every row carries a target (plain language modelling): the LM head can skip its
    /// row gather.
    pub fn all_rows_targeted(&self) -> bool {
        self.target_rows.len() == self.rows()
    }

    pub fn build(examples: &[Example], plans: &[SeqPlan], pad: u32) -> Result<Self, ModelError> {
        if examples.is_empty() || examples.len() != plans.len() {
            return Err(ModelError::Batch(format!(
                "{} examples with {} selection plans",
                examples.len(),
                plans.len()
            )));
        }
        let b = examples.len();
        let l = plans.iter().map(|p| p.kept.len()).max().unwrap_or(0);
        if l == 0 {
            return Err(ModelError::Batch("every sequence is empty".into()));
        }
        let rows = b * l;
        let mut batch = Batch {
            b,
            l,
            ids: vec![pad; rows],
            positions: vec![0; rows],
            ctx_rows: Vec::new(),
            target_rows: Vec::new(),
            targets: Vec::new(),
            kept_ctx: Vec::with_capacity(b),
            seq_len: Vec::with_capacity(b),
            target_seq: Vec::new(),
        };
        for (s, (ex, plan)) in examples.iter().zip(plans).enumerate() {
            for (j, &p) in plan.kept.iter().enumerate() {
                let p = p as usize;
                let (Some(&id), Some(&t)) = (ex.ids.get(p), ex.targets.get(p)) else {
                    return Err(ModelError::Batch(format!(
                        "sequence {s}: kept position {p} outside its {} tokens",
                        ex.ids.len()
                    )));
                };
                let r = s * l + j;
                batch.ids[r] = id;
                batch.positions[r] = p as u32;
                if j < plan.kept_ctx {
                    batch.ctx_rows.push(r as u32);
                }
                if t >= 0 {
                    batch.target_rows.push(r as u32);
                    batch.targets.push(t);
                    batch.target_seq.push(s as u32);
                }
            }
            batch.kept_ctx.push(plan.kept_ctx);
            batch.seq_len.push(plan.kept.len());
        }
        if batch.target_rows.is_empty() {
            return Err(ModelError::Batch(
                "no example in the batch has a target".into(),
            ));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::SeqPlan;

    fn plan(ctx: u32, tail: u32) -> SeqPlan {
        SeqPlan {
            kept: (0..ctx + tail).collect(),
            kept_ctx: ctx as usize,
        }
    }

    #[test]
    fn truncation_keeps_the_last_context_tokens_and_the_whole_tail() {
        let p = plan(10, 4).truncate(8);
        assert_eq!(p.kept, vec![6, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(p.kept_ctx, 4);
        assert_eq!(plan(10, 4).truncate(14), plan(10, 4));
        // A tail longer than the limit keeps no context at all, and never drops tail tokens.
        let p = plan(10, 4).truncate(3);
        assert_eq!((p.kept.len(), p.kept_ctx), (4, 0));
    }
}
