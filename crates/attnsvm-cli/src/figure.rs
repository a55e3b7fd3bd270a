//! General x–y figures for the experiment suites: panels side by side, each with linear or log
//! axes (log axes are drawn from `log10` values with `10^y` tick labels, as in [`crate::plot`]),
//! and series drawn as solid lines, dashed lines or points. 2-D trajectories, rays, scatter plots
//! and curves against the iteration all fit.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::output::write_atomically;
use crate::plot::{draw_err, linear_label, pow10_label, register_font};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    /// Markers only (a scatter).
    Points,
    /// A line with a marker at every point.
    LinePoints,
}

/// One series: `(x, y)` points, with `log10` values on a log axis.
pub struct XySeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub style: Style,
}

/// One panel.
pub struct XyPanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    /// Fixed ranges (in plotted units); `None`: fitted to the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Where the legend goes (default: upper left).
    pub legend: Corner,
    pub series: Vec<XySeries>,
}

/// A corner of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    UpperLeft,
    LowerRight,
}

impl XyPanel {
    /// A panel with fitted ranges.
    pub fn new(
        title: impl Into<String>,
        x_label: &str,
        y_label: &str,
        log_x: bool,
        log_y: bool,
    ) -> Self {
        XyPanel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x,
            log_y,
            x_range: None,
            y_range: None,
            legend: Corner::UpperLeft,
            series: Vec::new(),
        }
    }

    pub fn add(
        &mut self,
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        color: RGBColor,
        style: Style,
    ) {
        self.series.push(XySeries {
            label: label.into(),
            points,
            color,
            style,
        });
    }
}

/// Draw `panels` on a grid of `rows` rows into `dir/stem.png` and `dir/stem.svg`.
pub fn plot_xy(
    dir: &Path,
    stem: &str,
    title: &str,
    panels: &[XyPanel],
    rows: usize,
    size: (u32, u32),
) -> Result<[PathBuf; 2]> {
    register_font()?;
    let (png, svg) = (
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.svg")),
    );
    write_atomically(&png, |tmp| {
        draw(
            &BitMapBackend::new(tmp, size).into_drawing_area(),
            title,
            panels,
            rows,
        )
    })?;
    write_atomically(&svg, |tmp| {
        let mut text = String::new();
        draw(
            &SVGBackend::with_string(&mut text, size).into_drawing_area(),
            title,
            panels,
            rows,
        )?;
        attnsvm::data::npy::write_text(tmp, &text)?;
        Ok(())
    })?;
    Ok([png, svg])
}

/// The padded range of `values` (a band around a constant).
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let min_span = if log {
        1.0
    } else {
        1e-9f64.max(hi.abs() * 1e-6)
    };
    if span < min_span {
        let half = if log { 0.5 } else { (0.1 * lo.abs()).max(0.5) };
        return (lo - half, hi + half);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[XyPanel],
    rows: usize,
) -> Result<()> {
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root
        .titled(title, ("sans-serif", 22).into_font().color(&BLACK))
        .map_err(draw_err)?;
    let rows = rows.max(1);
    let cols = panels.len().div_ceil(rows).max(1);
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        let points = || panel.series.iter().flat_map(|s| s.points.iter().copied());
        let (x_lo, x_hi) = panel
            .x_range
            .unwrap_or_else(|| range(points().map(|p| p.0), panel.log_x));
        let (y_lo, y_hi) = panel
            .y_range
            .unwrap_or_else(|| range(points().map(|p| p.1), panel.log_y));
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title.as_str(), ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(draw_err)?;
        let fmt = |log: bool, span: f64| {
            move |v: &f64| {
                if log {
                    pow10_label(*v)
                } else {
                    linear_label(*v, span)
                }
            }
        };
        let (fx, fy) = (fmt(panel.log_x, x_hi - x_lo), fmt(panel.log_y, y_hi - y_lo));
        chart
            .configure_mesh()
            .x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        let inside = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
        for s in &panel.series {
            let (color, pts) = (s.color, s.points.iter().copied().filter(inside));
            let legend_line = move |(x, y): (i32, i32)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            };
            let anno = match s.style {
                Style::Line | Style::LinePoints => chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(draw_err)?,
                Style::Dashed => chart
                    .draw_series(DashedLineSeries::new(
                        pts.clone(),
                        8,
                        5,
                        color.stroke_width(2),
                    ))
                    .map_err(draw_err)?,
                Style::Points => chart
                    .draw_series(pts.clone().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(draw_err)?,
            };
            if !s.label.is_empty() {
                anno.label(s.label.as_str()).legend(legend_line);
            }
            if s.style == Style::LinePoints {
                chart
                    .draw_series(pts.map(|p| Circle::new(p, 2, color.filled())))
                    .map_err(draw_err)?;
            }
        }
        if panel.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .position(match panel.legend {
                    Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                    Corner::LowerRight => SeriesLabelPosition::LowerRight,
                })
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)
}
