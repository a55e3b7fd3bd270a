//! `joint` (spec §4.8, check 14): (v, p) trained together; v → v_mm, p → the relaxed p-SVM.

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::max_margin::joint::joint;
use attnsvm::experiments::Claim;

use super::common::*;
use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, XyPanel};
use crate::plot::plot_panels;

pub struct Joint;

impl Experiment for Joint {
    fn name(&self) -> &'static str {
        "joint"
    }

    fn title(&self) -> &'static str {
        "joint (v, p) training: v → v_mm and p → the relaxed p-SVM of v's support vectors (§4.8, check 14)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let r = joint(quick)?;
        write_result_json(&dir.join("joint.json"), &r)?;
        let runs: Vec<(String, _)> = r
            .cases
            .iter()
            .map(|c| {
                (
                    if c.tight { "tight" } else { "non-tight" }.to_string(),
                    &c.run,
                )
            })
            .collect();
        write_runs_csv(&dir.join("trajectories.csv"), &runs)?;

        let mut panels = Vec::new();
        let mut probs = Vec::new();
        for (k, c) in r.cases.iter().enumerate() {
            let name = if c.tight { "tight" } else { "non-tight" };
            let mut series = vec![
                path("p".into(), &c.run, false, (0, 1), BLUE),
                path("v".into(), &c.run, true, (0, 1), color(2)),
            ];
            let len = reach(&series);
            if c.tight {
                series.push(ray("p_mm = p_relax", &c.p_mm.solution, (0, 1), len, REF));
            } else {
                series.push(ray("p_relax", &c.p_relax.solution, (0, 1), len, REF));
                series.push(ray("p_mm", &c.p_mm.solution, (0, 1), len, GRAY));
            }
            series.push(ray("v_mm", &c.v_mm.solution, (0, 1), len, color(4)));
            panels.push(XyPanel {
                equal_aspect: true,
                series,
                ..XyPanel::new(
                    if c.tight {
                        "tight: paths of p and v"
                    } else {
                        "non-tight: paths of p and v"
                    },
                    "coordinate 0",
                    "coordinate 1",
                    false,
                    false,
                )
            });
            probs.push(curve(
                format!("softmax, {name}"),
                &c.run,
                color(2 * k),
                |x| x.prob_selected,
            ));
            probs.push(curve(
                format!("e^(−L), {name}"),
                &c.run,
                color(2 * k + 1),
                |x| (-x.loss).exp(),
            ));
        }
        // e^{−L} is the geometric mean of σ(y_i f_i) for the logistic loss.
        panels.push(XyPanel {
            series: probs,
            ..XyPanel::new(
                "softmax on token 2, and e^(−L) = geometric mean of σ(y f)",
                "step",
                "probability",
                false,
                false,
            )
        });
        plot_xy(
            dir,
            "paths",
            "joint training (first 200 steps)",
            &panels,
            1,
            SIZE3,
        )?;

        let (t, nt) = (&r.cases[0], &r.cases[1]);
        plot_panels(
            dir,
            "corr",
            "directional convergence of p and v",
            &[
                corr_panel(
                    "p",
                    vec![
                        one_minus_corr("tight: p vs p_mm".into(), &t.run, BLUE, |x| {
                            x.one_minus_corr_p[0]
                        }),
                        one_minus_corr("non-tight: p vs p_relax".into(), &nt.run, REF, |x| {
                            x.one_minus_corr_p[1]
                        }),
                        one_minus_corr("non-tight: p vs p_mm".into(), &nt.run, GRAY, |x| {
                            x.one_minus_corr_p[0]
                        }),
                    ],
                ),
                corr_panel(
                    "v",
                    vec![
                        one_minus_corr("tight: v vs v_mm".into(), &t.run, BLUE, |x| {
                            x.one_minus_corr_v[0]
                        }),
                        one_minus_corr("non-tight: v vs v_mm".into(), &nt.run, REF, |x| {
                            x.one_minus_corr_v[0]
                        }),
                    ],
                ),
            ],
            SIZE2,
        )?;
        Ok(r.claims())
    }
}
