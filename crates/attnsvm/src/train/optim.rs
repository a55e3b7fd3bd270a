//! The update rules of the module table, applied to scaled gradients.

use faer::Mat;
use serde::{Deserialize, Serialize};

use super::{State, TrainSettings};
use crate::linalg::axpy;
use crate::model::Scaled;

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Gd,
    #[default]
    Ngd,
    Polyak,
    Adam,
}

/// `f*` of the Polyak step `(L − f*)/‖∇L‖²`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PolyakTarget {
    /// `f* = 0` (a trainable or nonlinear head).
    #[default]
    Zero,
    /// `f* = L* = (1/n) Σ ℓ(max_t γ_it)`, the infimum with a fixed linear head, with `L − L*`
    /// computed without cancellation.
    Infimum,
}

/// `log ‖(G_1, …, G_m)‖` over all tensors.
pub fn log_joint_norm(grads: &[Scaled]) -> f64 {
    let logs: Vec<f64> = grads.iter().map(Scaled::log_norm).collect();
    let m = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + 0.5 * logs.iter().map(|l| (2.0 * (l - m)).exp()).sum::<f64>().ln()
}

/// Adam's moments, one pair per trained tensor.
pub(super) struct OptimizerState {
    moments: Vec<(Mat<f64>, Mat<f64>)>,
}

impl OptimizerState {
    pub fn new(_settings: &TrainSettings) -> Self {
        OptimizerState {
            moments: Vec::new(),
        }
    }

    /// One update of every trained tensor. `log_gap = log(L − f*)` for the Polyak rule.
    pub fn step(
        &mut self,
        s: &TrainSettings,
        k: usize,
        state: &mut State,
        grads: &[Scaled],
        log_gap: Option<f64>,
    ) {
        let eta = s.lr * (1.0 + k as f64).powf(-s.lr_decay);
        let log_norm = log_joint_norm(grads);
        let mut targets = tensors(state);
        for (j, (g, theta)) in grads.iter().zip(targets.iter_mut()).enumerate() {
            // Every rule but Adam is θ ← θ + c·G for a scalar c.
            let c = match s.opt {
                Optimizer::Gd => -eta * g.log_scale.exp(),
                Optimizer::Ngd => {
                    let nrm = crate::linalg::fro_norm(&g.mat);
                    // ‖∇‖ + ε = e^{s}(‖G‖ + ε e^{−s}); with ε = 0 the second term must not be
                    // formed at all (0·∞ once e^{−s} overflows).
                    let eps = if s.ngd_eps > 0.0 {
                        s.ngd_eps * (-g.log_scale).exp()
                    } else {
                        0.0
                    };
                    if nrm > 0.0 {
                        -eta / (nrm + eps)
                    } else {
                        0.0
                    }
                }
                // (L − f*)/‖∇‖² · e^{s_j} G_j, every factor in logs.
                Optimizer::Polyak => {
                    let lg = log_gap.unwrap_or(f64::NEG_INFINITY);
                    -eta * (lg - 2.0 * log_norm + g.log_scale).exp()
                }
                Optimizer::Adam => {
                    self.adam(s, j, k, eta, g, theta);
                    continue;
                }
            };
            for col in 0..g.mat.ncols() {
                axpy(c, g.mat.col_as_slice(col), theta.col_mut(col));
            }
        }
        drop(targets);
        if let Some((kk, q)) = &state.kq {
            state.w = kk * q.transpose();
        }
    }

    fn adam(
        &mut self,
        s: &TrainSettings,
        j: usize,
        k: usize,
        eta: f64,
        g: &Scaled,
        theta: &mut Tensor,
    ) {
        let value = g.value();
        let (rows, cols) = (value.nrows(), value.ncols());
        if self.moments.len() <= j {
            self.moments
                .push((Mat::zeros(rows, cols), Mat::zeros(rows, cols)));
        }
        let (m, v) = &mut self.moments[j];
        let (b1, b2) = (s.adam_beta1, s.adam_beta2);
        let (c1, c2) = (1.0 - b1.powi(k as i32 + 1), 1.0 - b2.powi(k as i32 + 1));
        for col in 0..cols {
            let th = theta.col_mut(col);
            for r in 0..rows {
                let gi = value[(r, col)];
                m[(r, col)] = b1 * m[(r, col)] + (1.0 - b1) * gi;
                v[(r, col)] = b2 * v[(r, col)] + (1.0 - b2) * gi * gi;
                th[r] -= eta * (m[(r, col)] / c1) / ((v[(r, col)] / c2).sqrt() + s.adam_eps);
            }
        }
    }
}

/// A trained tensor: a matrix, or the head vector (one column).
enum Tensor<'a> {
    Mat(&'a mut Mat<f64>),
    Vec(&'a mut [f64]),
}

impl Tensor<'_> {
    fn col_mut(&mut self, j: usize) -> &mut [f64] {
        match self {
            Tensor::Mat(m) => m.col_as_slice_mut(j),
            Tensor::Vec(v) => {
                debug_assert_eq!(j, 0);
                v
            }
        }
    }
}

/// The trained tensors in the order of `super::gradients`: [W] or [K, Q], then v.
fn tensors(state: &mut State) -> Vec<Tensor<'_>> {
    let mut out = match &mut state.kq {
        None => vec![Tensor::Mat(&mut state.w)],
        Some((k, q)) => vec![Tensor::Mat(k), Tensor::Mat(q)],
    };
    out.push(Tensor::Vec(&mut state.v));
    out
}
