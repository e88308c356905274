//! The wgpu half of `dsrsq bench attention`: SQA vs dense causal attention and DSR selection on
//! the device, with wall time and (where the adapter has timestamps) device time. Software
//! adapters such as lavapipe get small sizes only.

use std::time::Instant;

use super::attention::{fmt_slope, gauss, loglog_slope, HEADS, HEAD_DIM, QUESTION};
use super::{Context, Result};
use crate::device::{DeviceError, GpuContext, GpuTensor};
use crate::kernels::attention::gpu as dense;
use crate::kernels::check::random_vec;
use crate::kernels::dsr::{self, DsrConfig, DsrDims};
use crate::kernels::sqa::{gpu as sqa, SqaConfig};

/// Median (wall, device) seconds over `reps` runs after one warm-up.
fn timed(
    ctx: &GpuContext,
    reps: usize,
    mut f: impl FnMut() -> std::result::Result<(), DeviceError>,
) -> std::result::Result<(f64, Option<f64>), DeviceError> {
    f()?;
    ctx.sync()?;
    let (mut wall, mut dev) = (vec![], vec![]);
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let (_, d) = ctx.time_gpu(&mut f)?;
        wall.push(start.elapsed().as_secs_f64());
        dev.extend(d);
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((med(wall), (!dev.is_empty()).then(|| med(dev))))
}

fn ms(t: (f64, Option<f64>)) -> String {
    match t.1 {
        Some(d) => format!("{:.1} ({:.1})", t.0 * 1e3, d * 1e3),
        None => format!("{:.1}", t.0 * 1e3),
    }
}

fn sqa_run(
    ctx: &GpuContext,
    x: &[GpuTensor; 4],
    cfg: &SqaConfig,
    backward: bool,
) -> std::result::Result<(), DeviceError> {
    let [q, k, v, dout] = x;
    let cl = sqa::cluster(ctx, q, k, cfg)?;
    let (o, lse) = sqa::sqa_forward(ctx, (q, k, v), &cl, cfg)?;
    if backward {
        sqa::sqa_backward(ctx, (q, k, v), (&o, &lse, dout), &cl, cfg)?;
    }
    Ok(())
}

pub fn attention_gpu(ctx: &GpuContext, quick: bool) -> Result<()> {
    let software = ctx.adapter.device_type == wgpu::DeviceType::Cpu;
    let reps = if quick || software { 1 } else { 3 };
    let (ns, dsr_ns): (Vec<usize>, Vec<usize>) = if software || quick {
        (vec![256, 512], vec![1024, 4096, 16384])
    } else {
        (
            vec![1024, 2048, 4096, 8192, 16384],
            vec![1024, 4096, 16384, 65536],
        )
    };
    let cfg = SqaConfig::default();
    println!(
        "\n## wgpu: SQA vs dense causal attention ({})\n",
        ctx.adapter
    );
    println!("times in ms: wall (device, from GPU timestamps where available)\n");
    println!(
        "|      n | dense fwd | SQA fwd | dense fwd+bwd | SQA fwd+bwd | dense/SQA fwd+bwd (wall) |"
    );
    println!(
        "|--------|-----------|---------|---------------|-------------|--------------------------|"
    );
    let (mut dpts, mut spts) = (vec![], vec![]);
    for &n in &ns {
        let what = || format!("wgpu attention n={n}");
        let len = HEADS * n * HEAD_DIM;
        let up = |seed| ctx.upload(&gauss(seed, len), &[HEADS, n, HEAD_DIM]);
        let x = [
            up(1).with_context(what)?,
            up(2).with_context(what)?,
            up(3).with_context(what)?,
            up(4).with_context(what)?,
        ];
        let [q, k, v, dout] = &x;
        let df = timed(ctx, reps, || {
            dense::attention_forward(ctx, q, k, v).map(|_| ())
        })
        .with_context(what)?;
        let db = timed(ctx, reps, || {
            let (o, lse) = dense::attention_forward(ctx, q, k, v)?;
            dense::attention_backward(ctx, q, k, v, &o, &lse, dout).map(|_| ())
        })
        .with_context(what)?;
        let sf = timed(ctx, reps, || sqa_run(ctx, &x, &cfg, false)).with_context(what)?;
        let sb = timed(ctx, reps, || sqa_run(ctx, &x, &cfg, true)).with_context(what)?;
        println!(
            "| {n:>6} | {} | {} | {} | {} | {:.2} |",
            ms(df),
            ms(sf),
            ms(db),
            ms(sb),
            db.0 / sb.0
        );
        dpts.push((n, db.0));
        spts.push((n, sb.0));
    }
    println!(
        "\nfitted log-log slope (wall, fwd+bwd): dense {}, SQA {}",
        fmt_slope(loglog_slope(&dpts)),
        fmt_slope(loglog_slope(&spts))
    );

    let dcfg = DsrConfig::default();
    println!("\n## wgpu: DSR selection on the device\n");
    println!("|  n_ctx | DSR select (ms) | kept |");
    println!("|--------|-----------------|------|");
    let mut pts = vec![];
    for &n_ctx in &dsr_ns {
        let what = || format!("wgpu dsr n_ctx={n_ctx}");
        let dm = HEADS * HEAD_DIM;
        let n = n_ctx + QUESTION;
        let dims = DsrDims {
            n,
            dm,
            n_ctx,
            q0: n_ctx,
            q1: n,
        };
        let e = ctx
            .upload(&gauss(10, n * dm), &[n, dm])
            .with_context(what)?;
        let wr = random_vec(11, dm * dcfg.reduced_dim, 0.1);
        let wq = random_vec(12, dm * dcfg.reduced_dim, 0.1);
        let w_r = ctx
            .upload(&wr, &[dm, dcfg.reduced_dim])
            .with_context(what)?;
        let w_q = ctx
            .upload(&wq, &[dm, dcfg.reduced_dim])
            .with_context(what)?;
        let mut kept = 0;
        let t = timed(ctx, reps, || {
            let (_, sel) = dsr::gpu::forward(ctx, &e, &w_r, &w_q, &dims, &dcfg)?;
            kept = sel.selection.selected.len();
            Ok(())
        })
        .with_context(what)?;
        println!("| {n_ctx:>6} | {:>15} | {kept:>4} |", ms(t));
        pts.push((n_ctx, t.0));
    }
    println!(
        "\nfitted log-log slope (wall): DSR select {}",
        fmt_slope(loglog_slope(&pts))
    );
    Ok(())
}
