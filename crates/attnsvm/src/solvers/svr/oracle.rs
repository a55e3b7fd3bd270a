//! Clarabel's interior point method on the SVR dual in the split variables `x = [α; α̃]`
//! (`β = α − α̃`), one QP per output column:
//!
//! ```text
//! min ½ xᵀ [[K̃, −K̃], [−K̃, K̃]] x + [ε − y; ε + y]ᵀ x   s.t.  0 ≤ x ≤ C
//! ```
//!
//! Rows `x ≤ C` (`A = I`, `b = C`) and `−x ≤ 0` (`A = −I`, `b = 0`) in the nonnegative cone;
//! with a bias first the row `Σα − Σα̃ = 0` in the zero cone.
//! `P` is passed as its upper triangle. Tolerances: `clamp(tol, 1e-12, 1e-6)`.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, SolverStatus,
    SupportedConeT::{NonnegativeConeT, ZeroConeT},
};
use faer::Mat;

use super::{Info, Status, SvrProblem, SvrSettings, SvrSolution};

const MAX_IPM_ITER: usize = 500;

pub(super) fn qp(p: &SvrProblem, s: &SvrSettings) -> SvrSolution {
    let (n, m) = (p.n_keys(), p.n_outputs());
    let k = p.gram();
    // Upper triangle of the 2n × 2n block matrix, column by column.
    let (mut colptr, mut rowval, mut nzval) = (vec![0], Vec::new(), Vec::new());
    for col in 0..2 * n {
        for row in 0..=col {
            let sign = if (row < n) == (col < n) { 1.0 } else { -1.0 };
            rowval.push(row);
            nzval.push(sign * k[(row % n, col % n)]);
        }
        colptr.push(rowval.len());
    }
    let pmat = CscMatrix::new(2 * n, 2 * n, colptr, rowval, nzval);
    // A = [eᵀ; I; −I] (the first row only with a bias): column c has ±1 in the equality row,
    // +1 in row e + c and −1 in row e + 2n + c.
    let e = usize::from(p.bias);
    let (mut colptr, mut rowval, mut nzval) = (vec![0], Vec::new(), Vec::new());
    for c in 0..2 * n {
        if p.bias {
            rowval.push(0);
            nzval.push(if c < n { 1.0 } else { -1.0 });
        }
        rowval.extend([e + c, e + 2 * n + c]);
        nzval.extend([1.0, -1.0]);
        colptr.push(rowval.len());
    }
    let a = CscMatrix::new(e + 4 * n, 2 * n, colptr, rowval, nzval);
    let mut b = vec![0.0; e];
    b.extend(vec![p.c; 2 * n]);
    b.extend(vec![0.0; 2 * n]);
    let mut cones = Vec::new();
    if p.bias {
        cones.push(ZeroConeT(1));
    }
    cones.push(NonnegativeConeT(4 * n));
    let tol = s.tol.clamp(1e-12, 1e-6);
    let settings = DefaultSettings {
        max_iter: s.max_epochs.min(MAX_IPM_ITER) as u32,
        time_limit: s.time_limit,
        verbose: false,
        tol_gap_abs: tol,
        tol_gap_rel: tol,
        tol_feas: tol,
        ..DefaultSettings::default()
    };
    let mut beta = Mat::zeros(n, m);
    let (mut iterations, mut worst, mut message) = (0, SolverStatus::Solved, String::new());
    for col in 0..m {
        let y = p.targets().col_as_slice(col);
        let q: Vec<f64> = (0..2 * n)
            .map(|j| {
                if j < n {
                    p.epsilon - y[j]
                } else {
                    p.epsilon + y[j - n]
                }
            })
            .collect();
        match DefaultSolver::new(&pmat, &q, &a, &b, &cones, settings.clone()) {
            Ok(mut solver) => {
                solver.solve();
                let sol = &solver.solution;
                iterations += sol.iterations as usize;
                if sol.status != SolverStatus::Solved {
                    worst = sol.status;
                }
                for j in 0..n {
                    beta[(j, col)] = sol.x[j] - sol.x[n + j];
                }
            }
            Err(e) => {
                worst = SolverStatus::NumericalError;
                message = format!("clarabel refused the problem: {e}");
            }
        }
    }
    let status = match worst {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Status::Solved,
        SolverStatus::MaxIterations | SolverStatus::MaxTime => Status::MaxIterations,
        _ => Status::NumericalError,
    };
    if message.is_empty() && worst != SolverStatus::Solved {
        message = format!("clarabel: {worst:?}");
    }
    SvrSolution {
        status,
        certificate: p.certificate(&beta),
        beta,
        info: Info {
            solver: "clarabel-qp".into(),
            iterations,
            seconds: 0.0,
            message,
        },
    }
}
