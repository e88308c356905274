//! `dsrsq report`: tables filled from each run's eval.json (the printed numbers equal the
//! JSON's), figures that decode as non-empty PNGs, and clear errors for bad or missing input.

use std::path::{Path, PathBuf};

use dsrsq::eval::report::{utc, write_report, ReportError};
use dsrsq::train::record::StepRecord;
use serde_json::json;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsrsq-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// A run folder as `dsrsq train` + `dsrsq eval` leave it (figures are the test's inputs).
fn write_run(root: &Path, name: &str, f1: f64, rss: u64, tps: f64) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let eval = json!({
        "model": name, "data": "passkey:ctx=80", "device": "cpu (2 threads)", "seed": 7,
        "commit": "abc1234", "wall_seconds": 1.5,
        "metrics": {
            "examples": 4,
            "teacher_forced": {"exact_match": 0.25, "row_accuracy": 0.5, "task_loss": 2.0, "support_recall": null},
            "task": {"exact_match": f1 / 2.0, "f1": f1, "rouge_l_f": f1 * 0.9, "bleu": 31.25, "count": 4},
            "efficiency": {"tokens_per_second": tps, "latency_p50_s": 0.125, "latency_p95_s": 0.25,
                "token_efficiency": 0.375, "peak_bytes": null, "peak_rss_bytes": rss,
                "generated_tokens": 8, "prompt_tokens": 320},
            "predictions": []
        }
    });
    std::fs::write(dir.join("eval.json"), eval.to_string()).expect("eval.json");
    let log: String = (1..=30)
        .map(|s| {
            let mut r = StepRecord {
                step: s,
                loss: 10.0 - s as f64 * 0.1,
                task: 9.0,
                retrieval: 0.69,
                compression: 0.1,
                compute: 0.5,
                ramp: 1.0,
                lr: 1e-3,
                grad_norm: 1.0,
                clipped: false,
                tokens: 512,
                tokens_per_s: 1000.0,
                kept_fraction: 0.5,
                seconds: s as f64,
                step_seconds: 0.5,
                device_bytes: None,
                device_peak_bytes: None,
                peak_rss_bytes: Some(1 << 20),
                eval_exact_match: None,
                eval_row_accuracy: None,
                eval_task_loss: None,
                eval_examples: None,
                eval_kept_fraction: None,
                eval_support_recall: None,
            };
            if s % 10 == 0 {
                r.eval_task_loss = Some(9.5);
                r.eval_row_accuracy = Some(s as f64 / 100.0);
                r.eval_exact_match = Some(0.0);
            }
            serde_json::to_string(&r).expect("record") + "\n"
        })
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), log).expect("metrics");
}

/// The cells of the markdown table under `heading`, by row name.
fn table(md: &str, heading: &str) -> Vec<Vec<String>> {
    let start = md.find(heading).expect("heading");
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

fn png_ok(p: &Path) {
    let bytes = std::fs::read(p).expect("png");
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut r = dec.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).expect("png frame");
    assert!(info.width > 100 && info.height > 100, "{}", p.display());
    // Not blank: more than one colour drawn.
    let first = &buf[..3];
    assert!(
        buf.chunks(3).any(|px| px != first),
        "{} is one flat colour",
        p.display()
    );
}

#[test]
fn tables_hold_the_json_numbers_and_figures_decode() {
    let root = tmp("ok");
    write_run(&root, "standard", 0.5, 200_000_000, 900.0);
    write_run(&root, "dsrsq", 0.625, 100_000_000, 1800.0);
    write_run(&root, "no_sqa", 0.5625, 150_000_000, 1200.0);
    let w = write_report(&root).expect("report");
    let md = std::fs::read_to_string(&w.report).expect("report.md");

    let task = table(&md, "### Task Performance");
    let names: Vec<&str> = task.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["dsrsq", "standard", "no_sqa"],
        "the seed's row order"
    );
    assert_eq!(task[0][1..], ["0.6250", "0.3125", "0.5625", "0.3125"]);
    let eff = table(&md, "### Efficiency Metrics");
    assert_eq!(
        eff[1][1..],
        ["200.0000", "900.0000", "0.1250", "0.2500", "0.3750"]
    );
    let abl = table(&md, "## Ablation Study Results");
    assert_eq!(abl.len(), 2);
    assert_eq!(abl[0][..2], ["full_model", "0.6250"]);
    assert_eq!(abl[1][..2], ["no_sqa", "0.5625"]);
    let adapt = table(&md, "### Adaptation Metrics");
    assert!(
        adapt.iter().all(|r| r[1..].iter().all(|c| c == "—")),
        "not measured, not invented"
    );

    for name in [
        "loss_curves.png",
        "hof_terms.png",
        "performance_metrics.png",
        "memory_usage.png",
        "throughput.png",
        "token_efficiency.png",
        "latency.png",
        "ablation_results.png",
        "baseline_comparison.png",
    ] {
        let p = root.join(name);
        assert!(
            w.figures.contains(&p),
            "{name} missing from {:?}",
            w.figures
        );
        png_ok(&p);
        assert!(md.contains(&format!("]({name})")), "{name} not linked");
    }
    assert!(w
        .skipped
        .iter()
        .any(|(f, _)| f == "information_retention.png"));
}

#[test]
fn bad_or_missing_runs_are_named() {
    let empty = tmp("empty");
    assert!(matches!(write_report(&empty), Err(ReportError::NoRuns(_))));

    let root = tmp("bad");
    write_run(&root, "dsrsq", 0.5, 1, 1.0);
    let p = root.join("dsrsq").join("eval.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    v["metrics"]["task"]["f1"] = json!("high");
    std::fs::write(&p, v.to_string()).expect("write");
    let err = write_report(&root).expect_err("non-numeric f1").to_string();
    assert!(
        err.contains("eval.json") && err.contains("metrics.task.f1"),
        "{err}"
    );

    std::fs::write(&p, "{ not json").expect("write");
    let err = write_report(&root).expect_err("broken json").to_string();
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn utc_dates() {
    assert_eq!(utc(0), "1970-01-01 00:00:00");
    assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
    assert_eq!(utc(1_798_416_000 + 3_723), "2026-12-28 01:02:03");
}

#[test]
fn reproduce_micro_trains_evaluates_and_reports_end_to_end() {
    use dsrsq::backend::CpuBackend;
    use dsrsq::eval::reproduce::{preset, reproduce};
    let root = tmp("micro");
    let p = preset("micro").expect("micro preset");
    let w = reproduce(&CpuBackend, &p, &root, None, false).expect("reproduce");
    let md = std::fs::read_to_string(&w.report).expect("report.md");
    let task = table(&md, "### Task Performance");
    let eff = table(&md, "### Efficiency Metrics");
    // Every compared model has its row, in the seed's order.
    let names: Vec<&str> = task.iter().map(|r| r[0].as_str()).collect();
    let all: Vec<&str> = dsrsq::model::variants::VARIANTS
        .iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, all);
    assert_eq!(eff.len(), all.len());
    for (row, erow) in task.iter().zip(&eff) {
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(&row[0]).join("eval.json")).expect("eval.json"),
        )
        .expect("json");
        let m = &j["metrics"];
        let f = |v: &serde_json::Value| format!("{:.4}", v.as_f64().expect("number"));
        assert_eq!(row[1], f(&m["task"]["f1"]), "{}", row[0]);
        assert_eq!(row[2], f(&m["task"]["exact_match"]), "{}", row[0]);
        assert_eq!(
            row[4],
            format!("{:.4}", m["task"]["bleu"].as_f64().expect("bleu") / 100.0)
        );
        assert_eq!(erow[2], f(&m["efficiency"]["tokens_per_second"]));
        assert_eq!(erow[5], f(&m["efficiency"]["token_efficiency"]));
        assert_eq!(m["examples"], p.eval_examples);
    }
    // The extra real-text evaluation (SQuAD long-context QA) has its own table.
    let extra = table(&md, "### Task Performance: longqa");
    assert_eq!(extra.len(), all.len());
    for row in &extra {
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(&row[0]).join("eval-longqa.json"))
                .expect("eval-longqa.json"),
        )
        .expect("json");
        assert!(j["data"].as_str().expect("data").starts_with("longqa:"));
        let f = |v: &serde_json::Value| format!("{:.4}", v.as_f64().expect("number"));
        assert_eq!(row[1], f(&j["metrics"]["task"]["f1"]), "{}", row[0]);
        assert_eq!(
            row[2],
            f(&j["metrics"]["task"]["exact_match"]),
            "{}",
            row[0]
        );
    }
    // The length sweep: one table row per (model, length), each equal to sweep.json.
    let sweep = table(&md, "### Efficiency vs context length");
    assert_eq!(sweep.len(), all.len() * p.sweep_lengths.len());
    for row in &sweep {
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(&row[0]).join("sweep.json")).expect("sweep.json"),
        )
        .expect("json");
        let pt = j["points"]
            .as_array()
            .expect("points")
            .iter()
            .find(|q| {
                q["context_length"]
                    .as_u64()
                    .map(|v| v.to_string())
                    .as_deref()
                    == Some(row[1].as_str())
            })
            .expect("the row's length is in sweep.json");
        let f = |v: &serde_json::Value| format!("{:.4}", v.as_f64().expect("number"));
        assert_eq!(row[2], pt["examples"].to_string());
        assert_eq!(row[3], f(&pt["f1"]));
        assert_eq!(row[5], f(&pt["tokens_per_second"]));
        assert_eq!(row[10], f(&pt["token_efficiency"]));
    }
    // The adaptation table holds stream.json's three metrics ("—" where undefined).
    let adapt = table(&md, "### Adaptation Metrics");
    assert_eq!(adapt.len(), all.len());
    let ablation = table(&md, "## Ablation Study Results");
    let abl: Vec<&str> = ablation.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(abl, ["full_model", "no_dsr", "no_sqa", "no_rckv"]);
    assert!(w
        .figures
        .iter()
        .any(|f| f.ends_with("ablation_results.png")));
    for row in &adapt {
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(&row[0]).join("stream.json")).expect("stream.json"),
        )
        .expect("json");
        let st = &j["stream"];
        assert!(!st["probes"].as_array().expect("probes").is_empty());
        for (col, key) in [
            (1, "information_retention"),
            (2, "temporal_consistency"),
            (3, "adaptation_speed"),
        ] {
            let want = st[key]
                .as_f64()
                .map_or("—".to_string(), |v| format!("{v:.4}"));
            assert_eq!(row[col], want, "{} {key}", row[0]);
        }
    }
    let drawn = |n: &str| w.figures.iter().any(|f| f.ends_with(n));
    assert!(drawn("information_retention.png"));
    assert!(drawn("throughput_vs_length.png"));
    // The test binary does not count heap bytes (the dsrsq binary does), so the memory
    // figure must say why it is missing rather than draw nothing.
    assert!(
        drawn("memory_vs_length.png") || w.skipped.iter().any(|(f, _)| f == "memory_vs_length.png")
    );
    assert!(w.figures.len() >= 9, "{:?}", w.figures);
    for f in &w.figures {
        png_ok(f);
    }
    assert!(matches!(
        preset("huge"),
        Err(dsrsq::eval::reproduce::ReproduceError::Preset(_))
    ));
}
