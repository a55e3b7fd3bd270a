//! MM `single_input_converge` (spec §4.6, check 11): global vs local convergence of `p` for n = 1.
//!
//! T = d = 3, y = +1, v = (0,0,1), W = diag(1,1,0) (keys = the first two coordinates; the third
//! carries the score). Tokens `x1 = (−0.1, 1, 1)` (γ = 1), `x2 = (1, 0, 0.9)` (γ = 0.9) and
//! `x3 = (0, 0, 0.9)` (`g_converge = true`, γ = 0.9) or `(0, 0, 0)` (`false`, γ = 0). Six inits
//! `p0 = (0, y, 0)`, y ∈ {1, .5, 0, −.5, −1, −1.5}; exact-direction NGD, η = 0.1, logistic loss.
//! `p^mm_glob = (−0.1, 1, 0)/1.01` (α = token 0) and `p^mm_loc = (1, 0, 0)` (α = token 1); α = 1 is
//! locally optimal only when `g_converge = false` (its support token x3 must score below it).

use faer::Mat;
use serde::Serialize;

use super::programs::{locally_optimal, p_svm, VectorSvm};
use super::training::{train, Refs, TrainOpts, Trajectory};
use super::{fmt_list, steps};
use crate::error::Result;
use crate::experiments::Claim;
use crate::model::prompt::PromptModel;
use crate::model::Loss;

/// The inits' second coordinates.
pub const INITS: [f64; 6] = [1.0, 0.5, 0.0, -0.5, -1.0, -1.5];

/// One setting of `g_converge`.
#[derive(Debug, Clone, Serialize)]
pub struct SingleInputCase {
    pub g_converge: bool,
    /// The tokens (3×3, row-major).
    pub x: Vec<f64>,
    pub p_global: VectorSvm,
    pub p_local: VectorSvm,
    /// §2.3 on α = token 1 (the paper's α = 2).
    pub local_is_locally_optimal: Option<bool>,
    /// One run per init, in the order of [`INITS`].
    pub runs: Vec<Trajectory>,
}

/// The experiment's result.
#[derive(Debug, Clone, Serialize)]
pub struct SingleInput {
    pub quick: bool,
    pub steps: usize,
    pub cases: Vec<SingleInputCase>,
}

/// The tokens for `g_converge`.
pub fn tokens(g_converge: bool) -> Vec<f64> {
    let x3 = if g_converge { 0.9 } else { 0.0 };
    vec![-0.1, 1.0, 1.0, 1.0, 0.0, 0.9, 0.0, 0.0, x3]
}

/// The model of §4.6 (W = diag(1,1,0), logistic loss) for `g_converge`.
pub fn model(g_converge: bool) -> Result<PromptModel> {
    let w = Mat::from_fn(3, 3, |r, c| if r == c && r < 2 { 1.0 } else { 0.0 });
    PromptModel::new((1, 3, 3), tokens(g_converge), &w, vec![1.0], Loss::Logistic)
}

pub const V: [f64; 3] = [0.0, 0.0, 1.0];

/// Run both cases with the spec's settings (`quick`: 1000 steps; full: 20 000).
pub fn single_input(quick: bool) -> Result<SingleInput> {
    let steps = steps(quick);
    let mut cases = Vec::new();
    for g_converge in [true, false] {
        let m = model(g_converge)?;
        let p_global = p_svm((1, 3, 3), m.keys(), &[0], None)?;
        let p_local = p_svm((1, 3, 3), m.keys(), &[1], None)?;
        let local_is_locally_optimal = locally_optimal(&p_local, &m.scores(&V), 3, &[1]);
        let opts = TrainOpts {
            steps,
            ..TrainOpts::default()
        };
        let refs_p = [p_global.solution.clone(), p_local.solution.clone()];
        let refs = Refs {
            alpha: &[0],
            p: &refs_p,
            v: &[],
        };
        let runs = INITS
            .iter()
            .map(|&y0| train(&m, &opts, &[0.0, y0, 0.0], &V, &refs))
            .collect();
        cases.push(SingleInputCase {
            g_converge,
            x: tokens(g_converge),
            p_global,
            p_local,
            local_is_locally_optimal,
            runs,
        });
    }
    Ok(SingleInput {
        quick,
        steps,
        cases,
    })
}

impl SingleInput {
    /// Check 11 (and the single-input part of check 12).
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        let corr_at = |c: &SingleInputCase, r: usize, k: usize, which: usize| {
            c.runs[r].at(k).map_or(f64::NAN, |rec| rec.corr_p[which])
        };
        let t = &self.cases[0];
        let f = &self.cases[1];
        let c_true: Vec<f64> = (0..6).map(|r| corr_at(t, r, 1000, 0)).collect();
        out.push(Claim::check(
            "check 11: g_converge=true, all six inits reach corr(p, (−0.1,1,0)) ≥ 0.9997 at step 1000",
            format!("corr at step 1000 = {}", fmt_list(&c_true, 6)),
            c_true.iter().all(|&c| c >= 0.9997),
        ));
        let c_glob: Vec<f64> = (0..4).map(|r| corr_at(f, r, 1000, 0)).collect();
        out.push(Claim::check(
            "check 11: g_converge=false, inits y ∈ {1, .5, 0, −.5} reach corr ≥ 0.9999 with the global direction at step 1000",
            format!("corr at step 1000 = {}", fmt_list(&c_glob, 6)),
            c_glob.iter().all(|&c| c >= 0.9999),
        ));
        let c_loc: Vec<f64> = (4..6).map(|r| corr_at(f, r, 1000, 1)).collect();
        out.push(Claim::check(
            "check 11: g_converge=false, inits y ∈ {−1, −1.5} reach corr ≥ 0.9999 with the local direction (1,0,0) at step 1000",
            format!("corr at step 1000 = {}", fmt_list(&c_loc, 6)),
            c_loc.iter().all(|&c| c >= 0.9999),
        ));
        if self.steps >= 20_000 {
            let c_long: Vec<f64> = (0..6)
                .map(|r| corr_at(f, r, 20_000, usize::from(r >= 4)))
                .collect();
            out.push(Claim::check(
                "check 11: g_converge=false, at step 20 000 every init is still in its basin (corr ≥ 0.99999; global for y ≥ −.5, local for y ≤ −1)",
                format!("corr at step 20 000 = {}", fmt_list(&c_long, 7)),
                c_long.iter().all(|&c| c >= 0.99999),
            ));
        }
        out.push(Claim::check(
            "check 11: §2.3 classifies α = 2 as locally optimal only when g_converge=false",
            format!(
                "g_converge=true: {:?}, g_converge=false: {:?} (support tokens {:?} / {:?})",
                t.local_is_locally_optimal,
                f.local_is_locally_optimal,
                t.p_local.support_by_margin,
                f.p_local.support_by_margin
            ),
            t.local_is_locally_optimal == Some(false) && f.local_is_locally_optimal == Some(true),
        ));
        out
    }
}
