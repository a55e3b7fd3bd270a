//! MM `multi_input_converge` (spec §4.7, check 13): global convergence with n = 3, NGD vs GD.
//!
//! n = 3, T = 7, d = 3, y = +1, v = (0,0,1), W = diag(1,1,0). The first two coordinates are the
//! official notebook's float32 draws (printed in the spec); the third is 1 for token 0 and 0.5 for
//! tokens 1–6, so every non-optimal token has the same score (the global-convergence condition).
//! Inits `p0 = (c, 0, 0)`, c ∈ {1, .5, 0, −.5, −1, −1.5}; NGD η = 0.1 (ε = 0, the exact direction;
//! the notebook's 1e-12 is an option of [`TrainOpts`]) and GD η = 1 without normalization.

use faer::Mat;
use serde::Serialize;

use super::programs::{p_svm, VectorSvm};
use super::training::{train, Method, Refs, TrainOpts, Trajectory};
use super::{fmt_list, steps};
use crate::error::Result;
use crate::experiments::Claim;
use crate::model::prompt::PromptModel;
use crate::model::Loss;

/// The first two coordinates of the 3×7 tokens (spec §4.7, float32 values).
pub const XY: [[(f64, f64); 7]; 3] = [
    [
        (0.774832, -0.230472),
        (-1.086776, 1.169742),
        (-1.063202, 0.576956),
        (-1.252667, 1.069997),
        (-0.476032, -0.252468),
        (-0.549456, -0.770531),
        (-0.386670, -0.341298),
    ],
    [
        (0.688981, -0.068272),
        (-0.849962, 0.882900),
        (-0.963304, 1.277873),
        (-0.810740, 0.831265),
        (-0.493681, -0.598535),
        (-0.412061, -0.477518),
        (-0.411769, -0.520462),
    ],
    [
        (0.942066, 0.010501),
        (-0.539559, 0.706221),
        (-1.113850, 1.183994),
        (-0.742025, 0.704365),
        (-0.594624, -0.234945),
        (-0.609949, -0.595967),
        (-0.713396, -0.277012),
    ],
];

/// The inits' first coordinates.
pub const INITS: [f64; 6] = [1.0, 0.5, 0.0, -0.5, -1.0, -1.5];

/// The tokens, `3·7·3` row-major.
pub fn tokens() -> Vec<f64> {
    XY.iter()
        .flat_map(|row| {
            row.iter()
                .enumerate()
                .flat_map(|(t, &(a, b))| [a, b, if t == 0 { 1.0 } else { 0.5 }])
        })
        .collect()
}

fn diag110() -> Mat<f64> {
    Mat::from_fn(3, 3, |r, c| if r == c && r < 2 { 1.0 } else { 0.0 })
}

/// The experiment's result.
#[derive(Debug, Clone, Serialize)]
pub struct MultiInput {
    pub quick: bool,
    pub steps: usize,
    /// `p^mm` of the model (W = diag(1,1,0)).
    pub p_mm: VectorSvm,
    /// `p^mm` with W = I, as the notebook solves it (printed pcost 0.31319).
    pub p_mm_identity: VectorSvm,
    /// NGD runs, one per init of [`INITS`].
    pub ngd: Vec<Trajectory>,
    /// GD (η = 1) runs, one per init.
    pub gd: Vec<Trajectory>,
}

/// Run NGD and GD from the six inits.
pub fn multi_input(quick: bool) -> Result<MultiInput> {
    let steps = steps(quick);
    let v = [0.0, 0.0, 1.0];
    let model = PromptModel::new(
        (3, 7, 3),
        tokens(),
        &diag110(),
        vec![1.0; 3],
        Loss::Logistic,
    )?;
    let p_mm = p_svm((3, 7, 3), model.keys(), &[0; 3], None)?;
    let p_mm_identity = p_svm((3, 7, 3), model.tokens(), &[0; 3], None)?;
    let refs_p = [p_mm.solution.clone()];
    let refs = Refs {
        alpha: &[0; 3],
        p: &refs_p,
        v: &[],
    };
    let ngd_opts = TrainOpts {
        steps,
        ..TrainOpts::default()
    };
    // GD's ‖p‖ grows like log k: 1000 steps say all there is to say.
    let gd_opts = TrainOpts {
        method: Method::Gd,
        eta_p: 1.0,
        steps: 1000,
        ..TrainOpts::default()
    };
    let run = |o: &TrainOpts| -> Vec<Trajectory> {
        INITS
            .iter()
            .map(|&c| train(&model, o, &[c, 0.0, 0.0], &v, &refs))
            .collect()
    };
    Ok(MultiInput {
        quick,
        steps,
        ngd: run(&ngd_opts),
        gd: run(&gd_opts),
        p_mm,
        p_mm_identity,
    })
}

impl MultiInput {
    /// Check 13.
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        let (ngd, gd) = (&self.ngd[2], &self.gd[2]);
        let bad: Vec<usize> = (1..=200)
            .filter(|&k| {
                let nrm = ngd.at(k).map_or(f64::NAN, |r| r.p_norm);
                !(nrm >= 0.095 * k as f64 && nrm <= 0.1 * k as f64 * (1.0 + 1e-12))
            })
            .collect();
        let n200 = ngd.at(200).map_or(f64::NAN, |r| r.p_norm);
        out.push(Claim::check(
            "check 13: NGD from p = 0 has ‖p_k‖ ∈ [0.095k, 0.1k] for k ≤ 200",
            format!("‖p_200‖ = {n200:.4}; steps outside the band: {bad:?}"),
            bad.is_empty(),
        ));
        let (n50, s50) = ngd
            .at(50)
            .map_or((f64::NAN, f64::NAN), |r| (r.p_norm, r.prob_selected));
        out.push(Claim::check(
            "check 13: NGD's mean softmax on the optimal token is ≥ 0.99 by step 50",
            format!("step 50: softmax {s50:.5}, ‖p‖ {n50:.4}"),
            s50 >= 0.99,
        ));
        let (ng, sg) = gd
            .at(999)
            .map_or((f64::NAN, f64::NAN), |r| (r.p_norm, r.prob_selected));
        let (ng1000, sg1000) = gd
            .at(1000)
            .map_or((f64::NAN, f64::NAN), |r| (r.p_norm, r.prob_selected));
        out.push(Claim::check(
            "check 13: GD (η = 1, no normalization) has ‖p‖ < 6 and softmax < 0.996 at step 1000",
            format!("step 1000: ‖p‖ {ng1000:.4}, softmax {sg1000:.5}"),
            ng1000 < 6.0 && sg1000 < 0.996,
        ));
        // The spec's numbers are those of the float32 code; ours are float64 on the printed
        // (6-digit) data, so they are compared at the 3 digits the two share.
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        out.push(Claim::check(
            "check 13: the float32 notebook's values 4.972 / 0.99308 (NGD, step 50) and 5.239 / 0.99504 (GD, step 999), to relative 1e-3",
            format!("NGD {n50:.4} / {s50:.5}; GD {ng:.4} / {sg:.5}"),
            rel(n50, 4.972) <= 1e-3
                && rel(s50, 0.99308) <= 1e-3
                && rel(ng, 5.239) <= 1e-3
                && rel(sg, 0.99504) <= 1e-3,
        ));
        let finals: Vec<f64> = self
            .ngd
            .iter()
            .map(|t| t.at(1000).map_or(f64::NAN, |r| r.corr_p[0]))
            .collect();
        out.push(Claim::check(
            "check 13: all six NGD inits end with corr(p, p^mm) ≥ 0.997 (step 1000)",
            format!("corr = {}", fmt_list(&finals, 6)),
            finals.iter().all(|&c| c >= 0.997),
        ));
        if self.steps >= 20_000 {
            let long: Vec<f64> = self.ngd.iter().map(|t| t.last().corr_p[0]).collect();
            out.push(Claim::info(
                "NGD at step 20 000: corr(p, p^mm) for the six inits",
                fmt_list(&long, 7),
            ));
        }
        out
    }
}
