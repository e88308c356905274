//! A training run, one optimizer step at a time: what `dsrsq train` (`run::train`, with its
//! progress bar) and the desktop app (which pauses and stops between steps) both drive.
//!
//! Determinism: example `i` of the training stream is a pure function of (seed, i) and the
//! parameters start from the seed, so a run resumed from a checkpoint (parameters, AdamW
//! moments and step, data position) continues exactly as the uninterrupted run would have.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::checkpoint::{self, Checkpoint, Sidecar, TensorInfo};
use super::eval::{evaluate, EvalStats};
use super::metrics::MetricsLog;
use super::optim::{lr_at, Optimizer};
use super::record::StepRecord;
use super::run_dir::{RunDir, RunMode};
use super::step::optimizer_step;
use super::TrainError;
use crate::backend::Backend;
use crate::data::{DataSpec, Dataset, Example, LoadOptions, Split, Tok};
use crate::kernels::adamw::AdamW;
use crate::model::{Config, Model, ParamLayout};
use crate::Tensor;

/// Everything a training run decides.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: Config,
    /// The `--data` spec (see `data::DataSpec`).
    pub data: String,
    /// A curriculum before `data`: `(spec, until_step)` stages in order; stage `i` supplies the
    /// training batches of the steps before its `until_step` (after the previous stage's).
    /// Held-out evaluation always uses `data`, the target task.
    pub stages: Vec<(String, usize)>,
    /// Checkpoints, `metrics.jsonl` and the run summary go here (`None`: nothing is written).
    pub out_dir: Option<PathBuf>,
    /// Optimizer steps; `None` = `train.epochs` passes over a finite dataset.
    pub steps: Option<usize>,
    /// A checkpoint every this many steps (0: only the end's, where the caller saves one).
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    /// A new run, `--resume` or `--overwrite` (see [`RunMode`]).
    pub mode: RunMode,
    pub eval_every: usize,
    pub eval_examples: usize,
    pub skip_bad: bool,
    pub progress: bool,
    pub tokenizer: Option<PathBuf>,
    /// Warmup steps of the learning-rate schedule.
    pub warmup: usize,
    /// The git commit to record in checkpoints and logs.
    pub commit: Option<String>,
}

impl TrainOptions {
    /// Options for `steps` steps of `config` on `data` with the usual defaults: no output,
    /// no held-out evaluation, no progress bar, warmup a tenth of the run (at most 100).
    pub fn new(config: Config, data: &str, steps: usize) -> Self {
        Self {
            config,
            data: data.to_string(),
            stages: Vec::new(),
            out_dir: None,
            steps: Some(steps),
            checkpoint_every: 0,
            keep_checkpoints: 1,
            mode: RunMode::New,
            eval_every: 0,
            eval_examples: 0,
            skip_bad: false,
            progress: false,
            tokenizer: None,
            warmup: (steps / 10).min(100),
            commit: None,
        }
    }
}

/// A model being trained.
pub struct TrainSession<B: Backend> {
    pub opts: TrainOptions,
    pub model: Model<B>,
    opt: Optimizer<B>,
    train_ds: Box<dyn Dataset>,
    /// Curriculum stages with the step each ends before.
    stages: Vec<(Box<dyn Dataset>, usize)>,
    eval_set: Vec<Example>,
    log: Option<MetricsLog>,
    run_dir: Option<RunDir>,
    total: usize,
    step: usize,
    pos: u64,
    resumed_from: Option<usize>,
    notices: Vec<String>,
    last_record: Option<StepRecord>,
    last_eval: Option<EvalStats>,
    tokens_done: usize,
    t0: Instant,
}

/// Opens the datasets a run reads: (train, eval, curriculum stages).
type Datasets = (
    Box<dyn Dataset>,
    Box<dyn Dataset>,
    Vec<(Box<dyn Dataset>, usize)>,
);

fn open_data(opts: &TrainOptions, tok: &Tok) -> Result<Datasets, TrainError> {
    let seed = opts.config.train.seed;
    let load = LoadOptions {
        skip_bad: opts.skip_bad,
    };
    let spec = DataSpec::parse(&opts.data)?;
    let train_ds = spec.open(tok, seed, Split::Train, &load)?;
    let eval_ds = spec.open(tok, seed, Split::Eval, &load)?;
    let mut stages = Vec::with_capacity(opts.stages.len());
    let mut prev_until = 0;
    for (i, (text, until)) in opts.stages.iter().enumerate() {
        if *until <= prev_until {
            return Err(TrainError::Setup(format!(
                "curriculum stage {} (`{text}`) ends at step {until}, not after the previous stage ({prev_until})",
                i + 1
            )));
        }
        prev_until = *until;
        // Each stage draws from its own seed stream, so its examples differ from the target
        // task's even when the spec is the same.
        let ds =
            DataSpec::parse(text)?.open(tok, seed ^ (0x5_7A6E + i as u64), Split::Train, &load)?;
        stages.push((ds, *until));
    }
    Ok((train_ds, eval_ds, stages))
}

/// What `--skip-bad` skipped, one line per data file that skipped anything (the train and eval
/// splits of one file read the same records, so they say the same line once).
fn skip_notices(datasets: &[&dyn Dataset]) -> Vec<String> {
    let mut lines: Vec<String> = datasets
        .iter()
        .filter_map(|ds| {
            let r = ds.report().load;
            (r.skipped > 0).then(|| {
                format!(
                    "--skip-bad: `{}` skipped {} malformed record(s) and kept {} (first: {})",
                    ds.describe(),
                    r.skipped,
                    r.records,
                    r.reasons.join("; ")
                )
            })
        })
        .collect();
    lines.dedup();
    lines
}

impl<B: Backend> TrainSession<B> {
    /// Opens the data, the run folder (locked; see `run_dir`) and the model: fresh from the
    /// config's seed, or the folder's newest checkpoint with `RunMode::Resume`.
    pub fn open(be: &B, opts: TrainOptions) -> Result<Self, TrainError> {
        let cfg = &opts.config;
        let tok = match &opts.tokenizer {
            Some(p) => Tok::from_file(p)?,
            None => Tok::bundled()?,
        };
        let (train_ds, eval_ds, stages) = open_data(&opts, &tok)?;
        let mut all: Vec<&dyn Dataset> = vec![train_ds.as_ref(), eval_ds.as_ref()];
        all.extend(stages.iter().map(|(d, _)| d.as_ref()));
        super::run::check_vocab(cfg.model.vocab_size, &tok, &all)?;
        let mut notices = skip_notices(&all);
        let total = match (opts.steps, train_ds.len()) {
            (Some(0), _) => {
                return Err(TrainError::Setup(
                    "--steps is 0: a run trains at least one step".into(),
                ))
            }
            (Some(s), _) => s,
            (None, Some(n)) => (n * cfg.train.epochs).div_ceil(cfg.train.batch_size),
            (None, None) => {
                return Err(TrainError::Setup(format!(
                    "`{}` generates examples without end: pass --steps",
                    opts.data
                )))
            }
        };
        let run_dir = match &opts.out_dir {
            Some(dir) => {
                let (d, said) = RunDir::open(dir, opts.mode)?;
                notices.extend(said);
                Some(d)
            }
            None if opts.mode == RunMode::Resume => {
                return Err(TrainError::Setup(
                    "--resume needs the run's output folder".into(),
                ))
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
        let metrics_path = run_dir.as_ref().map(|d| d.path().join("metrics.jsonl"));
        let (model, opt, step, pos, resumed_from, log) = match (&run_dir, opts.mode) {
            (Some(dir), RunMode::Resume) => {
                let r = resume(be, cfg, hp, dir.path(), total, &mut notices)?;
                let log = MetricsLog::resume(&dir.path().join("metrics.jsonl"), r.3 as u64)?;
                (r.0, r.1, r.3, r.2, Some(r.3), Some(log))
            }
            _ => {
                let model = Model::new(be, cfg, cfg.train.seed)?;
                let opt = Optimizer::new(be, &model.layout, hp)?;
                let log = match &metrics_path {
                    Some(p) => Some(MetricsLog::create(p, false)?),
                    None => None,
                };
                (model, opt, 0, 0, None, log)
            }
        };
        let eval_set: Vec<Example> = (0..opts.eval_examples as u64)
            .map(|i| eval_ds.example(i))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            opts,
            model,
            opt,
            train_ds,
            stages,
            eval_set,
            log,
            run_dir,
            total,
            step,
            pos,
            resumed_from,
            notices,
            last_record: None,
            last_eval: None,
            tokens_done: 0,
            t0: Instant::now(),
        })
    }

    /// What opening the run did that the user should hear about (stale temp files removed,
    /// malformed records skipped, newer broken checkpoints passed over on resume, ...).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Optimizer steps done (counting those before a resume).
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The step the run ends at.
    pub fn total_steps(&self) -> usize {
        self.total
    }

    pub fn finished(&self) -> bool {
        self.step >= self.total
    }

    pub fn resumed_from(&self) -> Option<usize> {
        self.resumed_from
    }

    /// The run folder (`None` when nothing is written).
    pub fn out_dir(&self) -> Option<&Path> {
        self.run_dir.as_ref().map(|d| d.path())
    }

    pub fn last_record(&self) -> Option<&StepRecord> {
        self.last_record.as_ref()
    }

    /// The held-out evaluation of the last step that ran one.
    pub fn last_eval(&self) -> Option<EvalStats> {
        self.last_eval
    }

    /// Seconds since the session opened, and tokens trained on in that time.
    pub fn throughput(&self) -> (f64, usize) {
        (self.t0.elapsed().as_secs_f64(), self.tokens_done)
    }

    /// One optimizer step (with the held-out evaluation when due, and its line in
    /// `metrics.jsonl`); returns its record.
    pub fn step(&mut self, be: &B) -> Result<StepRecord, TrainError> {
        if self.finished() {
            return Err(TrainError::Setup(format!(
                "the session already ran its {} steps",
                self.total
            )));
        }
        let cfg = &self.opts.config;
        let (step, batch) = (self.step, cfg.train.batch_size);
        // The data stream is one position counter across stages: resuming mid-curriculum
        // lands on the same stage and example.
        let ds = self
            .stages
            .iter()
            .find(|(_, until)| step < *until)
            .map_or(&self.train_ds, |(d, _)| d);
        let examples: Vec<Example> = (0..batch as u64)
            .map(|i| ds.example(self.pos + i))
            .collect::<Result<_, _>>()?;
        self.pos += batch as u64;
        let lr = lr_at(
            cfg.train.learning_rate,
            step,
            self.opts.warmup,
            Some(self.total),
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
        self.tokens_done += examples.iter().map(|e| e.ids.len()).sum::<usize>();
        self.step += 1;
        let every = self.opts.eval_every;
        if every > 0
            && !self.eval_set.is_empty()
            && (self.step.is_multiple_of(every) || self.finished())
        {
            let ev = evaluate(be, &self.model, &self.eval_set, batch, self.step)?;
            rec.add_eval(&ev);
            self.last_eval = Some(ev);
        }
        if let Some(log) = &self.log {
            log.log(&rec)?;
        }
        self.last_record = Some(rec.clone());
        Ok(rec)
    }

    /// Whether the step just done is one `checkpoint_every` asks a checkpoint for.
    pub fn checkpoint_due(&self) -> bool {
        let every = self.opts.checkpoint_every;
        self.step > 0 && every > 0 && self.step.is_multiple_of(every)
    }

    /// The parameters on the host, in layout order (to inspect or checkpoint elsewhere).
    pub fn params(&self, be: &B) -> Result<Vec<Tensor>, TrainError> {
        Ok(self.model.to_host(be)?)
    }

    /// Writes a checkpoint of the current step into the run folder's `checkpoints/` and keeps
    /// the newest `keep_checkpoints`; loadable by `--resume`, `dsrsq eval` and the app.
    pub fn save_checkpoint(&self, be: &B) -> Result<PathBuf, TrainError> {
        let Some(dir) = self.out_dir() else {
            return Err(TrainError::Setup(
                "this session has no output folder to checkpoint into".into(),
            ));
        };
        let cfg = &self.opts.config;
        let layout = &self.model.layout;
        let named = |ts: &[B::T]| -> Result<Vec<(String, Tensor)>, TrainError> {
            layout
                .names
                .iter()
                .zip(ts)
                .map(|(n, t)| Ok((n.clone(), be.download(t)?)))
                .collect()
        };
        let metrics = match &self.last_record {
            Some(r) => serde_json::to_value(r).map_err(|e| TrainError::Setup(e.to_string()))?,
            None => serde_json::json!({ "step": self.step }),
        };
        let ck = Checkpoint {
            sidecar: Sidecar {
                format: checkpoint::CHECKPOINT_FORMAT,
                config: cfg.clone(),
                step: self.step as u64,
                data_position: self.pos,
                seed: cfg.train.seed,
                adam_step: self.opt.step,
                tensors: tensor_infos(layout),
                metrics,
                commit: self.opts.commit.clone(),
            },
            params: named(&self.model.params)?,
            adam_m: named(&self.opt.m)?,
            adam_v: named(&self.opt.v)?,
        };
        let ck_dir = dir.join("checkpoints");
        let path = checkpoint::save(&ck_dir, &ck)?;
        checkpoint::prune(&ck_dir, self.opts.keep_checkpoints.max(1))?;
        Ok(path)
    }
}

fn tensor_infos(layout: &ParamLayout) -> Vec<TensorInfo> {
    layout
        .names
        .iter()
        .zip(&layout.shapes)
        .map(|(n, s)| TensorInfo {
            name: n.clone(),
            shape: s.clone(),
        })
        .collect()
}

/// Loads the folder's newest complete checkpoint: (model, optimizer, data position, step).
fn resume<B: Backend>(
    be: &B,
    cfg: &Config,
    hp: AdamW,
    dir: &Path,
    total: usize,
    notices: &mut Vec<String>,
) -> Result<(Model<B>, Optimizer<B>, u64, usize), TrainError> {
    let ck_dir = dir.join("checkpoints");
    let found = checkpoint::scan_latest(&ck_dir)?;
    for bad in &found.skipped {
        notices.push(format!("--resume: passed over a newer checkpoint: {bad}"));
    }
    let Some(path) = found.path else {
        return Err(TrainError::Setup(format!(
            "--resume: no complete checkpoint in {}",
            ck_dir.display()
        )));
    };
    let ck = checkpoint::load_weights(&path)?;
    let step = ck.sidecar.step as usize;
    if step >= total {
        return Err(TrainError::Setup(format!(
            "--resume: the run in {} is already at step {step}, so --steps {total} leaves nothing to train: pass a larger --steps to continue it",
            dir.display()
        )));
    }
    let layout = ParamLayout::new(cfg);
    checkpoint::check_compatible(&tensor_infos(&layout), &ck)?;
    let diff = config_diff(&ck.sidecar.config, cfg);
    if !diff.is_empty() {
        return Err(TrainError::Setup(format!(
            "--resume: {} was written with another config (differs in {})",
            path.display(),
            diff.join(", ")
        )));
    }
    if !found.skipped.is_empty() {
        notices.push(format!("--resume: continuing from {}", path.display()));
    }
    let host: Vec<Tensor> = ck.params.into_iter().map(|(_, t)| t).collect();
    let model = Model::from_host(be, cfg, &host)?;
    let mut opt = Optimizer::new(be, &model.layout, hp)?;
    let up = |v: Vec<(String, Tensor)>| -> Result<Vec<B::T>, TrainError> {
        Ok(v.iter()
            .map(|(_, t)| be.upload(t))
            .collect::<Result<Vec<_>, _>>()?)
    };
    opt.restore(up(ck.adam_m)?, up(ck.adam_v)?, ck.sidecar.adam_step);
    Ok((model, opt, ck.sidecar.data_position, step))
}

/// Top-level config keys (`section.key`) whose values differ.
fn config_diff(a: &Config, b: &Config) -> Vec<String> {
    let (Ok(ta), Ok(tb)) = (toml::Value::try_from(a), toml::Value::try_from(b)) else {
        return vec!["(config not serializable)".into()];
    };
    let mut out = Vec::new();
    if let (Some(sa), Some(sb)) = (ta.as_table(), tb.as_table()) {
        for (sec, va) in sa {
            let vb = sb.get(sec);
            match (va.as_table(), vb.and_then(|v| v.as_table())) {
                (Some(ka), Some(kb)) => {
                    for (k, x) in ka {
                        if kb.get(k) != Some(x) {
                            out.push(format!("{sec}.{k}"));
                        }
                    }
                }
                _ if vb != Some(va) => out.push(sec.clone()),
                _ => {}
            }
        }
    }
    out
}
