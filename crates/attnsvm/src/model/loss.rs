//! Margin losses `ℓ(u)` of `u = y·f`, in forms that stay exact far into saturation: the loss, its
//! logarithm, and `log(−ℓ'(u))`, the log-weight of a sample in the gradient.

use serde::{Deserialize, Serialize};

/// A decreasing margin loss.
///
/// | name | `ℓ(u)` | `−ℓ'(u)` |
/// |---|---|---|
/// | `logistic` | `log(1 + e^{−u})` | `σ(−u)` |
/// | `exp` | `e^{−u}` | `e^{−u}` |
/// | `corr` | `−u` (correlation loss) | `1` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    #[default]
    Logistic,
    Exp,
    Corr,
}

/// `log(1 + e^x)` without overflow or loss of the tiny tail.
#[inline]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

impl Loss {
    /// `ℓ(u)`.
    #[inline]
    pub fn value(self, u: f64) -> f64 {
        match self {
            Loss::Logistic => softplus(-u),
            Loss::Exp => (-u).exp(),
            Loss::Corr => -u,
        }
    }

    /// `log ℓ(u)`, finite even when `ℓ(u)` underflows; `None` for the correlation loss, which can be
    /// negative.
    #[inline]
    pub fn log_value(self, u: f64) -> Option<f64> {
        match self {
            // log log(1 + e^{−u}) = −u + log(log1p(e^{−u}) / e^{−u}) and log1p(x)/x = 1 − x/2 + …
            Loss::Logistic if u > 30.0 => Some(-u - 0.5 * (-u).exp()),
            Loss::Logistic => Some(softplus(-u).ln()),
            Loss::Exp => Some(-u),
            Loss::Corr => None,
        }
    }

    /// `log(−ℓ'(u))`.
    #[inline]
    pub fn log_neg_derivative(self, u: f64) -> f64 {
        match self {
            Loss::Logistic => -softplus(u),
            Loss::Exp => -u,
            Loss::Corr => 0.0,
        }
    }

    /// `(ℓ(u), log(−ℓ'(u)))` together (one `softplus` for the logistic loss:
    /// `softplus(u) = u + softplus(−u)`).
    #[inline]
    pub fn value_and_log_neg_derivative(self, u: f64) -> (f64, f64) {
        match self {
            Loss::Logistic => {
                let sp = softplus(-u);
                (sp, -(u + sp))
            }
            _ => (self.value(u), self.log_neg_derivative(u)),
        }
    }

    /// `log(ℓ(γ − Δ) − ℓ(γ))` for `Δ = e^{log_delta} ≥ 0`: the excess loss of a sequence whose
    /// attention puts mass `Δ` (score-weighted) off its best token. Exact for tiny `Δ`.
    pub fn log_excess(self, gamma: f64, log_delta: f64) -> f64 {
        let delta = log_delta.exp();
        // log expm1(Δ), exact for small Δ.
        let log_expm1 = if delta < 1e-8 {
            log_delta + (0.5 * delta).ln_1p()
        } else {
            delta.exp_m1().ln()
        };
        match self {
            // ℓ(γ−Δ) − ℓ(γ) = log1p(expm1(Δ)·σ(−γ)).
            Loss::Logistic => {
                let log_x = log_expm1 - softplus(gamma);
                if log_x < -30.0 {
                    log_x - 0.5 * log_x.exp()
                } else {
                    log_x.exp().ln_1p().ln()
                }
            }
            Loss::Exp => -gamma + log_expm1,
            Loss::Corr => log_delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_finite_differences() {
        for loss in [Loss::Logistic, Loss::Exp, Loss::Corr] {
            for u in [-3.0, -0.2, 0.0, 0.7, 4.0] {
                let h = 1e-6;
                let fd = (loss.value(u + h) - loss.value(u - h)) / (2.0 * h);
                let exact = -loss.log_neg_derivative(u).exp();
                assert!(
                    (fd - exact).abs() < 1e-8,
                    "{loss:?} at {u}: {fd} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn log_forms_agree_with_direct_ones_and_survive_underflow() {
        for u in [-5.0, 0.0, 3.0, 29.0, 31.0] {
            let lv = Loss::Logistic.log_value(u).unwrap();
            assert!((lv - Loss::Logistic.value(u).ln()).abs() < 1e-12 * lv.abs().max(1.0));
        }
        // e^{-1000} underflows; its log does not.
        assert!((Loss::Logistic.log_value(1000.0).unwrap() + 1000.0).abs() < 1e-12);
        assert!((Loss::Logistic.log_neg_derivative(1000.0) + 1000.0).abs() < 1e-12);
    }

    #[test]
    fn log_excess_matches_the_direct_difference() {
        for loss in [Loss::Logistic, Loss::Exp, Loss::Corr] {
            for (gamma, delta) in [(0.8, 0.3), (1.5, 1e-3), (-0.4, 2.0)] {
                let direct = (loss.value(gamma - delta) - loss.value(gamma)).ln();
                let stable = loss.log_excess(gamma, f64::ln(delta));
                assert!(
                    (direct - stable).abs() < 1e-10,
                    "{loss:?}: {direct} vs {stable}"
                );
            }
        }
        // Δ = e^{-800}: the difference underflows, its log is ≈ log Δ + log σ(−γ).
        let le = Loss::Logistic.log_excess(1.0, -800.0);
        assert!((le - (-800.0 - softplus(1.0))).abs() < 1e-9);
    }
}
