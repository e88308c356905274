//! Attention clusters: one layer/head's keys in 2-D (PCA of the unit keys SQA clusters),
//! coloured by k-means cluster with the centroids marked; a query (hovered or clicked) shows
//! the clusters it routes to and its weights; dense and SQA attention as heat maps with the
//! attention recall.

use dsrsq::inspect::attention::AttentionInspect;
use eframe::egui::{
    Color32, ColorImage, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Ui, Vec2,
};
use egui_plot::{Legend, Line, MarkerShape, PlotPoints, Points};

use super::palette;

#[derive(Default)]
pub struct AttentionState {
    pub layer: usize,
    pub head: usize,
    /// The query fixed by a click; hovering shows another one meanwhile.
    pub query: Option<usize>,
    hovered: Option<usize>,
    pub data: Option<AttentionInspect>,
    textures: Option<[TextureHandle; 2]>,
}

/// Heat-map cell colour: `(p / row max)^½` on the ramp; keys SQA does not read are grey.
fn heat(a: &AttentionInspect, sparse: bool) -> ColorImage {
    let n = a.n;
    let mut img = ColorImage::filled([n, n], Color32::from_gray(18));
    for i in 0..n {
        let m = if sparse { &a.sparse } else { &a.dense };
        let row = &m[i * n..(i + 1) * n];
        let mx = row.iter().fold(0.0_f32, |x, &y| x.max(y)).max(1e-30);
        for (j, &p) in row.iter().enumerate().take(i + 1) {
            img.pixels[i * n + j] = if sparse && !a.selected[i * n + j] {
                Color32::from_gray(48)
            } else {
                palette::ramp((p / mx).sqrt())
            };
        }
    }
    img
}

impl AttentionState {
    /// New results: textures are rebuilt on the next frame.
    pub fn set(&mut self, data: AttentionInspect) {
        if self.query.is_some_and(|q| q >= data.n) {
            self.query = None;
        }
        self.data = Some(data);
        self.textures = None;
    }

    pub fn show(&mut self, ui: &mut Ui, token: &dyn Fn(u32) -> String) {
        let Some(a) = &self.data else {
            ui.label("No attention data yet: load a checkpoint or train, then pick an input.");
            return;
        };
        let textures = self.textures.get_or_insert_with(|| {
            let o = TextureOptions::NEAREST;
            [
                ui.ctx().load_texture("dense", heat(a, false), o),
                ui.ctx().load_texture("sparse", heat(a, true), o),
            ]
        });
        let q = self.hovered.or(self.query);
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "layer {} head {}: {} keys (tokens kept by DSR), {} clusters, top-{} routes, PCA keeps {:.0}% of the variance",
                a.layer, a.head, a.n, a.clusters, a.top_k, 100.0 * a.explained
            ));
            ui.strong(format!("attention recall {:.3}", a.recall));
        });
        match q {
            Some(i) => {
                let routes: Vec<String> = a.routes_of(i).iter().map(|c| c.to_string()).collect();
                ui.label(format!(
                    "query row {i} (position {}, {:?}) routes to clusters [{}]; recall of this query {:.3}",
                    a.positions[i],
                    token(a.ids[i]),
                    routes.join(", "),
                    a.recall_per_query[i]
                ));
            }
            None => {
                ui.label("Hover or click a key (or a heat-map row) to pick a query.");
            }
        }
        let avail = ui.available_size();
        let side = ((avail.x - 20.0) / 2.0).min(avail.y - 120.0).max(120.0);
        let mut hovered = None;
        let mut clicked = None;
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                let routed: Vec<u32> = q.map(|i| a.routes_of(i).to_vec()).unwrap_or_default();
                let resp = super::plot("keys2d")
                    .width(side)
                    .height(side)
                    .data_aspect(1.0)
                    .legend(Legend::default())
                    .show(ui, |p| {
                        for c in 0..a.clusters as u32 {
                            let pts: Vec<[f64; 2]> = (0..a.n)
                                .filter(|&j| a.assign[j] == c && q.is_none_or(|i| j <= i))
                                .map(|j| [f64::from(a.keys_2d[j][0]), f64::from(a.keys_2d[j][1])])
                                .collect();
                            let dim = q.is_some() && !routed.contains(&c);
                            let col = palette::cluster(c);
                            let col = if dim { col.gamma_multiply(0.25) } else { col };
                            p.points(
                                Points::new(format!("cluster {c}"), pts)
                                    .color(col)
                                    .radius(if dim { 2.0 } else { 3.0 }),
                            );
                        }
                        for (c, xy) in a.centroids_2d.iter().enumerate() {
                            let big = routed.contains(&(c as u32));
                            p.points(
                                Points::new(
                                    "centroids",
                                    vec![[f64::from(xy[0]), f64::from(xy[1])]],
                                )
                                .shape(MarkerShape::Diamond)
                                .color(palette::cluster(c as u32))
                                .filled(big)
                                .radius(if big {
                                    8.0
                                } else {
                                    6.0
                                }),
                            );
                        }
                        if let Some(i) = q {
                            let xy = a.keys_2d[i];
                            p.points(
                                Points::new("query", vec![[f64::from(xy[0]), f64::from(xy[1])]])
                                    .shape(MarkerShape::Asterisk)
                                    .color(Color32::WHITE)
                                    .radius(9.0),
                            );
                        }
                        p.pointer_coordinate()
                    });
                if let Some(pt) = resp.inner {
                    hovered = nearest(&a.keys_2d, pt.x as f32, pt.y as f32);
                    if resp.response.clicked() {
                        clicked = hovered;
                    }
                }
                if let Some(i) = q {
                    super::plot("qweights")
                        .width(side)
                        .height(90.0)
                        .legend(Legend::default())
                        .show(ui, |p| {
                            let row = |m: &[f32]| -> Vec<[f64; 2]> {
                                (0..=i)
                                    .map(|j| [j as f64, f64::from(m[i * a.n + j])])
                                    .collect()
                            };
                            p.line(Line::new("dense weights", PlotPoints::new(row(&a.dense))));
                            p.line(Line::new("SQA weights", PlotPoints::new(row(&a.sparse))));
                        });
                }
            });
            for (k, (tex, title)) in textures
                .iter()
                .zip(["dense causal", "SQA (grey: not read)"])
                .enumerate()
            {
                ui.vertical(|ui| {
                    ui.label(title);
                    let hs = (side * 0.5).max(100.0);
                    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(hs), Sense::click());
                    ui.painter().image(
                        tex.id(),
                        rect,
                        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                        Color32::WHITE,
                    );
                    if let Some(p) = resp.hover_pos() {
                        let i = (((p.y - rect.top()) / hs) * a.n as f32) as usize;
                        hovered = Some(i.min(a.n - 1));
                        if resp.clicked() {
                            clicked = hovered;
                        }
                    }
                    if let Some(i) = q {
                        let y = rect.top() + (i as f32 + 0.5) / a.n as f32 * hs;
                        ui.painter().hline(
                            rect.x_range(),
                            y,
                            Stroke::new(1.0, Color32::from_rgb(80, 220, 255)),
                        );
                    }
                    if k == 1 {
                        ui.label(format!("recall {:.3}", a.recall));
                    }
                });
            }
        });
        self.hovered = hovered;
        if clicked.is_some() {
            self.query = clicked;
        }
    }
}

fn nearest(pts: &[[f32; 2]], x: f32, y: f32) -> Option<usize> {
    pts.iter()
        .enumerate()
        .map(|(i, p)| (i, (p[0] - x).powi(2) + (p[1] - y).powi(2)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}
