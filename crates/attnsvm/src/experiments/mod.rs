//! The papers' experiments as named, seeded library functions that return what they measured
//! (serializable results, CSV curves). Experiments sit on top of every other layer: they use
//! `data`, `model`, `solvers` and `train`, and nothing below imports them.
//!
//! | experiment | paper | module |
//! |---|---|---|
//! | convergence rates of GD / NGD / Polyak / joint training | rates paper (spec `rates-and-convex.md`, Paper A) | [`rates`] |
//! | GD paths vs SVM directions, local and multi-token convergence, ranks, regularization paths | "Transformers as SVMs" (spec `tf-as-svm.md` §4.1–4.5) | [`tf_svm`] |
//! | the prompt `p`: global vs local convergence, NGD vs GD, joint `(v, p)`, loss dependence | "Max-Margin Token Selection" (spec `tf-as-svm.md` §4.6–4.9) | [`max_margin`] |
//! | convex attention: student–teacher, β path, width and loss-weight discrepancies | "Convexifying Transformers" (spec `rates-and-convex.md`, Paper B) | [`convex`] |
//!
//! Shared here: [`Claim`], the unit of every report (a statement of a paper and what we measured),
//! and the least-squares slope fit used to turn a recorded curve into a rate.

pub mod convex;
pub mod max_margin;
pub mod rates;
pub mod tf_svm;

use serde::{Deserialize, Serialize};

/// A statement of a paper (or of the spec's re-runs) and what an experiment measured for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The statement, with where it comes from (e.g. "spec §5 check 6").
    pub statement: String,
    /// What we measured, in words and numbers.
    pub measured: String,
    /// Whether it held; `None` for a measurement reported without a verdict.
    pub held: Option<bool>,
}

impl Claim {
    /// A claim with a verdict.
    pub fn check(statement: impl Into<String>, measured: impl Into<String>, held: bool) -> Self {
        Claim {
            statement: statement.into(),
            measured: measured.into(),
            held: Some(held),
        }
    }

    /// A measurement without a verdict.
    pub fn info(statement: impl Into<String>, measured: impl Into<String>) -> Self {
        Claim {
            statement: statement.into(),
            measured: measured.into(),
            held: None,
        }
    }
}

/// A least-squares line `y ≈ slope·x + intercept` through `points`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination (1 for points on a line; 1 also when `y` is constant).
    pub r2: f64,
    /// Points used.
    pub points: usize,
}

/// Ordinary least squares of `y` on `x` over the finite pairs. `None` with fewer than 2 finite
/// pairs or when every `x` is equal.
pub fn fit_line(points: &[(f64, f64)]) -> Option<LineFit> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let m = pts.len();
    if m < 2 {
        return None;
    }
    let mf = m as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / mf;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / mf;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        (sxy * sxy / (sxx * syy)).min(1.0)
    } else {
        1.0
    };
    Some(LineFit {
        slope,
        intercept: my - slope * mx,
        r2,
        points: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_line_and_skips_non_finite_points() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|k| (k as f64, 3.0 - 0.5 * k as f64))
            .chain([(f64::NAN, 1.0), (1.0, f64::NEG_INFINITY)])
            .collect();
        let f = fit_line(&pts).unwrap();
        assert!((f.slope + 0.5).abs() < 1e-12 && (f.intercept - 3.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12 && f.points == 10);
        assert!(fit_line(&[(1.0, 2.0), (1.0, 3.0)]).is_none());
        assert!(fit_line(&[(1.0, 2.0)]).is_none());
    }
}
