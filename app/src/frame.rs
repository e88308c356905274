//! One frame of the app: the tab bar, the run panel, the error bar, the chosen view and the
//! frame-time overlay, drawn from the [`AppState`] (which knows nothing of the views' drawing).

use eframe::egui::{self, Color32, Ui};

use crate::app::{AppState, Tab, FRAME_PERIOD};
use crate::frame_stats::quantiles;
use crate::trainer::TrainState;

impl AppState {
    /// One frame of the whole UI. Nothing in it paints the window's background: the window's
    /// clear colour is [`background`].
    pub fn show(&mut self, ui: &mut Ui) {
        let t0 = self.frames.begin(self.animating);
        self.poll();
        self.poll_view();
        let ctx = ui.ctx().clone();
        let style = ctx.global_style();
        // No panel paints its own background: the window's clear colour is the background
        // (see `background`). On a software rasterizer such as lavapipe every full-window layer
        // costs tens of milliseconds per frame on the CPU the training needs.
        let bare = |f: egui::Frame| f.fill(Color32::TRANSPARENT);
        let side = bare(egui::Frame::side_top_panel(&style));
        egui::Panel::top("tabs").frame(side).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("DSRSQ");
                for (t, name) in Tab::ALL {
                    ui.selectable_value(&mut self.tab, t, name);
                }
                ui.separator();
                ui.checkbox(&mut self.frames.show, "frame overlay");
            });
        });
        egui::Panel::left("run")
            .frame(side)
            .resizable(false)
            .exact_size(270.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| crate::views::run::show(self, ui, &ctx));
            });
        if !self.errors.is_empty() {
            egui::Panel::bottom("errors").frame(side).show(ui, |ui| {
                let mut dismiss = None;
                for (i, e) in self.errors.iter().enumerate().rev().take(4) {
                    ui.horizontal(|ui| {
                        if ui.small_button("×").clicked() {
                            dismiss = Some(i);
                        }
                        ui.colored_label(Color32::from_rgb(255, 110, 110), e);
                    });
                }
                if let Some(i) = dismiss {
                    self.errors.remove(i);
                }
            });
        }
        self.refresh_view(&ctx);
        let central = bare(egui::Frame::central_panel(&style));
        egui::CentralPanel::default()
            .frame(central)
            .show(ui, |ui| match self.tab {
                Tab::Attention | Tab::Dsr | Tab::Cache
                    if self.view_job.is_some() && !self.view_has_data() =>
                {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("computing the view on the current model…");
                    });
                }
                Tab::Metrics => match self.metrics.show(ui) {
                    crate::views::metrics::MetricsAction::OpenLog(p) => self.open_log(&p),
                    crate::views::metrics::MetricsAction::OpenEval(p) => self.open_eval(&p),
                    crate::views::metrics::MetricsAction::None => {}
                },
                Tab::Attention => {
                    let inputs = &self.inputs;
                    let token = |id: u32| {
                        inputs
                            .as_ref()
                            .map_or(format!("#{id}"), |s| s.token_text(id))
                    };
                    self.attention.show(ui, &token)
                }
                Tab::Dsr => self.dsr.show(ui),
                Tab::Cache => self.cache.show(ui),
            });
        self.animating = self
            .trainer
            .as_ref()
            .is_some_and(|t| t.state == TrainState::Running)
            || self.evaluator.is_some()
            || self.cache.playing
            || self.frames.uncapped;
        if self.animating {
            // At most ~30 frames a second: live curves need no more, and on a software
            // adapter an uncapped loop takes both cores from the training it is showing.
            // Input still repaints at once.
            if self.frames.uncapped {
                ctx.request_repaint();
            } else {
                ctx.request_repaint_after(FRAME_PERIOD.saturating_sub(t0.elapsed()));
            }
        }
        if self.frames.show {
            self.overlay(&ctx);
        }
        let context = self.trainer.as_ref().map_or("idle".to_string(), |t| {
            format!("{:?} {}", t.state, self.metrics.records().len())
        });
        self.frames.end(t0, &context);
    }

    fn overlay(&self, ctx: &egui::Context) {
        let (p50, p95, max) = quantiles(&self.frames.intervals);
        let (u50, u95, _) = quantiles(&self.frames.ui_times);
        egui::Area::new(egui::Id::unique("frame_overlay"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-8.0, -8.0))
            .interactable(false)
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.small(format!(
                        "frame p50 {p50:.1} ms  p95 {p95:.1} ms  max {max:.1} ms"
                    ));
                    ui.small(format!(
                        "(interval between frames; {:.0} ms at the 30 fps cap)",
                        FRAME_PERIOD.as_secs_f32() * 1e3
                    ));
                    ui.small(format!("ui build p50 {u50:.1} ms  p95 {u95:.1} ms"));
                });
            });
    }
}
