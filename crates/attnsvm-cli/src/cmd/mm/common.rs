//! What the max-margin experiments share: the trajectory CSV and the figure pieces (2-D paths of a
//! parameter, SVM rays, curves against the step, `1 − corr` on log axes).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::style::RGBColor;

use attnsvm::experiments::max_margin::training::Trajectory;

use crate::figure::{Style, XySeries};
use crate::plot::{Panel, Series, PALETTE};

/// The papers' figures show the first 200 steps of the paths.
pub const PATH_STEPS: usize = 200;

/// Reference rays: black (the predicted direction), gray (the other one).
pub const REF: RGBColor = RGBColor(0, 0, 0);
pub const GRAY: RGBColor = RGBColor(110, 110, 110);
pub const BLUE: RGBColor = RGBColor(31, 119, 180);

/// Figure sizes: two and three panels.
pub const SIZE2: (u32, u32) = (1200, 560);
pub const SIZE3: (u32, u32) = (1650, 540);

/// Write every recorded step of every run: `run, step, p_j.., v_j.., ‖p‖, ‖v‖, prob_selected,
/// prob_max, loss, log10_loss, corr_p_k.., corr_v_k.., one_minus_corr_p_k.., one_minus_corr_v_k..`.
pub fn write_runs_csv(path: &Path, runs: &[(String, &Trajectory)]) -> Result<()> {
    let Some((_, first)) = runs.first() else {
        return Ok(());
    };
    let r0 = first.last();
    let mut s = String::from("run,step");
    (0..r0.p.len()).for_each(|j| {
        let _ = write!(s, ",p{j}");
    });
    (0..r0.v.len()).for_each(|j| {
        let _ = write!(s, ",v{j}");
    });
    s.push_str(",p_norm,v_norm,prob_selected,prob_max,loss,log10_loss");
    (0..r0.corr_p.len()).for_each(|j| {
        let _ = write!(s, ",corr_p{j}");
    });
    (0..r0.corr_v.len()).for_each(|j| {
        let _ = write!(s, ",corr_v{j}");
    });
    (0..r0.corr_p.len()).for_each(|j| {
        let _ = write!(s, ",one_minus_corr_p{j}");
    });
    (0..r0.corr_v.len()).for_each(|j| {
        let _ = write!(s, ",one_minus_corr_v{j}");
    });
    s.push('\n');
    for (name, t) in runs {
        for r in &t.records {
            let _ = write!(s, "{name},{}", r.step);
            for x in r.p.iter().chain(&r.v) {
                let _ = write!(s, ",{x}");
            }
            let log10 = r
                .log_loss
                .map(|l| (l / std::f64::consts::LN_10).to_string())
                .unwrap_or_default();
            let _ = write!(
                s,
                ",{},{},{},{},{},{log10}",
                r.p_norm, r.v_norm, r.prob_selected, r.prob_max, r.loss
            );
            for x in r
                .corr_p
                .iter()
                .chain(&r.corr_v)
                .chain(&r.one_minus_corr_p)
                .chain(&r.one_minus_corr_v)
            {
                let _ = write!(s, ",{x}");
            }
            s.push('\n');
        }
    }
    attnsvm::data::npy::write_text(path, &s)?;
    Ok(())
}

/// The path of coordinates `(a, b)` of `p` (or of `v` when `of_v`) over the first `PATH_STEPS`.
pub fn path(
    label: String,
    t: &Trajectory,
    of_v: bool,
    (a, b): (usize, usize),
    color: RGBColor,
) -> XySeries {
    let points = t
        .records
        .iter()
        .filter(|r| r.step <= PATH_STEPS)
        .map(|r| {
            let x = if of_v { &r.v } else { &r.p };
            (x[a], x[b])
        })
        .collect();
    XySeries {
        label,
        points,
        color,
        style: Style::Trajectory,
    }
}

/// The ray from the origin along `(dir[a], dir[b])`, of length `len`.
pub fn ray(
    label: &str,
    dir: &[f64],
    (a, b): (usize, usize),
    len: f64,
    color: RGBColor,
) -> XySeries {
    let n = (dir[a] * dir[a] + dir[b] * dir[b])
        .sqrt()
        .max(f64::MIN_POSITIVE);
    XySeries {
        label: label.to_string(),
        points: vec![(0.0, 0.0), (len * dir[a] / n, len * dir[b] / n)],
        color,
        style: Style::Dashed,
    }
}

/// The largest `‖(x_a, x_b)‖` on a set of paths (for the ray length).
pub fn reach(series: &[XySeries]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.0.hypot(p.1))
        .fold(1.0, f64::max)
}

/// `f(record)` against the step over the first `PATH_STEPS`.
pub fn curve(
    label: String,
    t: &Trajectory,
    color: RGBColor,
    f: impl Fn(&attnsvm::experiments::max_margin::training::Record) -> f64,
) -> XySeries {
    XySeries {
        label,
        points: t
            .records
            .iter()
            .filter(|r| r.step <= PATH_STEPS)
            .map(|r| (r.step as f64, f(r)))
            .collect(),
        color,
        style: Style::Trajectory,
    }
}

/// `log10(c(record))` against `step + 1` over the whole run, for `c` a `1 − corr` field of the
/// record (a log-log convergence panel; exact zeros are left out).
pub fn one_minus_corr(
    label: String,
    t: &Trajectory,
    color: RGBColor,
    c: impl Fn(&attnsvm::experiments::max_margin::training::Record) -> f64,
) -> Series {
    Series {
        label,
        points: t
            .records
            .iter()
            .map(|r| (r.step as f64 + 1.0, c(r)))
            .filter(|p| p.1 > 0.0)
            .map(|(x, y)| (x, y.log10()))
            .collect(),
        color,
    }
}

/// A log-log panel of `1 − corr`.
pub fn corr_panel(title: &'static str, series: Vec<Series>) -> Panel {
    Panel {
        title,
        y_label: "1 − corr",
        log_y: true,
        series,
    }
}

/// Colour `k` of the palette.
pub fn color(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

/// The result as one-line JSON (the trajectories make pretty-printed JSON several times larger).
pub fn write_result_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string(value)?;
    text.push('\n');
    attnsvm::data::npy::write_text(path, &text)?;
    Ok(())
}
