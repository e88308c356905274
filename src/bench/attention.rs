//! Attention scaling suite (`dsrsq bench attention`): SQA against dense causal attention at the
//! same shape, DSR selection against context length, and the DSR-then-SQA pipeline against
//! dense attention over the whole context — with fitted log-log slopes. Figures only: nothing
//! here asserts a timing.

use super::{BenchError, Context, Result};
use crate::backend::CpuBackend;
use crate::device::DeviceError;
use crate::kernels::attention::cpu as dense;
use crate::kernels::check::random_vec;
use crate::kernels::dsr::{self, DsrConfig, DsrDims};
use crate::kernels::matmul::{cpu as mm, MatmulDims};
use crate::kernels::sqa::{cpu as sqa, SqaConfig, SqaShape};

pub(super) const HEADS: usize = 4;
pub(super) const HEAD_DIM: usize = 64;
pub(super) const QUESTION: usize = 16;

/// Median wall seconds over `reps` runs after one warm-up.
fn median_secs(
    reps: usize,
    f: impl FnMut() -> std::result::Result<(), DeviceError>,
) -> std::result::Result<f64, DeviceError> {
    Ok(super::measure(&CpuBackend, reps, f)?.wall)
}

/// Least-squares slope of ln(time) against ln(n): the exponent of the cost's growth.
pub fn loglog_slope(points: &[(usize, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| (p.0 as f64).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

pub(super) fn fmt_slope(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// Standard normal samples (Box–Muller over the seeded uniform generator): attention on
/// Gaussian q, k is the usual random baseline for recall.
pub(super) fn gauss(seed: u64, len: usize) -> Vec<f32> {
    let u = random_vec(seed, 2 * len, 1.0);
    u.chunks_exact(2)
        .map(|p| {
            let a = (f64::from(p[0]) + 1.0) / 2.0;
            let b = (f64::from(p[1]) + 1.0) / 2.0;
            let r = (-2.0 * (1.0 - a).ln()).sqrt();
            (r * (2.0 * std::f64::consts::PI * b).cos()) as f32
        })
        .collect()
}

struct Qkv {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    dout: Vec<f32>,
}

fn qkv(n: usize) -> Qkv {
    let len = HEADS * n * HEAD_DIM;
    Qkv {
        q: gauss(1, len),
        k: gauss(2, len),
        v: gauss(3, len),
        dout: gauss(4, len),
    }
}

fn dense_fwd_bwd(x: &Qkv, n: usize) {
    let (o, lse) = dense::attention_forward(&x.q, &x.k, &x.v, HEADS, n, HEAD_DIM);
    dense::attention_backward(&x.q, &x.k, &x.v, &o, &lse, &x.dout, HEADS, n, HEAD_DIM);
}

/// SQA forward (clustering included) and, with `backward`, its backward.
fn sqa_run(x: &Qkv, cfg: &SqaConfig, n: usize, backward: bool) -> Result<Vec<f32>> {
    let s = SqaShape {
        bh: HEADS,
        n,
        d: HEAD_DIM,
    };
    let what = || format!("sqa n={n}");
    let cl = sqa::cluster(&x.q, &x.k, cfg, s).with_context(what)?;
    let (o, lse) = sqa::sqa_forward((&x.q, &x.k, &x.v), &cl, cfg, s).with_context(what)?;
    if backward {
        sqa::sqa_backward((&x.q, &x.k, &x.v), (&o, &lse, &x.dout), &cl, cfg, s)
            .with_context(what)?;
    }
    Ok(lse)
}

fn sqa_vs_dense(ns: &[usize], reps: usize) -> Result<()> {
    let cfg = SqaConfig::default();
    println!(
        "\n## SQA vs dense causal attention (CPU, {HEADS} heads, head dim {HEAD_DIM}, C={}, top-{}, window {}, sink {})\n",
        cfg.clusters, cfg.top_k, cfg.window, cfg.sink
    );
    println!("|      n | dense fwd (ms) | SQA fwd (ms) | dense/SQA fwd | dense fwd+bwd (ms) | SQA fwd+bwd (ms) | dense/SQA fwd+bwd | recall |");
    println!("|--------|----------------|--------------|---------------|--------------------|------------------|-------------------|--------|");
    let (mut df, mut sf, mut db, mut sb) = (vec![], vec![], vec![], vec![]);
    for &n in ns {
        let x = qkv(n);
        let t_df = median_secs(reps, || {
            dense::attention_forward(&x.q, &x.k, &x.v, HEADS, n, HEAD_DIM);
            Ok(())
        })
        .with_context(|| format!("dense n={n}"))?;
        let t_db = median_secs(reps, || {
            dense_fwd_bwd(&x, n);
            Ok(())
        })
        .with_context(|| format!("dense n={n}"))?;
        let mut err = None;
        let mut timed = |backward: bool| {
            median_secs(reps, || {
                if let Err(e) = sqa_run(&x, &cfg, n, backward) {
                    err = Some(e);
                }
                Ok(())
            })
        };
        let t_sf = timed(false).with_context(|| format!("sqa n={n}"))?;
        let t_sb = timed(true).with_context(|| format!("sqa n={n}"))?;
        if let Some(e) = err {
            return Err(e);
        }
        let lse = sqa_run(&x, &cfg, n, false)?;
        let s = SqaShape {
            bh: HEADS,
            n,
            d: HEAD_DIM,
        };
        let recall = sqa::recall((&x.q, &x.k, &x.v), &lse, &cfg, s)
            .with_context(|| format!("recall n={n}"))?;
        let mean_recall = recall.iter().sum::<f32>() / recall.len().max(1) as f32;
        println!(
            "| {n:>6} | {:>14.1} | {:>12.1} | {:>13.2} | {:>18.1} | {:>16.1} | {:>17.2} | {mean_recall:>6.3} |",
            t_df * 1e3,
            t_sf * 1e3,
            t_df / t_sf,
            t_db * 1e3,
            t_sb * 1e3,
            t_db / t_sb
        );
        df.push((n, t_df));
        sf.push((n, t_sf));
        db.push((n, t_db));
        sb.push((n, t_sb));
    }
    println!(
        "\nfitted log-log slope: dense fwd {}, SQA fwd {}, dense fwd+bwd {}, SQA fwd+bwd {}",
        fmt_slope(loglog_slope(&df)),
        fmt_slope(loglog_slope(&sf)),
        fmt_slope(loglog_slope(&db)),
        fmt_slope(loglog_slope(&sb))
    );
    Ok(())
}

/// One long input: `n_ctx` context tokens then the question, embeddings of width heads·d.
struct Input {
    e: Vec<f32>,
    w_r: Vec<f32>,
    w_q: Vec<f32>,
    w_qkv: Vec<f32>,
    dims: DsrDims,
}

fn input(n_ctx: usize, cfg: &DsrConfig) -> Input {
    let dm = HEADS * HEAD_DIM;
    let n = n_ctx + QUESTION;
    Input {
        e: gauss(10, n * dm),
        w_r: random_vec(11, dm * cfg.reduced_dim, 0.1),
        w_q: random_vec(12, dm * cfg.reduced_dim, 0.1),
        w_qkv: random_vec(13, dm * 3 * dm, 0.06),
        dims: DsrDims {
            n,
            dm,
            n_ctx,
            q0: n_ctx,
            q1: n,
        },
    }
}

/// DSR selection, then the QKV projection of the kept tokens only, then SQA (with `backward`,
/// its backward too) over them: the work DSRSQ's attention does for one long input.
fn pipeline(x: &Input, dsr_cfg: &DsrConfig, sqa_cfg: &SqaConfig, backward: bool) -> Result<usize> {
    let what = || format!("dsr n_ctx={}", x.dims.n_ctx);
    let (_, sel) = dsr::cpu::forward(&x.e, &x.w_r, &x.w_q, &x.dims, dsr_cfg).with_context(what)?;
    let kept = &sel.selection.selected;
    let dm = x.dims.dm;
    let mut rows = Vec::with_capacity(kept.len() * dm);
    for &p in kept {
        rows.extend_from_slice(&x.e[p as usize * dm..][..dm]);
    }
    let b = kept.len();
    let proj = MatmulDims::new(b, dm, 3 * dm).broadcast();
    let y = mm::matmul(&rows, &x.w_qkv, &proj);
    // [b, 3, heads, d] → three [heads, b, d] tensors.
    let mut parts = [vec![0.0; b * dm], vec![0.0; b * dm], vec![0.0; b * dm]];
    for t in 0..b {
        for (j, part) in parts.iter_mut().enumerate() {
            for h in 0..HEADS {
                let src = &y[t * 3 * dm + j * dm + h * HEAD_DIM..][..HEAD_DIM];
                part[(h * b + t) * HEAD_DIM..][..HEAD_DIM].copy_from_slice(src);
            }
        }
    }
    let [q, k, v] = parts;
    let dout = q.clone();
    let qkv = Qkv { q, k, v, dout };
    sqa_run(&qkv, sqa_cfg, b, backward)?;
    Ok(b)
}

fn dsr_scaling(ns: &[usize], dense_ns: &[usize], reps: usize) -> Result<()> {
    let dsr_cfg = DsrConfig::default();
    let sqa_cfg = SqaConfig::default();
    println!(
        "\n## DSR selection and DSR→SQA vs dense attention over the whole context (CPU, base budget {}, block {}, α {})\n",
        dsr_cfg.base_budget, dsr_cfg.block, dsr_cfg.alpha
    );
    println!("|  n_ctx | DSR select (ms) | kept | DSR→SQA fwd (ms) | DSR→SQA fwd+bwd (ms) | dense fwd (ms) | dense fwd+bwd (ms) | dense/pipeline fwd | dense/pipeline fwd+bwd |");
    println!("|--------|-----------------|------|------------------|----------------------|----------------|--------------------|--------------------|------------------------|");
    let (mut sel_pts, mut pf_pts, mut pb_pts) = (vec![], vec![], vec![]);
    for &n_ctx in ns {
        let x = input(n_ctx, &dsr_cfg);
        let mut err: Option<BenchError> = None;
        let t_sel = median_secs(reps, || {
            dsr::cpu::forward(&x.e, &x.w_r, &x.w_q, &x.dims, &dsr_cfg).map(|_| ())
        })
        .with_context(|| format!("dsr n_ctx={n_ctx}"))?;
        let mut kept = 0;
        let mut timed = |backward: bool| {
            median_secs(reps, || {
                match pipeline(&x, &dsr_cfg, &sqa_cfg, backward) {
                    Ok(b) => kept = b,
                    Err(e) => err = Some(e),
                }
                Ok(())
            })
        };
        let t_pf = timed(false).with_context(|| format!("pipeline n_ctx={n_ctx}"))?;
        let t_pb = timed(true).with_context(|| format!("pipeline n_ctx={n_ctx}"))?;
        if let Some(e) = err {
            return Err(e);
        }
        let (mut d_f, mut d_b) = ("-".to_string(), "-".to_string());
        let (mut r_f, mut r_b) = ("-".to_string(), "-".to_string());
        if dense_ns.contains(&n_ctx) {
            let d = qkv(n_ctx);
            let t_df = median_secs(reps, || {
                dense::attention_forward(&d.q, &d.k, &d.v, HEADS, n_ctx, HEAD_DIM);
                Ok(())
            })
            .with_context(|| format!("dense n={n_ctx}"))?;
            let t_db = median_secs(reps, || {
                dense_fwd_bwd(&d, n_ctx);
                Ok(())
            })
            .with_context(|| format!("dense n={n_ctx}"))?;
            d_f = format!("{:.1}", t_df * 1e3);
            d_b = format!("{:.1}", t_db * 1e3);
            r_f = format!("{:.1}", t_df / t_pf);
            r_b = format!("{:.1}", t_db / t_pb);
        }
        println!(
            "| {n_ctx:>6} | {:>15.2} | {kept:>4} | {:>16.2} | {:>20.2} | {d_f:>14} | {d_b:>18} | {r_f:>18} | {r_b:>22} |",
            t_sel * 1e3,
            t_pf * 1e3,
            t_pb * 1e3
        );
        sel_pts.push((n_ctx, t_sel));
        if n_ctx >= 2048 {
            pf_pts.push((n_ctx, t_pf));
            pb_pts.push((n_ctx, t_pb));
        }
    }
    println!(
        "\nfitted log-log slope: DSR select {}, DSR→SQA fwd {} and fwd+bwd {} (n_ctx ≥ 2K, fixed budget)",
        fmt_slope(loglog_slope(&sel_pts)),
        fmt_slope(loglog_slope(&pf_pts)),
        fmt_slope(loglog_slope(&pb_pts))
    );
    Ok(())
}

/// Runs the suite on the CPU backend; `quick` keeps sizes small (a smoke run).
pub fn attention_cpu(quick: bool) -> Result<()> {
    let reps = if quick { 1 } else { 3 };
    let (sqa_ns, dsr_ns, dense_ns): (Vec<usize>, Vec<usize>, Vec<usize>) = if quick {
        (vec![1024, 2048], vec![1024, 2048, 4096], vec![4096])
    } else {
        (
            vec![1024, 2048, 4096, 8192, 16384],
            vec![1024, 2048, 4096, 8192, 16384, 32768, 65536],
            vec![16384],
        )
    };
    println!("CPU backend: {} threads", rayon::current_num_threads());
    sqa_vs_dense(&sqa_ns, reps)?;
    dsr_scaling(&dsr_ns, &dense_ns, reps)?;
    Ok(())
}
