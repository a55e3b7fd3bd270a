//! Attention followed by a gated-ReLU layer, programs (13)–(14) of spec `rates-and-convex.md`,
//! Paper B (B2, Theorem 3), and head recovery for vector outputs (11)–(12):
//!
//! ```text
//! gates  D_ij = 1[u_1jᵀ X_i u_2j ≥ 0],   u_1j ∈ R^n, u_2j ∈ R^d fixed (not trained), j = 1..m
//! (13)   f_l(X_i) = Σ_j D_{i,g(j)} (w_jᵀ X_i v_j)·o_jl,   w_j ∈ Δ_n,
//!        w Σ_i Σ_l L(f_l(X_i), y_il) + (β/2) Σ_j (‖v_j‖₂² + ‖o_j‖₁²)
//! (14)   min_{Z_jl}  w Σ_i Σ_l L(Σ_j D_ij ⟨X_i, Z_jl⟩, y_il) + β Σ_l Σ_j Σ_k ‖z_jlk‖₂
//! ```
//!
//! **(14) is (12) on gated token copies.** Give sample `i` the `m·n` tokens `D_ij x_ik`
//! (`j`-major): then `Σ_j D_ij ⟨X_i, Z_jl⟩ = ⟨X̃_i, Z̃_l⟩` and the groups `(l, j, k)` are the token
//! groups of (12) on `X̃`. So [`Gates::lift`] builds `X̃`, and the token-group lasso — its FISTA,
//! `β_max`, duality-gap certificate and warm-started path — solves (14) unchanged. The gates are
//! computed once from `(u_1, u_2)` and are data from then on (B5.11: they cannot move during
//! training); with every gate open and `m = 1`, (14) *is* (12).
//!
//! **Recovery (Proposition 1 for vector outputs).** Every nonzero group `z_jlk` becomes one head
//! of (13) under gate `j`: attention `e_k`, value `z_jlk/√‖z_jlk‖`, output `√‖z_jlk‖·e_l`. Then
//! `‖v‖² = ‖o‖₁² = ‖z_jlk‖`, so the heads reproduce the predictions and their objective equals
//! the convex objective ([`recover_gated_heads`], [`gated_predictions`], [`gated_objective`]).
//! This is where the width condition `h ≥ m·n·c` of Theorems 2–3 comes from: one head per group.
//! [`GatedHead`]s with `gate = 0` under [`Gates::open`]`(N, 1)` are the heads of model (11).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{GlassoProblem, GlassoSolution};
use crate::error::{invalid, Result};
use crate::linalg::dot;

/// Fixed gates `D_ij ∈ {0, 1}` of `N` samples and `m` gate patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub n_samples: usize,
    pub n_gates: usize,
    /// `D_ij`, `N×m` row-major.
    pub open: Vec<bool>,
    /// The generating vectors `(u_1j, u_2j)` (`m×n` and `m×d`, row-major), if any.
    pub generators: Option<(Vec<f64>, Vec<f64>)>,
}

fn check_tokens(x: &[f64], (nn, n, d): (usize, usize, usize)) -> Result<()> {
    if nn == 0 || n == 0 || d == 0 {
        return Err(invalid!(
            "gates: empty data (N, n, d) = ({nn}, {n}, {d}); all must be ≥ 1"
        ));
    }
    if x.len() != nn * n * d {
        return Err(invalid!(
            "gates: X has {} values, expected N·n·d = {}",
            x.len(),
            nn * n * d
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(invalid!("gates: X value {i} is not finite"));
    }
    Ok(())
}

impl Gates {
    /// `m` gates, all open for every sample (`D ≡ 1`).
    pub fn open(n_samples: usize, n_gates: usize) -> Gates {
        Gates {
            n_samples,
            n_gates,
            open: vec![true; n_samples * n_gates],
            generators: None,
        }
    }

    /// `D_ij = 1[u_1jᵀ X_i u_2j ≥ 0]` from given `u_1` (`m×n`) and `u_2` (`m×d`), row-major.
    pub fn from_vectors(
        x: &[f64],
        dims: (usize, usize, usize),
        u1: Vec<f64>,
        u2: Vec<f64>,
    ) -> Result<Gates> {
        check_tokens(x, dims)?;
        let (nn, n, d) = dims;
        if u1.is_empty() || !u1.len().is_multiple_of(n) || u2.len() * n != u1.len() * d {
            return Err(invalid!(
                "gates: u1 has {} values and u2 {}, expected m·n and m·d with n = {n}, d = {d}, m ≥ 1",
                u1.len(),
                u2.len()
            ));
        }
        if u1.iter().chain(&u2).any(|v| !v.is_finite()) {
            return Err(invalid!("gates: u1 or u2 is not finite"));
        }
        let m = u1.len() / n;
        let mut open = Vec::with_capacity(nn * m);
        for i in 0..nn {
            for j in 0..m {
                let (a, b) = (&u1[j * n..(j + 1) * n], &u2[j * d..(j + 1) * d]);
                let s: f64 = (0..n)
                    .map(|k| a[k] * dot(&x[(i * n + k) * d..(i * n + k + 1) * d], b))
                    .sum();
                open.push(s >= 0.0);
            }
        }
        Ok(Gates {
            n_samples: nn,
            n_gates: m,
            open,
            generators: Some((u1, u2)),
        })
    }

    /// `m` gates from seeded standard Gaussian `u_1j`, `u_2j` (`ChaCha8`).
    pub fn sample(x: &[f64], dims: (usize, usize, usize), m: usize, seed: u64) -> Result<Gates> {
        if m == 0 {
            return Err(invalid!("gates: the number of gates must be ≥ 1"));
        }
        let (_, n, d) = dims;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |len: usize| -> Vec<f64> {
            (0..len)
                .map(|_| rng.sample::<f64, _>(StandardNormal))
                .collect()
        };
        let u1 = draw(m * n);
        let u2 = draw(m * d);
        Self::from_vectors(x, dims, u1, u2)
    }

    /// `D_ij`.
    pub fn is_open(&self, i: usize, j: usize) -> bool {
        self.open[i * self.n_gates + j]
    }

    /// The lifted tokens `X̃_i = [D_i1 X_i; …; D_im X_i]`, `N·(m·n)·d` values: program (14) is
    /// program (12) on them, with `m·n` tokens per sample.
    pub fn lift(&self, x: &[f64], dims: (usize, usize, usize)) -> Result<Vec<f64>> {
        check_tokens(x, dims)?;
        let (nn, n, d) = dims;
        if nn != self.n_samples {
            return Err(invalid!(
                "gates: built for N = {} samples, the data has {nn}",
                self.n_samples
            ));
        }
        let mut out = Vec::with_capacity(nn * self.n_gates * n * d);
        for i in 0..nn {
            let xi = &x[i * n * d..(i + 1) * n * d];
            for j in 0..self.n_gates {
                if self.is_open(i, j) {
                    out.extend_from_slice(xi);
                } else {
                    out.extend(std::iter::repeat_n(0.0, n * d));
                }
            }
        }
        Ok(out)
    }
}

/// One head of model (13) (or (11) with one open gate).
#[derive(Debug, Clone, PartialEq)]
pub struct GatedHead {
    /// The gate `j` the head sits behind.
    pub gate: usize,
    /// `w ∈ Δ_n`.
    pub attention: Vec<f64>,
    /// `v ∈ R^d`.
    pub value: Vec<f64>,
    /// `o ∈ R^c`.
    pub output: Vec<f64>,
}

impl GatedHead {
    /// The token a one-hot head attends to (the largest attention weight).
    pub fn token(&self) -> usize {
        self.attention
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (k, &w)| {
                if w > best.1 {
                    (k, w)
                } else {
                    best
                }
            })
            .0
    }
}

/// The heads Proposition 1 recovers from a solution and how well they reproduce it.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// One head per nonzero group ([`recover_gated_heads`]).
    pub heads: Vec<GatedHead>,
    /// `max_i,l |f_l(X_i) − ⟨X̃_i, Z_l⟩|`: the heads evaluated from the tokens against the
    /// solution's predictions.
    pub max_prediction_difference: f64,
    /// The non-convex objective ((8), (11) or (13)) at the heads.
    pub nonconvex_objective: f64,
    /// `|nonconvex − convex| / |convex|`.
    pub relative_objective_difference: f64,
}

/// Recover the heads of `sol` (a solution of `problem`, the program on the tokens `x` of shape
/// `dims` lifted by `gates`; [`Gates::open`]`(N, 1)` for (9)/(12)) and evaluate them.
pub fn recover(
    problem: &GlassoProblem,
    x: &[f64],
    dims: (usize, usize, usize),
    gates: &Gates,
    sol: &GlassoSolution,
) -> Result<Recovery> {
    let heads = recover_gated_heads(problem, gates, &sol.z)?;
    let pred = gated_predictions(x, dims, problem.outputs, gates, &heads)?;
    let max_prediction_difference = pred
        .iter()
        .zip(&sol.predictions)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let nonconvex_objective = gated_objective(problem, x, gates, &heads, sol.beta)?;
    Ok(Recovery {
        heads,
        max_prediction_difference,
        nonconvex_objective,
        relative_objective_difference: (nonconvex_objective - sol.objective).abs()
            / sol.objective.abs().max(1e-300),
    })
}

/// The shape `(N, n, d)` of the original tokens of a lifted problem.
fn original_dims(problem: &GlassoProblem, gates: &Gates) -> Result<(usize, usize, usize)> {
    let m = gates.n_gates;
    if gates.n_samples != problem.n_samples || !problem.n_tokens.is_multiple_of(m) {
        return Err(invalid!(
            "gated program: {} gates for N = {} do not fit a problem with N = {} and {} lifted tokens",
            m,
            gates.n_samples,
            problem.n_samples,
            problem.n_tokens
        ));
    }
    Ok((problem.n_samples, problem.n_tokens / m, problem.d))
}

/// Proposition 1 for (13)–(14): one head per nonzero group `(l, j, k)` of the lifted solution
/// `z` (ordered by `l`, then `j`, then `k`).
pub fn recover_gated_heads(
    problem: &GlassoProblem,
    gates: &Gates,
    z: &[f64],
) -> Result<Vec<GatedHead>> {
    let (_, n, d) = original_dims(problem, gates)?;
    if z.len() != problem.n_vars() {
        return Err(invalid!(
            "head recovery: Z has {} values, expected c·m·n·d = {}",
            z.len(),
            problem.n_vars()
        ));
    }
    let (c, m) = (problem.outputs, gates.n_gates);
    let mut heads = Vec::new();
    for l in 0..c {
        for j in 0..m {
            for k in 0..n {
                let at = ((l * m + j) * n + k) * d;
                let row = &z[at..at + d];
                let norm = dot(row, row).sqrt();
                if norm > 0.0 {
                    let scale = norm.sqrt();
                    let mut attention = vec![0.0; n];
                    attention[k] = 1.0;
                    let mut output = vec![0.0; c];
                    output[l] = scale;
                    heads.push(GatedHead {
                        gate: j,
                        attention,
                        value: row.iter().map(|v| v / scale).collect(),
                        output,
                    });
                }
            }
        }
    }
    Ok(heads)
}

/// The predictions of model (13), `N×c` row-major, evaluated head by head from the original
/// tokens `x` (`N·n·d` values) and the gates.
pub fn gated_predictions(
    x: &[f64],
    dims: (usize, usize, usize),
    c: usize,
    gates: &Gates,
    heads: &[GatedHead],
) -> Result<Vec<f64>> {
    check_tokens(x, dims)?;
    let (nn, n, d) = dims;
    for (h, hd) in heads.iter().enumerate() {
        if hd.gate >= gates.n_gates
            || hd.attention.len() != n
            || hd.value.len() != d
            || hd.output.len() != c
        {
            return Err(invalid!(
                "head {h}: gate {} of {}, attention {}, value {}, output {}; expected n = {n}, d = {d}, c = {c}",
                hd.gate,
                gates.n_gates,
                hd.attention.len(),
                hd.value.len(),
                hd.output.len()
            ));
        }
    }
    let mut p = vec![0.0; nn * c];
    for i in 0..nn {
        for hd in heads.iter().filter(|hd| gates.is_open(i, hd.gate)) {
            let mixed: f64 = (0..n)
                .filter(|&k| hd.attention[k] != 0.0)
                .map(|k| hd.attention[k] * dot(&x[(i * n + k) * d..(i * n + k + 1) * d], &hd.value))
                .sum();
            for (pl, ol) in p[i * c..(i + 1) * c].iter_mut().zip(&hd.output) {
                *pl += mixed * ol;
            }
        }
    }
    Ok(p)
}

/// The objective of model (13): `w Σ L(f_l(X_i), y_il) + (β/2) Σ_j (‖v_j‖² + ‖o_j‖₁²)`, with the
/// loss and weight of the lifted `problem`.
pub fn gated_objective(
    problem: &GlassoProblem,
    x: &[f64],
    gates: &Gates,
    heads: &[GatedHead],
    beta: f64,
) -> Result<f64> {
    let dims = original_dims(problem, gates)?;
    let p = gated_predictions(x, dims, problem.outputs, gates, heads)?;
    let reg: f64 = heads
        .iter()
        .map(|h| dot(&h.value, &h.value) + h.output.iter().map(|o| o.abs()).sum::<f64>().powi(2))
        .sum();
    Ok(problem.smooth_value(&p) + 0.5 * beta * reg)
}

/// `Z_jl = Σ_{heads h behind gate j} o_hl w_h v_hᵀ`, laid out like the lifted problem's `Z`
/// (`c` blocks of `m·n·d`): the convex point of a set of heads, with the same predictions and
/// `Σ ‖z_jlk‖ ≤ Σ_h ‖o_h‖₁‖v_h‖ ≤ ½ Σ_h (‖v_h‖² + ‖o_h‖₁²)`, so (14) bounds (13) from below.
pub fn gated_heads_to_z(
    (n, d, c): (usize, usize, usize),
    gates: &Gates,
    heads: &[GatedHead],
) -> Vec<f64> {
    let m = gates.n_gates;
    let mut z = vec![0.0; c * m * n * d];
    for hd in heads {
        for (l, &ol) in hd.output.iter().enumerate() {
            for (k, &wk) in hd.attention.iter().enumerate() {
                let at = ((l * m + hd.gate) * n + k) * d;
                for (zf, &vf) in z[at..at + d].iter_mut().zip(&hd.value) {
                    *zf += ol * wk * vf;
                }
            }
        }
    }
    z
}
