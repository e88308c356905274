//! `report.md` and its PNG figures, from the runs under one folder.
//!
//! Layout read: `ROOT/<run>/eval.json` (written by `dsrsq eval`, which names the model) and,
//! beside it, the training log `metrics.jsonl`. Every number printed comes from those files;
//! a figure or table cell with nothing measured behind it says so instead of showing one.

mod lengths;
mod plots;
pub mod runs;
pub mod tables;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::train::record::StepRecord;
use thiserror::Error;

pub use runs::{find_runs, read_eval, ModelRun, MODEL_ORDER};

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {detail}")]
    Json { path: String, detail: String },
    #[error("{file}: missing or non-numeric field `{field}`")]
    Field { file: String, field: String },
    #[error("plot {0}")]
    Plot(String),
    #[error("{0}: no `*/eval.json` below it; run `dsrsq eval --out <run>/eval.json` first")]
    NoRuns(String),
}

/// What `write_report` produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
    /// Figures the seed lists that were not drawn, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Every `every`-th point, so long logs draw quickly.
fn thin(p: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let every = p.len().div_ceil(1500).max(1);
    p.into_iter().step_by(every).collect()
}

fn series(log: &[StepRecord], key: &str) -> Vec<(f64, f64)> {
    thin(
        log.iter()
            .filter_map(|r| Some((r.step as f64, r.get(key)?)))
            .filter(|(_, v)| v.is_finite())
            .collect(),
    )
}

/// `YYYY-MM-DD HH:MM:SS` UTC for Unix time `secs` (proleptic Gregorian).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `root/name`, recorded as a written figure.
fn fig(root: &Path, w: &mut Written, name: &str) -> PathBuf {
    let p = root.join(name);
    w.figures.push(p.clone());
    p
}

fn figures(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    training_figures(root, runs, w)?;
    efficiency_figures(root, runs, w)?;
    task_figures(root, runs, w)?;
    retention_figure(root, runs, w)
}

/// Loss curves, the HOF terms and held-out metrics over training, from the logs.
fn training_figures(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    let mut loss = Vec::new();
    let mut perf = Vec::new();
    for r in runs {
        let train = series(&r.log, "loss");
        if !train.is_empty() {
            loss.push((format!("{} train", r.name), train));
        }
        let val = series(&r.log, "eval_task_loss");
        if !val.is_empty() {
            loss.push((format!("{} val (task)", r.name), val));
        }
        for (key, label) in [
            ("eval_row_accuracy", "row accuracy"),
            ("eval_exact_match", "exact match"),
        ] {
            let s = series(&r.log, key);
            if !s.is_empty() {
                perf.push((format!("{} {label}", r.name), s));
            }
        }
    }
    if loss.is_empty() {
        w.skipped.push((
            "loss_curves.png".into(),
            "no training log beside any eval.json".into(),
        ));
    } else {
        plots::lines(
            &fig(root, w, "loss_curves.png"),
            "Training and validation loss",
            "step",
            "loss",
            &loss,
        )?;
    }
    if let Some(r) = runs.iter().find(|r| r.name == "dsrsq" && !r.log.is_empty()) {
        let terms: Vec<_> = ["task", "retrieval", "compression", "compute"]
            .iter()
            .map(|t| (t.to_string(), series(&r.log, t)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        plots::lines(
            &fig(root, w, "hof_terms.png"),
            "DSRSQ hybrid loss terms (unweighted)",
            "step",
            "loss term",
            &terms,
        )?;
    }
    if perf.is_empty() {
        w.skipped.push((
            "performance_metrics.png".into(),
            "no held-out evaluation in any training log".into(),
        ));
    } else {
        plots::lines(
            &fig(root, w, "performance_metrics.png"),
            "Held-out metrics during training",
            "step",
            "fraction",
            &perf,
        )?;
    }
    Ok(())
}

/// Memory, throughput, token efficiency and latency per model.
fn efficiency_figures(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    let eff: Vec<_> = runs
        .iter()
        .filter_map(|r| r.efficiency.map(|e| (r.name.clone(), e)))
        .collect();
    if eff.is_empty() {
        for f in [
            "memory_usage.png",
            "throughput.png",
            "token_efficiency.png",
            "latency.png",
        ] {
            w.skipped.push((
                f.into(),
                "no run measured efficiency (greedy decoding)".into(),
            ));
        }
    } else {
        let pick = |f: fn(&runs::Efficiency) -> f64| -> Vec<(String, f64)> {
            eff.iter().map(|(n, e)| (n.clone(), f(e))).collect()
        };
        plots::bars(
            &fig(root, w, "memory_usage.png"),
            "Peak memory",
            "MB",
            &pick(|e| e.memory_mb),
        )?;
        plots::bars(
            &fig(root, w, "throughput.png"),
            "Throughput",
            "tokens/s",
            &pick(|e| e.tokens_per_second),
        )?;
        plots::bars(
            &fig(root, w, "token_efficiency.png"),
            "Token efficiency",
            "fraction of context kept",
            &pick(|e| e.token_efficiency),
        )?;
        plots::bars(
            &fig(root, w, "latency.png"),
            "Latency per example (p50)",
            "seconds",
            &pick(|e| e.latency_p50_s),
        )?;
    }
    Ok(())
}

/// The ablation and the baseline comparison on task metrics.
fn task_figures(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    let task: Vec<_> = runs
        .iter()
        .filter_map(|r| r.task.map(|t| (r.name.clone(), t)))
        .collect();
    let abl: Vec<_> = task
        .iter()
        .filter(|(n, _)| matches!(n.as_str(), "dsrsq" | "no_dsr" | "no_sqa" | "no_rckv"))
        .map(|(n, t)| {
            (
                if n == "dsrsq" {
                    "full_model".into()
                } else {
                    n.clone()
                },
                t.f1,
            )
        })
        .collect();
    if abl.len() < 2 {
        w.skipped.push((
            "ablation_results.png".into(),
            "fewer than two of full_model / no_dsr / no_sqa / no_rckv evaluated".into(),
        ));
    } else {
        plots::bars(
            &fig(root, w, "ablation_results.png"),
            "Ablation: F1",
            "F1",
            &abl,
        )?;
    }
    if task.is_empty() {
        w.skipped.push((
            "baseline_comparison.png".into(),
            "no run has task metrics".into(),
        ));
    } else {
        let s: Vec<_> = task
            .iter()
            .map(|(n, t)| (n.clone(), vec![t.f1, t.exact_match, t.rouge_l, t.bleu]))
            .collect();
        plots::grouped_bars(
            &fig(root, w, "baseline_comparison.png"),
            "Task performance",
            &["F1", "Exact Match", "ROUGE-L", "BLEU"],
            &s,
        )?;
    }
    Ok(())
}

/// Information retention by age, from the streaming scenario.
fn retention_figure(root: &Path, runs: &[ModelRun], w: &mut Written) -> Result<(), ReportError> {
    let retention: Vec<_> = runs
        .iter()
        .filter_map(|r| {
            let st = r.stream.as_ref()?;
            let pts = st
                .retention_by_age
                .iter()
                .map(|b| ((b.bucket as f64 + 0.5) * st.capacity as f64, b.accuracy))
                .collect();
            Some((r.name.clone(), pts))
        })
        .collect();
    if retention.is_empty() {
        w.skipped.push((
            "information_retention.png".into(),
            "no run has the streaming scenario (stream.json)".into(),
        ));
    } else {
        plots::lines(
            &fig(root, w, "information_retention.png"),
            "Information retention: probe accuracy by age of the fact",
            "age of the latest key (context tokens, bucket centres)",
            "accuracy",
            &retention,
        )?;
    }
    Ok(())
}

/// Writes `root/report.md` and its figures from the runs under `root`.
pub fn write_report(root: &Path) -> Result<Written, ReportError> {
    let runs = find_runs(root)?;
    if runs.is_empty() {
        return Err(ReportError::NoRuns(root.display().to_string()));
    }
    let mut w = Written {
        report: root.join("report.md"),
        figures: Vec::new(),
        skipped: Vec::new(),
    };
    figures(root, &runs, &mut w)?;
    lengths::figures(root, &runs, &mut w)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Experimental Results: DSRSQ and the models it is compared with\n"
    );
    let _ = writeln!(s, "Written {} UTC by `dsrsq report` from the runs below; every number comes from their JSON files.\n", utc(now));
    let _ = writeln!(s, "## Runs\n");
    let _ = writeln!(s, "| Model | Data | Device | Seed | Commit | Eval wall time (s) | Row accuracy (teacher-forced) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &runs {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            r.name,
            r.data,
            r.device,
            r.seed,
            r.commit.as_deref().unwrap_or("—"),
            tables::cell(Some(r.wall_seconds)),
            tables::cell(Some(r.row_accuracy))
        );
    }
    let _ = writeln!(s, "\n## Main Results\n\n### Task Performance\n");
    s.push_str(&tables::task_performance(&runs));
    let _ = writeln!(s, "\nF1 and exact match: SQuAD v1.1 normalization, max over gold answers. ROUGE-L: LCS F-measure on rouge_score's tokenization, no stemmer. BLEU: sacrebleu corpus BLEU (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`) divided by 100. All from greedy answers; \"—\" where the data is scored teacher-forced only.\n");
    let mut labels: Vec<(&str, &str)> = runs
        .iter()
        .flat_map(|r| r.extra.iter().map(|(l, d, _)| (l.as_str(), d.as_str())))
        .collect();
    labels.sort();
    labels.dedup_by(|a, b| a.0 == b.0);
    for (label, data) in labels {
        let _ = writeln!(s, "### Task Performance: {label}\n\nHeld-out `{data}` (`eval-{label}.json`), evaluated only: the models were not trained on it.\n");
        s.push_str(&tables::extra_task(&runs, label));
        s.push('\n');
    }
    let _ = writeln!(s, "### Efficiency Metrics\n");
    s.push_str(&tables::efficiency(&runs));
    let _ = writeln!(s, "\nMemory: peak bytes of the backend's live buffers while decoding, weights included (wgpu device buffers; CPU heap bytes counted by dsrsq's allocator), or the process's peak RSS where neither is counted. Throughput: (prompt + generated tokens) / seconds of greedy decoding. Latency: seconds per example. Token efficiency: context tokens kept for attention / context tokens offered.\n");
    if runs.iter().any(|r| !r.sweep.is_empty()) {
        let _ = writeln!(s, "### Efficiency vs context length\n");
        s.push_str(&lengths::table(&runs));
        let _ = writeln!(s, "\nEach length is its own held-out set of the task in each run's `sweep.json` (the same examples for every model), answered greedily with the KV cache one example at a time. Working memory: the peak of live bytes during decoding minus what was live when it began (weights, tokenizer, examples), i.e. activations and the KV cache; peak memory includes everything. KV cache: what the cache holds after the prompt (RCKV latents + exact rows, or what razor / pyramid keep per head, all layers; GCA decodes by recomputing the forward, so its figure is the prompt's keys and values). The standard model and its KV-cache baselines read at most `model.max_len` tokens: the end of the context before the question; rag and attention_rag read as many, chosen as whole 64-token chunks from the whole context; GCA reads the whole context.\n");
        for len in [8192, 16384] {
            if let Some(c) = lengths::comparison(&runs, len) {
                let _ = writeln!(s, "{c}\n");
            }
        }
    }
    let _ = writeln!(s, "### Adaptation Metrics\n");
    s.push_str(&tables::adaptation(&runs));
    s.push_str(&adaptation_notes(&runs));
    let _ = writeln!(s, "## Ablation Study Results\n");
    s.push_str(&tables::ablation(&runs));
    let _ = writeln!(s, "\n## Visualizations\n");
    for f in &w.figures {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let _ = writeln!(s, "![{name}]({name})\n");
    }
    if !w.skipped.is_empty() {
        let _ = writeln!(s, "Not drawn:\n");
        for (f, why) in &w.skipped {
            let _ = writeln!(s, "- `{f}`: {why}");
        }
    }
    std::fs::write(&w.report, s).map_err(|e| ReportError::Io {
        path: w.report.display().to_string(),
        source: e,
    })?;
    Ok(w)
}

/// The streaming scenario's definitions and, per model, what the probes were.
fn adaptation_notes(runs: &[ModelRun]) -> String {
    let mut s = String::new();
    let Some(spec) = runs
        .iter()
        .find_map(|r| r.stream.as_ref().map(|st| &st.spec))
    else {
        let _ = writeln!(
            s,
            "\nNo run has the streaming scenario (`stream.json`), so nothing is measured here.\n"
        );
        return s;
    };
    let _ = writeln!(s, "\nStreaming scenario (`stream.json` beside each run): {} streams of {} segments x {} tokens of passkey filler; each segment after the first sets a new 5-digit pass key with probability {} (an update of the previous one); from segment {} on the key line reads \"Note that the pass key is now N.\" (the distribution shift); after every segment the model answers \"What is the pass key?\" over the stream so far (greedy, KV cache, no weight updates), right when its answer normalizes to the latest key. Seed {}.\n", spec.streams, spec.segments, spec.segment_tokens, spec.key_prob, spec.shift_at, spec.seed);
    let _ = writeln!(s, "- Information retention = accuracy over probes whose age (context tokens after the latest key line) exceeds the model's exact window W (W = 0 with RCKV, whose whole context is read through latents; W = 2·gca.chunk for GCA, whose older rows come only through retrieved chunks; W = model.max_len otherwise); by age bucket in the figure (bucket width C = rckv.buffer_size tokens).");
    let _ = writeln!(s, "- Temporal consistency = over probes asked after their key was updated at least once, the fraction answered with the latest value.");
    let _ = writeln!(s, "- Adaptation speed = 1 − k/K: K = rounds after the shift (at most those before it), pre = mean accuracy of the K rounds before it, k = rounds after the shift until accuracy ≥ 0.9·pre (K if never); undefined (—) when pre = 0.\n");
    let _ = writeln!(s, "| Model | Probes | W (tokens) | Probes older than W | Probes after an update | Accuracy over all probes |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in runs {
        if let Some(st) = &r.stream {
            let n = st.probes.len();
            let ok = st.probes.iter().filter(|p| p.correct).count();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.name,
                n,
                st.exact_window,
                st.probes.iter().filter(|p| p.age > st.exact_window).count(),
                st.probes.iter().filter(|p| p.updated).count(),
                tables::cell((n > 0).then(|| ok as f64 / n as f64)),
            );
        }
    }
    s.push('\n');
    s
}
