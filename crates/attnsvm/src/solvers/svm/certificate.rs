//! Certificates. Optimality: KKT residuals and a duality gap for any primal-dual pair
//! (spec §2.8). Frobenius: `max_{λ} Σλ_k r_k − ½‖Σλ_k A_k‖²` bounds `½‖W^mm‖²` from below, so
//! `‖W^mm‖_F ≥ √(2D(λ))`. Nuclear: λ scaled to `‖Σλ_k A_k‖_op ≤ 1` is dual feasible and
//! `‖W^mm_⋆‖_⋆ ≥ Σλ_k r_k`. Infeasibility: Farkas, `λ ≥ 0, Σλ = 1, Σλ_k A_k = 0`, which makes
//! `⟨W, Σλ_k A_k⟩ = 0 < Σλ_k·1` for every W, so no W meets all margins.

use faer::Mat;

use super::problem::{AttSvmProblem, Norm};
use crate::linalg::{clear_upper_simd_state, mat_from_row_major};

/// KKT residuals and duality gap of a primal-dual pair; all relative, all `≥ 0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Kkt {
    /// Largest constraint violation `max(r_k − ⟨W,A_k⟩, 0)` (and `|·|` for equalities), relative to `max(1, max|r_k|)`.
    pub primal_residual: f64,
    /// Dual infeasibility: a negative inequality multiplier, or (nuclear) `‖Σλ_k A_k‖_op − 1`.
    pub dual_residual: f64,
    /// Stationarity: `‖W − Σλ_k A_k‖_F / max(1, ‖W‖_F)` (Frobenius) or
    /// `|⟨Σλ_k A_k, W⟩ − ‖W‖_⋆| / max(1, ‖W‖_⋆)` (nuclear).
    pub stationarity: f64,
    /// Complementary slackness `Σ|λ_k|·|⟨W,A_k⟩ − r_k|`, relative to `max(1, Σ|λ_k r_k|)`.
    pub complementarity: f64,
    /// `(‖W_feas‖ − lower bound)/‖W_feas‖`, with `W_feas` the returned W scaled to feasibility.
    pub duality_gap: f64,
}

impl Kkt {
    /// The largest of the five numbers.
    pub fn max(&self) -> f64 {
        [
            self.primal_residual,
            self.dual_residual,
            self.stationarity,
            self.complementarity,
            self.duality_gap,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }
}

/// Nuclear norm (sum of singular values).
pub fn nuclear_norm(w: &Mat<f64>) -> f64 {
    let s = w
        .singular_values()
        .map(|s| s.iter().sum())
        .unwrap_or(f64::NAN);
    clear_upper_simd_state();
    s
}

/// Operator norm (largest singular value).
pub fn op_norm(w: &Mat<f64>) -> f64 {
    let s = w
        .singular_values()
        .map(|s| s.first().copied().unwrap_or(0.0))
        .unwrap_or(f64::NAN);
    clear_upper_simd_state();
    s
}

/// Certify the pair (`w` row-major d×d, `duals`), given the margins of `w`.
pub fn certify(p: &AttSvmProblem, norm: Norm, w: &[f64], duals: &[f64], margins: &[f64]) -> Kkt {
    let cons = p.constraints();
    let rscale = cons.iter().fold(1.0f64, |a, c| a.max(c.rhs.abs()));
    let mut primal = 0.0f64;
    let mut dual_neg = 0.0f64;
    let mut compl = 0.0;
    let mut lr = 0.0;
    let mut lr_abs = 0.0;
    let mut lmax = 0.0f64;
    // Scale that makes W feasible for ≥-constraints with positive right-hand sides.
    let mut feas_scale = 1.0f64;
    for (k, c) in cons.iter().enumerate() {
        let (m, l) = (margins[k], duals[k]);
        let viol = if c.equality {
            (m - c.rhs).abs()
        } else {
            (c.rhs - m).max(0.0)
        };
        primal = primal.max(viol);
        if !c.equality {
            dual_neg = dual_neg.max(-l);
            if c.rhs > 0.0 && m < c.rhs {
                feas_scale = feas_scale.max(if m > 0.0 { c.rhs / m } else { f64::INFINITY });
            }
        }
        compl += l.abs() * (m - c.rhs).abs();
        lr += l * c.rhs;
        lr_abs += (l * c.rhs).abs();
        lmax = lmax.max(l.abs());
    }
    let g = p.combine(duals);
    let d = p.d;
    let wm = mat_from_row_major(d, d, w);
    let gm = mat_from_row_major(d, d, &g);
    let wnorm_f = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let has_eq = cons.iter().any(|c| c.equality || c.rhs <= 0.0);
    let (stationarity, dual_residual, gap) = match norm {
        Norm::Frobenius => {
            let diff = w
                .iter()
                .zip(&g)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            let gg = g.iter().map(|v| v * v).sum::<f64>();
            let lower = (2.0 * lr - gg).max(0.0).sqrt();
            let upper = wnorm_f * if has_eq { 1.0 } else { feas_scale };
            let gap = if upper > 0.0 {
                ((upper - lower) / upper).max(0.0)
            } else {
                0.0
            };
            (diff / wnorm_f.max(1.0), dual_neg, gap)
        }
        Norm::Nuclear => {
            let nuc = nuclear_norm(&wm);
            let op = op_norm(&gm);
            let align = crate::linalg::fro_dot(&gm, &wm);
            let lower = if op > 0.0 { lr / op.max(1.0) } else { 0.0 };
            let upper = nuc * if has_eq { 1.0 } else { feas_scale };
            let gap = if upper > 0.0 {
                ((upper - lower) / upper).max(0.0)
            } else {
                0.0
            };
            (
                (align - nuc).abs() / nuc.max(1.0),
                dual_neg.max(op - 1.0),
                gap,
            )
        }
    };
    let _ = lmax;
    Kkt {
        primal_residual: primal / rscale,
        dual_residual,
        stationarity,
        complementarity: compl / lr_abs.max(1.0),
        duality_gap: gap,
    }
}

/// A Farkas certificate of infeasibility, checked: `‖Σλ_k A_k‖_F` small while `Σλ_k r_k > 0`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Farkas {
    /// `λ` (one per constraint), normalized to `Σ|λ_k| = 1`; `≥ 0` on inequalities, signed on
    /// equalities (for the standard Att-SVM this is `λ ≥ 0, Σλ = 1`). A certificate needs
    /// `Σλ_k r_k > 0` (reported as `rhs_value`) and `Σλ_k A_k = 0`.
    pub multipliers: Vec<f64>,
    /// `‖Σλ_k A_k‖_F / max_k ‖A_k‖_F`: zero for an exact certificate.
    pub residual: f64,
    /// `Σλ_k r_k`, which must be positive (1 for the standard Att-SVM).
    pub rhs_value: f64,
    /// Constraints with nonzero weight.
    pub constraints: Vec<usize>,
    /// Samples (and their sequences) involved.
    pub samples: Vec<usize>,
    pub sequences: Vec<usize>,
}

/// Check the Farkas certificate `λ` (normalized here).
pub fn farkas(p: &AttSvmProblem, lambda: &[f64]) -> Farkas {
    // Inequality multipliers are clipped at zero; equality multipliers keep their sign.
    let cons = p.constraints();
    let signed: Vec<f64> = lambda
        .iter()
        .zip(cons)
        .map(|(&l, c)| if c.equality { l } else { l.max(0.0) })
        .collect();
    let total: f64 = signed.iter().map(|l| l.abs()).sum();
    let multipliers: Vec<f64> = signed
        .iter()
        .map(|l| if total > 0.0 { l / total } else { 0.0 })
        .collect();
    let g = p.combine(&multipliers);
    let amax = (0..p.n_constraints())
        .map(|k| p.norm_sq(k))
        .fold(0.0f64, f64::max)
        .sqrt();
    let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let residual = if total > 0.0 {
        if amax > 0.0 {
            gn / amax
        } else {
            0.0
        }
    } else {
        f64::INFINITY
    };
    let constraints: Vec<usize> = (0..multipliers.len())
        .filter(|&k| multipliers[k] != 0.0)
        .collect();
    let rhs_value = multipliers.iter().zip(cons).map(|(l, c)| l * c.rhs).sum();
    let mut samples: Vec<usize> = constraints
        .iter()
        .map(|&k| p.constraints()[k].sample as usize)
        .collect();
    samples.dedup();
    let mut sequences: Vec<usize> = samples.iter().map(|&s| p.samples()[s].sequence).collect();
    sequences.sort_unstable();
    sequences.dedup();
    Farkas {
        multipliers,
        residual,
        rhs_value,
        constraints,
        samples,
        sequences,
    }
}
