//! `repro max-margin`: the experiments of "Max-Margin Token Selection in Attention Mechanism"
//! (spec `tf-as-svm.md` §4.6–4.9), one module each; each runs a library experiment
//! (`attnsvm::experiments::max_margin`), writes its tables and figures, and returns its claims.
//!
//! | experiment | writes |
//! |---|---|
//! | `svm-values` | `svm_values.json`, `svm_values.csv` |
//! | `single-input` | `single_input.json`, `trajectories.csv`, `paths`, `softmax`, `corr` (PNG + SVG) |
//! | `multi-input` | `multi_input.json`, `trajectories.csv`, `paths`, `ngd_vs_gd`, `corr` |
//! | `joint` | `joint.json`, `trajectories.csv`, `paths` (p, v and the rays; probabilities), `corr` |
//! | `loss-dependence` | `loss_dependence.json`, `trajectories.csv`, `paths`, `corr` |

mod common;
mod joint;
mod loss;
mod multi;
mod single;
mod values;

use super::suite::Experiment;

/// The suite, in report order.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(values::SvmValues),
        Box::new(single::SingleInput),
        Box::new(multi::MultiInput),
        Box::new(joint::Joint),
        Box::new(loss::LossDependence),
    ]
}
