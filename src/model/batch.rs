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
