//! `loss-dependence` (spec §4.9, check 15): the transient of p under ℓ(u) = −u vs the logistic loss.

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::max_margin::loss_dependence::loss_dependence;
use attnsvm::experiments::Claim;
use attnsvm::model::Loss;

use super::common::*;
use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, XyPanel};
use crate::plot::plot_panels;

pub struct LossDependence;

fn loss_name(l: Loss) -> &'static str {
    match l {
        Loss::Corr => "linear",
        Loss::Logistic => "logistic",
        Loss::Exp => "exp",
    }
}

impl Experiment for LossDependence {
    fn name(&self) -> &'static str {
        "loss-dependence"
    }

    fn title(&self) -> &'static str {
        "linear vs logistic loss: both go to p_mm, the transient bends opposite ways (§4.9, check 15)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let r = loss_dependence(quick)?;
        write_result_json(&dir.join("loss_dependence.json"), &r)?;
        let runs: Vec<(String, _)> = r
            .runs
            .iter()
            .map(|x| (format!("{} C={}", loss_name(x.loss), x.c), &x.run))
            .collect();
        write_runs_csv(&dir.join("trajectories.csv"), &runs)?;

        let mut panels = Vec::new();
        let mut corr_panels = Vec::new();
        for (loss, title, ctitle) in [
            (Loss::Corr, "ℓ(u) = −u", "ℓ(u) = −u: 1 − corr(p, p_mm)"),
            (
                Loss::Logistic,
                "logistic loss",
                "logistic: 1 − corr(p, p_mm)",
            ),
        ] {
            let chosen: Vec<_> = r.runs.iter().filter(|x| x.loss == loss).collect();
            let mut series: Vec<_> = chosen
                .iter()
                .enumerate()
                .map(|(k, x)| path(format!("C = {}", x.c), &x.run, false, (0, 1), color(k)))
                .collect();
            let len = reach(&series);
            series.push(ray("p_mm = (1,0,0)", &r.p_mm.solution, (0, 1), len, REF));
            panels.push(XyPanel {
                equal_aspect: true,
                series,
                ..XyPanel::new(title, "p[0]", "p[1]", false, false)
            });
            corr_panels.push(corr_panel(
                ctitle,
                chosen
                    .iter()
                    .enumerate()
                    .map(|(k, x)| {
                        one_minus_corr(format!("C = {}", x.c), &x.run, color(k), |q| {
                            q.one_minus_corr_p[0]
                        })
                    })
                    .collect(),
            ));
        }
        plot_xy(
            dir,
            "paths",
            "paths of p from p0 = 0 (first 200 steps)",
            &panels,
            1,
            SIZE2,
        )?;
        plot_panels(
            dir,
            "corr",
            "directional convergence to p_mm",
            &corr_panels,
            SIZE2,
        )?;
        Ok(r.claims())
    }
}
