//! Regularization paths (`attnsvm::solvers::path`):
//!
//! ```text
//! W̄(R) = argmin_{‖W‖ ≤ R} L(W)   (Frobenius, nuclear, or ½(‖K‖²+‖Q‖²) ≤ R on W = KQᵀ; optional cone)
//! ```

use attnsvm::model::{self, Loss};
use attnsvm::solvers::path::{Ball, PathProblem, PathResult, PathSettings, RegPath};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{self, indices, mats, name_of, parse, shaped, vec1, OrPy, Real};

/// regularization_path(X, Z, y, v, radii, ball="fro", *, loss="logistic", head="linear", lam=0.1,
///                     Wv=None, u=None, query_position=0, reference=None, cone_axis=None, mu=None,
///                     tol=1e-10, max_iter=100000, time_limit=None, seed=0, kq_width=None) -> dict
///
/// `W̄(R) = argmin_{‖W‖ ≤ R} L(W)` for every radius (positive, increasing) in the Frobenius
/// (`fro`), nuclear (`nuc`) or (K,Q) (`kq`: `½(‖K‖²_F + ‖Q‖²_F) ≤ R`) ball, by projected gradient
/// on `log(L − L*)` warm-started from radius to radius, with the GIL released. `reference` adds
/// `corr(W̄(R), reference)` (the CLI uses the Att-SVM solution of the matching norm); `cone_axis`
/// and `mu` restrict to the cone `⟨W, M⟩ ≥ (1−μ)‖W‖_F‖M‖_F` (local path, Frobenius ball only).
/// Returns `status` (the first unsolved point's, else `Solved`), `iterations`, `evaluations`,
/// `seconds` and one entry per point: `radius`, `status` (list), `residual` (the stationarity
/// certificate), `iterations`, `loss`, `log_loss`, `log_excess_loss`, `log_grad_norm` (natural
/// logs), `fro_norm`, `nuclear_norm`, `kq_norm`, `corr`, `one_minus_corr`, `active`,
/// `cone_active`, `seconds`, `selected` (points × n), `W` (points × d × d), `K`, `Q` (for `kq`).
#[pyfunction]
#[pyo3(signature = (
    X, Z, y, v, radii, ball="fro", *, loss="logistic", head="linear", lam=0.1, Wv=None, u=None,
    query_position=0, reference=None, cone_axis=None, mu=None, tol=1e-10, max_iter=100_000,
    time_limit=None, seed=0, kq_width=None
))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn regularization_path<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    radii: Vec<f64>,
    ball: &str,
    loss: &str,
    head: &str,
    lam: f64,
    Wv: Option<Real<'_>>,
    u: Option<Real<'_>>,
    query_position: usize,
    reference: Option<Real<'_>>,
    cone_axis: Option<Real<'_>>,
    mu: Option<f64>,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    seed: u64,
    kq_width: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let d = inst.d;
    let ball: Ball = parse("ball", ball, "fro, nuc, kq")?;
    let loss: Loss = parse("loss", loss, "logistic, exp, corr")?;
    let head = crate::model::head(head, lam, Wv, u, d, seed)?;
    let settings = PathSettings {
        tol,
        max_iter,
        time_limit: time_limit.unwrap_or(f64::INFINITY),
        seed,
        kq_width,
        ..PathSettings::default()
    };
    let mut problem = PathProblem::new(ball, radii);
    if let Some(r) = reference {
        problem = problem.with_reference(convert::square("reference", &r, d)?);
    }
    match (cone_axis, mu) {
        (Some(axis), Some(mu)) => {
            problem = problem.with_cone(convert::square("cone_axis", &axis, d)?, mu)
        }
        (None, None) => {}
        _ => {
            return Err(convert::value_err(
                "path: the local path needs both cone_axis and mu",
            ))
        }
    }
    let result = py
        .detach(|| {
            let mut risk = model::Objective::new(&inst, head, loss, query_position)?;
            Ok::<_, attnsvm::Error>(RegPath::new(&mut risk, problem, settings)?.solve())
        })
        .or_py()?;
    path_dict(py, &result, d, inst.n)
}

fn path_dict<'py>(
    py: Python<'py>,
    r: &PathResult,
    d: usize,
    n: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let pts = &r.points;
    let nan = f64::NAN;
    let col = |f: &dyn Fn(&attnsvm::solvers::path::PathPoint) -> f64| {
        vec1(py, pts.iter().map(f).collect())
    };
    let out = PyDict::new(py);
    out.set_item("status", name_of(&r.status))?;
    out.set_item("iterations", r.iterations)?;
    out.set_item("evaluations", r.evaluations)?;
    out.set_item("seconds", r.seconds)?;
    out.set_item("radius", col(&|p| p.radius))?;
    out.set_item(
        "point_status",
        pts.iter().map(|p| name_of(&p.status)).collect::<Vec<_>>(),
    )?;
    out.set_item("residual", col(&|p| p.residual))?;
    out.set_item(
        "point_iterations",
        vec1(py, pts.iter().map(|p| p.iterations as i64).collect()),
    )?;
    out.set_item("loss", col(&|p| p.loss))?;
    out.set_item("log_loss", col(&|p| p.log_loss.unwrap_or(nan)))?;
    out.set_item(
        "log_excess_loss",
        col(&|p| p.log_excess_loss.unwrap_or(nan)),
    )?;
    out.set_item("log_grad_norm", col(&|p| p.log_grad_norm))?;
    out.set_item("fro_norm", col(&|p| p.fro_norm))?;
    out.set_item("nuclear_norm", col(&|p| p.nuclear_norm))?;
    out.set_item("kq_norm", col(&|p| p.kq_norm.unwrap_or(nan)))?;
    out.set_item("corr", col(&|p| p.corr.unwrap_or(nan)))?;
    out.set_item("one_minus_corr", col(&|p| p.one_minus_corr.unwrap_or(nan)))?;
    out.set_item("active", pts.iter().map(|p| p.active).collect::<Vec<_>>())?;
    out.set_item(
        "cone_active",
        pts.iter().map(|p| p.cone_active).collect::<Vec<_>>(),
    )?;
    out.set_item("point_seconds", col(&|p| p.seconds))?;
    let sel: Vec<i64> = pts.iter().flat_map(|p| indices(&p.selected)).collect();
    out.set_item("selected", shaped(py, &[pts.len(), n], sel))?;
    out.set_item(
        "W",
        mats(py, &pts.iter().map(|p| &p.w).collect::<Vec<_>>(), d, d),
    )?;
    let kq: Option<Vec<_>> = pts.iter().map(|p| p.kq.as_ref()).collect();
    if let Some(kq) = kq.filter(|kq| !kq.is_empty()) {
        let (m_rows, m_cols) = (kq[0].0.nrows(), kq[0].0.ncols());
        out.set_item(
            "K",
            mats(
                py,
                &kq.iter().map(|x| &x.0).collect::<Vec<_>>(),
                m_rows,
                m_cols,
            ),
        )?;
        out.set_item(
            "Q",
            mats(
                py,
                &kq.iter().map(|x| &x.1).collect::<Vec<_>>(),
                m_rows,
                m_cols,
            ),
        )?;
    } else {
        out.set_item("K", py.None())?;
        out.set_item("Q", py.None())?;
    }
    Ok(out)
}
