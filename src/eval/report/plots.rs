//! PNG figures with plotters' bitmap backend. Text is drawn with the bundled DejaVu Sans
//! (through ab_glyph), so figures render the same on machines without fontconfig.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
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

/// `v` when its leading digit is 1, 2 or 5 (as `1000`, `0.5`), else no label.
fn log_tick(v: &f64) -> String {
    if !(v.is_finite() && *v > 0.0) {
        return String::new();
    }
    let lead = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0].iter().any(|m| (lead - m).abs() < 1e-6) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        String::new()
    }
}

/// Mesh, one line per series and the legend; with `log_axes`, 1-2-5 tick labels and a marker
/// on every point (a lone point is always a marker), on any pair of f64 axes.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    path: &Path,
    (x_desc, y_desc): (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
    log_axes: bool,
    legend_at: SeriesLabelPosition,
) -> Result<(), ReportError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = err(path);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 15));
    if log_axes {
        // Log axes: label 1-2-5 steps only, or the decade's ticks run into each other.
        mesh.x_labels(40)
            .y_labels(40)
            .x_label_formatter(&log_tick)
            .y_label_formatter(&log_tick);
    }
    mesh.draw().map_err(&e)?;
    for (i, (name, p)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = ShapeStyle::from(color).stroke_width(2);
        if p.len() == 1 {
            chart
                .draw_series(p.iter().map(|&q| Circle::new(q, 4, style.filled())))
                .map_err(&e)?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
            continue;
        }
        chart
            .draw_series(LineSeries::new(p.iter().copied(), style))
            .map_err(&e)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        if log_axes {
            chart
                .draw_series(p.iter().map(|&q| Circle::new(q, 4, style.filled())))
                .map_err(&e)?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(&e)?;
    Ok(())
}

fn line_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80);
    b
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
    let mut chart = line_chart(&root, title)
        .build_cartesian_2d(0.0..xmax.max(1.0), ymin..ymax)
        .map_err(&e)?;
    let at = SeriesLabelPosition::UpperRight;
    draw_lines(&mut chart, path, (x_desc, y_desc), series, false, at)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// Lines `(name, points)` on log-log axes (positive points only), for quantities that span
/// orders of magnitude against context length.
pub fn lines_log(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), ReportError> {
    font()?;
    let e = err(path);
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, p)| {
            let ok = |q: &&(f64, f64)| q.0 > 0.0 && q.1 > 0.0 && q.0.is_finite() && q.1.is_finite();
            (n.clone(), p.iter().filter(ok).copied().collect())
        })
        .collect();
    let pts = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let (xmin, xmax) = pts().fold((f64::MAX, 0.0f64), |(a, b), q| (a.min(q.0), b.max(q.0)));
    let (ymin, ymax) = pts().fold((f64::MAX, 0.0f64), |(a, b), q| (a.min(q.1), b.max(q.1)));
    if xmax <= 0.0 || ymax <= 0.0 {
        return Err(ReportError::Plot(format!(
            "{}: no positive points to draw",
            path.display()
        )));
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let mut chart = line_chart(&root, title)
        .build_cartesian_2d(
            (xmin / 1.2..xmax * 1.2).log_scale(),
            (ymin / 1.5..ymax * 1.5).log_scale(),
        )
        .map_err(&e)?;
    let at = SeriesLabelPosition::UpperLeft;
    draw_lines(&mut chart, path, (x_desc, y_desc), &series, true, at)?;
    root.present().map_err(&e)?;
    Ok(())
}
