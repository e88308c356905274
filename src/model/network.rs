//! The whole model: parameters on a backend, the forward pass with the hybrid loss, and its
//! backward.
//!
//! ```text
//! L = λ1·L_task + r(t)·(λ2·L_retrieval + λ3·L_compression + λ4·L_compute)
//! ```
//! `L_task` = mean cross-entropy over the target rows (answer tokens); `L_compression` = mean
//! over the layers of each layer's context-KV reconstruction error; `L_retrieval`,
//! `L_compute`: see `retriever`. The LM head only runs on target rows (a QA batch scores a few
//! answer tokens out of hundreds of rows), and on every row without a gather when every row
//! has a target (language modelling).

use super::block;
use super::forward::forward_blocks;
use super::layer;
use super::retriever::{self, DsrTrain};
use super::{acc, Batch, Config, Grads, ModelError, ParamLayout, Weights};
use crate::backend::Backend;
use crate::data::Example;
use crate::kernels::matmul::MatmulDims;
use crate::Tensor;

/// The loss terms of one batch (host values, as logged).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossTerms {
    pub task: f32,
    pub retrieval: f32,
    pub compression: f32,
    pub compute: f32,
    /// The ramp `r(t)` this step used.
    pub ramp: f32,
    pub total: f32,
}

impl LossTerms {
    /// The first term that is NaN or infinite, by name.
    pub fn non_finite(&self) -> Option<(&'static str, f32)> {
        [
            ("task", self.task),
            ("retrieval", self.retrieval),
            ("compression", self.compression),
            ("compute", self.compute),
            ("total", self.total),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// What one forward (and optional backward) produced.
pub struct StepOutput<B: Backend> {
    pub terms: LossTerms,
    pub grads: Grads<B::T>,
    pub batch: Batch,
    /// Context tokens offered and kept (after DSR and the ring), summed over the batch.
    pub ctx_tokens: usize,
    pub ctx_kept: usize,
    /// Logits `[target rows, V]` (kept only when asked for, e.g. evaluation).
    pub logits: Option<B::T>,
}

/// Parameters on a backend plus the config and layout they follow.
pub struct Model<B: Backend> {
    pub cfg: Config,
    pub layout: ParamLayout,
    pub params: Vec<B::T>,
}

impl<B: Backend> Model<B> {
    /// A fresh model initialized from `seed`.
    pub fn new(be: &B, cfg: &Config, seed: u64) -> Result<Self, ModelError> {
        let layout = ParamLayout::new(cfg);
        let host = layout.init(seed);
        Self::from_host(be, cfg, &host)
    }

    /// A model from host tensors in layout order (a checkpoint).
    pub fn from_host(be: &B, cfg: &Config, host: &[Tensor]) -> Result<Self, ModelError> {
        let layout = ParamLayout::new(cfg);
        if host.len() != layout.len() {
            return Err(ModelError::Params(format!(
                "{} tensors for a layout of {}",
                host.len(),
                layout.len()
            )));
        }
        for ((t, name), shape) in host.iter().zip(&layout.names).zip(&layout.shapes) {
            if &t.shape != shape {
                return Err(ModelError::Params(format!(
                    "tensor `{name}` has shape {:?}, this config expects {shape:?}",
                    t.shape
                )));
            }
        }
        let params = host
            .iter()
            .map(|t| be.upload(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            layout,
            params,
        })
    }

    /// The borrowed view the block code reads.
    pub(crate) fn weights<'a>(&'a self, be: &'a B) -> Weights<'a, B> {
        Weights {
            be,
            cfg: &self.cfg,
            p: &self.params,
        }
    }

    pub fn to_host(&self, be: &B) -> Result<Vec<Tensor>, ModelError> {
        Ok(self
            .params
            .iter()
            .map(|t| be.download(t))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Forward, the hybrid loss and (when `backward`) every parameter's gradient, at training
    /// step `step` (for the ramp). `keep_logits` keeps the target rows' logits.
    pub fn step(
        &self,
        be: &B,
        examples: &[Example],
        step: usize,
        backward: bool,
        keep_logits: bool,
    ) -> Result<StepOutput<B>, ModelError> {
        let cfg = &self.cfg;
        let w = self.weights(be);
        let idx = &self.layout.idx;
        let ramp = cfg.ramp(step);
        let hof = &cfg.hof;
        let mut grads: Grads<B::T> = (0..self.params.len()).map(|_| None).collect();

        let dsr_train = DsrTrain {
            retrieval: ramp * hof.lambda_retrieval,
            compute: ramp * hof.lambda_compute,
        };
        let ret = retriever::run(
            &w,
            examples,
            backward.then_some((&dsr_train, &mut grads)),
            (idx.wte, idx.dsr_wr, idx.dsr_wq),
        )?;
        let pad = 0;
        let batch = Batch::build(examples, &ret.plans, pad)?;
        let (rows, vocab) = (batch.rows(), cfg.model.vocab_size);

        let blocks = forward_blocks(&w, idx, &batch, None, |_, _| Ok(true))?;
        let (x, caches) = (blocks.x, blocks.caches);
        let (comp_sum, comp_layers) = (blocks.comp_sum, blocks.comp_layers);
        let (hf, lnf) =
            block::norm_forward(&w, &x, &self.params[idx.lnf_g], &self.params[idx.lnf_b])?;
        let all_rows = batch.all_rows_targeted();
        let ha = if all_rows {
            hf.clone()
        } else {
            be.gather_rows(&hf, &batch.target_rows)?
        };
        let a = batch.target_rows.len();
        let (losses, logits, head_grads) = self.lm_head(be, &ha, &batch, backward, keep_logits)?;

        let sums = TermSums {
            task_rows: &losses,
            targets: a,
            retrieval: (&ret.retrieval_sum, ret.with_spans),
            compute: (&ret.compute_sum, examples.len()),
            compression: (&comp_sum, comp_layers),
        };
        let terms = loss_terms(be, cfg, ramp, &sums)?;

        if let Some((dha, dwte)) = head_grads {
            acc(be, &mut grads[idx.wte], dwte)?;
            let dhf = if all_rows {
                dha
            } else {
                be.scatter_rows(&dha, &batch.target_rows, rows)?
            };
            let (mut dx, dg, db) =
                block::norm_backward(&w, &dhf, &x, &self.params[idx.lnf_g], &lnf)?;
            acc(be, &mut grads[idx.lnf_g], dg)?;
            acc(be, &mut grads[idx.lnf_b], db)?;
            let comp_weight = ramp * hof.lambda_compression / comp_layers.max(1) as f32;
            for (li, cache) in idx.layers.iter().zip(&caches).rev() {
                dx = layer::backward(&w, li, &batch, cache, &dx, comp_weight, &mut grads)?;
            }
            acc(
                be,
                &mut grads[idx.wte],
                be.embedding_backward(&dx, &batch.ids, vocab)?,
            )?;
        }
        Ok(StepOutput {
            terms,
            grads,
            batch,
            ctx_tokens: ret.ctx_tokens,
            ctx_kept: ret.ctx_kept,
            logits: if keep_logits { logits } else { None },
        })
    }
    /// The tied LM head on the target rows `ha` and the task loss per row: `(losses, logits,
    /// (dha, dwte))`. Training without logits kept uses the fused head (chunked on the CPU, so
    /// the `[rows, vocab]` logits never exist at once); otherwise the separate ops.
    fn lm_head(
        &self,
        be: &B,
        ha: &B::T,
        batch: &Batch,
        backward: bool,
        keep_logits: bool,
    ) -> Result<HeadOut<B>, ModelError> {
        let cfg = &self.cfg;
        let (a, dm, vocab) = (
            batch.target_rows.len(),
            cfg.model.d_model,
            cfg.model.vocab_size,
        );
        let head = MatmulDims::new(a, dm, vocab).transpose_b();
        let wte = &self.params[self.layout.idx.wte];
        let lambda = cfg.hof.lambda_task;
        if backward && !keep_logits {
            let (l, dha, dwte) = be.lm_head_loss(ha, wte, &batch.targets, lambda)?;
            return Ok((l, None, Some((dha, dwte))));
        }
        let logits = be.matmul(ha, wte, &head)?;
        let (l, dlogits) = be.cross_entropy(&logits, &batch.targets)?;
        let grads = if backward {
            let dlogits = be.scale(&dlogits, lambda)?;
            Some(be.matmul_backward(ha, wte, &dlogits, &head)?)
        } else {
            None
        };
        Ok((l, Some(logits), grads))
    }
}

/// The LM head's per-row losses, its logits when kept, and `(dha, dwte)` when backward.
type HeadOut<B> = (
    <B as Backend>::T,
    Option<<B as Backend>::T>,
    Option<(<B as Backend>::T, <B as Backend>::T)>,
);

/// The device-side sums behind the loss terms, each with what it is averaged over.
struct TermSums<'a, T> {
    task_rows: &'a T,
    targets: usize,
    retrieval: (&'a Option<T>, usize),
    compute: (&'a Option<T>, usize),
    compression: (&'a Option<T>, usize),
}

/// The HOF loss terms on the host: each sum over what it averages, and the weighted total.
fn loss_terms<B: Backend>(
    be: &B,
    cfg: &Config,
    ramp: f32,
    sums: &TermSums<'_, B::T>,
) -> Result<LossTerms, ModelError> {
    let scalar = |t: &Option<B::T>| -> Result<f32, ModelError> {
        Ok(match t {
            Some(t) => be.download(t)?.data.first().copied().unwrap_or(0.0),
            None => 0.0,
        })
    };
    let hof = &cfg.hof;
    let task_rows = be.download(sums.task_rows)?;
    let task = (task_rows.data.iter().map(|&v| v as f64).sum::<f64>() / sums.targets as f64) as f32;
    let retrieval = scalar(sums.retrieval.0)? / sums.retrieval.1.max(1) as f32;
    let compute = scalar(sums.compute.0)? / sums.compute.1 as f32;
    let compression = scalar(sums.compression.0)? / sums.compression.1.max(1) as f32;
    Ok(LossTerms {
        task,
        retrieval,
        compression,
        compute,
        ramp,
        total: hof.lambda_task * task
            + ramp
                * (hof.lambda_retrieval * retrieval
                    + hof.lambda_compression * compression
                    + hof.lambda_compute * compute),
    })
}
