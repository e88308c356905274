//! DSR selection: the input text with each context token shaded by its retrieval score and
//! the kept blocks outlined, the question marked, with the budget B, kept blocks K and the
//! complexity c.

use dsrsq::inspect::dsr::DsrInspect;
use eframe::egui::{self, Color32, Mesh, Rect, RichText, Sense, Shape, Stroke, Ui, Vec2};
use egui_plot::{Line, PlotPoints, Polygon};

use super::palette;

#[derive(Default)]
pub struct DsrState {
    pub data: Option<DsrInspect>,
    /// Token texts, aligned with `data.ids`.
    pub tokens: Vec<String>,
}

const KEPT: Color32 = Color32::from_rgb(80, 220, 255);
const READ_ONLY_DSR: Color32 = Color32::from_rgb(255, 190, 60);

impl DsrState {
    pub fn show(&mut self, ui: &mut Ui) {
        let Some(d) = &self.data else {
            ui.label("No DSR data yet: load a checkpoint or train, then pick an input.");
            return;
        };
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!("budget B = {} tokens", d.budget));
            ui.strong(format!(
                "kept blocks K = {} of {}",
                d.keep_blocks,
                d.block_scores.len()
            ));
            ui.strong(format!("complexity c = {:.3}", d.complexity));
            ui.label(format!(
                "context {} tokens, block {}, kept {} ({:.0}%), read after the ring {}{}",
                d.n_ctx,
                d.block,
                d.kept.len(),
                100.0 * d.kept.len() as f64 / d.n_ctx.max(1) as f64,
                d.read.len(),
                if d.used_by_model {
                    ""
                } else {
                    " — this model runs without DSR"
                }
            ));
        });
        let (lo, hi) = d
            .scores
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &s| (a.min(s), b.max(s)));
        let norm = |s: f32| if hi > lo { (s - lo) / (hi - lo) } else { 0.5 };
        super::plot("dsr_scores")
            .height(110.0)
            .x_axis_label("context position")
            .y_axis_label("score")
            .show(ui, |p| {
                let (blo, bhi) = (f64::from(lo), f64::from(hi));
                for (b, &kept) in d.kept_blocks.iter().enumerate() {
                    if kept {
                        let (x0, x1) = (
                            (b * d.block) as f64,
                            (((b + 1) * d.block).min(d.n_ctx)) as f64,
                        );
                        p.polygon(
                            Polygon::new(
                                "kept blocks",
                                PlotPoints::new(vec![[x0, blo], [x1, blo], [x1, bhi], [x0, bhi]]),
                            )
                            .fill_color(KEPT.gamma_multiply(0.18))
                            .stroke(Stroke::NONE),
                        );
                    }
                }
                // The block scores DSR ranks (max over each block), one level per block.
                // The per-token scores are the shading below: drawn as a line, a few hundred
                // noisy points are mostly vertical strokes, which cost more than the rest of
                // the view on a software adapter and read as a solid band. The levels are not
                // joined: egui's joins at a step's right-angle turns come out as wide wedges
                // at this aspect ratio.
                for (b, &s) in d.block_scores.iter().enumerate() {
                    let x1 = ((b + 1) * d.block).min(d.n_ctx);
                    let seg = vec![
                        [(b * d.block) as f64, f64::from(s)],
                        [x1 as f64, f64::from(s)],
                    ];
                    p.line(
                        Line::new("block score (max)", PlotPoints::new(seg))
                            .color(Color32::WHITE)
                            .width(2.0),
                    );
                }
                for &(a, b) in &d.spans {
                    p.line(
                        Line::new(
                            "support",
                            PlotPoints::new(vec![[a as f64, blo], [b as f64, blo]]),
                        )
                        .color(Color32::GREEN)
                        .width(4.0),
                    );
                }
            });
        ui.horizontal_wrapped(|ui| {
            ui.label("token shade = score (low to high):");
            for k in 0..8 {
                let (r, _) = ui.allocate_exact_size(Vec2::new(14.0, 12.0), Sense::hover());
                ui.painter()
                    .rect_filled(r, 0.0, palette::ramp(k as f32 / 7.0));
            }
            ui.label(RichText::new("outlined: kept block").color(KEPT));
            ui.label(RichText::new("amber: kept by DSR, evicted by the ring").color(READ_ONLY_DSR));
            ui.label(RichText::new("question").underline());
        });
        let kept_set: std::collections::HashSet<u32> = d.kept.iter().copied().collect();
        let read_set: std::collections::HashSet<u32> = d.read.iter().copied().collect();
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = Vec2::new(1.0, 2.0);
                // Token fills and kept outlines go into two meshes of plain rectangles,
                // under the text: painted one shape per token, egui feathers every edge,
                // and on a software adapter those extra strips cost ~10 ms a frame here.
                let fills_at = ui.painter().add(Shape::Noop);
                let outlines_at = ui.painter().add(Shape::Noop);
                let (mut fills, mut outlines) = (Mesh::default(), Mesh::default());
                let clip = ui.clip_rect();
                ui.horizontal_wrapped(|ui| {
                    for (p, text) in self.tokens.iter().enumerate() {
                        let font = egui::FontId::monospace(11.0);
                        let in_ctx = p < d.n_ctx;
                        let fill = if in_ctx {
                            palette::ramp(norm(d.scores[p]))
                        } else {
                            Color32::from_gray(40)
                        };
                        let fg = if in_ctx && norm(d.scores[p]) > 0.6 {
                            Color32::BLACK
                        } else {
                            Color32::from_gray(230)
                        };
                        let galley = ui.painter().layout_no_wrap(text.clone(), font, fg);
                        let size = galley.size() + Vec2::new(4.0, 2.0);
                        let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
                        if !clip.intersects(rect.expand(2.0)) {
                            continue;
                        }
                        fills.add_colored_rect(rect, fill);
                        ui.painter()
                            .galley(rect.min + Vec2::new(2.0, 1.0), galley, fg);
                        let pu = p as u32;
                        if kept_set.contains(&pu) {
                            let col = if read_set.contains(&pu) {
                                KEPT
                            } else {
                                READ_ONLY_DSR
                            };
                            outline(&mut outlines, rect, 1.5, col);
                        }
                        if p >= d.q0 && p < d.q1 {
                            ui.painter().hline(
                                rect.x_range(),
                                rect.bottom() + 1.0,
                                Stroke::new(1.5, Color32::WHITE),
                            );
                        }
                        if in_ctx {
                            resp.on_hover_text(format!(
                                "position {p}, block {}, score {:.4}{}",
                                p / d.block,
                                d.scores[p],
                                if kept_set.contains(&pu) { ", kept" } else { "" }
                            ));
                        }
                    }
                });
                ui.painter().set(fills_at, fills);
                ui.painter().set(outlines_at, outlines);
            });
    }
}

/// A `width`-wide frame just outside `r`, as four rectangles.
fn outline(mesh: &mut Mesh, r: Rect, width: f32, col: Color32) {
    let o = r.expand(width);
    for side in [
        Rect::from_min_max(o.min, egui::pos2(o.max.x, r.min.y)),
        Rect::from_min_max(egui::pos2(o.min.x, r.max.y), o.max),
        Rect::from_min_max(egui::pos2(o.min.x, r.min.y), egui::pos2(r.min.x, r.max.y)),
        Rect::from_min_max(egui::pos2(r.max.x, r.min.y), egui::pos2(o.max.x, r.max.y)),
    ] {
        mesh.add_colored_rect(side, col);
    }
}
