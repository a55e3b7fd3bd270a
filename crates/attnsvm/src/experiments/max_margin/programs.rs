//! The max-margin programs of "Max-Margin Token Selection" (spec §2.7), each solved as an Att-SVM with the existing solver
//! (so each answer carries its KKT certificate):
//!
//! ```text
//! p^mm_α  = argmin ‖p‖  s.t.  pᵀ(k_{iα_i} − k_it) ≥ r_i   ∀ i, t ≠ α_i        (p-SVM; r_i = 1)
//! p^relax = the same with r_i = 0 for the inputs i that are not support vectors of v^mm
//! v^mm    = argmin ‖v‖  s.t.  y_i vᵀ x_{iα_i} ≥ 1                          (v-SVM, no bias)
//! ```
//!
//! Reductions. With the query `z_i = e_1` for every sample, the Frobenius Att-SVM on tokens `k_it`
//! only constrains column 0 of W (`(k_α − k_t)ᵀ W e_1 = (k_α − k_t)ᵀ W_{:,0}`), so its solution is
//! `W = p^mm e_1ᵀ` and `p^mm` is column 0. The v-SVM is the same program with two "tokens" per input,
//! `y_i x_{iα_i}` (selected) and `0`. The W↔p equivalence (check 20): for a fixed p,
//! `argmin{‖W‖_F : (x_α − x_t)ᵀ W p ≥ 1} = u^mm pᵀ/‖p‖²`, `u^mm` the p-SVM with keys = tokens.
//!
//! ```
//! use attnsvm::experiments::max_margin::programs::{p_relax, p_svm, v_svm};
//! // The joint-training instance of §4.8 (non-tight): X_i = [(0,0), x_i], W = I, α = token 1.
//! let x = [0., 0., 1., 1., 0., 0., 1., -1., 0., 0., 0.5, 1.5];
//! let (dims, alpha) = ((3, 2, 2), [1, 1, 1]);
//! let v_mm = v_svm(dims, &x, &[1., -1., 1.], &alpha)?;
//! assert_eq!(v_mm.support_inputs(), vec![0, 1]); // input 3 has margin 1.5
//! let p_mm = p_svm(dims, &x, &alpha, None)?; // (1.25, 0.25)
//! let relax = p_relax(dims, &x, &alpha, &v_mm)?; // (1, 0): input 3 only needs margin 0
//! assert!((p_mm.half_sq_norm - 0.8125).abs() < 1e-9 && (relax.solution[0] - 1.0).abs() < 1e-9);
//! # Ok::<(), attnsvm::Error>(())
//! ```

use faer::Mat;
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::solvers::svm::tokens::TIE_TOL;
use crate::solvers::svm::{
    AttSvm, AttSvmProblem, Constraint, Sample, Status, SvmSettings, SvmSolution,
};

/// The solution of one of the vector programs.
#[derive(Debug, Clone, Serialize)]
pub struct VectorSvm {
    pub status: Status,
    /// The minimizer (`p^mm`, `p^relax` or `v^mm`); zero unless solved.
    pub solution: Vec<f64>,
    /// `½‖solution‖²`, the `pcost` cvxopt prints.
    pub half_sq_norm: f64,
    /// Constraints `(input, token)` in order; for the v-SVM the token is the selected one.
    pub constraints: Vec<(usize, usize)>,
    /// Margin of each constraint.
    pub margins: Vec<f64>,
    /// Right-hand side of each constraint.
    pub rhs: Vec<f64>,
    pub duals: Vec<f64>,
    /// Constraints on the margin (`margin ≤ rhs + 1e-6`) and with a positive dual.
    pub support_by_margin: Vec<(usize, usize)>,
    pub support_by_dual: Vec<(usize, usize)>,
    /// The largest KKT residual / duality gap of the certificate.
    pub kkt_max: f64,
}

impl VectorSvm {
    /// The inputs with at least one support constraint (by margin).
    pub fn support_inputs(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.support_by_margin.iter().map(|c| c.0).collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    fn from_solution(sol: &SvmSolution, p: &AttSvmProblem, pairs: Vec<(usize, usize)>) -> Self {
        let d = p.d;
        let solution: Vec<f64> = if sol.status == Status::Solved {
            (0..d).map(|r| sol.w[(r, 0)]).collect()
        } else {
            vec![0.0; d]
        };
        let pick = |ks: &[usize]| ks.iter().map(|&k| pairs[k]).collect();
        VectorSvm {
            status: sol.status,
            half_sq_norm: 0.5 * solution.iter().map(|x| x * x).sum::<f64>(),
            solution,
            margins: sol.margins.clone(),
            rhs: p.constraints().iter().map(|c| c.rhs).collect(),
            duals: sol.duals.clone(),
            support_by_margin: pick(&sol.support_by_margin),
            support_by_dual: pick(&sol.support_by_dual),
            kkt_max: sol.kkt.max(),
            constraints: pairs,
        }
    }
}

/// `e_1 ∈ R^d`, one copy per sample.
fn unit_queries(n: usize, d: usize) -> Vec<f64> {
    let mut q = vec![0.0; n * d];
    for i in 0..n {
        q[i * d] = 1.0;
    }
    q
}

/// The p-SVM on keys `keys` (`n·T·d` row-major) for the selection `alpha`, with right-hand side
/// `rhs[i]` for every constraint of input `i` (`None`: all 1).
pub fn p_svm(
    (n, t, d): (usize, usize, usize),
    keys: &[f64],
    alpha: &[usize],
    rhs: Option<&[f64]>,
) -> Result<VectorSvm> {
    if alpha.len() != n || alpha.iter().any(|&a| a >= t) || rhs.is_some_and(|r| r.len() != n) {
        return Err(invalid!(
            "p-SVM: alpha needs {n} entries in 0..{t} and rhs {n} entries"
        ));
    }
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            sequence: i,
            position: None,
            len: t,
            selected: alpha[i],
        })
        .collect();
    let mut constraints = Vec::new();
    let mut pairs = Vec::new();
    for i in 0..n {
        for tok in (0..t).filter(|&tok| tok != alpha[i]) {
            constraints.push(Constraint {
                sample: i as u32,
                plus: alpha[i] as u32,
                minus: tok as u32,
                rhs: rhs.map_or(1.0, |r| r[i]),
                equality: false,
            });
            pairs.push((i, tok));
        }
    }
    let problem = AttSvmProblem::from_parts(d, t, keys, unit_queries(n, d), samples, constraints)?;
    let sol = AttSvm::new(&problem, SvmSettings::default())?.solve();
    Ok(VectorSvm::from_solution(&sol, &problem, pairs))
}

/// The v-SVM `min ‖v‖ s.t. y_i vᵀ x_{iα_i} ≥ 1` on tokens `x` (`n·T·d`), as a p-SVM on the two
/// tokens `(y_i x_{iα_i}, 0)` per input. Constraints are reported as `(i, α_i)`.
pub fn v_svm(
    (n, t, d): (usize, usize, usize),
    x: &[f64],
    y: &[f64],
    alpha: &[usize],
) -> Result<VectorSvm> {
    if alpha.len() != n || y.len() != n || alpha.iter().any(|&a| a >= t) || x.len() != n * t * d {
        return Err(invalid!("v-SVM: inconsistent sizes"));
    }
    let mut toks = vec![0.0; n * 2 * d];
    for i in 0..n {
        let o = (i * t + alpha[i]) * d;
        for j in 0..d {
            toks[i * 2 * d + j] = y[i] * x[o + j];
        }
    }
    let mut s = p_svm((n, 2, d), &toks, &vec![0; n], None)?;
    for c in s
        .constraints
        .iter_mut()
        .chain(s.support_by_margin.iter_mut())
        .chain(s.support_by_dual.iter_mut())
    {
        c.1 = alpha[c.0];
    }
    Ok(s)
}

/// The relaxed p-SVM of joint training: margin 1 for the support inputs of `v_mm`, 0 for the others.
pub fn p_relax(
    dims: (usize, usize, usize),
    keys: &[f64],
    alpha: &[usize],
    v_mm: &VectorSvm,
) -> Result<VectorSvm> {
    let support = v_mm.support_inputs();
    let rhs: Vec<f64> = (0..dims.0)
        .map(|i| if support.contains(&i) { 1.0 } else { 0.0 })
        .collect();
    p_svm(dims, keys, alpha, Some(&rhs))
}

/// §2.3 for p: α is locally optimal iff `γ_{iα_i} > γ_it` for every support token `t` of input `i`
/// (by margin and by dual; ties up to [`TIE_TOL`] relative count as not beaten). `scores` is
/// `γ_it` (`n·T` row-major). `None` unless the program was solved.
pub fn locally_optimal(svm: &VectorSvm, scores: &[f64], t: usize, alpha: &[usize]) -> Option<bool> {
    if svm.status != Status::Solved {
        return None;
    }
    let ok = svm
        .support_by_margin
        .iter()
        .chain(&svm.support_by_dual)
        .all(|&(i, tok)| {
            let row = &scores[i * t..(i + 1) * t];
            let scale = row.iter().fold(0.0f64, |a, g| a.max(g.abs()));
            row[alpha[i]] - row[tok] > TIE_TOL * scale
        });
    Some(ok)
}

/// Check 20, first half: the Frobenius Att-SVM with every query equal to `p` (tokens `x`,
/// `n·T·d`), and its closed form `u^mm pᵀ/‖p‖²`. Returns `(W^mm, closed form)`.
pub fn w_given_p(
    (n, t, d): (usize, usize, usize),
    x: &[f64],
    alpha: &[usize],
    p: &[f64],
) -> Result<(Mat<f64>, Mat<f64>)> {
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            sequence: i,
            position: None,
            len: t,
            selected: alpha[i],
        })
        .collect();
    let constraints: Vec<Constraint> = (0..n)
        .flat_map(|i| {
            (0..t)
                .filter(move |&tok| tok != alpha[i])
                .map(move |tok| Constraint {
                    sample: i as u32,
                    plus: alpha[i] as u32,
                    minus: tok as u32,
                    rhs: 1.0,
                    equality: false,
                })
        })
        .collect();
    let queries: Vec<f64> = (0..n).flat_map(|_| p.iter().copied()).collect();
    let problem = AttSvmProblem::from_parts(d, t, x, queries, samples, constraints)?;
    let sol = AttSvm::new(&problem, SvmSettings::default())?.solve();
    if sol.status != Status::Solved {
        return Err(invalid!("W-SVM with query p: {:?}", sol.status));
    }
    let u = p_svm((n, t, d), x, alpha, None)?;
    let pp: f64 = p.iter().map(|a| a * a).sum();
    let closed = Mat::from_fn(d, d, |r, c| u.solution[r] * p[c] / pp);
    Ok((sol.w, closed))
}

/// The correlation `⟨a, b⟩/(‖a‖‖b‖)` of two vectors (0 when either is zero).
pub fn corr(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (
        crate::linalg::dot(a, a).sqrt(),
        crate::linalg::dot(b, b).sqrt(),
    );
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    crate::linalg::dot(a, b) / (na * nb)
}

/// `1 − corr(a, b)` as `½‖a/‖a‖ − b/‖b‖‖²`, exact where `1 − corr` would round to 0 (1 when either
/// is zero).
pub fn one_minus_corr(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (
        crate::linalg::dot(a, a).sqrt(),
        crate::linalg::dot(b, b).sqrt(),
    );
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    0.5 * a
        .iter()
        .zip(b)
        .map(|(x, y)| (x / na - y / nb).powi(2))
        .sum::<f64>()
}
