//! The seed's four tables in markdown, filled from the runs present. A model without a
//! figure gets "—" in that cell, never a number that was not measured.

use std::fmt::Write;

use super::runs::{ModelRun, Task};

/// Cells print with 4 decimals, as the seed's tables do (tests parse them back).
pub fn cell(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "—".into(),
    }
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        header
            .iter()
            .map(|h| "-".repeat(h.len() + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

pub fn task_performance(runs: &[ModelRun]) -> String {
    task_table(runs.iter().map(|r| (r.name.as_str(), r.task)))
}

/// The task table for an extra evaluation `label` (`eval-<label>.json`), over the runs that
/// have it.
pub fn extra_task(runs: &[ModelRun], label: &str) -> String {
    task_table(runs.iter().filter_map(|r| {
        let (_, _, t) = r.extra.iter().find(|e| e.0 == label)?;
        Some((r.name.as_str(), *t))
    }))
}

fn task_table<'a>(rows: impl Iterator<Item = (&'a str, Option<Task>)>) -> String {
    let rows: Vec<Vec<String>> = rows
        .map(|(name, t)| {
            vec![
                name.to_string(),
                cell(t.map(|t| t.f1)),
                cell(t.map(|t| t.exact_match)),
                cell(t.map(|t| t.rouge_l)),
                cell(t.map(|t| t.bleu)),
            ]
        })
        .collect();
    let mut s = String::new();
    table(
        &mut s,
        &["Model", "F1 Score", "Exact Match", "ROUGE-L", "BLEU"],
        &rows,
    );
    s
}

pub fn efficiency(runs: &[ModelRun]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let e = r.efficiency;
            vec![
                r.name.clone(),
                cell(e.map(|e| e.memory_mb)),
                cell(e.map(|e| e.tokens_per_second)),
                cell(e.map(|e| e.latency_p50_s)),
                cell(e.map(|e| e.latency_p95_s)),
                cell(e.map(|e| e.token_efficiency)),
            ]
        })
        .collect();
    let mut s = String::new();
    table(
        &mut s,
        &[
            "Model",
            "Memory Usage (MB)",
            "Throughput (tokens/s)",
            "Latency p50 (s)",
            "Latency p95 (s)",
            "Token Efficiency",
        ],
        &rows,
    );
    s
}

/// The adaptation table: every cell is "—" until the streaming scenario has been run for a
/// model (its figures are not produced by `dsrsq eval` yet).
pub fn adaptation(runs: &[ModelRun]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let st = r.stream.as_ref();
            vec![
                r.name.clone(),
                cell(st.and_then(|s| s.information_retention)),
                cell(st.and_then(|s| s.temporal_consistency)),
                cell(st.and_then(|s| s.adaptation_speed)),
            ]
        })
        .collect();
    let mut s = String::new();
    table(
        &mut s,
        &[
            "Model",
            "Information Retention",
            "Temporal Consistency",
            "Adaptation Speed",
        ],
        &rows,
    );
    s
}

/// Full model and the ablations present (`dsrsq` is the seed's `full_model`).
pub fn ablation(runs: &[ModelRun]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .filter(|r| matches!(r.name.as_str(), "dsrsq" | "no_dsr" | "no_sqa" | "no_rckv"))
        .map(|r| {
            let name = if r.name == "dsrsq" {
                "full_model".to_string()
            } else {
                r.name.clone()
            };
            vec![
                name,
                cell(r.task.map(|t| t.f1)),
                cell(r.efficiency.map(|e| e.memory_mb)),
                cell(r.efficiency.map(|e| e.tokens_per_second)),
            ]
        })
        .collect();
    let mut s = String::new();
    table(
        &mut s,
        &[
            "Configuration",
            "F1 Score",
            "Memory Usage (MB)",
            "Throughput (tokens/s)",
        ],
        &rows,
    );
    s
}
