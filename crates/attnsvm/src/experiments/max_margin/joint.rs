//! MM `joint_training` (spec §4.8, check 14): training `(v, p)` jointly.
//!
//! n = 3, T = 2, d = 2, W = I, y = (+1, −1, +1); `X_1 = [(0,0), (1,1)]`, `X_2 = [(0,0), (1,−1)]`,
//! `X_3 = [(0,0), (0.5, 1)]` (tight) or `[(0,0), (0.5, 1.5)]` (non-tight). Init p = (0,−1),
//! v = (−1,0); NGD η_p = η_v = 0.1, each tensor normalized by its own norm (ε = 0; the notebook's
//! ε_p = 1e-19, ε_v = 1e-9 are options), logistic loss, α = token 1 for every input.
//! Prediction (§2.7): `v → v^mm = (0,1)` and `p → p^relax`, the p-SVM whose margin-1 constraints are
//! kept only for the support inputs of `v^mm` (the others get margin 0). In the tight case every
//! input is a support vector and `p^relax = p^mm = (4/3, 1/3)`; in the non-tight case input 3 has
//! margin 1.5 and `p^relax = (1, 0)` while `p^mm = (1.25, 0.25)`.

use faer::Mat;
use serde::Serialize;

use super::programs::{p_relax, p_svm, v_svm, VectorSvm};
use super::steps;
use super::training::{train, Refs, TrainOpts, Trajectory};
use crate::error::Result;
use crate::experiments::Claim;
use crate::model::prompt::PromptModel;
use crate::model::Loss;

/// One of the two instances.
#[derive(Debug, Clone, Serialize)]
pub struct JointCase {
    pub tight: bool,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub v_mm: VectorSvm,
    pub p_mm: VectorSvm,
    pub p_relax: VectorSvm,
    /// The notebook's relaxed program with `zero_ids = [2]` (input 3 at margin 0).
    pub p_zero_ids_2: VectorSvm,
    /// References of the run: `corr_p = [p^mm, p^relax]`, `corr_v = [v^mm]`.
    pub run: Trajectory,
}

/// The experiment's result.
#[derive(Debug, Clone, Serialize)]
pub struct Joint {
    pub quick: bool,
    pub steps: usize,
    pub cases: Vec<JointCase>,
}

pub const Y: [f64; 3] = [1.0, -1.0, 1.0];

/// The tokens of the tight or non-tight instance, `3·2·2` row-major.
pub fn tokens(tight: bool) -> Vec<f64> {
    let x3 = if tight { 1.0 } else { 1.5 };
    vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.5, x3]
}

/// Train both instances.
pub fn joint(quick: bool) -> Result<Joint> {
    let steps = steps(quick);
    let dims = (3, 2, 2);
    let alpha = [1usize; 3];
    let mut cases = Vec::new();
    for tight in [true, false] {
        let x = tokens(tight);
        let model = PromptModel::new(
            dims,
            x.clone(),
            &Mat::identity(2, 2),
            Y.to_vec(),
            Loss::Logistic,
        )?;
        let v_mm = v_svm(dims, &x, &Y, &alpha)?;
        let p_mm = p_svm(dims, model.keys(), &alpha, None)?;
        let p_rel = p_relax(dims, model.keys(), &alpha, &v_mm)?;
        let p_zero_ids_2 = p_svm(dims, model.keys(), &alpha, Some(&[1.0, 1.0, 0.0]))?;
        let refs_p = [p_mm.solution.clone(), p_rel.solution.clone()];
        let refs_v = [v_mm.solution.clone()];
        let refs = Refs {
            alpha: &alpha,
            p: &refs_p,
            v: &refs_v,
        };
        let opts = TrainOpts {
            steps,
            train_v: true,
            ..TrainOpts::default()
        };
        let run = train(&model, &opts, &[0.0, -1.0], &[-1.0, 0.0], &refs);
        cases.push(JointCase {
            tight,
            x,
            y: Y.to_vec(),
            v_mm,
            p_mm,
            p_relax: p_rel,
            p_zero_ids_2,
            run,
        });
    }
    Ok(Joint {
        quick,
        steps,
        cases,
    })
}

impl Joint {
    /// Check 14.
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        let (t, nt) = (&self.cases[0], &self.cases[1]);
        let at = |c: &JointCase, k: usize| c.run.at(k).cloned();
        let (Some(t1), Some(n1)) = (at(t, 1000), at(nt, 1000)) else {
            return out;
        };
        let c41 = super::programs::corr(&t1.p, &[4.0, 1.0]);
        out.push(Claim::check(
            "check 14: tight, corr(p, (4,1)/√17) ≥ 0.9999 at step 1000",
            format!("corr = {c41:.6}"),
            c41 >= 0.9999,
        ));
        let c10 = super::programs::corr(&n1.p, &[1.0, 0.0]);
        let cfull = super::programs::corr(&n1.p, &[1.25, 0.25]);
        out.push(Claim::check(
            "check 14: non-tight, corr(p, (1,0)) ≥ 0.9999 (the relaxed SVM) and corr(p, p^mm = (1.25,0.25)) ≈ 0.981 at step 1000",
            format!("corr with (1,0) = {c10:.6}, with (1.25,0.25) = {cfull:.5}"),
            c10 >= 0.9999 && (cfull - 0.981).abs() <= 0.001,
        ));
        let cv: Vec<f64> = [&t1, &n1]
            .iter()
            .map(|r| super::programs::corr(&r.v, &[0.0, 1.0]))
            .collect();
        out.push(Claim::check(
            "check 14: both cases, corr(v, (0,1)) ≥ 0.9999 at step 1000",
            format!("tight {:.6}, non-tight {:.6}", cv[0], cv[1]),
            cv.iter().all(|&c| c >= 0.9999),
        ));
        let (st, sn) = (t.v_mm.support_inputs(), nt.v_mm.support_inputs());
        out.push(Claim::check(
            "check 14: the support set of v^mm is {1,2,3} (tight) and {1,2} (non-tight)",
            format!(
                "tight {:?}, non-tight {:?} (1-based)",
                st.iter().map(|i| i + 1).collect::<Vec<_>>(),
                sn.iter().map(|i| i + 1).collect::<Vec<_>>()
            ),
            st == [0, 1, 2] && sn == [0, 1],
        ));
        if self.steps >= 20_000 {
            let (tl, nl) = (t.run.last(), nt.run.last());
            out.push(Claim::info(
                "step 20 000: corr(p, p^mm) tight; corr(p, p^relax) non-tight; corr(v, v^mm) both",
                format!(
                    "{:.7}; {:.7}; {:.7} / {:.7}",
                    tl.corr_p[0], nl.corr_p[1], tl.corr_v[0], nl.corr_v[0]
                ),
            ));
        }
        out
    }
}
