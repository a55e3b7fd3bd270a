//! MM `diff_loss_function` (spec §4.9, check 15): linear vs logistic loss.
//!
//! n = 2, T = 2, d = 3, y = (1,1), v = (0,0,1), W = diag(1,1,0); `X_1 = [(0,0,0), (1,1,C)]`,
//! `X_2 = [(0,0,0), (1,−1,1)]`, C ∈ {1,…,10, 100} (quick: {1, 5, 10, 100}); p0 = 0, exact-direction
//! NGD η = 0.1. Losses `ℓ(u) = −u` ([`Loss::Corr`]) and logistic. Both inputs select token 1, so
//! `p^mm = (1, 0, 0)` whatever C is. The transient bends toward input 1's key (1,1) for the linear
//! loss (its weight stays 1) and toward (1,−1) for the logistic loss (the well-classified input's
//! weight `σ(−u)` is exponentially small).

use faer::Mat;
use serde::Serialize;

use super::programs::{p_svm, VectorSvm};
use super::training::{train, Refs, TrainOpts, Trajectory};
use super::{fmt_list, steps};
use crate::error::Result;
use crate::experiments::Claim;
use crate::model::prompt::PromptModel;
use crate::model::Loss;

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct LossRun {
    pub loss: Loss,
    pub c: f64,
    pub run: Trajectory,
}

/// The experiment's result.
#[derive(Debug, Clone, Serialize)]
pub struct LossDependence {
    pub quick: bool,
    pub steps: usize,
    pub p_mm: VectorSvm,
    pub runs: Vec<LossRun>,
}

/// The values of C run.
pub fn c_values(quick: bool) -> Vec<f64> {
    if quick {
        vec![1.0, 5.0, 10.0, 100.0]
    } else {
        (1..=10).map(f64::from).chain([100.0]).collect()
    }
}

/// The tokens for C, `2·2·3` row-major.
pub fn tokens(c: f64) -> Vec<f64> {
    vec![0.0, 0.0, 0.0, 1.0, 1.0, c, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0]
}

/// Run both losses for every C.
pub fn loss_dependence(quick: bool) -> Result<LossDependence> {
    let steps = steps(quick);
    let w = Mat::from_fn(3, 3, |r, c| if r == c && r < 2 { 1.0 } else { 0.0 });
    let v = [0.0, 0.0, 1.0];
    let alpha = [1usize; 2];
    let p_mm = p_svm(
        (2, 2, 3),
        PromptModel::new((2, 2, 3), tokens(1.0), &w, vec![1.0; 2], Loss::Corr)?.keys(),
        &alpha,
        None,
    )?;
    let refs_p = [p_mm.solution.clone()];
    let refs = Refs {
        alpha: &alpha,
        p: &refs_p,
        v: &[],
    };
    let opts = TrainOpts {
        steps,
        ..TrainOpts::default()
    };
    let mut runs = Vec::new();
    for loss in [Loss::Corr, Loss::Logistic] {
        for c in c_values(quick) {
            let model = PromptModel::new((2, 2, 3), tokens(c), &w, vec![1.0; 2], loss)?;
            let run = train(&model, &opts, &[0.0; 3], &v, &refs);
            runs.push(LossRun { loss, c, run });
        }
    }
    Ok(LossDependence {
        quick,
        steps,
        p_mm,
        runs,
    })
}

impl LossDependence {
    fn find(&self, loss: Loss, c: f64) -> Option<&LossRun> {
        self.runs.iter().find(|r| r.loss == loss && r.c == c)
    }

    /// Check 15.
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        let signs = |loss: Loss| -> Vec<(f64, f64)> {
            self.runs
                .iter()
                .filter(|r| r.loss == loss && r.c >= 5.0)
                .map(|r| (r.c, r.run.at(200).map_or(f64::NAN, |x| x.p[1])))
                .collect()
        };
        let (lin, logi) = (signs(Loss::Corr), signs(Loss::Logistic));
        let show = |v: &[(f64, f64)]| {
            v.iter()
                .map(|(c, y)| format!("C={c}: {y:+.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(Claim::check(
            "check 15: at step 200, p_y > 0 for ℓ(u) = −u and p_y < 0 for the logistic loss whenever C ≥ 5",
            format!("linear: {}; logistic: {}", show(&lin), show(&logi)),
            !lin.is_empty() && lin.iter().all(|x| x.1 > 0.0) && logi.iter().all(|x| x.1 < 0.0),
        ));
        if let Some(r) = self.find(Loss::Logistic, 100.0) {
            let c = |k: usize| r.run.at(k).map_or(f64::NAN, |x| x.corr_p[0]);
            let (c200, c1000) = (c(200), c(1000));
            out.push(Claim::check(
                "check 15: logistic, C = 100: corr(p, p^mm) = 0.707 ± 0.01 at step 200 and 0.867 ± 0.01 at step 1000",
                format!("{c200:.5} at 200, {c1000:.5} at 1000"),
                (c200 - 0.707).abs() <= 0.01 && (c1000 - 0.867).abs() <= 0.01,
            ));
        }
        let c1000: Vec<f64> = self
            .runs
            .iter()
            .map(|r| r.run.at(1000).map_or(f64::NAN, |x| x.corr_p[0]))
            .collect();
        out.push(Claim::info(
            "corr(p, (1,0,0)) at step 1000, linear then logistic, C as run",
            format!("C = {:?}: {}", c_values(self.quick), fmt_list(&c1000, 5)),
        ));
        if self.steps >= 20_000 {
            let last: Vec<f64> = self.runs.iter().map(|r| r.run.last().corr_p[0]).collect();
            out.push(Claim::check(
                "check 15: both losses converge to (1,0,0): corr ≥ 0.9997 at step 20 000 for every C ≤ 100",
                format!("min corr = {:.6}", last.iter().copied().fold(1.0, f64::min)),
                last.iter().all(|&c| c >= 0.9997),
            ));
        }
        out
    }
}
