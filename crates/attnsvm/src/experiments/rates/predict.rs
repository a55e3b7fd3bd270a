//! The rates the theory predicts (spec `rates-and-convex.md` §A3, §A5; the table in the parent
//! module's docs). Each prediction names its source with the spec's tag: \[DERIVED\] (the spec
//! author's derivation or toy runs), \[RECON\] (reconstructed, not checked against the paper),
//! \[3P-SUM\] (a third-party summary of the paper), \[OURS\] (derived in this crate's docs).

use serde::{Deserialize, Serialize};

use super::{FitKind, OptimizerSpec, Quantity, RatesConfig, Setting};
use crate::train::Optimizer;

/// What the theory predicts for one (optimizer, quantity) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub kind: FitKind,
    /// The predicted slope (mean over seeds where it depends on `‖W_mm‖`), when one is known.
    pub slope: Option<f64>,
    /// An upper bound on the slope, when only a bound is known.
    pub at_most: Option<f64>,
    /// Where the prediction comes from, with the spec's tag.
    pub basis: String,
}

/// The prediction of the module table for optimizer `o`, quantity `q`, and `‖W_mm‖`.
pub fn predict(config: &RatesConfig, o: &OptimizerSpec, q: Quantity, w_mm_norm: f64) -> Prediction {
    let s0 = config.setting == Setting::Orthonormal;
    let p = |kind, slope: Option<f64>, at_most: Option<f64>, basis: &str| Prediction {
        kind,
        slope,
        at_most,
        basis: basis.to_string(),
    };
    let corr = |basis: &str| {
        if s0 {
            p(FitKind::Power, Some(-2.0), Some(-1.0), basis)
        } else {
            p(
                FitKind::Power,
                None,
                Some(-1.0),
                "O(t^-1/2) directional error [3P-SUM]",
            )
        }
    };
    if o.train_v {
        return match q {
            Quantity::LossGap => p(
                FitKind::Stretched,
                None,
                Some(0.0),
                "exp(-t^1/3) under Gaussian-like data [3P-SUM]",
            ),
            Quantity::WNorm => p(
                FitKind::Power,
                Some(1.0),
                None,
                "‖W_t‖ ≈ ηt (NGD moves W by η per step) [DERIVED A5.4]",
            ),
            Quantity::OffMass => p(
                FitKind::Exponential,
                None,
                None,
                "no prediction (fitted as for fixed-head NGD)",
            ),
            Quantity::OneMinusCorr => p(
                FitKind::Power,
                None,
                None,
                "no prediction (v moves, so W_mm of v_0 is not the limit)",
            ),
        };
    }
    if let Some(b) = o.batch_size.filter(|&b| b < config.n) {
        if o.opt != Optimizer::Ngd || !s0 {
            return p(FitKind::Power, None, None, "no prediction (stochastic)");
        }
        let rate = -o.lr * (b as f64 / config.n as f64).sqrt() / w_mm_norm;
        let basis = "-η√(b/n)/‖W_mm‖: orthogonal per-sequence pieces of W_mm in S0 [OURS]";
        return match q {
            Quantity::OneMinusCorr => corr("-2 in S0: each sequence visited once per epoch [OURS]"),
            Quantity::WNorm => p(
                FitKind::Power,
                Some(1.0),
                None,
                "‖W_t‖ ≈ η√(b/n)·t: steps of η along orthogonal batch pieces [OURS]",
            ),
            Quantity::OffMass | Quantity::LossGap => {
                p(FitKind::Exponential, Some(rate), None, basis)
            }
        };
    }
    match (o.opt, q) {
        (Optimizer::Gd, Quantity::OneMinusCorr) => p(
            FitKind::Power,
            None,
            Some(0.0),
            "slow, O(1/log t)-type as in logistic regression [RECON]",
        ),
        (Optimizer::Gd, Quantity::WNorm) => p(
            FitKind::Logarithmic,
            Some(w_mm_norm),
            None,
            "‖W_t‖ ≈ ‖W_mm‖ ln t [DERIVED A5.10]",
        ),
        (Optimizer::Gd, Quantity::OffMass) => p(
            FitKind::Power,
            Some(-1.0),
            None,
            "~1/t in S0 [DERIVED A5.8]",
        ),
        (Optimizer::Gd, Quantity::LossGap) => {
            p(FitKind::Power, Some(-1.0), None, "Θ(1/t) [DERIVED A5.10]")
        }
        (Optimizer::Ngd, Quantity::OneMinusCorr) => {
            corr("-2 in S0 [DERIVED A5.6]; ≤ -1 from O(t^-1/2) [3P-SUM]")
        }
        (Optimizer::Ngd, Quantity::WNorm) => {
            p(FitKind::Power, Some(1.0), None, "‖W_t‖ ≈ ηt [DERIVED A5.4]")
        }
        (Optimizer::Ngd, Quantity::OffMass) => p(
            FitKind::Exponential,
            Some(-o.lr / w_mm_norm),
            None,
            "-η/‖W_mm‖ [DERIVED A3/A5.8]",
        ),
        (Optimizer::Ngd, Quantity::LossGap) => p(
            FitKind::Exponential,
            Some(-o.lr / w_mm_norm),
            None,
            "-η/‖W_mm‖ [DERIVED A3]",
        ),
        (Optimizer::Polyak, Quantity::OneMinusCorr) => {
            corr("-2 in S0 [DERIVED A4 table]; ≤ -1 from O(t^-1/2) [3P-SUM]")
        }
        (Optimizer::Polyak, Quantity::WNorm) => p(
            FitKind::Power,
            Some(1.0),
            None,
            "‖W_t‖/t → c‖W_mm‖ [DERIVED A5.9]",
        ),
        (Optimizer::Polyak, Quantity::OffMass) => p(
            FitKind::Exponential,
            Some(-o.lr),
            None,
            "margin +c per step [DERIVED A3]",
        ),
        (Optimizer::Polyak, Quantity::LossGap) => p(
            FitKind::Exponential,
            Some(-o.lr),
            None,
            "ln(L−L*) falls c per step [DERIVED A5.9]",
        ),
        _ => p(FitKind::Power, None, None, "no prediction"),
    }
}
