//! The data of an ε-SVR on the keys of one sequence (without bias by default), its normalized
//! kernel, the support-vector expansion and the primal-dual certificate (spec `primal-dual.md`
//! §1.2–§1.4).

use faer::Mat;
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::linalg::dot;
use crate::model::attention::{check_finite, elu_plus_one};

/// The kernel `κ(x, y) = Φ(x)ᵀΦ(y)` of the SVR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SvrKernel {
    /// `exp(xᵀy/√D)` (`D` the key width): softmax attention.
    #[default]
    Exp,
    /// `φ(x)ᵀφ(y)` with `φ = elu + 1`: linear attention.
    EluPlusOne,
}

/// `min_β ½ βᵀK̃β − yᵀβ + ε‖β‖₁  s.t. |β_j| ≤ C`, one program per output column (the negated dual
/// (D) of the module docs), plus `Σ_j β_j = 0` when the model has a bias `b`
/// ([`SvrProblem::with_bias`]; spec §1.4 caveat 3: it forces `Σ_j h(k_j) v_j = 0`, which learned
/// values do not satisfy, so attention is the SVR *without* bias).
#[derive(Debug, Clone)]
pub struct SvrProblem {
    keys: Mat<f64>,
    targets: Mat<f64>,
    pub kernel: SvrKernel,
    pub c: f64,
    pub epsilon: f64,
    /// The model `f(x) = WΦ(x)/h(x) + b` keeps its bias (dual constraint `Σ_j β_j = 0`).
    pub bias: bool,
    /// `ln h(k_j)`, `h(x) = Σ_j κ(x, k_j)`.
    log_h: Vec<f64>,
    /// `K̃_ij = κ(k_i, k_j)/(h(k_i) h(k_j))`.
    gram: Mat<f64>,
}

/// How far a dual point `β` is from optimal. `P` is the primal (P) at `w = Σ_j β_j Φ(k_j)/h(k_j)`
/// with the best slacks, `D` the dual (D); `P − D = Σ_j [ε|β_j| − β_j r_j + C(|r_j| − ε)₊] ≥ 0`
/// termwise when `|β_j| ≤ C`, with residuals `r = y − K̃β`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Certificate {
    pub primal: f64,
    pub dual: f64,
    /// `P − D` (summed over output columns).
    pub duality_gap: f64,
    /// `(P − D)/max(1, |P|, |D|)`.
    pub rel_gap: f64,
    /// `max_j |β_j − clip_C(S_ε(β_j + r_j))|`: the fixed-point residual of the proximal-gradient
    /// step, zero exactly at the optimum (it encodes every KKT condition).
    pub kkt_residual: f64,
    /// `max_j (|β_j| − C)₊`.
    pub box_violation: f64,
    /// `max_d |Σ_j β_j(d)|` with a bias (zero without).
    pub bias_violation: f64,
}

impl SvrProblem {
    /// An SVR with keys `N×D`, targets `N×D_v`, trade-off `C > 0` and tube width `ε ≥ 0`.
    pub fn new(
        keys: Mat<f64>,
        targets: Mat<f64>,
        kernel: SvrKernel,
        c: f64,
        epsilon: f64,
    ) -> Result<Self> {
        let n = keys.nrows();
        if n == 0 || keys.ncols() == 0 || targets.ncols() == 0 {
            return Err(invalid!(
                "svr: keys are {}×{}, targets {}×{}; all must be non-empty",
                n,
                keys.ncols(),
                targets.nrows(),
                targets.ncols()
            ));
        }
        if targets.nrows() != n {
            return Err(invalid!("svr: {} targets for {n} keys", targets.nrows()));
        }
        check_finite("svr keys", &keys)?;
        check_finite("svr targets", &targets)?;
        if !(c > 0.0 && c.is_finite()) {
            return Err(invalid!("svr: C = {c} must be positive and finite"));
        }
        if !(epsilon >= 0.0 && epsilon.is_finite()) {
            return Err(invalid!("svr: epsilon = {epsilon} must be ≥ 0 and finite"));
        }
        let mut p = SvrProblem {
            keys,
            targets,
            kernel,
            c,
            epsilon,
            bias: false,
            log_h: Vec::new(),
            gram: Mat::zeros(0, 0),
        };
        p.log_h = (0..n).map(|j| p.log_normalizer(&p.key(j))).collect();
        p.gram = Mat::from_fn(n, n, |i, j| {
            (p.log_kernel(&p.key(i), &p.key(j)) - p.log_h[i] - p.log_h[j]).exp()
        });
        Ok(p)
    }

    /// The SVR whose dual optimum reproduces attention with `values` (`N×D_v`): `β = h(k)∘V`,
    /// `C = 2 max|β|` (1 if `V = 0`) and `y = K̃β + ε sign(β)`, so every nonzero `β_j` is a free
    /// support vector with `|r_j| = ε` and every zero one sits in the middle of the tube. For the
    /// exponential kernel `K̃ ≻ 0` (distinct keys), so this `β` is the unique optimum: solving the
    /// SVR from scratch recovers the values. For elu+1, `K̃` has rank ≤ D: the optimum `β` need
    /// not be unique, but the primal `W` and so the expansion (the attention output) is.
    pub fn from_attention(
        keys: Mat<f64>,
        values: &Mat<f64>,
        kernel: SvrKernel,
        epsilon: f64,
    ) -> Result<Self> {
        if values.nrows() != keys.nrows() {
            return Err(invalid!(
                "svr: {} values for {} keys",
                values.nrows(),
                keys.nrows()
            ));
        }
        check_finite("svr values", values)?;
        let mut p = SvrProblem::new(keys, values.clone(), kernel, 1.0, epsilon)?;
        let beta = Mat::from_fn(values.nrows(), values.ncols(), |j, c| {
            p.log_h[j].exp() * values[(j, c)]
        });
        let bmax = (0..beta.ncols())
            .flat_map(|c| beta.col_as_slice(c).iter().map(|b| b.abs()))
            .fold(0.0f64, f64::max);
        p.c = if bmax > 0.0 { 2.0 * bmax } else { 1.0 };
        let g = &p.gram * &beta;
        p.targets = Mat::from_fn(beta.nrows(), beta.ncols(), |j, c| {
            let b = beta[(j, c)];
            g[(j, c)] + if b == 0.0 { 0.0 } else { epsilon * b.signum() }
        });
        check_finite("svr targets", &p.targets)?;
        Ok(p)
    }

    /// The same SVR with a bias in the model (solved by [`Engine::Ipm`](super::Engine::Ipm) only).
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// The best bias of each output column for the dual point `β`: `argmin_b Σ_j (|u_j − b| − ε)₊`
    /// with `u = y − K̃β` (a convex piecewise-linear function, minimized at a breakpoint `u_j ± ε`);
    /// zeros without a bias.
    pub fn bias_of(&self, beta: &Mat<f64>) -> Vec<f64> {
        let fit = &self.gram * beta;
        (0..beta.ncols())
            .map(|col| {
                if !self.bias {
                    return 0.0;
                }
                let u: Vec<f64> = (0..beta.nrows())
                    .map(|j| self.targets[(j, col)] - fit[(j, col)])
                    .collect();
                let loss = |b: f64| -> f64 {
                    u.iter()
                        .map(|x| ((x - b).abs() - self.epsilon).max(0.0))
                        .sum()
                };
                u.iter()
                    .flat_map(|x| [x - self.epsilon, x + self.epsilon])
                    .map(|b| (loss(b), b))
                    .fold((f64::INFINITY, 0.0), |best, cand| {
                        if cand.0 < best.0 {
                            cand
                        } else {
                            best
                        }
                    })
                    .1
            })
            .collect()
    }

    pub fn n_keys(&self) -> usize {
        self.keys.nrows()
    }

    pub fn n_outputs(&self) -> usize {
        self.targets.ncols()
    }

    pub fn keys(&self) -> &Mat<f64> {
        &self.keys
    }

    pub fn targets(&self) -> &Mat<f64> {
        &self.targets
    }

    /// The normalized kernel matrix `K̃`.
    pub fn gram(&self) -> &Mat<f64> {
        &self.gram
    }

    /// `ln h(k_j)` for every key.
    pub fn log_normalizers(&self) -> &[f64] {
        &self.log_h
    }

    fn key(&self, j: usize) -> Vec<f64> {
        (0..self.keys.ncols()).map(|c| self.keys[(j, c)]).collect()
    }

    /// `ln κ(x, y)`.
    pub fn log_kernel(&self, x: &[f64], y: &[f64]) -> f64 {
        match self.kernel {
            SvrKernel::Exp => dot(x, y) / (x.len() as f64).sqrt(),
            SvrKernel::EluPlusOne => x
                .iter()
                .zip(y)
                .map(|(&a, &b)| elu_plus_one(a) * elu_plus_one(b))
                .sum::<f64>()
                .ln(),
        }
    }

    /// `ln h(x) = ln Σ_j κ(x, k_j)`, in the log domain.
    pub fn log_normalizer(&self, x: &[f64]) -> f64 {
        let logs: Vec<f64> = (0..self.n_keys())
            .map(|j| self.log_kernel(x, &self.key(j)))
            .collect();
        crate::model::log_sum_exp(&logs)
    }

    /// The values of the attention this SVR is: `v_j = β_j / h(k_j)`.
    pub fn values(&self, beta: &Mat<f64>) -> Mat<f64> {
        Mat::from_fn(beta.nrows(), beta.ncols(), |j, c| {
            beta[(j, c)] * (-self.log_h[j]).exp()
        })
    }

    /// The support-vector expansion (SVE) at each query row:
    /// `f(q) = Σ_j β_j κ(q, k_j) / (h(k_j) h(q))` (plus [`SvrProblem::bias_of`] with a bias).
    pub fn predict(&self, beta: &Mat<f64>, queries: &Mat<f64>) -> Result<Mat<f64>> {
        if queries.ncols() != self.keys.ncols() || beta.shape() != self.targets.shape() {
            return Err(invalid!(
                "svr predict: queries have {} columns (keys {}), β is {}×{} (targets {}×{})",
                queries.ncols(),
                self.keys.ncols(),
                beta.nrows(),
                beta.ncols(),
                self.targets.nrows(),
                self.targets.ncols()
            ));
        }
        check_finite("svr queries", queries)?;
        let b = self.bias_of(beta);
        let mut out = Mat::from_fn(queries.nrows(), beta.ncols(), |_, c| b[c]);
        for i in 0..queries.nrows() {
            let q: Vec<f64> = (0..queries.ncols()).map(|c| queries[(i, c)]).collect();
            let log_hq = self.log_normalizer(&q);
            for j in 0..self.n_keys() {
                let w = (self.log_kernel(&q, &self.key(j)) - self.log_h[j] - log_hq).exp();
                for c in 0..beta.ncols() {
                    out[(i, c)] += w * beta[(j, c)];
                }
            }
        }
        Ok(out)
    }

    /// Residuals `r = y − K̃β − b` (prediction errors at the keys; `b` = [`SvrProblem::bias_of`]).
    pub fn residuals(&self, beta: &Mat<f64>) -> Mat<f64> {
        let b = self.bias_of(beta);
        let fit = &self.gram * beta;
        Mat::from_fn(beta.nrows(), beta.ncols(), |j, c| {
            self.targets[(j, c)] - fit[(j, c)] - b[c]
        })
    }

    /// The certificate of a dual point `β` (`N×D_v`).
    pub fn certificate(&self, beta: &Mat<f64>) -> Certificate {
        let r = self.residuals(beta);
        let bias = self.bias_of(beta);
        let (c, eps) = (self.c, self.epsilon);
        let mut cert = Certificate::default();
        for (col, &offset) in bias.iter().enumerate() {
            let (b, rc, y) = (
                beta.col_as_slice(col),
                r.col_as_slice(col),
                self.targets.col_as_slice(col),
            );
            // βᵀK̃β = βᵀ(y − r − b·1); the bias term is zero when Σβ = 0.
            let quad: f64 = b
                .iter()
                .zip(y)
                .zip(rc)
                .map(|((b, y), r)| b * (y - r))
                .sum::<f64>()
                - offset * b.iter().sum::<f64>();
            cert.bias_violation = cert.bias_violation.max(b.iter().sum::<f64>().abs());
            let l1: f64 = b.iter().map(|b| b.abs()).sum();
            let slack: f64 = rc.iter().map(|r| (r.abs() - eps).max(0.0)).sum();
            cert.primal += 0.5 * quad + c * slack;
            cert.dual += -0.5 * quad - eps * l1 + dot(y, b);
            for (&bj, &rj) in b.iter().zip(rc) {
                cert.duality_gap += eps * bj.abs() - bj * rj + c * (rj.abs() - eps).max(0.0);
                let step = prox(bj + rj, eps, c);
                cert.kkt_residual = cert.kkt_residual.max((bj - step).abs());
                cert.box_violation = cert.box_violation.max(bj.abs() - c);
            }
            cert.duality_gap -= offset * b.iter().sum::<f64>();
        }
        cert.rel_gap = cert.duality_gap / cert.primal.abs().max(cert.dual.abs()).max(1.0);
        cert
    }
}

/// `clip_{[−C, C]}(S_ε(x))`: the proximal map of `ε|·|` plus the box.
pub(super) fn prox(x: f64, eps: f64, c: f64) -> f64 {
    (x.abs() - eps).max(0.0).copysign(x).clamp(-c, c)
}
