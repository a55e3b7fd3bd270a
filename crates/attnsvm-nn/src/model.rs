//! A transformer encoder classifier with pluggable attention (spec `primal-dual.md` §2.6):
//!
//! ```text
//! tokens [B, N, F] → Linear(F → D) + learned position embedding
//!   → L × { x + Attention(LN(x)),  x + FF(LN(x)) }      (pre-norm; FF = Linear → GELU → Linear)
//!   → LN → mean over the valid tokens → Linear(D → classes)
//! ```
//!
//! Padding (`pad[b, t] = true`) is respected everywhere: attention gives padded keys no weight and
//! the pooling averages valid tokens only, so the logits do not depend on padded content.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::attention::{linear_tokens, Attention, AttentionConfig, AttentionKind, Sparsity};
use crate::fused_norm::layer_norm;

/// The classifier's shape.
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    /// Features per input token.
    pub features: usize,
    /// Tokens per sequence (the position table's length).
    pub max_len: usize,
    pub classes: usize,
    #[config(default = 32)]
    pub d_model: usize,
    #[config(default = 4)]
    pub n_heads: usize,
    #[config(default = 2)]
    pub layers: usize,
    /// Hidden width of the feed-forward blocks, as a multiple of `d_model`.
    #[config(default = 2)]
    pub ff_mult: usize,
    #[config(default = "AttentionKind::Softmax")]
    pub attention: AttentionKind,
    /// Attention-BN in every block (see [`crate::attention`]).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Attention-SH pooling ratios, one per head, in every block (empty: none).
    #[config(default = "Vec::new()")]
    pub ratios: Vec<usize>,
    /// 2D SH pooling on this `[rows, cols]` token grid (`rows · cols = max_len`; see
    /// [`AttentionConfig::grid`]).
    #[config(default = "None")]
    pub grid: Option<[usize; 2]>,
    /// Sparse attention (top-k or window) in every block.
    #[config(default = "Sparsity::Dense")]
    pub sparsity: Sparsity,
}

/// One pre-norm encoder block.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attention: Attention,
    pub norm2: LayerNorm,
    pub ff_in: Linear,
    pub ff_out: Linear,
}

/// The classifier.
#[derive(Module, Debug)]
pub struct Classifier {
    pub embed: Linear,
    pub position: Embedding,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl ClassifierConfig {
    /// Check the sizes: every one positive, `d_model` a multiple of `n_heads`.
    pub fn validate(&self) -> attnsvm::Result<()> {
        if [
            self.features,
            self.max_len,
            self.classes,
            self.layers,
            self.ff_mult,
        ]
        .contains(&0)
        {
            return Err(attnsvm::Error::Invalid(format!(
                "classifier: features {}, max_len {}, classes {}, layers {}, ff_mult {} must all be ≥ 1",
                self.features, self.max_len, self.classes, self.layers, self.ff_mult
            )));
        }
        if let Some([r, c]) = self.grid {
            if r * c != self.max_len {
                return Err(attnsvm::Error::Invalid(format!(
                    "classifier: the SH grid {r}×{c} does not hold max_len = {} tokens",
                    self.max_len
                )));
            }
        }
        self.attention_config().validate()
    }

    /// The attention of every block.
    pub fn attention_config(&self) -> AttentionConfig {
        AttentionConfig::new(self.d_model, self.n_heads, self.attention)
            .with_batch_norm(self.batch_norm)
            .with_ratios(self.ratios.clone())
            .with_grid(self.grid)
            .with_sparsity(self.sparsity)
            .with_max_len(self.max_len)
    }

    /// The initialization of seed `seed`, reproducible whatever else runs: burn draws lazily
    /// initialized parameters at their first use, so they are all materialized here, under
    /// [`crate::with_seed`].
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Classifier {
        crate::with_seed(device, seed, || {
            let model = self.init(device);
            drop(model.clone().into_record());
            model
        })
    }

    /// Build with burn's default initializers on `device` (parameters are drawn lazily, at
    /// their first use; [`Self::init_seeded`] makes that reproducible).
    pub fn init(&self, device: &Device) -> Classifier {
        let d = self.d_model;
        let blocks = (0..self.layers)
            .map(|_| Block {
                norm1: LayerNormConfig::new(d).init(device),
                attention: self.attention_config().init(device),
                norm2: LayerNormConfig::new(d).init(device),
                ff_in: LinearConfig::new(d, d * self.ff_mult).init(device),
                ff_out: LinearConfig::new(d * self.ff_mult, d).init(device),
            })
            .collect();
        Classifier {
            embed: LinearConfig::new(self.features, d).init(device),
            position: EmbeddingConfig::new(self.max_len, d).init(device),
            blocks,
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, self.classes).init(device),
        }
    }
}

impl Classifier {
    /// Logits `[B, classes]` of tokens `x` (`[B, N, F]`) with padding mask `pad` (`[B, N]`).
    pub fn forward(&self, x: Tensor<3>, pad: Option<Tensor<2, Bool>>) -> Tensor<2> {
        let [b, n, _] = x.dims();
        let device = x.device();
        let h = self.encode(x, pad.clone(), |_, _| {});
        let d = h.dims()[2];
        let pooled = match pad {
            None => h.mean_dim(1),
            Some(pad) => {
                // Valid = 1, padded = 0; the average runs over the valid tokens only.
                let valid =
                    Tensor::<3>::ones([b, n, 1], &device).mask_fill(pad.unsqueeze_dim::<3>(2), 0.0);
                let count = valid.clone().sum_dim(1);
                (h * valid.expand([b, n, d]))
                    .sum_dim(1)
                    .div(count.expand([b, 1, d]))
            }
        };
        self.head.forward(pooled.reshape([b, d]))
    }

    /// The encoder's output `[B, N, D]` (after the final norm); `visit(block, input)` sees the
    /// input of each block's attention (after its norm).
    pub fn encode(
        &self,
        x: Tensor<3>,
        pad: Option<Tensor<2, Bool>>,
        mut visit: impl FnMut(&Block, &Tensor<3>),
    ) -> Tensor<3> {
        let n = x.dims()[1];
        let positions = Tensor::<1, Int>::arange(0..n as i64, &x.device()).reshape([1, n]);
        let mut h = linear_tokens(&self.embed, x) + self.position.forward(positions);
        for blk in &self.blocks {
            let z = layer_norm(&blk.norm1, h.clone());
            visit(blk, &z);
            h = h + blk.attention.forward(z, pad.clone());
            let f = linear_tokens(
                &blk.ff_out,
                crate::fused::gelu(linear_tokens(&blk.ff_in, layer_norm(&blk.norm2, h.clone()))),
            );
            h = h + f;
        }
        layer_norm(&self.norm, h)
    }
}
