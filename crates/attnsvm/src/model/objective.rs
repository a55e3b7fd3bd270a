//! The risk `L(W, v) = (1/n) Σ_i ℓ(y_i f_i)` and its gradients, computed in the log domain.
//!
//! With `g_i = X_i ∇h(x̄_i)` (per-token value scores),
//! `∂f/∂a_t = s_t (g_t − sᵀg) = Σ_τ s_t s_τ (g_t − g_τ)`. The second form has no cancellation; we
//! factor the largest pair weight `e^{κ}`, `κ = a₁ + a₂ − 2·logsumexp(a)` (a₁, a₂ the two largest
//! logits) out of it, and the largest per-sequence weight `e^{M}` out of the sum over sequences, so
//! the gradient's *direction* keeps full precision even when its norm is e^{-10⁴}:
//!
//! `∇_W L = −(e^{M}/n) Σ_i ρ_i y_i X_iᵀ δ̃_i z_iᵀ`, `ρ_i = e^{log(−ℓ'(y_i f_i)) + κ_i − M} ≤ 1`.
//!
//! For the linear head the margin is computed as `y f = γ* − Δ` with `Δ = Σ_t s_t (γ* − γ_t) ≥ 0`
//! summed from the log-softmax, which gives `log(L − L*)` exactly (`L*` the infimum of the risk).

use faer::{Accum, Mat, MatRef, Par};

use super::{Head, Loss, Scaled};
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::dot;

/// Everything one evaluation of the risk yields.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `L = (1/n) Σ ℓ(y_i f_i)`.
    pub loss: f64,
    /// `log L` (exact when `L` underflows); `None` for the correlation loss.
    pub log_loss: Option<f64>,
    /// `log(L − L*)` with `L* = (1/n) Σ ℓ(max_t γ_it)`, the infimum for a fixed linear head.
    pub log_excess_loss: Option<f64>,
    /// `∇_W L` as `e^{log_scale}·mat`.
    pub grad_w: Scaled,
    /// `∇_v L` (a `d×1` matrix), when asked for.
    pub grad_v: Option<Scaled>,
    /// Per sequence, the token with the largest attention.
    pub selected: Vec<usize>,
    /// `min_i max_t s_it`.
    pub min_max_prob: f64,
    /// `log max_i (1 − max_t s_it)`: the largest attention mass left off a sequence's top token.
    pub log_max_off_mass: f64,
}

/// The risk of one attention layer on one instance, with scratch space for repeated evaluation.
pub struct Objective<'a> {
    inst: &'a Instance,
    head: Head,
    loss: Loss,
    /// Queries as a `d×n` column-major matrix: column `i` is `z_i`.
    zt: Mat<f64>,
    /// `W z_i` for all `i` (d×n).
    u: Mat<f64>,
    /// Column `i`: `−y_i ρ_i X_iᵀ δ̃_i`.
    b: Mat<f64>,
    /// Column `i`: `x̄_i` (kept for the head gradient).
    xbar: Mat<f64>,
    seq: SeqScratch,
}

#[derive(Default)]
struct SeqScratch {
    a: Vec<f64>,
    g: Vec<f64>,
    e1: Vec<f64>,
    e2: Vec<f64>,
    delta: Vec<f64>,
    gradh: Vec<f64>,
    r: Vec<f64>,
}

/// Per-sequence results before the global rescaling.
struct SeqOut {
    yf: f64,
    log_weight: f64,
    selected: usize,
    max_prob: f64,
    log_off_mass: f64,
    log_gap: Option<(f64, f64)>,
}

impl<'a> Objective<'a> {
    /// Set up the risk of `head` and `loss` on `inst`, with the query at `query_position` for
    /// self-attention.
    pub fn new(inst: &'a Instance, head: Head, loss: Loss, query_position: usize) -> Result<Self> {
        let (n, d) = (inst.n, inst.d);
        let z = inst.queries(query_position)?;
        match &head {
            Head::Relu { wv, u } => {
                if wv.ncols() != d || wv.nrows() != u.len() {
                    return Err(invalid!(
                        "ReLU head: W_v is {}×{} and u has {} entries; expected d_h×{d} and d_h",
                        wv.nrows(),
                        wv.ncols(),
                        u.len()
                    ));
                }
            }
            Head::Lambda { lambda } if !lambda.is_finite() => {
                return Err(invalid!("lambda head: λ = {lambda} is not finite"))
            }
            _ => {}
        }
        let zt = MatRef::from_column_major_slice(&z, d, n).to_owned();
        let dh = if let Head::Relu { u, .. } = &head {
            u.len()
        } else {
            0
        };
        let t = inst.t;
        let seq = SeqScratch {
            a: vec![0.0; t],
            g: vec![0.0; t],
            e1: vec![0.0; t],
            e2: vec![0.0; t],
            delta: vec![0.0; t],
            gradh: vec![0.0; d],
            r: vec![0.0; dh],
        };
        Ok(Objective {
            inst,
            head,
            loss,
            zt,
            u: Mat::zeros(d, n),
            b: Mat::zeros(d, n),
            xbar: Mat::zeros(d, n),
            seq,
        })
    }

    pub fn instance(&self) -> &Instance {
        self.inst
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn loss_kind(&self) -> Loss {
        self.loss
    }

    /// Logits `a_it = x_itᵀ W z_i` (`n·T`, row-major).
    pub fn logits(&mut self, w: &Mat<f64>) -> Vec<f64> {
        faer::linalg::matmul::matmul(&mut self.u, Accum::Replace, w, &self.zt, 1.0, Par::Seq);
        let (n, t) = (self.inst.n, self.inst.t);
        let mut out = Vec::with_capacity(n * t);
        for i in 0..n {
            let ui = self.u.col_as_slice(i);
            out.extend(
                self.inst
                    .tokens(i)
                    .chunks_exact(self.inst.d)
                    .map(|x| dot(x, ui)),
            );
        }
        out
    }

    /// Evaluate the risk at `(W, v)` and its gradient in `W` (and in `v` when `grad_v`).
    /// `v` is the head vector of the linear and λ heads (ignored by the ReLU head).
    pub fn evaluate(&mut self, w: &Mat<f64>, v: &[f64], grad_v: bool) -> Evaluation {
        let (n, d) = (self.inst.n, self.inst.d);
        assert_eq!(w.shape(), (d, d), "W must be d×d");
        assert_eq!(v.len(), d, "v must have d entries");
        faer::linalg::matmul::matmul(&mut self.u, Accum::Replace, w, &self.zt, 1.0, Par::Seq);
        let mut outs = Vec::with_capacity(n);
        for i in 0..n {
            outs.push(self.sequence(i, v));
        }
        // Global log-scale: the largest per-sequence weight.
        let m = outs
            .iter()
            .map(|o| o.log_weight)
            .fold(f64::NEG_INFINITY, f64::max);
        for (i, o) in outs.iter().enumerate() {
            let rho = if m.is_finite() {
                (o.log_weight - m).exp()
            } else {
                0.0
            };
            self.b
                .col_as_slice_mut(i)
                .iter_mut()
                .for_each(|e| *e *= rho);
        }
        let mut gw = Mat::zeros(d, d);
        // G̃ = Σ_i b_i z_iᵀ = B Zᵀᵀ.
        faer::linalg::matmul::matmul(
            &mut gw,
            Accum::Replace,
            &self.b,
            self.zt.transpose(),
            1.0,
            Par::Seq,
        );
        let ln_n = (n as f64).ln();
        let grad_w = Scaled {
            mat: gw,
            log_scale: if m.is_finite() { m - ln_n } else { 0.0 },
        };

        let loss = outs.iter().map(|o| self.loss.value(o.yf)).sum::<f64>() / n as f64;
        let log_loss = self.log_mean(outs.iter().map(|o| self.loss.log_value(o.yf)));
        let log_excess_loss = self.log_mean(outs.iter().map(|o| {
            o.log_gap
                .map(|(gamma, log_delta)| self.loss.log_excess(gamma, log_delta))
        }));
        let grad_v = grad_v.then(|| self.head_gradient(&outs));
        let min_max_prob = outs.iter().map(|o| o.max_prob).fold(1.0, f64::min);
        let log_max_off_mass = outs
            .iter()
            .map(|o| o.log_off_mass)
            .fold(f64::NEG_INFINITY, f64::max);
        Evaluation {
            loss,
            log_loss,
            log_excess_loss,
            grad_w,
            grad_v,
            selected: outs.iter().map(|o| o.selected).collect(),
            min_max_prob,
            log_max_off_mass,
        }
    }

    /// `log((1/n) Σ e^{x_i})`, or `None` when any term is undefined.
    fn log_mean(&self, terms: impl Iterator<Item = Option<f64>>) -> Option<f64> {
        let xs: Option<Vec<f64>> = terms.collect();
        let xs = xs?;
        let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if !m.is_finite() {
            return Some(m);
        }
        Some(m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln() - (xs.len() as f64).ln())
    }

    /// `∇_v L = −(1/n) Σ_i (−ℓ'(y_i f_i)) y_i x̄_i` (linear and λ heads: `∂f/∂v = x̄`).
    fn head_gradient(&self, outs: &[SeqOut]) -> Scaled {
        let d = self.inst.d;
        let logc: Vec<f64> = outs
            .iter()
            .map(|o| self.loss.log_neg_derivative(o.yf))
            .collect();
        let m = logc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut g = Mat::zeros(d, 1);
        if matches!(self.head, Head::Relu { .. }) {
            return Scaled {
                mat: g,
                log_scale: 0.0,
            };
        }
        for (i, &lc) in logc.iter().enumerate() {
            let c = -self.inst.y[i] * (lc - m).exp();
            crate::linalg::axpy(c, self.xbar.col_as_slice(i), g.col_as_slice_mut(0));
        }
        Scaled {
            mat: g,
            log_scale: m - (outs.len() as f64).ln(),
        }
    }

    /// Forward and backward for sequence `i`; writes `b_i` (unscaled by `ρ_i`) and `x̄_i`.
    fn sequence(&mut self, i: usize, v: &[f64]) -> SeqOut {
        let (t, d) = (self.inst.t, self.inst.d);
        let xs = self.inst.tokens(i);
        let yi = self.inst.y[i];
        let s = &mut self.seq;
        let ui = self.u.col_as_slice(i);
        for (k, x) in xs.chunks_exact(d).enumerate() {
            s.a[k] = dot(x, ui);
        }
        // Softmax in the log domain: e1_t = e^{a_t − a₁}, Σ e1 = E, s_t = e1_t / E.
        let top = crate::data::argmax(&s.a);
        let a1 = s.a[top];
        let mut e_sum = 0.0;
        for k in 0..t {
            s.e1[k] = (s.a[k] - a1).exp();
            e_sum += s.e1[k];
        }
        let lse = a1 + e_sum.ln();
        let off = e_sum - 1.0; // Σ_{t≠top} e^{a_t − a₁}, exact (e1_top = 1)
        let max_prob = 1.0 / e_sum;
        let log_off_mass = if off > 0.0 {
            off.ln() - e_sum.ln()
        } else {
            f64::NEG_INFINITY
        };

        // x̄ = Σ s_t x_t.
        let xbar = self.xbar.col_as_slice_mut(i);
        xbar.fill(0.0);
        for (k, x) in xs.chunks_exact(d).enumerate() {
            crate::linalg::axpy(s.e1[k] / e_sum, x, xbar);
        }
        // Value scores g_t = x_tᵀ ∇h(x̄) and the prediction f.
        let (f, log_gap) = match &self.head {
            Head::Linear => {
                for (k, x) in xs.chunks_exact(d).enumerate() {
                    s.g[k] = dot(x, v);
                }
                // y f = γ* − Δ, Δ = Σ_t s_t (γ* − γ_t) summed from log s_t = a_t − lse.
                let best = (0..t)
                    .map(|k| yi * s.g[k])
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut terms = Vec::with_capacity(t);
                for k in 0..t {
                    let gap = best - yi * s.g[k];
                    if gap > 0.0 {
                        terms.push(s.a[k] - lse + gap.ln());
                    }
                }
                let log_delta = log_sum_exp(&terms);
                (yi * (best - log_delta.exp()), Some((best, log_delta)))
            }
            Head::Lambda { lambda } => {
                for k in 0..d {
                    s.gradh[k] = v[k] - 2.0 * lambda * xbar[k];
                }
                for (k, x) in xs.chunks_exact(d).enumerate() {
                    s.g[k] = dot(x, &s.gradh);
                }
                (dot(v, xbar) - lambda * dot(xbar, xbar), None)
            }
            Head::Relu { wv, u } => {
                let mut f = 0.0;
                s.gradh.fill(0.0);
                for j in 0..u.len() {
                    let rj: f64 = (0..d).map(|k| wv[(j, k)] * xbar[k]).sum();
                    s.r[j] = rj;
                    if rj > 0.0 {
                        f += u[j] * rj;
                        for k in 0..d {
                            s.gradh[k] += u[j] * wv[(j, k)];
                        }
                    }
                }
                for (k, x) in xs.chunks_exact(d).enumerate() {
                    s.g[k] = dot(x, &s.gradh);
                }
                (f, None)
            }
        };
        let yf = yi * f;

        // δ̃ with e^{κ} factored out (module docs).
        let bi = self.b.col_as_slice_mut(i);
        bi.fill(0.0);
        if t < 2 {
            return SeqOut {
                yf,
                log_weight: f64::NEG_INFINITY,
                selected: top,
                max_prob,
                log_off_mass,
                log_gap,
            };
        }
        let second = (0..t)
            .filter(|&k| k != top)
            .max_by(|&p, &q| s.a[p].total_cmp(&s.a[q]))
            .unwrap();
        let a2 = s.a[second];
        let kappa = a1 + a2 - 2.0 * lse;
        // e2_τ = e^{a_τ − a₂}; reuse e1 unless that would lose terms that matter (see docs).
        if a1 - a2 <= 345.0 {
            let c = (a1 - a2).exp();
            for k in 0..t {
                s.e2[k] = s.e1[k] * c;
            }
        } else {
            for k in 0..t {
                s.e2[k] = (s.a[k] - a2).exp();
            }
        }
        for k in 0..t {
            let gk = s.g[k];
            s.delta[k] = if k == top {
                (0..t)
                    .filter(|&q| q != top)
                    .map(|q| s.e2[q] * (gk - s.g[q]))
                    .sum()
            } else {
                s.e2[k] * (0..t).map(|q| s.e1[q] * (gk - s.g[q])).sum::<f64>()
            };
        }
        for (k, x) in xs.chunks_exact(d).enumerate() {
            crate::linalg::axpy(-yi * s.delta[k], x, bi);
        }
        let log_weight = self.loss.log_neg_derivative(yf) + kappa;
        SeqOut {
            yf,
            log_weight,
            selected: top,
            max_prob,
            log_off_mass,
            log_gap,
        }
    }
}

/// `log Σ e^{x_k}` (−∞ for an empty sum).
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
