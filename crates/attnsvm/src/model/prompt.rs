//! The prompt-attention model of "Max-Margin Token Selection" (spec `tf-as-svm.md` §2.7, §3.7):
//!
//! ```text
//! K_i = X_i W  (keys, W fixed),   s_i = softmax(K_i p),   f_i = vᵀ X_iᵀ s_i,
//! L(v, p) = (1/n) Σ_i ℓ(y_i f_i)
//! ```
//!
//! The trained parameters are the prompt `p ∈ R^d` and the head `v ∈ R^d`; the logit of token `t`
//! is `a_it = k_itᵀ p` with `k_it = Wᵀ x_it`.
//!
//! Gradients, in the exact-direction form of §3.7. With `g_it = vᵀ x_it`,
//! `∂f_i/∂a_it = s_it (g_it − s_iᵀ g_i) = Σ_τ s_it s_iτ (g_it − g_iτ)`, hence
//!
//! ```text
//! −∇_p L = (1/n) Σ_i Σ_{t<τ} w_{i,t,τ} · sign(y_i (g_it − g_iτ)) · (k_it − k_iτ),
//! log w  = log(−ℓ'(y_i f_i)) + log s_it + log s_iτ + log|g_it − g_iτ|
//! −∇_v L = (1/n) Σ_i e^{log(−ℓ'(y_i f_i))} y_i x̄_i
//! ```
//!
//! Every term is a product of positive factors whose logarithms are computed from the log-softmax,
//! so no difference of nearly equal numbers is ever formed. The largest log-weight is factored out
//! before exponentiating, and the gradients are returned as [`Scaled`] values: their directions keep
//! full relative precision however far the softmax saturates (‖∇‖ = e^{−10⁴} is fine). The cost
//! is O(n T² d) per evaluation, which is what the tiny instances of the paper need.

use faer::Mat;

use super::{Loss, Scaled};
use crate::error::{invalid, Result};

/// The prompt model on one data set: tokens, their keys under a fixed `W`, labels and the loss.
#[derive(Debug, Clone)]
pub struct PromptModel {
    pub n: usize,
    pub t: usize,
    pub d: usize,
    /// Tokens (values) `x_it`, `n·T·d` row-major.
    x: Vec<f64>,
    /// Keys `k_it = Wᵀ x_it`, `n·T·d` row-major.
    keys: Vec<f64>,
    y: Vec<f64>,
    loss: Loss,
}

/// One evaluation of the prompt model.
#[derive(Debug, Clone)]
pub struct PromptEval {
    /// `L = (1/n) Σ ℓ(y_i f_i)`.
    pub loss: f64,
    /// `log L`, exact when `L` underflows; `None` for the correlation loss (`L` can be negative).
    pub log_loss: Option<f64>,
    /// `∇_p L` as a `d×1` [`Scaled`].
    pub grad_p: Scaled,
    /// `∇_v L` as a `d×1` [`Scaled`].
    pub grad_v: Scaled,
    /// Attention `s_it` (`n·T`, row-major).
    pub probs: Vec<f64>,
    /// Margins `y_i f_i`.
    pub margins: Vec<f64>,
}

impl PromptModel {
    /// The model with values `x` (`n·T·d` row-major), keys `Wᵀ x_it` for the `d×d` matrix `w`,
    /// labels `y` (±1) and loss `loss`.
    pub fn new(
        (n, t, d): (usize, usize, usize),
        x: Vec<f64>,
        w: &Mat<f64>,
        y: Vec<f64>,
        loss: Loss,
    ) -> Result<Self> {
        if n == 0 || t == 0 || d == 0 {
            return Err(invalid!(
                "prompt model: (n, T, d) = ({n}, {t}, {d}) must be positive"
            ));
        }
        if x.len() != n * t * d || y.len() != n || w.shape() != (d, d) {
            return Err(invalid!(
                "prompt model: X has {} values (want n·T·d = {}), y {} (want {n}), W is {:?} (want {d}×{d})",
                x.len(),
                n * t * d,
                y.len(),
                w.shape()
            ));
        }
        if x.iter().any(|v| !v.is_finite())
            || (0..d).any(|r| (0..d).any(|c| !w[(r, c)].is_finite()))
        {
            return Err(invalid!("prompt model: non-finite token or W value"));
        }
        if y.iter().any(|&yi| yi != 1.0 && yi != -1.0) {
            return Err(invalid!("prompt model: labels must be −1 or +1"));
        }
        let mut keys = vec![0.0; n * t * d];
        for (k, xr) in keys.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            for (j, kj) in k.iter_mut().enumerate() {
                *kj = (0..d).map(|r| w[(r, j)] * xr[r]).sum();
            }
        }
        Ok(PromptModel {
            n,
            t,
            d,
            x,
            keys,
            y,
            loss,
        })
    }

    /// Token `x_it`.
    pub fn token(&self, i: usize, t: usize) -> &[f64] {
        let o = (i * self.t + t) * self.d;
        &self.x[o..o + self.d]
    }

    /// Key `k_it = Wᵀ x_it`.
    pub fn key(&self, i: usize, t: usize) -> &[f64] {
        let o = (i * self.t + t) * self.d;
        &self.keys[o..o + self.d]
    }

    /// All keys, `n·T·d` row-major (the tokens of the p-SVM).
    pub fn keys(&self) -> &[f64] {
        &self.keys
    }

    /// All tokens, `n·T·d` row-major.
    pub fn tokens(&self) -> &[f64] {
        &self.x
    }

    pub fn labels(&self) -> &[f64] {
        &self.y
    }

    pub fn loss_kind(&self) -> Loss {
        self.loss
    }

    /// Token scores `γ_it = y_i vᵀ x_it` (`n·T`, row-major).
    pub fn scores(&self, v: &[f64]) -> Vec<f64> {
        (0..self.n)
            .flat_map(|i| (0..self.t).map(move |t| (i, t)))
            .map(|(i, t)| self.y[i] * crate::linalg::dot(self.token(i, t), v))
            .collect()
    }

    /// Log-softmax of the logits `a_it = k_itᵀ p` of input `i`.
    pub fn log_probs(&self, i: usize, p: &[f64]) -> Vec<f64> {
        let a: Vec<f64> = (0..self.t)
            .map(|t| crate::linalg::dot(self.key(i, t), p))
            .collect();
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + a.iter().map(|&ai| (ai - m).exp()).sum::<f64>().ln();
        a.iter().map(|&ai| ai - lse).collect()
    }

    /// The risk at `(p, v)` and its gradients in both (module docs).
    pub fn evaluate(&self, p: &[f64], v: &[f64]) -> PromptEval {
        let (n, t, d) = (self.n, self.t, self.d);
        assert!(p.len() == d && v.len() == d, "p and v must have d entries");
        // Terms of −∇_p and −∇_v with their log-weights, summed after the largest is known.
        let mut p_terms: Vec<(f64, f64, usize, usize, usize)> = Vec::new();
        let mut v_terms: Vec<f64> = Vec::with_capacity(n);
        let (mut probs, mut margins, mut xbars) = (Vec::new(), Vec::new(), Vec::new());
        let mut losses = Vec::with_capacity(n);
        let mut log_losses = Vec::with_capacity(n);
        for i in 0..n {
            let ls = self.log_probs(i, p);
            let s: Vec<f64> = ls.iter().map(|l| l.exp()).collect();
            let g: Vec<f64> = (0..t)
                .map(|tt| crate::linalg::dot(self.token(i, tt), v))
                .collect();
            let u = self.y[i] * s.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>();
            let (li, lnd) = self.loss.value_and_log_neg_derivative(u);
            losses.push(li);
            log_losses.push(self.loss.log_value(u));
            for a in 0..t {
                for b in a + 1..t {
                    let diff = g[a] - g[b];
                    if diff != 0.0 {
                        let lw = lnd + ls[a] + ls[b] + diff.abs().ln();
                        p_terms.push((lw, (self.y[i] * diff).signum(), i, a, b));
                    }
                }
            }
            let mut xbar = vec![0.0; d];
            for (tt, &st) in s.iter().enumerate() {
                crate::linalg::axpy(st, self.token(i, tt), &mut xbar);
            }
            v_terms.push(lnd);
            xbars.push(xbar);
            probs.extend_from_slice(&s);
            margins.push(u);
        }
        let ln_n = (n as f64).ln();
        // ∇_p L = −(1/n) Σ w·sign·(k_a − k_b).
        let mp = p_terms
            .iter()
            .map(|x| x.0)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut gp = Mat::zeros(d, 1);
        if mp.is_finite() {
            for &(lw, sign, i, a, b) in &p_terms {
                let c = -sign * (lw - mp).exp();
                let (ka, kb) = (self.key(i, a), self.key(i, b));
                for j in 0..d {
                    gp[(j, 0)] += c * (ka[j] - kb[j]);
                }
            }
        }
        let grad_p = Scaled {
            mat: gp,
            log_scale: if mp.is_finite() { mp - ln_n } else { 0.0 },
        }
        .normalized();
        let mv = v_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut gv = Mat::zeros(d, 1);
        if mv.is_finite() {
            for (i, (&lw, xbar)) in v_terms.iter().zip(&xbars).enumerate() {
                let c = -self.y[i] * (lw - mv).exp();
                for j in 0..d {
                    gv[(j, 0)] += c * xbar[j];
                }
            }
        }
        let grad_v = Scaled {
            mat: gv,
            log_scale: if mv.is_finite() { mv - ln_n } else { 0.0 },
        }
        .normalized();
        let log_loss = log_losses
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
            .map(|ll| {
                let m = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                m + ll.iter().map(|l| (l - m).exp()).sum::<f64>().ln() - ln_n
            });
        PromptEval {
            loss: losses.iter().sum::<f64>() / n as f64,
            log_loss,
            grad_p,
            grad_v,
            probs,
            margins,
        }
    }
}
