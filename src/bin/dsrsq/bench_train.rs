//! `dsrsq bench train`: training throughput of the dense reference model and of DSRSQ.

use std::sync::Arc;

use anyhow::{Context, Result};
use dsrsq::backend::{Backend, CpuBackend, WgpuBackend};
use dsrsq::bench::train::{dense_reference, tokens_per_second};
use dsrsq::bench::BackendChoice;
use dsrsq::device::GpuContext;
use dsrsq::model::AttentionKind;

fn rows<B: Backend>(be: &B, quick: bool) -> Result<()> {
    let dense = dense_reference()?;
    let mut dsrsq = dense.clone();
    dsrsq.model.use_dsr = true;
    dsrsq.model.attention = AttentionKind::Sqa;
    dsrsq.model.use_rckv = true;
    let lens: &[usize] = if quick { &[128] } else { &[512, 2048] };
    let steps = if quick { 2 } else { 5 };
    println!("backend: {}", be.name());
    println!("| model | batch × len | tokens/s |");
    println!("|---|---|---|");
    for &len in lens {
        for (name, cfg) in [("dense", &dense), ("dsrsq", &dsrsq)] {
            let tps = tokens_per_second(be, cfg, len, steps)
                .with_context(|| format!("{name} at {len}"))?;
            println!("| {name} | {} × {len} | {tps:.0} |", cfg.train.batch_size);
        }
    }
    Ok(())
}

pub fn run(choice: BackendChoice, quick: bool) -> Result<()> {
    println!(
        "Training throughput: d_model 128, 4 layers, 4 heads, vocab 8192, AdamW, every position a target"
    );
    if matches!(choice, BackendChoice::Cpu | BackendChoice::All) {
        rows(&CpuBackend, quick)?;
    }
    if matches!(choice, BackendChoice::Wgpu | BackendChoice::All) {
        let ctx = GpuContext::from_env().context("opening the wgpu device")?;
        rows(&WgpuBackend::new(Arc::new(ctx)), quick)?;
    }
    Ok(())
}
