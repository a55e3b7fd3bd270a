//! The programs alone: the five `pcost` values the official notebooks print (check 12) and the W↔p
//! equivalence on seeded random instances (check 20).
//!
//! cvxopt's `pcost` is `½‖p‖²`; the notebooks print five significant digits, so a value holds when
//! it rounds to the printed one (|Δ| ≤ 5e-6). The minimizers are printed to 4 decimals (6 for the
//! multi-input one, whose data are themselves rounded to 6 decimals; |Δ| ≤ 5e-6 there).

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::programs::{p_svm, v_svm, w_given_p, VectorSvm};
use super::{fmt_list, joint, multi_input, near, single_input};
use crate::error::Result;
use crate::experiments::Claim;
use crate::solvers::svm::Status;

/// One printed program.
#[derive(Debug, Clone, Serialize)]
pub struct Printed {
    pub name: String,
    pub svm: VectorSvm,
    pub printed_pcost: f64,
    pub printed_minimizer: Vec<f64>,
    /// Absolute tolerance of the minimizer.
    pub minimizer_tol: f64,
}

/// One random instance of check 20.
#[derive(Debug, Clone, Serialize)]
pub struct Equivalence {
    pub seed: u64,
    /// `‖W^mm − u^mm pᵀ/‖p‖²‖_F / ‖W^mm‖_F`.
    pub rel_diff: f64,
    /// `‖p-SVM(keys Wᵀx) − Att-SVM(tokens Wᵀx, query e_1) column 0‖ / ‖p‖`, with the Att-SVM built
    /// from an instance (cross-attention, `Z = e_1`).
    pub rel_diff_keys: f64,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct SvmValues {
    pub printed: Vec<Printed>,
    /// The joint v-SVM (printed `(0, 1)` after normalization).
    pub v_joint: VectorSvm,
    pub equivalence: Vec<Equivalence>,
}

/// Solve the printed programs and `seeds` random equivalence instances (quick: 5, full: 50).
pub fn svm_values(quick: bool) -> Result<SvmValues> {
    let mut printed = Vec::new();
    let sm = single_input::model(true)?;
    let mut add = |name: &str, svm: VectorSvm, pcost: f64, p: Vec<f64>, tol: f64| {
        printed.push(Printed {
            name: name.into(),
            svm,
            printed_pcost: pcost,
            printed_minimizer: p,
            minimizer_tol: tol,
        })
    };
    add(
        "single input, global (α = 1)",
        p_svm((1, 3, 3), sm.keys(), &[0], None)?,
        0.49505,
        vec![-0.0990, 0.9901, 0.0],
        5e-5,
    );
    add(
        "single input, local (α = 2)",
        p_svm((1, 3, 3), sm.keys(), &[1], None)?,
        0.5,
        vec![1.0, 0.0, 0.0],
        5e-5,
    );
    add(
        "multi input, W = I",
        p_svm((3, 7, 3), &multi_input::tokens(), &[0; 3], None)?,
        0.31319,
        vec![0.712363, 0.144326, 0.313189],
        5e-6,
    );
    let jx = joint::tokens(true);
    add(
        "joint (tight), p^mm",
        p_svm((3, 2, 2), &jx, &[1; 3], None)?,
        17.0 / 18.0,
        vec![4.0 / 3.0, 1.0 / 3.0],
        5e-5,
    );
    add(
        "joint (tight), relaxed with zero_ids = [2]",
        p_svm((3, 2, 2), &jx, &[1; 3], Some(&[1.0, 1.0, 0.0]))?,
        0.5,
        vec![1.0, 0.0],
        5e-5,
    );
    let v_joint = v_svm((3, 2, 2), &jx, &joint::Y, &[1; 3])?;
    let seeds = if quick { 5 } else { 50 };
    let equivalence = (0..seeds).map(equivalence).collect::<Result<Vec<_>>>()?;
    Ok(SvmValues {
        printed,
        v_joint,
        equivalence,
    })
}

/// Check 20 on one random instance: n = 2, T = 3, d = 4 (4 generic constraints in R^4: always feasible), Gaussian tokens, random α, p and W.
fn equivalence(seed: u64) -> Result<Equivalence> {
    use crate::solvers::svm::{AttSvm, AttSvmProblem, Layout, SvmSettings};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (n, t, d) = (2, 3, 4);
    let mut g = || rng.sample::<f64, _>(rand_distr::StandardNormal);
    let x: Vec<f64> = (0..n * t * d).map(|_| g()).collect();
    let p: Vec<f64> = (0..d).map(|_| g()).collect();
    let w = faer::Mat::from_fn(d, d, |_, _| g());
    let alpha: Vec<usize> = (0..n).map(|i| (seed as usize + i) % t).collect();
    let (w_mm, closed) = w_given_p((n, t, d), &x, &alpha, &p)?;
    let diff = faer::Mat::from_fn(d, d, |r, c| w_mm[(r, c)] - closed[(r, c)]);
    let rel_diff = crate::linalg::fro_norm(&diff) / crate::linalg::fro_norm(&w_mm);
    // The prompt model's p-SVM with W equals the Att-SVM on keys Wᵀx with query e_1.
    let model = crate::model::prompt::PromptModel::new(
        (n, t, d),
        x,
        &w,
        vec![1.0; n],
        crate::model::Loss::Logistic,
    )?;
    let ps = p_svm((n, t, d), model.keys(), &alpha, None)?;
    let z: Vec<f64> = (0..n * d)
        .map(|k| f64::from(u8::from(k % d == 0)))
        .collect();
    let inst = crate::data::Instance::new(
        (n, t, d),
        model.keys().to_vec(),
        Some(z),
        vec![1.0; n],
        vec![0.0; d],
        None,
    )?;
    let prob = AttSvmProblem::att_svm(&inst, &alpha, Layout::default())?;
    let sol = AttSvm::new(&prob, SvmSettings::default())?.solve();
    let rel_diff_keys = if sol.status == Status::Solved && ps.status == Status::Solved {
        let e: f64 = (0..d)
            .map(|r| (sol.w[(r, 0)] - ps.solution[r]).powi(2))
            .sum();
        e.sqrt() / ps.solution.iter().map(|a| a * a).sum::<f64>().sqrt()
    } else {
        f64::NAN
    };
    Ok(Equivalence {
        seed,
        rel_diff,
        rel_diff_keys,
    })
}

impl SvmValues {
    /// Checks 12 and 20.
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        for pr in &self.printed {
            let s = &pr.svm;
            let ok_min = s.solution.len() == pr.printed_minimizer.len()
                && s.solution
                    .iter()
                    .zip(&pr.printed_minimizer)
                    .all(|(a, b)| near(*a, *b, pr.minimizer_tol));
            out.push(Claim::check(
                format!(
                    "check 12: {}: printed pcost ½‖p‖² = {:.5}, minimizer {}",
                    pr.name,
                    pr.printed_pcost,
                    fmt_list(&pr.printed_minimizer, 6)
                ),
                format!(
                    "{:?}: ½‖p‖² = {:.6}, p = {}, KKT residual {:.1e}",
                    s.status,
                    s.half_sq_norm,
                    fmt_list(&s.solution, 6),
                    s.kkt_max
                ),
                s.status == Status::Solved
                    && near(s.half_sq_norm, pr.printed_pcost, 5e-6)
                    && ok_min,
            ));
        }
        let v = &self.v_joint.solution;
        let cv = super::programs::corr(v, &[0.0, 1.0]);
        out.push(Claim::check(
            "check 12: the joint v-SVM is (0, 1)",
            format!(
                "{:?}: v = {}, KKT {:.1e}",
                self.v_joint.status,
                fmt_list(v, 6),
                self.v_joint.kkt_max
            ),
            self.v_joint.status == Status::Solved
                && near(v[0], 0.0, 1e-6)
                && near(v[1], 1.0, 1e-6)
                && cv > 0.0,
        ));
        let worst = self
            .equivalence
            .iter()
            .map(|e| e.rel_diff)
            .fold(0.0, f64::max);
        out.push(Claim::check(
            format!(
                "check 20: argmin{{‖W‖_F : (x_α − x_t)ᵀ W p ≥ 1}} = u^mm pᵀ/‖p‖² (rel. diff ≤ 1e-6), {} random instances",
                self.equivalence.len()
            ),
            format!("largest relative difference {worst:.2e}"),
            self.equivalence.iter().all(|e| e.rel_diff <= 1e-6),
        ));
        let worst_k = self
            .equivalence
            .iter()
            .map(|e| e.rel_diff_keys)
            .fold(0.0, f64::max);
        out.push(Claim::check(
            "check 20: the p-SVM of the prompt model with W equals the Att-SVM with keys Wᵀx (rel. diff ≤ 1e-6)",
            format!("largest relative difference {worst_k:.2e}"),
            self.equivalence.iter().all(|e| e.rel_diff_keys <= 1e-6),
        ));
        out
    }
}
