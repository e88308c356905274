//! SQA vs dense causal attention on the CPU: forward + backward wall time (SQA including its
//! clustering) and SQA's attention recall, for random Gaussian q, k, v.
//!
//! `cargo run --release --example sqa_bench [n ...]` (default n = 1K, 2K, 4K, 8K, 16K);
//! bh = 4, d = 64, C = 32, top-8, window 64, sink 16.

use std::time::Instant;

use dsrsq::kernels::attention::cpu as dense;
use dsrsq::kernels::check::random_vec;
use dsrsq::kernels::sqa::{cpu, SqaConfig, SqaShape};

fn gauss(seed: u64, len: usize) -> Vec<f32> {
    let u = random_vec(seed, 2 * len, 1.0);
    let pairs = u.chunks_exact(2).map(|p| {
        let (a, b) = ((f64::from(p[0]) + 1.0) / 2.0, (f64::from(p[1]) + 1.0) / 2.0);
        let r = (-2.0 * (1.0 - a).ln()).sqrt();
        (r * (2.0 * std::f64::consts::PI * b).cos()) as f32
    });
    pairs.collect()
}

/// Median seconds of `reps` runs (after one warm-up when `reps > 1`).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    if reps > 1 {
        f();
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let ns = if args.is_empty() {
        vec![1024, 2048, 4096, 8192, 16384]
    } else {
        args
    };
    let (bh, d) = (4, 64);
    let cfg = SqaConfig::default();
    println!(
        "bh {bh}, d {d}, {cfg:?}, {} rayon threads",
        rayon::current_num_threads()
    );
    println!("| n | SQA fwd+bwd (s) | clustering / fwd / bwd alone | dense fwd+bwd (s) | dense / SQA | recall |");
    println!("|---|---|---|---|---|---|");
    for n in ns {
        let s = SqaShape { bh, n, d };
        let len = bh * n * d;
        let (q, k, v, dout) = (gauss(1, len), gauss(2, len), gauss(3, len), gauss(4, len));
        let x = (&q[..], &k[..], &v[..]);
        let reps = if n >= 16384 { 1 } else { 3 };
        let mut lse_keep = Vec::new();
        let t_cluster = time(reps, || {
            std::hint::black_box(cpu::cluster(&q, &k, &cfg, s).expect("cluster"));
        });
        let cl = cpu::cluster(&q, &k, &cfg, s)?;
        let t_fwd = time(reps, || {
            std::hint::black_box(cpu::sqa_forward(x, &cl, &cfg, s).expect("forward"));
        });
        let (o, lse) = cpu::sqa_forward(x, &cl, &cfg, s)?;
        let t_bwd = time(reps, || {
            let g = cpu::sqa_backward(x, (&o, &lse, &dout), &cl, &cfg, s).expect("backward");
            std::hint::black_box(g);
        });
        let t_sqa = time(reps, || {
            let cl = cpu::cluster(&q, &k, &cfg, s).expect("cluster");
            let (o, lse) = cpu::sqa_forward(x, &cl, &cfg, s).expect("forward");
            let g = cpu::sqa_backward(x, (&o, &lse, &dout), &cl, &cfg, s).expect("backward");
            std::hint::black_box(g);
            lse_keep = lse;
        });
        let skip_dense = std::env::var("SQA_BENCH_NO_DENSE").is_ok();
        let t_dense = if skip_dense {
            f64::NAN
        } else {
            time(reps, || {
                let (o, lse) = dense::attention_forward(&q, &k, &v, bh, n, d);
                let g = dense::attention_backward(&q, &k, &v, &o, &lse, &dout, bh, n, d);
                std::hint::black_box(g);
            })
        };
        let recall = cpu::recall(x, &lse_keep, &cfg, s)?;
        let mean = recall.iter().sum::<f32>() / recall.len() as f32;
        println!(
            "| {n} | {t_sqa:.3} | {t_cluster:.3} / {t_fwd:.3} / {t_bwd:.3} | {t_dense:.3} | {:.2}x | {mean:.3} |",
            t_dense / t_sqa
        );
    }
    Ok(())
}
