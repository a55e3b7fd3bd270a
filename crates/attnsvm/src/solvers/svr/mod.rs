//! The support vector regression (SVR) view of attention (spec `primal-dual.md` §1): keys `k_j`
//! are the training inputs, the model is a layer `f(x) = W Φ(x)/h(x)` with
//! `h(x) = Σ_j Φ(x)ᵀΦ(k_j)`, and the no-bias multi-output ε-SVR
//!
//! ```text
//! (P)  min_{W, ξ, ξ̃}  ½ Σ_d ‖w_d‖² + C Σ_{j,d} (ξ_j(d) + ξ̃_j(d))
//!      s.t.  y_j(d) − w_dᵀΦ(k_j)/h(k_j) ≤ ε + ξ_j(d),  w_dᵀΦ(k_j)/h(k_j) − y_j(d) ≤ ε + ξ̃_j(d),  ξ, ξ̃ ≥ 0
//! (D)  max_β  −½ βᵀK̃β − ε‖β‖₁ + yᵀβ   s.t. |β_j| ≤ C,   K̃_ij = κ(k_i, k_j)/(h(k_i) h(k_j))
//! ```
//!
//! has the support-vector expansion `f(q) = Σ_j v_j κ(q, k_j)/Σ_{j'} κ(q, k_{j'})` with
//! `v_j = β_j/h(k_j)`: softmax attention for `κ = exp(xᵀy/√D)`, linear attention for
//! `Φ = elu + 1` ([`SvrKernel`]). Sparse attention is the SVR on a subset of the keys, multi-head
//! attention one SVR per head. Without the bias there is no constraint `Σ_j β_j = 0`, which is
//! what lets arbitrary values be dual solutions (§1.4 caveat 3); [`SvrProblem::from_attention`]
//! builds the SVR whose unique optimum gives back given values; [`attention_as_svr`] does this
//! for every head (and every query's key set of sparse attention) of a layer and reports the
//! duality gaps, KKT residuals and the difference between the expansion and the forward pass.
//!
//! **Engine.** Exact coordinate descent on (D) (each step minimizes over one `β_j` in closed form:
//! a soft threshold and a clip), every `polish_every` epochs an active-set Newton method on the
//! current face (free set F with its signs, bound set U: `K̃_FF β_F = y_F − ε sign(β_F) − K̃_FU β_U`,
//! with steps along the null space of `K̃_FF` when the kernel is singular), kept when it lowers
//! the objective or the gap. Clarabel's interior point method solves the
//! same program as a QP in `(α, α̃)` ([`Engine::Ipm`], the independent oracle of the tests).
//! **Certificate.** [`Certificate`]: the duality gap `P − D` and the proximal fixed-point residual;
//! `Solved` means `rel_gap ≤ tol`.
//!
//! ```
//! use attnsvm::model::attention::{attention, AttentionConfig};
//! use attnsvm::solvers::svr::{Status, Svr, SvrKernel, SvrProblem, SvrSettings};
//! use faer::Mat;
//!
//! let keys = Mat::from_fn(5, 2, |j, c| ((j * 2 + c) as f64).sin());
//! let values = Mat::from_fn(5, 1, |j, _| (j as f64 * 0.7).cos());
//! let queries = Mat::from_fn(3, 2, |i, c| ((i + c) as f64 * 0.3).cos());
//! // The SVR whose optimum is attention with these values, solved from scratch.
//! let problem = SvrProblem::from_attention(keys.clone(), &values, SvrKernel::Exp, 0.01)?;
//! let sol = Svr::new(&problem, SvrSettings::default())?.solve();
//! assert_eq!(sol.status, Status::Solved);
//! assert!(sol.certificate.duality_gap < 1e-9);
//! // Its support-vector expansion is softmax attention.
//! let sve = problem.predict(&sol.beta, &queries)?;
//! let att = attention(&AttentionConfig::softmax(1), &queries, &keys, &values, None)?;
//! assert!((&sve - &att.out).norm_max() < 1e-9);
//! # Ok::<(), attnsvm::Error>(())
//! ```

mod active;
mod features;
mod oracle;
mod problem;
mod view;

/// Counters and timers of a solve (shared with the Att-SVM; `solver` is `"cd"` or
/// `"clarabel-qp"`).
pub use crate::solvers::svm::Info;
pub use features::{ExpFeatureMap, FeatureMap, PrimalLayer};
pub use problem::{Certificate, SvrKernel, SvrProblem};
pub use view::{attention_as_svr, SvrView};

use std::time::Instant;

use faer::Mat;

use crate::error::{invalid, Result};
use problem::prox;

/// Which engine solves the dual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Coordinate descent with support-set polishing.
    #[default]
    CoordinateDescent,
    /// Clarabel's interior point method on the `(α, α̃)` QP.
    Ipm,
}

/// Settings of [`Svr`].
///
/// | field | default | meaning | valid |
/// |---|---|---|---|
/// | `engine` | `CoordinateDescent` | the solver | |
/// | `tol` | `1e-12` | target relative duality gap (IPM: clamped to `[1e-12, 1e-6]`) | `(0, 1)` |
/// | `max_epochs` | `100_000` | coordinate sweeps (IPM: iterations, at most 500) | `≥ 1` |
/// | `time_limit` | `∞` | seconds; the last point is returned as `MaxIterations` | `> 0` |
/// | `polish_every` | `10` | epochs between support-set solves | `≥ 1` |
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvrSettings {
    pub engine: Engine,
    pub tol: f64,
    pub max_epochs: usize,
    pub time_limit: f64,
    pub polish_every: usize,
}

impl Default for SvrSettings {
    fn default() -> Self {
        SvrSettings {
            engine: Engine::CoordinateDescent,
            tol: 1e-12,
            max_epochs: 100_000,
            time_limit: f64::INFINITY,
            polish_every: 10,
        }
    }
}

impl SvrSettings {
    pub fn validate(&self) -> Result<()> {
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(invalid!(
                "svr settings: tol = {} must be in (0, 1)",
                self.tol
            ));
        }
        if self.max_epochs == 0 || self.polish_every == 0 {
            return Err(invalid!(
                "svr settings: max_epochs and polish_every must be positive"
            ));
        }
        if self.time_limit.is_nan() || self.time_limit <= 0.0 {
            return Err(invalid!(
                "svr settings: time_limit = {} must be positive",
                self.time_limit
            ));
        }
        Ok(())
    }
}

/// The answer of a solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// `rel_gap ≤ tol`; the certificate says by how much.
    Solved,
    /// The epoch or time limit was reached; the last point is returned.
    MaxIterations,
    /// The engine failed in floating point (or Clarabel refused the problem).
    NumericalError,
}

/// The dual point `β` (`N×D_v`), its status and certificate.
#[derive(Debug, Clone)]
pub struct SvrSolution {
    pub status: Status,
    pub beta: Mat<f64>,
    pub certificate: Certificate,
    pub info: Info,
}

/// An SVR ready to solve.
#[derive(Debug)]
pub struct Svr<'a> {
    problem: &'a SvrProblem,
    settings: SvrSettings,
}

impl<'a> Svr<'a> {
    pub fn new(problem: &'a SvrProblem, settings: SvrSettings) -> Result<Self> {
        settings.validate()?;
        if problem.bias && settings.engine != Engine::Ipm {
            return Err(invalid!(
                "svr: the bias constraint Σβ = 0 is solved by the IPM engine only"
            ));
        }
        Ok(Svr { problem, settings })
    }

    pub fn solve(&self) -> SvrSolution {
        let start = Instant::now();
        let mut sol = match self.settings.engine {
            Engine::CoordinateDescent => self.coordinate_descent(start),
            Engine::Ipm => oracle::qp(self.problem, &self.settings),
        };
        sol.info.seconds = start.elapsed().as_secs_f64();
        sol
    }

    fn coordinate_descent(&self, start: Instant) -> SvrSolution {
        let p = self.problem;
        let s = &self.settings;
        let (n, m) = (p.n_keys(), p.n_outputs());
        let mut beta = Mat::<f64>::zeros(n, m);
        let mut epochs = 0;
        for col in 0..m {
            let (b, e) = self.solve_column(col, start);
            beta.col_as_slice_mut(col).copy_from_slice(&b);
            epochs = epochs.max(e);
        }
        let certificate = p.certificate(&beta);
        let finite = beta.col_iter().all(|c| c.iter().all(|x| x.is_finite()));
        let status = if !finite || !certificate.duality_gap.is_finite() {
            Status::NumericalError
        } else if certificate.rel_gap <= s.tol {
            Status::Solved
        } else {
            Status::MaxIterations
        };
        SvrSolution {
            status,
            beta,
            certificate,
            info: Info {
                solver: "cd".into(),
                iterations: epochs,
                seconds: 0.0,
                message: String::new(),
            },
        }
    }

    /// One output column: sweeps of exact coordinate minimization with periodic polishing.
    fn solve_column(&self, col: usize, start: Instant) -> (Vec<f64>, usize) {
        let p = self.problem;
        let (k, y) = (p.gram(), p.targets().col_as_slice(col));
        let n = p.n_keys();
        let (c, eps) = (p.c, p.epsilon);
        let mut b = vec![0.0; n];
        // g = K̃β, kept up to date.
        let mut g = vec![0.0; n];
        for epoch in 1..=self.settings.max_epochs {
            for j in 0..n {
                let kjj = k[(j, j)];
                let new = prox(b[j] * kjj + y[j] - g[j], eps, c * kjj) / kjj;
                let delta = new - b[j];
                if delta != 0.0 {
                    b[j] = new;
                    for (i, gi) in g.iter_mut().enumerate() {
                        *gi += delta * k[(i, j)];
                    }
                }
            }
            if epoch % self.settings.polish_every == 0 || epoch == self.settings.max_epochs {
                if let Some(pb) = active::face_newton(k, y, &b, c, eps) {
                    let pg = gram_times(k, &pb);
                    if objective(&pb, &pg, y, eps) < objective(&b, &g, y, eps)
                        || column_gap(&pb, &pg, y, c, eps) < column_gap(&b, &g, y, c, eps)
                    {
                        (b, g) = (pb, pg);
                    }
                }
                let gap = column_gap(&b, &g, y, c, eps);
                let scale = column_scale(&b, &g, y, c, eps);
                let out_of_time = start.elapsed().as_secs_f64() > self.settings.time_limit;
                if gap <= self.settings.tol * scale || out_of_time || !gap.is_finite() {
                    return (b, epoch);
                }
            }
        }
        (b, self.settings.max_epochs)
    }
}

/// `P − D` of one column (see [`Certificate`]).
fn column_gap(b: &[f64], g: &[f64], y: &[f64], c: f64, eps: f64) -> f64 {
    b.iter()
        .zip(g)
        .zip(y)
        .map(|((&bj, &gj), &yj)| {
            let r = yj - gj;
            eps * bj.abs() - bj * r + c * (r.abs() - eps).max(0.0)
        })
        .sum()
}

/// `max(1, |P|, |D|)` of one column.
fn column_scale(b: &[f64], g: &[f64], y: &[f64], c: f64, eps: f64) -> f64 {
    let quad: f64 = b.iter().zip(g).map(|(b, g)| b * g).sum();
    let l1: f64 = b.iter().map(|b| b.abs()).sum();
    let yb: f64 = b.iter().zip(y).map(|(b, y)| b * y).sum();
    let slack: f64 = g
        .iter()
        .zip(y)
        .map(|(g, y)| ((y - g).abs() - eps).max(0.0))
        .sum();
    let primal = 0.5 * quad + c * slack;
    let dual = -0.5 * quad - eps * l1 + yb;
    primal.abs().max(dual.abs()).max(1.0)
}

/// `K̃β`.
fn gram_times(k: &Mat<f64>, b: &[f64]) -> Vec<f64> {
    (0..b.len())
        .map(|i| (0..b.len()).map(|l| k[(i, l)] * b[l]).sum())
        .collect()
}

/// The dual objective in minimization form, `½βᵀK̃β − yᵀβ + ε‖β‖₁`, with `g = K̃β`.
fn objective(b: &[f64], g: &[f64], y: &[f64], eps: f64) -> f64 {
    b.iter()
        .zip(g)
        .zip(y)
        .map(|((b, g), y)| 0.5 * b * g - y * b + eps * b.abs())
        .sum()
}
