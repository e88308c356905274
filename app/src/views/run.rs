//! The run panel: model (config + checkpoint), training (preset, data, steps; start / pause /
//! stop), evaluation, the input the views look at, and the backend the library runs on.

use std::path::PathBuf;

use anyhow::Result;
use dsrsq::model::Config;
use dsrsq::train::TrainOptions;
use eframe::egui::{self, RichText, Ui};

use crate::app::AppState;
use crate::kernels::Kernels;
use crate::trainer::TrainState;

/// Training presets: (name, config, data, steps).
pub const PRESETS: [(&str, &str, &str, usize); 3] = [
    ("tiny", "tiny", "passkey:ctx=2048", 300),
    ("tiny-mqar", "tiny-mqar", "mqar:ctx=256,pairs=16", 300),
    ("micro", "micro", "passkey:ctx=256", 40),
];

pub struct RunForm {
    pub config: String,
    pub checkpoint: String,
    pub preset: usize,
    pub train_data: String,
    pub steps: usize,
    pub out_dir: String,
    pub eval_examples: usize,
    pub input_spec: String,
    pub input_index: u64,
}

impl Default for RunForm {
    fn default() -> Self {
        Self {
            config: String::new(),
            checkpoint: String::new(),
            preset: 0,
            train_data: PRESETS[0].2.into(),
            steps: PRESETS[0].3,
            out_dir: "runs/app".into(),
            eval_examples: 8,
            input_spec: "passkey:ctx=512".into(),
            input_index: 0,
        }
    }
}

impl RunForm {
    pub fn set_preset(&mut self, i: usize) {
        if let Some(p) = PRESETS.get(i) {
            self.preset = i;
            self.train_data = p.2.into();
            self.steps = p.3;
        }
    }

    pub fn training_config(&self) -> Result<Config> {
        crate::subject::config_from(PRESETS.get(self.preset).map_or("tiny", |p| p.1))
    }

    /// Each training started from the app gets its own folder under the form's output folder
    /// (`OUT/<UTC time>`), so a second run never meets the first one's files.
    pub fn session_options(&self) -> Result<TrainOptions> {
        let out = self.out_dir.trim();
        let mut o = TrainOptions::new(self.training_config()?, self.train_data.trim(), self.steps);
        o.out_dir = (!out.is_empty()).then(|| PathBuf::from(out).join(run_stamp()));
        Ok(o)
    }
}

/// `YYYYMMDD-HHMMSS` UTC, unique per second (two runs started within one second would share
/// a folder, and the second is then refused by the run folder's lock or its existing run).
fn run_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dsrsq::eval::report::utc(secs)
        .replace(['-', ':'], "")
        .replace(' ', "-")
}

pub fn show(app: &mut AppState, ui: &mut Ui, ctx: &egui::Context) {
    ui.add_space(4.0);
    ui.label(RichText::new("Model").strong());
    let l = ui.label("config (preset or TOML; empty = the checkpoint's)");
    ui.text_edit_singleline(&mut app.form.config)
        .labelled_by(l.id);
    let l = ui.label("checkpoint (.safetensors or run folder)");
    ui.text_edit_singleline(&mut app.form.checkpoint)
        .labelled_by(l.id);
    if ui.button("Load").clicked() {
        app.load_from_form();
    }
    if let Some(s) = &app.subject {
        ui.small(format!("viewing: {}", s.origin));
    }
    ui.separator();
    ui.label(RichText::new("Train").strong());
    let mut preset = app.form.preset;
    egui::ComboBox::from_label("preset")
        .selected_text(PRESETS[preset.min(PRESETS.len() - 1)].0)
        .show_ui(ui, |ui| {
            for (i, p) in PRESETS.iter().enumerate() {
                ui.selectable_value(&mut preset, i, p.0);
            }
        });
    if preset != app.form.preset {
        app.form.set_preset(preset);
    }
    ui.horizontal(|ui| {
        let l = ui.label("data");
        ui.text_edit_singleline(&mut app.form.train_data)
            .labelled_by(l.id);
    });
    ui.horizontal(|ui| {
        let l = ui.label("steps");
        ui.add(egui::DragValue::new(&mut app.form.steps).range(1..=1_000_000))
            .labelled_by(l.id);
        let l = ui.label("out");
        ui.text_edit_singleline(&mut app.form.out_dir)
            .labelled_by(l.id);
    });
    let state = app.trainer.as_ref().map(|t| t.state);
    ui.horizontal(|ui| {
        let idle = matches!(state, None | Some(TrainState::Ended));
        if ui
            .add_enabled(idle, egui::Button::new("Start training"))
            .clicked()
        {
            app.start_training(ctx);
        }
        let paused = state == Some(TrainState::Paused);
        let live = matches!(state, Some(TrainState::Running | TrainState::Paused));
        if ui
            .add_enabled(
                live,
                egui::Button::new(if paused { "Resume" } else { "Pause" }),
            )
            .clicked()
        {
            if let Some(t) = &mut app.trainer {
                t.set_paused(!paused);
            }
        }
        if ui.add_enabled(live, egui::Button::new("Stop")).clicked() {
            if let Some(t) = &mut app.trainer {
                t.stop();
            }
        }
    });
    ui.small(format!(
        "state: {}",
        state.map_or("idle".to_string(), |s| format!("{s:?}").to_lowercase())
    ));
    ui.small(&app.status);
    ui.separator();
    ui.label(RichText::new("Evaluate").strong());
    ui.horizontal(|ui| {
        let d = ui.add(egui::DragValue::new(&mut app.form.eval_examples).range(1..=1000));
        let l = ui.label("held-out examples of the input data");
        d.labelled_by(l.id);
        if ui
            .add_enabled(app.evaluator.is_none(), egui::Button::new("Evaluate"))
            .clicked()
        {
            app.start_eval(ctx);
        }
    });
    ui.separator();
    let l = ui.label(RichText::new("Input").strong());
    ui.text_edit_singleline(&mut app.form.input_spec)
        .labelled_by(l.id);
    ui.horizontal(|ui| {
        let l = ui.label("example");
        ui.add(egui::DragValue::new(&mut app.form.input_index))
            .labelled_by(l.id);
        if ui.small_button("<").clicked() {
            app.form.input_index = app.form.input_index.saturating_sub(1);
        }
        if ui.small_button(">").clicked() {
            app.form.input_index += 1;
        }
    });
    if let Some(s) = &app.subject {
        let (layers, heads) = (s.cfg.model.layers, s.cfg.model.heads);
        ui.horizontal(|ui| {
            let l = ui.label("layer");
            ui.add(
                egui::DragValue::new(&mut app.attention.layer).range(0..=layers.saturating_sub(1)),
            )
            .labelled_by(l.id);
            let l = ui.label("head");
            ui.add(
                egui::DragValue::new(&mut app.attention.head).range(0..=heads.saturating_sub(1)),
            )
            .labelled_by(l.id);
        });
    }
    ui.separator();
    ui.label(RichText::new("Kernels").strong());
    let mut cpu = app.kernels.is_cpu();
    ui.radio_value(&mut cpu, true, "CPU backend");
    let shared_label = match &app.shared {
        Some(s) => format!(
            "wgpu, shared with the renderer: {}",
            s.name.chars().take(20).collect::<String>()
        ),
        None => "wgpu: no shared device (renderer's adapter unusable)".into(),
    };
    ui.add_enabled_ui(app.shared.is_some(), |ui| {
        ui.radio_value(&mut cpu, false, shared_label);
    });
    if cpu != app.kernels.is_cpu() {
        app.kernels = match (&app.shared, cpu) {
            (Some(s), false) => Kernels::Wgpu(dsrsq::backend::WgpuBackend::new(s.ctx.clone())),
            _ => Kernels::Cpu(dsrsq::backend::CpuBackend),
        };
    }
    ui.small(format!(
        "views and training run on: {}",
        app.kernels.label()
    ));
}
