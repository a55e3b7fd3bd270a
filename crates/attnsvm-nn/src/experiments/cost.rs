//! The cost of the attention kinds (spec `primal-dual.md` §2.2, §4.3 item 2, §5 checks 11 and 14):
//!
//! - **analytic**: the counted MACs and attention memory of [`attnsvm::model::attention::cost`]
//!   against `N` for `D ∈ {64, 192, 384}`, with SH at `ρ = 0.5` (ratios 1, 2, 4, 4), next to the
//!   closed forms `R(N, D) = (2D + Nρ)/(2D + N)` and `R_block = (6D + Nρ)/(6D + N)`;
//! - **measured**: one attention layer of this crate (batch 2, 4 heads), forward and backward of the
//!   sum of its output, for softmax, Attention-BN, Attention-SH, BN+SH and linear attention: the
//!   median wall time over repetitions, and the peak heap bytes of one pass when the binary uses
//!   [`crate::memory::Tracking`] (the `attnsvm` CLI does).

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use serde::Serialize;

use attnsvm::experiments::Claim;
use attnsvm::model::attention::cost::{
    attention_cost, block_flop_ratio, layer_flop_ratio, rho as rho_of,
};
use attnsvm::model::attention::{AttentionConfig as Reference, BatchNorm};
use attnsvm::{Error, Result};

use crate::attention::{AttentionConfig, AttentionKind};
use crate::memory;

/// The SH ratios of the cost experiment: `ρ = (1 + 1/2 + 1/4 + 1/4)/4 = 0.5`.
pub const RATIOS: [usize; 4] = [1, 2, 4, 4];
/// The variants measured.
pub const KINDS: [&str; 5] = ["softmax", "bn", "sh", "bn+sh", "linear"];

/// One point of the analytic curves.
#[derive(Debug, Clone, Serialize)]
pub struct Analytic {
    pub n: usize,
    pub d: usize,
    /// SH layer MACs / softmax layer MACs, counted.
    pub layer_ratio: f64,
    /// `(2D + Nρ)/(2D + N)`.
    pub layer_formula: f64,
    /// With a 4× MLP, counted.
    pub block_ratio: f64,
    pub block_formula: f64,
    /// Stored attention probabilities, SH over softmax.
    pub memory_ratio: f64,
    /// BN's layer operations (MACs + its `7ND`) over softmax's.
    pub bn_ratio: f64,
}

/// One measured pass.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub kind: String,
    pub n: usize,
    pub d: usize,
    /// Median milliseconds of forward + backward.
    pub ms: f64,
    /// Peak heap bytes of one forward + backward above the bytes live before it.
    pub peak_bytes: Option<usize>,
    /// Counted layer MACs of one sequence.
    pub layer_macs: f64,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub rho: f64,
    pub analytic: Vec<Analytic>,
    /// Against `N` at the fixed width, then against `D` at the fixed length.
    pub measured: Vec<Measured>,
    pub width: usize,
    pub length: usize,
    pub batch: usize,
}

fn reference(kind: &str, heads: usize) -> Reference {
    let base = if kind == "linear" {
        Reference::linear(heads)
    } else {
        Reference::softmax(heads)
    };
    let base = if kind.contains("bn") {
        base.with_batch_norm(BatchNorm::default())
    } else {
        base
    };
    if kind.contains("sh") {
        base.with_ratios(RATIOS.to_vec())
    } else {
        base
    }
}

/// Median milliseconds and peak bytes of forward + backward of `kind` on `[batch, n, d]`.
fn measure(kind: &str, batch: usize, n: usize, d: usize, reps: usize) -> (f64, Option<usize>) {
    let device = crate::cpu();
    let attention = crate::with_seed(&device, 0, || {
        let a = AttentionConfig::new(
            d,
            4,
            if kind == "linear" {
                AttentionKind::Linear
            } else {
                AttentionKind::Softmax
            },
        )
        .with_batch_norm(kind.contains("bn"))
        .with_ratios(if kind.contains("sh") {
            RATIOS.to_vec()
        } else {
            Vec::new()
        })
        .init(&device);
        let x = Tensor::<3>::random([batch, n, d], Distribution::Normal(0.0, 1.0), &device);
        (a, x)
    });
    let (attention, x) = attention;
    let pass = || {
        let out = attention.forward(x.clone().require_grad(), None);
        drop(out.sum().backward());
    };
    pass(); // warm-up: lazy parameters, thread pool
    let ((), peak) = memory::measure(pass);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], peak)
}

/// Run the analytic curves and the measurements (quick: small `N` and `D`, one repetition).
/// `progress(done, total)` after each measurement; `false` stops with [`Error::Interrupted`].
pub fn cost(quick: bool, progress: &dyn Fn(usize, usize) -> bool) -> Result<Cost> {
    let sh = Reference::softmax(4).with_ratios(RATIOS.to_vec());
    let rho = rho_of(&sh);
    let mut analytic = Vec::new();
    for d in [64, 192, 384] {
        for n in (4..=12).map(|e| 1usize << e) {
            let soft = attention_cost(&Reference::softmax(4), n, d, false)?;
            let pooled = attention_cost(&sh, n, d, false)?;
            let bn = attention_cost(&reference("bn", 4), n, d, false)?;
            analytic.push(Analytic {
                n,
                d,
                layer_ratio: pooled.layer_macs() / soft.layer_macs(),
                layer_formula: layer_flop_ratio(n, d, rho),
                block_ratio: pooled.block_macs(n, d) / soft.block_macs(n, d),
                block_formula: block_flop_ratio(n, d, rho),
                memory_ratio: pooled.attention_memory / soft.attention_memory,
                bn_ratio: (bn.layer_macs() + bn.normalization_ops) / soft.layer_macs(),
            });
        }
    }
    let (width, length, batch, reps) = if quick {
        (32, 64, 2, 1)
    } else {
        (64, 256, 2, 5)
    };
    let lengths: Vec<usize> = if quick {
        vec![32, 64]
    } else {
        vec![64, 128, 256, 512, 1024]
    };
    let widths: Vec<usize> = if quick {
        vec![16, 32]
    } else {
        vec![32, 64, 128, 192]
    };
    let points: Vec<(usize, usize)> = lengths
        .iter()
        .map(|&n| (n, width))
        .chain(
            widths
                .iter()
                .filter(|&&d| d != width || !lengths.contains(&length))
                .map(|&d| (length, d)),
        )
        .collect();
    let total = points.len() * KINDS.len();
    let mut measured = Vec::new();
    for &(n, d) in &points {
        for kind in KINDS {
            let (ms, peak_bytes) = measure(kind, batch, n, d, reps);
            measured.push(Measured {
                kind: kind.into(),
                n,
                d,
                ms,
                peak_bytes,
                layer_macs: attention_cost(&reference(kind, 4), n, d, false)?.layer_macs(),
            });
            if !progress(measured.len(), total) {
                return Err(Error::Interrupted);
            }
        }
    }
    Ok(Cost {
        rho,
        analytic,
        measured,
        width,
        length,
        batch,
    })
}

impl Cost {
    fn at(&self, kind: &str, n: usize, d: usize) -> Option<&Measured> {
        self.measured
            .iter()
            .find(|m| m.kind == kind && m.n == n && m.d == d)
    }

    /// Checks 11 and 14 and the §4.3.2 targets.
    pub fn claims(&self) -> Vec<Claim> {
        let worst = |f: &dyn Fn(&Analytic) -> f64| self.analytic.iter().map(f).fold(0.0, f64::max);
        let mut claims = vec![
            Claim::check(
                "SH layer FLOPs follow R(N, D) = (2D + Nρ)/(2D + N) within 1 % (spec §4.3.2, check 11)",
                format!(
                    "largest relative difference, counted vs formula, over N = 16…4096 and D = 64, 192, 384: {:.1e} (ρ = {})",
                    worst(&|a| (a.layer_ratio / a.layer_formula - 1.0).abs()),
                    self.rho
                ),
                worst(&|a| (a.layer_ratio / a.layer_formula - 1.0).abs()) <= 0.01,
            ),
            Claim::check(
                "the attention-probability memory ratio of SH is exactly ρ (check 11)",
                format!(
                    "largest |ratio − ρ|: {:.1e}",
                    worst(&|a| (a.memory_ratio - self.rho).abs())
                ),
                worst(&|a| (a.memory_ratio - self.rho).abs()) <= 1e-12,
            ),
            Claim::check(
                "Attention-BN costs ≤ 1.05× softmax in FLOPs at N ≥ 64 (spec §4.3.2, check 14)",
                format!(
                    "largest BN/softmax operation ratio at N ≥ 64: {:.4}",
                    self.analytic
                        .iter()
                        .filter(|a| a.n >= 64)
                        .map(|a| a.bn_ratio)
                        .fold(0.0, f64::max)
                ),
                self.analytic
                    .iter()
                    .filter(|a| a.n >= 64)
                    .all(|a| a.bn_ratio <= 1.05),
            ),
        ];
        let n_max = self.measured.iter().map(|m| m.n).max().unwrap_or(0);
        let d = self.width;
        if let (Some(soft), Some(both), Some(sh), Some(bn)) = (
            self.at("softmax", n_max, d),
            self.at("bn+sh", n_max, d),
            self.at("sh", n_max, d),
            self.at("bn", n_max, d),
        ) {
            claims.push(Claim::check(
                format!("measured wall time of BN+SH below softmax's at N = {n_max} (ρ = 0.5; check 14)"),
                format!(
                    "forward + backward {:.2} ms vs {:.2} ms (ratio {:.2}; SH alone {:.2}; ideal layer ratio {:.2})",
                    both.ms, soft.ms, both.ms / soft.ms, sh.ms / soft.ms, layer_flop_ratio(n_max, d, self.rho)
                ),
                both.ms < soft.ms,
            ));
            claims.push(Claim::check(
                format!(
                    "measured wall time of BN within 5 % of softmax's at N = {n_max} (spec §4.3.2)"
                ),
                format!(
                    "{:.2} ms vs {:.2} ms (ratio {:.3})",
                    bn.ms,
                    soft.ms,
                    bn.ms / soft.ms
                ),
                bn.ms <= 1.05 * soft.ms,
            ));
            if let (Some(pb), Some(ps)) = (both.peak_bytes, soft.peak_bytes) {
                claims.push(Claim::check(
                    format!(
                        "measured peak memory of BN+SH below softmax's at N = {n_max} (check 14)"
                    ),
                    format!(
                        "peak heap of one forward + backward {:.1} MB vs {:.1} MB (ratio {:.2})",
                        pb as f64 / 1e6,
                        ps as f64 / 1e6,
                        pb as f64 / ps as f64
                    ),
                    pb < ps,
                ));
            }
        }
        claims
    }
}
