//! `repro tf-svm --only multi-token`: the multi_token_converge notebook (spec §4.4). Writes
//! `multi_token.json`, `summary.csv` (per d), `curves.csv` (mean 1 − corr per snapshot),
//! `instances.csv` (the scatter), and two figures like the notebook's rows: `curves.png` (1 − mean
//! corr vs iteration per d, log y, for SVMeq, W_dir and 1token) and `scatter.png` (largest masked
//! probability vs 1 − corr(SVMeq), one point per instance).

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::tf_svm::multi_token::{self, MultiTokenConfig, MultiTokenResult};
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, Style, XyPanel};
use crate::plot::PALETTE;

pub struct MultiToken;

impl Experiment for MultiToken {
    fn name(&self) -> &'static str {
        "multi-token"
    }

    fn title(&self) -> &'static str {
        "multi_token_converge (§4.4): ReLU head, W-NGD vs the SVM-equivalence W_fin + R·W_dir"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let config = if quick {
            MultiTokenConfig::quick()
        } else {
            MultiTokenConfig::full()
        };
        let Some(result) = multi_token::run_with(&config, |done, total| step.advance(done, total))?
        else {
            return Err(step.interrupted());
        };
        let write = |name: &str, text: &str| attnsvm::data::npy::write_text(&dir.join(name), text);
        write("multi_token.json", &result.to_json())?;
        write("summary.csv", &result.summary_csv())?;
        write("curves.csv", &result.curves_csv())?;
        write("instances.csv", &result.instances_csv())?;
        let width = 480 * result.dims.len().max(1) as u32;
        plot_xy(
            dir,
            "curves",
            "1 − mean corr(W_k, prediction) vs iteration (ReLU head, n = 3, T = 4)",
            &curves(&result),
            1,
            (width, 480),
        )?;
        plot_xy(
            dir,
            "scatter",
            "largest masked probability vs 1 − corr(W_final, W^SVMeq), one point per instance",
            &scatter(&result),
            1,
            (width, 480),
        )?;
        Ok(result.claims())
    }
}

fn curves(result: &MultiTokenResult) -> Vec<XyPanel> {
    result
        .dims
        .iter()
        .map(|d| {
            let iters: Vec<f64> = d
                .instances
                .first()
                .map(|i| i.snapshots.iter().map(|s| s.iter as f64).collect())
                .unwrap_or_default();
            let mean = |k: usize, which: usize| {
                d.mean_at(k, |s| match which {
                    0 => s.one_minus_corr_svmeq,
                    1 => s.one_minus_corr_dir,
                    _ => s.one_minus_corr_one_token,
                })
                .log10()
            };
            let title = format!("d = {} ({} instances)", d.d, d.instances.len());
            let mut panel = XyPanel::new(title, "iteration", "1 − corr", false, true);
            for (which, label) in ["W^SVMeq", "W^mm (W_dir)", "W^1token"].iter().enumerate() {
                let points = iters
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| (x, mean(k, which)))
                    .filter(|p| p.1.is_finite())
                    .collect();
                panel.add(*label, points, PALETTE[which], Style::LinePoints);
            }
            panel
        })
        .collect()
}

fn scatter(result: &MultiTokenResult) -> Vec<XyPanel> {
    result
        .dims
        .iter()
        .map(|d| {
            let points = d
                .instances
                .iter()
                .map(|i| {
                    let l = i.last();
                    (l.max_masked_prob.log10(), l.one_minus_corr_svmeq.log10())
                })
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            let title = format!("d = {}", d.d);
            let mut panel = XyPanel::new(
                title,
                "largest masked probability",
                "1 − corr(W, W^SVMeq)",
                true,
                true,
            );
            panel.add("instances", points, PALETTE[0], Style::Points);
            panel
        })
        .collect()
}
