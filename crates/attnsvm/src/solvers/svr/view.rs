//! The SVR view of an attention layer on one sequence, end to end (spec `primal-dual.md`
//! §1.4–§1.7): for every head, the SVR on that head's keys whose dual optimum is the head's values
//! ([`SvrProblem::from_attention`]) is solved from scratch, and its support-vector expansion at
//! the queries is compared with the forward pass of [`attention`]. Dense attention is one SVR per
//! head on the valid keys; sparse attention one SVR per head and query on the keys it sees
//! (`M_i`); the kernel follows the attention's (softmax: `exp`, linear: `elu + 1`).

use faer::Mat;
use serde::Serialize;

use super::{Status, Svr, SvrKernel, SvrProblem, SvrSettings};
use crate::error::{invalid, Result};
use crate::model::attention::{attention, top_k, AttentionConfig, Kernel, Sparsity};

/// What the SVR view of one sequence found.
#[derive(Debug, Clone, Serialize)]
pub struct SvrView {
    /// SVRs solved (heads, times valid queries for sparse attention).
    pub svrs: usize,
    /// `Solved` when every SVR is; otherwise the first other status.
    pub status: Status,
    pub max_duality_gap: f64,
    pub max_kkt_residual: f64,
    /// `max |β_j/h(k_j) − v_j|` (exp kernel; for elu+1 `β` need not be unique: `NaN`).
    pub max_value_error: f64,
    /// `max |SVE − attention|` over the valid query rows.
    pub max_output_difference: f64,
    /// The support-vector expansions, `M × H·d_v` (padding rows zero).
    #[serde(skip)]
    pub expansion: Mat<f64>,
    /// The forward pass of [`attention`].
    #[serde(skip)]
    pub attention: Mat<f64>,
}

/// The SVR view of `cfg` (softmax or linear kernel, any sparsity, any number of heads; BN and SH
/// are errors) on `q` (`M × H·d`), `k` (`N × H·d`), `v` (`N × H·d_v`) with tube width `epsilon`.
pub fn attention_as_svr(
    cfg: &AttentionConfig,
    q: &Mat<f64>,
    k: &Mat<f64>,
    v: &Mat<f64>,
    valid: Option<&[bool]>,
    epsilon: f64,
    settings: &SvrSettings,
) -> Result<SvrView> {
    if cfg.batch_norm.is_some() || cfg.scaled_heads.is_some() {
        return Err(invalid!(
            "svr view: covers softmax, linear, sparse and multi-head attention (no BN or SH)"
        ));
    }
    let att = attention(cfg, q, k, v, valid)?.out;
    let (m, n) = (q.nrows(), k.nrows());
    let all = vec![true; n];
    let valid = valid.unwrap_or(&all);
    let kernel = match cfg.kernel {
        Kernel::Softmax => SvrKernel::Exp,
        Kernel::EluPlusOne => SvrKernel::EluPlusOne,
    };
    let (dh, dv) = (q.ncols() / cfg.heads, v.ncols() / cfg.heads);
    let mut view = SvrView {
        svrs: 0,
        status: Status::Solved,
        max_duality_gap: 0.0,
        max_kkt_residual: 0.0,
        max_value_error: if kernel == SvrKernel::Exp {
            0.0
        } else {
            f64::NAN
        },
        max_output_difference: 0.0,
        expansion: Mat::zeros(m, v.ncols()),
        attention: Mat::zeros(0, 0),
    };
    let queries: Vec<usize> = (0..m).filter(|&i| m != n || valid[i]).collect();
    let visible: Vec<usize> = (0..n).filter(|&j| valid[j]).collect();
    for h in 0..cfg.heads {
        let (qh, kh, vh) = (
            q.subcols(h * dh, dh).to_owned(),
            k.subcols(h * dh, dh).to_owned(),
            v.subcols(h * dv, dv).to_owned(),
        );
        // (the keys of one SVR, the queries it answers)
        let jobs: Vec<(Vec<usize>, Vec<usize>)> = match cfg.sparsity {
            Sparsity::Dense => vec![(visible.clone(), queries.clone())],
            Sparsity::Window(w) => queries
                .iter()
                .map(|&i| {
                    let keys = visible.iter().copied().filter(|j| i.abs_diff(*j) <= w);
                    (keys.collect(), vec![i])
                })
                .collect(),
            Sparsity::TopK(top) => {
                let full = SvrProblem::new(kh.clone(), vh.clone(), kernel, 1.0, 0.0)?;
                queries
                    .iter()
                    .map(|&i| {
                        let qi: Vec<f64> = (0..dh).map(|c| qh[(i, c)]).collect();
                        let scores: Vec<f64> = visible
                            .iter()
                            .map(|&j| full.log_kernel(&qi, &row(&kh, j)))
                            .collect();
                        let keys = top_k(&scores, top).iter().map(|&t| visible[t]).collect();
                        (keys, vec![i])
                    })
                    .collect()
            }
        };
        for (keys, rows) in jobs {
            let sub = |a: &Mat<f64>, idx: &[usize]| {
                Mat::from_fn(idx.len(), a.ncols(), |r, c| a[(idx[r], c)])
            };
            let values = sub(&vh, &keys);
            let problem = SvrProblem::from_attention(sub(&kh, &keys), &values, kernel, epsilon)?;
            let sol = Svr::new(&problem, settings.clone())?.solve();
            view.svrs += 1;
            if view.status == Status::Solved {
                view.status = sol.status;
            }
            let cert = sol.certificate;
            view.max_duality_gap = view.max_duality_gap.max(cert.duality_gap);
            view.max_kkt_residual = view.max_kkt_residual.max(cert.kkt_residual);
            if kernel == SvrKernel::Exp {
                let err = (&problem.values(&sol.beta) - &values).norm_max();
                view.max_value_error = view.max_value_error.max(err);
            }
            let f = problem.predict(&sol.beta, &sub(&qh, &rows))?;
            for (r, &i) in rows.iter().enumerate() {
                for c in 0..dv {
                    view.expansion[(i, h * dv + c)] = f[(r, c)];
                    let diff = (f[(r, c)] - att[(i, h * dv + c)]).abs();
                    view.max_output_difference = view.max_output_difference.max(diff);
                }
            }
        }
    }
    view.attention = att;
    Ok(view)
}

fn row(m: &Mat<f64>, i: usize) -> Vec<f64> {
    (0..m.ncols()).map(|c| m[(i, c)]).collect()
}
