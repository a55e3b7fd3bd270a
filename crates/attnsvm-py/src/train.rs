//! `train(...)`: one attention layer trained by GD, normalized GD, Polyak or Adam
//! (`attnsvm::train::train`), with the trajectory as a dict of NumPy arrays (the columns of the
//! CLI's `trace.csv`, plus `selected`).

use attnsvm::model::{self, Loss};
use attnsvm::train::{State, TrainResult};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{self, indices, mat, name_of, parse, shaped, vec1, OrPy, Real};
use crate::model::settings;

/// How often (in updates) a run with the GIL released looks for Ctrl-C.
const SIGNAL_EVERY: usize = 256;

/// train(X, Z, y, v, *, param="w", opt="ngd", lr=0.1, iters=1000, init="zero", seed=0, ...) -> dict
///
/// Train `W` (or `(K, Q)` with `param="kq"`) from the CLI's defaults (`attnsvm train`: exact-direction
/// normalized GD, η = 0.1, W = 0). The GIL is released during the run; Ctrl-C raises
/// KeyboardInterrupt. Returns `W`, `K`, `Q` (None for `param="w"`), `v`, `alpha_hat` (the final
/// top-attention tokens), `stop` (iterations, loss-tolerance, gradient-tolerance, zero-gradient,
/// non-finite), `iterations`, `seconds` and `trace`: a dict of arrays, one entry per record of the
/// log-spaced schedule, with the columns of `trace.csv` (`iter`, `loss`, `log10_loss`,
/// `log10_excess_loss`, `log10_grad_norm`, `w_norm`, `corr`, `one_minus_corr`, `min_max_prob`,
/// `mean_max_prob`, `log10_max_off_mass`, `seconds`; NaN where a value does not apply) and
/// `selected` (records × n).
#[pyfunction]
#[pyo3(signature = (
    X, Z, y, v, *, param="w", opt="ngd", lr=0.1, iters=1000, init="zero", seed=0, head="linear",
    loss="logistic", lam=0.1, Wv=None, u=None, query_position=0, reference=None, lr_decay=0.0,
    ngd_eps=0.0, polyak_target="zero", kq_ridge=0.0, train_v=false, loss_tol=None, grad_tol=None,
    batch_size=None, points_per_decade=20
))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    X: Real<'_>,
    Z: Option<Real<'_>>,
    y: Real<'_>,
    v: Real<'_>,
    param: &str,
    opt: &str,
    lr: f64,
    iters: usize,
    init: &str,
    seed: u64,
    head: &str,
    loss: &str,
    lam: f64,
    Wv: Option<Real<'_>>,
    u: Option<Real<'_>>,
    query_position: usize,
    reference: Option<Real<'_>>,
    lr_decay: f64,
    ngd_eps: f64,
    polyak_target: &str,
    kq_ridge: f64,
    train_v: bool,
    loss_tol: Option<f64>,
    grad_tol: Option<f64>,
    batch_size: Option<usize>,
    points_per_decade: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
    let s = settings(
        param,
        opt,
        lr,
        iters,
        init,
        seed,
        lr_decay,
        ngd_eps,
        polyak_target,
        kq_ridge,
        train_v,
        loss_tol,
        grad_tol,
        batch_size,
        points_per_decade,
    )?;
    let head = crate::model::head(head, lam, Wv, u, inst.d, seed)?;
    let loss: Loss = parse("loss", loss, "logistic, exp, corr")?;
    let reference = reference
        .map(|r| convert::square("reference", &r, inst.d))
        .transpose()?;
    let (result, interrupt) = py.detach(|| {
        let mut interrupt: Option<PyErr> = None;
        let result =
            model::Objective::new(&inst, head, loss, query_position).and_then(|mut risk| {
                let state = State::init(&s, inst.d, &inst.v);
                attnsvm::train::train(&mut risk, &s, state, reference.as_ref(), |k| {
                    if k % SIGNAL_EVERY != 0 {
                        return true;
                    }
                    interrupt = Python::attach(|py| py.check_signals().err());
                    interrupt.is_none()
                })
            });
        (result, interrupt)
    });
    if let Some(e) = interrupt {
        return Err(e);
    }
    result_dict(py, &result.or_py()?)
}

fn result_dict<'py>(py: Python<'py>, r: &TrainResult) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("W", mat(py, &r.state.w))?;
    out.set_item("K", r.state.kq.as_ref().map(|(k, _)| mat(py, k)))?;
    out.set_item("Q", r.state.kq.as_ref().map(|(_, q)| mat(py, q)))?;
    out.set_item("v", vec1(py, r.state.v.clone()))?;
    let last = r.trajectory.records.last();
    out.set_item("alpha_hat", last.map(|l| vec1(py, indices(&l.selected))))?;
    out.set_item("stop", name_of(&r.stop))?;
    out.set_item("iterations", r.iterations)?;
    out.set_item("seconds", r.seconds)?;
    out.set_item("trace", trace(py, r)?)?;
    Ok(out)
}

/// The trajectory as columns (natural logs turned to log10, as in `trace.csv`).
fn trace<'py>(py: Python<'py>, r: &TrainResult) -> PyResult<Bound<'py, PyDict>> {
    let recs = &r.trajectory.records;
    let ln10 = std::f64::consts::LN_10;
    let col = |f: &dyn Fn(&attnsvm::train::Record) -> f64| vec1(py, recs.iter().map(f).collect());
    let nan = f64::NAN;
    let out = PyDict::new(py);
    out.set_item(
        "iter",
        vec1(py, recs.iter().map(|x| x.iter as i64).collect()),
    )?;
    out.set_item("loss", col(&|x| x.loss))?;
    out.set_item("log10_loss", col(&|x| x.log_loss.map_or(nan, |l| l / ln10)))?;
    out.set_item(
        "log10_excess_loss",
        col(&|x| x.log_excess_loss.map_or(nan, |l| l / ln10)),
    )?;
    out.set_item("log10_grad_norm", col(&|x| x.log_grad_norm / ln10))?;
    out.set_item("w_norm", col(&|x| x.w_norm))?;
    out.set_item("corr", col(&|x| x.corr.unwrap_or(nan)))?;
    out.set_item("one_minus_corr", col(&|x| x.one_minus_corr.unwrap_or(nan)))?;
    out.set_item("min_max_prob", col(&|x| x.min_max_prob))?;
    out.set_item("mean_max_prob", col(&|x| x.mean_max_prob))?;
    out.set_item("log10_max_off_mass", col(&|x| x.log_max_off_mass / ln10))?;
    out.set_item("seconds", col(&|x| x.seconds))?;
    let (rows, n, sel) = r.trajectory.selected_matrix();
    out.set_item("selected", shaped(py, &[rows, n], sel))?;
    Ok(out)
}
