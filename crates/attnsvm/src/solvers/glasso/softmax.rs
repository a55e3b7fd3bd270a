//! Multi-head softmax attention, the standard non-convex model that convex attention replaces
//! (spec `rates-and-convex.md`, Paper B, model (3)), on the data of a [`GlassoProblem`] (one
//! output), trained by Adam or gradient descent:
//!
//! ```text
//! s_j(X) = softmax(X p_j) ∈ Δ_n,   f(X) = Σ_j (s_j(X)ᵀ X v_j)·o_j,   j = 1..h
//! F = w Σ_i L(f(X_i), y_i) + (β/2) Σ_j (‖v_j‖² + o_j²) + (λ/2) Σ_j ‖p_j‖²
//! ```
//!
//! This is model (8) with each fixed simplex vector `w_j` replaced by the input-dependent softmax
//! of the scores `X p_j`. It is model (3) for one output read at a query token: the score vector
//! `p_j = W_Kj W_Qjᵀ q` folds key, query matrices and the query into one vector (the form of the
//! prompt model of "Max-Margin Token Selection"), the value/output factors are `v_j`, `o_j`. The
//! key penalty `λ` (`key_decay`, default `0`) stands for (3)'s query/key weight decay; (8) has
//! none. Because `s_j` depends on `X`, this model is *not* covered by the convex program (B-T0):
//! the experiments compare it, they do not bound it.
//!
//! **Gradient.** With `g_i = w ∂L(f_i, y_i)`, `u_ij = X_i v_j`, `m_ij = s_ijᵀ u_ij`:
//! `∂F/∂o_j = Σ_i g_i m_ij + β o_j`, `∂F/∂v_j = o_j Σ_i g_i X_iᵀ s_ij + β v_j`,
//! `∂F/∂p_j = o_j Σ_i g_i X_iᵀ (s_ij ⊙ (u_ij − m_ij)) + λ p_j` (the softmax Jacobian
//! `diag(s) − s sᵀ` applied to `u`). Softmaxes are computed from log-sum-exp.
//!
//! **Training.** Seeded init (`ChaCha8`): `p_j`, `v_j`, `o_j` i.i.d. `N(0, init_scale²)`. Full-batch
//! Adam (bias-corrected, default `lr = 0.01`, `(0.9, 0.999)`, `ε = 1e-8`) or plain GD with a fixed
//! step. Training stops at `max_iter` steps, or when the gradient norm is `≤ tol·max(1, |F|)`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::GlassoProblem;
use crate::error::{invalid, Result};
use crate::linalg::dot;
use crate::model::log_sum_exp;

/// One head: scores `p`, value `v`, output `o`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxHead {
    /// `p_j ∈ R^d`: the scores of the tokens are `X p_j`.
    pub key: Vec<f64>,
    pub value: Vec<f64>,
    pub output: f64,
}

/// The optimizer of [`train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Full-batch Adam with bias correction.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    /// Gradient descent with a fixed step.
    Gd { lr: f64 },
}

/// Settings of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxSettings {
    pub optimizer: Optimizer,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    pub init_scale: f64,
    /// `λ`, the weight decay of the scores `p_j`.
    pub key_decay: f64,
}

impl Default for SoftmaxSettings {
    fn default() -> Self {
        SoftmaxSettings {
            optimizer: Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            max_iter: 5000,
            tol: 1e-9,
            seed: 0,
            init_scale: 0.5,
            key_decay: 0.0,
        }
    }
}

impl SoftmaxSettings {
    fn validate(&self) -> Result<()> {
        let lr_ok = match self.optimizer {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                lr > 0.0
                    && lr.is_finite()
                    && (0.0..1.0).contains(&beta1)
                    && (0.0..1.0).contains(&beta2)
                    && eps > 0.0
            }
            Optimizer::Gd { lr } => lr > 0.0 && lr.is_finite(),
        };
        if !lr_ok {
            return Err(invalid!(
                "softmax attention: optimizer {:?} needs lr > 0, β₁, β₂ in [0, 1), ε > 0",
                self.optimizer
            ));
        }
        if self.max_iter == 0 || self.tol.is_nan() || self.tol < 0.0 {
            return Err(invalid!(
                "softmax attention: max_iter must be ≥ 1 and tol ≥ 0"
            ));
        }
        let scales_ok = self.init_scale > 0.0
            && self.init_scale.is_finite()
            && self.key_decay >= 0.0
            && self.key_decay.is_finite();
        if !scales_ok {
            return Err(invalid!(
                "softmax attention: init_scale = {} must be positive and key_decay = {} ≥ 0",
                self.init_scale,
                self.key_decay
            ));
        }
        Ok(())
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftmaxStatus {
    /// The gradient norm is `≤ tol·max(1, |F|)`.
    Converged,
    MaxIterations,
    /// The objective or the gradient became non-finite.
    NumericalError,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct SoftmaxSolution {
    pub status: SoftmaxStatus,
    pub heads: Vec<SoftmaxHead>,
    pub objective: f64,
    /// `F` before every step, and at the returned heads.
    pub history: Vec<f64>,
    pub gradient_norm: f64,
    pub iterations: usize,
}

fn check(problem: &GlassoProblem, heads: &[SoftmaxHead]) -> Result<()> {
    if problem.outputs != 1 {
        return Err(invalid!(
            "softmax attention: one output, the program has c = {}",
            problem.outputs
        ));
    }
    let d = problem.d;
    for (j, h) in heads.iter().enumerate() {
        if h.key.len() != d || h.value.len() != d {
            return Err(invalid!(
                "head {j}: key has {} entries and value {}, expected d = {d}",
                h.key.len(),
                h.value.len()
            ));
        }
    }
    Ok(())
}

/// `s_j(X_i)` for every sample and head, `N·h·n` values (sample, head, token).
pub fn attention(problem: &GlassoProblem, heads: &[SoftmaxHead]) -> Result<Vec<f64>> {
    check(problem, heads)?;
    let (n, d, x) = (problem.n_tokens, problem.d, problem.tokens());
    let mut out = Vec::with_capacity(problem.n_samples * heads.len() * n);
    for i in 0..problem.n_samples {
        let xi = &x[i * n * d..(i + 1) * n * d];
        for h in heads {
            out.extend(softmax(xi, d, &h.key));
        }
    }
    Ok(out)
}

fn softmax(xi: &[f64], d: usize, key: &[f64]) -> Vec<f64> {
    let scores: Vec<f64> = xi.chunks_exact(d).map(|t| dot(t, key)).collect();
    let lse = log_sum_exp(&scores);
    scores.iter().map(|a| (a - lse).exp()).collect()
}

/// The predictions `f(X_i)`.
pub fn predictions(problem: &GlassoProblem, heads: &[SoftmaxHead]) -> Result<Vec<f64>> {
    check(problem, heads)?;
    Ok(eval(problem, heads, 0.0, 0.0, false).2)
}

/// `F` and its gradient (laid out as heads) at `heads`.
pub fn objective_and_gradient(
    problem: &GlassoProblem,
    heads: &[SoftmaxHead],
    beta: f64,
    key_decay: f64,
) -> Result<(f64, Vec<SoftmaxHead>)> {
    check(problem, heads)?;
    let (f, g, _) = eval(problem, heads, beta, key_decay, true);
    Ok((f, g))
}

/// `(F, ∇F, predictions)`; the gradient only when asked.
fn eval(
    problem: &GlassoProblem,
    heads: &[SoftmaxHead],
    beta: f64,
    key_decay: f64,
    grad: bool,
) -> (f64, Vec<SoftmaxHead>, Vec<f64>) {
    let (nn, n, d, x) = (
        problem.n_samples,
        problem.n_tokens,
        problem.d,
        problem.tokens(),
    );
    let h = heads.len();
    // Per sample and head: the attention and the token values u = X v.
    let mut s = vec![0.0; nn * h * n];
    let mut u = vec![0.0; nn * h * n];
    let mut pred = vec![0.0; nn];
    for i in 0..nn {
        let xi = &x[i * n * d..(i + 1) * n * d];
        for (j, hd) in heads.iter().enumerate() {
            let at = (i * h + j) * n;
            s[at..at + n].copy_from_slice(&softmax(xi, d, &hd.key));
            for (k, t) in xi.chunks_exact(d).enumerate() {
                u[at + k] = dot(t, &hd.value);
            }
            pred[i] += hd.output * dot(&s[at..at + n], &u[at..at + n]);
        }
    }
    let reg: f64 = heads
        .iter()
        .map(|hd| {
            0.5 * beta * (dot(&hd.value, &hd.value) + hd.output * hd.output)
                + 0.5 * key_decay * dot(&hd.key, &hd.key)
        })
        .sum();
    let f = problem.smooth_value(&pred) + reg;
    if !grad {
        return (f, Vec::new(), pred);
    }
    let g = problem.dloss(&pred);
    let mut out: Vec<SoftmaxHead> = heads
        .iter()
        .map(|hd| SoftmaxHead {
            key: hd.key.iter().map(|p| key_decay * p).collect(),
            value: hd.value.iter().map(|v| beta * v).collect(),
            output: beta * hd.output,
        })
        .collect();
    for (i, &gi) in g.iter().enumerate() {
        if gi == 0.0 {
            continue;
        }
        let xi = &x[i * n * d..(i + 1) * n * d];
        for (j, (hd, gr)) in heads.iter().zip(out.iter_mut()).enumerate() {
            let at = (i * h + j) * n;
            let (si, ui) = (&s[at..at + n], &u[at..at + n]);
            let m = dot(si, ui);
            gr.output += gi * m;
            for (k, t) in xi.chunks_exact(d).enumerate() {
                let cv = gi * hd.output * si[k];
                let cp = cv * (ui[k] - m);
                for ((gv, gk), &tf) in gr.value.iter_mut().zip(gr.key.iter_mut()).zip(t) {
                    *gv += cv * tf;
                    *gk += cp * tf;
                }
            }
        }
    }
    (f, out, pred)
}

/// `h` seeded random heads, every entry `N(0, scale²)`.
pub fn random_heads(d: usize, h: usize, scale: f64, seed: u64) -> Vec<SoftmaxHead> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |len: usize| -> Vec<f64> {
        (0..len)
            .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
            .collect()
    };
    (0..h)
        .map(|_| SoftmaxHead {
            key: draw(d),
            value: draw(d),
            output: draw(1)[0],
        })
        .collect()
}

fn flatten(heads: &[SoftmaxHead]) -> Vec<f64> {
    heads
        .iter()
        .flat_map(|hd| {
            hd.key
                .iter()
                .chain(&hd.value)
                .copied()
                .chain(std::iter::once(hd.output))
        })
        .collect()
}

fn unflatten(theta: &[f64], d: usize) -> Vec<SoftmaxHead> {
    theta
        .chunks_exact(2 * d + 1)
        .map(|c| SoftmaxHead {
            key: c[..d].to_vec(),
            value: c[d..2 * d].to_vec(),
            output: c[2 * d],
        })
        .collect()
}

/// Train `h` heads from the seeded init, calling `observe(step, heads)` after every step.
pub fn train(
    problem: &GlassoProblem,
    beta: f64,
    h: usize,
    settings: &SoftmaxSettings,
    observe: impl FnMut(usize, &[SoftmaxHead]),
) -> Result<SoftmaxSolution> {
    settings.validate()?;
    let init = random_heads(problem.d, h, settings.init_scale, settings.seed);
    train_from(problem, beta, init, settings, observe)
}

/// Train from the given heads, calling `observe(step, heads)` after every step.
pub fn train_from(
    problem: &GlassoProblem,
    beta: f64,
    init: Vec<SoftmaxHead>,
    settings: &SoftmaxSettings,
    mut observe: impl FnMut(usize, &[SoftmaxHead]),
) -> Result<SoftmaxSolution> {
    settings.validate()?;
    if !(beta >= 0.0 && beta.is_finite()) || init.is_empty() {
        return Err(invalid!(
            "softmax attention: β = {beta} must be ≥ 0 and finite, with at least one head"
        ));
    }
    let d = problem.d;
    check(problem, &init)?;
    let mut theta = flatten(&init);
    let (mut m1, mut m2) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
    let mut history = Vec::new();
    let (mut status, mut iterations, mut gnorm) = (SoftmaxStatus::MaxIterations, 0, f64::NAN);
    let mut f = f64::NAN;
    while iterations < settings.max_iter {
        let (fv, g, _) = eval(
            problem,
            &unflatten(&theta, d),
            beta,
            settings.key_decay,
            true,
        );
        let g = flatten(&g);
        f = fv;
        history.push(f);
        gnorm = dot(&g, &g).sqrt();
        if !f.is_finite() || !gnorm.is_finite() {
            status = SoftmaxStatus::NumericalError;
            break;
        }
        if gnorm <= settings.tol * f.abs().max(1.0) {
            status = SoftmaxStatus::Converged;
            break;
        }
        iterations += 1;
        match settings.optimizer {
            Optimizer::Gd { lr } => theta.iter_mut().zip(&g).for_each(|(t, gk)| *t -= lr * gk),
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let (c1, c2) = (
                    1.0 - beta1.powi(iterations as i32),
                    1.0 - beta2.powi(iterations as i32),
                );
                for k in 0..theta.len() {
                    m1[k] = beta1 * m1[k] + (1.0 - beta1) * g[k];
                    m2[k] = beta2 * m2[k] + (1.0 - beta2) * g[k] * g[k];
                    theta[k] -= lr * (m1[k] / c1) / ((m2[k] / c2).sqrt() + eps);
                }
            }
        }
        observe(iterations, &unflatten(&theta, d));
    }
    let heads = unflatten(&theta, d);
    if status == SoftmaxStatus::MaxIterations {
        f = eval(problem, &heads, beta, settings.key_decay, false).0;
        history.push(f);
    }
    Ok(SoftmaxSolution {
        status,
        heads,
        objective: f,
        history,
        gradient_norm: gnorm,
        iterations,
    })
}
