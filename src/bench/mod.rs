//! Benchmarks behind `dsrsq bench` and `cargo bench`.
//!
//! Kernels suite: matmul GFLOP/s and dense causal attention time on each backend,
//! printed as a table row by row (each row is its own measurement, so it doubles as progress).

use std::time::Instant;

mod attention;
mod attention_gpu;
pub mod train;

pub use attention::loglog_slope;

use crate::backend::{Backend, CpuBackend, WgpuBackend};
use crate::device::DeviceError;
use crate::kernels::check::random_vec;
use crate::kernels::matmul::MatmulDims;
use crate::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Op {
        what: String,
        #[source]
        source: DeviceError,
    },
    #[error("opening the wgpu backend: {0}")]
    NoDevice(#[source] DeviceError),
}

type Result<T> = std::result::Result<T, BenchError>;

trait Context<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, DeviceError> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| BenchError::Op {
            what: what(),
            source,
        })
    }
}

/// Which backends a benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Wgpu,
    All,
}

/// Wall time and (where the device keeps timestamps) device time of one measurement.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    device: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over `reps` runs after one warm-up; `f` must leave the backend idle.
fn measure<B: Backend>(
    b: &B,
    reps: usize,
    mut f: impl FnMut() -> std::result::Result<(), DeviceError>,
) -> std::result::Result<Timing, DeviceError> {
    f()?;
    let (mut wall, mut device) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let dev = b.device_seconds(&mut f)?;
        wall.push(start.elapsed().as_secs_f64());
        device.extend(dev);
    }
    Ok(Timing {
        wall: median(wall),
        device: (!device.is_empty()).then(|| median(device)),
    })
}

struct Sizes {
    matmul: Vec<usize>,
    attention: Vec<usize>,
    reps: usize,
}

/// GFLOP/s is computed from wall time, the figure a user waits for.
fn row(backend: &str, op: &str, size: &str, t: Timing, flops: f64) {
    let device = t
        .device
        .map_or_else(|| "-".to_string(), |d| format!("{:.3}", d * 1e3));
    println!(
        "| {backend:<8} | {op:<26} | {size:>18} | {:>10.3} | {device:>11} | {:>9.1} |",
        t.wall * 1e3,
        flops / t.wall / 1e9
    );
}

fn run_suite<B: Backend>(b: &B, label: &str, s: &Sizes) -> Result<()> {
    for &n in &s.matmul {
        let d = MatmulDims::new(n, n, n);
        let what = || format!("matmul {n} on {label}");
        let a = b
            .upload(&Tensor::new(random_vec(1, n * n, 1.0), &[n, n]).with_context(what)?)
            .with_context(what)?;
        let w = b
            .upload(&Tensor::new(random_vec(2, n * n, 1.0), &[n, n]).with_context(what)?)
            .with_context(what)?;
        let secs = measure(b, s.reps, || {
            b.matmul(&a, &w, &d)?;
            Ok(())
        })
        .with_context(what)?;
        row(
            label,
            "matmul f32",
            &format!("{n}x{n}x{n}"),
            secs,
            2.0 * (n as f64).powi(3),
        );
    }
    let (heads, hd) = (4usize, 64usize);
    for &n in &s.attention {
        let len = heads * n * hd;
        let up = |seed| -> Result<B::T> {
            let what = || format!("attention inputs n={n} on {label}");
            let t = Tensor::new(random_vec(seed, len, 1.0), &[heads, n, hd]).with_context(what)?;
            b.upload(&t).with_context(what)
        };
        let (q, k, v, dout) = (up(3)?, up(4)?, up(5)?, up(6)?);
        // Causal: half of the n² score matrix, two products (QKᵀ and PV) of 2·d flops each.
        let fwd_flops = heads as f64 * (n as f64).powi(2) / 2.0 * hd as f64 * 4.0;
        let size = format!("{heads}x{n}x{hd}");
        let fwd = measure(b, s.reps, || {
            b.attention_forward(&q, &k, &v)?;
            Ok(())
        })
        .with_context(|| format!("attention forward n={n} on {label}"))?;
        row(label, "causal attention fwd", &size, fwd, fwd_flops);
        let both = measure(b, s.reps, || {
            let (o, lse) = b.attention_forward(&q, &k, &v)?;
            b.attention_backward(&q, &k, &v, &o, &lse, &dout)?;
            Ok(())
        })
        .with_context(|| format!("attention forward+backward n={n} on {label}"))?;
        // The backward recomputes scores and does four more products: 2.5x the forward's flops.
        row(
            label,
            "causal attention fwd+bwd",
            &size,
            both,
            fwd_flops * 3.5,
        );
    }
    Ok(())
}

/// Matmul and dense attention on the chosen backends, printed as a markdown table.
pub fn kernels(choice: BackendChoice, quick: bool) -> Result<()> {
    println!(
        "| backend  | op                         |               size |  wall (ms) | device (ms) |   GFLOP/s |"
    );
    println!(
        "|----------|----------------------------|--------------------|------------|-------------|-----------|"
    );
    let reps = if quick { 1 } else { 3 };
    if choice != BackendChoice::Wgpu {
        let sizes = Sizes {
            matmul: if quick {
                vec![256, 512]
            } else {
                vec![256, 512, 1024, 2048]
            },
            attention: if quick {
                vec![512, 1024]
            } else {
                vec![512, 1024, 2048, 4096, 8192]
            },
            reps,
        };
        run_suite(&CpuBackend, "cpu", &sizes)?;
    }
    if choice != BackendChoice::Cpu {
        match WgpuBackend::from_env() {
            Ok(gpu) => {
                eprintln!("wgpu adapter: {}", gpu.ctx.adapter);
                // Software rasterizers (lavapipe) are ~100x slower than a GPU: small sizes only.
                let software = gpu.ctx.adapter.device_type == wgpu::DeviceType::Cpu;
                let sizes = if software || quick {
                    Sizes {
                        matmul: vec![256, 512],
                        attention: vec![512, 1024],
                        reps: 1,
                    }
                } else {
                    Sizes {
                        matmul: vec![256, 512, 1024, 2048],
                        attention: vec![512, 1024, 2048, 4096, 8192],
                        reps,
                    }
                };
                run_suite(&gpu, "wgpu", &sizes)?;
            }
            Err(e) if choice == BackendChoice::All => {
                eprintln!("wgpu backend skipped: {e}");
            }
            Err(e) => return Err(BenchError::NoDevice(e)),
        }
    }
    Ok(())
}

/// SQA vs dense attention and DSR selection, on the chosen backends (markdown tables).
pub fn attention(choice: BackendChoice, quick: bool) -> Result<()> {
    if choice != BackendChoice::Wgpu {
        attention::attention_cpu(quick)?;
    }
    if choice != BackendChoice::Cpu {
        match crate::device::GpuContext::from_env() {
            Ok(ctx) => attention_gpu::attention_gpu(&ctx, quick)?,
            Err(e) if choice == BackendChoice::All => eprintln!("wgpu backend skipped: {e}"),
            Err(e) => return Err(BenchError::NoDevice(e)),
        }
    }
    Ok(())
}
