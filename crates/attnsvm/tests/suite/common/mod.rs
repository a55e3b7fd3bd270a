//! Shared helpers of the integration tests: seeded random matrices, an independent *naive*
//! implementation of the attention risk and its gradients (plain softmax, `s_t (g_t − sᵀg)`), and
//! central finite differences.
//!
//! The naive model is written from the spec (tf-as-svm.md §1.2–§1.5) without looking at the
//! log-domain tricks of the library, so agreeing with it is evidence, not a tautology.

#![allow(dead_code)] // every test file uses a different subset

pub mod npy_raw;

use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss};
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub const LOSSES: [Loss; 3] = [Loss::Logistic, Loss::Exp, Loss::Corr];

/// A `rows×cols` matrix of i.i.d. N(0,1) entries scaled to Frobenius norm `norm`.
pub fn random_mat(rng: &mut ChaCha8Rng, rows: usize, cols: usize, norm: f64) -> Mat<f64> {
    let m = Mat::from_fn(rows, cols, |_, _| rng.sample::<f64, _>(StandardNormal));
    let s = norm / m.norm_l2();
    Mat::from_fn(rows, cols, |i, j| s * m[(i, j)])
}

/// A vector of i.i.d. N(0,1) entries.
pub fn random_vec(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A generated instance of `family` (cross- or self-attention).
pub fn instance(
    family: Family,
    (n, t, d): (usize, usize, usize),
    seed: u64,
    self_attention: bool,
) -> Instance {
    let spec = GenSpec {
        self_attention,
        ..GenSpec::new(family, n, t, d, seed)
    };
    generate(&spec).expect("valid spec").instance
}

/// `c·A`.
pub fn scale(a: &Mat<f64>, c: f64) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| c * a[(i, j)])
}

/// `‖A − B‖_F`.
pub fn dist(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let e = a[(i, j)] - b[(i, j)];
            s += e * e;
        }
    }
    s.sqrt()
}

/// `⟨A,B⟩ / (‖A‖‖B‖)`, computed here (not with the library's `linalg`).
pub fn cosine(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s / (a.norm_l2() * b.norm_l2())
}

/// Central finite differences of `f` at `x` in every entry, step `h`.
pub fn fd_grad_mat(x: &Mat<f64>, h: f64, mut f: impl FnMut(&Mat<f64>) -> f64) -> Mat<f64> {
    let mut g = Mat::zeros(x.nrows(), x.ncols());
    let mut xp = x.clone();
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            let x0 = x[(i, j)];
            xp[(i, j)] = x0 + h;
            let fp = f(&xp);
            xp[(i, j)] = x0 - h;
            let fm = f(&xp);
            xp[(i, j)] = x0;
            // Divide by the step actually taken (x0 ± h is rounded).
            g[(i, j)] = (fp - fm) / ((x0 + h) - (x0 - h));
        }
    }
    g
}

/// Central finite differences of `f` at the vector `x`.
pub fn fd_grad_vec(x: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|k| {
            let x0 = x[k];
            xp[k] = x0 + h;
            let fp = f(&xp);
            xp[k] = x0 - h;
            let fm = f(&xp);
            xp[k] = x0;
            (fp - fm) / ((x0 + h) - (x0 - h))
        })
        .collect()
}

/// Everything the naive model computes.
pub struct Naive {
    pub loss: f64,
    pub grad_w: Mat<f64>,
    /// `∇_v L` for the linear and λ heads (zero for ReLU).
    pub grad_v: Vec<f64>,
    /// Per sequence the attention vector `s_i`.
    pub attention: Vec<Vec<f64>>,
    /// Per sequence the ReLU pre-activations `W_v x̄_i` (empty for other heads).
    pub preact: Vec<Vec<f64>>,
}

/// Plain ℓ(u).
pub fn naive_loss(loss: Loss, u: f64) -> f64 {
    match loss {
        Loss::Logistic => (-u).exp().ln_1p(),
        Loss::Exp => (-u).exp(),
        Loss::Corr => -u,
    }
}

/// Plain ℓ'(u).
pub fn naive_dloss(loss: Loss, u: f64) -> f64 {
    match loss {
        Loss::Logistic => -1.0 / (1.0 + u.exp()),
        Loss::Exp => -(-u).exp(),
        Loss::Corr => -1.0,
    }
}

/// The risk and its gradients by the textbook formulas of spec §1.5, in plain f64:
/// `s = softmax(a)` (max subtracted), `∂f/∂a_t = s_t (g_t − sᵀg)`,
/// `∇_W L = (1/n) Σ ℓ'(y f) y X_iᵀ (∂f/∂a) z_iᵀ`, `∇_v L = (1/n) Σ ℓ'(y f) y x̄_i`.
pub fn naive(
    inst: &Instance,
    head: &Head,
    loss: Loss,
    qpos: usize,
    w: &Mat<f64>,
    v: &[f64],
) -> Naive {
    let (n, t, d) = (inst.n, inst.t, inst.d);
    let z = inst.queries(qpos).unwrap();
    let mut grad_w = Mat::zeros(d, d);
    let mut grad_v = vec![0.0; d];
    let mut total = 0.0;
    let mut attention = Vec::new();
    let mut preacts = Vec::new();
    for i in 0..n {
        let zi = &z[i * d..][..d];
        let wz: Vec<f64> = (0..d)
            .map(|r| (0..d).map(|c| w[(r, c)] * zi[c]).sum())
            .collect();
        let a: Vec<f64> = (0..t)
            .map(|k| inst.token(i, k).iter().zip(&wz).map(|(x, y)| x * y).sum())
            .collect();
        let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = a.iter().map(|ak| (ak - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        let s: Vec<f64> = e.iter().map(|ek| ek / sum).collect();
        let mut xbar = vec![0.0; d];
        for (k, sk) in s.iter().enumerate() {
            for (c, xc) in inst.token(i, k).iter().enumerate() {
                xbar[c] += sk * xc;
            }
        }
        let dotv = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).sum::<f64>();
        let mut preact = Vec::new();
        let (f, gradh): (f64, Vec<f64>) = match head {
            Head::Linear => (dotv(v, &xbar), v.to_vec()),
            Head::Lambda { lambda } => (
                dotv(v, &xbar) - lambda * dotv(&xbar, &xbar),
                (0..d).map(|c| v[c] - 2.0 * lambda * xbar[c]).collect(),
            ),
            Head::Relu { wv, u } => {
                let mut f = 0.0;
                let mut gh = vec![0.0; d];
                for j in 0..u.len() {
                    let r: f64 = (0..d).map(|c| wv[(j, c)] * xbar[c]).sum();
                    preact.push(r);
                    if r > 0.0 {
                        f += u[j] * r;
                        for c in 0..d {
                            gh[c] += u[j] * wv[(j, c)];
                        }
                    }
                }
                (f, gh)
            }
        };
        let g: Vec<f64> = (0..t).map(|k| dotv(inst.token(i, k), &gradh)).collect();
        let sg = dotv(&s, &g);
        let dfa: Vec<f64> = (0..t).map(|k| s[k] * (g[k] - sg)).collect();
        let yi = inst.y[i];
        let u = yi * f;
        total += naive_loss(loss, u);
        let c = naive_dloss(loss, u) * yi / n as f64;
        let mut xd = vec![0.0; d];
        for (k, dk) in dfa.iter().enumerate() {
            for (r, xr) in inst.token(i, k).iter().enumerate() {
                xd[r] += dk * xr;
            }
        }
        for r in 0..d {
            for q in 0..d {
                grad_w[(r, q)] += c * xd[r] * zi[q];
            }
        }
        if !matches!(head, Head::Relu { .. }) {
            for r in 0..d {
                grad_v[r] += c * xbar[r];
            }
        }
        attention.push(s);
        preacts.push(preact);
    }
    Naive {
        loss: total / n as f64,
        grad_w,
        grad_v,
        attention,
        preact: preacts,
    }
}

/// The three heads the tests exercise, for dimension `d`.
pub fn heads(d: usize, lambda: f64, relu_seed: u64) -> Vec<Head> {
    vec![
        Head::Linear,
        Head::Lambda { lambda },
        Head::relu_from_seed(d, relu_seed),
    ]
}

pub fn head_name(h: &Head) -> &'static str {
    match h {
        Head::Linear => "linear",
        Head::Lambda { .. } => "lambda",
        Head::Relu { .. } => "relu",
    }
}
