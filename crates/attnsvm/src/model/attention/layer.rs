//! A multi-head attention layer with its projections: `Q = X W_Q`, `K = X W_K`, `V = X W_V`,
//! `out = Attention(Q, K, V) W_O` (spec §2.6), in f64. No biases.

use faer::Mat;

use super::{attention, check_finite, AttentionConfig, AttentionOutput};
use crate::error::{invalid, Result};

/// The projection weights: `W_Q, W_K ∈ R^{D_x×H·d}`, `W_V ∈ R^{D_x×H·d_v}`,
/// `W_O ∈ R^{H·d_v×D_out}`.
#[derive(Debug, Clone)]
pub struct AttentionLayer {
    pub config: AttentionConfig,
    pub wq: Mat<f64>,
    pub wk: Mat<f64>,
    pub wv: Mat<f64>,
    pub wo: Mat<f64>,
}

impl AttentionLayer {
    /// A layer after checking the shapes and values of the weights.
    pub fn new(
        config: AttentionConfig,
        wq: Mat<f64>,
        wk: Mat<f64>,
        wv: Mat<f64>,
        wo: Mat<f64>,
    ) -> Result<Self> {
        let dx = wq.nrows();
        if wk.nrows() != dx || wv.nrows() != dx || wk.ncols() != wq.ncols() {
            return Err(invalid!(
                "attention layer: W_Q is {}×{}, W_K {}×{}, W_V {}×{}; they must share D_x rows and W_Q, W_K their width",
                dx,
                wq.ncols(),
                wk.nrows(),
                wk.ncols(),
                wv.nrows(),
                wv.ncols()
            ));
        }
        if wo.nrows() != wv.ncols() {
            return Err(invalid!(
                "attention layer: W_O has {} rows, W_V {} columns",
                wo.nrows(),
                wv.ncols()
            ));
        }
        for (name, m) in [("W_Q", &wq), ("W_K", &wk), ("W_V", &wv), ("W_O", &wo)] {
            check_finite(name, m)?;
        }
        Ok(AttentionLayer {
            config,
            wq,
            wk,
            wv,
            wo,
        })
    }

    /// The layer on one sequence `x` (`N × D_x`); padding rows of the output are zero. The counts
    /// are the attention core's (projections: see [`super::cost`]).
    pub fn forward(&self, x: &Mat<f64>, valid: Option<&[bool]>) -> Result<AttentionOutput> {
        if x.ncols() != self.wq.nrows() {
            return Err(invalid!(
                "attention layer: X has {} columns, W_Q {} rows",
                x.ncols(),
                self.wq.nrows()
            ));
        }
        check_finite("X", x)?;
        let (q, k, v) = (x * &self.wq, x * &self.wk, x * &self.wv);
        let att = attention(&self.config, &q, &k, &v, valid)?;
        Ok(AttentionOutput {
            out: &att.out * &self.wo,
            counts: att.counts,
        })
    }
}
