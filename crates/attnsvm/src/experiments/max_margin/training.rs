//! Training loops of the prompt model (spec §3.1): `p` alone (W and v fixed) or `(v, p)` jointly.
//!
//! | method | update of each trained tensor θ ∈ {p, v} |
//! |---|---|
//! | `Ngd` | `θ ← θ − η_θ ∇_θL / (‖∇_θL‖ + ε_θ)`, each tensor normalized by its own norm |
//! | `Gd`  | `θ ← θ − η_θ ∇_θL` |
//!
//! `ε = 0` (the default) is the exact direction of §3.7: the step has length exactly η however small
//! `‖∇‖` is (the gradient is a [`Scaled`](crate::model::Scaled) value). The papers' ε (1e-9, 1e-12,
//! 1e-19) are options; with them the step is `η·‖∇‖/(‖∇‖+ε)`, computed from `log‖∇‖` so it does not
//! overflow, and it shrinks once `‖∇‖ ≲ ε` as in the official code.

use serde::Serialize;

use super::programs::{corr, one_minus_corr};
use crate::model::prompt::PromptModel;

/// The official notebooks' NGD ε (spec §3.1), for runs that imitate them: single-input, loss
/// dependence and v in joint training.
pub const PAPER_EPS: f64 = 1e-9;
/// The multi-input notebook's ε.
pub const PAPER_EPS_MULTI: f64 = 1e-12;
/// The joint-training notebook's ε for p.
pub const PAPER_EPS_JOINT_P: f64 = 1e-19;

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Ngd,
    Gd,
}

/// Settings of a run.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `method` | `Ngd` | the update rule |
/// | `eta_p`, `eta_v` | 0.1 | step sizes |
/// | `eps_p`, `eps_v` | 0 | NGD's ε (0: the exact direction) |
/// | `steps` | 1000 | updates |
/// | `train_v` | `false` | train `v` too (joint training) |
/// | `dense_until` | 1000 | record every step up to here, then every `sparse_every` |
/// | `sparse_every` | 100 | the record spacing after `dense_until` |
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainOpts {
    pub method: Method,
    pub eta_p: f64,
    pub eta_v: f64,
    pub eps_p: f64,
    pub eps_v: f64,
    pub steps: usize,
    pub train_v: bool,
    pub dense_until: usize,
    pub sparse_every: usize,
}

impl Default for TrainOpts {
    fn default() -> Self {
        TrainOpts {
            method: Method::Ngd,
            eta_p: 0.1,
            eta_v: 0.1,
            eps_p: 0.0,
            eps_v: 0.0,
            steps: 1000,
            train_v: false,
            dense_until: 1000,
            sparse_every: 100,
        }
    }
}

/// The state after `step` updates.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub step: usize,
    pub p: Vec<f64>,
    pub v: Vec<f64>,
    pub p_norm: f64,
    pub v_norm: f64,
    /// Mean over inputs of the softmax probability of the selected token `α_i`.
    pub prob_selected: f64,
    /// Mean over inputs of `max_t s_it`.
    pub prob_max: f64,
    pub loss: f64,
    pub log_loss: Option<f64>,
    /// `corr(p, ·)` with each reference direction of `p`.
    pub corr_p: Vec<f64>,
    /// `corr(v, ·)` with each reference direction of `v`.
    pub corr_v: Vec<f64>,
    /// `1 − corr(p, ·)`, computed as `½‖p/‖p‖ − r/‖r‖‖²` so it keeps its precision below 1e-16.
    pub one_minus_corr_p: Vec<f64>,
    /// `1 − corr(v, ·)`, likewise.
    pub one_minus_corr_v: Vec<f64>,
}

/// A recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct Trajectory {
    pub records: Vec<Record>,
}

impl Trajectory {
    /// The record of step `k` (`None` when it was not recorded).
    pub fn at(&self, k: usize) -> Option<&Record> {
        self.records
            .binary_search_by_key(&k, |r| r.step)
            .ok()
            .map(|i| &self.records[i])
    }

    pub fn last(&self) -> &Record {
        self.records.last().expect("a trajectory has its step 0")
    }
}

/// The references a run is compared with, and the selected tokens.
pub struct Refs<'a> {
    pub alpha: &'a [usize],
    pub p: &'a [Vec<f64>],
    pub v: &'a [Vec<f64>],
}

/// Train from `(p0, v0)`; `v` stays fixed unless `opts.train_v`.
pub fn train(
    model: &PromptModel,
    opts: &TrainOpts,
    p0: &[f64],
    v0: &[f64],
    refs: &Refs,
) -> Trajectory {
    let (mut p, mut v) = (p0.to_vec(), v0.to_vec());
    let mut records = Vec::new();
    for k in 0..=opts.steps {
        let e = model.evaluate(&p, &v);
        if k <= opts.dense_until || k % opts.sparse_every.max(1) == 0 || k == opts.steps {
            records.push(record(model, k, &p, &v, &e, refs));
        }
        if k == opts.steps {
            break;
        }
        step(&mut p, &e.grad_p, opts.method, opts.eta_p, opts.eps_p);
        if opts.train_v {
            step(&mut v, &e.grad_v, opts.method, opts.eta_v, opts.eps_v);
        }
    }
    Trajectory { records }
}

fn step(theta: &mut [f64], g: &crate::model::Scaled, method: Method, eta: f64, eps: f64) {
    match method {
        Method::Gd => {
            let s = g.log_scale.exp();
            for (j, th) in theta.iter_mut().enumerate() {
                *th -= eta * s * g.mat[(j, 0)];
            }
        }
        Method::Ngd => {
            let Some(dir) = g.direction() else { return };
            // ‖∇‖/(‖∇‖ + ε) = 1/(1 + ε e^{−log‖∇‖}).
            let factor = if eps > 0.0 {
                1.0 / (1.0 + eps * (-g.log_norm()).exp())
            } else {
                1.0
            };
            for (j, th) in theta.iter_mut().enumerate() {
                *th -= eta * factor * dir[(j, 0)];
            }
        }
    }
}

fn record(
    model: &PromptModel,
    k: usize,
    p: &[f64],
    v: &[f64],
    e: &crate::model::prompt::PromptEval,
    refs: &Refs,
) -> Record {
    let (n, t) = (model.n, model.t);
    let row = |i: usize| &e.probs[i * t..(i + 1) * t];
    let prob_selected = (0..n).map(|i| row(i)[refs.alpha[i]]).sum::<f64>() / n as f64;
    let prob_max = (0..n)
        .map(|i| row(i).iter().copied().fold(0.0, f64::max))
        .sum::<f64>()
        / n as f64;
    let norm = |a: &[f64]| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    Record {
        step: k,
        p: p.to_vec(),
        v: v.to_vec(),
        p_norm: norm(p),
        v_norm: norm(v),
        prob_selected,
        prob_max,
        loss: e.loss,
        log_loss: e.log_loss,
        corr_p: refs.p.iter().map(|r| corr(p, r)).collect(),
        corr_v: refs.v.iter().map(|r| corr(v, r)).collect(),
        one_minus_corr_p: refs.p.iter().map(|r| one_minus_corr(p, r)).collect(),
        one_minus_corr_v: refs.v.iter().map(|r| one_minus_corr(v, r)).collect(),
    }
}
