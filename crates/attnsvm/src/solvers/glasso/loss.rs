//! Convex differentiable losses `L(ŷ, y)` of the token-group lasso, with the Fenchel conjugate
//! `L*(s) = sup_u s·u − L(u, y)` in the first argument, which the duality-gap certificate needs.

/// A loss convex and differentiable in the prediction `ŷ`.
///
/// `conjugate` is optional: without it the solver certifies by the KKT residual alone (no
/// duality gap). `curvature_bound` (an upper bound on `∂²L/∂ŷ²`) only seeds the step size;
/// backtracking corrects a wrong or missing value.
pub trait ConvexLoss: Send + Sync + std::fmt::Debug {
    /// A short name for reports (`"squared"`, `"logistic"`).
    fn name(&self) -> &str;
    /// `L(ŷ, y)`.
    fn value(&self, yhat: f64, y: f64) -> f64;
    /// `∂L/∂ŷ (ŷ, y)`.
    fn derivative(&self, yhat: f64, y: f64) -> f64;
    /// `L*(s) = sup_u s·u − L(u, y)` (may be `+∞` outside its domain); `None` when unknown.
    fn conjugate(&self, _s: f64, _y: f64) -> Option<f64> {
        None
    }
    /// An upper bound on `∂²L/∂ŷ²`, when one exists.
    fn curvature_bound(&self) -> Option<f64> {
        None
    }
    /// `Err(why)` when `y` is not a label this loss accepts.
    fn check_label(&self, _y: f64) -> Result<(), String> {
        Ok(())
    }
}

/// `L(ŷ, y) = (ŷ − y)²` (the spec's squared loss, no ½), for any real target `y`.
///
/// `L*(s) = s·y + s²/4`; curvature `2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Squared;

impl ConvexLoss for Squared {
    fn name(&self) -> &str {
        "squared"
    }
    fn value(&self, yhat: f64, y: f64) -> f64 {
        (yhat - y) * (yhat - y)
    }
    fn derivative(&self, yhat: f64, y: f64) -> f64 {
        2.0 * (yhat - y)
    }
    fn conjugate(&self, s: f64, y: f64) -> Option<f64> {
        Some(s * y + 0.25 * s * s)
    }
    fn curvature_bound(&self) -> Option<f64> {
        Some(2.0)
    }
}

/// `L(ŷ, y) = log(1 + exp(−y·ŷ))` for labels `y ∈ {−1, +1}`.
///
/// With `q = −y·s`: `L*(s) = q log q + (1 − q) log(1 − q)` for `q ∈ [0, 1]`, `+∞` otherwise;
/// curvature `≤ 1/4`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Logistic;

/// `log(1 + eᵘ)` without overflow.
fn softplus(u: f64) -> f64 {
    if u > 0.0 {
        u + (-u).exp().ln_1p()
    } else {
        u.exp().ln_1p()
    }
}

/// `1 / (1 + e^{−u})` without overflow.
fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// `q log q` with `0 log 0 = 0`.
fn xlogx(q: f64) -> f64 {
    if q > 0.0 {
        q * q.ln()
    } else {
        0.0
    }
}

impl ConvexLoss for Logistic {
    fn name(&self) -> &str {
        "logistic"
    }
    fn value(&self, yhat: f64, y: f64) -> f64 {
        softplus(-y * yhat)
    }
    fn derivative(&self, yhat: f64, y: f64) -> f64 {
        -y * sigmoid(-y * yhat)
    }
    fn conjugate(&self, s: f64, y: f64) -> Option<f64> {
        let q = -y * s;
        // The dual point is built from derivatives, so q lies in [0, 1] up to rounding.
        const SLACK: f64 = 1e-12;
        if !(-SLACK..=1.0 + SLACK).contains(&q) {
            return Some(f64::INFINITY);
        }
        let q = q.clamp(0.0, 1.0);
        Some(xlogx(q) + xlogx(1.0 - q))
    }
    fn curvature_bound(&self) -> Option<f64> {
        Some(0.25)
    }
    fn check_label(&self, y: f64) -> Result<(), String> {
        if y == 1.0 || y == -1.0 {
            Ok(())
        } else {
            Err(format!(
                "the logistic loss needs labels in {{−1, +1}}, got {y}"
            ))
        }
    }
}
