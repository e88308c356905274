//! Colours shared by the views: one per cluster, and a ramp for weights and scores.

use eframe::egui::Color32;

/// A distinct colour for cluster `c` (golden-angle hues).
pub fn cluster(c: u32) -> Color32 {
    let h = (c as f32 * 0.618_034).fract();
    hsv(h, 0.65, 0.95)
}

/// Black → purple → orange → pale yellow for `t ∈ [0, 1]` (magma-like).
pub fn ramp(t: f32) -> Color32 {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.0, 0.0, 0.02]),
        (0.3, [0.32, 0.07, 0.48]),
        (0.6, [0.80, 0.22, 0.38]),
        (0.85, [0.99, 0.60, 0.25]),
        (1.0, [0.99, 0.99, 0.75]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut k = 1;
    while k < STOPS.len() - 1 && STOPS[k].0 < t {
        k += 1;
    }
    let ((t0, a), (t1, b)) = (STOPS[k - 1], STOPS[k]);
    let u = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let ch = |i: usize| ((a[i] + (b[i] - a[i]) * u) * 255.0) as u8;
    Color32::from_rgb(ch(0), ch(1), ch(2))
}

pub fn hsv(h: f32, s: f32, v: f32) -> Color32 {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match (i as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}
