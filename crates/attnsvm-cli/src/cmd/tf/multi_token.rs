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
use crate::plot::{plot_styled_panels, Legend, Panel, Series, Style, XAxis, PALETTE};

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
        let (panels, styles) = curves(&result);
        plot_styled_panels(
            dir,
            "curves",
            "1 − mean corr(W_k, prediction) vs iteration (ReLU head, n = 3, T = 4)",
            &panels,
            &styles,
            (width, 480),
        )?;
        let (panels, styles) = scatter(&result);
        plot_styled_panels(
            dir,
            "scatter",
            "largest masked probability vs 1 − corr(W_final, W^SVMeq), one point per instance",
            &panels,
            &styles,
            (width, 480),
        )?;
        Ok(result.claims())
    }
}

fn curves(result: &MultiTokenResult) -> (Vec<Panel>, Vec<Style>) {
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
            let series = ["W^SVMeq", "W^mm (W_dir)", "W^1token"]
                .iter()
                .enumerate()
                .map(|(which, label)| Series {
                    label: label.to_string(),
                    points: iters
                        .iter()
                        .enumerate()
                        .map(|(k, &x)| (x, mean(k, which)))
                        .filter(|p| p.1.is_finite())
                        .collect(),
                    color: PALETTE[which],
                })
                .collect();
            let panel = Panel {
                title: leak(format!("d = {} ({} instances)", d.d, d.instances.len())),
                y_label: "1 − corr",
                log_y: true,
                series,
            };
            let style = Style {
                x: XAxis::Linear,
                x_label: "iteration",
                legend: Legend::UpperRight,
                ..Style::default()
            };
            (panel, style)
        })
        .unzip()
}

fn scatter(result: &MultiTokenResult) -> (Vec<Panel>, Vec<Style>) {
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
            let panel = Panel {
                title: leak(format!("d = {}", d.d)),
                y_label: "1 − corr(W, W^SVMeq)",
                log_y: true,
                series: vec![Series {
                    label: "instances".into(),
                    points,
                    color: PALETTE[0],
                }],
            };
            let style = Style {
                x: XAxis::Log10,
                x_label: "largest masked probability",
                points_only: true,
                ..Style::default()
            };
            (panel, style)
        })
        .unzip()
}

/// Panel titles are `&'static str`; a figure has a handful of them.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
