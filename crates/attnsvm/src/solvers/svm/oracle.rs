//! Clarabel interior point oracle for the Att-SVM (spec `rust-ecosystem.md` §2.1). Clarabel solves
//! `min ½xᵀPx + qᵀx  s.t.  Ax + s = b, s ∈ K`; a margin row `⟨W, A_k⟩ ≥ r_k` (`= r_k`) is the row
//! `−vec(A_k)` with `b = −r_k` in the nonnegative (zero) cone, so `s_k = ⟨W, A_k⟩ − r_k`.
//!
//! ```text
//! QP  (Frobenius):  x = vec(W) (row-major, d²),  P = I, q = 0
//!                   min ½‖W‖_F²  s.t.  ⟨W, A_k⟩ ≥ r_k
//! SDP (nuclear):    x = column-wise upper triangle of Z = [[U, W], [Wᵀ, V]] (2d × 2d, unscaled)
//!                   min ½(tr U + tr V)  s.t.  Z ⪰ 0,  ⟨W, A_k⟩ ≥ r_k,   W_ij = Z[i, d+j]
//! ```
//!
//! The PSD rows are `−diag(1 on the diagonal, √2 off it)` with `b = 0`: Clarabel's triangle cone
//! holds the √2-scaled column-wise upper triangle. `min ½(tr U + tr V)` over `Z ⪰ 0` is `‖W‖_⋆`.
//!
//! **Duals.** Stationarity is `Px + q + Aᵀz = 0`, so with rows `−vec(A_k)` the QP gives
//! `W = Σ z_k A_k` and `z_k ≥ 0` on the inequality rows: Clarabel's `z` *is* λ, no sign flip. In the
//! SDP the same `z_k` is the nuclear-dual λ with `‖Σλ_k A_k‖_op ≤ 1`. When Clarabel reports primal
//! infeasibility, `z` is its certificate (`Aᵀz = 0`, `bᵀz < 0`, `z ∈ K*`), i.e. `λ ≥ 0`,
//! `Σλ_k A_k = 0`, `Σλ_k r_k > 0` (in the SDP the PSD block of `z` has zero diagonal, hence is zero),
//! which [`farkas`] normalizes and checks.
//!
//! **Settings.** `tol_gap_abs = tol_gap_rel = tol_feas = tol_infeas_abs = tol_infeas_rel =
//! clamp(tol, 1e-12, 1e-6)` with the program's `tol` (default 1e-10); everything else is Clarabel's
//! default (reduced tolerances 5e-5 for `AlmostSolved`). The QP reaches 1e-12 in 10–15 iterations
//! on the test instances. The SDP stalls at KKT residuals of ~1e-8–1e-7 (the nuclear optimum is
//! low rank, so the PSD block is degenerate); below `tol ≈ 1e-8` Clarabel then ends with
//! `AlmostSolved`, reported as `Solved` with a message, and the [`Kkt`](super::Kkt) certificate says
//! how good the pair really is. Tight infeasibility tolerances matter for the Farkas certificate:
//! at Clarabel's default 1e-8 the multipliers of unrelated constraints stay at ~1e-6 of the
//! largest. The iteration cap is `min(max_iter, 500)` (an IPM that has not converged in 500
//! iterations will not).

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
    SupportedConeT::{NonnegativeConeT, ZeroConeT},
};
// `sdp-openblas` reaches OpenBLAS through blas-src/lapack-src; naming the crate here makes sure its
// link directives (the system libopenblas, found by pkg-config) are part of every binary.
#[cfg(feature = "sdp")]
use openblas_src as _;

use super::{farkas, AttSvmProblem, Info, Status, SvmSettings, SvmSolution};

/// Iteration cap of the interior point method.
const MAX_IPM_ITER: usize = 500;
/// Farkas multipliers below this fraction of the largest are tried at zero.
const PRUNE: f64 = 1e-6;

/// The Frobenius Att-SVM as a QP.
pub(super) fn qp(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    const NAME: &str = "clarabel-qp";
    let d = p.d;
    let nvar = d * d;
    let rows = MarginRows::new(p);
    if rows.order.is_empty() {
        return trivial(p, s, NAME);
    }
    // Column i·d + j of A holds −a_k[i]·z_k[j] for every row (dense in general).
    let a = rows.csc(nvar, |c| (c / d, c % d));
    let pmat = CscMatrix::identity(nvar);
    let q = vec![0.0; nvar];
    let cones = rows.cones();
    let out = run(&pmat, &q, &a, &rows.b, &cones, s);
    finish(p, s, NAME, &rows, out, |x| x.to_vec())
}

/// The nuclear-norm Att-SVM as an SDP over the PSD-triangle embedding.
#[cfg(feature = "sdp")]
pub(super) fn sdp(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    use clarabel::solver::SupportedConeT::PSDTriangleConeT;
    const NAME: &str = "clarabel-sdp";
    let d = p.d;
    let n2 = 2 * d;
    let nvar = n2 * (n2 + 1) / 2;
    let rows = MarginRows::new(p);
    if rows.order.is_empty() {
        return trivial(p, s, NAME);
    }
    let m = rows.order.len();
    // Column-wise upper triangle: (i, j), i ≤ j, sits at j(j+1)/2 + i.
    let tri = |i: usize, j: usize| j * (j + 1) / 2 + i;
    let mut entry = vec![(0usize, 0usize); nvar];
    for j in 0..n2 {
        for i in 0..=j {
            entry[tri(i, j)] = (i, j);
        }
    }
    let mut colptr = Vec::with_capacity(nvar + 1);
    let mut rowval = Vec::new();
    let mut nzval = Vec::new();
    colptr.push(0);
    for &(i, j) in &entry {
        // Margin rows touch only the W block (i < d ≤ j); they come before the PSD rows.
        if i < d && j >= d {
            rows.push_column(i, j - d, &mut rowval, &mut nzval);
        }
        rowval.push(m + tri(i, j));
        nzval.push(if i == j {
            -1.0
        } else {
            -std::f64::consts::SQRT_2
        });
        colptr.push(rowval.len());
    }
    let a = CscMatrix::new(m + nvar, nvar, colptr, rowval, nzval);
    let pmat = CscMatrix::zeros((nvar, nvar));
    let mut q = vec![0.0; nvar];
    for c in 0..n2 {
        q[tri(c, c)] = 0.5;
    }
    let mut b = rows.b.clone();
    b.resize(m + nvar, 0.0);
    let mut cones = rows.cones();
    cones.push(PSDTriangleConeT(n2));
    let out = run(&pmat, &q, &a, &b, &cones, s);
    finish(p, s, NAME, &rows, out, |x| {
        let mut w = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                w[i * d + j] = x[tri(i, d + j)];
            }
        }
        w
    })
}

/// The margin rows in the order Clarabel needs them: equalities (zero cone) first, then
/// inequalities (nonnegative cone). `order[r]` is the constraint of row `r`.
struct MarginRows {
    order: Vec<usize>,
    n_eq: usize,
    /// `a_k` of row `r` at `r·d..`, and its query at the same place in `z`.
    a: Vec<f64>,
    z: Vec<f64>,
    d: usize,
    b: Vec<f64>,
}

impl MarginRows {
    fn new(p: &AttSvmProblem) -> Self {
        let cons = p.constraints();
        let eq = (0..cons.len()).filter(|&k| cons[k].equality);
        let ineq = (0..cons.len()).filter(|&k| !cons[k].equality);
        let order: Vec<usize> = eq.chain(ineq).collect();
        let n_eq = cons.iter().filter(|c| c.equality).count();
        let d = p.d;
        let mut a = Vec::with_capacity(order.len() * d);
        let mut z = Vec::with_capacity(order.len() * d);
        for &k in &order {
            a.extend(p.direction(k));
            z.extend_from_slice(p.query(cons[k].sample as usize));
        }
        let b = order.iter().map(|&k| -cons[k].rhs).collect();
        MarginRows {
            order,
            n_eq,
            a,
            z,
            d,
            b,
        }
    }

    fn cones(&self) -> Vec<SupportedConeT<f64>> {
        let mut cones = Vec::with_capacity(3);
        if self.n_eq > 0 {
            cones.push(ZeroConeT(self.n_eq));
        }
        if self.order.len() > self.n_eq {
            cones.push(NonnegativeConeT(self.order.len() - self.n_eq));
        }
        cones
    }

    /// Append the entries `−a_r[i]·z_r[j]` of every margin row `r`, skipping exact zeros so
    /// structured instances stay sparse.
    fn push_column(&self, i: usize, j: usize, rowval: &mut Vec<usize>, nzval: &mut Vec<f64>) {
        let d = self.d;
        for r in 0..self.order.len() {
            let v = -self.a[r * d + i] * self.z[r * d + j];
            if v != 0.0 {
                rowval.push(r);
                nzval.push(v);
            }
        }
    }

    /// The margin block alone as an `m × ncol` CSC matrix; column `c` is `W[entry(c)]`.
    fn csc(&self, ncol: usize, entry: impl Fn(usize) -> (usize, usize)) -> CscMatrix<f64> {
        let mut colptr = Vec::with_capacity(ncol + 1);
        let mut rowval = Vec::new();
        let mut nzval = Vec::new();
        colptr.push(0);
        for c in 0..ncol {
            let (i, j) = entry(c);
            self.push_column(i, j, &mut rowval, &mut nzval);
            colptr.push(rowval.len());
        }
        CscMatrix::new(self.order.len(), ncol, colptr, rowval, nzval)
    }

    /// Clarabel's dual of row `r`, put back in constraint order.
    fn duals(&self, z: &[f64], m: usize) -> Vec<f64> {
        let mut lambda = vec![0.0; m];
        for (r, &k) in self.order.iter().enumerate() {
            lambda[k] = z[r];
        }
        lambda
    }
}

/// What Clarabel returned.
struct Outcome {
    status: SolverStatus,
    x: Vec<f64>,
    z: Vec<f64>,
    iterations: usize,
    /// Set when Clarabel refused the problem (it never should: dimensions are ours).
    error: Option<String>,
}

fn run(
    pmat: &CscMatrix<f64>,
    q: &[f64],
    a: &CscMatrix<f64>,
    b: &[f64],
    cones: &[SupportedConeT<f64>],
    s: &SvmSettings,
) -> Outcome {
    let tol = s.tol.clamp(1e-12, 1e-6);
    let settings = DefaultSettings {
        max_iter: s.max_iter.min(MAX_IPM_ITER) as u32,
        time_limit: s.time_limit,
        verbose: false,
        tol_gap_abs: tol,
        tol_gap_rel: tol,
        tol_feas: tol,
        tol_infeas_abs: tol,
        tol_infeas_rel: tol,
        ..DefaultSettings::default()
    };
    match DefaultSolver::new(pmat, q, a, b, cones, settings) {
        Ok(mut solver) => {
            solver.solve();
            let sol = &solver.solution;
            Outcome {
                status: sol.status,
                x: sol.x.clone(),
                z: sol.z.clone(),
                iterations: sol.iterations as usize,
                error: None,
            }
        }
        Err(e) => Outcome {
            status: SolverStatus::NumericalError,
            x: Vec::new(),
            z: Vec::new(),
            iterations: 0,
            error: Some(format!("clarabel refused the problem: {e}")),
        },
    }
}

/// Map Clarabel's status and iterate to an [`SvmSolution`]; `w_of` reads row-major W from `x`.
fn finish(
    p: &AttSvmProblem,
    s: &SvmSettings,
    name: &str,
    rows: &MarginRows,
    out: Outcome,
    w_of: impl Fn(&[f64]) -> Vec<f64>,
) -> SvmSolution {
    let m = p.n_constraints();
    let info = |message: String| Info {
        solver: name.to_string(),
        iterations: out.iterations,
        seconds: 0.0,
        message,
    };
    if let Some(err) = &out.error {
        let mut sol = SvmSolution::empty(p, s.norm, Status::NumericalError, name);
        sol.info.message = err.clone();
        return sol;
    }
    let status = match out.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Status::Solved,
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => Status::Infeasible,
        SolverStatus::MaxIterations | SolverStatus::MaxTime => Status::MaxIterations,
        _ => Status::NumericalError,
    };
    let message = match out.status {
        SolverStatus::Solved | SolverStatus::PrimalInfeasible => String::new(),
        SolverStatus::AlmostSolved | SolverStatus::AlmostPrimalInfeasible => {
            format!("clarabel: {:?} (reduced accuracy)", out.status)
        }
        other => format!("clarabel: {other:?}"),
    };
    let lambda = rows.duals(&out.z, m);
    if status == Status::Infeasible {
        // An interior point certificate is strictly positive everywhere: entries far below the
        // largest are remnants of the barrier, not part of the argument, and would name
        // constraints and sequences that play no part. Drop them when the checked residual
        // stays as good.
        let raw = farkas(p, &lambda);
        let lmax = lambda.iter().fold(0.0f64, |a, &l| a.max(l));
        let pruned: Vec<f64> = lambda
            .iter()
            .map(|&l| if l > PRUNE * lmax { l } else { 0.0 })
            .collect();
        let pruned = farkas(p, &pruned);
        let mut sol = SvmSolution::empty(p, s.norm, Status::Infeasible, name);
        sol.farkas = Some(if pruned.residual <= 10.0 * raw.residual + 1e-12 {
            pruned
        } else {
            raw
        });
        sol.info = info(message);
        return sol;
    }
    let w = w_of(&out.x);
    if w.iter().chain(&lambda).any(|v| !v.is_finite()) {
        let mut sol = SvmSolution::empty(p, s.norm, Status::NumericalError, name);
        sol.info = info(format!(
            "clarabel: {:?}, with a non-finite iterate",
            out.status
        ));
        return sol;
    }
    // Solved, or the last iterate of a run that stopped early (MaxIterations/NumericalError).
    SvmSolution::from_pair(p, s, status, w, lambda, info(message))
}

/// No constraints: `W = 0` is optimal.
fn trivial(p: &AttSvmProblem, s: &SvmSettings, name: &str) -> SvmSolution {
    let info = Info {
        solver: name.to_string(),
        iterations: 0,
        seconds: 0.0,
        message: "no constraints".into(),
    };
    SvmSolution::from_pair(p, s, Status::Solved, vec![0.0; p.d * p.d], Vec::new(), info)
}
