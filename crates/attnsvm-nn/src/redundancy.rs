//! Head redundancy (spec `primal-dual.md` §4.3 item 4, §6 item 4): how different the heads'
//! attention maps are.
//!
//! Each head's attention map is made `N × N` whatever its key length: an SH head's weight on a
//! pooled key is spread evenly over that key's valid members ([`crate::pool::pool_matrix`]), so
//! the row still sums to 1 and says how much each *token* contributes. The distance of two heads at
//! a query is the total-variation distance of their rows, `½ Σ_j |A_s[i,j] − A_t[i,j]|` (0: the same
//! distribution, 1: disjoint supports); [`head_distance`] averages it over the valid queries of
//! every sequence, every pair of heads and every layer. Larger means less redundant.

use burn::tensor::{Bool, Tensor, TensorData};

use crate::attention::{linear_tokens, Attention};
use crate::model::Classifier;
use crate::pool::{pool, pool_matrix};

impl Attention {
    /// The attention maps `[B, H, N, N]` of `x` (`[B, N, D]`), every row a distribution over the
    /// tokens (SH heads: pooled weights spread over the pooled tokens).
    pub fn maps(&self, x: Tensor<3>, pad: Option<Tensor<2, Bool>>) -> Tensor<4> {
        let [b, n, _] = x.dims();
        if let Some(w) = self.mixing_weights(b, n, pad.as_ref()) {
            return w;
        }
        let device = x.device();
        let q = self.heads(linear_tokens(&self.query, x.clone()));
        let k = self.heads(linear_tokens(&self.key, x));
        let pad_data: Option<Vec<bool>> = pad.as_ref().map(|p| {
            p.clone()
                .into_data()
                .try_to_vec::<bool>()
                .expect("a bool tensor's data")
        });
        let heads = (0..self.n_heads)
            .map(|j| {
                let r = self.ratios[j];
                let (kj, pj) = pool(k.clone().narrow(1, j, 1), pad.as_ref(), r, self.grid);
                let (qj, kj) = self.normalize(q.clone().narrow(1, j, 1), kj, pj.as_ref());
                let w = self.weights(qj, kj, pj.as_ref());
                if r == 1 {
                    return w;
                }
                let (p, slots) = pool_matrix(b, n, r, self.grid, pad_data.as_deref());
                let p = Tensor::<4>::from_data(TensorData::new(p, [b, 1, slots, n]), &device);
                w.matmul(p)
            })
            .collect();
        Tensor::cat(heads, 1)
    }
}

impl Classifier {
    /// The attention maps of every block (`[B, H, N, N]` each) on `x`.
    pub fn attention_maps(&self, x: Tensor<3>, pad: Option<Tensor<2, Bool>>) -> Vec<Tensor<4>> {
        let mut maps = Vec::new();
        self.encode(x, pad.clone(), |blk, z| {
            maps.push(blk.attention.maps(z.clone(), pad.clone()));
        });
        maps
    }
}

/// The mean total-variation distance between the rows of every pair of heads of `maps`
/// (`[B, H, N, N]`), over the valid queries (`lengths[b]` first tokens of sequence `b`); `None`
/// with fewer than two heads.
pub fn head_distance(maps: &Tensor<4>, lengths: &[usize]) -> Option<f64> {
    let [b, h, n, m] = maps.dims();
    if h < 2 {
        return None;
    }
    let a: Vec<f32> = maps
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data");
    let row = |bi: usize, s: usize, i: usize| &a[((bi * h + s) * n + i) * m..][..m];
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (bi, &len) in lengths.iter().enumerate().take(b) {
        for i in 0..len.min(n) {
            for s in 0..h {
                for t in s + 1..h {
                    let tv: f64 = row(bi, s, i)
                        .iter()
                        .zip(row(bi, t, i))
                        .map(|(x, y)| f64::from((x - y).abs()))
                        .sum();
                    sum += 0.5 * tv;
                    count += 1;
                }
            }
        }
    }
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(values: Vec<f32>, dims: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, dims), &crate::cpu())
    }

    /// Identical heads are at distance 0, heads with disjoint supports at 1, half-overlapping
    /// one-hot/uniform rows at ½; padded queries and a single head do not count.
    #[test]
    fn total_variation_between_heads() {
        let same = maps(vec![0.5, 0.5, 0.5, 0.5], [1, 2, 1, 2]);
        assert_eq!(head_distance(&same, &[1]), Some(0.0));
        let disjoint = maps(vec![1.0, 0.0, 0.0, 1.0], [1, 2, 1, 2]);
        assert_eq!(head_distance(&disjoint, &[1]), Some(1.0));
        let half = maps(vec![1.0, 0.0, 0.5, 0.5], [1, 2, 1, 2]);
        assert_eq!(head_distance(&half, &[1]), Some(0.5));
        // Query 1 is padding: only query 0 (identical heads) counts.
        let padded = maps(vec![0.5, 0.5, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0], [1, 2, 2, 2]);
        assert_eq!(head_distance(&padded, &[1]), Some(0.0));
        assert_eq!(head_distance(&padded, &[2]), Some(0.5));
        assert_eq!(
            head_distance(&maps(vec![1.0, 0.0], [1, 1, 1, 2]), &[1]),
            None
        );
    }
}
