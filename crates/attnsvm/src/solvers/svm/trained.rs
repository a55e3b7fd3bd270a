//! From a trained attention layer to the theory (spec `tf-as-svm.md` §3.5, §2.3): read the selected
//! tokens off the softmax of `W` (`α̂_i = argmax_t x_itᵀ W z_i`, the largest attention), solve the
//! Att-SVM of `α̂` in the norm that matches the parameterization (Frobenius for `W`, nuclear for
//! `(K, Q)`), test global and local optimality of `α̂`, and correlate `W` with `W^mm(α̂)`.

use faer::Mat;
use serde::{Deserialize, Serialize};

use super::tokens::{selection_report, SelectionReport};
use super::{AttSvm, AttSvmProblem, Layout, Status, SvmSettings, SvmSolution};
use crate::data::{argmax, Instance};
use crate::error::{invalid, Result};

/// What the theory says about a trained `W`.
#[derive(Debug, Clone)]
pub struct TrainedAnalysis {
    /// `α̂_i`, the token with the largest attention in sequence `i`.
    pub selected: Vec<usize>,
    /// The Att-SVM of `α̂` (status, `W^mm(α̂)`, certificate).
    pub solution: SvmSolution,
    /// Global and local optimality of `α̂`.
    pub report: SelectionReport,
    /// `corr(W, W^mm(α̂))` when the Att-SVM is solved.
    pub corr: Option<f64>,
}

/// The scalar summary of a [`TrainedAnalysis`] (for tables and JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedSummary {
    pub selected: Vec<usize>,
    pub status: Status,
    pub globally_optimal: bool,
    pub locally_optimal: bool,
    /// Sequences whose selected token is globally optimal.
    pub optimal_count: usize,
    pub support_tokens: usize,
    pub corr: Option<f64>,
}

impl TrainedAnalysis {
    pub fn summary(&self) -> TrainedSummary {
        TrainedSummary {
            selected: self.selected.clone(),
            status: self.solution.status,
            globally_optimal: self.report.globally_optimal,
            locally_optimal: self.report.locally_optimal_by_margin,
            optimal_count: self
                .report
                .samples
                .iter()
                .filter(|s| s.globally_optimal)
                .count(),
            support_tokens: self.solution.support_by_margin.len(),
            corr: self.corr,
        }
    }
}

/// The tokens with the largest logit `x_itᵀ W z_i` per sequence (the query at
/// `layout.query_position` for self-attention).
pub fn selected_tokens(inst: &Instance, w: &Mat<f64>, layout: Layout) -> Result<Vec<usize>> {
    let d = inst.d;
    if w.shape() != (d, d) {
        return Err(invalid!(
            "W is {}×{}, expected {d}×{d}",
            w.nrows(),
            w.ncols()
        ));
    }
    let z = inst.queries(layout.query_position)?;
    Ok((0..inst.n)
        .map(|i| {
            let wz: Vec<f64> = (0..d)
                .map(|r| (0..d).map(|c| w[(r, c)] * z[i * d + c]).sum())
                .collect();
            let logits: Vec<f64> = inst
                .tokens(i)
                .chunks_exact(d)
                .map(|x| crate::linalg::dot(x, &wz))
                .collect();
            argmax(&logits)
        })
        .collect())
}

/// Analyse a trained `W` (for `(K, Q)` pass `K Qᵀ` and `settings.norm = Nuclear`). Sequence
/// outputs (`layout.seq2seq`) are not supported: there the selection is per query position.
pub fn analyze_trained(
    inst: &Instance,
    w: &Mat<f64>,
    layout: Layout,
    settings: SvmSettings,
) -> Result<TrainedAnalysis> {
    if layout.seq2seq {
        return Err(invalid!(
            "analyze_trained: one selected token per sequence; seq2seq is not supported"
        ));
    }
    let selected = selected_tokens(inst, w, layout)?;
    let problem = AttSvmProblem::att_svm(inst, &selected, layout)?;
    let solution = AttSvm::new(&problem, settings)?.solve();
    let report = selection_report(inst, &problem, &solution)?;
    let corr = (solution.status == Status::Solved).then(|| crate::linalg::corr(w, &solution.w));
    Ok(TrainedAnalysis {
        selected,
        solution,
        report,
        corr,
    })
}
