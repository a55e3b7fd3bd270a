//! The token-group lasso of convex attention (`attnsvm::solvers::glasso`, programs (9) and (12)):
//!
//! ```text
//! min_{Z_1..Z_c ∈ R^{n×d}}  w Σ_i Σ_l L(⟨X_i, Z_l⟩_F, y_il) + β Σ_l Σ_k ‖z_{l,k}‖₂
//! ```

use attnsvm::solvers::glasso::{
    self as core, Glasso, GlassoProblem, GlassoSettings, GlassoSolution, Logistic, Squared,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{self, name_of, shaped, to_python, vec1, OrPy, Real};

/// `X` as `(N, n, d)` and the targets as `(N·c)` values with `c` outputs.
struct Data {
    dims: (usize, usize, usize),
    x: Vec<f64>,
    y: Vec<f64>,
    outputs: usize,
}

fn data(x: &Real<'_>, y: &Real<'_>) -> PyResult<Data> {
    let (dims, x) = convert::tokens(x)?;
    let n = dims.0;
    let shape = y.as_array().shape().to_vec();
    let want: Vec<Option<usize>> = if shape.len() == 2 {
        vec![Some(n), None]
    } else {
        vec![Some(n)]
    };
    let (shape, y) = convert::values("y", y, &want, &format!("({n},) or ({n}, c) to match X"))?;
    Ok(Data {
        dims,
        x,
        y,
        outputs: shape.get(1).copied().unwrap_or(1),
    })
}

fn problem<'a>(d: &'a Data, loss: &str, loss_weight: f64) -> PyResult<GlassoProblem<'a>> {
    match loss {
        "squared" => GlassoProblem::new(d.dims, &d.x, d.y.clone(), d.outputs, Squared),
        "logistic" => GlassoProblem::new(d.dims, &d.x, d.y.clone(), d.outputs, Logistic),
        other => {
            return Err(convert::value_err(format!(
                "loss: '{other}' is not one of squared, logistic"
            )))
        }
    }
    .and_then(|p| p.with_loss_weight(loss_weight))
    .or_py()
}

fn settings(
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    zero_tol: f64,
) -> PyResult<GlassoSettings> {
    let s = GlassoSettings {
        tol,
        max_iter,
        time_limit: time_limit.unwrap_or(f64::INFINITY),
        zero_tol,
        ..GlassoSettings::default()
    };
    s.validate().or_py()?;
    Ok(s)
}

fn solution_dict<'py>(
    py: Python<'py>,
    p: &GlassoProblem,
    s: &GlassoSolution,
) -> PyResult<Bound<'py, PyDict>> {
    let (c, n, d) = (p.outputs, p.n_tokens, p.d);
    let out = PyDict::new(py);
    out.set_item("status", name_of(&s.status))?;
    out.set_item("beta", s.beta)?;
    out.set_item("Z", shaped(py, &[c, n, d], s.z.clone()))?;
    out.set_item("row_norms", shaped(py, &[c, n], s.row_norms.clone()))?;
    out.set_item("active_groups", s.active_groups)?;
    out.set_item("active_tokens", s.active_tokens)?;
    out.set_item(
        "predictions",
        shaped(py, &[p.n_samples, c], s.predictions.clone()),
    )?;
    out.set_item("loss", s.loss)?;
    out.set_item("penalty", s.penalty)?;
    out.set_item("objective", s.objective)?;
    out.set_item(
        "certificate",
        to_python(py, &CertificateView(&s.certificate))?,
    )?;
    out.set_item("iterations", s.info.iterations)?;
    out.set_item("seconds", s.info.seconds)?;
    out.set_item("history", vec1(py, s.info.history.clone()))?;
    out.set_item("message", &s.info.message)?;
    Ok(out)
}

/// The certificate's fields (the core type is not `Serialize`).
struct CertificateView<'a>(&'a core::Certificate);

impl serde::Serialize for CertificateView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("primal", &c.primal)?;
        m.serialize_entry("dual", &c.dual)?;
        m.serialize_entry("gap", &c.gap)?;
        m.serialize_entry("rel_gap", &c.rel_gap)?;
        m.serialize_entry("dual_scale", &c.dual_scale)?;
        m.serialize_entry("kkt_active", &c.kkt_active)?;
        m.serialize_entry("kkt_inactive", &c.kkt_inactive)?;
        m.end()
    }
}

/// glasso(X, y, beta, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100000,
///        time_limit=None, zero_tol=0.0) -> dict
///
/// The token-group lasso (program (9); (12) when `y` is (N, c)) at one β, by FISTA with a
/// duality-gap certificate, GIL released. `X` is (N, n, d): N samples of n tokens. Returns `status`,
/// `beta`, `Z` (c, n, d), `row_norms` (c, n), `active_groups`, `active_tokens`, `predictions`
/// (N, c), `loss`, `penalty`, `objective`, `certificate` (`primal`, `dual`, `gap`, `rel_gap`, …),
/// `iterations`, `seconds`, `history` (objective per accepted step), `message`.
#[pyfunction]
#[pyo3(signature = (X, y, beta, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100_000, time_limit=None, zero_tol=0.0))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn glasso<'py>(
    py: Python<'py>,
    X: Real<'_>,
    y: Real<'_>,
    beta: f64,
    loss: &str,
    loss_weight: f64,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    zero_tol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let data = data(&X, &y)?;
    let p = problem(&data, loss, loss_weight)?;
    let s = settings(tol, max_iter, time_limit, zero_tol)?;
    let sol = py
        .detach(|| Glasso::new(&p, beta, s).map(|g| g.solve()))
        .or_py()?;
    solution_dict(py, &p, &sol)
}

/// glasso_path(X, y, betas, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100000,
///             time_limit=None, zero_tol=0.0) -> list[dict]
///
/// One solution per β in the order given, each warm-started from the previous one (pass a
/// decreasing sequence below `glasso_beta_max`); each dict as `glasso` returns.
#[pyfunction]
#[pyo3(signature = (X, y, betas, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100_000, time_limit=None, zero_tol=0.0))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn glasso_path<'py>(
    py: Python<'py>,
    X: Real<'_>,
    y: Real<'_>,
    betas: Vec<f64>,
    loss: &str,
    loss_weight: f64,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    zero_tol: f64,
) -> PyResult<Bound<'py, PyList>> {
    let data = data(&X, &y)?;
    let p = problem(&data, loss, loss_weight)?;
    let s = settings(tol, max_iter, time_limit, zero_tol)?;
    let sols = py.detach(|| core::path(&p, &betas, &s)).or_py()?;
    let dicts = sols
        .iter()
        .map(|sol| solution_dict(py, &p, sol))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, dicts)
}

/// glasso_beta_max(X, y, loss="squared", *, loss_weight=1.0) -> float
///
/// `β_max = max_{l,k} ‖(∇f(0))_{l,k}‖₂`: `Z = 0` is optimal iff `β ≥ β_max`.
#[pyfunction]
#[pyo3(signature = (X, y, loss="squared", *, loss_weight=1.0))]
#[allow(non_snake_case)]
pub fn glasso_beta_max(X: Real<'_>, y: Real<'_>, loss: &str, loss_weight: f64) -> PyResult<f64> {
    let data = data(&X, &y)?;
    Ok(problem(&data, loss, loss_weight)?.beta_max())
}
