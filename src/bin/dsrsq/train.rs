//! `dsrsq train`: config + data spec → a trained checkpoint, metrics.jsonl and a summary.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::device::GpuContext;
use dsrsq::model::{variants, Config};
use dsrsq::train::{self, RunMode, TrainOptions, TrainSummary};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TrainBackend {
    Cpu,
    Wgpu,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A TOML config file, or a preset name (`tiny`, `seed`, ...).
    #[arg(long, default_value = "tiny")]
    pub config: String,
    /// Which compared model to train on that config: dsrsq, standard, rag, attention_rag,
    /// gca, razor, pyramid, no_dsr, no_sqa, no_rckv (default: the config's own switches).
    #[arg(long)]
    pub model: Option<String>,
    /// What to train on: `passkey:ctx=2048`, `mqar:ctx=256,pairs=16`, `needle:ctx=4096`,
    /// `squad:FILE`, `nq:FILE`, `nq-open:FILE`, `longqa:FILE,ctx=4096`.
    #[arg(long, default_value = "passkey:ctx=2048")]
    pub data: String,
    /// A curriculum stage before `--data`, as `SPEC@UNTIL_STEP` (repeatable, in order): e.g.
    /// `--stage mqar:ctx=64,pairs=4@1500` trains on short MQAR for the first 1,500 steps.
    /// Held-out evaluation always uses `--data`.
    #[arg(long = "stage", value_parser = parse_stage)]
    pub stages: Vec<(String, usize)>,
    /// Output folder (checkpoints/, metrics.jsonl, summary.json).
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// Optimizer steps (required for generated data; default for files: the config's epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long, value_enum, default_value_t = TrainBackend::Cpu)]
    pub backend: TrainBackend,
    /// Continue from the newest checkpoint in OUT/checkpoints.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Start afresh in an OUT that holds a run, removing that run's files first (metrics.jsonl,
    /// summary.json, checkpoints/; anything else in OUT makes this an error). Without it (or
    /// --resume) an OUT holding a run is refused.
    #[arg(long)]
    pub overwrite: bool,
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    #[arg(long, default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Held-out evaluation every N steps (0 = only at the end... and never if 0 examples).
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    #[arg(long, default_value_t = 200)]
    pub eval_examples: usize,
    /// Learning-rate warmup steps.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Skip (and count) malformed dataset records instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// A tokenizer.json other than the built-in bert-base-uncased one.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Override the config's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the config's learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Override the config's batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// No progress bar (logs only).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_stage(s: &str) -> Result<(String, usize), String> {
    let (spec, until) = s
        .rsplit_once('@')
        .ok_or_else(|| format!("`{s}`: expected SPEC@UNTIL_STEP"))?;
    let until = until
        .parse()
        .map_err(|_| format!("`{s}`: `{until}` is not a step number"))?;
    Ok((spec.to_string(), until))
}

pub fn load_config(spec: &str) -> Result<Config> {
    let p = PathBuf::from(spec);
    if p.exists() || spec.ends_with(".toml") {
        Ok(Config::from_file(&p)?)
    } else {
        Ok(Config::preset(spec)?)
    }
}

/// `config` switched to the compared model `name`.
pub fn apply_model(config: &Config, name: &str) -> Result<Config> {
    variants::apply(config, name).ok_or_else(|| {
        anyhow::anyhow!(
            "--model {name}: unknown model (known: {})",
            variants::names()
        )
    })
}

pub fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn run(a: TrainArgs) -> Result<()> {
    let mut config = load_config(&a.config).with_context(|| format!("config {}", a.config))?;
    if let Some(name) = &a.model {
        config = apply_model(&config, name)?;
    }
    if let Some(s) = a.seed {
        config.train.seed = s;
    }
    if let Some(lr) = a.lr {
        config.train.learning_rate = lr;
    }
    if let Some(b) = a.batch {
        config.train.batch_size = b;
    }
    config.validate(&a.config)?;
    let opts = TrainOptions {
        config,
        data: a.data.clone(),
        stages: a.stages.clone(),
        out_dir: Some(a.out.clone()),
        steps: a.steps,
        checkpoint_every: a.checkpoint_every,
        keep_checkpoints: a.keep_checkpoints,
        mode: if a.resume {
            RunMode::Resume
        } else if a.overwrite {
            RunMode::Overwrite
        } else {
            RunMode::New
        },
        eval_every: a.eval_every,
        eval_examples: a.eval_examples,
        skip_bad: a.skip_bad,
        progress: !a.quiet,
        tokenizer: a.tokenizer.clone(),
        warmup: a.warmup,
        commit: commit(),
    };
    let summary = match a.backend {
        TrainBackend::Cpu => go(&CpuBackend, &opts)?,
        TrainBackend::Wgpu => {
            let ctx = GpuContext::from_env().context("opening the wgpu device")?;
            let be = WgpuBackend::new(Arc::new(ctx));
            go(&be, &opts)?
        }
    };
    println!(
        "trained {} steps in {:.1} s ({:.0} tokens/s); final loss {:.4}",
        summary.steps, summary.seconds, summary.tokens_per_second, summary.last_loss
    );
    if let Some(e) = summary.last_eval {
        println!(
            "held-out: exact match {:.3}, row accuracy {:.3} on {} examples",
            e.exact_match(),
            e.row_accuracy(),
            e.examples
        );
    }
    println!("metrics: {}", a.out.join("metrics.jsonl").display());
    Ok(())
}

fn go<B: Backend>(be: &B, opts: &TrainOptions) -> Result<TrainSummary> {
    eprintln!("training on {}", be.name());
    Ok(train::train(be, opts)?)
}
