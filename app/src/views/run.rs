//! The run panel: model (config + checkpoint), training (preset, data, steps; start / pause /
//! stop), evaluation, the input the views look at, and the backend the library runs on.

use eframe::egui::{self, RichText, Ui};

use crate::app::AppState;
use crate::kernels::Kernels;
use crate::run_form::PRESETS;
use crate::trainer::TrainState;

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
