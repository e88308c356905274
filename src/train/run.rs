//! The training loop behind `dsrsq train`: deterministic data by position, the hybrid loss,
//! AdamW with clipping, a progress bar, a JSONL metrics log, periodic held-out evaluation,
//! NaN/inf detection, atomic checkpoints and `--resume`.
//!
//! Determinism: example `i` of the training stream is a pure function of (seed, i) and the
//! parameters start from the seed, so a run resumed from a checkpoint (parameters, AdamW
//! moments and step, data position) continues exactly as the uninterrupted run would have.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::{self, Checkpoint, Sidecar, TensorInfo};
use super::eval::{evaluate, EvalStats};
use super::metrics::MetricsLog;
use super::optim::{lr_at, Optimizer};
use super::step::{add_eval, optimizer_step};
use super::TrainError;
use crate::backend::Backend;
use crate::data::{DataSpec, Dataset, Example, LoadOptions, Split, Tok};

use crate::kernels::adamw::AdamW;
use crate::model::{Config, Model};
use crate::Tensor;

/// Everything `dsrsq train` decides.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: Config,
    /// The `--data` spec (see `data::DataSpec`).
    pub data: String,
    /// A curriculum before `data`: `(spec, until_step)` stages in order; stage `i` supplies the
    /// training batches of the steps before its `until_step` (after the previous stage's).
    /// Held-out evaluation always uses `data`, the target task.
    pub stages: Vec<(String, usize)>,
    /// Checkpoints, `metrics.jsonl` and the run summary go here.
    pub out_dir: PathBuf,
    /// Optimizer steps; `None` = `train.epochs` passes over a finite dataset.
    pub steps: Option<usize>,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    pub resume: bool,
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

/// How a run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub steps: usize,
    pub resumed_from: Option<usize>,
    pub last_loss: f32,
    pub last_eval: Option<EvalStats>,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub checkpoint: Option<PathBuf>,
}

fn tensor_infos(model_names: &[String], shapes: &[Vec<usize>]) -> Vec<TensorInfo> {
    model_names
        .iter()
        .zip(shapes)
        .map(|(n, s)| TensorInfo {
            name: n.clone(),
            shape: s.clone(),
        })
        .collect()
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

/// The model's vocabulary must hold every id the data can produce: the whole tokenizer,
/// unless every dataset draws from a known smaller range (synthetic tasks).
pub fn check_vocab(
    vocab_size: usize,
    tok: &Tok,
    datasets: &[&dyn Dataset],
) -> Result<(), TrainError> {
    let mut need = 0u64;
    let mut from = String::new();
    for ds in datasets {
        let (n, what) = match ds.token_bound() {
            Some(b) => (
                u64::from(b),
                format!("`{}` uses token ids below {b}", ds.describe()),
            ),
            None => (
                tok.vocab_size() as u64,
                format!(
                    "`{}` can hold any of the tokenizer's {} tokens",
                    ds.describe(),
                    tok.vocab_size()
                ),
            ),
        };
        if n > need {
            need = n;
            from = what;
        }
    }
    if need > vocab_size as u64 {
        return Err(TrainError::Setup(format!(
            "model.vocab_size is {vocab_size} but {from}"
        )));
    }
    Ok(())
}

/// Runs training on backend `be`.
pub fn train<B: Backend>(be: &B, opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let cfg = &opts.config;
    let seed = cfg.train.seed;
    let tok = match &opts.tokenizer {
        Some(p) => Tok::from_file(p)?,
        None => Tok::bundled()?,
    };
    let spec = DataSpec::parse(&opts.data)?;
    let load = LoadOptions {
        skip_bad: opts.skip_bad,
    };
    let train_ds = spec.open(&tok, seed, Split::Train, &load)?;
    let eval_ds = spec.open(&tok, seed, Split::Eval, &load)?;
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
            DataSpec::parse(text)?.open(&tok, seed ^ (0x5_7A6E + i as u64), Split::Train, &load)?;
        stages.push((ds, *until));
    }
    let mut all: Vec<&dyn Dataset> = vec![train_ds.as_ref(), eval_ds.as_ref()];
    all.extend(stages.iter().map(|(d, _)| d.as_ref()));
    check_vocab(cfg.model.vocab_size, &tok, &all)?;
    let batch = cfg.train.batch_size;
    let total = match (opts.steps, train_ds.len()) {
        (Some(s), _) => s,
        (None, Some(n)) => (n * cfg.train.epochs).div_ceil(batch),
        (None, None) => {
            return Err(TrainError::Setup(format!(
                "`{}` generates examples without end: pass --steps",
                opts.data
            )))
        }
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| TrainError::Io {
        path: opts.out_dir.display().to_string(),
        source: e,
    })?;
    let ck_dir = opts.out_dir.join("checkpoints");
    let metrics_path = opts.out_dir.join("metrics.jsonl");

    let hp = AdamW {
        lr: cfg.train.learning_rate,
        beta1: cfg.train.adam_beta1,
        beta2: cfg.train.adam_beta2,
        eps: 1e-8,
        weight_decay: cfg.train.weight_decay,
    };
    let (mut model, mut opt, start, mut pos, resumed_from, log) = if opts.resume {
        let Some(path) = checkpoint::latest(&ck_dir)? else {
            return Err(TrainError::Setup(format!(
                "--resume: no complete checkpoint in {}",
                ck_dir.display()
            )));
        };
        let ck = checkpoint::load(&path)?;
        let layout = crate::model::ParamLayout::new(cfg);
        checkpoint::check_compatible(&tensor_infos(&layout.names, &layout.shapes), &ck)?;
        let diff = config_diff(&ck.sidecar.config, cfg);
        if !diff.is_empty() {
            return Err(TrainError::Setup(format!(
                "--resume: {} was written with another config (differs in {})",
                path.display(),
                diff.join(", ")
            )));
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
        let step = ck.sidecar.step as usize;
        let log = MetricsLog::resume(&metrics_path, ck.sidecar.step)?;
        (model, opt, step, ck.sidecar.data_position, Some(step), log)
    } else {
        let model = Model::new(be, cfg, seed)?;
        let opt = Optimizer::new(be, &model.layout, hp)?;
        (
            model,
            opt,
            0,
            0,
            None,
            MetricsLog::create(&metrics_path, false)?,
        )
    };

    let eval_set: Vec<Example> = (0..opts.eval_examples as u64)
        .map(|i| eval_ds.example(i))
        .collect::<Result<_, _>>()?;

    let bar = if opts.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}",
        )
        .map_err(|e| TrainError::Setup(e.to_string()))?,
    );
    bar.set_position(start as u64);

    let t0 = Instant::now();
    let mut tokens_done = 0usize;
    let mut last_loss = f32::NAN;
    let mut last_eval = None;
    let mut last_ck = None;
    for step in start..total {
        // The data stream is one position counter across stages: resuming mid-curriculum
        // lands on the same stage and example.
        let ds = stages
            .iter()
            .find(|(_, until)| step < *until)
            .map(|(d, _)| d)
            .unwrap_or(&train_ds);
        let examples: Vec<Example> = (0..batch as u64)
            .map(|i| ds.example(pos + i))
            .collect::<Result<_, _>>()?;
        pos += batch as u64;
        let lr = lr_at(cfg.train.learning_rate, step, opts.warmup, Some(total));
        let (mut rec, loss) = optimizer_step(be, &mut model, &mut opt, &examples, step, lr, t0)?;
        last_loss = loss;
        tokens_done += examples.iter().map(|e| e.ids.len()).sum::<usize>();
        let last = step + 1 == total;
        if opts.eval_every > 0
            && ((step + 1) % opts.eval_every == 0 || last)
            && !eval_set.is_empty()
        {
            let ev = evaluate(be, &model, &eval_set, batch, step + 1)?;
            add_eval(&mut rec, &ev);
            last_eval = Some(ev);
            bar.println(format!(
                "step {}: eval exact match {:.3}, row accuracy {:.3}, evidence kept {:.3} ({:.1}% of context) on {} held-out examples",
                step + 1,
                ev.exact_match(),
                ev.row_accuracy(),
                ev.support_recall(),
                100.0 * ev.kept_fraction(),
                ev.examples
            ));
        }
        log.log(&rec)?;
        let r = |k: &str| rec[k].as_f64().unwrap_or(f64::NAN);
        bar.set_message(format!(
            "loss {:.4} (task {:.4} ret {:.4} comp {:.4} cmp {:.4}) {:.0} tok/s",
            r("loss"),
            r("task"),
            r("retrieval"),
            r("compression"),
            r("compute"),
            r("tokens_per_s")
        ));
        bar.set_position(step as u64 + 1);
        let due = opts.checkpoint_every > 0 && (step + 1) % opts.checkpoint_every == 0;
        if due || last {
            let ck = Checkpoint {
                sidecar: Sidecar {
                    format: checkpoint::CHECKPOINT_FORMAT,
                    config: cfg.clone(),
                    step: step as u64 + 1,
                    data_position: pos,
                    seed,
                    adam_step: opt.step,
                    tensors: tensor_infos(&model.layout.names, &model.layout.shapes),
                    metrics: rec.clone(),
                    commit: opts.commit.clone(),
                },
                params: named(be, &model.layout.names, &model.params)?,
                adam_m: named(be, &model.layout.names, &opt.m)?,
                adam_v: named(be, &model.layout.names, &opt.v)?,
            };
            last_ck = Some(checkpoint::save(&ck_dir, &ck)?);
            checkpoint::prune(&ck_dir, opts.keep_checkpoints.max(1))?;
        }
    }
    bar.finish();
    let seconds = t0.elapsed().as_secs_f64();
    Ok(TrainSummary {
        steps: total,
        resumed_from,
        last_loss,
        last_eval,
        seconds,
        tokens_per_second: tokens_done as f64 / seconds.max(1e-9),
        checkpoint: last_ck,
    })
}

fn named<B: Backend>(
    be: &B,
    names: &[String],
    ts: &[B::T],
) -> Result<Vec<(String, Tensor)>, TrainError> {
    names
        .iter()
        .zip(ts)
        .map(|(n, t)| Ok((n.clone(), be.download(t)?)))
        .collect()
}
