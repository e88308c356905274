//! Training one optimizer step at a time: the body of `train::train`'s loop (same data order,
//! loss, clipping, schedule and metrics record), for a caller that must be able to pause or
//! stop between steps and read each step's record as it happens (the desktop app). A session
//! can write the same `metrics.jsonl` and a checkpoint that `dsrsq eval` and the app load.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::{InspectError, Result};
use crate::backend::Backend;
use crate::data::{DataSpec, Dataset, Example, LoadOptions, Split, Tok};
use crate::kernels::adamw::AdamW;
use crate::model::{Config, Model};
use crate::train::checkpoint::{self, Checkpoint, Sidecar, TensorInfo};
use crate::train::eval::evaluate;
use crate::train::metrics::MetricsLog;
use crate::train::optim::{lr_at, Optimizer};
use crate::train::step::{add_eval, optimizer_step};
use crate::train::{check_vocab, TrainError};
use crate::Tensor;

/// What a session trains.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub config: Config,
    /// A `--data` spec.
    pub data: String,
    /// Total optimizer steps (the cosine schedule's length).
    pub steps: usize,
    pub warmup: usize,
    /// Held-out exact match every this many steps (0 = never) on `eval_examples` examples.
    pub eval_every: usize,
    pub eval_examples: usize,
    /// Where `metrics.jsonl` and `checkpoints/` go (`None`: nothing is written).
    pub out_dir: Option<PathBuf>,
}

/// A model being trained, one step per [`TrainSession::step`].
pub struct TrainSession<B: Backend> {
    pub opts: SessionOptions,
    pub model: Model<B>,
    opt: Optimizer<B>,
    data: Box<dyn Dataset>,
    eval_set: Vec<Example>,
    log: Option<MetricsLog>,
    step: usize,
    pos: u64,
    t0: Instant,
}

impl<B: Backend> TrainSession<B> {
    /// A fresh model from the config's seed (as `dsrsq train` without `--resume`).
    pub fn new(be: &B, opts: SessionOptions) -> Result<Self> {
        let cfg = &opts.config;
        let seed = cfg.train.seed;
        let tok = Tok::bundled()?;
        let spec = DataSpec::parse(&opts.data)?;
        let load = LoadOptions::default();
        let data = spec.open(&tok, seed, Split::Train, &load)?;
        let eval_ds = spec.open(&tok, seed, Split::Eval, &load)?;
        check_vocab(
            cfg.model.vocab_size,
            &tok,
            &[data.as_ref(), eval_ds.as_ref()],
        )?;
        if opts.steps == 0 {
            return Err(InspectError::Input("train for at least one step".into()));
        }
        let eval_set: Vec<Example> = (0..opts.eval_examples as u64)
            .map(|i| eval_ds.example(i))
            .collect::<std::result::Result<_, _>>()?;
        let log = match &opts.out_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| TrainError::Io {
                    path: dir.display().to_string(),
                    source: e,
                })?;
                Some(
                    MetricsLog::create(&dir.join("metrics.jsonl"), false)
                        .map_err(TrainError::from)?,
                )
            }
            None => None,
        };
        let hp = AdamW {
            lr: cfg.train.learning_rate,
            beta1: cfg.train.adam_beta1,
            beta2: cfg.train.adam_beta2,
            eps: 1e-8,
            weight_decay: cfg.train.weight_decay,
        };
        let model = Model::new(be, cfg, seed)?;
        let opt = Optimizer::new(be, &model.layout, hp)?;
        Ok(Self {
            opts,
            model,
            opt,
            data,
            eval_set,
            log,
            step: 0,
            pos: 0,
            t0: Instant::now(),
        })
    }

    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    pub fn finished(&self) -> bool {
        self.step >= self.opts.steps
    }

    /// One optimizer step; returns its metrics record (the keys of `metrics.jsonl`).
    pub fn step(&mut self, be: &B) -> Result<Value> {
        if self.finished() {
            return Err(InspectError::Input(format!(
                "the session already ran its {} steps",
                self.opts.steps
            )));
        }
        let cfg = &self.opts.config;
        let (step, batch) = (self.step, cfg.train.batch_size);
        let examples: Vec<Example> = (0..batch as u64)
            .map(|i| self.data.example(self.pos + i))
            .collect::<std::result::Result<_, _>>()?;
        self.pos += batch as u64;
        let lr = lr_at(
            cfg.train.learning_rate,
            step,
            self.opts.warmup,
            Some(self.opts.steps),
        );
        let (mut rec, _) = optimizer_step(
            be,
            &mut self.model,
            &mut self.opt,
            &examples,
            step,
            lr,
            self.t0,
        )?;
        self.step += 1;
        let every = self.opts.eval_every;
        if every > 0
            && !self.eval_set.is_empty()
            && (self.step.is_multiple_of(every) || self.finished())
        {
            let ev = evaluate(be, &self.model, &self.eval_set, batch, self.step)?;
            add_eval(&mut rec, &ev);
        }
        if let Some(log) = &self.log {
            log.log(&rec).map_err(TrainError::from)?;
        }
        Ok(rec)
    }

    /// The parameters on the host, in layout order (to inspect or checkpoint elsewhere).
    pub fn params(&self, be: &B) -> Result<Vec<Tensor>> {
        Ok(self.model.to_host(be)?)
    }

    /// Writes a checkpoint of the current step under `dir` (`checkpoints/step-N.*`), loadable
    /// by `dsrsq eval`, `train::checkpoint::load` and the app.
    pub fn save_checkpoint(&self, be: &B, dir: &Path) -> Result<PathBuf> {
        let cfg = &self.opts.config;
        let layout = &self.model.layout;
        let named = |ts: &[B::T]| -> Result<Vec<(String, Tensor)>> {
            layout
                .names
                .iter()
                .zip(ts)
                .map(|(n, t)| Ok((n.clone(), be.download(t)?)))
                .collect()
        };
        let ck = Checkpoint {
            sidecar: Sidecar {
                format: checkpoint::CHECKPOINT_FORMAT,
                config: cfg.clone(),
                step: self.step as u64,
                data_position: self.pos,
                seed: cfg.train.seed,
                adam_step: self.opt.step,
                tensors: layout
                    .names
                    .iter()
                    .zip(&layout.shapes)
                    .map(|(n, s)| TensorInfo {
                        name: n.clone(),
                        shape: s.clone(),
                    })
                    .collect(),
                metrics: json!({ "step": self.step }),
                commit: None,
            },
            params: named(&self.model.params)?,
            adam_m: named(&self.opt.m)?,
            adam_v: named(&self.opt.v)?,
        };
        let path = checkpoint::save(&dir.join("checkpoints"), &ck).map_err(TrainError::from)?;
        Ok(path)
    }
}
