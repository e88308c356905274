//! Live metrics: the HOF loss terms, throughput, memory and latency of the running (or a
//! finished) training run, and an evaluation's results.

use eframe::egui::{self, Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use serde_json::Value;

/// Metrics records (`metrics.jsonl` lines) and evaluation results on display.
#[derive(Default)]
pub struct MetricsState {
    pub records: Vec<Value>,
    /// Where the records come from ("live run", a file).
    pub source: String,
    pub log_path: String,
    pub eval_path: String,
    pub eval: Option<Value>,
    /// Per-example latencies of a running evaluation.
    pub eval_latencies: Vec<f64>,
    pub eval_progress: Option<(usize, usize)>,
}

/// `(step, value)` of `key` over the records that have it.
fn series(records: &[Value], key: &str, scale: f64) -> Vec<[f64; 2]> {
    records
        .iter()
        .filter_map(|r| Some([r.get("step")?.as_f64()?, r.get(key)?.as_f64()? * scale]))
        .collect()
}

const TERMS: [(&str, &str, Color32); 5] = [
    ("loss", "total", Color32::WHITE),
    ("task", "task (λ1)", Color32::from_rgb(90, 170, 255)),
    (
        "retrieval",
        "retrieval (λ2)",
        Color32::from_rgb(255, 170, 60),
    ),
    (
        "compression",
        "compression (λ3)",
        Color32::from_rgb(120, 220, 120),
    ),
    ("compute", "compute (λ4)", Color32::from_rgb(230, 100, 200)),
];

impl MetricsState {
    pub fn show(&mut self, ui: &mut Ui) -> MetricsAction {
        let mut action = MetricsAction::None;
        ui.horizontal_wrapped(|ui| {
            let l = ui.label("metrics log");
            ui.add(
                egui::TextEdit::singleline(&mut self.log_path)
                    .desired_width(220.0)
                    .hint_text("run folder or metrics.jsonl"),
            )
            .labelled_by(l.id);
            if ui.button("Open log").clicked() {
                action = MetricsAction::OpenLog(self.log_path.clone());
            }
            ui.separator();
            let l2 = ui.label("eval JSON");
            ui.add(
                egui::TextEdit::singleline(&mut self.eval_path)
                    .desired_width(180.0)
                    .hint_text("eval.json"),
            )
            .labelled_by(l2.id);
            if ui.button("Open results").clicked() {
                action = MetricsAction::OpenEval(self.eval_path.clone());
            }
        });
        let last = self.records.last();
        let num = |k: &str| last.and_then(|r| r.get(k)).and_then(Value::as_f64);
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(format!("{}: {} steps", self.source, self.records.len())).strong(),
            );
            if let Some(v) = num("loss") {
                ui.label(format!("loss {v:.4}"));
            }
            if let Some(v) = num("tokens_per_s") {
                ui.label(format!("{v:.0} tokens/s"));
            }
            if let Some(v) = num("step_seconds") {
                ui.label(format!("step {:.0} ms", v * 1e3));
            }
            if let Some(v) = num("device_bytes").or(num("peak_rss_bytes")) {
                ui.label(format!("memory {:.1} MiB", v / (1024.0 * 1024.0)));
            }
            if let Some(v) = num("eval_exact_match") {
                ui.label(format!("held-out EM {v:.3}"));
            }
        });
        let h = ((ui.available_height() - 30.0) / 2.0).max(60.0);
        let w = ui.available_width();
        ui.horizontal(|ui| {
            Plot::new("losses")
                .show_background(false)
                .height(h)
                .width(w * 0.6)
                .legend(Legend::default())
                .x_axis_label("step")
                .show(ui, |p| {
                    for (key, name, color) in TERMS {
                        let pts = series(&self.records, key, 1.0);
                        if !pts.is_empty() {
                            p.line(Line::new(name, PlotPoints::new(pts)).color(color));
                        }
                    }
                });
            Plot::new("throughput")
                .show_background(false)
                .height(h)
                .legend(Legend::default())
                .x_axis_label("step")
                .show(ui, |p| {
                    let pts = series(&self.records, "tokens_per_s", 1.0);
                    p.line(
                        Line::new("tokens/s", PlotPoints::new(pts))
                            .color(Color32::from_rgb(250, 210, 80)),
                    );
                });
        });
        ui.horizontal(|ui| {
            let mib = 1.0 / (1024.0 * 1024.0);
            Plot::new("memory")
                .show_background(false)
                .height(h)
                .width(w * 0.5)
                .legend(Legend::default())
                .x_axis_label("step")
                .show(ui, |p| {
                    for (key, name) in [
                        ("device_bytes", "device MiB"),
                        ("peak_rss_bytes", "peak RSS MiB"),
                    ] {
                        let pts = series(&self.records, key, mib);
                        if !pts.is_empty() {
                            p.line(Line::new(name, PlotPoints::new(pts)));
                        }
                    }
                });
            Plot::new("latency")
                .show_background(false)
                .height(h)
                .legend(Legend::default())
                .x_axis_label("step / example")
                .show(ui, |p| {
                    let pts = series(&self.records, "step_seconds", 1e3);
                    if !pts.is_empty() {
                        p.line(Line::new("train step ms", PlotPoints::new(pts)));
                    }
                    let ev: Vec<[f64; 2]> = self
                        .eval_latencies
                        .iter()
                        .enumerate()
                        .map(|(i, s)| [i as f64 + 1.0, s * 1e3])
                        .collect();
                    if !ev.is_empty() {
                        p.line(Line::new("eval example ms", PlotPoints::new(ev)));
                    }
                });
        });
        if let Some((done, total)) = self.eval_progress {
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!("evaluating {done}/{total}")),
            );
        }
        if let Some(ev) = &self.eval {
            egui::CollapsingHeader::new("evaluation results")
                .default_open(true)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .max_height(160.0)
                        .show(ui, |ui| {
                            let m = ev.get("metrics").unwrap_or(ev);
                            egui::Grid::new("eval_grid").striped(true).show(ui, |ui| {
                                for (k, v) in flatten(m, "") {
                                    ui.label(k);
                                    ui.label(v);
                                    ui.end_row();
                                }
                            });
                        });
                });
        }
        action
    }
}

pub enum MetricsAction {
    None,
    OpenLog(String),
    OpenEval(String),
}

/// Numbers and strings of a JSON object as `a.b.c = value` rows (predictions left out).
fn flatten(v: &Value, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(m) = v {
        for (k, x) in m {
            if k == "predictions" || k == "config" {
                continue;
            }
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Object(_) => out.extend(flatten(x, &key)),
                Value::Number(n) => {
                    out.push((key, n.as_f64().map_or(n.to_string(), |f| format!("{f:.4}"))))
                }
                Value::String(s) => out.push((key, s.clone())),
                Value::Bool(b) => out.push((key, b.to_string())),
                _ => {}
            }
        }
    }
    out
}
