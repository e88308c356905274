//! `dsrsq eval`: a checkpoint + a data spec → one JSON file with every metric.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::data::{DataSpec, Example, LoadOptions, Split, Tok};
use dsrsq::device::GpuContext;
use dsrsq::eval::harness::{eval_record, evaluate_model};
use dsrsq::model::Model;
use dsrsq::train::check_vocab;
use dsrsq::train::checkpoint::{self, Checkpoint};
use dsrsq::Tensor;
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{apply_model, commit, TrainBackend};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint (`.safetensors`), or a run folder (its newest checkpoint is used).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// What to evaluate on (the same specs as `dsrsq train --data`); the held-out split
    /// of the checkpoint's seed.
    #[arg(long)]
    pub data: String,
    /// Held-out examples to evaluate.
    #[arg(long, default_value_t = 200)]
    pub examples: usize,
    /// Longest greedy answer, in tokens.
    #[arg(long, default_value_t = 32)]
    pub max_new: usize,
    #[arg(long, value_enum, default_value_t = TrainBackend::Cpu)]
    pub backend: TrainBackend,
    /// Where to write the JSON.
    #[arg(long, default_value = "eval.json")]
    pub out: PathBuf,
    /// A tokenizer.json other than the built-in bert-base-uncased one.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Evaluate the checkpoint's weights as this compared model (e.g. `razor` or `pyramid`
    /// on a `standard` checkpoint); default: the checkpoint's own config.
    #[arg(long)]
    pub model: Option<String>,
    /// The model's name in reports (default: from the config's components: `dsrsq`,
    /// `standard`, `no_dsr`, ...).
    #[arg(long)]
    pub name: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The checkpoint file `p` names: itself, or the newest one of a run folder.
fn resolve(p: &Path) -> Result<PathBuf> {
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    for dir in [p.join("checkpoints"), p.to_path_buf()] {
        if dir.is_dir() {
            if let Some(f) = checkpoint::latest(&dir)? {
                return Ok(f);
            }
        }
    }
    bail!(
        "{}: neither a checkpoint file nor a folder holding a complete checkpoint",
        p.display()
    )
}

pub fn run(a: EvalArgs) -> Result<()> {
    let wall = Instant::now();
    let path = resolve(&a.checkpoint)?;
    let mut ck =
        checkpoint::load_weights(&path).with_context(|| format!("loading {}", path.display()))?;
    if let Some(name) = &a.model {
        ck.sidecar.config = apply_model(&ck.sidecar.config, name)?;
    }
    let tok = match &a.tokenizer {
        Some(p) => Tok::from_file(p)?,
        None => Tok::bundled()?,
    };
    let spec = DataSpec::parse(&a.data)?;
    let ds = spec.open(
        &tok,
        ck.sidecar.seed,
        Split::Eval,
        &LoadOptions { skip_bad: false },
    )?;
    check_vocab(ck.sidecar.config.model.vocab_size, &tok, &[ds.as_ref()])
        .with_context(|| format!("checkpoint {}", path.display()))?;
    let n = match ds.len() {
        Some(len) => a.examples.min(len),
        None => a.examples,
    };
    if n == 0 {
        bail!("`{}` has no held-out examples to evaluate", a.data);
    }
    let examples = (0..n as u64)
        .map(|i| ds.example(i))
        .collect::<Result<Vec<Example>, _>>()?;
    let report = match a.backend {
        TrainBackend::Cpu => go(&CpuBackend, &ck, &tok, &examples, &a)?,
        TrainBackend::Wgpu => {
            let ctx = GpuContext::from_env().context("opening the wgpu device")?;
            go(&WgpuBackend::new(Arc::new(ctx)), &ck, &tok, &examples, &a)?
        }
    };
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| ck.sidecar.config.variant_name());
    let mut json = eval_record(
        &name,
        &path,
        ck.sidecar.step,
        &a.data,
        &ck.sidecar.config,
        &report.1,
        commit(),
        wall.elapsed().as_secs_f64(),
        &report.0,
    );
    json["checkpoint_commit"] = serde_json::json!(ck.sidecar.commit);
    let text = serde_json::to_string_pretty(&json)?;
    std::fs::write(&a.out, text).with_context(|| format!("writing {}", a.out.display()))?;
    let r = &report.0;
    println!(
        "{} examples: teacher-forced exact match {:.3}, row accuracy {:.3}",
        r.examples, r.teacher_forced.exact_match, r.teacher_forced.row_accuracy
    );
    if let (Some(t), Some(e)) = (&r.task, &r.efficiency) {
        println!(
            "greedy: EM {:.3}, F1 {:.3}, ROUGE-L {:.3}, BLEU {:.2}; {:.0} tokens/s, latency p50 {:.3} s / p95 {:.3} s, token efficiency {:.3}",
            t.exact_match, t.f1, t.rouge_l_f, t.bleu, e.tokens_per_second, e.latency_p50_s, e.latency_p95_s, e.token_efficiency
        );
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

fn go<B: Backend>(
    be: &B,
    ck: &Checkpoint,
    tok: &Tok,
    examples: &[Example],
    a: &EvalArgs,
) -> Result<(dsrsq::eval::harness::EvalReport, String)> {
    eprintln!("evaluating on {}", be.name());
    let cfg = &ck.sidecar.config;
    let host: Vec<Tensor> = ck.params.iter().map(|(_, t)| t.clone()).collect();
    let model = Model::from_host(be, cfg, &host).with_context(|| {
        format!(
            "loading the checkpoint's weights as `{}`",
            cfg.variant_name()
        )
    })?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(examples.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("greedy decoding {bar:30} {pos}/{len} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = evaluate_model(
        be,
        &model,
        tok,
        examples,
        cfg.train.batch_size,
        a.max_new,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    Ok((report, be.name()))
}
