//! `vis1` / `vis2`: GD paths of W and (K,Q) against the SVM rays (the papers' Figure 1 style), the
//! per-input max-margin separators, and the long run's directional convergence.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::style::RGBColor;

use attnsvm::experiments::tf_svm::vis::{run, Fixture, Run, VisConfig, VisResult};
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, Style, XyPanel};
use crate::output::write_json;
use crate::plot::PALETTE;

pub struct Vis(pub Fixture);

const RED: RGBColor = RGBColor(214, 39, 40);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const GRAY: RGBColor = RGBColor(90, 90, 90);

impl Experiment for Vis {
    fn name(&self) -> &'static str {
        match self.0 {
            Fixture::Vis1 => "vis1",
            Fixture::Vis2 => "vis2",
        }
    }

    fn title(&self) -> &'static str {
        match self.0 {
            Fixture::Vis1 => "visualization1: GD paths of W and (K,Q) vs the Frobenius and nuclear SVM directions (§4.1)",
            Fixture::Vis2 => "visualization2: per-input max-margin separators and saturation-robust NGD (§4.2)",
        }
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let res = run(&VisConfig::new(self.0, quick))?;
        write_json(&dir.join("result.json"), &res)?;
        attnsvm::data::npy::write_text(&dir.join("paths.csv"), &paths_csv(&res))?;
        let mut long = String::from("iter,one_minus_corr\n");
        for (k, c) in &res.long {
            let _ = writeln!(long, "{k},{c:e}");
        }
        attnsvm::data::npy::write_text(&dir.join("long.csv"), &long)?;
        let mut panels = vec![paths_panel(&res, &res.w), paths_panel(&res, &res.kq)];
        if self.0 == Fixture::Vis2 {
            panels.extend((0..res.tokens.len()).map(|i| separator_panel(&res, i)));
        }
        panels.push(corr_panel(&res));
        panels.push(long_panel(&res));
        let title = format!(
            "{}: NGD (η = 0.1) from W = 0 and from Q = 0, K = 0.1·N(0,1)",
            self.name()
        );
        let rows = if panels.len() > 4 { 2 } else { 1 };
        let cols = panels.len().div_ceil(rows) as u32;
        plot_xy(
            dir,
            "figure",
            &title,
            &panels,
            rows,
            (480 * cols, 480 * rows as u32 + 20),
        )?;
        Ok(res.claims())
    }
}

fn paths_csv(res: &VisResult) -> String {
    let mut s = String::from("run,iter,input,wz_x,wz_y,w_norm,corr_fro,corr_nuc\n");
    for r in [&res.w, &res.kq, &res.kq_ridge] {
        for snap in &r.snapshots {
            for (i, p) in snap.wz.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{},{i},{:e},{:e},{:e},{:e},{:e}",
                    r.name, snap.iter, p[0], p[1], snap.w_norm, snap.corr_fro, snap.corr_nuc
                );
            }
        }
    }
    s
}

/// `W_k z_i` of one run and the rays `W^mm z_i` (solid), `W^mm_⋆ z_i` (dashed), scaled to the
/// path's length (the notebooks draw them ×100).
fn paths_panel(res: &VisResult, run: &Run) -> XyPanel {
    let mut p = XyPanel::new(
        format!("{}: W_k z_i and the SVM rays", run.name),
        "1st coordinate",
        "2nd coordinate",
        false,
        false,
    );
    let reach = run
        .snapshots
        .iter()
        .flat_map(|s| s.wz.iter().map(|v| v[0].hypot(v[1])))
        .fold(0.0, f64::max);
    for i in 0..res.tokens.len() {
        let color = if i == 0 { RED } else { BLUE };
        let path = run
            .snapshots
            .iter()
            .map(|s| (s.wz[i][0], s.wz[i][1]))
            .collect();
        p.add(format!("input {}", i + 1), path, color, Style::Line);
        for (rays, style, name) in [
            (&res.rays_fro, Style::Line, "W^mm z"),
            (&res.rays_nuc, Style::Dashed, "W^mm_⋆ z"),
        ] {
            let r = &rays[i];
            let scale = reach / r[0].hypot(r[1]).max(1e-300);
            let label = if i == 0 {
                name.to_string()
            } else {
                String::new()
            };
            p.add(
                label,
                vec![(0.0, 0.0), (r[0] * scale, r[1] * scale)],
                GRAY,
                style,
            );
        }
    }
    p
}

/// The part `[t₀, t₁]` of the line `c + t·u` inside the box `[x₀, x₁] × [y₀, y₁]` (slab method).
fn clip(c: (f64, f64), u: (f64, f64), bx: (f64, f64), by: (f64, f64)) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
    for (ci, ui, (lo, hi)) in [(c.0, u.0, bx), (c.1, u.1, by)] {
        if ui.abs() < 1e-300 {
            if ci < lo || ci > hi {
                return None;
            }
            continue;
        }
        let (a, b) = ((lo - ci) / ui, (hi - ci) / ui);
        t0 = t0.max(a.min(b));
        t1 = t1.min(a.max(b));
    }
    (t0 < t1).then_some((t0, t1))
}

/// Input `i` in the token plane: its tokens (the optimal one larger), the direction of
/// `p_i = W^mm z_i`, and the mid-margin line `p_iᵀx = p_iᵀx_opt − ½`.
fn separator_panel(res: &VisResult, i: usize) -> XyPanel {
    let mut panel = XyPanel::new(
        format!("input {}: tokens and the max-margin separator", i + 1),
        "x₁",
        "x₂",
        false,
        false,
    );
    let toks: Vec<(f64, f64)> = res.tokens[i]
        .chunks_exact(2)
        .map(|x| (x[0], x[1]))
        .collect();
    let opt = res.optimal[i];
    let p = &res.rays_fro[i];
    let pp = p[0] * p[0] + p[1] * p[1];
    let (xo, yo) = toks[opt];
    let (cx, cy) = (xo - p[0] / (2.0 * pp), yo - p[1] / (2.0 * pp));
    let norm = pp.sqrt();
    let (ux, uy) = (-p[1] / norm, p[0] / norm);
    panel.add(
        "p = W^mm z (direction)",
        vec![(cx, cy), (cx + 0.5 * p[0] / norm, cy + 0.5 * p[1] / norm)],
        RED,
        Style::Line,
    );
    let others: Vec<(f64, f64)> = toks
        .iter()
        .enumerate()
        .filter(|(t, _)| *t != opt)
        .map(|(_, &q)| q)
        .collect();
    panel.add("tokens", others, BLUE, Style::Points);
    panel.add("optimal token", vec![toks[opt]], RED, Style::Points);
    let xs = toks.iter().map(|q| q.0);
    let ys = toks.iter().map(|q| q.1);
    let (lo, hi) = (
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
    );
    let (blo, bhi) = (
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
    );
    let (bx, by) = ((lo - 0.5, hi + 0.5), (blo - 0.5, bhi + 0.5));
    panel.x_range = Some(bx);
    panel.y_range = Some(by);
    // plotters clamps each coordinate to the range, which would bend the line: clip it first.
    if let Some((t0, t1)) = clip((cx, cy), (ux, uy), bx, by) {
        let line = vec![(cx + t0 * ux, cy + t0 * uy), (cx + t1 * ux, cy + t1 * uy)];
        panel.series.insert(
            0,
            crate::figure::XySeries {
                label: "separator".into(),
                points: line,
                color: GRAY,
                style: Style::Dashed,
            },
        );
    }
    panel
}

fn corr_panel(res: &VisResult) -> XyPanel {
    let mut p = XyPanel::new(
        "1 − corr with the SVM directions",
        "iteration + 1",
        "1 − corr",
        true,
        true,
    );
    let curve = |r: &Run, nuc: bool| {
        r.snapshots
            .iter()
            .map(|s| {
                (
                    (s.iter as f64 + 1.0).log10(),
                    (1.0 - if nuc { s.corr_nuc } else { s.corr_fro })
                        .max(1e-16)
                        .log10(),
                )
            })
            .collect()
    };
    p.add("W vs W^mm", curve(&res.w, false), PALETTE[0], Style::Line);
    p.add(
        "W vs W^mm_⋆",
        curve(&res.w, true),
        PALETTE[0],
        Style::Dashed,
    );
    p.add(
        "(K,Q) vs W^mm_⋆",
        curve(&res.kq, true),
        PALETTE[1],
        Style::Line,
    );
    p.add(
        "(K,Q) vs W^mm",
        curve(&res.kq, false),
        PALETTE[1],
        Style::Dashed,
    );
    p.add(
        "(K,Q)+ridge vs W^mm_⋆",
        curve(&res.kq_ridge, true),
        PALETTE[2],
        Style::Line,
    );
    p
}

fn long_panel(res: &VisResult) -> XyPanel {
    let mut p = XyPanel::new(
        format!(
            "W-NGD, {} steps: 1 − corr(W_t, W^mm)",
            res.config.long_iters
        ),
        "iteration + 1",
        "1 − corr",
        true,
        true,
    );
    let pts = res
        .long
        .iter()
        .filter(|(_, c)| *c > 0.0)
        .map(|&(k, c)| ((k as f64 + 1.0).log10(), c.log10()))
        .collect();
    p.add("1 − corr", pts, PALETTE[0], Style::LinePoints);
    let x_hi = ((res.config.long_iters + 1) as f64).log10();
    p.add("1e-6", vec![(0.0, -6.0), (x_hi, -6.0)], GRAY, Style::Dashed);
    p
}
