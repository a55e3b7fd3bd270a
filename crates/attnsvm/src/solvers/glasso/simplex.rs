//! The non-convex simplex-attention baseline, model (8) of spec `rates-and-convex.md`, Paper B
//! (B2), trained by projected gradient descent:
//!
//! ```text
//! (8)  f(X) = Σ_j (w_jᵀ X v_j)·o_j,   w_j ∈ Δ_n,  v_j ∈ R^d,  o_j ∈ R,   j = 1..h
//!      F = w Σ_i L(f(X_i), y_i) + (β/2) Σ_j (‖v_j‖₂² + o_j²)
//! ```
//!
//! `L` is any [`ConvexLoss`](super::ConvexLoss) of the [`GlassoProblem`] (one output, `c = 1`)
//! and `w` its loss weight (`1` by default, the corrected weight of B2). The objective is the
//! one of [`nonconvex_objective`](super::recover::nonconvex_objective); the heads are
//! [`Head`]s, so [`heads_to_z`](super::recover::heads_to_z) maps them to the convex program (9),
//! whose optimum is a lower bound (B5.1, B5.3).
//!
//! **Gradient.** With `g_i = w ∂L(f(X_i), y_i)`, `u_ij = X_i v_j ∈ R^n` and
//! `s_ij = w_jᵀ u_ij`: `∂F/∂o_j = Σ_i g_i s_ij + β o_j`, `∂F/∂v_j = o_j Σ_i g_i X_iᵀ w_j + β v_j`,
//! `∂F/∂w_j = o_j Σ_i g_i u_ij` ([`objective_and_gradient`]).
//!
//! **Projection.** [`project_simplex`] is the exact sort-based Euclidean projection onto
//! `Δ_n = {w ≥ 0, Σ w = 1}`: sort `x` decreasingly, take the largest `ρ` with
//! `x_(ρ) > (Σ_{r≤ρ} x_(r) − 1)/ρ`, set `τ` to that threshold and `P(x) = max(x − τ, 0)`.
//!
//! **Algorithm.** One step size `t` for all blocks: `w_j⁺ = P(w_j − t∇_{w_j})`,
//! `v_j⁺ = v_j − t∇_{v_j}`, `o_j⁺ = o_j − t∂_{o_j}`. The step is accepted when the quadratic
//! upper model holds, `F(θ⁺) ≤ F(θ) + ⟨∇F, θ⁺ − θ⟩ + ‖θ⁺ − θ‖²/(2t)`, which for a projected step
//! implies `F(θ⁺) ≤ F(θ) − ‖θ⁺ − θ‖²/(2t)`: the accepted objectives never increase. Otherwise
//! `t ← t·shrink` and the step is retried; after an acceptance `t ← t·grow`. Training stops when
//! the gradient mapping `‖θ⁺ − θ‖/t` is `≤ tol·max(1, |F|)` ([`SimplexStatus::Converged`]),
//! after `max_iter` accepted steps, or when `t` underflows (`NoProgress`).
//!
//! **Initialization.** Seeded (`ChaCha8`): `w_j` uniform on the simplex (normalized
//! exponentials, a Dirichlet(1) draw), `v_j` and `o_j` i.i.d. `N(0, init_scale²)`. The origin
//! `v = o = 0` is a stationary point, so the scale must be positive. [`train_from`] starts from
//! given heads instead (e.g. the heads of Proposition 1).
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `max_iter` | `20_000` | accepted steps |
//! | `tol` | `1e-9` | gradient-mapping norm relative to `max(1, |F|)` |
//! | `seed` | `0` | seed of the random init |
//! | `init_scale` | `0.5` | standard deviation of `v_j`, `o_j` at init |
//! | `step` | `1.0` | first step size |
//! | `shrink` / `grow` | `0.5` / `1.5` | backtracking factors |

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::recover::Head;
use super::GlassoProblem;
use crate::error::{invalid, Result};
use crate::linalg::dot;

/// Settings of [`train`] (defaults in the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SimplexSettings {
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    pub init_scale: f64,
    pub step: f64,
    pub shrink: f64,
    pub grow: f64,
}

impl Default for SimplexSettings {
    fn default() -> Self {
        SimplexSettings {
            max_iter: 20_000,
            tol: 1e-9,
            seed: 0,
            init_scale: 0.5,
            step: 1.0,
            shrink: 0.5,
            grow: 1.5,
        }
    }
}

impl SimplexSettings {
    fn validate(&self) -> Result<()> {
        let ok = self.max_iter >= 1
            && self.tol > 0.0
            && self.tol.is_finite()
            && self.init_scale > 0.0
            && self.init_scale.is_finite()
            && self.step > 0.0
            && self.step.is_finite()
            && self.shrink > 0.0
            && self.shrink < 1.0
            && self.grow >= 1.0
            && self.grow.is_finite();
        if ok {
            Ok(())
        } else {
            Err(invalid!("simplex settings out of range: {self:?}"))
        }
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimplexStatus {
    /// The gradient mapping is `≤ tol·max(1, |F|)`.
    Converged,
    /// `max_iter` accepted steps.
    MaxIterations,
    /// The step size underflowed without an acceptable step (rounding level).
    NoProgress,
    /// The objective or the gradient became non-finite.
    NumericalError,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct SimplexSolution {
    pub status: SimplexStatus,
    pub heads: Vec<Head>,
    /// `F` at the returned heads.
    pub objective: f64,
    /// `F` at every accepted iterate, the initial point first (non-increasing).
    pub history: Vec<f64>,
    /// The last gradient-mapping norm `‖θ⁺ − θ‖/t`.
    pub stationarity: f64,
    /// Accepted steps.
    pub iterations: usize,
}

/// The Euclidean projection of `x` onto the probability simplex (sort-based, exact).
pub fn project_simplex(x: &[f64]) -> Vec<f64> {
    let mut s = x.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let (mut cum, mut tau) = (0.0, 0.0);
    for (r, &v) in s.iter().enumerate() {
        cum += v;
        let t = (cum - 1.0) / (r + 1) as f64;
        if v > t {
            tau = t;
        }
    }
    x.iter().map(|&v| (v - tau).max(0.0)).collect()
}

fn check(problem: &GlassoProblem, beta: f64, heads: &[Head]) -> Result<()> {
    if problem.outputs != 1 {
        return Err(invalid!(
            "simplex attention: model (8) has one output, this program has c = {}",
            problem.outputs
        ));
    }
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(invalid!(
            "simplex attention: β = {beta} must be finite, ≥ 0"
        ));
    }
    if heads.is_empty() {
        return Err(invalid!("simplex attention: need at least one head"));
    }
    for (j, h) in heads.iter().enumerate() {
        if h.attention.len() != problem.n_tokens || h.value.len() != problem.d {
            return Err(invalid!(
                "head {j}: attention has {} entries and value {}, expected n = {} and d = {}",
                h.attention.len(),
                h.value.len(),
                problem.n_tokens,
                problem.d
            ));
        }
    }
    Ok(())
}

/// `F` and its gradient; the gradient is laid out as heads (`attention` = `∂F/∂w_j`, `value` =
/// `∂F/∂v_j`, `output` = `∂F/∂o_j`). `∂F/∂w_j` is the gradient in `R^n`, not projected.
pub fn objective_and_gradient(
    problem: &GlassoProblem,
    heads: &[Head],
    beta: f64,
) -> Result<(f64, Vec<Head>)> {
    check(problem, beta, heads)?;
    Ok(eval(problem, heads, beta, true))
}

/// `F` and (when `grad`) its gradient, without checks.
fn eval(problem: &GlassoProblem, heads: &[Head], beta: f64, grad: bool) -> (f64, Vec<Head>) {
    let (nn, n, d, x) = (
        problem.n_samples,
        problem.n_tokens,
        problem.d,
        problem.tokens(),
    );
    let h = heads.len();
    // u[i][j] = X_i v_j ∈ R^n and s[i][j] = w_jᵀ u_ij.
    let mut u = vec![0.0; nn * h * n];
    let mut s = vec![0.0; nn * h];
    let mut pred = vec![0.0; nn];
    for i in 0..nn {
        for (j, hd) in heads.iter().enumerate() {
            let uij = &mut u[(i * h + j) * n..(i * h + j + 1) * n];
            for (k, ukj) in uij.iter_mut().enumerate() {
                *ukj = dot(&x[(i * n + k) * d..(i * n + k + 1) * d], &hd.value);
            }
            s[i * h + j] = dot(&hd.attention, uij);
            pred[i] += s[i * h + j] * hd.output;
        }
    }
    let reg: f64 = heads
        .iter()
        .map(|hd| dot(&hd.value, &hd.value) + hd.output * hd.output)
        .sum();
    let value = problem.smooth_value(&pred) + 0.5 * beta * reg;
    if !grad {
        return (value, Vec::new());
    }
    let g = problem.dloss(&pred);
    let mut out: Vec<Head> = heads
        .iter()
        .map(|hd| Head {
            attention: vec![0.0; n],
            value: hd.value.iter().map(|v| beta * v).collect(),
            output: beta * hd.output,
        })
        .collect();
    for (i, &gi) in g.iter().enumerate() {
        if gi == 0.0 {
            continue;
        }
        for (j, (hd, gr)) in heads.iter().zip(out.iter_mut()).enumerate() {
            gr.output += gi * s[i * h + j];
            let go = gi * hd.output;
            let uij = &u[(i * h + j) * n..(i * h + j + 1) * n];
            for k in 0..n {
                gr.attention[k] += go * uij[k];
                let c = go * hd.attention[k];
                if c != 0.0 {
                    let xik = &x[(i * n + k) * d..(i * n + k + 1) * d];
                    for (gv, &xv) in gr.value.iter_mut().zip(xik) {
                        *gv += c * xv;
                    }
                }
            }
        }
    }
    (value, out)
}

/// `h` seeded random heads: `w_j` uniform on `Δ_n`, `v_j`, `o_j` Gaussian with sd `scale`.
pub fn random_heads(n: usize, d: usize, h: usize, scale: f64, seed: u64) -> Vec<Head> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..h)
        .map(|_| {
            let e: Vec<f64> = (0..n).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
            let total: f64 = e.iter().sum();
            Head {
                attention: e.iter().map(|v| v / total).collect(),
                value: (0..d)
                    .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
                    .collect(),
                output: scale * rng.sample::<f64, _>(StandardNormal),
            }
        })
        .collect()
}

/// Train model (8) with `h` heads from the seeded random init of `settings`.
pub fn train(
    problem: &GlassoProblem,
    beta: f64,
    h: usize,
    settings: &SimplexSettings,
) -> Result<SimplexSolution> {
    settings.validate()?;
    let init = random_heads(
        problem.n_tokens,
        problem.d,
        h,
        settings.init_scale,
        settings.seed,
    );
    train_from(problem, beta, init, settings)
}

/// Train model (8) from the given heads (each `w_j` is first projected onto `Δ_n`).
pub fn train_from(
    problem: &GlassoProblem,
    beta: f64,
    init: Vec<Head>,
    settings: &SimplexSettings,
) -> Result<SimplexSolution> {
    train_observed(problem, beta, init, settings, |_, _| {})
}

/// [`train_from`], calling `observe(step, heads)` after every accepted step.
pub fn train_observed(
    problem: &GlassoProblem,
    beta: f64,
    init: Vec<Head>,
    settings: &SimplexSettings,
    mut observe: impl FnMut(usize, &[Head]),
) -> Result<SimplexSolution> {
    settings.validate()?;
    check(problem, beta, &init)?;
    let mut heads = init;
    for hd in &mut heads {
        hd.attention = project_simplex(&hd.attention);
    }
    let (mut f, mut grad) = eval(problem, &heads, beta, true);
    let mut history = vec![f];
    let mut t = settings.step;
    let mut stationarity = f64::INFINITY;
    let mut status = SimplexStatus::MaxIterations;
    let mut iterations = 0;
    while iterations < settings.max_iter {
        if !f.is_finite() {
            status = SimplexStatus::NumericalError;
            break;
        }
        // Backtrack until the quadratic upper model holds.
        let accepted = loop {
            let trial: Vec<Head> = heads
                .iter()
                .zip(&grad)
                .map(|(hd, gr)| Head {
                    attention: project_simplex(
                        &hd.attention
                            .iter()
                            .zip(&gr.attention)
                            .map(|(w, g)| w - t * g)
                            .collect::<Vec<_>>(),
                    ),
                    value: hd
                        .value
                        .iter()
                        .zip(&gr.value)
                        .map(|(v, g)| v - t * g)
                        .collect(),
                    output: hd.output - t * gr.output,
                })
                .collect();
            let (mut lin, mut sq) = (0.0, 0.0);
            for ((a, b), gr) in trial.iter().zip(&heads).zip(&grad) {
                let dw: Vec<f64> = a
                    .attention
                    .iter()
                    .zip(&b.attention)
                    .map(|(p, q)| p - q)
                    .collect();
                let dv: Vec<f64> = a.value.iter().zip(&b.value).map(|(p, q)| p - q).collect();
                let dout = a.output - b.output;
                lin += dot(&dw, &gr.attention) + dot(&dv, &gr.value) + dout * gr.output;
                sq += dot(&dw, &dw) + dot(&dv, &dv) + dout * dout;
            }
            let (ft, _) = eval(problem, &trial, beta, false);
            if ft.is_finite() && ft <= f + lin + sq / (2.0 * t) && ft <= f {
                break Some((trial, ft, sq.sqrt() / t));
            }
            t *= settings.shrink;
            if t < 1e-300 {
                break None;
            }
        };
        let Some((trial, ft, gm)) = accepted else {
            status = SimplexStatus::NoProgress;
            break;
        };
        heads = trial;
        iterations += 1;
        stationarity = gm;
        (f, grad) = eval(problem, &heads, beta, true);
        debug_assert!(f == ft);
        history.push(f);
        observe(iterations, &heads);
        if grad.iter().any(|g| {
            !g.output.is_finite() || g.value.iter().chain(&g.attention).any(|v| !v.is_finite())
        }) {
            status = SimplexStatus::NumericalError;
            break;
        }
        if gm <= settings.tol * f.abs().max(1.0) {
            status = SimplexStatus::Converged;
            break;
        }
        t *= settings.grow;
    }
    Ok(SimplexSolution {
        status,
        heads,
        objective: f,
        history,
        stationarity,
        iterations,
    })
}
