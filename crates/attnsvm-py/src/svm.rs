//! The attention SVM (`attnsvm::solvers::svm`) and the token analysis built on it
//! (`attnsvm::solvers::svm::tokens`, what `attnsvm tokens` prints):
//!
//! ```text
//! W^mm_α = argmin ‖W‖  s.t.  (x_{iα_i} − x_it)ᵀ W z_i ≥ 1   for every sample i and visible t ≠ α_i
//! ```

use attnsvm::data::Instance;
use attnsvm::solvers::svm::tokens::{optimal_selection as optimal, selection_report as report};
use attnsvm::solvers::svm::{
    AttSvm, AttSvmProblem, Layout, Norm, Solver, SvmSettings, SvmSolution,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    self, indices, mat, name_of, parse, shaped, to_python, vec1, Index, OrPy, Real,
};

/// What selects the tokens: an index array, or `"opt"` (the globally optimal tokens).
#[derive(FromPyObject)]
pub enum Alpha<'py> {
    Name(String),
    Tokens(Index<'py>),
}

/// The layout and the selection, resolved against the instance as the CLI does.
pub fn resolve(inst: &Instance, alpha: Option<Alpha<'_>>, layout: Layout) -> PyResult<Vec<usize>> {
    match alpha {
        None => optimal(inst, layout).or_py(),
        Some(Alpha::Name(s)) if s == "opt" => optimal(inst, layout).or_py(),
        Some(Alpha::Name(s)) => Err(convert::value_err(format!(
            "alpha: '{s}' is neither 'opt' nor an array of token indices"
        ))),
        Some(Alpha::Tokens(a)) => {
            let want: Vec<usize> = if layout.seq2seq {
                vec![inst.n, inst.t]
            } else {
                vec![inst.n]
            };
            convert::selection(&a, &want, inst.t)
        }
    }
}

/// Solver settings from keyword arguments (the CLI's flags; `time_limit=None` is no limit).
#[allow(clippy::too_many_arguments)]
fn svm_settings(
    norm: &str,
    solver: &str,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    support_tol: f64,
    seed: u64,
) -> PyResult<SvmSettings> {
    let s = SvmSettings {
        norm: parse::<Norm>("norm", norm, "fro, nuc")?,
        solver: parse::<Solver>("solver", solver, "auto, dual, ipm")?,
        tol,
        max_iter,
        time_limit: time_limit.unwrap_or(f64::INFINITY),
        support_tol,
        seed,
    };
    s.validate().or_py()?;
    Ok(s)
}

/// The solution as a dict of NumPy arrays and numbers.
pub fn solution_dict<'py>(
    py: Python<'py>,
    p: &AttSvmProblem,
    sol: &SvmSolution,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("W", mat(py, &sol.w))?;
    out.set_item("duals", vec1(py, sol.duals.clone()))?;
    out.set_item("margins", vec1(py, sol.margins.clone()))?;
    let samples = p.samples();
    let rows: Vec<i64> = p
        .constraints()
        .iter()
        .flat_map(|c| {
            let smp = samples[c.sample as usize];
            [
                c.sample as i64,
                smp.sequence as i64,
                smp.position.map_or(-1, |k| k as i64),
                c.plus as i64,
                c.minus as i64,
            ]
        })
        .collect();
    out.set_item("constraints", shaped(py, &[p.n_constraints(), 5], rows))?;
    out.set_item("status", name_of(&sol.status))?;
    out.set_item("norm", name_of(&sol.norm))?;
    out.set_item("objective", sol.objective)?;
    out.set_item("duality_gap", sol.kkt.duality_gap)?;
    out.set_item("kkt", to_python(py, &sol.kkt)?)?;
    out.set_item(
        "farkas",
        sol.farkas.as_ref().map(|f| to_python(py, f)).transpose()?,
    )?;
    out.set_item(
        "support_by_margin",
        vec1(py, indices(&sol.support_by_margin)),
    )?;
    out.set_item("support_by_dual", vec1(py, indices(&sol.support_by_dual)))?;
    out.set_item("iterations", sol.info.iterations)?;
    out.set_item("seconds", sol.info.seconds)?;
    out.set_item("solver", &sol.info.solver)?;
    out.set_item("message", &sol.info.message)?;
    Ok(out)
}

/// att_svm(X, Z, y, v, alpha=None, norm="fro", *, query_position=0, seq2seq=False, causal=False,
///         solver="auto", tol=1e-10, max_iter=200000, time_limit=None, support_tol=1e-6, seed=0) -> dict
///
/// Solve the Att-SVM of the selection `alpha` (None or "opt": the globally optimal tokens; else
/// (n,) token indices, (n, T) with `seq2seq`) in the Frobenius (`fro`, W-training) or nuclear
/// (`nuc`, (K,Q)-training) norm, as `attnsvm svm` does, with the GIL released. `Z=None` is
/// self-attention. Every status is an answer: `Solved` (with `kkt`: five residuals and the duality
/// gap), `Infeasible` (with `farkas`: λ ≥ 0, Σλ = 1, ‖Σλ_k A_k‖ ≈ 0), `MaxIterations`,
/// `NumericalError`. Returns `W`, `duals`, `margins` (one per constraint), `constraints` (rows
/// `sample, sequence, query position or −1, selected, token`), `alpha`, `status`, `norm`,
/// `objective`, `duality_gap`, `kkt`, `farkas`, `support_by_margin`, `support_by_dual` (constraint
/// indices), `iterations`, `seconds`, `solver`, `message`.
#[pyfunction]
#[pyo3(signature = (
    X, Z, y, v, alpha=None, norm="fro", *, query_position=0, seq2seq=false, causal=false,
    solver="auto", tol=1e-10, max_iter=200_000, time_limit=None, support_tol=1e-6, seed=0
))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn att_svm<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    alpha: Option<Alpha<'_>>,
    norm: &str,
    query_position: usize,
    seq2seq: bool,
    causal: bool,
    solver: &str,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    support_tol: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = svm_settings(norm, solver, tol, max_iter, time_limit, support_tol, seed)?;
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let layout = Layout {
        query_position,
        seq2seq,
        causal,
    };
    let alpha = resolve(&inst, alpha, layout)?;
    let problem = AttSvmProblem::att_svm(&inst, &alpha, layout).or_py()?;
    let sol = py
        .detach(|| AttSvm::new(&problem, settings).map(|s| s.solve()))
        .or_py()?;
    let out = solution_dict(py, &problem, &sol)?;
    let shape: Vec<usize> = if seq2seq {
        vec![inst.n, inst.t]
    } else {
        vec![inst.n]
    };
    out.set_item("alpha", shaped(py, &shape, indices(&alpha)))?;
    Ok(out)
}

/// selection_report(X, Z, y, v, alpha=None, norm="fro", *, query_position=0, seq2seq=False,
///                  causal=False, solver="auto", tol=1e-10, max_iter=200000, time_limit=None,
///                  support_tol=1e-6) -> dict
///
/// Token analysis (`attnsvm tokens`): per sample the scores `γ_it = y_i vᵀx_it`, the optimal
/// token(s), the selected token and its support tokens (by margin and by dual), and whether the
/// selection is globally optimal and locally optimal (feasible, and every selected token scores
/// strictly higher than its support tokens). The dict has the keys of `tokens --json` (`status`,
/// `feasible`, `globally_optimal`, `locally_optimal_by_margin`, `locally_optimal_by_dual`,
/// `violations`, `samples`, `norm`, `objective`, `duality_gap`, `solver`, `message`) and `alpha`.
#[pyfunction]
#[pyo3(signature = (
    X, Z, y, v, alpha=None, norm="fro", *, query_position=0, seq2seq=false, causal=false,
    solver="auto", tol=1e-10, max_iter=200_000, time_limit=None, support_tol=1e-6
))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn selection_report<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    alpha: Option<Alpha<'_>>,
    norm: &str,
    query_position: usize,
    seq2seq: bool,
    causal: bool,
    solver: &str,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    support_tol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = svm_settings(norm, solver, tol, max_iter, time_limit, support_tol, 0)?;
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let layout = Layout {
        query_position,
        seq2seq,
        causal,
    };
    let alpha = resolve(&inst, alpha, layout)?;
    let problem = AttSvmProblem::att_svm(&inst, &alpha, layout).or_py()?;
    let (sol, rep) = py
        .detach(|| {
            let sol = AttSvm::new(&problem, settings)?.solve();
            let rep = report(&inst, &problem, &sol)?;
            Ok::<_, attnsvm::Error>((sol, rep))
        })
        .or_py()?;
    let out = to_python(py, &rep)?.cast_into::<PyDict>()?;
    out.set_item("norm", name_of(&sol.norm))?;
    out.set_item("objective", sol.objective)?;
    out.set_item("duality_gap", sol.kkt.duality_gap)?;
    out.set_item("solver", &sol.info.solver)?;
    out.set_item("message", &sol.info.message)?;
    out.set_item("alpha", vec1(py, indices(&alpha)))?;
    Ok(out)
}

/// optimal_selection(X, Z, y, v, *, query_position=0, seq2seq=False, causal=False) -> ndarray
///
/// The globally optimal token of every sample (`argmax_t γ_it`, the first on ties): `(n,)`, or
/// `(n·T,)` with `seq2seq`.
#[pyfunction]
#[pyo3(signature = (X, Z, y, v, *, query_position=0, seq2seq=false, causal=false))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn optimal_selection<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    query_position: usize,
    seq2seq: bool,
    causal: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let layout = Layout {
        query_position,
        seq2seq,
        causal,
    };
    let a = optimal(&inst, layout).or_py()?;
    Ok(vec1(py, indices(&a)).into_any())
}

/// analyze_trained(X, Z, y, v, W, norm="fro", *, query_position=0, causal=False, solver="auto",
///                 tol=1e-10, max_iter=200000, time_limit=None, support_tol=1e-6) -> dict
///
/// From a trained `W` to the theory (`attnsvm::solvers::svm::trained::analyze_trained`): the tokens
/// it selects (`α̂_i = argmax_t x_itᵀ W z_i`), the Att-SVM of `α̂` in the norm of the
/// parameterization (`fro` for W, `nuc` for `K Qᵀ`), its global and local optimality, and
/// `corr(W, W^mm(α̂))`. Returns `selected`, `corr` (None unless solved), `solution` (as `att_svm`
/// returns) and `report` (as `selection_report` returns, without the solver fields).
#[pyfunction]
#[pyo3(signature = (
    X, Z, y, v, W, norm="fro", *, query_position=0, causal=false, solver="auto", tol=1e-10,
    max_iter=200_000, time_limit=None, support_tol=1e-6
))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn analyze_trained<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    W: Real<'_>,
    norm: &str,
    query_position: usize,
    causal: bool,
    solver: &str,
    tol: f64,
    max_iter: usize,
    time_limit: Option<f64>,
    support_tol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = svm_settings(norm, solver, tol, max_iter, time_limit, support_tol, 0)?;
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let w = convert::square("W", &W, inst.d)?;
    let layout = Layout {
        query_position,
        seq2seq: false,
        causal,
    };
    let a = py
        .detach(|| attnsvm::solvers::svm::trained::analyze_trained(&inst, &w, layout, settings))
        .or_py()?;
    let problem = AttSvmProblem::att_svm(&inst, &a.selected, layout).or_py()?;
    let out = PyDict::new(py);
    out.set_item("selected", vec1(py, indices(&a.selected)))?;
    out.set_item("corr", a.corr)?;
    out.set_item("solution", solution_dict(py, &problem, &a.solution)?)?;
    out.set_item("report", to_python(py, &a.report)?)?;
    Ok(out)
}
