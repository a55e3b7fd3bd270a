//! `repro tf-svm`: the experiments of "Transformers as Support Vector Machines" (spec
//! `tf-as-svm.md` §4.1–4.5), one module each; each runs a library experiment
//! (`attnsvm::experiments::tf_svm`), writes its tables and figures, and returns its claims.

mod local;
mod multi_token;
mod paths;
mod rank;
mod vis;

use attnsvm::experiments::tf_svm::vis::Fixture;

use super::suite::Experiment;

/// The suite, in report order.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(vis::Vis(Fixture::Vis1)),
        Box::new(vis::Vis(Fixture::Vis2)),
        Box::new(local::Local),
        Box::new(multi_token::MultiToken),
        Box::new(rank::Rank),
        Box::new(paths::Paths),
    ]
}
