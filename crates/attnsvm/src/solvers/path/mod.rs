//! Regularization paths of attention (spec `tf-as-svm.md` §2.4):
//!
//! ```text
//! W̄(R)        = argmin_{‖W‖_F ≤ R} L(W)                       → R·W^mm/‖W^mm‖_F        (global, Frobenius)
//! W̄_⋆(R)      = argmin_{‖W‖_⋆ ≤ R} L(W)                       → R·W^mm_⋆/‖W^mm_⋆‖_⋆    (global, nuclear)
//! (K̄, Q̄)(R)  = argmin_{½(‖K‖²_F + ‖Q‖²_F) ≤ R} L(K Qᵀ)         K̄Q̄ᵀ/R → W^mm_⋆/‖W^mm_⋆‖_⋆
//! W̄_α(R)      = argmin_{‖W‖_F ≤ R, W ∈ C_μ(M)} L(W)            → direction of W^mm_α (α locally optimal, μ small)
//! ```
//!
//! with `C_μ(M) = {W : ⟨W, M⟩ ≥ (1−μ)‖W‖_F‖M‖_F}`, `M = W^mm_α` (the local path). The limits are the
//! papers' theorems: the regularization path converges in direction to the max-margin solution of
//! the matching norm. The (K,Q) link is `‖W‖_⋆ = min_{KQᵀ=W} ½(‖K‖²_F + ‖Q‖²_F)` (valid when the width
//! `m` of K and Q is at least rank W).
//!
//! **Algorithm.** For each radius in increasing order, projected gradient descent on the merit
//! `m(θ) = log(L − L*)` (linear head; `L*` the infimum of the risk), `log L` (other heads, losses with
//! a logarithm) or `L` (the correlation loss with a nonlinear head). The merit is a monotone
//! transform of `L`, so it has the same constrained minimizers and stationary points; in the log
//! domain it stays well scaled when `L − L*` is `e^{−R}`-small and the softmax saturates. Its
//! gradient direction is that of `∇L`, which [`Objective`] returns exactly ([`Scaled`]). One step is
//! `θ⁺ = P(θ − t·ρ·Ĝ)`, `Ĝ = ∇m/‖∇m‖_F`, `ρ` the Frobenius radius of the set (`R`, or `√(2R)` for
//! (K,Q)), `P` the projection ([`project`]). A step is accepted under the Armijo rule
//! `m(θ⁺) − m(θ) ≤ σ⟨∇m(θ), θ⁺ − θ⟩`, then `t ← grow·t`; otherwise `t ← shrink·t`. When the change of
//! the merit is below its rounding level (`64ε·max(1, |m|)`; far along a saturated local path the
//! loss differences drop below the precision of `L`), the change is estimated by the trapezoid rule
//! `½⟨∇m(θ) + ∇m(θ⁺), θ⁺ − θ⟩`, whose gradients are exact at any scale. On the nuclear ball, when the
//! projected step stalls (the SVD round trip of the projection rounds away moves of relative size
//! ≈ 1e-15, while the residual below is linear in rank-one violations), a Frank–Wolfe step
//! `W + γ(S − W)`, `S = −R·u₁v₁ᵀ` from the top singular pair of `∇L`, is tried with the same
//! acceptance rule (γ halved from 4× the last accepted one). Each radius starts from the
//! previous solution scaled to the new radius (`R_new/R_old`, `√(R_new/R_old)` for (K,Q)); the first
//! from `W = 0`, from `R·M/‖M‖_F` on the local path, and from seeded Gaussian `(K, Q)` on the sphere
//! for (K,Q) (`K = Q = 0` is a saddle).
//!
//! **Certificate** (per point; scale-free, so valid under saturation). With the ball constraint
//! active, first-order stationarity means `−∇L` lies in the ball's normal cone at `W`:
//!
//! | set | residual |
//! |---|---|
//! | Frobenius ball | `1 − ⟨−G, W⟩/(‖G‖_F‖W‖_F)` |
//! | nuclear ball | `1 − ⟨−G, W⟩/(‖G‖_op‖W‖_⋆)` (Hölder: the normal cone is `{λS : S ∈ ∂‖W‖_⋆}`) |
//! | (K,Q) ball | `1 − ⟨−(GQ, GᵀK), (K,Q)⟩/(‖(GQ, GᵀK)‖_F‖(K,Q)‖_F)` |
//! | cone ∩ Frobenius ball | `1 − √(1 − min(1, g_h²))`, `g_h = ‖W − P(W − hĜ)‖_F/h`, `h = 10⁻⁷R` |
//!
//! `g_h → dist(−Ĝ, N(W))` as `h → 0` (the norm of the gradient mapping of the unit direction), so the
//! last row is `1 − cos φ` with `φ` the angle between `−∇L` and the normal cone, which equals the
//! first row when only the ball is active. When no constraint is active the residual is the plain
//! `‖∇L‖_F` (stationarity in the interior has no scale-free form). A point is `Solved` when its
//! residual is `≤ tol`.
//!
//! Settings ([`PathSettings`]):
//!
//! | field | default | meaning | valid |
//! |---|---|---|---|
//! | `tol` | `1e-10` | target residual of every point | (0, 1) |
//! | `max_iter` | `100_000` | accepted steps per radius | ≥ 1 |
//! | `step_init` | `0.1` | first step length `t` (relative to `ρ`; carried from radius to radius) | (0, 2] |
//! | `step_grow` | `2` | `t ← grow·t` after an accepted step (capped at 2) | > 1 |
//! | `step_shrink` | `0.5` | `t ← shrink·t` after a rejected step | (0, 1) |
//! | `armijo` | `1e-4` | `σ` of the sufficient-decrease rule | (0, 0.5) |
//! | `kq_width` | `d` | columns `m` of K and Q | ≥ 1 |
//! | `seed` | `0` | the (K,Q) initialization | |
//! | `time_limit` | `∞` | seconds for the whole path; later radii are skipped | > 0 |
//!
//! **Limits.** The risk is non-convex, so the certificate is first-order: a point is a stationary
//! point of its radius, found by continuation from the previous radius. When the global minimizer
//! jumps to another basin the path stays on its branch; its `selected` tokens then differ from
//! `opt` and `log(L − L*)` levels off (seen with the nuclear ball on a sphere (6, 8, 10) instance,
//! whose (K,Q) path follows opt). The ReLU head's risk has kinks (where `W_v x̄` changes sign); there
//! the first-order certificate need not be reachable and points may end `MaxIterations`.
//!
//! The local path is defined with the Frobenius ball only: `P_B ∘ P_C` is the projection onto
//! `C ∩ B` because the ball is a Frobenius ball centred at the apex; for the nuclear ball it is not.
//!
//! ```
//! use attnsvm::data::fixtures::visualization1;
//! use attnsvm::model::{Head, Loss, Objective};
//! use attnsvm::solvers::path::{Ball, PathProblem, PathSettings, RegPath, Status};
//!
//! let inst = visualization1();
//! let mut risk = Objective::new(&inst, Head::Linear, Loss::Logistic, 0)?;
//! let problem = PathProblem::new(Ball::Frobenius, vec![5.0, 20.0, 80.0]);
//! let path = RegPath::new(&mut risk, problem, PathSettings::default())?.solve();
//! assert_eq!(path.status, Status::Solved);
//! assert!(path.points.iter().all(|p| p.residual <= 1e-10));
//! # Ok::<(), attnsvm::Error>(())
//! ```

pub mod project;
mod solve;
mod theta;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::model::{Objective, Scaled};
use project::Cone;

/// The constraint set of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ball {
    /// `‖W‖_F ≤ R` (limit: Frobenius Att-SVM).
    #[serde(rename = "fro")]
    Frobenius,
    /// `‖W‖_⋆ ≤ R` (limit: nuclear Att-SVM).
    #[serde(rename = "nuc")]
    Nuclear,
    /// `½(‖K‖²_F + ‖Q‖²_F) ≤ R` on `W = K Qᵀ` (limit: nuclear Att-SVM).
    Kq,
}

/// Settings of [`RegPath`] (defaults and ranges in the module table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathSettings {
    pub tol: f64,
    pub max_iter: usize,
    pub step_init: f64,
    pub step_grow: f64,
    pub step_shrink: f64,
    pub armijo: f64,
    pub kq_width: Option<usize>,
    pub seed: u64,
    pub time_limit: f64,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings {
            tol: 1e-10,
            max_iter: 100_000,
            step_init: 0.1,
            step_grow: 2.0,
            step_shrink: 0.5,
            armijo: 1e-4,
            kq_width: None,
            seed: 0,
            time_limit: f64::INFINITY,
        }
    }
}

impl PathSettings {
    /// Check every field's range.
    pub fn validate(&self) -> Result<()> {
        let open = |name: &str, x: f64, lo: f64, hi: f64| {
            if x > lo && x < hi {
                Ok(())
            } else {
                Err(invalid!(
                    "path settings: {name} = {x} must lie in ({lo}, {hi})"
                ))
            }
        };
        open("tol", self.tol, 0.0, 1.0)?;
        open("step_shrink", self.step_shrink, 0.0, 1.0)?;
        open("armijo", self.armijo, 0.0, 0.5)?;
        if !(self.step_init > 0.0 && self.step_init <= 2.0) {
            return Err(invalid!(
                "path settings: step_init = {} must lie in (0, 2]",
                self.step_init
            ));
        }
        if !(self.step_grow > 1.0 && self.step_grow.is_finite()) {
            return Err(invalid!(
                "path settings: step_grow = {} must be a number > 1",
                self.step_grow
            ));
        }
        if self.max_iter == 0 {
            return Err(invalid!("path settings: max_iter must be positive"));
        }
        if self.kq_width == Some(0) {
            return Err(invalid!("path settings: kq_width must be ≥ 1"));
        }
        if self.time_limit.is_nan() || self.time_limit <= 0.0 {
            return Err(invalid!(
                "path settings: time_limit = {} must be positive",
                self.time_limit
            ));
        }
        Ok(())
    }
}

/// The cone of the local path: `C_μ(axis)`, with `axis` typically `W^mm_α`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCone {
    pub axis: Mat<f64>,
    pub mu: f64,
}

/// What to compute: the set, the radii and, optionally, the local cone and a reference matrix whose
/// correlation with each point is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct PathProblem {
    pub ball: Ball,
    /// Positive and strictly increasing.
    pub radii: Vec<f64>,
    pub cone: Option<LocalCone>,
    pub reference: Option<Mat<f64>>,
}

impl PathProblem {
    /// The global path of `ball` at `radii`.
    pub fn new(ball: Ball, radii: Vec<f64>) -> Self {
        PathProblem {
            ball,
            radii,
            cone: None,
            reference: None,
        }
    }

    /// Restrict to the cone `C_μ(axis)` (local path; Frobenius ball only).
    pub fn with_cone(mut self, axis: Mat<f64>, mu: f64) -> Self {
        self.cone = Some(LocalCone { axis, mu });
        self
    }

    /// Report `corr(W̄(R), reference)` at every point.
    pub fn with_reference(mut self, reference: Mat<f64>) -> Self {
        self.reference = Some(reference);
        self
    }

    /// Check the problem for matrices of size `d×d`.
    pub fn validate(&self, d: usize) -> Result<()> {
        if self.radii.is_empty() {
            return Err(invalid!("path: no radii given"));
        }
        for (k, &r) in self.radii.iter().enumerate() {
            if !(r > 0.0 && r.is_finite()) {
                return Err(invalid!(
                    "path: radius {k} is {r}; radii must be positive numbers"
                ));
            }
            if k > 0 && r <= self.radii[k - 1] {
                return Err(invalid!(
                    "path: radii must be strictly increasing ({} then {r})",
                    self.radii[k - 1]
                ));
            }
        }
        let check = |name: &str, m: &Mat<f64>| {
            if m.shape() != (d, d) {
                return Err(invalid!(
                    "path: the {name} is {}×{}, expected {d}×{d}",
                    m.nrows(),
                    m.ncols()
                ));
            }
            if !(0..d).all(|j| (0..d).all(|i| m[(i, j)].is_finite())) {
                return Err(invalid!("path: the {name} has non-finite entries"));
            }
            Ok(())
        };
        if let Some(r) = &self.reference {
            check("reference matrix", r)?;
        }
        if let Some(c) = &self.cone {
            check("cone axis", &c.axis)?;
            Cone::new(&c.axis, c.mu)?;
            if self.ball != Ball::Frobenius {
                return Err(invalid!(
                    "path: the local (cone) path is defined with the Frobenius ball only"
                ));
            }
        }
        Ok(())
    }
}

/// The answer for one radius (or for the whole path: the first point that is not `Solved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The residual is `≤ tol`.
    Solved,
    /// The iteration or time limit was reached; the best point so far is returned.
    MaxIterations,
    /// No step of any length ≥ 1e-15·ρ decreased the merit, while the residual is above `tol`.
    InsufficientProgress,
    /// A non-finite loss or gradient appeared.
    NumericalError,
}

/// One point of the path, with its certificate.
#[derive(Debug, Clone)]
pub struct PathPoint {
    pub radius: f64,
    pub status: Status,
    /// The stationarity residual of the module table.
    pub residual: f64,
    /// Accepted steps at this radius.
    pub iterations: usize,
    /// Risk evaluations at this radius.
    pub evaluations: usize,
    /// `W̄(R)` (`K Qᵀ` for (K,Q)).
    pub w: Mat<f64>,
    /// `(K, Q)` for the (K,Q) path.
    pub kq: Option<(Mat<f64>, Mat<f64>)>,
    pub loss: f64,
    pub log_loss: Option<f64>,
    pub log_excess_loss: Option<f64>,
    /// `log ‖∇_W L‖_F`.
    pub log_grad_norm: f64,
    /// The ball constraint holds with equality (relative slack 1e-9).
    pub active: bool,
    /// The cone constraint holds with equality (local path only).
    pub cone_active: Option<bool>,
    pub fro_norm: f64,
    pub nuclear_norm: f64,
    /// `½(‖K‖²_F + ‖Q‖²_F)` for the (K,Q) path.
    pub kq_norm: Option<f64>,
    /// `corr(W̄(R), reference)` and `1 − corr` (precise near one), when a reference is given.
    pub corr: Option<f64>,
    pub one_minus_corr: Option<f64>,
    /// The token of largest attention in each sequence.
    pub selected: Vec<usize>,
    pub seconds: f64,
}

/// The whole path.
#[derive(Debug, Clone)]
pub struct PathResult {
    /// `Solved` when every radius is solved; otherwise the first other status.
    pub status: Status,
    /// One point per radius, in order (fewer when the time limit cut the path short).
    pub points: Vec<PathPoint>,
    pub iterations: usize,
    pub evaluations: usize,
    pub seconds: f64,
}

/// A regularization-path solver for one risk (the Clarabel pattern: `new` validates, `solve`
/// never fails).
pub struct RegPath<'o, 'a> {
    objective: &'o mut Objective<'a>,
    problem: PathProblem,
    settings: PathSettings,
    cone: Option<Cone>,
}

impl<'o, 'a> RegPath<'o, 'a> {
    pub fn new(
        objective: &'o mut Objective<'a>,
        problem: PathProblem,
        settings: PathSettings,
    ) -> Result<Self> {
        settings.validate()?;
        let d = objective.instance().d;
        problem.validate(d)?;
        let cone = match &problem.cone {
            Some(c) => Some(Cone::new(&c.axis, c.mu)?),
            None => None,
        };
        Ok(RegPath {
            objective,
            problem,
            settings,
            cone,
        })
    }

    /// Compute the path; the statuses say how far each point is from stationary.
    pub fn solve(&mut self) -> PathResult {
        solve::run(self)
    }
}

/// `log ‖·‖` of a [`Scaled`] gradient, −∞ for zero.
fn log_norm(g: &Scaled) -> f64 {
    let l = g.log_norm();
    if l.is_nan() {
        f64::NEG_INFINITY
    } else {
        l
    }
}
