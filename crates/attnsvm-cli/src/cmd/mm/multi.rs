//! `multi-input` (spec §4.7, check 13): n = 3 inputs, six inits, NGD vs GD.

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::max_margin::multi_input::{multi_input, INITS};
use attnsvm::experiments::Claim;

use super::common::*;
use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, XyPanel, XySeries};
use crate::plot::plot_panels;

pub struct MultiInput;

impl Experiment for MultiInput {
    fn name(&self) -> &'static str {
        "multi-input"
    }

    fn title(&self) -> &'static str {
        "three inputs: global convergence of p; NGD grows ‖p‖ linearly, GD logarithmically (§4.7, check 13)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let r = multi_input(quick)?;
        write_result_json(&dir.join("multi_input.json"), &r)?;
        let mut runs = Vec::new();
        for (k, t) in r.ngd.iter().enumerate() {
            runs.push((format!("ngd c={}", INITS[k]), t));
        }
        for (k, t) in r.gd.iter().enumerate() {
            runs.push((format!("gd c={}", INITS[k]), t));
        }
        write_runs_csv(&dir.join("trajectories.csv"), &runs)?;

        let mut panels = Vec::new();
        for (title, set) in [("NGD (η = 0.1)", &r.ngd), ("GD (η = 1)", &r.gd)] {
            let mut series: Vec<XySeries> = set
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    path(
                        format!("p0 = ({}, 0)", INITS[k]),
                        t,
                        false,
                        (0, 1),
                        color(k),
                    )
                })
                .collect();
            let len = reach(&series);
            series.push(ray("p_mm", &r.p_mm.solution, (0, 1), len, REF));
            panels.push(XyPanel {
                equal_aspect: true,
                series,
                ..XyPanel::new(title, "p[0]", "p[1]", false, false)
            });
        }
        plot_xy(
            dir,
            "paths",
            "paths of p (first 200 steps) and the p-SVM ray",
            &panels,
            1,
            SIZE2,
        )?;

        let (ngd, gd) = (&r.ngd[2], &r.gd[2]);
        let prob = XyPanel {
            series: vec![
                curve("NGD".into(), ngd, BLUE, |x| x.prob_selected),
                curve("GD".into(), gd, color(3), |x| x.prob_selected),
            ],
            ..XyPanel::new(
                "mean softmax on the optimal token (p0 = 0)",
                "step",
                "softmax probability",
                false,
                false,
            )
        };
        let norm = XyPanel {
            series: vec![
                curve("NGD".into(), ngd, BLUE, |x| x.p_norm),
                curve("GD".into(), gd, color(3), |x| x.p_norm),
            ],
            ..XyPanel::new("‖p‖ (p0 = 0)", "step", "‖p‖", false, false)
        };
        plot_xy(
            dir,
            "ngd_vs_gd",
            "NGD vs GD (first 200 steps)",
            &[prob, norm],
            1,
            SIZE2,
        )?;
        let series = r
            .ngd
            .iter()
            .enumerate()
            .map(|(k, t)| {
                one_minus_corr(format!("p0 = ({}, 0)", INITS[k]), t, color(k), |x| {
                    x.one_minus_corr_p[0]
                })
            })
            .collect();
        let gd_series =
            r.gd.iter()
                .enumerate()
                .map(|(k, t)| {
                    one_minus_corr(format!("p0 = ({}, 0)", INITS[k]), t, color(k), |x| {
                        x.one_minus_corr_p[0]
                    })
                })
                .collect();
        plot_panels(
            dir,
            "corr",
            "directional convergence: 1 − corr(p, p_mm)",
            &[
                corr_panel("NGD", series),
                corr_panel("GD (η = 1)", gd_series),
            ],
            SIZE2,
        )?;
        Ok(r.claims())
    }
}
