//! The token-group lasso of convex attention (`attnsvm::solvers::glasso`, programs (9) and (12)):
//!
//! ```text
//! min_{Z_1..Z_c ∈ R^{n×d}}  w Σ_i Σ_l L(⟨X_i, Z_l⟩_F, y_il) + β Σ_l Σ_k ‖z_{l,k}‖₂
//! ```
//!
//! and, with `gates=M`, program (14) (`solvers::glasso::gated`: attention + gated ReLU with `M`
//! fixed gates `D_ij = 1[u_1jᵀ X_i u_2j ≥ 0]` from seeded Gaussian `u_1`, `u_2`), solved as (12)
//! on the gated token copies. Every solution comes with the heads of the non-convex model recovered
//! from it (Proposition 1: one one-hot head per nonzero group) and checked against it, as
//! `attnsvm convex` writes them (`heads.json`, `recovery` in `summary.json`).

use attnsvm::solvers::glasso::gated::{self, GatedHead, Gates, Recovery};
use attnsvm::solvers::glasso::{
    self as core, Glasso, GlassoProblem, GlassoSettings, GlassoSolution, Logistic, Squared,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{self, indices, name_of, shaped, to_python, vec1, OrPy, Real};

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

/// The data with its gates: sampled ones for program (14) (`gated`), else one open gate, under
/// which (14) is (12) and the recovered heads are those of model (11) (as `attnsvm convex` does).
struct Program {
    data: Data,
    gates: Gates,
    gated: bool,
    /// The gated token copies `X̃` (`N·(M·n)·d` values) of program (14).
    lifted: Option<Vec<f64>>,
}

fn program(x: &Real<'_>, y: &Real<'_>, gates: Option<usize>, gate_seed: u64) -> PyResult<Program> {
    if gates == Some(0) {
        return Err(convert::value_err(
            "gates=0: program (14) needs at least one gate",
        ));
    }
    if gates.is_none() && gate_seed != 0 {
        return Err(convert::value_err(format!(
            "gate_seed={gate_seed}: the gate seed needs gates=M (program (14))"
        )));
    }
    let data = data(x, y)?;
    let (nn, ..) = data.dims;
    Ok(match gates {
        Some(m) => {
            let gates = Gates::sample(&data.x, data.dims, m, gate_seed).or_py()?;
            let lifted = gates.lift(&data.x, data.dims).or_py()?;
            Program {
                data,
                gates,
                gated: true,
                lifted: Some(lifted),
            }
        }
        None => Program {
            data,
            gates: Gates::open(nn, 1),
            gated: false,
            lifted: None,
        },
    })
}

impl Program {
    /// The tokens the token-group lasso sees: `X`, or `X̃` with `M·n` tokens per sample.
    fn tokens(&self) -> &[f64] {
        self.lifted.as_deref().unwrap_or(&self.data.x)
    }

    fn problem(&self, loss: &str, loss_weight: f64) -> PyResult<GlassoProblem<'_>> {
        let (nn, n, d) = self.data.dims;
        let dims = (nn, self.gates.n_gates * n, d);
        let (x, c) = (self.tokens(), self.data.outputs);
        let y = self.data.y.clone();
        match loss {
            "squared" => GlassoProblem::new(dims, x, y, c, Squared),
            "logistic" => GlassoProblem::new(dims, x, y, c, Logistic),
            other => {
                return Err(convert::value_err(format!(
                    "loss: '{other}' is not one of squared, logistic"
                )))
            }
        }
        .and_then(|p| p.with_loss_weight(loss_weight))
        .or_py()
    }

    /// `(c, M, n, …)` with gates, `(c, n, …)` without: the leading axes of `Z` and its row norms.
    fn group_axes(&self) -> Vec<usize> {
        let (_, n, _) = self.data.dims;
        let c = self.data.outputs;
        let mut axes = vec![c];
        if self.gated {
            axes.push(self.gates.n_gates);
        }
        axes.push(n);
        axes
    }
}

fn recover(
    prog: &Program,
    problem: &GlassoProblem,
    sol: &GlassoSolution,
) -> attnsvm::Result<Recovery> {
    let d = &prog.data;
    gated::recover(problem, &d.x, d.dims, &prog.gates, sol)
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
    prog: &Program,
    p: &GlassoProblem,
    s: &GlassoSolution,
    r: &Recovery,
) -> PyResult<Bound<'py, PyDict>> {
    let c = p.outputs;
    let groups = prog.group_axes();
    let with_d = |d: usize| groups.iter().copied().chain([d]).collect::<Vec<_>>();
    let out = PyDict::new(py);
    out.set_item("status", name_of(&s.status))?;
    out.set_item("beta", s.beta)?;
    out.set_item("Z", shaped(py, &with_d(p.d), s.z.clone()))?;
    out.set_item("row_norms", shaped(py, &groups, s.row_norms.clone()))?;
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
    out.set_item("heads", heads_dict(py, p.d, c, &r.heads)?)?;
    let recovery = PyDict::new(py);
    recovery.set_item("heads", r.heads.len())?;
    recovery.set_item("max_prediction_difference", r.max_prediction_difference)?;
    recovery.set_item("nonconvex_objective", r.nonconvex_objective)?;
    recovery.set_item(
        "relative_objective_difference",
        r.relative_objective_difference,
    )?;
    out.set_item("recovery", recovery)?;
    if let Some((u1, u2)) = &prog.gates.generators {
        let (nn, n, d) = prog.data.dims;
        let m = prog.gates.n_gates;
        let open = prog.gates.open.iter().map(|&o| f64::from(u8::from(o)));
        out.set_item("gates", shaped(py, &[nn, m], open.collect()))?;
        out.set_item("u1", shaped(py, &[m, n], u1.clone()))?;
        out.set_item("u2", shaped(py, &[m, d], u2.clone()))?;
    }
    Ok(out)
}

/// The heads as `heads.json` lists them, one row per head: `gate`, `token` (the one its one-hot
/// attention selects), `value`, `output`.
fn heads_dict<'py>(
    py: Python<'py>,
    d: usize,
    c: usize,
    heads: &[GatedHead],
) -> PyResult<Bound<'py, PyDict>> {
    let h = heads.len();
    let gate: Vec<usize> = heads.iter().map(|hd| hd.gate).collect();
    let token: Vec<usize> = heads.iter().map(GatedHead::token).collect();
    let out = PyDict::new(py);
    out.set_item("gate", vec1(py, indices(&gate)))?;
    out.set_item("token", vec1(py, indices(&token)))?;
    let value = heads.iter().flat_map(|hd| hd.value.iter().copied());
    out.set_item("value", shaped(py, &[h, d], value.collect()))?;
    let output = heads.iter().flat_map(|hd| hd.output.iter().copied());
    out.set_item("output", shaped(py, &[h, c], output.collect()))?;
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
///        time_limit=None, zero_tol=0.0, gates=None, gate_seed=0) -> dict
///
/// The token-group lasso (program (9); (12) when `y` is (N, c)) at one β, by FISTA with a
/// duality-gap certificate, GIL released. `X` is (N, n, d): N samples of n tokens. With
/// `gates=M` (≥ 1): program (14), attention + gated ReLU with M fixed gates
/// `D_ij = 1[u1_jᵀ X_i u2_j ≥ 0]` from Gaussian `u1`, `u2` seeded by `gate_seed` (as
/// `attnsvm convex --gates M --gate-seed S`), solved as (12) on the gated token copies.
///
/// Returns `status`, `beta`, `Z` (c, n, d), or (c, M, n, d) with gates, `row_norms` (c, n) or
/// (c, M, n), `active_groups`, `active_tokens`, `predictions` (N, c), `loss`, `penalty`,
/// `objective`, `certificate` (`primal`, `dual`, `gap`, `rel_gap`, …), `iterations`, `seconds`,
/// `history` (objective per accepted step), `message`; `heads`, the h one-hot heads recovered
/// from `Z` (one per nonzero group; gate 0 without gates), as `gate` (h,), `token` (h,), `value`
/// (h, d), `output` (h, c); `recovery`, their check as `attnsvm convex` writes it: `heads` (their
/// count), `max_prediction_difference` (their predictions against `predictions`),
/// `nonconvex_objective` ((8), (11) or (13) at the heads) and `relative_objective_difference`
/// (against `objective`); with gates also `gates` (N, M) of 0/1, `u1` (M, n) and `u2` (M, d).
#[pyfunction]
#[pyo3(signature = (X, y, beta, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100_000, time_limit=None, zero_tol=0.0, gates=None, gate_seed=0))]
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
    gates: Option<usize>,
    gate_seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let prog = program(&X, &y, gates, gate_seed)?;
    let p = prog.problem(loss, loss_weight)?;
    let s = settings(tol, max_iter, time_limit, zero_tol)?;
    let (sol, rec) = py
        .detach(|| {
            let sol = Glasso::new(&p, beta, s)?.solve();
            let rec = recover(&prog, &p, &sol)?;
            Ok((sol, rec))
        })
        .or_py()?;
    solution_dict(py, &prog, &p, &sol, &rec)
}

/// glasso_path(X, y, betas, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100000,
///             time_limit=None, zero_tol=0.0, gates=None, gate_seed=0) -> list[dict]
///
/// One solution per β in the order given, each warm-started from the previous one (pass a
/// decreasing sequence below `glasso_beta_max`); each dict as `glasso` returns (with its own
/// recovered `heads` and `recovery`). `gates=M` solves program (14) along the path.
#[pyfunction]
#[pyo3(signature = (X, y, betas, loss="squared", *, loss_weight=1.0, tol=1e-8, max_iter=100_000, time_limit=None, zero_tol=0.0, gates=None, gate_seed=0))]
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
    gates: Option<usize>,
    gate_seed: u64,
) -> PyResult<Bound<'py, PyList>> {
    let prog = program(&X, &y, gates, gate_seed)?;
    let p = prog.problem(loss, loss_weight)?;
    let s = settings(tol, max_iter, time_limit, zero_tol)?;
    let (sols, recs) = py
        .detach(|| {
            let sols = core::path(&p, &betas, &s)?;
            let recs = sols
                .iter()
                .map(|sol| recover(&prog, &p, sol))
                .collect::<attnsvm::Result<Vec<_>>>()?;
            Ok((sols, recs))
        })
        .or_py()?;
    let dicts = sols
        .iter()
        .zip(&recs)
        .map(|(sol, rec)| solution_dict(py, &prog, &p, sol, rec))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, dicts)
}

/// glasso_beta_max(X, y, loss="squared", *, loss_weight=1.0, gates=None, gate_seed=0) -> float
///
/// `β_max = max_{l,k} ‖(∇f(0))_{l,k}‖₂`: `Z = 0` is optimal iff `β ≥ β_max`. With `gates=M`,
/// that of program (14) (the same gates as `glasso` with the same `gates`, `gate_seed`).
#[pyfunction]
#[pyo3(signature = (X, y, loss="squared", *, loss_weight=1.0, gates=None, gate_seed=0))]
#[allow(non_snake_case)]
pub fn glasso_beta_max(
    X: Real<'_>,
    y: Real<'_>,
    loss: &str,
    loss_weight: f64,
    gates: Option<usize>,
    gate_seed: u64,
) -> PyResult<f64> {
    let prog = program(&X, &y, gates, gate_seed)?;
    Ok(prog.problem(loss, loss_weight)?.beta_max())
}
