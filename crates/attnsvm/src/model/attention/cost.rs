//! Analytic cost of one attention layer on one sequence (spec `primal-dual.md` §2.1–§2.2, §5.11),
//! in multiply-accumulates (MACs), with `N` tokens, width `D = H·d` and `d_v = d`:
//!
//! ```text
//! projections   4ND²  (Q, K, V, O);  pooling X before the K/V projections: 2ND² + 2ND²ρ
//! softmax core  2N²D             exps H·N²     attention memory H·N²
//! SH core       2N²D·ρ           exps ρ·H·N²   attention memory ρ·H·N²
//!               ρ = (1/H) Σ_s 1/r_s (1D),  (1/H) Σ_s 1/r_s² (2D)
//! BN            + 7ND element operations (3ND statistics, 4ND normalization), no MACs
//! layer ratio   R(N, D) = (2D + Nρ)/(2D + N);  block with a 4× MLP (6D + Nρ)/(6D + N)
//! ```
//!
//! Derived here (spec tag \[D\], not in the spec): linear attention `2ND(d + 1)` core MACs and `D(d + 1)`
//! stored summary elements (`N_s = N/r_s` keys per head under SH: `ND(d + 1)(1 + ρ)`); top-k
//! `N²D + NkD` core MACs (all logits, `k` values per query), `H·N·k` probabilities; a local window
//! of half-width `w` `2PD` core MACs and `H·P` probabilities with `P = Σ_i |{j : |i−j| ≤ w}|`.
//! The counts of [`super::attention`] agree with these exactly when `N` is divisible by every
//! ratio (tested).

use serde::Serialize;

use super::{AttentionConfig, Kernel, Pooling, Sparsity};
use crate::error::{invalid, Result};

/// The cost of one attention layer on one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    /// The four projections.
    pub projection_macs: f64,
    /// Scores and weighted values (or the linear-attention summaries).
    pub core_macs: f64,
    /// Softmax exponentials.
    pub exps: f64,
    /// Stored attention-probability elements (linear attention: its summaries).
    pub attention_memory: f64,
    /// BN's statistics and normalization (element operations, `7ND`; zero without BN).
    pub normalization_ops: f64,
}

impl Cost {
    /// Projections + core: the basis of the spec's layer ratio `R(N, D)`.
    pub fn layer_macs(&self) -> f64 {
        self.projection_macs + self.core_macs
    }

    /// The layer plus a 4× MLP (`8ND²`): the basis of `R_block`.
    pub fn block_macs(&self, n: usize, d_model: usize) -> f64 {
        self.layer_macs() + 8.0 * n as f64 * (d_model as f64).powi(2)
    }
}

/// `ρ = (1/H) Σ_s 1/r_s` for 1D pooling, `(1/H) Σ_s 1/r_s²` for 2D; `1` without SH.
pub fn rho(cfg: &AttentionConfig) -> f64 {
    match &cfg.scaled_heads {
        None => 1.0,
        Some(sh) => {
            let p = match sh.pooling {
                Pooling::OneD => 1,
                Pooling::TwoD { .. } => 2,
            };
            sh.ratios.iter().map(|&r| (r as f64).powi(-p)).sum::<f64>() / sh.ratios.len() as f64
        }
    }
}

/// `R(N, D) = (2D + Nρ)/(2D + N)`: SH layer MACs over softmax layer MACs.
pub fn layer_flop_ratio(n: usize, d_model: usize, rho: f64) -> f64 {
    let (n, d) = (n as f64, d_model as f64);
    (2.0 * d + n * rho) / (2.0 * d + n)
}

/// `R_block = (6D + Nρ)/(6D + N)`: the same with a 4× MLP in the block.
pub fn block_flop_ratio(n: usize, d_model: usize, rho: f64) -> f64 {
    let (n, d) = (n as f64, d_model as f64);
    (6.0 * d + n * rho) / (6.0 * d + n)
}

/// `(D(1 + ρ) + Nρ)/(2D + N)`: the layer ratio when `X` is pooled before the K/V projections.
pub fn layer_flop_ratio_pool_before(n: usize, d_model: usize, rho: f64) -> f64 {
    let (n, d) = (n as f64, d_model as f64);
    (d * (1.0 + rho) + n * rho) / (2.0 * d + n)
}

/// `(cND + ρHN²)/(cND + HN²)`: activation memory with `c` stored `N×D` activations.
pub fn activation_memory_ratio(n: usize, d_model: usize, heads: usize, rho: f64, c: f64) -> f64 {
    let (n, d, h) = (n as f64, d_model as f64, heads as f64);
    (c * n * d + rho * h * n * n) / (c * n * d + h * n * n)
}

/// `P = Σ_i |{j : |i − j| ≤ w}|`, the query–key pairs of a local window.
pub fn window_pairs(n: usize, w: usize) -> f64 {
    (0..n)
        .map(|i| (i + w).min(n - 1) + 1 - i.saturating_sub(w))
        .sum::<usize>() as f64
}

/// The cost of `cfg` on `n` tokens of width `d_model`; `pool_before_projection` pools `X` before
/// the K/V projections (SH only; the output is the same, see the module docs of `attention`).
pub fn attention_cost(
    cfg: &AttentionConfig,
    n: usize,
    d_model: usize,
    pool_before_projection: bool,
) -> Result<Cost> {
    cfg.validate(n)?;
    if n == 0 || d_model == 0 || !d_model.is_multiple_of(cfg.heads) {
        return Err(invalid!(
            "cost: N = {n} and D = {d_model} must be positive, D a multiple of {} heads",
            cfg.heads
        ));
    }
    let rho = rho(cfg);
    let (nf, d, h) = (n as f64, d_model as f64, cfg.heads as f64);
    let dh = d / h;
    let projection_macs = if pool_before_projection && cfg.scaled_heads.is_some() {
        2.0 * nf * d * d * (1.0 + rho)
    } else {
        4.0 * nf * d * d
    };
    let (core_macs, exps, attention_memory) = match (cfg.kernel, cfg.sparsity) {
        (Kernel::Softmax, Sparsity::Dense) => (
            2.0 * nf * nf * d * rho,
            h * nf * nf * rho,
            h * nf * nf * rho,
        ),
        (Kernel::EluPlusOne, Sparsity::Dense) => {
            (nf * d * (dh + 1.0) * (1.0 + rho), 0.0, d * (dh + 1.0))
        }
        (kernel, Sparsity::TopK(k)) => {
            let k = k.min(n) as f64;
            let e = if kernel == Kernel::Softmax {
                h * nf * k
            } else {
                0.0
            };
            (nf * nf * d + nf * k * d, e, h * nf * k)
        }
        (kernel, Sparsity::Window(w)) => {
            let p = window_pairs(n, w);
            let e = if kernel == Kernel::Softmax {
                h * p
            } else {
                0.0
            };
            (2.0 * p * d, e, h * p)
        }
    };
    Ok(Cost {
        projection_macs,
        core_macs,
        exps,
        attention_memory,
        normalization_ops: if cfg.batch_norm.is_some() {
            7.0 * nf * d
        } else {
            0.0
        },
    })
}
