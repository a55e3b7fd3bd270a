//! Instances, the attention model's risk `L(W) = (1/n) Σ_i ℓ(y_i f_i)` and its gradient
//! (`attnsvm::model::Objective`), and training (`attnsvm::train::train`).

use attnsvm::data::generate::{self as gen, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::model::{self, Head, HeadKind, Loss, Param};
use attnsvm::train::{Init, Optimizer, PolyakTarget, TrainSettings};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{self, indices, mat, parse, shaped, vec1, OrPy, Real};

/// The instance's arrays as a dict: `X`, `Z` (None for self-attention), `y`, `v`, `alpha`.
pub fn instance_dict<'py>(py: Python<'py>, inst: &Instance) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("X", shaped(py, &[inst.n, inst.t, inst.d], inst.x.clone()))?;
    out.set_item(
        "Z",
        inst.z.clone().map(|z| shaped(py, &[inst.n, inst.d], z)),
    )?;
    out.set_item("y", vec1(py, inst.y.clone()))?;
    out.set_item("v", vec1(py, inst.v.clone()))?;
    out.set_item("alpha", inst.alpha.as_deref().map(|a| vec1(py, indices(a))))?;
    Ok(out)
}

/// generate(family, n, T, d, seed=0, self_attention=False, margin=0.5) -> dict
///
/// A seeded instance of a data family (`gaussian`, `sphere`, `orthonormal`, `equal-score`,
/// `planted`); the same arguments as `attnsvm gen` give the same arrays, bit for bit. Returns the
/// instance arrays (`X`, `Z`, `y`, `v`, `alpha`) plus `reference_name` and `reference`: `W_mm` in
/// closed form (orthonormal), the hidden `W_star` (planted), else None.
#[pyfunction]
#[pyo3(signature = (family, n, T, d, seed=0, self_attention=false, margin=0.5))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn generate<'py>(
    py: Python<'py>,
    family: &str,
    n: usize,
    T: usize,
    d: usize,
    seed: u64,
    self_attention: bool,
    margin: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let family: Family = parse(
        "family",
        family,
        "gaussian, sphere, orthonormal, equal-score, planted",
    )?;
    let spec = GenSpec {
        self_attention,
        margin,
        ..GenSpec::new(family, n, T, d, seed)
    };
    let g = py.detach(|| gen::generate(&spec)).or_py()?;
    let out = instance_dict(py, &g.instance)?;
    out.set_item("reference_name", g.reference.as_ref().map(|r| r.0))?;
    out.set_item("reference", g.reference.as_ref().map(|r| mat(py, &r.1)))?;
    Ok(out)
}

/// load_instance(path) -> dict
///
/// Read an instance directory (`X.npy`, optional `Z.npy`, `y.npy`, `v.npy`, optional `alpha.npy`)
/// with the CLI's checks; returns the arrays as `generate` does.
#[pyfunction]
pub fn load_instance<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<Bound<'py, PyDict>> {
    let inst = Instance::load(&path).or_py()?;
    instance_dict(py, &inst)
}

/// The prediction head from its name and data.
pub fn head(
    kind: &str,
    lambda: f64,
    wv: Option<Real<'_>>,
    u: Option<Real<'_>>,
    d: usize,
    seed: u64,
) -> PyResult<Head> {
    let kind: HeadKind = parse("head", kind, "linear, relu, lambda")?;
    Ok(match kind {
        HeadKind::Linear => Head::Linear,
        HeadKind::Lambda => Head::Lambda { lambda },
        HeadKind::Relu => match (wv, u) {
            (Some(wv), Some(u)) => {
                let (shape, w) =
                    convert::values("Wv", &wv, &[None, Some(d)], &format!("(d_h, {d})"))?;
                let (_, u) =
                    convert::values("u", &u, &[Some(shape[0])], &format!("({},)", shape[0]))?;
                Head::Relu {
                    wv: attnsvm::linalg::mat_from_row_major(shape[0], d, &w),
                    u,
                }
            }
            (None, None) => Head::relu_from_seed(d, seed),
            _ => {
                return Err(convert::value_err(
                    "the ReLU head needs both Wv and u (or neither: drawn from the seed)",
                ))
            }
        },
    })
}

/// Objective(X, Z, y, v, head="linear", loss="logistic", query_position=0, lam=0.1, Wv=None, u=None, seed=0)
///
/// The risk `L(W) = (1/n) Σ_i ℓ(y_i f_i)` of one attention layer, `f_i = h(X_iᵀ softmax(X_i W z_i))`,
/// with its exact log-domain gradient. `Z=None` is self-attention (query = token `query_position`).
/// Heads: `linear` (vᵀx̄), `lambda` (vᵀx̄ − λ‖x̄‖², λ = `lam`), `relu` (uᵀReLU(W_v x̄), from `Wv`
/// and `u`, or drawn from `seed` as the CLI does). Losses: `logistic`, `exp`, `corr`.
#[pyclass(module = "attnsvm")]
pub struct Objective {
    inst: Instance,
    head: Head,
    loss: Loss,
    query_position: usize,
}

impl Objective {
    fn risk(&self) -> PyResult<model::Objective<'_>> {
        model::Objective::new(
            &self.inst,
            self.head.clone(),
            self.loss,
            self.query_position,
        )
        .or_py()
    }
}

#[pymethods]
impl Objective {
    #[new]
    #[pyo3(signature = (X, Z, y, v, head="linear", loss="logistic", query_position=0, lam=0.1, Wv=None, u=None, seed=0))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn new(
        X: Real<'_>,
        Z: Option<Real<'_>>,
        y: Real<'_>,
        v: Real<'_>,
        head: &str,
        loss: &str,
        query_position: usize,
        lam: f64,
        Wv: Option<Real<'_>>,
        u: Option<Real<'_>>,
        seed: u64,
    ) -> PyResult<Self> {
        let inst = convert::instance(&X, Z.as_ref(), &y, &v, None)?;
        let head = self::head(head, lam, Wv, u, inst.d, seed)?;
        let loss: Loss = parse("loss", loss, "logistic, exp, corr")?;
        let out = Objective {
            inst,
            head,
            loss,
            query_position,
        };
        out.risk()?; // validates the head and the query position
        Ok(out)
    }

    /// evaluate(W, v=None) -> dict
    ///
    /// `loss`, `log_loss`, `log_excess_loss` (log(L − L*), fixed linear head), `grad` (∇_W L; may
    /// underflow to 0 when the softmax saturates), `grad_direction` (∇_W L/‖∇_W L‖_F, exact at any
    /// scale; None for a zero gradient), `log_grad_norm`, `grad_v` (∇_v L), `selected` (top-attention
    /// token per sequence), `min_max_prob`, `mean_max_prob`, `log_max_off_mass`. Logs are natural.
    #[pyo3(signature = (W, v=None))]
    #[allow(non_snake_case)]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        W: Real<'_>,
        v: Option<Real<'_>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = self.inst.d;
        let w = convert::square("W", &W, d)?;
        let v = match v {
            Some(v) => convert::values("v", &v, &[Some(d)], &format!("({d},)"))?.1,
            None => self.inst.v.clone(),
        };
        if let Some(k) = (0..d * d).find(|&k| !w[(k / d, k % d)].is_finite()) {
            let x = w[(k / d, k % d)];
            return Err(convert::value_err(format!(
                "W: non-finite value {x} at index [{}, {}]",
                k / d,
                k % d
            )));
        }
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            return Err(convert::value_err(format!(
                "v: non-finite value {} at index [{k}]",
                v[k]
            )));
        }
        let mut risk = self.risk()?;
        let e = py.detach(|| risk.evaluate(&w, &v, true));
        let out = PyDict::new(py);
        out.set_item("loss", e.loss)?;
        out.set_item("log_loss", e.log_loss)?;
        out.set_item("log_excess_loss", e.log_excess_loss)?;
        out.set_item("grad", mat(py, &e.grad_w.value()))?;
        out.set_item("grad_direction", e.grad_w.direction().map(|g| mat(py, &g)))?;
        out.set_item("log_grad_norm", e.grad_w.log_norm())?;
        out.set_item(
            "grad_v",
            e.grad_v
                .map(|g| vec1(py, attnsvm::linalg::mat_to_row_major(&g.value()))),
        )?;
        out.set_item("selected", vec1(py, indices(&e.selected)))?;
        out.set_item("min_max_prob", e.min_max_prob)?;
        out.set_item("mean_max_prob", e.mean_max_prob)?;
        out.set_item("log_max_off_mass", e.log_max_off_mass)?;
        Ok(out)
    }

    /// loss(W) -> float: `L(W)` with the instance's head vector.
    #[allow(non_snake_case)]
    fn loss(&self, py: Python<'_>, W: Real<'_>) -> PyResult<f64> {
        let dict = self.evaluate(py, W, None)?;
        dict.get_item("loss")?
            .expect("evaluate sets loss")
            .extract()
    }

    /// gradient(W) -> ndarray: `∇_W L(W)` (d×d).
    #[allow(non_snake_case)]
    fn gradient<'py>(&self, py: Python<'py>, W: Real<'_>) -> PyResult<Bound<'py, PyAny>> {
        let dict = self.evaluate(py, W, None)?;
        Ok(dict.get_item("grad")?.expect("evaluate sets grad"))
    }

    /// logits(W) -> ndarray: `a_it = x_itᵀ W z_i`, shape (n, T).
    #[allow(non_snake_case)]
    fn logits<'py>(&self, py: Python<'py>, W: Real<'_>) -> PyResult<Bound<'py, PyAny>> {
        let w = convert::square("W", &W, self.inst.d)?;
        let a = self.risk()?.logits(&w);
        Ok(shaped(py, &[self.inst.n, self.inst.t], a))
    }

    /// `(n, T, d)`.
    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        (self.inst.n, self.inst.t, self.inst.d)
    }
}

/// Training settings from keyword arguments (the core's `TrainSettings`, CLI flag names).
#[allow(clippy::too_many_arguments)]
pub fn settings(
    param: &str,
    opt: &str,
    lr: f64,
    iters: usize,
    init: &str,
    seed: u64,
    lr_decay: f64,
    ngd_eps: f64,
    polyak_target: &str,
    kq_ridge: f64,
    train_v: bool,
    loss_tol: Option<f64>,
    grad_tol: Option<f64>,
    batch_size: Option<usize>,
    points_per_decade: usize,
) -> PyResult<TrainSettings> {
    Ok(TrainSettings {
        param: parse::<Param>("param", param, "w, kq")?,
        opt: parse::<Optimizer>("opt", opt, "gd, ngd, polyak, adam")?,
        lr,
        lr_decay,
        iters,
        init: parse::<Init>("init", init, "zero, random")?,
        seed,
        ngd_eps,
        polyak_target: parse::<PolyakTarget>("polyak_target", polyak_target, "zero, infimum")?,
        kq_ridge,
        train_v,
        loss_tol,
        grad_tol,
        batch_size,
        points_per_decade,
        ..TrainSettings::default()
    })
}
