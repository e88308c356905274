//! One module per view, plus the run panel and the shared colours.

pub mod attention;
pub mod cache;
pub mod dsr;
pub mod metrics;
pub mod palette;
pub mod run;

/// A plot as every view draws it. No background: the window's clear colour is the
/// background, and each full-plot fill costs a frame's worth of pixels on a software
/// adapter. Grid lines at least 40 points apart, for the same reason: egui_plot's default
/// (8) strokes dozens of faint lines across every plot each frame, which measured ~8 ms a
/// frame for the four metrics plots on lavapipe (2 cores, 960x600).
pub fn plot(id: &str) -> egui_plot::Plot<'_> {
    egui_plot::Plot::new(id)
        .show_background(false)
        .grid_spacing(40.0..=300.0)
}
