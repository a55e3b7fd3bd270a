//! The update rules of the module table, applied to scaled gradients.

use faer::Mat;
use serde::{Deserialize, Serialize};

use super::{State, TrainSettings};
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
        let mut steps: Vec<Mat<f64>> = Vec::with_capacity(grads.len());
        for (j, g) in grads.iter().enumerate() {
            let coef =
                |c: f64| Mat::from_fn(g.mat.nrows(), g.mat.ncols(), |r, q| c * g.mat[(r, q)]);
            let step = match s.opt {
                Optimizer::Gd => coef(-eta * g.log_scale.exp()),
                Optimizer::Ngd => {
                    let nrm = g.mat.norm_l2();
                    let denom = nrm + s.ngd_eps * (-g.log_scale).exp();
                    if nrm > 0.0 {
                        coef(-eta / denom)
                    } else {
                        coef(0.0)
                    }
                }
                Optimizer::Polyak => {
                    // (L − f*)/‖∇‖² · e^{s_j} G_j, every factor in logs.
                    let lg = log_gap.unwrap_or(f64::NEG_INFINITY);
                    coef(-eta * (lg - 2.0 * log_norm + g.log_scale).exp())
                }
                Optimizer::Adam => {
                    let value = g.value();
                    if self.moments.len() <= j {
                        self.moments.push((
                            Mat::zeros(value.nrows(), value.ncols()),
                            Mat::zeros(value.nrows(), value.ncols()),
                        ));
                    }
                    let (m, v) = &mut self.moments[j];
                    let (b1, b2) = (s.adam_beta1, s.adam_beta2);
                    let (c1, c2) = (1.0 - b1.powi(k as i32 + 1), 1.0 - b2.powi(k as i32 + 1));
                    Mat::from_fn(value.nrows(), value.ncols(), |r, q| {
                        let gi = value[(r, q)];
                        m[(r, q)] = b1 * m[(r, q)] + (1.0 - b1) * gi;
                        v[(r, q)] = b2 * v[(r, q)] + (1.0 - b2) * gi * gi;
                        -eta * (m[(r, q)] / c1) / ((v[(r, q)] / c2).sqrt() + s.adam_eps)
                    })
                }
            };
            steps.push(step);
        }
        apply(state, steps);
    }
}

/// Add the steps to the tensors in the order of `super::gradients`.
fn apply(state: &mut State, steps: Vec<Mat<f64>>) {
    let mut it = steps.into_iter();
    match &mut state.kq {
        None => state.w += it.next().expect("a W step"),
        Some((k, q)) => {
            *k += it.next().expect("a K step");
            *q += it.next().expect("a Q step");
            state.w = &*k * q.transpose();
        }
    }
    if let Some(sv) = it.next() {
        for (r, vr) in state.v.iter_mut().enumerate() {
            *vr += sv[(r, 0)];
        }
    }
}
