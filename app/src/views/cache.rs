//! Cache rotation: each layer's RCKV ring drawn as a ring of slots while the context streams
//! in (step / play / speed): colour = age or reconstruction error, sinks outlined, the write
//! head marked; the chosen layer's per-slot error beside it.

use std::f32::consts::TAU;

use dsrsq::inspect::cache::{CacheStream, RingView};
use eframe::egui::{self, Color32, Mesh, Pos2, Sense, Shape, Stroke, Ui, Vec2};
use egui_plot::{Bar, BarChart, Legend};

use super::palette;

pub struct CacheState {
    pub stream: Option<CacheStream>,
    pub rings: Vec<RingView>,
    pub playing: bool,
    /// Tokens per second while playing.
    pub speed: f32,
    pub color_by_error: bool,
    pub layer: usize,
    /// Fractional tokens owed by the play clock.
    owed: f32,
    pub error: Option<String>,
}

impl Default for CacheState {
    fn default() -> Self {
        Self {
            stream: None,
            rings: Vec::new(),
            playing: false,
            speed: 32.0,
            color_by_error: false,
            layer: 0,
            owed: 0.0,
            error: None,
        }
    }
}

impl CacheState {
    pub fn set(&mut self, stream: CacheStream) {
        self.stream = Some(stream);
        self.playing = false;
        self.refresh();
    }

    fn refresh(&mut self) {
        let Some(s) = &self.stream else { return };
        match (0..s.layers())
            .map(|l| s.ring(l))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(r) => self.rings = r,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Feeds `n` tokens (the step buttons and the play clock).
    pub fn feed(&mut self, n: usize) {
        if let Some(s) = &mut self.stream {
            match s.feed(n) {
                Ok(0) => self.playing = false,
                Ok(_) => {}
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        self.refresh();
    }

    pub fn show(&mut self, ui: &mut Ui) {
        if self.stream.is_none() {
            ui.label("No cache data yet: load a checkpoint or train, then pick an input.");
            return;
        }
        let (fed, total) = self.stream.as_ref().map_or((0, 0), |s| (s.fed(), s.len()));
        ui.horizontal_wrapped(|ui| {
            if ui.button("Step").clicked() {
                self.feed(1);
            }
            if ui.button("Step ×16").clicked() {
                self.feed(16);
            }
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
            }
            ui.add(
                egui::Slider::new(&mut self.speed, 1.0..=512.0)
                    .logarithmic(true)
                    .text("tokens/s"),
            );
            if ui.button("Reset").clicked() {
                if let Some(s) = &mut self.stream {
                    s.reset();
                }
                self.playing = false;
                self.refresh();
            }
            ui.checkbox(&mut self.color_by_error, "colour by reconstruction error");
            ui.label(format!("fed {fed} / {total} context tokens"));
        });
        if self.playing {
            self.owed += ui.input(|i| i.stable_dt).min(0.1) * self.speed;
            let n = self.owed.floor();
            if n >= 1.0 {
                self.owed -= n;
                self.feed(n as usize);
            }
            ui.ctx().request_repaint();
        }
        if let Some(e) = &self.error {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        let max_err = self
            .rings
            .iter()
            .flat_map(|r| r.slots.iter().map(|s| s.error))
            .fold(1e-12_f32, f32::max);
        let n = self.rings.len().max(1) as f32;
        let avail = ui.available_size();
        let side = ((avail.x / n) - 16.0).min(avail.y * 0.62).max(80.0);
        ui.horizontal(|ui| {
            for r in &self.rings {
                ui.vertical(|ui| {
                    ui.label(format!(
                        "layer {}: {} written, mean error {:.2e}",
                        r.layer, r.written, r.mean_error
                    ));
                    let resp = draw_ring(ui, r, side, self.color_by_error, max_err);
                    if resp.clicked() {
                        self.layer = r.layer;
                    }
                });
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("age: new");
            for k in 0..8 {
                let (rc, _) = ui.allocate_exact_size(Vec2::new(14.0, 12.0), Sense::hover());
                ui.painter()
                    .rect_filled(rc, 0.0, palette::ramp(1.0 - k as f32 / 7.0));
            }
            ui.label(
                "old (error: low to high, same ramp); white outline: sink; red pointer: write head",
            );
        });
        if let Some(r) = self.rings.get(self.layer) {
            super::plot("slot_error")
                .height(ui.available_height().max(60.0))
                .legend(Legend::default())
                .x_axis_label("slot")
                .show(ui, |p| {
                    let bars: Vec<Bar> = r
                        .slots
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.live)
                        .map(|(i, s)| Bar::new(i as f64, f64::from(s.error)).width(0.9))
                        .collect();
                    p.bar_chart(BarChart::new(
                        format!("layer {} reconstruction error per slot", r.layer),
                        bars,
                    ));
                });
        }
    }
}

/// One ring: `capacity` wedges clockwise from the top.
fn draw_ring(ui: &mut Ui, r: &RingView, side: f32, by_error: bool, max_err: f32) -> egui::Response {
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(side), Sense::click());
    let painter = ui.painter_at(rect);
    let c = rect.center();
    let (r_out, r_in) = (side * 0.47, side * 0.30);
    let cap = r.capacity.max(1);
    let at = |k: f32, rad: f32| -> Pos2 {
        let a = k / cap as f32 * TAU - TAU / 4.0;
        c + Vec2::new(a.cos(), a.sin()) * rad
    };
    let mut hovered = None;
    let pointer = resp.hover_pos();
    // The wedges go into one mesh of plain quads: as a polygon shape each, egui feathers
    // every edge, and those strips doubled the view's frame time on a software adapter.
    let mut wedges = Mesh::default();
    // A one-pixel gap between wedges where a slot is at least 4 pixels wide at the inner
    // radius; narrower, an unsmoothed gap only aliases into a moiré, so the wedges touch.
    let arc = TAU * r_in / cap as f32;
    let gap = if arc >= 4.0 { 1.0 / arc } else { 0.0 };
    let mut sinks = Vec::new();
    for (s, slot) in r.slots.iter().enumerate() {
        let (k0, k1) = (s as f32, s as f32 + 1.0 - gap);
        let quad = vec![at(k0, r_in), at(k0, r_out), at(k1, r_out), at(k1, r_in)];
        let fill = if !slot.live {
            Color32::from_gray(45)
        } else if by_error {
            palette::ramp((slot.error / max_err).sqrt())
        } else {
            let span = r.written.max(1) as f32;
            palette::ramp(1.0 - (slot.age as f32 / span).sqrt())
        };
        if let Some(p) = pointer {
            if egui::Rect::from_points(&quad).contains(p) {
                hovered = Some(s);
            }
        }
        let first = wedges.vertices.len() as u32;
        for &p in &quad {
            wedges.colored_vertex(p, fill);
        }
        wedges.add_triangle(first, first + 1, first + 2);
        wedges.add_triangle(first, first + 2, first + 3);
        if slot.sink {
            sinks.push(quad);
        }
    }
    painter.add(wedges);
    for quad in sinks {
        painter.add(Shape::closed_line(quad, Stroke::new(1.5, Color32::WHITE)));
    }
    // Write head: a red pointer at the slot the next token goes to.
    let h = r.head as f32 + 0.46;
    painter.add(Shape::convex_polygon(
        vec![
            at(h, r_in - 2.0),
            at(h - 1.2, r_in - side * 0.08),
            at(h + 1.2, r_in - side * 0.08),
        ],
        Color32::from_rgb(255, 60, 60),
        Stroke::NONE,
    ));
    painter.text(
        c,
        egui::Align2::CENTER_CENTER,
        format!("{} slots\n{} sinks", r.capacity, r.sink),
        egui::FontId::proportional(12.0),
        Color32::from_gray(200),
    );
    match hovered.and_then(|s| r.slots.get(s).map(|x| (s, x))) {
        Some((s, x)) if x.live => resp.on_hover_text(format!(
            "slot {s}{}: token at position {}, written at step {}, age {}, reconstruction error {:.3e}",
            if x.sink { " (sink)" } else { "" },
            x.position,
            x.step,
            x.age,
            x.error
        )),
        Some((s, _)) => resp.on_hover_text(format!("slot {s}: empty")),
        None => resp,
    }
}
