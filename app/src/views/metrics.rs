//! Live metrics: the HOF loss terms, throughput, memory and latency of the running (or a
//! finished) training run, and an evaluation's results.

use eframe::egui::{self, Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use serde_json::Value;

/// The record keys the plots draw.
const PLOTTED: [&str; 9] = [
    "loss",
    "task",
    "retrieval",
    "compression",
    "compute",
    "tokens_per_s",
    "device_bytes",
    "peak_rss_bytes",
    "step_seconds",
];

/// Metrics records (`metrics.jsonl` lines) and evaluation results on display.
#[derive(Default)]
pub struct MetricsState {
    records: Vec<Value>,
    /// `(step, value)` of each of [`PLOTTED`], taken from each record as it arrives: reading
    /// them back out of the JSON every frame costs milliseconds once a run has thousands of
    /// steps.
    columns: [Vec<[f64; 2]>; PLOTTED.len()],
    /// Where the records come from ("live run", a file).
    pub source: String,
    pub log_path: String,
    pub eval_path: String,
    pub eval: Option<Value>,
    /// Per-example latencies of a running evaluation.
    pub eval_latencies: Vec<f64>,
    pub eval_progress: Option<(usize, usize)>,
}

impl MetricsState {
    pub fn records(&self) -> &[Value] {
        &self.records
    }

    pub fn push_record(&mut self, r: Value) {
        if let Some(step) = r.get("step").and_then(Value::as_f64) {
            for (col, key) in self.columns.iter_mut().zip(PLOTTED) {
                if let Some(v) = r.get(key).and_then(Value::as_f64) {
                    col.push([step, v]);
                }
            }
        }
        self.records.push(r);
    }

    pub fn set_records(&mut self, records: Vec<Value>) {
        self.clear_records();
        for r in records {
            self.push_record(r);
        }
    }

    pub fn clear_records(&mut self) {
        self.records.clear();
        self.columns.iter_mut().for_each(Vec::clear);
    }

    /// `(step, value · scale)` of `key`, thinned to at most `max_points` (see [`thin`]).
    fn series(&self, key: &str, scale: f64, max_points: usize) -> (Vec<[f64; 2]>, usize) {
        let col = PLOTTED
            .iter()
            .position(|k| *k == key)
            .map_or(&[][..], |i| &self.columns[i][..]);
        thin(
            col.iter().map(|&[x, y]| [x, y * scale]).collect(),
            max_points,
        )
    }
}

/// Means over runs of `k` consecutive points, `k` the smallest power of two that leaves at
/// most `max_points`; returns the points and `k`. A noisy curve drawn a point per pixel is
/// mostly vertical strokes, and on a software adapter each stroke is paid for per pixel.
/// The runs are aligned to the series' start so the drawn points stay put while a run grows.
pub fn thin(pts: Vec<[f64; 2]>, max_points: usize) -> (Vec<[f64; 2]>, usize) {
    let mut k = 1;
    while pts.len().div_ceil(k) > max_points.max(1) {
        k *= 2;
    }
    if k == 1 {
        return (pts, 1);
    }
    let mean = |c: &[[f64; 2]]| {
        let n = c.len() as f64;
        let (x, y) = c.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        [x / n, y / n]
    };
    (pts.chunks(k).map(mean).collect(), k)
}

/// The x-axis label, saying when each point is a mean.
fn x_label(name: &str, k: usize) -> String {
    if k > 1 {
        format!("{name} (each point: mean of {k})")
    } else {
        name.to_string()
    }
}

/// A plot of this view: see [`super::plot`].
fn plot<'a>(id: &'a str, height: f32, width: f32, x_label: &str) -> Plot<'a> {
    super::plot(id)
        .height(height)
        .width(width)
        .legend(Legend::default())
        .x_axis_label(x_label.to_string())
}

/// Points a plot `width` wide gets per line: one per 3 pixels.
fn budget(width: f32) -> usize {
    ((width / 3.0) as usize).max(16)
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
        let gap = ui.spacing().item_spacing.x;
        let (loss_w, mem_w) = (w * 0.6, w * 0.5);
        let terms: Vec<_> = TERMS
            .iter()
            .map(|&(key, name, color)| (self.series(key, 1.0, budget(loss_w)), name, color))
            .collect();
        let k_loss = terms.iter().map(|t| t.0 .1).max().unwrap_or(1);
        let tps = self.series("tokens_per_s", 1.0, budget(w - loss_w - gap));
        ui.horizontal(|ui| {
            plot("losses", h, loss_w, &x_label("step", k_loss)).show(ui, |p| {
                for ((pts, _), name, color) in terms {
                    if !pts.is_empty() {
                        p.line(Line::new(name, PlotPoints::new(pts)).color(color));
                    }
                }
            });
            plot("throughput", h, w - loss_w - gap, &x_label("step", tps.1)).show(ui, |p| {
                p.line(
                    Line::new("tokens/s", PlotPoints::new(tps.0))
                        .color(Color32::from_rgb(250, 210, 80)),
                );
            });
        });
        let mib = 1.0 / (1024.0 * 1024.0);
        let mem: Vec<_> = [
            ("device_bytes", "device MiB"),
            ("peak_rss_bytes", "peak RSS MiB"),
        ]
        .iter()
        .map(|&(key, name)| (self.series(key, mib, budget(mem_w)), name))
        .collect();
        let k_mem = mem.iter().map(|m| m.0 .1).max().unwrap_or(1);
        let step_ms = self.series("step_seconds", 1e3, budget(w - mem_w - gap));
        let ev = thin(
            self.eval_latencies
                .iter()
                .enumerate()
                .map(|(i, s)| [i as f64 + 1.0, s * 1e3])
                .collect(),
            budget(w - mem_w - gap),
        );
        ui.horizontal(|ui| {
            plot("memory", h, mem_w, &x_label("step", k_mem)).show(ui, |p| {
                for ((pts, _), name) in mem {
                    if !pts.is_empty() {
                        p.line(Line::new(name, PlotPoints::new(pts)));
                    }
                }
            });
            let lat_label = x_label("step / example", step_ms.1.max(ev.1));
            plot("latency", h, w - mem_w - gap, &lat_label).show(ui, |p| {
                if !step_ms.0.is_empty() {
                    p.line(Line::new("train step ms", PlotPoints::new(step_ms.0)));
                }
                if !ev.0.is_empty() {
                    p.line(Line::new("eval example ms", PlotPoints::new(ev.0)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<[f64; 2]> {
        (0..n).map(|i| [i as f64, (i * i) as f64]).collect()
    }

    #[test]
    fn thin_keeps_short_series_and_bounds_long_ones() {
        assert_eq!(thin(ramp(10), 10), (ramp(10), 1));
        for (n, max) in [(11, 10), (1000, 128), (3000, 16), (1, 1), (7, 1)] {
            let (pts, k) = thin(ramp(n), max);
            assert!(pts.len() <= max, "{n} points into {max}: got {}", pts.len());
            assert!(k.is_power_of_two());
            // The next smaller run length would not have fitted.
            assert!(k == 1 || n.div_ceil(k / 2) > max);
            // Each point is the mean of its run.
            for (j, p) in pts.iter().enumerate() {
                let run: Vec<usize> = (j * k..((j + 1) * k).min(n)).collect();
                let m = run.len() as f64;
                let x = run.iter().map(|&i| i as f64).sum::<f64>() / m;
                let y = run.iter().map(|&i| (i * i) as f64).sum::<f64>() / m;
                assert_eq!(*p, [x, y], "point {j} of {n} into {max}");
            }
        }
    }

    #[test]
    fn thinned_points_stay_put_as_a_series_grows() {
        let (a, ka) = thin(ramp(1000), 128);
        let (b, kb) = thin(ramp(1017), 128);
        assert_eq!(ka, kb);
        // Only the last, partial run changes.
        assert_eq!(a[..a.len() - 1], b[..a.len() - 1]);
    }

    #[test]
    fn columns_follow_records() {
        let mut m = MetricsState::default();
        m.push_record(serde_json::json!({"step": 1, "loss": 2.0, "tokens_per_s": 10.0}));
        m.push_record(serde_json::json!({"step": 2, "loss": 1.0}));
        m.push_record(serde_json::json!({"loss": 9.0}));
        assert_eq!(m.records().len(), 3);
        assert_eq!(
            m.series("loss", 1.0, 100),
            (vec![[1.0, 2.0], [2.0, 1.0]], 1)
        );
        assert_eq!(m.series("tokens_per_s", 2.0, 100).0, vec![[1.0, 20.0]]);
        assert!(m.series("task", 1.0, 100).0.is_empty());
        m.set_records(vec![serde_json::json!({"step": 5, "loss": 4.0})]);
        assert_eq!(m.series("loss", 1.0, 100).0, vec![[5.0, 4.0]]);
        assert!(m.series("tokens_per_s", 1.0, 100).0.is_empty());
        m.clear_records();
        assert!(m.records().is_empty() && m.series("loss", 1.0, 100).0.is_empty());
    }
}
