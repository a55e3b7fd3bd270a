//! Token analysis (spec `tf-as-svm.md` §2.1, §2.3, §2.5):
//!
//! ```text
//! γ_it  = y_i vᵀ x_it                                         token score
//! opt_i = argmax_t γ_it                                       globally optimal token(s)
//! T_i   = { t ≠ α_i : (x_{iα_i} − x_it)ᵀ W^mm_α z_i = 1 }     support tokens of a solved Att-SVM
//! α is locally optimal  ⇔  γ_{iα_i} > γ_it  for every i and every t ∈ T_i
//! ```
//!
//! Scores are per *sample* of the Att-SVM (see [`Layout`]): a sample sees the tokens up to its
//! query position under causal masking, all `T` otherwise. Sequence-to-sequence samples use the
//! label of their sequence (instances carry one label per sequence), so the per-position score of
//! §2.5 is `γ_it = y_i vᵀx_it` restricted to the visible tokens.
//!
//! Ties: token `t` ties with the best score when `max_τ γ_iτ − γ_it ≤ 1e-12 · max_τ |γ_iτ|` over the
//! visible tokens (the scale makes the test relative, and exact when every score is 0). The same
//! tolerance decides "beats": `γ_{iα_i} > γ_it` must hold by more than it, so two scores equal up
//! to rounding (the equal-score condition of §2.4) count as *not* beaten.
//!
//! Support tokens are read off a solution both ways (§2.3): by margin (`⟨W, A_k⟩ ≤ 1 + tol`) and by
//! dual (`λ_k > tol · max λ`); local optimality is reported for each.

use serde::Serialize;

use super::problem::{AttSvmProblem, Layout};
use super::{Status, SvmSolution};
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::dot;

/// Relative tolerance of score ties (see the module docs).
pub const TIE_TOL: f64 = 1e-12;

/// The scores one sample (query) of the Att-SVM sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleScores {
    pub sequence: usize,
    /// Query position (self-attention), `None` for cross-attention.
    pub position: Option<usize>,
    /// `γ_it` of the visible tokens `t = 0..len`.
    pub scores: Vec<f64>,
    /// Every visible token whose score ties with the best one, ascending.
    pub optimal: Vec<usize>,
}

/// The samples of `inst` under `layout`, in the order of [`AttSvmProblem::att_svm`] (sequence-major,
/// then query position), with their token scores and globally optimal tokens.
pub fn sample_scores(inst: &Instance, layout: Layout) -> Result<Vec<SampleScores>> {
    let positions = positions(inst, layout)?;
    let mut out = Vec::with_capacity(inst.n * positions.len());
    for i in 0..inst.n {
        for &position in &positions {
            let len = visible(inst.t, position, layout.causal);
            let scores = scores_of(inst, i, len);
            let optimal = optimal_tokens(&scores);
            out.push(SampleScores {
                sequence: i,
                position,
                scores,
                optimal,
            });
        }
    }
    Ok(out)
}

/// The globally optimal selection `opt` as [`AttSvmProblem::att_svm`] takes it: one entry per
/// sequence, or `n·T` (row-major, `α_ik` = the best token visible from position `k`) with
/// `layout.seq2seq`. On ties the first optimal token is taken.
pub fn optimal_selection(inst: &Instance, layout: Layout) -> Result<Vec<usize>> {
    Ok(sample_scores(inst, layout)?
        .iter()
        .map(|s| s.optimal[0])
        .collect())
}

/// The indices whose score ties with the maximum of `scores` (relative tolerance [`TIE_TOL`]),
/// ascending. Empty only for an empty slice.
pub fn optimal_tokens(scores: &[f64]) -> Vec<usize> {
    let Some(best) = scores.iter().copied().reduce(f64::max) else {
        return Vec::new();
    };
    let scale = scale_of(scores);
    (0..scores.len())
        .filter(|&t| !beats(best, scores[t], scale))
        .collect()
}

/// A selected token whose score does not beat one of its support tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub sample: usize,
    pub sequence: usize,
    pub position: Option<usize>,
    pub selected: usize,
    /// The support token that is not beaten.
    pub token: usize,
    pub gamma_selected: f64,
    pub gamma_token: f64,
    /// `token` is a support token by margin / by dual.
    pub by_margin: bool,
    pub by_dual: bool,
}

/// What one sample of a solved Att-SVM says about its selected token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleReport {
    pub sample: usize,
    pub sequence: usize,
    pub position: Option<usize>,
    pub selected: usize,
    /// `γ_it` of the visible tokens.
    pub scores: Vec<f64>,
    /// The globally optimal tokens (ties included).
    pub optimal: Vec<usize>,
    /// `selected ∈ optimal`.
    pub globally_optimal: bool,
    /// Support tokens `T_i` (ascending), read off the margins and off the duals.
    pub support_by_margin: Vec<usize>,
    pub support_by_dual: Vec<usize>,
}

/// Global and local optimality of a selection α, given its solved Att-SVM (spec §2.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectionReport {
    /// The status of the solve: `Solved` means α is feasible, `Infeasible` that it is not.
    pub status: Status,
    /// `Some(true)` when solved, `Some(false)` when infeasible, `None` when the solve did not decide.
    pub feasible: Option<bool>,
    /// Every sample selects a globally optimal token (ties allowed).
    pub globally_optimal: bool,
    /// The solve is `Solved` and every selected token beats its support tokens by margin.
    pub locally_optimal_by_margin: bool,
    /// The solve is `Solved` and every selected token beats its support tokens by dual.
    pub locally_optimal_by_dual: bool,
    /// Support tokens (either definition) that the selected token does not beat.
    pub violations: Vec<Violation>,
    pub samples: Vec<SampleReport>,
}

/// Global and local optimality of the selection of `problem` (built by
/// [`AttSvmProblem::att_svm`] from `inst`), given its solution `sol`. A pure function of the three.
///
/// Local optimality presumes a feasible α and its max-margin solution, so both `locally_optimal_*`
/// are `false` unless `sol.status == Solved`; the support sets and violations are reported whatever
/// the status (for `MaxIterations` they are those of the best point so far; empty when infeasible).
pub fn selection_report(
    inst: &Instance,
    problem: &AttSvmProblem,
    sol: &SvmSolution,
) -> Result<SelectionReport> {
    let m = problem.n_constraints();
    if problem.d != inst.d || problem.t != inst.t || problem.tokens() != &inst.x[..] {
        return Err(invalid!(
            "selection report: the Att-SVM was not built from this instance"
        ));
    }
    if sol.duals.len() != m || sol.margins.len() != m {
        return Err(invalid!(
            "selection report: the solution has {} duals and {} margins for {m} constraints",
            sol.duals.len(),
            sol.margins.len()
        ));
    }
    let samples = problem.samples();
    for (k, c) in problem.constraints().iter().enumerate() {
        if c.equality || c.plus as usize != samples[c.sample as usize].selected {
            return Err(invalid!(
                "selection report: constraint {k} is not an Att-SVM constraint \
                 (x_selected − x_t)ᵀ W z ≥ r"
            ));
        }
    }
    let mut by_margin = vec![Vec::new(); samples.len()];
    let mut by_dual = vec![Vec::new(); samples.len()];
    for (sets, support) in [
        (&mut by_margin, &sol.support_by_margin),
        (&mut by_dual, &sol.support_by_dual),
    ] {
        for &k in support {
            let c = problem.constraints().get(k).ok_or_else(|| {
                invalid!("selection report: support constraint {k} is out of range 0..{m}")
            })?;
            sets[c.sample as usize].push(c.minus as usize);
        }
        sets.iter_mut().for_each(|s| {
            s.sort_unstable();
            s.dedup();
        });
    }

    let mut reports = Vec::with_capacity(samples.len());
    let mut violations = Vec::new();
    for (s, smp) in samples.iter().enumerate() {
        let scores = scores_of(inst, smp.sequence, smp.len);
        let optimal = optimal_tokens(&scores);
        let scale = scale_of(&scores);
        let g_sel = scores[smp.selected];
        let mut support: Vec<usize> = by_margin[s].iter().chain(&by_dual[s]).copied().collect();
        support.sort_unstable();
        support.dedup();
        for t in support {
            if !beats(g_sel, scores[t], scale) {
                violations.push(Violation {
                    sample: s,
                    sequence: smp.sequence,
                    position: smp.position,
                    selected: smp.selected,
                    token: t,
                    gamma_selected: g_sel,
                    gamma_token: scores[t],
                    by_margin: by_margin[s].contains(&t),
                    by_dual: by_dual[s].contains(&t),
                });
            }
        }
        reports.push(SampleReport {
            sample: s,
            sequence: smp.sequence,
            position: smp.position,
            selected: smp.selected,
            globally_optimal: optimal.contains(&smp.selected),
            scores,
            optimal,
            support_by_margin: std::mem::take(&mut by_margin[s]),
            support_by_dual: std::mem::take(&mut by_dual[s]),
        });
    }
    let solved = sol.status == Status::Solved;
    Ok(SelectionReport {
        status: sol.status,
        feasible: match sol.status {
            Status::Solved => Some(true),
            Status::Infeasible => Some(false),
            Status::MaxIterations | Status::NumericalError => None,
        },
        globally_optimal: reports.iter().all(|r| r.globally_optimal),
        locally_optimal_by_margin: solved && !violations.iter().any(|v| v.by_margin),
        locally_optimal_by_dual: solved && !violations.iter().any(|v| v.by_dual),
        violations,
        samples: reports,
    })
}

/// The query positions of the samples of one sequence (the checks and messages of
/// [`AttSvmProblem::att_svm`]).
fn positions(inst: &Instance, layout: Layout) -> Result<Vec<Option<usize>>> {
    if inst.z.is_some() {
        if layout.seq2seq || layout.causal {
            return Err(invalid!(
                "--seq2seq and --causal need self-attention (the instance has Z.npy)"
            ));
        }
        return Ok(vec![None]);
    }
    if layout.seq2seq {
        return Ok((0..inst.t).map(Some).collect());
    }
    if layout.query_position >= inst.t {
        return Err(invalid!(
            "query position {} is out of range 0..{} (T)",
            layout.query_position,
            inst.t
        ));
    }
    Ok(vec![Some(layout.query_position)])
}

/// Tokens visible from a query: `0..=k` under causal masking at position `k`, else all.
fn visible(t: usize, position: Option<usize>, causal: bool) -> usize {
    match position {
        Some(k) if causal => k + 1,
        _ => t,
    }
}

/// `γ_it = y_i vᵀx_it` for `t < len`.
fn scores_of(inst: &Instance, i: usize, len: usize) -> Vec<f64> {
    (0..len)
        .map(|t| inst.y[i] * dot(inst.token(i, t), &inst.v))
        .collect()
}

fn scale_of(scores: &[f64]) -> f64 {
    scores.iter().fold(0.0f64, |a, g| a.max(g.abs()))
}

/// `a > b` by more than the tie tolerance.
fn beats(a: f64, b: f64, scale: f64) -> bool {
    a - b > TIE_TOL * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_relative_to_the_scale_of_the_scores() {
        assert_eq!(optimal_tokens(&[1.0, 3.0, 3.0 - 1e-13, 2.0]), vec![1, 2]);
        assert_eq!(optimal_tokens(&[1.0, 3.0, 3.0 - 1e-9, 2.0]), vec![1]);
        // All zero: every token ties; a zero maximum with other scores below: exact ties only.
        assert_eq!(optimal_tokens(&[0.0, 0.0]), vec![0, 1]);
        assert_eq!(optimal_tokens(&[0.0, -1e-30, -1.0]), vec![0, 1]);
        assert_eq!(optimal_tokens(&[0.0, -1e-11, -1.0]), vec![0]);
        assert!(optimal_tokens(&[]).is_empty());
    }
}
