//! The data of a token-group lasso and the quantities every engine needs: predictions, the
//! smooth part and its gradient, the group norms, `β_max`, and the primal-dual certificate.

use super::loss::ConvexLoss;
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::{axpy, dot};
use rayon::prelude::*;

/// Power iterations for the first Lipschitz guess: each costs two passes over `A`, and the
/// backtracking repairs an under-estimate, so a rough value is enough.
const POWER_ITERATIONS: usize = 8;

/// Samples per parallel task in `A·Z` and `Aᵀg`.
const CHUNK: usize = 64;

/// The printed loss weight of program (9) (spec B2); the corrected program uses `1`.
pub const PRINTED_LOSS_WEIGHT: f64 = 0.5;

/// `min_Z  w Σ_i Σ_l L(⟨X_i, Z_l⟩, y_il) + β Σ_l Σ_k ‖z_{l,k}‖₂` over `Z_1..Z_c ∈ R^{n×d}`.
///
/// Sizes in the paper's letters: `N` samples, `n` tokens, `d` features, `c` outputs (`c = 1` is
/// program (9)). `Z` is stored as `c` blocks of `n·d` values, each row-major (token, feature), so
/// the group `(l, k)` is the slice `[(l·n + k)·d, (l·n + k + 1)·d)`.
#[derive(Debug)]
pub struct GlassoProblem<'a> {
    pub n_samples: usize,
    pub n_tokens: usize,
    pub d: usize,
    pub outputs: usize,
    /// Tokens, `N·n·d` values, row-major (sample, token, feature): row `i` of `A = [vec X_i]ᵢ`.
    x: &'a [f64],
    /// Targets `N×c`, row-major.
    y: Vec<f64>,
    loss: Box<dyn ConvexLoss>,
    /// `w`: `1` (corrected, default) or [`PRINTED_LOSS_WEIGHT`].
    loss_weight: f64,
}

/// The certificate of a point `Z` (see the module docs for the derivation).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Certificate {
    /// `P(Z)`.
    pub primal: f64,
    /// `D(θ)` at the scaled dual point (`NaN` without a conjugate).
    pub dual: f64,
    /// `P − D ≥ 0`.
    pub gap: f64,
    /// `gap / max(|P|, |D|)`.
    pub rel_gap: f64,
    /// The scale `s = min(1, β / max_{l,k} ‖∇_{l,k} f‖)` that makes `θ = −s·g` dual feasible.
    pub dual_scale: f64,
    /// `max ‖∇_{l,k} f + β z_{l,k}/‖z_{l,k}‖‖` over active groups.
    pub kkt_active: f64,
    /// `max (‖∇_{l,k} f‖ − β)₊` over zero groups.
    pub kkt_inactive: f64,
}

impl<'a> GlassoProblem<'a> {
    /// A program with `c` outputs: `x` holds `N·n·d` token values, `y` the `N×c` targets
    /// (row-major). Targets are any reals the loss accepts (the squared loss takes any real).
    pub fn new(
        (n_samples, n_tokens, d): (usize, usize, usize),
        x: &'a [f64],
        y: Vec<f64>,
        outputs: usize,
        loss: impl ConvexLoss + 'static,
    ) -> Result<Self> {
        if n_samples == 0 || n_tokens == 0 || d == 0 || outputs == 0 {
            return Err(invalid!(
                "glasso: empty program (N, n, d, c) = ({n_samples}, {n_tokens}, {d}, {outputs}); all must be ≥ 1"
            ));
        }
        if x.len() != n_samples * n_tokens * d {
            return Err(invalid!(
                "glasso: X has {} values, expected N·n·d = {}",
                x.len(),
                n_samples * n_tokens * d
            ));
        }
        if y.len() != n_samples * outputs {
            return Err(invalid!(
                "glasso: y has {} values, expected N·c = {}",
                y.len(),
                n_samples * outputs
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(invalid!("glasso: X value {i} is not finite"));
        }
        for (i, &yi) in y.iter().enumerate() {
            if !yi.is_finite() {
                return Err(invalid!("glasso: target {i} is not finite"));
            }
            loss.check_label(yi)
                .map_err(|why| invalid!("glasso: target {i}: {why}"))?;
        }
        Ok(GlassoProblem {
            n_samples,
            n_tokens,
            d,
            outputs,
            x,
            y,
            loss: Box::new(loss),
            loss_weight: 1.0,
        })
    }

    /// Program (9) on an instance: `N = inst.n`, `n = inst.t`, targets `inst.y`. Only shapes,
    /// finiteness and the loss's labels are checked, so an `Instance` built field by field with
    /// real-valued `y` is accepted for the squared loss (`Instance::new` itself demands ±1).
    pub fn from_instance(inst: &'a Instance, loss: impl ConvexLoss + 'static) -> Result<Self> {
        Self::new((inst.n, inst.t, inst.d), &inst.x, inst.y.clone(), 1, loss)
    }

    /// The tokens, `N·n·d` values, row-major (sample, token, feature).
    pub fn tokens(&self) -> &'a [f64] {
        self.x
    }

    /// Set the loss weight `w > 0` (`1`: corrected; [`PRINTED_LOSS_WEIGHT`]: as printed in (9)).
    pub fn with_loss_weight(mut self, w: f64) -> Result<Self> {
        if !(w.is_finite() && w > 0.0) {
            return Err(invalid!(
                "glasso: loss weight {w} must be positive and finite"
            ));
        }
        self.loss_weight = w;
        Ok(self)
    }

    pub fn loss_weight(&self) -> f64 {
        self.loss_weight
    }

    pub fn loss(&self) -> &dyn ConvexLoss {
        self.loss.as_ref()
    }

    /// Targets `N×c`, row-major.
    pub fn targets(&self) -> &[f64] {
        &self.y
    }

    /// `n·d`, the length of one output block of `Z`.
    pub fn block(&self) -> usize {
        self.n_tokens * self.d
    }

    /// The number of variables `c·n·d`.
    pub fn n_vars(&self) -> usize {
        self.outputs * self.block()
    }

    /// Predictions `ŷ_il = ⟨X_i, Z_l⟩`, `N×c` row-major.
    pub fn predict(&self, z: &[f64]) -> Vec<f64> {
        let (m, c) = (self.block(), self.outputs);
        assert_eq!(z.len(), c * m);
        let mut p = vec![0.0; self.n_samples * c];
        let rows = |(i0, chunk): (usize, &mut [f64])| {
            for (di, pi) in chunk.chunks_exact_mut(c).enumerate() {
                let i = i0 * CHUNK + di;
                let xi = &self.x[i * m..(i + 1) * m];
                for (l, pil) in pi.iter_mut().enumerate() {
                    *pil = dot(xi, &z[l * m..(l + 1) * m]);
                }
            }
        };
        if self.parallel() {
            p.par_chunks_mut(CHUNK * c).enumerate().for_each(rows);
        } else {
            p.chunks_mut(CHUNK * c).enumerate().for_each(rows);
        }
        p
    }

    /// The smooth part `f = w Σ L(ŷ_il, y_il)` at predictions `p`.
    pub fn smooth_value(&self, p: &[f64]) -> f64 {
        let w = self.loss_weight;
        w * p
            .iter()
            .zip(&self.y)
            .map(|(&pi, &yi)| self.loss.value(pi, yi))
            .sum::<f64>()
    }

    /// `g_il = w ∂L(ŷ_il, y_il)`: the derivative of `f` in the predictions.
    pub fn dloss(&self, p: &[f64]) -> Vec<f64> {
        let w = self.loss_weight;
        p.iter()
            .zip(&self.y)
            .map(|(&pi, &yi)| w * self.loss.derivative(pi, yi))
            .collect()
    }

    /// `∇f = Aᵀ g`, laid out like `Z`.
    pub fn gradient(&self, g: &[f64]) -> Vec<f64> {
        let (m, c) = (self.block(), self.outputs);
        assert_eq!(g.len(), self.n_samples * c);
        let accumulate = |mut grad: Vec<f64>, (i0, chunk): (usize, &[f64])| {
            for (di, gi) in chunk.chunks_exact(c).enumerate() {
                let i = i0 * CHUNK + di;
                let xi = &self.x[i * m..(i + 1) * m];
                for (l, &gil) in gi.iter().enumerate() {
                    if gil != 0.0 {
                        axpy(gil, xi, &mut grad[l * m..(l + 1) * m]);
                    }
                }
            }
            grad
        };
        if self.parallel() {
            g.par_chunks(CHUNK * c)
                .enumerate()
                .fold(|| vec![0.0; c * m], accumulate)
                .reduce(
                    || vec![0.0; c * m],
                    |mut a, b| {
                        axpy(1.0, &b, &mut a);
                        a
                    },
                )
        } else {
            g.chunks(CHUNK * c)
                .enumerate()
                .fold(vec![0.0; c * m], accumulate)
        }
    }

    /// `(A·Z, Aᵀ h)` in one pass over `A`, with `h_il = coef(i·c + l, ŷ_il)` computed from each
    /// prediction as soon as it is known, so every row `vec X_i` is read from memory once for both
    /// products (the products are memory-bound at the sizes where time matters). With
    /// `coef = |_, p| p` this is `AᵀA·Z`; FISTA passes the loss derivative at the next
    /// extrapolated point. The sums are those of [`Self::predict`] and [`Self::gradient`].
    pub fn predict_and_gradient(
        &self,
        z: &[f64],
        coef: impl Fn(usize, f64) -> f64 + Sync,
    ) -> (Vec<f64>, Vec<f64>) {
        let (m, c) = (self.block(), self.outputs);
        assert_eq!(z.len(), c * m);
        let mut p = vec![0.0; self.n_samples * c];
        let accumulate = |mut grad: Vec<f64>, (i0, chunk): (usize, &mut [f64])| {
            for (di, pi) in chunk.chunks_exact_mut(c).enumerate() {
                let i = i0 * CHUNK + di;
                let xi = &self.x[i * m..(i + 1) * m];
                for (l, pil) in pi.iter_mut().enumerate() {
                    *pil = dot(xi, &z[l * m..(l + 1) * m]);
                    let h = coef(i * c + l, *pil);
                    if h != 0.0 {
                        axpy(h, xi, &mut grad[l * m..(l + 1) * m]);
                    }
                }
            }
            grad
        };
        let grad = if self.parallel() {
            p.par_chunks_mut(CHUNK * c)
                .enumerate()
                .fold(|| vec![0.0; c * m], accumulate)
                .reduce(
                    || vec![0.0; c * m],
                    |mut a, b| {
                        axpy(1.0, &b, &mut a);
                        a
                    },
                )
        } else {
            p.chunks_mut(CHUNK * c)
                .enumerate()
                .fold(vec![0.0; c * m], accumulate)
        };
        (p, grad)
    }

    /// `w ∂L(q, y_j)` for the flat index `j = i·c + l` of a prediction.
    pub(crate) fn dloss_at(&self, j: usize, q: f64) -> f64 {
        self.loss_weight * self.loss.derivative(q, self.y[j])
    }

    /// Rayon pays off once a pass over `A` is large (here: more than ~2M values). The parallel
    /// `Aᵀg` sums per-task partial gradients in an order rayon chooses, so large solves agree
    /// between runs to rounding, not bit for bit; small ones are sequential and deterministic.
    fn parallel(&self) -> bool {
        self.x.len() > 1 << 21 && rayon::current_num_threads() > 1
    }

    /// `‖z_{l,k}‖₂` for every group, in the order `(l, k)`.
    pub fn group_norms(&self, z: &[f64]) -> Vec<f64> {
        z.chunks_exact(self.d).map(|r| dot(r, r).sqrt()).collect()
    }

    /// `Ω(Z) = Σ_{l,k} ‖z_{l,k}‖₂`.
    pub fn penalty(&self, z: &[f64]) -> f64 {
        self.group_norms(z).iter().sum()
    }

    /// `P(Z) = f(Z) + β Ω(Z)`.
    pub fn objective(&self, z: &[f64], beta: f64) -> f64 {
        self.smooth_value(&self.predict(z)) + beta * self.penalty(z)
    }

    /// `β_max = max_{l,k} ‖(∇f(0))_{l,k}‖₂`: `Z = 0` is optimal iff `β ≥ β_max`.
    pub fn beta_max(&self) -> f64 {
        let g = self.dloss(&vec![0.0; self.n_samples * self.outputs]);
        self.group_norms(&self.gradient(&g))
            .into_iter()
            .fold(0.0, f64::max)
    }

    /// An upper bound on `w·sup L''` times a power-iteration estimate of `‖A‖₂²`: the first
    /// Lipschitz guess (a slight under-estimate is fixed by backtracking).
    pub(crate) fn lipschitz_guess(&self) -> f64 {
        let m = self.block();
        // The same start in every output block: the Rayleigh quotient of I_c ⊗ AᵀA is then AᵀA's.
        let mut v: Vec<f64> = (0..self.n_vars())
            .map(|j| 1.0 + 0.1 * (((j % m) * 7919) % 13) as f64)
            .collect();
        let mut est = 0.0;
        for _ in 0..POWER_ITERATIONS {
            let nv = dot(&v, &v).sqrt();
            if nv == 0.0 {
                break;
            }
            v.iter_mut().for_each(|a| *a /= nv);
            let (_, w) = self.predict_and_gradient(&v, |_, p| p);
            est = dot(&w, &v);
            v = w;
        }
        let curv = self.loss.curvature_bound().unwrap_or(1.0);
        (self.loss_weight * curv * est).max(f64::MIN_POSITIVE)
    }

    /// The certificate at `Z` with predictions `p = A·Z` (see the module docs).
    pub fn certify(&self, z: &[f64], p: &[f64], beta: f64) -> Certificate {
        let g = self.dloss(p);
        let grad = self.gradient(&g);
        let w = self.loss_weight;
        let primal = self.smooth_value(p) + beta * self.penalty(z);
        let (mut rmax, mut kkt_active, mut kkt_inactive) = (0.0f64, 0.0f64, 0.0f64);
        for (zr, gr) in z.chunks_exact(self.d).zip(grad.chunks_exact(self.d)) {
            let (nz, ng) = (dot(zr, zr).sqrt(), dot(gr, gr).sqrt());
            rmax = rmax.max(ng);
            if nz > 0.0 {
                let res: f64 = zr
                    .iter()
                    .zip(gr)
                    .map(|(&a, &b)| (b + beta * a / nz).powi(2))
                    .sum();
                kkt_active = kkt_active.max(res.sqrt());
            } else {
                kkt_inactive = kkt_inactive.max(ng - beta);
            }
        }
        let dual_scale = if rmax > beta { beta / rmax } else { 1.0 };
        // D(θ) = −Σ φ_il*(−θ_il) with θ = −s·g and φ_il*(u) = w L*(u/w, y_il).
        let dual = g
            .iter()
            .zip(&self.y)
            .try_fold(0.0, |acc, (&gi, &yi)| {
                self.loss
                    .conjugate(dual_scale * gi / w, yi)
                    .map(|cj| acc - w * cj)
            })
            .unwrap_or(f64::NAN);
        let gap = (primal - dual).max(0.0);
        let scale = primal.abs().max(dual.abs()).max(f64::MIN_POSITIVE);
        Certificate {
            primal,
            dual,
            gap,
            rel_gap: if dual.is_nan() { f64::NAN } else { gap / scale },
            dual_scale,
            kkt_active,
            kkt_inactive: kkt_inactive.max(0.0),
        }
    }
}
