//! Reference forward passes, in f64, of the attention kinds of spec `primal-dual.md` §2 on one
//! sequence: the oracle the `burn` implementation is tested against.
//!
//! ```text
//! softmax     h_i = Σ_{j ∈ M_i} softmax_j( q̃_iᵀ k̃_j / √d ) v̂_j                 (§1.1, §1.6)
//! linear      h_i = φ(q̃_i)ᵀ Σ_j φ(k̃_j) v̂_jᵀ / φ(q̃_i)ᵀ Σ_j φ(k̃_j),  φ = elu + 1      (§1.5)
//! BN          q̃ = (q − μ) ⊘ s,  k̃ = (k̂ − μ) ⊘ s,  s = √(σ² + ε_bn), stats over the keys  (§2.1)
//! SH          k̂, v̂ = P_{r_s}(k), P_{r_s}(v): average pooling, ratio r_s per head      (§2.2)
//! ```
//!
//! Without BN `q̃ = q`, `k̃ = k̂`; without SH `k̂ = k`, `v̂ = v`; `M_i` is every valid key (dense),
//! the `k` largest logits (top-k) or `|i − j| ≤ w` (local window). Heads split the columns of
//! `Q`, `K` (width `H·d`) and `V` (width `H·d_v`) into `H` equal blocks; the outputs are
//! concatenated (no `W_O`: [`AttentionLayer`] adds the projections).
//!
//! **Masks.** `valid[j] = false` marks a padding token. Padding keys are never attended to, BN
//! statistics and pooled averages are taken over valid tokens only, a pooled slot is valid when
//! any member is, and the output rows of padding queries are zero. So the outputs of valid
//! tokens do not depend on what the padding holds.
//!
//! **Reconstructed details** (spec tag \[R\]; each is a named option, default as the spec argues):
//!
//! | option | default | alternatives | why |
//! |---|---|---|---|
//! | [`BatchNorm::eps`] | `1e-5` | any `≥ 0` | BN's usual value (§2.1: NOT RETRIEVED) |
//! | [`BatchNorm::order`] | [`BnOrder::PoolThenNormalize`] | `NormalizeThenPool` | the SVR of head s is trained on the pooled keys (§2.3) |
//! | [`BatchNorm::scope`] | [`BnScope::Sequence`] | `Neighbourhood` (windows only) | defined for every sparsity; the neighbourhood of top-k is defined by the normalized scores themselves (§2.4) |
//! | BN statistics axis | per sequence and head, over tokens; no running averages (train = eval) | — | §2.1: the SVR's training set is the sequence's keys |
//! | BN affine `γ, β`, mean weight | none | — | §2.1: best reconstruction is none (not offered) |
//! | sparse attention with SH | an error | — | §2.4: not defined by the spec (NOT RETRIEVED) |
//! | [`ScaledHeads::pooling`] | [`Pooling::OneD`] average, kernel = stride = r | `TwoD` r×r on a grid | §2.2 candidate (i); 2D is reading (i) of §2.5 |
//! | [`ScaledHeads::cls`] | `false` | `true`: token 0 kept unpooled, first in the pooled keys | §2.2 CLS policy |
//! | pooling position | after the projections | — | average pooling commutes with a linear map, so pooling `X` first gives the same output; only the cost differs ([`cost`]) |

pub mod cost;
mod head;
mod layer;
mod pool;

pub use head::{key_statistics, top_k};
pub use layer::AttentionLayer;
pub use pool::pooled_length;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use head::Head;

/// The similarity: the exponential kernel (softmax attention) or the elu+1 feature map (linear
/// attention, Katharopoulos et al. 2020; no `1/√d` scaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kernel {
    #[default]
    Softmax,
    EluPlusOne,
}

/// Which keys each query sees (spec §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sparsity {
    /// Every valid key.
    #[default]
    Dense,
    /// The `k` valid keys with the largest scores (ties: the lower index wins).
    TopK(usize),
    /// Valid keys `j` with `|i − j| ≤ w`.
    Window(usize),
}

/// Over which keys the BN statistics `μ, σ²` are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnScope {
    /// All valid keys of the sequence (of the head; pooled keys under SH).
    #[default]
    Sequence,
    /// The keys of query i's window `M_i` (the SVR of query i; only with [`Sparsity::Window`]).
    Neighbourhood,
}

/// Where BN sits relative to SH pooling (spec §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnOrder {
    /// Statistics over the pooled keys (the SVR's training set).
    #[default]
    PoolThenNormalize,
    /// Statistics over the unpooled keys, then pool the normalized keys.
    NormalizeThenPool,
}

/// Attention-BN (spec §2.1): queries and keys normalized with the keys' per-dimension statistics.
///
/// | field | default | meaning | valid |
/// |---|---|---|---|
/// | `eps` | `1e-5` | `s = √(σ² + eps)` | `≥ 0` (`0` fails on a constant key dimension) |
/// | `scope` | `Sequence` | keys the statistics are taken over | `Neighbourhood` needs a window |
/// | `order` | `PoolThenNormalize` | statistics of pooled or unpooled keys under SH | |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchNorm {
    pub eps: f64,
    pub scope: BnScope,
    pub order: BnOrder,
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm {
            eps: 1e-5,
            scope: BnScope::Sequence,
            order: BnOrder::PoolThenNormalize,
        }
    }
}

/// The SH downsampler `P_r`: average pooling with kernel = stride = r.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Along the token axis; `⌈N/r⌉` slots, the last one possibly partial.
    #[default]
    OneD,
    /// `r×r` blocks of a `rows × cols` token grid (row-major); `⌈rows/r⌉·⌈cols/r⌉` slots.
    TwoD { rows: usize, cols: usize },
}

/// Attention-SH (spec §2.2): head `s` attends to its keys and values pooled by `ratios[s]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaledHeads {
    /// `r_s ≥ 1` per head (`r = 1`: that head is plain attention).
    pub ratios: Vec<usize>,
    #[serde(default)]
    pub pooling: Pooling,
    /// Token 0 is a CLS token: kept unpooled, the first pooled key of every head.
    #[serde(default)]
    pub cls: bool,
}

/// One attention kind, as orthogonal switches (spec §6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionConfig {
    pub heads: usize,
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default)]
    pub sparsity: Sparsity,
    #[serde(default)]
    pub batch_norm: Option<BatchNorm>,
    #[serde(default)]
    pub scaled_heads: Option<ScaledHeads>,
}

impl AttentionConfig {
    /// Softmax multi-head attention.
    pub fn softmax(heads: usize) -> Self {
        AttentionConfig {
            heads,
            kernel: Kernel::Softmax,
            sparsity: Sparsity::Dense,
            batch_norm: None,
            scaled_heads: None,
        }
    }

    /// Linear attention with `φ = elu + 1`.
    pub fn linear(heads: usize) -> Self {
        AttentionConfig {
            kernel: Kernel::EluPlusOne,
            ..Self::softmax(heads)
        }
    }

    pub fn with_sparsity(mut self, sparsity: Sparsity) -> Self {
        self.sparsity = sparsity;
        self
    }

    pub fn with_batch_norm(mut self, bn: BatchNorm) -> Self {
        self.batch_norm = Some(bn);
        self
    }

    /// SH with 1D pooling by `ratios` (one per head).
    pub fn with_ratios(self, ratios: Vec<usize>) -> Self {
        self.with_scaled_heads(ScaledHeads {
            ratios,
            pooling: Pooling::OneD,
            cls: false,
        })
    }

    pub fn with_scaled_heads(mut self, sh: ScaledHeads) -> Self {
        self.scaled_heads = Some(sh);
        self
    }

    /// Check the switches against each other and a sequence of `n` tokens.
    pub fn validate(&self, n: usize) -> Result<()> {
        if self.heads == 0 {
            return Err(invalid!("attention: heads must be positive"));
        }
        match self.sparsity {
            Sparsity::TopK(0) => return Err(invalid!("attention: top-k needs k ≥ 1")),
            Sparsity::Dense => {}
            _ if self.scaled_heads.is_some() => {
                return Err(invalid!(
                    "attention: sparse attention with scaled heads is not defined (spec §2.4)"
                ))
            }
            _ => {}
        }
        if let Some(bn) = &self.batch_norm {
            if !(bn.eps >= 0.0 && bn.eps.is_finite()) {
                return Err(invalid!("attention: BN eps = {} must be ≥ 0", bn.eps));
            }
            if bn.scope == BnScope::Neighbourhood && !matches!(self.sparsity, Sparsity::Window(_)) {
                return Err(invalid!(
                    "attention: BN scope `neighbourhood` needs a local-window sparsity"
                ));
            }
        }
        if let Some(sh) = &self.scaled_heads {
            if sh.ratios.len() != self.heads {
                return Err(invalid!(
                    "attention: {} SH ratios for {} heads",
                    sh.ratios.len(),
                    self.heads
                ));
            }
            if sh.ratios.contains(&0) {
                return Err(invalid!("attention: SH ratios must be ≥ 1"));
            }
            pool::check_grid(sh, n)?;
        }
        Ok(())
    }
}

/// Work a forward pass did, counted while doing it (valid query–key pairs only).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Multiply-accumulates of the attention core: `d` per scored pair (`q·k`) plus `d_v` per
    /// weighted value; for dense linear attention the key–value summary and its query products.
    pub core_macs: u64,
    /// Exponentials of the softmax (one per attention probability).
    pub exps: u64,
    /// Stored attention-probability elements (the `N×N_s` matrices; for dense linear attention
    /// the `d×d_v + d` summary of each head).
    pub attention_elements: u64,
    /// Number of keys (slots) of each head after pooling, `N_s`.
    pub key_lengths: Vec<usize>,
}

/// The output `N × H·d_v` and the work counted.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    pub out: Mat<f64>,
    pub counts: Counts,
}

/// Attention of one sequence: `q` is `M × H·d`, `k` is `N × H·d`, `v` is `N × H·d_v`, `valid` the
/// padding mask of the `N` keys (`None`: every token valid). Self-attention has `M = N` and the
/// mask then marks the query rows too; with `M ≠ N` (cross-attention) every query is evaluated.
/// A local window compares query row `i` with key row `j`; a query that sees no valid key
/// (possible only in cross-attention) outputs zero. Shape mismatches, non-finite inputs, a
/// sequence with no valid token or a zero key variance with `eps = 0` are errors.
pub fn attention(
    cfg: &AttentionConfig,
    q: &Mat<f64>,
    k: &Mat<f64>,
    v: &Mat<f64>,
    valid: Option<&[bool]>,
) -> Result<AttentionOutput> {
    let (m, n) = (q.nrows(), k.nrows());
    check_inputs(cfg, q, k, v, valid)?;
    let all_valid = vec![true; n];
    let valid = valid.unwrap_or(&all_valid);
    let query_valid = if m == n {
        valid.to_vec()
    } else {
        vec![true; m]
    };
    let (dh, dv) = (q.ncols() / cfg.heads, v.ncols() / cfg.heads);
    let mut out = Mat::zeros(m, v.ncols());
    let mut counts = Counts::default();
    for h in 0..cfg.heads {
        let block = |m: &Mat<f64>, w: usize| m.subcols(h * w, w).to_owned();
        let head = Head::new(cfg, h, block(q, dh), block(k, dh), block(v, dv), valid)?;
        counts.key_lengths.push(head.keys.nrows());
        let o = head.forward(cfg, &query_valid, &mut counts)?;
        for i in 0..m {
            for c in 0..dv {
                out[(i, h * dv + c)] = o[(i, c)];
            }
        }
    }
    Ok(AttentionOutput { out, counts })
}

fn check_inputs(
    cfg: &AttentionConfig,
    q: &Mat<f64>,
    k: &Mat<f64>,
    v: &Mat<f64>,
    valid: Option<&[bool]>,
) -> Result<()> {
    let n = k.nrows();
    cfg.validate(n)?;
    if v.nrows() != n || q.ncols() != k.ncols() || q.nrows() == 0 {
        return Err(invalid!(
            "attention: Q is {}×{}, K {}×{}, V {}×{}; K and V need the same rows, Q and K the same width",
            q.nrows(),
            q.ncols(),
            k.nrows(),
            k.ncols(),
            v.nrows(),
            v.ncols()
        ));
    }
    if n == 0
        || !q.ncols().is_multiple_of(cfg.heads)
        || !v.ncols().is_multiple_of(cfg.heads)
        || q.ncols() == 0
    {
        return Err(invalid!(
            "attention: widths {} (Q, K) and {} (V) must be positive multiples of {} heads",
            q.ncols(),
            v.ncols(),
            cfg.heads
        ));
    }
    for (name, m) in [("Q", q), ("K", k), ("V", v)] {
        check_finite(name, m)?;
    }
    if let Some(valid) = valid {
        if valid.len() != n {
            return Err(invalid!(
                "attention: mask has {} entries for {n} tokens",
                valid.len()
            ));
        }
        if !valid.iter().any(|&b| b) {
            return Err(invalid!("attention: every token is padding"));
        }
    }
    Ok(())
}

/// An error naming the first non-finite entry of `m`.
pub(crate) fn check_finite(name: &str, m: &Mat<f64>) -> Result<()> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if !m[(i, j)].is_finite() {
                return Err(invalid!("{name}[{i}, {j}] = {} is not finite", m[(i, j)]));
            }
        }
    }
    Ok(())
}

/// `elu(x) + 1`: `x + 1` for `x > 0`, `eˣ` otherwise.
pub fn elu_plus_one(x: f64) -> f64 {
    if x > 0.0 {
        x + 1.0
    } else {
        x.exp()
    }
}
