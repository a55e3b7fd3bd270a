//! The token-group lasso of convex attention (spec `rates-and-convex.md`, Paper B, programs (9)
//! and (12)):
//!
//! ```text
//! (9)   min_{Z ∈ R^{n×d}}        w Σ_i L(⟨X_i, Z⟩_F, y_i)          + β Σ_k ‖z_k‖₂
//! (12)  min_{Z_1..Z_c ∈ R^{n×d}} w Σ_i Σ_l L(⟨X_i, Z_l⟩_F, y_il)   + β Σ_l Σ_k ‖z_{l,k}‖₂
//! ```
//!
//! `N` samples `X_i ∈ R^{n×d}` (n tokens), groups = token rows `z_k` (one per output in (12)).
//! The loss weight `w` is explicit: the corrected program has `w = 1` (the default); the paper
//! prints `w = ½` in (9) ([`PRINTED_LOSS_WEIGHT`], via [`GlassoProblem::with_loss_weight`]), which
//! breaks the equivalence with the attention model (8) (spec B2, B5.4). Losses implement
//! [`ConvexLoss`]: [`Squared`] `(ŷ − y)²` takes real targets, [`Logistic`] labels ±1.
//!
//! **Engine.** FISTA with group soft-thresholding `prox(v_k) = max(0, 1 − τβ/‖v_k‖)·v_k`,
//! backtracking, function and gradient restarts (so the accepted objectives never increase), and
//! warm starts along a β path ([`path`]). `β_max = max_{l,k} ‖(∇f(0))_{l,k}‖₂` is exact
//! ([`GlassoProblem::beta_max`]); `Z = 0` is optimal iff `β ≥ β_max`.
//!
//! **Certificate.** Write `A` for the `N×nd` matrix with rows `vec X_i`, `φ_il(u) = w L(u, y_il)`,
//! `g = φ'(A Z)` and `∇f = Aᵀg`. Fenchel duality gives
//! `max_θ D(θ) = −Σ φ_il*(−θ_il)  s.t.  ‖(Aᵀθ)_{l,k}‖₂ ≤ β ∀ l,k` (the dual norm of the group
//! ℓ1 norm is the max of the group ℓ2 norms), with `θ* = −g(Z*)` at the optimum. From any `Z` we
//! take `θ = −s·g`, `s = min(1, β / max_{l,k} ‖(∇f)_{l,k}‖)`, which is dual feasible, so
//! `gap = P(Z) − D(θ) ≥ P(Z) − P* ≥ 0` bounds the suboptimality; it is 0 exactly at the optimum
//! (`s = 1` and Fenchel–Young is tight). `φ*(u) = w L*(u/w)`. The answer is `Solved` when
//! `gap / max(|P|, |D|) ≤ tol`; a loss without a conjugate is judged by the KKT residuals
//! (`‖∇_k f + β z_k/‖z_k‖‖` on active rows, `(‖∇_k f‖ − β)₊` on zero rows) relative to β.
//!
//! ```
//! use attnsvm::solvers::glasso::{Glasso, GlassoProblem, GlassoSettings, Squared, Status};
//!
//! // N = 3 samples, n = 2 tokens, d = 1.
//! let x = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let problem = GlassoProblem::new((3, 2, 1), &x, vec![1.0, -1.0, 0.5], 1, Squared)?;
//! let beta = 0.5 * problem.beta_max();
//! let sol = Glasso::new(&problem, beta, GlassoSettings::default())?.solve();
//! assert_eq!(sol.status, Status::Solved);
//! assert!(sol.certificate.rel_gap <= 1e-8);
//! # Ok::<(), attnsvm::Error>(())
//! ```

mod fista;
pub mod gated;
mod loss;
mod problem;
pub mod recover;
pub mod simplex;
pub mod softmax;

pub use loss::{ConvexLoss, Logistic, Squared};
pub use problem::{Certificate, GlassoProblem, PRINTED_LOSS_WEIGHT};

use std::time::Instant;

use faer::Mat;

use crate::error::{invalid, Result};

/// Settings of [`Glasso`].
///
/// | field | default | meaning | valid |
/// |---|---|---|---|
/// | `tol` | `1e-8` | target relative duality gap (KKT residual / β without a conjugate) | `(0, 1)` |
/// | `max_iter` | `100_000` | accepted and rejected FISTA steps | `≥ 1` |
/// | `time_limit` | `∞` | seconds; the last iterate is returned as `MaxIterations` | `> 0` |
/// | `check_every` | `10` | iterations between certificates (each costs one `Aᵀg`) | `≥ 1` |
/// | `backtrack_factor` | `2` | growth of the Lipschitz estimate when the step is too long | `> 1` |
/// | `zero_tol` | `0` | a group counts as active when `‖z_{l,k}‖ > zero_tol` (the prox gives exact zeros) | `≥ 0` |
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlassoSettings {
    pub tol: f64,
    pub max_iter: usize,
    pub time_limit: f64,
    pub check_every: usize,
    pub backtrack_factor: f64,
    pub zero_tol: f64,
}

impl Default for GlassoSettings {
    fn default() -> Self {
        GlassoSettings {
            tol: 1e-8,
            max_iter: 100_000,
            time_limit: f64::INFINITY,
            check_every: 10,
            backtrack_factor: 2.0,
            zero_tol: 0.0,
        }
    }
}

impl GlassoSettings {
    /// Check every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(invalid!(
                "glasso settings: tol = {} must be in (0, 1)",
                self.tol
            ));
        }
        if self.max_iter == 0 || self.check_every == 0 {
            return Err(invalid!(
                "glasso settings: max_iter and check_every must be positive"
            ));
        }
        if self.time_limit.is_nan() || self.time_limit <= 0.0 {
            return Err(invalid!(
                "glasso settings: time_limit = {} must be positive",
                self.time_limit
            ));
        }
        if !(self.backtrack_factor > 1.0 && self.backtrack_factor.is_finite()) {
            return Err(invalid!(
                "glasso settings: backtrack_factor = {} must be > 1",
                self.backtrack_factor
            ));
        }
        if !(self.zero_tol >= 0.0 && self.zero_tol.is_finite()) {
            return Err(invalid!(
                "glasso settings: zero_tol = {} must be ≥ 0",
                self.zero_tol
            ));
        }
        Ok(())
    }
}

/// The answer of a solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// The relative duality gap (or KKT residual) is `≤ tol`; `certificate` shows it.
    Solved,
    /// The iteration or time limit was reached; the last iterate is returned.
    MaxIterations,
    /// A plain proximal-gradient step no longer decreases the objective in floating point.
    InsufficientProgress,
    /// The objective became non-finite.
    NumericalError,
}

/// Counters and timers of a solve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Info {
    pub iterations: usize,
    /// Momentum resets (function and gradient restarts).
    pub restarts: usize,
    /// Lipschitz-estimate increases.
    pub backtracks: usize,
    /// The final Lipschitz estimate.
    pub lipschitz: f64,
    pub seconds: f64,
    /// The objective `P` at every accepted iterate, starting point first (non-increasing up to
    /// `1e-14·|P|`, the rounding of `P`).
    pub history: Vec<f64>,
    /// Why the engine stopped, when not solved; empty otherwise.
    pub message: String,
}

/// Solution of a token-group lasso at one β.
#[derive(Debug, Clone)]
pub struct GlassoSolution {
    pub status: Status,
    pub beta: f64,
    /// `Z`: `c` blocks of `n·d` values, each row-major (token, feature).
    pub z: Vec<f64>,
    /// `‖z_{l,k}‖₂`, `c×n` row-major.
    pub row_norms: Vec<f64>,
    /// Groups `(l, k)` with `‖z_{l,k}‖ > zero_tol`.
    pub active_groups: usize,
    /// Tokens `k` with some active group `(l, k)` (for `c = 1`, the active groups).
    pub active_tokens: usize,
    /// Predictions `⟨X_i, Z_l⟩`, `N×c` row-major.
    pub predictions: Vec<f64>,
    /// The weighted loss `w Σ L(ŷ, y)` (the training loss of the path).
    pub loss: f64,
    /// `Σ ‖z_{l,k}‖₂`.
    pub penalty: f64,
    /// `loss + β·penalty`.
    pub objective: f64,
    pub certificate: Certificate,
    pub info: Info,
}

impl GlassoSolution {
    /// `Z_l` as an `n×d` matrix.
    pub fn z_matrix(&self, problem: &GlassoProblem, l: usize) -> Mat<f64> {
        let (n, d, m) = (problem.n_tokens, problem.d, problem.block());
        Mat::from_fn(n, d, |k, f| self.z[l * m + k * d + f])
    }
}

/// A token-group-lasso solver for one program and one β (`new` validates, `solve` never fails).
pub struct Glasso<'p, 'a> {
    problem: &'p GlassoProblem<'a>,
    beta: f64,
    settings: GlassoSettings,
    warm: Option<Vec<f64>>,
    lipschitz: Option<f64>,
}

impl<'p, 'a> Glasso<'p, 'a> {
    /// A solver at `β > 0` (finite), starting from `Z = 0`.
    pub fn new(
        problem: &'p GlassoProblem<'a>,
        beta: f64,
        settings: GlassoSettings,
    ) -> Result<Self> {
        settings.validate()?;
        if !(beta.is_finite() && beta > 0.0) {
            return Err(invalid!("glasso: β = {beta} must be positive and finite"));
        }
        Ok(Glasso {
            problem,
            beta,
            settings,
            warm: None,
            lipschitz: None,
        })
    }

    /// Start from `z` (laid out like [`GlassoSolution::z`]) instead of `0`.
    pub fn with_warm_start(mut self, z: &[f64]) -> Result<Self> {
        if z.len() != self.problem.n_vars() {
            return Err(invalid!(
                "glasso: warm start has {} values, expected c·n·d = {}",
                z.len(),
                self.problem.n_vars()
            ));
        }
        if z.iter().any(|v| !v.is_finite()) {
            return Err(invalid!("glasso: warm start is not finite"));
        }
        self.warm = Some(z.to_vec());
        Ok(self)
    }

    /// Solve; the status says what the answer is.
    pub fn solve(&self) -> GlassoSolution {
        self.solve_observed(|_, _| {})
    }

    /// [`Self::solve`], calling `observe(iteration, Z)` after every accepted step (e.g. to record
    /// a test error against time; the observer's own time counts in `info.seconds`).
    pub fn solve_observed(&self, mut observe: impl FnMut(usize, &[f64])) -> GlassoSolution {
        let start = Instant::now();
        let p = self.problem;
        let z0 = self.warm.clone().unwrap_or_else(|| vec![0.0; p.n_vars()]);
        let lip = self.lipschitz.unwrap_or_else(|| p.lipschitz_guess());
        let out = fista::solve(p, self.beta, &self.settings, z0, lip, &mut observe);
        let row_norms = p.group_norms(&out.z);
        let zt = self.settings.zero_tol;
        let active_groups = row_norms.iter().filter(|&&r| r > zt).count();
        let active_tokens = (0..p.n_tokens)
            .filter(|&k| (0..p.outputs).any(|l| row_norms[l * p.n_tokens + k] > zt))
            .count();
        let loss = p.smooth_value(&out.predictions);
        let penalty: f64 = row_norms.iter().sum();
        GlassoSolution {
            status: out.status,
            beta: self.beta,
            row_norms,
            active_groups,
            active_tokens,
            predictions: out.predictions,
            loss,
            penalty,
            objective: loss + self.beta * penalty,
            certificate: out.certificate,
            z: out.z,
            info: Info {
                iterations: out.iterations,
                restarts: out.restarts,
                backtracks: out.backtracks,
                lipschitz: out.lipschitz,
                seconds: start.elapsed().as_secs_f64(),
                history: out.history,
                message: out.message,
            },
        }
    }
}

/// The regularization path: one solution per β, in the order given, each warm-started from the
/// previous one (pass a decreasing sequence, e.g. a geometric grid below `β_max`). Each solution
/// carries its active-token count and loss.
pub fn path(
    problem: &GlassoProblem,
    betas: &[f64],
    settings: &GlassoSettings,
) -> Result<Vec<GlassoSolution>> {
    settings.validate()?;
    if let Some(b) = betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(invalid!("glasso path: β = {b} must be positive and finite"));
    }
    let mut lip = problem.lipschitz_guess();
    let mut warm = vec![0.0; problem.n_vars()];
    let mut out = Vec::with_capacity(betas.len());
    for &beta in betas {
        let solver = Glasso {
            problem,
            beta,
            settings: settings.clone(),
            warm: Some(warm),
            lipschitz: Some(lip),
        };
        let sol = solver.solve();
        // The estimate only grows inside a solve; carrying it over skips the same backtracks.
        lip = sol.info.lipschitz;
        warm = sol.z.clone();
        out.push(sol);
    }
    Ok(out)
}
