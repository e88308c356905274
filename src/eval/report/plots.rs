//! PNG figures with plotters' bitmap backend. Text is drawn with the bundled DejaVu Sans
//! (through ab_glyph), so figures render the same on machines without fontconfig.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const SIZE: (u32, u32) = (960, 560);

fn font() -> Result<(), ReportError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Plot(
            "the bundled DejaVu Sans did not load".into(),
        ))
    }
}

fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Plot(format!("{}: {e}", path.display()))
}

/// Upper end of an axis holding `max` with some headroom (1 when there is nothing).
fn top(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.15
    } else {
        1.0
    }
}

/// One bar per `(label, value)`, values printed on top.
pub fn bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    items: &[(String, f64)],
) -> Result<(), ReportError> {
    let series: Vec<(String, Vec<f64>)> =
        items.iter().map(|(n, v)| (n.clone(), vec![*v])).collect();
    grouped(path, title, y_desc, &[], &series, false)
}

/// Groups of bars: one group per metric, one bar per series (model) inside each.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    metrics: &[&str],
    series: &[(String, Vec<f64>)],
) -> Result<(), ReportError> {
    grouped(path, title, "score", metrics, series, true)
}

fn centered(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, VPos::Top))
}

/// Bars of `series[s].1[g]` in group `g`; with one group and no legend, the series names
/// label the bars themselves.
fn grouped(
    path: &Path,
    title: &str,
    y_desc: &str,
    groups: &[&str],
    series: &[(String, Vec<f64>)],
    legend: bool,
) -> Result<(), ReportError> {
    font()?;
    let e = err(path);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let ymax = top(series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max));
    let ng = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..ng as f64, 0.0..ymax)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(&e)?;
    let k = series.len().max(1) as f64;
    let w = 0.8 / k;
    let below = -ymax * 0.015;
    for (g, m) in groups.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Text::new(
                m.to_string(),
                (g as f64 + 0.5, below),
                centered(16),
            )))
            .map_err(&e)?;
    }
    for (s, (name, vals)) in series.iter().enumerate() {
        let color = Palette99::pick(s).to_rgba();
        let x0 = |g: usize| g as f64 + 0.1 + s as f64 * w;
        let drawn = chart
            .draw_series(vals.iter().enumerate().map(|(g, v)| {
                Rectangle::new([(x0(g), 0.0), (x0(g) + w * 0.9, *v)], color.filled())
            }))
            .map_err(&e)?;
        if legend {
            drawn.label(name.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
            });
        }
        for (g, v) in vals.iter().enumerate() {
            let mid = x0(g) + w * 0.45;
            let value = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{v:.4}"),
                    (mid, *v + ymax * 0.01),
                    value,
                )))
                .map_err(&e)?;
            if !legend {
                chart
                    .draw_series(std::iter::once(Text::new(
                        name.clone(),
                        (mid, below),
                        centered(15),
                    )))
                    .map_err(&e)?;
            }
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(&e)?;
    }
    root.present().map_err(&e)?;
    Ok(())
}

/// Lines `(name, points)` over a shared x axis.
pub fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), ReportError> {
    font()?;
    let e = err(path);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let pts = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let xmax = top(pts().map(|p| p.0).fold(0.0, f64::max)) / 1.15;
    let ymax = top(pts().map(|p| p.1).fold(0.0, f64::max));
    let ymin = pts().map(|p| p.1).fold(0.0, f64::min);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..xmax.max(1.0), ymin..ymax)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(&e)?;
    for (i, (name, p)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = ShapeStyle::from(color).stroke_width(2);
        if p.len() == 1 {
            chart
                .draw_series(p.iter().map(|&q| Circle::new(q, 4, style.filled())))
                .map_err(&e)?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
        } else {
            chart
                .draw_series(LineSeries::new(p.iter().copied(), style))
                .map_err(&e)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}
