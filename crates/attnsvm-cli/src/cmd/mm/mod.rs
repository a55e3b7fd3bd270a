//! `repro max-margin`: the experiments of "Max-Margin Token Selection in Attention Mechanism"
//! (spec `tf-as-svm.md` §4.6–4.9), one module each; each runs a library experiment
//! (`attnsvm::experiments::max_margin`), writes its tables and figures, and returns its claims.

use super::suite::Experiment;

/// The suite, in report order.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    vec![]
}
