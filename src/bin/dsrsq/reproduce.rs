//! `dsrsq reproduce`: the seed's experiment end to end on a preset.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::device::GpuContext;
use dsrsq::eval::report::{utc, Written};
use dsrsq::eval::reproduce::{preset, reproduce, Preset};

use crate::train::{commit, TrainBackend};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// `micro` (the whole pipeline in seconds) or `tiny` (the tiny config, minutes on a CPU).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Output folder (default: runs/<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TrainBackend::Cpu)]
    pub backend: TrainBackend,
    /// The models to compare, in order (repeatable or comma-separated; default: the preset's).
    /// Training-free baselines (rag, attention_rag, razor, pyramid) need `standard` earlier
    /// in the list.
    #[arg(long = "model", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Override the preset's training steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: ReproduceArgs) -> Result<()> {
    let mut p = preset(&a.preset)?;
    if let Some(s) = a.steps {
        p.steps = s;
    }
    if !a.models.is_empty() {
        p.models = a.models.clone();
    }
    let out = a.out.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let stamp: String = utc(now)
            .chars()
            .map(|c| if c == ' ' { '-' } else { c })
            .filter(|c| *c != ':')
            .collect();
        PathBuf::from("runs").join(stamp)
    });
    let t = std::time::Instant::now();
    let w = match a.backend {
        TrainBackend::Cpu => go(&CpuBackend, &p, &out, &a)?,
        TrainBackend::Wgpu => {
            let ctx = GpuContext::from_env().context("opening the wgpu device")?;
            go(&WgpuBackend::new(Arc::new(ctx)), &p, &out, &a)?
        }
    };
    for (f, why) in &w.skipped {
        eprintln!("not drawn: {f} ({why})");
    }
    println!(
        "reproduce --preset {} done in {:.1} s: {} and {} figures",
        p.name,
        t.elapsed().as_secs_f64(),
        w.report.display(),
        w.figures.len()
    );
    Ok(())
}

fn go<B: Backend>(be: &B, p: &Preset, out: &std::path::Path, a: &ReproduceArgs) -> Result<Written> {
    eprintln!("reproducing on {}", be.name());
    Ok(reproduce(be, p, out, commit(), !a.quiet)?)
}
