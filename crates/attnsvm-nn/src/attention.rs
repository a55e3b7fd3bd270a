//! Pluggable attention for the encoder (spec `primal-dual.md` §1.4–§1.5, §2.6): one module holds
//! the query, key, value and output projections; the [`AttentionKind`] decides how queries and
//! keys mix the values.
//!
//! | kind | per head, for the valid keys `j` of a sequence |
//! |---|---|
//! | `softmax` | `out_i = Σ_j softmax_j(q_iᵀk_j/√d_k) v_j` (the SVR's support-vector expansion with the exponential kernel) |
//! | `linear` | `out_i = Σ_j φ(q_i)ᵀφ(k_j) v_j / Σ_j φ(q_i)ᵀφ(k_j)`, `φ = elu + 1` (the same expansion with a feature-map kernel) |
//!
//! **Padding.** `pad` is `true` at padded tokens. Padded keys get no weight in either kind
//! (softmax: their scores are set to a large negative number; linear: their features are zeroed),
//! so the outputs at valid tokens do not depend on what the padded tokens hold.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};
use serde::{Deserialize, Serialize};

/// How the attention mixes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    Softmax,
    Linear,
}

/// The score given to padded keys before the softmax (exp of it underflows in f32 and f64).
const MASKED: f64 = -1.0e9;

/// Settings of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub kind: AttentionKind,
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
}

impl AttentionConfig {
    /// `d_model` must be a positive multiple of `n_heads`.
    pub fn validate(&self) -> attnsvm::Result<()> {
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
            },
        }
    }
}

/// `elu(x) + 1`, positive everywhere: `x + 1` for `x > 0`, `eˣ` otherwise.
pub fn elu_plus_one<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().clamp_min(0.0) + x.clamp_max(0.0).exp()
}

impl Attention {
    /// The kind of this module.
    pub fn kind(&self) -> AttentionKind {
        if self.kind == 0 {
            AttentionKind::Softmax
        } else {
            AttentionKind::Linear
        }
    }

    /// `[B, N, D] → [B, H, N, D/H]`.
    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, d] = x.dims();
        x.reshape([b, n, self.n_heads, d / self.n_heads])
            .swap_dims(1, 2)
    }

    /// Self-attention of `x` (`[B, N, D]`) with padding mask `pad` (`[B, N]`, true = padding).
    pub fn forward(&self, x: Tensor<3>, pad: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let q = self.heads(self.query.forward(x.clone()));
        let k = self.heads(self.key.forward(x.clone()));
        let v = self.heads(self.value.forward(x));
        let dk = (d / self.n_heads) as f64;
        let mixed = match self.kind() {
            AttentionKind::Softmax => {
                let mut scores = q.matmul(k.swap_dims(2, 3)).div_scalar(dk.sqrt());
                if let Some(pad) = pad {
                    // [B, N] → [B, 1, 1, N]: the same keys are masked for every head and query.
                    let m = pad.unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(1);
                    scores = scores.mask_fill(m.expand([b, self.n_heads, n, n]), MASKED);
                }
                softmax(scores, 3).matmul(v)
            }
            AttentionKind::Linear => {
                let (fq, mut fk) = (elu_plus_one(q), elu_plus_one(k));
                if let Some(pad) = pad {
                    let m = pad.unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(3);
                    fk = fk.mask_fill(m.expand([b, self.n_heads, n, d / self.n_heads]), 0.0);
                }
                // φ(K)ᵀV: [B, H, d_k, d_k]; the normalizer φ(Q)·Σ_j φ(k_j): [B, H, N, 1].
                let kv = fk.clone().swap_dims(2, 3).matmul(v);
                let z = fq.clone().matmul(fk.sum_dim(2).swap_dims(2, 3));
                fq.matmul(kv).div(z)
            }
        };
        self.output
            .forward(mixed.swap_dims(1, 2).reshape([b, n, d]))
    }
}
