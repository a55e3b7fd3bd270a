//! `paths`: regularization paths converge to the SVM of the matching norm (§2.4).

use std::fmt::Write as _;
use std::path::Path as FsPath;

use anyhow::Result;

use attnsvm::experiments::tf_svm::paths::{run, Path, PathsConfig, PathsResult};
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, Corner, Style, XyPanel};
use crate::output::write_json;
use crate::plot::PALETTE;

pub struct Paths;

impl Experiment for Paths {
    fn name(&self) -> &'static str {
        "paths"
    }

    fn title(&self) -> &'static str {
        "regularization paths: Frobenius, nuclear and (K,Q) balls, and the local (cone) path (§2.4)"
    }

    fn run(&self, quick: bool, dir: &FsPath, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let res = run(&PathsConfig::new(quick))?;
        write_json(&dir.join("result.json"), &res)?;
        attnsvm::data::npy::write_text(&dir.join("paths.csv"), &csv(&res))?;
        plot_xy(
            dir,
            "figure",
            "regularization paths: 1 − corr with the SVM direction against the radius R",
            &panels(&res),
            1,
            (1000, 500),
        )?;
        Ok(res.claims())
    }
}

fn all(res: &PathsResult) -> Vec<(&str, &Path)> {
    let mut v = vec![("vis1", &res.fro), ("vis1", &res.nuc), ("vis1", &res.kq)];
    if let Some(l) = &res.local {
        v.push(("local", &l.cone));
        v.push(("local", &l.global));
    }
    v
}

fn csv(res: &PathsResult) -> String {
    let mut s =
        String::from("instance,path,radius,solved,residual,loss,corr_fro,corr_nuc,selected\n");
    for (inst, p) in all(res) {
        for q in &p.points {
            let sel: Vec<String> = q.selected.iter().map(|x| x.to_string()).collect();
            let _ = writeln!(
                s,
                "{inst},{},{:e},{},{:e},{:e},{:.12},{:.12},{}",
                p.name,
                q.radius,
                q.solved,
                q.residual,
                q.loss,
                q.corr_fro,
                q.corr_nuc,
                sel.join(" ")
            );
        }
    }
    s
}

fn curve(p: &Path, nuc: bool) -> Vec<(f64, f64)> {
    p.points
        .iter()
        .map(|q| {
            let c = if nuc { q.corr_nuc } else { q.corr_fro };
            (q.radius.log10(), (1.0 - c).max(1e-16).log10())
        })
        .collect()
}

fn panels(res: &PathsResult) -> Vec<XyPanel> {
    let mut g = XyPanel::new("vis1: global paths", "radius R", "1 − corr", true, true);
    g.add(
        "Frobenius ball vs W^mm",
        curve(&res.fro, false),
        PALETTE[0],
        Style::LinePoints,
    );
    g.add(
        "Frobenius ball vs W^mm_⋆",
        curve(&res.fro, true),
        PALETTE[0],
        Style::Dashed,
    );
    g.add(
        "nuclear ball vs W^mm_⋆",
        curve(&res.nuc, true),
        PALETTE[1],
        Style::LinePoints,
    );
    g.add(
        "(K,Q) ball vs W^mm_⋆",
        curve(&res.kq, true),
        PALETTE[2],
        Style::LinePoints,
    );
    g.add(
        "(K,Q) ball vs W^mm",
        curve(&res.kq, false),
        PALETTE[2],
        Style::Dashed,
    );
    g.legend = Corner::LowerRight;
    let mut panels = vec![g];
    if let Some(l) = &res.local {
        let mut p = XyPanel::new(
            format!(
                "local path (seed {}): cone around W^mm(α̂), α̂ locally optimal",
                l.seed
            ),
            "radius R",
            "1 − corr",
            true,
            true,
        );
        p.add(
            "cone path vs W^mm(α̂)",
            curve(&l.cone, false),
            PALETTE[3],
            Style::LinePoints,
        );
        p.add(
            "global path vs W^mm(α̂)",
            curve(&l.global, false),
            PALETTE[4],
            Style::Dashed,
        );
        p.add(
            "global path vs W^mm(opt)",
            curve(&l.global, true),
            PALETTE[4],
            Style::LinePoints,
        );
        p.legend = Corner::LowerRight;
        panels.push(p);
    }
    panels
}
