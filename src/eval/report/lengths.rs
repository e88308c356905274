//! The report's context-length section: each model's sweep as a table, the DSRSQ-vs-standard
//! comparison at one length, and throughput / memory against length as figures.

use std::fmt::Write;
use std::path::Path;

use super::runs::ModelRun;
use super::tables::cell;
use super::{plots, ReportError, Written};
use crate::eval::sweep::SweepPoint;

fn mb(b: Option<u64>) -> Option<f64> {
    b.map(|b| b as f64 / 1e6)
}

/// One row per (model, length).
pub fn table(runs: &[ModelRun]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| Model | Context | Examples | F1 | Exact Match | Throughput (tokens/s) | Latency p50 (s) | Working memory (MB) | Peak memory (MB) | KV cache (MB) | Token efficiency |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        for p in &r.sweep {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                p.context_length,
                p.examples,
                cell(Some(p.f1)),
                cell(Some(p.exact_match)),
                cell(Some(p.tokens_per_second)),
                cell(Some(p.latency_p50_s)),
                cell(mb(p.working_peak_bytes)),
                cell(mb(p.peak_bytes)),
                cell(Some(p.kv_cache_bytes as f64 / 1e6)),
                cell(Some(p.token_efficiency)),
            );
        }
    }
    s
}

fn point<'a>(runs: &'a [ModelRun], name: &str, len: usize) -> Option<&'a SweepPoint> {
    runs.iter()
        .find(|r| r.name == name)?
        .sweep
        .iter()
        .find(|p| p.context_length == len)
}

/// DSRSQ against the standard model at context `len`, as ratios of the measured figures;
/// `None` when either was not measured there.
pub fn comparison(runs: &[ModelRun], len: usize) -> Option<String> {
    let d = point(runs, "dsrsq", len)?;
    let s = point(runs, "standard", len)?;
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}%", 100.0 * a / b),
        _ => "— (not counted)".into(),
    };
    Some(format!(
        "At context {len}: DSRSQ's throughput is {:.2}x the standard model's ({:.0} vs {:.0} tokens/s); \
         its working memory is {} of the standard model's ({} vs {} MB) and its peak memory {}; \
         its KV cache {}; F1 {:.4} vs {:.4} (difference {:+.4}).",
        d.tokens_per_second / s.tokens_per_second,
        d.tokens_per_second,
        s.tokens_per_second,
        ratio(mb(d.working_peak_bytes), mb(s.working_peak_bytes)),
        cell(mb(d.working_peak_bytes)),
        cell(mb(s.working_peak_bytes)),
        ratio(mb(d.peak_bytes), mb(s.peak_bytes)),
        ratio(Some(d.kv_cache_bytes as f64), Some(s.kv_cache_bytes as f64)),
        d.f1,
        s.f1,
        d.f1 - s.f1,
    ))
}

/// Throughput and working memory against context length, one line per model.
pub fn figures(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    let with: Vec<&ModelRun> = runs.iter().filter(|r| !r.sweep.is_empty()).collect();
    let names = ["throughput_vs_length.png", "memory_vs_length.png"];
    if with.is_empty() {
        for n in names {
            w.skipped
                .push((n.into(), "no run has a length sweep (sweep.json)".into()));
        }
        return Ok(());
    }
    let line = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<(String, Vec<(f64, f64)>)> {
        with.iter()
            .map(|r| {
                let pts = r
                    .sweep
                    .iter()
                    .filter_map(|p| Some((p.context_length as f64, f(p)?)))
                    .collect();
                (r.name.clone(), pts)
            })
            .collect()
    };
    let p = root.join(names[0]);
    plots::lines_log(
        &p,
        "Throughput vs context length (greedy decoding, KV cache)",
        "context tokens",
        "tokens/s",
        &line(&|p| Some(p.tokens_per_second)),
    )?;
    w.figures.push(p);
    let mem = line(&|p| mb(p.working_peak_bytes));
    if mem.iter().all(|(_, pts)| pts.is_empty()) {
        w.skipped.push((
            names[1].into(),
            "the backend counted no live bytes (run through the dsrsq binary or wgpu)".into(),
        ));
    } else {
        let p = root.join(names[1]);
        plots::lines_log(
            &p,
            "Working memory vs context length (activations + KV cache)",
            "context tokens",
            "MB",
            &mem,
        )?;
        w.figures.push(p);
    }
    Ok(())
}
