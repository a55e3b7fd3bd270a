//! The trajectory plot of a run: three panels against `iteration + 1` on a log axis (iteration 0
//! cannot sit on a log axis):
//!
//! 1. the loss, on a log axis drawn from the `log10_loss` column, so a loss that underflows f64
//!    (the normal regime once the softmax saturates) still plots (a linear axis of `loss` for the
//!    correlation loss, which can be negative);
//! 2. `‖W‖_F`;
//! 3. `1 − corr(W, reference)` on a log axis when the run had a reference, else the attention
//!    mass left off the top tokens, `1 − min_i max_t s_it` (from `log10_max_off_mass`), on a log axis.
//!
//! Log axes are drawn as linear axes of `log10` values with tick labels `10^y`, which keeps values
//! below 1e-308 representable. Text uses the embedded DejaVu Sans (no system font library).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::bad_input;
use crate::output::write_atomically;

pub(crate) const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1500, 480);

/// The columns of `trace.csv` a plot needs; empty fields are `None`.
pub struct Trace {
    columns: HashMap<String, Vec<Option<f64>>>,
}

impl Trace {
    /// Read a `trace.csv` written by `attnsvm train`.
    pub fn read(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(bad_input!(
                "{}: no such file (is this a run directory?)",
                path.display()
            ));
        }
        let bad = |what: String| bad_input!("{}: {what}", path.display());
        let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut columns: Vec<Vec<Option<f64>>> = vec![Vec::new(); headers.len()];
        for (row, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            for (k, field) in record.iter().enumerate() {
                let value = if field.is_empty() {
                    None
                } else {
                    Some(field.parse::<f64>().map_err(|_| {
                        bad(format!(
                            "line {}: column {}: '{field}' is not a number",
                            row + 2,
                            headers[k]
                        ))
                    })?)
                };
                columns[k].push(value);
            }
        }
        let rows = columns.first().map_or(0, Vec::len);
        let trace = Trace {
            columns: headers.into_iter().zip(columns).collect(),
        };
        for name in ["iter", "loss", "w_norm"] {
            if !trace.columns.contains_key(name) {
                return Err(bad(format!("no column '{name}'")));
            }
        }
        if rows == 0 {
            return Err(bad("no records".into()));
        }
        Ok(trace)
    }

    /// `(iter + 1, f(value))` for every record where the column has a value and `f` is finite.
    fn series(&self, name: &str, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        let (Some(iter), Some(col)) = (self.columns.get("iter"), self.columns.get(name)) else {
            return Vec::new();
        };
        iter.iter()
            .zip(col)
            .filter_map(|(i, v)| Some((i.as_ref()? + 1.0, f((*v)?))))
            .filter(|&(x, y)| x.is_finite() && x >= 1.0 && y.is_finite())
            .collect()
    }
}

/// One curve of a panel.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// One panel: curves of points `(iteration + 1, y)`, where `y` is `log10` of the value when `log_y`.
pub struct Panel {
    pub title: &'static str,
    pub y_label: &'static str,
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// Colours for several curves (matplotlib's tab10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const TAB_BLUE: RGBColor = RGBColor(31, 119, 180);
const TAB_ORANGE: RGBColor = RGBColor(255, 127, 14);

fn one(label: &'static str, points: Vec<(f64, f64)>) -> Vec<Series> {
    vec![Series {
        label: label.to_string(),
        points,
        color: TAB_BLUE,
    }]
}

fn panels(trace: &Trace) -> [Panel; 3] {
    let log10_loss = trace.series("log10_loss", |v| v);
    let loss = if log10_loss.is_empty() {
        Panel {
            title: "training loss L",
            y_label: "loss",
            log_y: false,
            series: one("L", trace.series("loss", |v| v)),
        }
    } else {
        let mut series = one("L", log10_loss);
        // With a fixed linear head the infimum L* is known: L − L* shows the convergence that the
        // plateau of L hides.
        let excess = trace.series("log10_excess_loss", |v| v);
        if !excess.is_empty() {
            series.push(Series {
                label: "L − L*".to_string(),
                points: excess,
                color: TAB_ORANGE,
            });
        }
        Panel {
            title: "training loss (log scale)",
            y_label: "loss",
            log_y: true,
            series,
        }
    };
    let w_norm = Panel {
        title: "Frobenius norm of W",
        y_label: "‖W‖_F",
        log_y: false,
        series: one("‖W‖_F", trace.series("w_norm", |v| v)),
    };
    let has_corr = trace
        .columns
        .get("one_minus_corr")
        .is_some_and(|c| c.iter().any(Option::is_some));
    let third = if has_corr {
        let positive_log10 = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
        Panel {
            title: "1 − corr(W, reference) (log scale)",
            y_label: "1 − corr",
            log_y: true,
            series: one("1 − corr", trace.series("one_minus_corr", positive_log10)),
        }
    } else {
        Panel {
            title: "attention off the top tokens (log scale)",
            y_label: "1 − min_i max_t s_it",
            log_y: true,
            series: one(
                "1 − min max-prob",
                trace.series("log10_max_off_mass", |v| v),
            ),
        }
    };
    [loss, w_norm, third]
}

/// `10^y` as a short label with two significant digits: `0.79`, `1`, `1300`, `1e-12`,
/// `3.2e-5001` (plain decimals for 1e-3 … 1e3).
pub fn pow10_label(y: f64) -> String {
    let mut e = y.floor();
    let mut m = 10f64.powf(y - e);
    if m >= 9.95 {
        (m, e) = (1.0, e + 1.0);
    }
    if (-3.0..=3.0).contains(&e) {
        let decimals = (1.0 - e).max(0.0) as usize;
        let text = format!("{:.*}", decimals, m * 10f64.powi(e as i32));
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    } else if m < 1.05 {
        format!("1e{e}")
    } else {
        format!("{m:.1}e{e}")
    }
}

/// `y` on an axis spanning `span`, with the digits that distinguish its ticks and no float noise
/// (`-0.2`, not `-0.19999999999999996`).
pub fn linear_label(y: f64, span: f64) -> String {
    let decimals = (2.0 - span.log10().floor()).clamp(0.0, 12.0) as usize;
    let text = format!("{y:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// `[lo, hi]` of the values of all series, padded; a flat series gets a band around it.
fn y_range(panel: &Panel) -> (f64, f64) {
    let ys = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
    };
    let lo = ys().fold(f64::INFINITY, f64::min);
    let hi = ys().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let min_span = if panel.log_y {
        1.0
    } else {
        1e-9f64.max(hi.abs() * 1e-6)
    };
    if span < min_span {
        let mid = 0.5 * (lo + hi);
        let half = if panel.log_y {
            0.5
        } else {
            (0.1 * mid.abs()).max(0.5)
        };
        return (mid - half, mid + half);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

pub fn draw_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
) -> Result<()> {
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root
        .titled(title, ("sans-serif", 22).into_font().color(&BLACK))
        .map_err(draw_err)?;
    let x_max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0)))
        .fold(10.0, f64::max);
    for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let (y_lo, y_hi) = y_range(panel);
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d((1f64..x_max * 1.1).log_scale(), y_lo..y_hi)
            .map_err(draw_err)?;
        let y_fmt = |y: &f64| {
            if panel.log_y {
                pow10_label(*y)
            } else {
                linear_label(*y, y_hi - y_lo)
            }
        };
        chart
            .configure_mesh()
            .x_desc("iteration + 1")
            .y_desc(panel.y_label)
            .x_label_formatter(&|x| format!("{x}"))
            .y_label_formatter(&y_fmt)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        if panel.series.iter().all(|s| s.points.is_empty()) {
            let style = ("sans-serif", 16)
                .into_font()
                .color(&RGBColor(120, 120, 120));
            let (w, h) = area.dim_in_pixel();
            area.draw_text("no data", &style, (w as i32 / 2 - 25, h as i32 / 2))
                .map_err(draw_err)?;
            continue;
        }
        for s in &panel.series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(draw_err)?;
        }
        if panel.series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)
}

/// Register the embedded font as "sans-serif" (idempotent).
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font cannot be read"))
}

/// Plot `run_dir/trace.csv` into `run_dir/trace.png` and `run_dir/trace.svg`; return their paths.
/// `name` is the run's name in the title (its final path when `run_dir` is a staging directory).
pub fn plot_run(run_dir: &Path, name: &Path) -> Result<[PathBuf; 2]> {
    let trace = Trace::read(&run_dir.join("trace.csv"))?;
    let title = format!("training trajectory: {}", name.display());
    plot_panels(run_dir, "trace", &title, &panels(&trace), SIZE)
}

/// A figure that can draw itself on any plotters backend (PNG and SVG alike).
pub trait Figure {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Write `fig` to `dir/stem.png` and `dir/stem.svg`, each atomically; return their paths.
pub fn write_figure(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    fig: &impl Figure,
) -> Result<[PathBuf; 2]> {
    register_font()?;
    let (png, svg) = (
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.svg")),
    );
    write_atomically(&png, |tmp| {
        fig.draw_on(&BitMapBackend::new(tmp, size).into_drawing_area())
    })?;
    write_atomically(&svg, |tmp| {
        let mut text = String::new();
        fig.draw_on(&SVGBackend::with_string(&mut text, size).into_drawing_area())?;
        attnsvm::data::npy::write_text(tmp, &text)?;
        Ok(())
    })?;
    Ok([png, svg])
}

struct PanelFigure<'a> {
    title: &'a str,
    panels: &'a [Panel],
}

impl Figure for PanelFigure<'_> {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw(root, self.title, self.panels)
    }
}

/// Draw `panels` side by side into `dir/stem.png` and `dir/stem.svg`; return their paths.
pub fn plot_panels(
    dir: &Path,
    stem: &str,
    title: &str,
    panels: &[Panel],
    size: (u32, u32),
) -> Result<[PathBuf; 2]> {
    write_figure(dir, stem, size, &PanelFigure { title, panels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_labels_are_short_and_exact() {
        let cases = [
            (0.0, "1"),
            (-2.0, "0.01"),
            (3.0, "1000"),
            (0.79f64.log10(), "0.79"),
            (1300f64.log10(), "1300"),
            (-12.0, "1e-12"),
            (-5000.5, "3.2e-5001"),
            (-0.999_999_9, "0.1"),
            (-4.000_000_1, "1e-4"),
        ];
        for (y, want) in cases {
            assert_eq!(pow10_label(y), want, "10^{y}");
        }
    }

    #[test]
    fn linear_labels_have_no_float_noise() {
        assert_eq!(linear_label(-0.19999999999999996, 1.0), "-0.2");
        assert_eq!(linear_label(35.0, 40.0), "35");
        assert_eq!(linear_label(-1e-17, 0.5), "0");
        assert_eq!(linear_label(0.0012, 0.004), "0.0012");
    }
}
