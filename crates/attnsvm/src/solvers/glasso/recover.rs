//! From a solution `Z` of the token group lasso (9) back to attention heads of the non-convex
//! model (8) (spec `rates-and-convex.md`, Paper B, B2–B3):
//!
//! ```text
//! (8)  f(X) = Σ_j (w_jᵀ X v_j)·o_j,   w_j ∈ Δ_n,  v_j ∈ R^d,  o_j ∈ R,
//!      w Σ_i L(f(X_i), y_i) + (β/2) Σ_j (‖v_j‖₂² + o_j²)
//! ```
//!
//! **Proposition 1, corrected indexing.** For every nonzero row `z_k` of `Z`, one head attends to
//! exactly that token: `w = e_k` (the support index `k`, not the head number `j` the paper prints),
//! `v = z_k/√‖z_k‖`, `o = √‖z_k‖`. Then `(e_kᵀ X_i v)·o = x_ikᵀ z_k`, so the heads reproduce every
//! prediction `⟨X_i, Z⟩`, and `(β/2)(‖v‖² + o²) = β‖z_k‖`, so the objective of (8) at the heads
//! equals the objective of (9) with loss weight `w` at `Z` ([`recover_heads`]).
//!
//! **The map back.** Heads give `Z = Σ_j o_j w_j v_jᵀ` ([`heads_to_z`]) with the same predictions and
//! `Σ_k ‖z_k‖ ≤ Σ_j |o_j|‖v_j‖ ≤ ½ Σ_j (‖v_j‖² + o_j²)`, so (9) is a lower bound of (8).
//!
//! **Carathéodory (B-T3).** Write `z_k = λ_k u_k` with `λ_k = ‖z_k‖`, `‖u_k‖ = 1`, and
//! `a_k = (x_ikᵀ u_k)_i ∈ R^N`: predictions `Σ_k λ_k a_k`, penalty `Σ_k λ_k`. While more than
//! `N + 1` rows are active, `N + 2` of the vectors `(a_k, 1) ∈ R^{N+1}` are dependent: a null vector
//! `μ` moves `λ ← λ − tμ` without changing predictions or penalty, and the largest `t` that keeps
//! `λ ≥ 0` zeroes a row ([`caratheodory`]). The result has at most `N + 1` active rows (so at most
//! that many heads) and the same objective up to rounding.

use faer::Mat;

use super::GlassoProblem;
use crate::error::{invalid, Result};
use crate::linalg::{clear_upper_simd_state, dot};

/// One head of model (8): `f_j(X) = (w_jᵀ X v_j)·o_j`.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// `w_j ∈ Δ_n`: attention over the `n` tokens.
    pub attention: Vec<f64>,
    /// `v_j ∈ R^d`: the value vector.
    pub value: Vec<f64>,
    /// `o_j`: the output scale.
    pub output: f64,
}

impl Head {
    /// The token this head attends to when its attention is one-hot (`None` otherwise).
    pub fn one_hot_token(&self) -> Option<usize> {
        let ones: Vec<usize> = (0..self.attention.len())
            .filter(|&k| self.attention[k] == 1.0)
            .collect();
        let zeros = self.attention.iter().filter(|&&a| a == 0.0).count();
        (ones.len() == 1 && zeros + 1 == self.attention.len()).then(|| ones[0])
    }
}

fn scalar_program(problem: &GlassoProblem, z: &[f64]) -> Result<()> {
    if problem.outputs != 1 {
        return Err(invalid!(
            "head recovery: program (9) has one output, this one has c = {}",
            problem.outputs
        ));
    }
    if z.len() != problem.n_vars() {
        return Err(invalid!(
            "head recovery: Z has {} values, expected n·d = {}",
            z.len(),
            problem.n_vars()
        ));
    }
    Ok(())
}

/// Proposition 1 (corrected): one head per nonzero row `k` of `Z` (in increasing `k`), attending
/// to token `k` alone, with `v = z_k/√‖z_k‖` and `o = √‖z_k‖`.
pub fn recover_heads(problem: &GlassoProblem, z: &[f64]) -> Result<Vec<Head>> {
    scalar_program(problem, z)?;
    let (n, d) = (problem.n_tokens, problem.d);
    Ok((0..n)
        .filter_map(|k| {
            let row = &z[k * d..(k + 1) * d];
            let norm = dot(row, row).sqrt();
            (norm > 0.0).then(|| {
                let scale = norm.sqrt();
                let mut attention = vec![0.0; n];
                attention[k] = 1.0;
                Head {
                    attention,
                    value: row.iter().map(|v| v / scale).collect(),
                    output: scale,
                }
            })
        })
        .collect())
}

/// `Z = Σ_j o_j w_j v_jᵀ` (n×d, row-major): the convex point of a set of heads.
pub fn heads_to_z(n: usize, d: usize, heads: &[Head]) -> Vec<f64> {
    let mut z = vec![0.0; n * d];
    for h in heads {
        for (k, &wk) in h.attention.iter().enumerate() {
            for (f, &vf) in h.value.iter().enumerate() {
                z[k * d + f] += h.output * wk * vf;
            }
        }
    }
    z
}

fn check_heads(problem: &GlassoProblem, heads: &[Head]) -> Result<()> {
    for (j, h) in heads.iter().enumerate() {
        if h.attention.len() != problem.n_tokens || h.value.len() != problem.d {
            return Err(invalid!(
                "head {j}: attention has {} entries and value {}, expected n = {} and d = {}",
                h.attention.len(),
                h.value.len(),
                problem.n_tokens,
                problem.d
            ));
        }
    }
    Ok(())
}

/// The predictions `f(X_i) = Σ_j (w_jᵀ X_i v_j)·o_j` of model (8), evaluated head by head from the
/// tokens (not through [`heads_to_z`]).
pub fn head_predictions(problem: &GlassoProblem, heads: &[Head]) -> Result<Vec<f64>> {
    scalar_program(problem, &vec![0.0; problem.n_vars()])?;
    check_heads(problem, heads)?;
    let (n, d, x) = (problem.n_tokens, problem.d, problem.tokens());
    Ok((0..problem.n_samples)
        .map(|i| {
            heads
                .iter()
                .map(|h| {
                    let mixed: f64 = (0..n)
                        .filter(|&k| h.attention[k] != 0.0)
                        .map(|k| {
                            h.attention[k] * dot(&x[(i * n + k) * d..(i * n + k + 1) * d], &h.value)
                        })
                        .sum();
                    mixed * h.output
                })
                .sum()
        })
        .collect())
}

/// The objective of model (8): `w Σ_i L(f(X_i), y_i) + (β/2) Σ_j (‖v_j‖² + o_j²)`.
pub fn nonconvex_objective(problem: &GlassoProblem, heads: &[Head], beta: f64) -> Result<f64> {
    let p = head_predictions(problem, heads)?;
    let reg: f64 = heads
        .iter()
        .map(|h| dot(&h.value, &h.value) + h.output * h.output)
        .sum();
    Ok(problem.smooth_value(&p) + 0.5 * beta * reg)
}

/// The Carathéodory reduction (B-T3): a `Z` with at most `N + 1` nonzero rows, the same
/// predictions (to rounding) and the same penalty `Σ_k ‖z_k‖` (to rounding), hence the same
/// objective; each kept row is a nonnegative multiple of the original row.
pub fn caratheodory(problem: &GlassoProblem, z: &[f64]) -> Result<Vec<f64>> {
    scalar_program(problem, z)?;
    let (nn, n, d, x) = (
        problem.n_samples,
        problem.n_tokens,
        problem.d,
        problem.tokens(),
    );
    let mut lambda: Vec<f64> = z.chunks_exact(d).map(|r| dot(r, r).sqrt()).collect();
    let units: Vec<Vec<f64>> = z
        .chunks_exact(d)
        .zip(&lambda)
        .map(|(r, &l)| {
            r.iter()
                .map(|v| if l > 0.0 { v / l } else { 0.0 })
                .collect()
        })
        .collect();
    // a_k = (x_ikᵀ u_k)_i, computed once per active row.
    let response = |k: usize| -> Vec<f64> {
        (0..nn)
            .map(|i| dot(&x[(i * n + k) * d..(i * n + k + 1) * d], &units[k]))
            .collect()
    };
    loop {
        let active: Vec<usize> = (0..n).filter(|&k| lambda[k] > 0.0).collect();
        if active.len() <= nn + 1 {
            break;
        }
        let cols = &active[..nn + 2];
        let responses: Vec<Vec<f64>> = cols.iter().map(|&k| response(k)).collect();
        let m = Mat::from_fn(
            nn + 1,
            nn + 2,
            |r, c| {
                if r < nn {
                    responses[c][r]
                } else {
                    1.0
                }
            },
        );
        let svd = m
            .svd()
            .map_err(|e| invalid!("Carathéodory reduction: SVD failed: {e:?}"))?;
        // N + 2 columns in R^{N+1}: the last right singular vector spans (part of) the null space.
        let v = svd.V();
        let mut mu: Vec<f64> = (0..nn + 2).map(|j| v[(j, nn + 1)]).collect();
        clear_upper_simd_state();
        if !mu.iter().any(|&u| u > 0.0) {
            mu.iter_mut().for_each(|u| *u = -*u);
        }
        // The largest step keeping λ ≥ 0; its argmin leaves the support exactly.
        let (jmin, t) = (0..nn + 2)
            .filter(|&j| mu[j] > 0.0)
            .map(|j| (j, lambda[cols[j]] / mu[j]))
            .fold(
                (usize::MAX, f64::INFINITY),
                |a, b| if b.1 < a.1 { b } else { a },
            );
        if jmin == usize::MAX {
            return Err(invalid!(
                "Carathéodory reduction: no descent direction (μ = 0)"
            ));
        }
        for (j, &k) in cols.iter().enumerate() {
            lambda[k] = (lambda[k] - t * mu[j]).max(0.0);
        }
        lambda[cols[jmin]] = 0.0;
    }
    Ok(units
        .iter()
        .zip(&lambda)
        .flat_map(|(u, &l)| u.iter().map(move |v| l * v))
        .collect())
}
