//! One head of the forward pass: pooling (SH), key statistics (BN), then per-query weights over
//! the visible keys, or the O(N) summary of dense linear attention.

use faer::Mat;

use super::pool;
use super::{elu_plus_one, AttentionConfig, BnOrder, BnScope, Counts, Kernel, Sparsity};
use crate::error::{invalid, Result};
use crate::linalg::dot;
use crate::model::objective::log_sum_exp;

/// Per-dimension mean and `s = √(σ² + eps)` (biased variance) of the rows `members` of `keys`.
pub fn key_statistics(
    keys: &Mat<f64>,
    members: &[usize],
    eps: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if members.is_empty() {
        return Err(invalid!(
            "attention-BN: no valid key to take statistics over"
        ));
    }
    let m = members.len() as f64;
    let d = keys.ncols();
    let mut mu = vec![0.0; d];
    let mut s = vec![0.0; d];
    for c in 0..d {
        mu[c] = members.iter().map(|&j| keys[(j, c)]).sum::<f64>() / m;
        let var = members
            .iter()
            .map(|&j| (keys[(j, c)] - mu[c]).powi(2))
            .sum::<f64>()
            / m;
        s[c] = (var + eps).sqrt();
        if s[c] <= 0.0 || s[c].is_nan() {
            return Err(invalid!(
                "attention-BN: key dimension {c} has zero variance and eps = 0"
            ));
        }
    }
    Ok((mu, s))
}

fn normalize(x: &[f64], stats: &(Vec<f64>, Vec<f64>)) -> Vec<f64> {
    let (mu, s) = stats;
    x.iter()
        .zip(mu)
        .zip(s)
        .map(|((x, m), s)| (x - m) / s)
        .collect()
}

fn row(m: &Mat<f64>, i: usize) -> Vec<f64> {
    (0..m.ncols()).map(|c| m[(i, c)]).collect()
}

/// One head after pooling and (sequence-scope) normalization.
pub(super) struct Head {
    queries: Mat<f64>,
    pub(super) keys: Mat<f64>,
    values: Mat<f64>,
    key_valid: Vec<bool>,
    /// The keys before normalization (the neighbourhood scope normalizes per query).
    raw_keys: Mat<f64>,
    raw_queries: Mat<f64>,
}

impl Head {
    pub(super) fn new(
        cfg: &AttentionConfig,
        h: usize,
        q: Mat<f64>,
        k: Mat<f64>,
        v: Mat<f64>,
        valid: &[bool],
    ) -> Result<Head> {
        let bn = cfg.batch_norm.filter(|bn| bn.scope == BnScope::Sequence);
        let valid_rows = |mask: &[bool]| (0..mask.len()).filter(|&j| mask[j]).collect::<Vec<_>>();
        let ratio = cfg.scaled_heads.as_ref().map_or(1, |sh| sh.ratios[h]);
        // NormalizeThenPool: statistics of the unpooled keys (normalizing is affine, so it
        // commutes with the masked average and pooling the raw keys is the same).
        let early_stats = match bn {
            Some(bn) if bn.order == BnOrder::NormalizeThenPool => {
                Some(key_statistics(&k, &valid_rows(valid), bn.eps)?)
            }
            _ => None,
        };
        let (keys, values, key_valid) = match &cfg.scaled_heads {
            Some(sh) if ratio > 1 => {
                let p = pool::pool(&k, &v, valid, ratio, sh)?;
                (p.keys, p.values, p.valid)
            }
            _ => (k, v, valid.to_vec()),
        };
        let stats = match (early_stats, bn) {
            (Some(s), _) => Some(s),
            (None, Some(bn)) => Some(key_statistics(&keys, &valid_rows(&key_valid), bn.eps)?),
            (None, None) => None,
        };
        let apply = |m: &Mat<f64>| match &stats {
            Some(st) => {
                let rows: Vec<Vec<f64>> =
                    (0..m.nrows()).map(|i| normalize(&row(m, i), st)).collect();
                Mat::from_fn(m.nrows(), m.ncols(), |i, c| rows[i][c])
            }
            None => m.clone(),
        };
        Ok(Head {
            queries: apply(&q),
            keys: apply(&keys),
            raw_keys: keys,
            raw_queries: q,
            values,
            key_valid,
        })
    }

    pub(super) fn forward(
        &self,
        cfg: &AttentionConfig,
        valid: &[bool],
        counts: &mut Counts,
    ) -> Result<Mat<f64>> {
        let (n, dv) = (self.queries.nrows(), self.values.ncols());
        if cfg.kernel == Kernel::EluPlusOne && cfg.sparsity == Sparsity::Dense {
            return Ok(self.linear_dense(valid, counts));
        }
        let mut out = Mat::zeros(n, dv);
        let neighbourhood = cfg
            .batch_norm
            .filter(|bn| bn.scope == BnScope::Neighbourhood);
        let source = if neighbourhood.is_some() {
            &self.raw_keys
        } else {
            &self.keys
        };
        let key_rows: Vec<Vec<f64>> = (0..source.nrows()).map(|j| row(source, j)).collect();
        for i in (0..n).filter(|&i| valid[i]) {
            let mut members: Vec<usize> = (0..self.keys.nrows())
                .filter(|&j| self.key_valid[j])
                .filter(|&j| match cfg.sparsity {
                    Sparsity::Window(w) => i.abs_diff(j) <= w,
                    _ => true,
                })
                .collect();
            // The neighbourhood scope normalizes with the statistics of this query's keys.
            let owned: Vec<Vec<f64>>;
            let (qi, keys): (Vec<f64>, Vec<&[f64]>) = match neighbourhood {
                Some(bn) => {
                    let st = key_statistics(&self.raw_keys, &members, bn.eps)?;
                    owned = members
                        .iter()
                        .map(|&j| normalize(&key_rows[j], &st))
                        .collect();
                    let keys = owned.iter().map(Vec::as_slice).collect();
                    (normalize(&row(&self.raw_queries, i), &st), keys)
                }
                None => {
                    let keys = members.iter().map(|&j| key_rows[j].as_slice()).collect();
                    (row(&self.queries, i), keys)
                }
            };
            let mut scores = self.scores(cfg.kernel, &qi, &keys);
            counts.core_macs += (members.len() * qi.len()) as u64;
            if let Sparsity::TopK(top) = cfg.sparsity {
                let order = top_k(&scores, top);
                members = order.iter().map(|&t| members[t]).collect();
                scores = order.iter().map(|&t| scores[t]).collect();
            }
            let w = self.weights(cfg.kernel, &scores);
            weighted_sum(&mut out, i, &self.values, &members, &w, counts);
            if cfg.kernel == Kernel::Softmax {
                counts.exps += members.len() as u64;
            }
        }
        Ok(out)
    }

    /// Logits `q·k/√d` (softmax) or similarities `φ(q)·φ(k)` (linear) of the visible keys.
    fn scores(&self, kernel: Kernel, q: &[f64], keys: &[&[f64]]) -> Vec<f64> {
        let d = q.len() as f64;
        match kernel {
            Kernel::Softmax => keys.iter().map(|k| dot(q, k) / d.sqrt()).collect(),
            Kernel::EluPlusOne => {
                let fq: Vec<f64> = q.iter().map(|&x| elu_plus_one(x)).collect();
                keys.iter()
                    .map(|k| k.iter().zip(&fq).map(|(&x, f)| elu_plus_one(x) * f).sum())
                    .collect()
            }
        }
    }

    /// Attention weights from scores: log-domain softmax, or similarities over their sum.
    fn weights(&self, kernel: Kernel, scores: &[f64]) -> Vec<f64> {
        match kernel {
            Kernel::Softmax => {
                let lse = log_sum_exp(scores);
                scores.iter().map(|s| (s - lse).exp()).collect()
            }
            Kernel::EluPlusOne => {
                let total: f64 = scores.iter().sum();
                scores.iter().map(|s| s / total).collect()
            }
        }
    }

    /// Dense linear attention in its O(N) primal form: the summary `S = Σ_j φ(k_j) v_jᵀ`,
    /// `z = Σ_j φ(k_j)` once, then `φ(q)ᵀS / φ(q)ᵀz` per query.
    fn linear_dense(&self, valid: &[bool], counts: &mut Counts) -> Mat<f64> {
        let (n, d, dv) = (self.queries.nrows(), self.keys.ncols(), self.values.ncols());
        let mut s = Mat::<f64>::zeros(d, dv);
        let mut z = vec![0.0; d];
        let mut used = 0u64;
        for j in (0..self.keys.nrows()).filter(|&j| self.key_valid[j]) {
            used += 1;
            for a in 0..d {
                let f = elu_plus_one(self.keys[(j, a)]);
                z[a] += f;
                for c in 0..dv {
                    s[(a, c)] += f * self.values[(j, c)];
                }
            }
        }
        let mut out = Mat::zeros(n, dv);
        let mut queries = 0u64;
        for i in (0..n).filter(|&i| valid[i]) {
            queries += 1;
            let fq: Vec<f64> = (0..d).map(|a| elu_plus_one(self.queries[(i, a)])).collect();
            let den = dot(&fq, &z);
            for c in 0..dv {
                out[(i, c)] = (0..d).map(|a| fq[a] * s[(a, c)]).sum::<f64>() / den;
            }
        }
        let per_token = (d * dv + d) as u64;
        counts.core_macs += (used + queries) * per_token;
        counts.attention_elements += per_token;
        out
    }
}

/// `out[i] = Σ_t w_t v_{members[t]}`; counts the value MACs and the stored probabilities.
fn weighted_sum(
    out: &mut Mat<f64>,
    i: usize,
    values: &Mat<f64>,
    members: &[usize],
    w: &[f64],
    counts: &mut Counts,
) {
    let dv = values.ncols();
    for c in 0..dv {
        out[(i, c)] = members
            .iter()
            .zip(w)
            .map(|(&j, w)| w * values[(j, c)])
            .sum();
    }
    counts.core_macs += (members.len() * dv) as u64;
    counts.attention_elements += members.len() as u64;
}

/// Positions of the `k` largest scores (ties: the lower position wins), in increasing order.
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.sort_unstable();
    order
}
