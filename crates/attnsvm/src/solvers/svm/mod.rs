//! Att-SVM (spec `tf-as-svm.md` §2.2–2.3, §2.5, §2.8):
//!
//! ```text
//! W^mm   = argmin ‖W‖_F  s.t. (x_{iα_i} − x_it)ᵀ W z_i ≥ 1   ∀ i, t ≠ α_i      (Att-SVM)
//! W^mm_⋆ = argmin ‖W‖_⋆  s.t. the same constraints                          (Att-SVM⋆)
//! ```
//!
//! Engines: dual coordinate ascent with per-sample blocks and an exact support-set polish
//! (Frobenius), reweighted Frobenius solves (nuclear); Clarabel's interior point method is the
//! oracle (`Solver::Ipm`; the nuclear SDP needs the `sdp` feature). Every answer carries a
//! certificate: KKT residuals and a duality gap when solved, a checked Farkas certificate
//! (`λ ≥ 0, Σλ = 1, Σ λ_k A_k = 0`) when infeasible.
//!
//! ```
//! use attnsvm::data::fixtures::visualization1;
//! use attnsvm::solvers::svm::{AttSvm, AttSvmProblem, Layout, Norm, Status, SvmSettings};
//!
//! let inst = visualization1();
//! let alpha = inst.optimal_tokens();
//! let problem = AttSvmProblem::att_svm(&inst, &alpha, Layout::default())?;
//! let sol = AttSvm::new(&problem, SvmSettings::default())?.solve();
//! assert_eq!(sol.status, Status::Solved);
//! assert!(sol.kkt.duality_gap < 1e-9);
//! # Ok::<(), attnsvm::Error>(())
//! ```

mod certificate;
mod dual;
pub mod equivalence;
mod mnp;
mod nuclear;
mod oracle;
mod polish;
mod problem;
pub mod tokens;

pub use certificate::{certify, farkas, nuclear_norm, op_norm, Farkas, Kkt};
pub use problem::{AttSvmProblem, Constraint, Layout, Norm, Sample};

use std::time::Instant;

use faer::Mat;

use crate::error::{invalid, Result};

/// Which engine solves the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// The first-order/dual engine for the norm.
    #[default]
    Auto,
    /// Dual coordinate ascent (Frobenius) / reweighted dual solves (nuclear).
    Dual,
    /// Clarabel's interior point method (QP for Frobenius; SDP for nuclear, feature `sdp`).
    Ipm,
}

/// Settings of [`AttSvm`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `norm` | `Frobenius` | the norm minimized |
/// | `solver` | `Auto` | engine: the dual engines; Clarabel's QP for small Frobenius programs with equalities or right-hand sides other than 1 |
/// | `tol` | `1e-10` | target relative duality gap and KKT residuals |
/// | `max_iter` | `200_000` | epochs (dual), outer iterations (nuclear), iterations (IPM) |
/// | `time_limit` | `∞` | seconds; the best point so far is returned as `MaxIterations` |
/// | `support_tol` | `1e-6` | a token is a support token when its margin is `≤ 1 + support_tol` (by margin) or its dual is `> support_tol·max λ` (by dual) |
/// | `seed` | `0` | the order in which dual coordinates are visited |
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvmSettings {
    pub norm: Norm,
    pub solver: Solver,
    pub tol: f64,
    pub max_iter: usize,
    pub time_limit: f64,
    pub support_tol: f64,
    pub seed: u64,
}

impl Default for SvmSettings {
    fn default() -> Self {
        SvmSettings {
            norm: Norm::Frobenius,
            solver: Solver::Auto,
            tol: 1e-10,
            max_iter: 200_000,
            time_limit: f64::INFINITY,
            support_tol: 1e-6,
            seed: 0,
        }
    }
}

impl SvmSettings {
    /// Check every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(invalid!(
                "svm settings: tol = {} must be in (0, 1)",
                self.tol
            ));
        }
        if self.max_iter == 0 {
            return Err(invalid!("svm settings: max_iter must be positive"));
        }
        if self.time_limit.is_nan() || self.time_limit <= 0.0 {
            return Err(invalid!(
                "svm settings: time_limit = {} must be positive",
                self.time_limit
            ));
        }
        if !(self.support_tol > 0.0 && self.support_tol < 1.0) {
            return Err(invalid!(
                "svm settings: support_tol = {} must be in (0, 1)",
                self.support_tol
            ));
        }
        Ok(())
    }
}

/// The answer of a solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// Optimal to the tolerance; `kkt` certifies it.
    Solved,
    /// No W satisfies the constraints; `farkas` certifies it.
    Infeasible,
    /// The iteration or time limit was reached; the best point so far is returned.
    MaxIterations,
    /// The engine could not make progress in floating point.
    NumericalError,
}

/// Counters and timers of a solve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Info {
    /// The engine that produced the answer (`"dual-cd"`, `"irls"`, `"clarabel-qp"`, `"clarabel-sdp"`).
    pub solver: String,
    pub iterations: usize,
    pub seconds: f64,
    /// What the engine says about the answer (e.g. why it stopped); empty when nothing to say.
    pub message: String,
}

/// Solution of an Att-SVM.
#[derive(Debug, Clone)]
pub struct SvmSolution {
    pub status: Status,
    pub norm: Norm,
    /// `W` (d×d). Zero when infeasible.
    pub w: Mat<f64>,
    /// One multiplier per constraint (`≥ 0` for inequalities).
    pub duals: Vec<f64>,
    /// `⟨W, A_k⟩` per constraint.
    pub margins: Vec<f64>,
    /// `‖W‖` in the program's norm.
    pub objective: f64,
    /// Constraints whose margin is `≤ rhs + support_tol` (support tokens by margin).
    pub support_by_margin: Vec<usize>,
    /// Constraints whose multiplier is `> support_tol · max λ` (support tokens by dual).
    pub support_by_dual: Vec<usize>,
    pub kkt: Kkt,
    /// Present when `status == Infeasible`.
    pub farkas: Option<Farkas>,
    pub info: Info,
}

/// An Att-SVM solver for one problem (the Clarabel pattern: `new` validates, `solve` never fails).
pub struct AttSvm<'p, 'a> {
    problem: &'p AttSvmProblem<'a>,
    settings: SvmSettings,
}

impl<'p, 'a> AttSvm<'p, 'a> {
    pub fn new(problem: &'p AttSvmProblem<'a>, settings: SvmSettings) -> Result<Self> {
        settings.validate()?;
        Ok(AttSvm { problem, settings })
    }

    /// Solve; the status says what the answer is.
    pub fn solve(&self) -> SvmSolution {
        let start = Instant::now();
        let (p, s) = (self.problem, &self.settings);
        if let Some(sol) = trivially_infeasible(p, s) {
            return finish(sol, start);
        }
        let sol = match (s.norm, s.solver) {
            // Programs with equalities or other right-hand sides (the equivalence's W_fin and
            // W_dir) have no Farkas path in the dual engine: small ones go to the interior point
            // method, which certifies infeasibility for them too.
            (Norm::Frobenius, Solver::Auto)
                if !p.is_standard() && p.d * p.d * p.n_constraints() <= 1 << 22 =>
            {
                oracle::qp(p, s)
            }
            (Norm::Frobenius, Solver::Auto | Solver::Dual) => dual::solve(p, s),
            (Norm::Frobenius, Solver::Ipm) => oracle::qp(p, s),
            (Norm::Nuclear, Solver::Auto | Solver::Dual) => nuclear::solve(p, s),
            #[cfg(feature = "sdp")]
            (Norm::Nuclear, Solver::Ipm) => oracle::sdp(p, s),
            #[cfg(not(feature = "sdp"))]
            (Norm::Nuclear, Solver::Ipm) => unsupported(p, s),
        };
        finish(sol, start)
    }
}

fn finish(mut sol: SvmSolution, start: Instant) -> SvmSolution {
    sol.info.seconds = start.elapsed().as_secs_f64();
    sol
}

#[cfg(not(feature = "sdp"))]
fn unsupported(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    let mut sol = SvmSolution::empty(p, s.norm, Status::NumericalError, "none");
    sol.info.message =
        "the nuclear-norm interior point oracle needs the `sdp` feature (cargo build --features sdp)".into();
    sol
}

/// A constraint `⟨W, 0⟩ ≥ r > 0`: the selected token equals another token of its sequence, or the
/// query is zero. Infeasible at once; the certificate is that constraint alone.
fn trivially_infeasible(p: &AttSvmProblem, s: &SvmSettings) -> Option<SvmSolution> {
    let k = (0..p.n_constraints()).find(|&k| {
        let c = p.constraints()[k];
        p.norm_sq(k) == 0.0 && (c.rhs > 0.0 || (c.equality && c.rhs != 0.0))
    })?;
    let c = p.constraints()[k];
    let smp = p.samples()[c.sample as usize];
    let what = if p.query(c.sample as usize).iter().all(|&v| v == 0.0) {
        "the query is zero".to_string()
    } else {
        format!("token {} equals token {}", c.plus, c.minus)
    };
    let mut lambda = vec![0.0; p.n_constraints()];
    lambda[k] = 1.0;
    let mut sol = SvmSolution::empty(p, s.norm, Status::Infeasible, "presolve");
    sol.farkas = Some(farkas(p, &lambda));
    sol.info.message = format!(
        "sample {} (sequence {}{}): {what}, so constraint {k} reads 0 ≥ {}",
        c.sample,
        smp.sequence,
        smp.position
            .map(|q| format!(", query position {q}"))
            .unwrap_or_default(),
        c.rhs
    );
    Some(sol)
}

impl SvmSolution {
    /// A solution with `W = 0` and zero duals, to be filled in by an engine.
    pub(crate) fn empty(p: &AttSvmProblem, norm: Norm, status: Status, solver: &str) -> Self {
        let m = p.n_constraints();
        SvmSolution {
            status,
            norm,
            w: Mat::zeros(p.d, p.d),
            duals: vec![0.0; m],
            margins: vec![0.0; m],
            objective: 0.0,
            support_by_margin: Vec::new(),
            support_by_dual: Vec::new(),
            kkt: Kkt::default(),
            farkas: None,
            info: Info {
                solver: solver.to_string(),
                iterations: 0,
                seconds: 0.0,
                message: String::new(),
            },
        }
    }

    /// Fill `w`, `duals`, margins, objective, supports and the certificate from a primal-dual pair.
    pub(crate) fn from_pair(
        p: &AttSvmProblem,
        settings: &SvmSettings,
        status: Status,
        w: Vec<f64>,
        duals: Vec<f64>,
        info: Info,
    ) -> Self {
        let d = p.d;
        let margins = p.margins(&w);
        let kkt = certify(p, settings.norm, &w, &duals, &margins);
        let wm = crate::linalg::mat_from_row_major(d, d, &w);
        let objective = match settings.norm {
            Norm::Frobenius => crate::linalg::fro_norm(&wm),
            Norm::Nuclear => certificate::nuclear_norm(&wm),
        };
        let cons = p.constraints();
        let support_by_margin = (0..margins.len())
            .filter(|&k| !cons[k].equality && margins[k] <= cons[k].rhs + settings.support_tol)
            .collect();
        let lmax = duals.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        let support_by_dual = (0..duals.len())
            .filter(|&k| !cons[k].equality && duals[k] > settings.support_tol * lmax)
            .collect();
        SvmSolution {
            status,
            norm: settings.norm,
            w: wm,
            duals,
            margins,
            objective,
            support_by_margin,
            support_by_dual,
            kkt,
            farkas: None,
            info,
        }
    }
}
