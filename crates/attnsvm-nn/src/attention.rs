//! Pluggable attention for the encoder (spec `primal-dual.md` §1.4–§1.5, §2.6): one module holds
//! the query, key, value and output projections; the [`AttentionKind`] decides how queries and
//! keys mix the values.
//!
//! | kind | per head, for the valid keys `j` of a sequence |
//! |---|---|
//! | `softmax` | `out_i = Σ_j softmax_j(q_iᵀk_j/√d_k) v_j` (the SVR's support-vector expansion with the exponential kernel) |
//! | `linear` | `out_i = Σ_j φ(q_i)ᵀφ(k_j) v_j / Σ_j φ(q_i)ᵀφ(k_j)`, `φ = elu + 1` (the same expansion with a feature-map kernel) |
//! | `simplex` | `out_i = Σ_j W_ij v_j` with a trainable row-stochastic `W = softmax_rows(A)` per head, shared by all inputs: the convex-attention model (4) of "Convexifying Transformers" (`A` starts at 0, uniform mixing; queries and keys are not used) |
//!
//! **Attention-BN** (`batch_norm`, spec §2.1, the reconstruction of `attnsvm::model::attention`):
//! per sequence and head, the keys' mean `μ` and variance `σ²` over the *valid* keys (no running
//! averages, no affine), `s = √(σ² + ε)`, and both queries and keys are normalized with the keys'
//! statistics, `q̃ = (q − μ)/s`, `k̃ = (k − μ)/s`, before the kernel. `ε = 1e-5` by default.
//!
//! **Attention-SH** (`ratios`, spec §2.2): head `j` attends to its keys and values average-pooled
//! along the tokens with kernel = stride = `r_j` ([`pool`]; a pooled slot is the mean of its valid
//! members, padding when it has none); queries are not pooled. With BN, the statistics are those of
//! the pooled keys (pool, then normalize: the reference's default order).
//!
//! **Padding.** `pad` is `true` at padded tokens. Padded keys get no weight in either kind
//! (softmax: their scores are set to a large negative number; linear: their features are zeroed),
//! so the outputs at valid tokens do not depend on what the padded tokens hold.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::pool::pool;

/// Which keys each query sees (spec §1.6): all valid keys, the `k` valid keys with the largest
/// scores, or the valid keys within `w` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sparsity {
    #[default]
    Dense,
    TopK(usize),
    Window(usize),
}

/// How the attention mixes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    Softmax,
    Linear,
    Simplex,
}

/// The score given to padded keys before the softmax (exp of it underflows in f32 and f64).
pub(crate) const MASKED: f64 = -1.0e9;

/// Settings of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub kind: AttentionKind,
    /// Attention-BN: normalize queries and keys with the keys' statistics.
    #[config(default = false)]
    pub batch_norm: bool,
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Attention-SH: one pooling ratio per head (empty: no pooling, every ratio 1).
    #[config(default = "Vec::new()")]
    pub ratios: Vec<usize>,
    /// Attention-SH on a `[rows, cols]` grid of tokens (row-major, e.g. image patches): head `j`
    /// pools `r_j × r_j` windows of the grid instead of `r_j` consecutive tokens. Sequences must
    /// have exactly `rows · cols` tokens.
    #[config(default = "None")]
    pub grid: Option<[usize; 2]>,
    /// Sparse attention (not combined with SH).
    #[config(default = "Sparsity::Dense")]
    pub sparsity: Sparsity,
    /// Tokens per sequence: the size of the `simplex` kind's mixing matrices (unused otherwise).
    #[config(default = 0)]
    pub max_len: usize,
}

/// Multi-head attention with the projections `W_Q, W_K, W_V, W_O` (`d_model × d_model`).
#[derive(Module, Debug)]
pub struct Attention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub n_heads: usize,
    /// `0` softmax, `1` linear (a plain field, so the module derive accepts it).
    pub kind: usize,
    /// `ε` of Attention-BN; `None` without BN.
    pub bn_eps: Option<f64>,
    /// The SH pooling ratio of every head (all 1 without SH).
    pub ratios: Vec<usize>,
    /// The token grid of 2D pooling (`None`: pooling along the tokens).
    pub grid: Option<[usize; 2]>,
    /// Top-k sparsity: `k`, or 0 for none.
    pub top_k: usize,
    /// Window sparsity: `w`.
    pub window: Option<usize>,
    /// The `simplex` kind's mixing logits `A` (`[H, N, N]`).
    pub mixing: Option<Param<Tensor<3>>>,
}

impl AttentionConfig {
    /// `d_model` must be a positive multiple of `n_heads`.
    pub fn validate(&self) -> attnsvm::Result<()> {
        if !(self.bn_eps >= 0.0 && self.bn_eps.is_finite()) {
            return Err(attnsvm::Error::Invalid(format!(
                "attention-BN: eps = {} must be ≥ 0 and finite",
                self.bn_eps
            )));
        }
        if !self.ratios.is_empty()
            && (self.ratios.len() != self.n_heads || self.ratios.contains(&0))
        {
            return Err(attnsvm::Error::Invalid(format!(
                "attention-SH: ratios {:?} must be {} positive integers, one per head",
                self.ratios, self.n_heads
            )));
        }
        if self.kind == AttentionKind::Simplex
            && (self.max_len == 0
                || self.sparsity != Sparsity::Dense
                || self.batch_norm
                || !self.ratios.is_empty())
        {
            return Err(attnsvm::Error::Invalid(
                "attention: the simplex kind needs max_len ≥ 1 and takes no sparsity, BN or SH"
                    .into(),
            ));
        }
        if matches!(self.grid, Some([r, c]) if r == 0 || c == 0) {
            return Err(attnsvm::Error::Invalid(format!(
                "attention-SH: the grid {:?} needs positive rows and columns",
                self.grid
            )));
        }
        if self.sparsity == Sparsity::TopK(0) {
            return Err(attnsvm::Error::Invalid(
                "attention: top-k needs k ≥ 1".into(),
            ));
        }
        if self.sparsity != Sparsity::Dense && self.ratios.iter().any(|&r| r != 1) {
            return Err(attnsvm::Error::Invalid(
                "attention: sparse attention with scaled heads is not defined (spec §2.4)".into(),
            ));
        }
        if self.n_heads == 0 || self.d_model == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return Err(attnsvm::Error::Invalid(format!(
                "attention: d_model = {} must be a positive multiple of n_heads = {}",
                self.d_model, self.n_heads
            )));
        }
        Ok(())
    }

    /// Build on `device` (call [`Self::validate`] first: the head split assumes it).
    pub fn init(&self, device: &Device) -> Attention {
        let lin = || LinearConfig::new(self.d_model, self.d_model).init(device);
        Attention {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            n_heads: self.n_heads,
            kind: match self.kind {
                AttentionKind::Softmax => 0,
                AttentionKind::Linear => 1,
                AttentionKind::Simplex => 2,
            },
            mixing: (self.kind == AttentionKind::Simplex).then(|| {
                Param::from_tensor(Tensor::zeros(
                    [self.n_heads, self.max_len, self.max_len],
                    device,
                ))
            }),
            bn_eps: self.batch_norm.then_some(self.bn_eps),
            ratios: if self.ratios.is_empty() {
                vec![1; self.n_heads]
            } else {
                self.ratios.clone()
            },
            grid: self.grid,
            top_k: match self.sparsity {
                Sparsity::TopK(k) => k,
                _ => 0,
            },
            window: match self.sparsity {
                Sparsity::Window(w) => Some(w),
                _ => None,
            },
        }
    }
}

/// The padded keys `[B, M]` as a mask over scores `[B, h, N, M]` (the same keys are hidden from
/// every head and query).
fn key_mask(pad: &Tensor<2, Bool>, [b, h, n, m]: [usize; 4]) -> Tensor<4, Bool> {
    pad.clone()
        .unsqueeze_dim::<3>(1)
        .unsqueeze_dim::<4>(1)
        .expand([b, h, n, m])
}

/// Softmax over the last dimension: [`crate::fused::softmax_last`], one differentiable operation
/// (flex's fused kernel forward, one row sweep backward).
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    crate::fused::softmax_last(x)
}

/// `linear` applied to every token of `x` (`[B, N, D_in]` → `[B, N, D_out]`) as one
/// `[B·N, D_in] @ [D_in, D_out]` product. `Linear::forward` on the 3D tensor gives the same
/// values, but burn's flex backend runs it as `B` small matrix products when `N` is not a multiple
/// of 32 (and so its backward too), which costs more than the one large product.
pub fn linear_tokens(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, n, d] = x.dims();
    let y = linear.forward(x.reshape([b * n, d]));
    let out = y.dims()[1];
    y.reshape([b, n, out])
}

/// `elu(x) + 1`, positive everywhere: `x + 1` for `x > 0`, `eˣ` otherwise.
pub fn elu_plus_one<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().clamp_min(0.0) + x.clamp_max(0.0).exp()
}

impl Attention {
    /// The kind of this module.
    pub fn kind(&self) -> AttentionKind {
        match self.kind {
            0 => AttentionKind::Softmax,
            1 => AttentionKind::Linear,
            _ => AttentionKind::Simplex,
        }
    }

    /// The `simplex` kind's row-stochastic mixing matrices on `n` tokens with padded keys hidden
    /// (`[B, H, n, n]`).
    pub fn mixing_weights(
        &self,
        b: usize,
        n: usize,
        pad: Option<&Tensor<2, Bool>>,
    ) -> Option<Tensor<4>> {
        let a = self.mixing.as_ref()?.val();
        let h = a.dims()[0];
        let mut logits = a
            .slice([0..h, 0..n, 0..n])
            .unsqueeze_dim::<4>(0)
            .expand([b, h, n, n]);
        if let Some(pad) = pad {
            logits = logits.mask_fill(key_mask(pad, [b, h, n, n]), MASKED);
        }
        Some(softmax_last(logits))
    }

    /// `[B, N, D] → [B, H, N, D/H]`.
    pub fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, d] = x.dims();
        x.reshape([b, n, self.n_heads, d / self.n_heads])
            .swap_dims(1, 2)
    }

    /// Attention-BN: `((q − μ)/s, (k − μ)/s)` with the statistics of the valid keys of each
    /// sequence and head (queries `[B, H, N, d_k]`, keys `[B, H, M, d_k]`).
    fn batch_norm(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        pad: Option<&Tensor<2, Bool>>,
        eps: f64,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, h, n, dk] = k.dims();
        let nq = q.dims()[2];
        // Means over the keys: plain means without padding, masked sums over counts with it.
        let (mu, var) = match pad {
            None => {
                let mu = k.clone().mean_dim(2);
                let centred = k.clone() - mu.clone().expand([b, h, n, dk]);
                (mu, (centred.clone() * centred).mean_dim(2))
            }
            Some(pad) => {
                let mask = pad.clone().unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(3);
                let valid = Tensor::<4>::ones([b, 1, n, 1], &k.device()).mask_fill(mask, 0.0);
                let count = valid.clone().sum_dim(2).expand([b, h, 1, dk]);
                let valid = valid.expand([b, h, n, dk]);
                let mu = (k.clone() * valid.clone()).sum_dim(2).div(count.clone());
                let centred = k.clone() - mu.clone().expand([b, h, n, dk]);
                (
                    mu,
                    (centred.clone() * centred * valid).sum_dim(2).div(count),
                )
            }
        };
        // One 1/s for both; queries and keys are centred and scaled with the keys' statistics.
        let inv_s = var.add_scalar(eps).sqrt().recip();
        let normalize = |x: Tensor<4>, rows: usize| {
            (x - mu.clone().expand([b, h, rows, dk])) * inv_s.clone().expand([b, h, rows, dk])
        };
        (normalize(q, nq), normalize(k, n))
    }

    /// Queries `[B, h, N, d_k]` against keys and values `[B, h, M, d_k]` whose padding is
    /// `key_pad` (`[B, M]`): Attention-BN if configured, then the kernel.
    fn mix(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        key_pad: Option<&Tensor<2, Bool>>,
    ) -> Tensor<4> {
        let (q, k) = self.normalize(q, k, key_pad);
        if self.kind() == AttentionKind::Linear && self.top_k == 0 && self.window.is_none() {
            let [b, h, _, dk] = q.dims();
            let m = k.dims()[2];
            let (fq, mut fk) = (elu_plus_one(q), elu_plus_one(k));
            if let Some(pad) = key_pad {
                let mask = pad.clone().unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(3);
                fk = fk.mask_fill(mask.expand([b, h, m, dk]), 0.0);
            }
            // φ(K)ᵀV: [B, h, d_k, d_k]; the normalizer φ(Q)·Σ_j φ(k_j): [B, h, N, 1].
            let kv = fk.clone().swap_dims(2, 3).matmul(v);
            let z = fq.clone().matmul(fk.sum_dim(2).swap_dims(2, 3));
            return fq.matmul(kv).div(z);
        }
        if self.kind() == AttentionKind::Softmax && self.top_k == 0 && self.window.is_none() {
            return crate::fused_attention::attention_softmax(q, k, v, key_pad);
        }
        self.weights(q, k, key_pad).matmul(v)
    }

    /// Attention-BN when configured (the identity otherwise).
    pub(crate) fn normalize(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        key_pad: Option<&Tensor<2, Bool>>,
    ) -> (Tensor<4>, Tensor<4>) {
        match self.bn_eps {
            Some(eps) => self.batch_norm(q, k, key_pad, eps),
            None => (q, k),
        }
    }

    /// The explicit attention weights `[B, h, N, M]` of (normalized) queries and keys: the padded
    /// keys, the keys outside the window and (for top-k) the keys below the `k`-th largest score
    /// get no weight; each row sums to 1.
    pub(crate) fn weights(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        key_pad: Option<&Tensor<2, Bool>>,
    ) -> Tensor<4> {
        let [b, h, n, dk] = q.dims();
        let m = k.dims()[2];
        let device = q.device();
        let scores = match self.kind() {
            AttentionKind::Linear => elu_plus_one(q).matmul(elu_plus_one(k).swap_dims(2, 3)),
            // (q/√d_k)ᵀk: the scale on the [B, h, N, d_k] queries, not on the [B, h, N, M]
            // scores (one pass less over the scores, forward and backward).
            _ => q.div_scalar((dk as f64).sqrt()).matmul(k.swap_dims(2, 3)),
        };
        // Hidden keys: padding and, for a window, |i − j| > w.
        let mut hidden = key_pad.map(|pad| key_mask(pad, [b, h, n, m]));
        let or = |a: Option<Tensor<4, Bool>>, c: Tensor<4, Bool>| match a {
            Some(a) => a.bool_or(c),
            None => c,
        };
        if let Some(w) = self.window {
            let far: Vec<bool> = (0..n * m).map(|e| (e / m).abs_diff(e % m) > w).collect();
            let far =
                Tensor::<2, Bool>::from_data(burn::tensor::TensorData::new(far, [n, m]), &device);
            hidden = Some(or(
                hidden,
                far.unsqueeze_dim::<3>(0)
                    .unsqueeze_dim::<4>(0)
                    .expand([b, h, n, m]),
            ));
        }
        let mut scores = match &hidden {
            Some(hd) => scores.mask_fill(hd.clone(), MASKED),
            None => scores,
        };
        if self.top_k > 0 && self.top_k < m {
            // The k-th largest visible score of each row; smaller ones are hidden too.
            let kth = scores
                .clone()
                .sort_descending(3)
                .narrow(3, self.top_k - 1, 1)
                .expand([b, h, n, m]);
            let hd = or(hidden, scores.clone().lower(kth));
            scores = scores.mask_fill(hd.clone(), MASKED);
            hidden = Some(hd);
        }
        match self.kind() {
            AttentionKind::Softmax | AttentionKind::Simplex => softmax_last(scores),
            AttentionKind::Linear => {
                let w = match hidden {
                    Some(hd) => scores.mask_fill(hd, 0.0),
                    None => scores,
                };
                // A padded query may see no key at all: its row is 0, not 0/0.
                let total = w.clone().sum_dim(3).clamp_min(1e-30).expand([b, h, n, m]);
                w.div(total)
            }
        }
    }

    /// Self-attention of `x` (`[B, N, D]`) with padding mask `pad` (`[B, N]`, true = padding).
    pub fn forward(&self, x: Tensor<3>, pad: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let q = self.heads(linear_tokens(&self.query, x.clone()));
        let k = self.heads(linear_tokens(&self.key, x.clone()));
        let v = self.heads(linear_tokens(&self.value, x));
        let mixed = if let Some(w) = self.mixing_weights(b, n, pad.as_ref()) {
            w.matmul(v)
        } else if self.ratios.iter().all(|&r| r == 1) {
            self.mix(q, k, v, pad.as_ref())
        } else {
            // Attention-SH: head j attends to its keys and values pooled by r_j.
            let heads = (0..self.n_heads)
                .map(|j| {
                    let (r, grid) = (self.ratios[j], self.grid);
                    let (kj, pj) = pool(k.clone().narrow(1, j, 1), pad.as_ref(), r, grid);
                    let (vj, _) = pool(v.clone().narrow(1, j, 1), pad.as_ref(), r, grid);
                    self.mix(q.clone().narrow(1, j, 1), kj, vj, pj.as_ref())
                })
                .collect();
            Tensor::cat(heads, 1)
        };
        linear_tokens(&self.output, mixed.swap_dims(1, 2).reshape([b, n, d]))
    }
}
