//! Heat maps for attention maps: panels on a grid, each a `rows × cols` matrix drawn as cells
//! shaded from white (0) to dark blue (the panel's largest value), with the value printed in
//! cells when they are few. Rows are heads, columns tokens.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plot::{draw_err, write_figure, Figure};

/// One matrix.
pub struct HeatPanel {
    pub title: String,
    pub rows: usize,
    pub cols: usize,
    /// `rows × cols`, row-major, ≥ 0.
    pub values: Vec<f64>,
    pub row_label: String,
    pub col_label: String,
}

struct HeatFigure<'a> {
    title: &'a str,
    panels: &'a [HeatPanel],
    grid_rows: usize,
}

impl Figure for HeatFigure<'_> {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw(root, self.title, self.panels, self.grid_rows)
    }
}

/// Draw `panels` on a grid of `grid_rows` rows into `dir/stem.png` and `dir/stem.svg`.
pub fn plot_heatmaps(
    dir: &Path,
    stem: &str,
    title: &str,
    panels: &[HeatPanel],
    grid_rows: usize,
    size: (u32, u32),
) -> Result<[PathBuf; 2]> {
    let fig = HeatFigure {
        title,
        panels,
        grid_rows,
    };
    write_figure(dir, stem, size, &fig)
}

/// White → dark blue.
fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[HeatPanel],
    grid_rows: usize,
) -> Result<()> {
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root
        .titled(title, ("sans-serif", 22).into_font().color(&BLACK))
        .map_err(draw_err)?;
    let grid_rows = grid_rows.max(1);
    let cols = panels.len().div_ceil(grid_rows).max(1);
    for (area, p) in root.split_evenly((grid_rows, cols)).iter().zip(panels) {
        let (r, c) = (p.rows.max(1), p.cols.max(1));
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.5..c as f64 - 0.5, -0.5..r as f64 - 0.5)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&p.col_label)
            .y_desc(&p.row_label)
            .x_labels(c.min(16))
            .y_labels(r.min(12))
            // Cell k spans [k − ½, k + ½]; rows are drawn top down.
            .x_label_formatter(&|v| format!("{}", v.round() as i64))
            .y_label_formatter(&|v| format!("{}", r as i64 - 1 - v.round() as i64))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        let max = p.values.iter().copied().fold(0.0f64, f64::max).max(1e-300);
        chart
            .draw_series((0..p.rows).flat_map(|i| {
                (0..p.cols).map(move |k| {
                    let v = p.values[i * p.cols + k];
                    // Row 0 on top.
                    let y = (p.rows - 1 - i) as f64;
                    Rectangle::new(
                        [(k as f64 - 0.5, y - 0.5), (k as f64 + 0.5, y + 0.5)],
                        shade(v / max).filled(),
                    )
                })
            }))
            .map_err(draw_err)?;
        if p.rows * p.cols <= 64 {
            chart
                .draw_series((0..p.rows).flat_map(|i| {
                    (0..p.cols).map(move |k| {
                        let v = p.values[i * p.cols + k];
                        let y = (p.rows - 1 - i) as f64;
                        let color = if v / max > 0.5 { WHITE } else { BLACK };
                        Text::new(
                            format!("{v:.2}"),
                            (k as f64 - 0.3, y),
                            ("sans-serif", 11).into_font().color(&color),
                        )
                    })
                }))
                .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)?;
    Ok(())
}
