//! `single-input` (spec §4.6, check 11): paths of p from six inits toward the global or the local
//! max-margin direction.

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::max_margin::single_input::{single_input, INITS};
use attnsvm::experiments::Claim;

use super::common::*;
use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, XyPanel};
use crate::plot::plot_panels;

pub struct SingleInput;

impl Experiment for SingleInput {
    fn name(&self) -> &'static str {
        "single-input"
    }

    fn title(&self) -> &'static str {
        "one input: global vs local convergence of p, and which α is locally optimal (§4.6, check 11)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let r = single_input(quick)?;
        write_result_json(&dir.join("single_input.json"), &r)?;
        let mut runs = Vec::new();
        for c in &r.cases {
            for (k, t) in c.runs.iter().enumerate() {
                runs.push((format!("g_converge={} y0={}", c.g_converge, INITS[k]), t));
            }
        }
        write_runs_csv(&dir.join("trajectories.csv"), &runs)?;

        let titles = [
            "g_converge = true: one basin",
            "g_converge = false: two basins",
        ];
        let mut panels = Vec::new();
        for (c, title) in r.cases.iter().zip(titles) {
            let mut series: Vec<_> = c
                .runs
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    path(
                        format!("p0 = (0, {})", INITS[k]),
                        t,
                        false,
                        (0, 1),
                        color(k),
                    )
                })
                .collect();
            let len = reach(&series);
            series.push(ray(
                "p_mm global (α = 1)",
                &c.p_global.solution,
                (0, 1),
                len,
                REF,
            ));
            series.push(ray(
                "p_mm local (α = 2)",
                &c.p_local.solution,
                (0, 1),
                len,
                GRAY,
            ));
            panels.push(XyPanel {
                equal_aspect: true,
                series,
                ..XyPanel::new(title, "p[0]", "p[1]", false, false)
            });
        }
        plot_xy(
            dir,
            "paths",
            "NGD paths of p (first 200 steps) and the SVM rays",
            &panels,
            1,
            SIZE2,
        )?;

        let f = &r.cases[1];
        let softmax = XyPanel {
            series: f
                .runs
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    curve(format!("p0 = (0, {})", INITS[k]), t, color(k), |x| {
                        x.prob_selected
                    })
                })
                .collect(),
            ..XyPanel::new(
                "g_converge = false: softmax on token 1 (global)",
                "step",
                "softmax probability",
                false,
                false,
            )
        };
        let maxp = XyPanel {
            series: f
                .runs
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    curve(format!("p0 = (0, {})", INITS[k]), t, color(k), |x| {
                        x.prob_max
                    })
                })
                .collect(),
            ..XyPanel::new(
                "g_converge = false: largest softmax probability",
                "step",
                "max_t s_t",
                false,
                false,
            )
        };
        plot_xy(
            dir,
            "softmax",
            "attention on the tokens (first 200 steps)",
            &[softmax, maxp],
            1,
            SIZE2,
        )?;

        let corr = |ci: usize| {
            let c = &r.cases[ci];
            c.runs
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    // Each init against the direction of its basin (local for y0 ≤ −1 when g_converge = false).
                    let which = usize::from(!c.g_converge && INITS[k] <= -1.0);
                    one_minus_corr(format!("p0 = (0, {})", INITS[k]), t, color(k), move |x| {
                        x.one_minus_corr_p[which]
                    })
                })
                .collect()
        };
        plot_panels(
            dir,
            "corr",
            "directional convergence: 1 − corr(p, p_mm of the basin)",
            &[
                corr_panel("g_converge = true (global)", corr(0)),
                corr_panel("g_converge = false (y0 ≤ −1: local)", corr(1)),
            ],
            SIZE2,
        )?;
        Ok(r.claims())
    }
}
