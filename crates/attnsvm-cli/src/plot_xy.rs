//! Panels with linear x and y axes (the max-margin figures): 2-D paths of a parameter with its SVM
//! rays drawn dashed, with equal units on both axes so angles are true, or a quantity against the
//! step. The legend goes into the corner of the plot with the fewest points.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::output::write_atomically;
use crate::plot::{draw_err, linear_label, FONT};

/// One panel with linear x and y axes: 2-D paths (x, y) of a parameter with its SVM rays, or a
/// quantity against the step.
pub struct XyPanel {
    pub title: &'static str,
    pub x_label: &'static str,
    pub y_label: &'static str,
    /// Equal units on both axes (paths and rays keep their angles).
    pub equal_aspect: bool,
    pub series: Vec<XySeries>,
}

/// One curve of an [`XyPanel`]; `dashed` for reference rays.
pub struct XySeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
}

/// Draw `panels` side by side (linear axes) into `dir/stem.png` and `dir/stem.svg`.
pub fn plot_xy(
    dir: &Path,
    stem: &str,
    title: &str,
    panels: &[XyPanel],
    size: (u32, u32),
) -> Result<[PathBuf; 2]> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font cannot be read"))?;
    let (png, svg) = (
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.svg")),
    );
    write_atomically(&png, |tmp| {
        draw_xy(
            &BitMapBackend::new(tmp, size).into_drawing_area(),
            title,
            panels,
        )
    })?;
    write_atomically(&svg, |tmp| {
        let mut text = String::new();
        draw_xy(
            &SVGBackend::with_string(&mut text, size).into_drawing_area(),
            title,
            panels,
        )?;
        attnsvm::data::npy::write_text(tmp, &text)?;
        Ok(())
    })?;
    Ok([png, svg])
}

fn xy_range(panel: &XyPanel) -> ((f64, f64), (f64, f64)) {
    let pts = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in pts() {
        (x0, x1, y0, y1) = (x0.min(p.0), x1.max(p.0), y0.min(p.1), y1.max(p.1));
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = |lo: f64, hi: f64| {
        let span = (hi - lo).max(1e-9);
        (lo - 0.05 * span, hi + 0.05 * span)
    };
    let (mut xr, mut yr) = (pad(x0, x1), pad(y0, y1));
    if panel.equal_aspect {
        let half = 0.5 * (xr.1 - xr.0).max(yr.1 - yr.0);
        let (cx, cy) = (0.5 * (xr.0 + xr.1), 0.5 * (yr.0 + yr.1));
        xr = (cx - half, cx + half);
        yr = (cy - half, cy + half);
    }
    (xr, yr)
}

/// The corner of the plot with the fewest points (where the legend hides the least).
fn emptiest_corner(
    panel: &XyPanel,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let (xm, ym) = (0.5 * (x0 + x1), 0.5 * (y0 + y1));
    let mut count = [0usize; 4];
    for s in &panel.series {
        // Rays count along their length, not only at their two ends.
        let pts: Vec<(f64, f64)> = if s.dashed && s.points.len() == 2 {
            let (a, b) = (s.points[0], s.points[1]);
            (0..=20)
                .map(|k| {
                    let f = k as f64 / 20.0;
                    (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1))
                })
                .collect()
        } else {
            s.points.clone()
        };
        for p in pts {
            count[usize::from(p.0 < xm) + 2 * usize::from(p.1 < ym)] += 1;
        }
    }
    let corners = [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ];
    let best = (0..4).min_by_key(|&k| count[k]).unwrap_or(2);
    corners[best].clone()
}

fn draw_xy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[XyPanel],
) -> Result<()> {
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root
        .titled(title, ("sans-serif", 22).into_font().color(&BLACK))
        .map_err(draw_err)?;
    for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let ((mut x_lo, mut x_hi), (mut y_lo, mut y_hi)) = xy_range(panel);
        if panel.equal_aspect {
            // Widen the range of the longer pixel side so one unit has the same length on both axes.
            let (w, h) = area.dim_in_pixel();
            let (pw, ph) = (
                w.saturating_sub(94).max(1) as f64,
                h.saturating_sub(100).max(1) as f64,
            );
            let (xs, ys) = (x_hi - x_lo, y_hi - y_lo);
            if xs / pw < ys / ph {
                let grow = 0.5 * (ys / ph * pw - xs);
                (x_lo, x_hi) = (x_lo - grow, x_hi + grow);
            } else {
                let grow = 0.5 * (xs / pw * ph - ys);
                (y_lo, y_hi) = (y_lo - grow, y_hi + grow);
            }
        }
        let legend_at = emptiest_corner(panel, (x_lo, x_hi), (y_lo, y_hi));
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(draw_err)?;
        let (xs, ys) = (x_hi - x_lo, y_hi - y_lo);
        chart
            .configure_mesh()
            .x_desc(panel.x_label)
            .y_desc(panel.y_label)
            .x_label_formatter(&|x| linear_label(*x, xs))
            .y_label_formatter(&|y| linear_label(*y, ys))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        for s in &panel.series {
            let color = s.color;
            let style = color.stroke_width(2);
            let anno = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(s.points.iter().copied(), 8, 5, style))
                    .map_err(draw_err)?
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), style))
                    .map_err(draw_err)?
            };
            anno.label(s.label.as_str()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
            if !s.dashed {
                if let Some(&p0) = s.points.first() {
                    chart
                        .draw_series([Circle::new(p0, 4, color.filled())])
                        .map_err(draw_err)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)
}
