//! One attention layer and its empirical risk, in f64, with hand-derived gradients that stay exact
//! when the softmax saturates.
//!
//! For sequence `i`: logits `a_i = X_i W z_i`, attention `s_i = softmax(a_i)`, output
//! `x̄_i = X_iᵀ s_i`, prediction `f_i = h(x̄_i)`, risk `L(W) = (1/n) Σ_i ℓ(y_i f_i)`.
//! With `W = K Qᵀ` the (K,Q) parameterization shares everything but the chain rule
//! (`∇_K = ∇_W Q`, `∇_Q = ∇_Wᵀ K`), which lives in the training layer.

pub mod attention;
mod kernel;
mod loss;
mod objective;
pub mod prompt;
mod scaled;

pub use loss::{softplus, Loss};
pub use objective::{log_sum_exp, Evaluation, Objective};
pub use scaled::Scaled;

use faer::Mat;
use serde::{Deserialize, Serialize};

/// How `W` is parameterized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Param {
    /// Train `W ∈ R^{d×d}` directly (implicit bias: Frobenius-norm Att-SVM).
    #[default]
    W,
    /// Train `K, Q ∈ R^{d×d}` with `W = K Qᵀ` (implicit bias: nuclear-norm Att-SVM).
    Kq,
}

/// The prediction head `h: R^d → R`.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// `h(x̄) = vᵀx̄`.
    Linear,
    /// `h(x̄) = uᵀ ReLU(W_v x̄)` with `W_v ∈ R^{d_h×d}` and `u ∈ R^{d_h}` fixed.
    Relu { wv: Mat<f64>, u: Vec<f64> },
    /// `h(x̄) = vᵀx̄ − λ‖x̄‖²`.
    Lambda { lambda: f64 },
}

impl Head {
    /// `true` when the head is linear in `x̄`, so `f_i = Σ_t s_it vᵀx_it`.
    pub fn is_linear(&self) -> bool {
        matches!(self, Head::Linear)
    }
}

/// Which head to build (the data of the ReLU head comes from the instance or the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    #[default]
    Linear,
    Relu,
    Lambda,
}

impl Head {
    /// The ReLU head of the papers' multi-token experiment: `W_v = Vᵀ` with `V ~ N(0,1)^{d×d}`
    /// normalized to unit Frobenius norm, and `u = 1`, drawn from `seed`.
    pub fn relu_from_seed(d: usize, seed: u64) -> Head {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_4ead);
        let mut wv = Mat::from_fn(d, d, |_, _| {
            rng.sample::<f64, _>(rand_distr::StandardNormal)
        });
        let nrm = wv.norm_l2();
        crate::linalg::scale_in_place(&mut wv, 1.0 / nrm);
        Head::Relu {
            wv: wv.transpose().to_owned(),
            u: vec![1.0; d],
        }
    }
}
