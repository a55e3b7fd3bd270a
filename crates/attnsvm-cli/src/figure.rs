//! General x–y figures for the experiment suites: panels on a grid, each with linear or log axes
//! (log axes are drawn from `log10` values with `10^y` tick labels, as in [`crate::plot`]), and
//! series drawn as solid or dashed lines, points, lines with markers, or trajectories (a line with
//! a dot where it starts). 2-D paths of a parameter with their SVM rays (optionally with equal
//! units on both axes, so angles are true), scatter plots and curves against the iteration all
//! fit. The legend goes into the lower right or, by default ([`Corner::Auto`]), into the corner
//! where it hides the least of the series.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plot::{draw_err, linear_label, pow10_label, write_figure, Figure};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    /// Markers only (a scatter).
    Points,
    /// A line with a marker at every point.
    LinePoints,
    /// A line with a dot at its first point (a path from its initialization).
    Trajectory,
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
    /// Equal units on both axes (paths and rays keep their angles): the fitted range of the
    /// shorter side is widened to match. Meant for linear axes.
    pub equal_aspect: bool,
    /// Where the legend goes (default: [`Corner::Auto`]).
    pub legend: Corner,
    pub series: Vec<XySeries>,
}

/// Where a panel's legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    LowerRight,
    /// The corner whose quarter of the plot the series cover least.
    Auto,
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
            equal_aspect: false,
            legend: Corner::Auto,
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

struct XyFigure<'a> {
    title: &'a str,
    panels: &'a [XyPanel],
    rows: usize,
}

impl Figure for XyFigure<'_> {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw(root, self.title, self.panels, self.rows)
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
    let fig = XyFigure {
        title,
        panels,
        rows,
    };
    write_figure(dir, stem, size, &fig)
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

/// Widen `x` or `y` about its centre so that one unit spans as many pixels on both axes of a
/// `w × h` plot.
fn equalize(x: &mut (f64, f64), y: &mut (f64, f64), (w, h): (f64, f64)) {
    let (xs, ys) = (x.1 - x.0, y.1 - y.0);
    let (grow, r) = if xs / w < ys / h {
        (0.5 * (ys / h * w - xs), x)
    } else {
        (0.5 * (xs / w * h - ys), y)
    };
    *r = (r.0 - grow, r.1 + grow);
}

/// The corner where a `legend`-sized box (in pixels) on a `plot`-sized plot hides the least ink:
/// lines count by their length in pixels, markers as 40 pixels of line each. Ties go to the
/// upper left, then the upper right.
fn emptiest_corner(
    panel: &XyPanel,
    (x, y): ((f64, f64), (f64, f64)),
    (pw, ph): (f64, f64),
    (lw, lh): (f64, f64),
) -> SeriesLabelPosition {
    let px = |p: &(f64, f64)| {
        let u = (p.0 - x.0) / (x.1 - x.0) * pw;
        (u, (y.1 - p.1) / (y.1 - y.0) * ph)
    };
    // Upper left, upper right, lower left, lower right.
    let mut ink = [0.0f64; 4];
    let mut add = |(u, v): (f64, f64), w: f64| {
        let col = [u >= 0.0 && u < lw, u <= pw && u > pw - lw];
        let row = [v >= 0.0 && v < lh, v <= ph && v > ph - lh];
        (0..4).for_each(|k| ink[k] += if row[k / 2] && col[k % 2] { w } else { 0.0 });
    };
    for s in &panel.series {
        let pts: Vec<_> = s.points.iter().filter(|p| finite(p)).map(px).collect();
        if matches!(s.style, Style::Points | Style::LinePoints) {
            pts.iter().for_each(|&p| add(p, 40.0));
        }
        for seg in pts.windows(2).filter(|_| s.style != Style::Points) {
            let (a, b) = (seg[0], seg[1]);
            let len = (b.0 - a.0).hypot(b.1 - a.1);
            let n = (len / 2.0).ceil().clamp(1.0, 1e4) as usize;
            for k in 0..n {
                let f = (k as f64 + 0.5) / n as f64;
                let q = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
                add(q, len / n as f64);
            }
        }
    }
    match (0..4).min_by(|&i, &j| ink[i].total_cmp(&ink[j])) {
        Some(0) | None => SeriesLabelPosition::UpperLeft,
        Some(1) => SeriesLabelPosition::UpperRight,
        Some(2) => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::LowerRight,
    }
}

/// The size in pixels of the legend box plotters draws for the labelled series of `panel`, plus
/// its 5-pixel offset from the corner and a little clearance.
fn legend_size(panel: &XyPanel, font: &TextStyle) -> Result<(f64, f64)> {
    let mut text = MultiLineText::<_, &str>::new((0, 0), font);
    for s in panel.series.iter().filter(|s| !s.label.is_empty()) {
        text.push_line(s.label.as_str());
    }
    let (w, h) = text.estimate_dimension().map_err(draw_err)?;
    // Legend line area 30, margins 2 × 10, offset 5, clearance 6.
    Ok(((w + 61) as f64, (h + 31) as f64))
}

fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 42;
const Y_LABEL_AREA: u32 = 70;

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
    let caption = TextStyle::from(("sans-serif", 17).into_font());
    let legend_font = TextStyle::from(("sans-serif", 13).into_font());
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        let points = || panel.series.iter().flat_map(|s| s.points.iter().copied());
        let mut x = panel
            .x_range
            .unwrap_or_else(|| range(points().map(|p| p.0), panel.log_x));
        let mut y = panel
            .y_range
            .unwrap_or_else(|| range(points().map(|p| p.1), panel.log_y));
        if panel.equal_aspect {
            // The plot is the area less the margins, the label areas and the caption (as laid
            // out by `ChartBuilder` and `DrawingArea::titled`).
            let (w, h) = area.dim_in_pixel();
            let (_, th) = area
                .estimate_text_size(&panel.title, &caption)
                .map_err(draw_err)?;
            let (w, h) = (
                w.saturating_sub(2 * MARGIN + Y_LABEL_AREA).max(1),
                h.saturating_sub(2 * MARGIN + X_LABEL_AREA + th + 2 * (th / 2).min(5))
                    .max(1),
            );
            equalize(&mut x, &mut y, (w as f64, h as f64));
        }
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title.as_str(), caption.clone())
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
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
        let (fx, fy) = (fmt(panel.log_x, x.1 - x.0), fmt(panel.log_y, y.1 - y.0));
        chart
            .configure_mesh()
            // Log-axis labels (`1e-45`) are wide: fewer of them.
            .x_labels(if panel.log_x { 6 } else { 10 })
            .x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        for s in &panel.series {
            let (color, pts) = (s.color, s.points.iter().copied().filter(finite));
            let stroke = color.stroke_width(2);
            let legend_line =
                move |(x, y): (i32, i32)| PathElement::new([(x, y), (x + 20, y)], stroke);
            let anno = match s.style {
                Style::Line | Style::LinePoints | Style::Trajectory => chart
                    .draw_series(LineSeries::new(pts.clone(), stroke))
                    .map_err(draw_err)?,
                Style::Dashed => chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, stroke))
                    .map_err(draw_err)?,
                Style::Points => chart
                    .draw_series(pts.clone().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(draw_err)?,
            };
            if !s.label.is_empty() {
                anno.label(s.label.as_str()).legend(legend_line);
            }
            // Markers on the line: at every point, or at the start of a trajectory.
            let (count, radius) = match s.style {
                Style::LinePoints => (usize::MAX, 2),
                Style::Trajectory => (1, 4),
                _ => (0, 0),
            };
            let dots = pts
                .take(count)
                .map(|p| Circle::new(p, radius, color.filled()));
            chart.draw_series(dots).map_err(draw_err)?;
        }
        if panel.series.iter().any(|s| !s.label.is_empty()) {
            let position = match panel.legend {
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
                Corner::Auto => {
                    let (w, h) = chart.plotting_area().dim_in_pixel();
                    let size = (w as f64, h as f64);
                    emptiest_corner(panel, (x, y), size, legend_size(panel, &legend_font)?)
                }
            };
            chart
                .configure_series_labels()
                .position(position)
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .label_font(legend_font.clone())
                .draw()
                .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)
}
