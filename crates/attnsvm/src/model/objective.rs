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

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::{kernel, Head, Loss, Scaled};
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::matmul_into;

/// Everything one evaluation of the risk yields.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `L = (1/n) Σ ℓ(y_i f_i)`.
    pub loss: f64,
    /// `log L` (exact when `L` underflows); `None` for the correlation loss or when diagnostics
    /// are off ([`Objective::set_diagnostics`]).
    pub log_loss: Option<f64>,
    /// `log(L − L*)` with `L* = (1/n) Σ ℓ(max_t γ_it)`, the infimum for a fixed linear head
    /// (`None` for other heads or when diagnostics are off).
    pub log_excess_loss: Option<f64>,
    /// `∇_W L` as `e^{log_scale}·mat`.
    pub grad_w: Scaled,
    /// `∇_v L` (a `d×1` matrix), when asked for.
    pub grad_v: Option<Scaled>,
    /// Per sequence, the token with the largest attention.
    pub selected: Vec<usize>,
    /// `min_i max_t s_it`.
    pub min_max_prob: f64,
    /// `(1/n) Σ_i max_t s_it` (the papers' "softmax probability of the selected token").
    pub mean_max_prob: f64,
    /// `log max_i (1 − max_t s_it)`: the largest attention mass left off a sequence's top token
    /// (NaN when diagnostics are off).
    pub log_max_off_mass: f64,
}

/// The risk of one attention layer on one instance, with scratch space for repeated evaluation.
pub struct Objective<'a> {
    inst: &'a Instance,
    head: Head,
    loss: Loss,
    /// Queries, `n·d` row-major (= `Zᵀ` column-major, d×n).
    z: Vec<f64>,
    /// `W z_i` for all `i` (d×n).
    u: Mat<f64>,
    /// Column `i` (d values each, column-major d×n): `−y_i ρ_i X_iᵀ δ̃_i`.
    b: Vec<f64>,
    /// Column `i`: `x̄_i`.
    xbar: Vec<f64>,
    /// Per-sequence scratch of the serial path, kept across evaluations.
    scratch: kernel::Scratch,
    /// `X v` for the `v` it was computed with (linear head).
    g_linear: Option<(Vec<f64>, Vec<f64>)>,
    query_position: usize,
    diagnostics: bool,
    parallel: bool,
}

impl<'a> Objective<'a> {
    /// Set up the risk of `head` and `loss` on `inst`, with the query at `query_position` for
    /// self-attention.
    pub fn new(inst: &'a Instance, head: Head, loss: Loss, query_position: usize) -> Result<Self> {
        let (n, t, d) = (inst.n, inst.t, inst.d);
        let z = inst.queries(query_position)?;
        match &head {
            Head::Relu { wv, u } if wv.ncols() != d || wv.nrows() != u.len() => {
                return Err(invalid!(
                    "ReLU head: W_v is {}×{} and u has {} entries; expected d_h×{d} and d_h",
                    wv.nrows(),
                    wv.ncols(),
                    u.len()
                ));
            }
            Head::Lambda { lambda } if !lambda.is_finite() => {
                return Err(invalid!("lambda head: λ = {lambda} is not finite"))
            }
            _ => {}
        }
        Ok(Objective {
            inst,
            head,
            loss,
            z,
            u: Mat::zeros(d, n),
            b: vec![0.0; n * d],
            xbar: vec![0.0; n * d],
            scratch: kernel::Scratch::new(t, d),
            g_linear: None,
            query_position,
            diagnostics: true,
            // Off unless the instance is large: on the 2-vCPU machines we measured, the second thread
            // shares a physical core and brought no speed-up at (n, T, d) = (1000, 16, 32).
            parallel: n > 1 && n * t * d >= 1 << 23,
        })
    }

    pub fn instance(&self) -> &Instance {
        self.inst
    }

    /// The same risk (head, loss, query position) on another instance, e.g. a minibatch of this
    /// one ([`Instance::subset`]).
    pub fn on<'b>(&self, inst: &'b Instance) -> Result<Objective<'b>> {
        Objective::new(inst, self.head.clone(), self.loss, self.query_position)
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn loss_kind(&self) -> Loss {
        self.loss
    }

    /// Compute `log L` and `log(L − L*)` in every evaluation (default `true`). They cost a few
    /// transcendental functions per sequence; the trainer turns them on only where it uses them.
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
    }

    /// Spread the sequences over rayon's threads (default: on for large instances). The result is
    /// bit-for-bit the same either way.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }

    fn zt(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.z, self.inst.d, self.inst.n)
    }

    /// Logits `a_it = x_itᵀ W z_i` (`n·T`, row-major).
    pub fn logits(&mut self, w: &Mat<f64>) -> Vec<f64> {
        let zt = MatRef::from_column_major_slice(&self.z, self.inst.d, self.inst.n);
        matmul_into(&mut self.u, w.as_ref(), zt);
        let d = self.inst.d;
        (0..self.inst.n)
            .flat_map(|i| {
                let ui = self.u.col_as_slice(i);
                self.inst
                    .tokens(i)
                    .chunks_exact(d)
                    .map(|x| crate::linalg::dot(x, ui))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Evaluate the risk at `(W, v)` and its gradient in `W` (and in `v` when `grad_v`).
    /// `v` is the head vector of the linear and λ heads (ignored by the ReLU head).
    pub fn evaluate(&mut self, w: &Mat<f64>, v: &[f64], grad_v: bool) -> Evaluation {
        let (n, d) = (self.inst.n, self.inst.d);
        assert_eq!(w.shape(), (d, d), "W must be d×d");
        assert_eq!(v.len(), d, "v must have d entries");
        let zt = MatRef::from_column_major_slice(&self.z, d, n);
        matmul_into(&mut self.u, w.as_ref(), zt);
        // Any faer call before this one (norms, sums in the trainer) may have left the upper
        // vector state dirty, which slows every libm call of the kernel ≈ 30× (see linalg).
        crate::linalg::clear_upper_simd_state();
        let need_xbar = grad_v || !self.head.is_linear();
        let outs = self.sequences(v, need_xbar);
        // Global log-scale: the largest per-sequence weight.
        let m = outs
            .iter()
            .map(|o| o.log_weight)
            .fold(f64::NEG_INFINITY, f64::max);
        for (o, bi) in outs.iter().zip(self.b.chunks_exact_mut(d)) {
            let rho = if m.is_finite() {
                kernel::exp_nonpositive::<false>(o.log_weight - m)
            } else {
                0.0
            };
            bi.iter_mut().for_each(|e| *e *= rho);
        }
        let mut gw = Mat::zeros(d, d);
        // G̃ = Σ_i b_i z_iᵀ = B Zᵀᵀ.
        let bm = MatRef::from_column_major_slice(&self.b, d, n);
        matmul_into(&mut gw, bm, self.zt().transpose());
        let ln_n = (n as f64).ln();
        let grad_w = Scaled {
            mat: gw,
            log_scale: if m.is_finite() { m - ln_n } else { 0.0 },
        };

        let loss = outs.iter().map(|o| o.loss).sum::<f64>() / n as f64;
        let (log_loss, log_excess_loss, log_max_off_mass) = if self.diagnostics {
            (
                log_mean(outs.iter().map(|o| self.loss.log_value(o.yf))),
                log_mean(
                    outs.iter()
                        .map(|o| o.log_gap().map(|(g, ld)| self.loss.log_excess(g, ld))),
                ),
                outs.iter()
                    .map(|o| o.log_off_mass())
                    .fold(f64::NEG_INFINITY, f64::max),
            )
        } else {
            (None, None, f64::NAN)
        };
        let grad_v = grad_v.then(|| self.head_gradient(&outs));
        Evaluation {
            loss,
            log_loss,
            log_excess_loss,
            grad_w,
            grad_v,
            selected: outs.iter().map(|o| o.selected).collect(),
            min_max_prob: outs.iter().map(|o| o.max_prob).fold(1.0, f64::min),
            mean_max_prob: outs.iter().map(|o| o.max_prob).sum::<f64>() / n as f64,
            log_max_off_mass,
        }
    }

    /// Run the per-sequence kernel on every sequence, in parallel chunks when enabled.
    fn sequences(&mut self, v: &[f64], need_xbar: bool) -> Vec<kernel::SeqOut> {
        let (n, t, d) = (self.inst.n, self.inst.t, self.inst.d);
        if self.head.is_linear() && self.g_linear.as_ref().is_none_or(|(v0, _)| v0 != v) {
            let g = self
                .inst
                .x
                .chunks_exact(d)
                .map(|x| crate::linalg::dot(x, v))
                .collect();
            self.g_linear = Some((v.to_vec(), g));
        }
        let ctx = kernel::Context {
            inst: self.inst,
            head: &self.head,
            loss: self.loss,
            v,
            u: &self.u,
            need_xbar,
            g_linear: self.g_linear.as_ref().map(|(_, g)| g.as_slice()),
        };
        if !self.parallel {
            let mut outs = Vec::with_capacity(n);
            crate::linalg::clear_upper_simd_state();
            kernel::sequences(
                &ctx,
                0,
                &mut self.scratch,
                &mut self.b,
                &mut self.xbar,
                &mut outs,
            );
            return outs;
        }
        let chunk = n.div_ceil(4 * rayon::current_num_threads()).max(1);
        let run = |(c, (bs, xs)): (usize, (&mut [f64], &mut [f64]))| {
            crate::linalg::clear_upper_simd_state();
            let mut scratch = kernel::Scratch::new(t, d);
            let mut outs = Vec::with_capacity(bs.len() / d);
            kernel::sequences(&ctx, c * chunk, &mut scratch, bs, xs, &mut outs);
            outs
        };
        let pieces: Vec<Vec<kernel::SeqOut>> = self
            .b
            .par_chunks_mut(chunk * d)
            .zip(self.xbar.par_chunks_mut(chunk * d))
            .enumerate()
            .map(run)
            .collect();
        pieces.into_iter().flatten().collect()
    }

    /// `∇_v L = −(1/n) Σ_i (−ℓ'(y_i f_i)) y_i x̄_i` (linear and λ heads: `∂f/∂v = x̄`).
    fn head_gradient(&self, outs: &[kernel::SeqOut]) -> Scaled {
        let d = self.inst.d;
        let mut g = Mat::zeros(d, 1);
        if matches!(self.head, Head::Relu { .. }) {
            return Scaled {
                mat: g,
                log_scale: 0.0,
            };
        }
        let m = outs
            .iter()
            .map(|o| o.log_neg_derivative)
            .fold(f64::NEG_INFINITY, f64::max);
        for (i, (o, xb)) in outs.iter().zip(self.xbar.chunks_exact(d)).enumerate() {
            let c = -self.inst.y[i] * (o.log_neg_derivative - m).exp();
            crate::linalg::axpy(c, xb, g.col_as_slice_mut(0));
        }
        Scaled {
            mat: g,
            log_scale: m - (outs.len() as f64).ln(),
        }
    }
}

/// `log((1/n) Σ e^{x_i})`, or `None` when any term is undefined.
fn log_mean(terms: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = terms.collect::<Option<Vec<f64>>>()?;
    let n = xs.len() as f64;
    Some(log_sum_exp(&xs) - n.ln())
}

/// `log Σ e^{x_k}` (−∞ for an empty sum).
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
