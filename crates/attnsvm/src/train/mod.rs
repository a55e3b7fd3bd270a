//! Training one attention layer: GD, normalized GD, Polyak step size and Adam, on `W` or on
//! `(K, Q)` with `W = K Qᵀ`, optionally with the head vector `v`; a trajectory recorded on a
//! log-spaced schedule; stop rules. Deterministic for a given seed.
//!
//! Update rules (each parameter tensor θ separately, as the papers' code does):
//!
//! | `opt` | update |
//! |---|---|
//! | `gd` | `θ ← θ − η_k ∇L` |
//! | `ngd` | `θ ← θ − η_k ∇L / (‖∇L‖_F + ε)` (ε = 0: the exact direction) |
//! | `polyak` | `θ ← θ − η_k (L − f*) ∇L / ‖∇L‖²` (‖·‖ over all trained tensors) |
//! | `adam` | Adam (β₁, β₂, ε_adam) on the gradient's plain value |
//!
//! with `η_k = lr · (1 + k)^{−lr_decay}`. With `batch_size` the gradient (and, for Polyak, the
//! loss) of each step is that of a minibatch: stochastic GD, stochastic normalized GD (SNGD) and
//! the stochastic Polyak step. The full risk is still what the trajectory records. Gradients are carried as `e^{s}·G` ([`Scaled`]), so the
//! normalized and Polyak rules stay exact when `‖∇L‖` is far below the smallest f64.

mod batch;
mod optim;
mod trace;

pub use optim::{Optimizer, PolyakTarget};
pub use trace::{LogSchedule, Record, Trajectory};

use std::time::Instant;

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::linalg::{fro_norm, one_minus_corr};
use crate::model::{Loss, Objective, Param, Scaled};

/// How the parameters start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// `W = 0`; for (K,Q): `Q = 0`, `K = 0.1·N(0,1)` (the papers' visualization runs; `K = Q = 0`
    /// is a saddle).
    #[default]
    Zero,
    /// Every entry `U(−1/√d, 1/√d)` (PyTorch's `nn.Linear` default, the papers' other runs).
    Random,
}

/// Training settings. Every field has a default; `check()` validates them.
///
/// | field | default | meaning | valid |
/// |---|---|---|---|
/// | `param` | `w` | train `W`, or `(K,Q)` with `W = KQᵀ` | |
/// | `opt` | `ngd` | update rule (module table) | |
/// | `lr` | 0.1 | step size η (Polyak: a multiplier, 1 is the classical rule) | > 0 |
/// | `lr_decay` | 0 | `η_k = lr·(1+k)^{−lr_decay}` | ≥ 0 |
/// | `iters` | 1000 | maximum number of updates | |
/// | `init` | `zero` | initialization | |
/// | `seed` | 0 | seed of the initialization (and of a generated ReLU head) | |
/// | `ngd_eps` | 0 | ε in `∇/(‖∇‖+ε)`; the papers' code uses 2.22e-16 (it stalls on saturation) | ≥ 0 |
/// | `polyak_target` | `zero` | `f*` of the Polyak step: 0, or the infimum `L*` (fixed linear head) | |
/// | `kq_ridge` | 0 | λ of `λ(‖K‖²+‖Q‖²)` (the papers' tiny-λ workaround uses 2.22e-16) | ≥ 0 |
/// | `train_v` | false | also train the head vector `v` (linear and λ heads) | |
/// | `loss_tol` | none | stop when `L ≤ loss_tol` | > 0 |
/// | `grad_tol` | none | stop when `‖∇L‖ ≤ grad_tol` | > 0 |
/// | `batch_size` | none | sequences per step (minibatch training, drawn per epoch without replacement); none or ≥ n: full batch | ≥ 1 |
/// | `points_per_decade` | 20 | trajectory records per decade of iterations (all of 0..=10 kept) | ≥ 1 |
/// | `adam_beta1`, `adam_beta2`, `adam_eps` | 0.9, 0.999, 1e-8 | Adam's constants | |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub param: Param,
    pub opt: Optimizer,
    pub lr: f64,
    pub lr_decay: f64,
    pub iters: usize,
    pub init: Init,
    pub seed: u64,
    pub ngd_eps: f64,
    pub polyak_target: PolyakTarget,
    pub kq_ridge: f64,
    pub train_v: bool,
    pub loss_tol: Option<f64>,
    pub grad_tol: Option<f64>,
    pub batch_size: Option<usize>,
    pub points_per_decade: usize,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            param: Param::W,
            opt: Optimizer::Ngd,
            lr: 0.1,
            lr_decay: 0.0,
            iters: 1000,
            init: Init::Zero,
            seed: 0,
            ngd_eps: 0.0,
            polyak_target: PolyakTarget::Zero,
            kq_ridge: 0.0,
            train_v: false,
            loss_tol: None,
            grad_tol: None,
            batch_size: None,
            points_per_decade: 20,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
        }
    }
}

impl TrainSettings {
    /// Validate the settings against the loss and head they will be used with.
    pub fn check(&self, loss: Loss, linear_head: bool) -> Result<()> {
        let pos = |name: &str, x: f64| {
            if x > 0.0 && x.is_finite() {
                Ok(())
            } else {
                Err(invalid!("{name} must be a positive number (got {x})"))
            }
        };
        let nonneg = |name: &str, x: f64| {
            if x >= 0.0 && x.is_finite() {
                Ok(())
            } else {
                Err(invalid!("{name} must be ≥ 0 (got {x})"))
            }
        };
        pos("lr", self.lr)?;
        nonneg("lr_decay", self.lr_decay)?;
        nonneg("ngd_eps", self.ngd_eps)?;
        nonneg("kq_ridge", self.kq_ridge)?;
        if let Some(x) = self.loss_tol {
            pos("loss_tol", x)?;
        }
        if let Some(x) = self.grad_tol {
            pos("grad_tol", x)?;
        }
        if self.batch_size == Some(0) {
            return Err(invalid!("batch_size must be ≥ 1"));
        }
        if self.points_per_decade == 0 {
            return Err(invalid!("points_per_decade must be ≥ 1"));
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            return Err(invalid!("adam betas must lie in [0, 1)"));
        }
        pos("adam_eps", self.adam_eps)?;
        if self.opt == Optimizer::Polyak {
            if loss == Loss::Corr {
                return Err(invalid!(
                    "the Polyak step needs a loss bounded below; the correlation loss is not"
                ));
            }
            if self.polyak_target == PolyakTarget::Infimum && (!linear_head || self.train_v) {
                return Err(invalid!(
                    "polyak_target = infimum needs a fixed linear head (its L* is known only then)"
                ));
            }
        }
        Ok(())
    }
}

/// The trained parameters. `w` is always the effective `W` (`K Qᵀ` for (K,Q)).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub w: Mat<f64>,
    pub kq: Option<(Mat<f64>, Mat<f64>)>,
    pub v: Vec<f64>,
}

impl State {
    /// The initial state of `settings` for dimension `d` and head vector `v`.
    pub fn init(settings: &TrainSettings, d: usize, v: &[f64]) -> State {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let bound = 1.0 / (d as f64).sqrt();
        let mut uniform = || Mat::from_fn(d, d, |_, _| rng.random_range(-bound..bound));
        let (w, kq) = match (settings.param, settings.init) {
            (Param::W, Init::Zero) => (Mat::zeros(d, d), None),
            (Param::W, Init::Random) => (uniform(), None),
            (Param::Kq, init) => {
                let (k, q) = match init {
                    Init::Random => (uniform(), uniform()),
                    Init::Zero => (
                        Mat::from_fn(d, d, |_, _| 0.1 * rng.sample::<f64, _>(StandardNormal)),
                        Mat::zeros(d, d),
                    ),
                };
                (&k * q.transpose(), Some((k, q)))
            }
        };
        State {
            w,
            kq,
            v: v.to_vec(),
        }
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The iteration budget was used.
    Iterations,
    /// `L ≤ loss_tol`.
    LossTolerance,
    /// `‖∇L‖ ≤ grad_tol`.
    GradientTolerance,
    /// The gradient is exactly zero (a stationary point, e.g. `K = Q = 0`).
    ZeroGradient,
    /// A non-finite value appeared (a step size too large for plain GD, say).
    NonFinite,
    /// The caller asked to stop (Ctrl-C); what was done so far is kept.
    Interrupted,
}

/// What a training run returns.
#[derive(Debug, Clone)]
pub struct TrainResult {
    pub state: State,
    pub trajectory: Trajectory,
    pub stop: StopReason,
    /// Updates performed.
    pub iterations: usize,
    pub seconds: f64,
}

/// Train from `state` with `settings`. `reference` (e.g. `W_mm`) adds the correlation columns.
/// `keep_going(k)` is called before update `k`; returning `false` stops with `Interrupted`.
pub fn train(
    objective: &mut Objective,
    settings: &TrainSettings,
    mut state: State,
    reference: Option<&Mat<f64>>,
    mut keep_going: impl FnMut(usize) -> bool,
) -> Result<TrainResult> {
    let d = objective.instance().d;
    settings.check(objective.loss_kind(), objective.head().is_linear())?;
    if let Some(r) = reference {
        if r.shape() != (d, d) {
            return Err(invalid!(
                "reference matrix is {}×{}, expected {d}×{d}",
                r.nrows(),
                r.ncols()
            ));
        }
    }
    let start = Instant::now();
    let schedule = LogSchedule::new(settings.iters, settings.points_per_decade);
    let mut trajectory = Trajectory::default();
    let mut opt = optim::OptimizerState::new(settings);
    let polyak = settings.opt == Optimizer::Polyak;
    let mut batches =
        batch::Batches::new(settings.batch_size, objective.instance().n, settings.seed);
    let mut k = 0;
    let stop = loop {
        // log L and log(L − L*) only where they are recorded or drive the step. With minibatches
        // the full risk is evaluated only where it is recorded (and where a stop rule needs it).
        let scheduled = schedule.contains(k) || k == settings.iters;
        let full_batch = batches.is_none();
        let mut eval = (full_batch || scheduled).then(|| {
            objective.set_diagnostics(scheduled || polyak);
            objective.evaluate(&state.w, &state.v, settings.train_v)
        });
        let grads = eval.as_ref().map(|e| gradients(settings, &state, e));
        let log_grad_norm = grads.as_deref().map(optim::log_joint_norm);
        let stop =
            if fro_norm(&state.w).is_nan() || eval.as_ref().is_some_and(|e| !e.loss.is_finite()) {
                Some(StopReason::NonFinite)
            } else if k == settings.iters {
                Some(StopReason::Iterations)
            } else if settings
                .loss_tol
                .zip(eval.as_ref())
                .is_some_and(|(tol, e)| e.loss <= tol)
            {
                Some(StopReason::LossTolerance)
            } else if settings
                .grad_tol
                .zip(log_grad_norm)
                .is_some_and(|(tol, g)| g <= tol.ln())
            {
                Some(StopReason::GradientTolerance)
            } else if log_grad_norm == Some(f64::NEG_INFINITY) {
                Some(StopReason::ZeroGradient)
            } else if !keep_going(k) {
                Some(StopReason::Interrupted)
            } else {
                None
            };
        if stop.is_some() && !scheduled && !(polyak && full_batch) {
            objective.set_diagnostics(true);
            eval = Some(objective.evaluate(&state.w, &state.v, settings.train_v));
        }
        if let (true, Some(e)) = (stop.is_some() || scheduled, &eval) {
            let log_grad_norm = log_grad_norm
                .unwrap_or_else(|| optim::log_joint_norm(&gradients(settings, &state, e)));
            trajectory.records.push(Record {
                iter: k,
                loss: e.loss,
                log_loss: e.log_loss,
                log_excess_loss: e.log_excess_loss,
                log_grad_norm,
                w_norm: fro_norm(&state.w),
                corr: reference.map(|r| crate::linalg::corr(&state.w, r)),
                one_minus_corr: reference.map(|r| one_minus_corr(&state.w, r)),
                min_max_prob: e.min_max_prob,
                mean_max_prob: e.mean_max_prob,
                log_max_off_mass: e.log_max_off_mass,
                seconds: start.elapsed().as_secs_f64(),
                selected: e.selected.clone(),
            });
        }
        if let Some(stop) = stop {
            break stop;
        }
        let log_gap = |e: &crate::model::Evaluation| match settings.polyak_target {
            PolyakTarget::Zero => e.log_loss,
            PolyakTarget::Infimum => e.log_excess_loss,
        };
        match (&mut batches, eval, grads) {
            (None, Some(e), Some(g)) => opt.step(settings, k, &mut state, &g, log_gap(&e)),
            (Some(b), ..) => {
                let sub = b.draw(objective.instance());
                let mut o = objective.on(&sub)?;
                o.set_diagnostics(polyak);
                let e = o.evaluate(&state.w, &state.v, settings.train_v);
                let g = gradients(settings, &state, &e);
                opt.step(settings, k, &mut state, &g, log_gap(&e));
            }
            _ => unreachable!("full-batch training evaluates the risk at every step"),
        }
        k += 1;
    };
    objective.set_diagnostics(true);
    Ok(TrainResult {
        state,
        trajectory,
        stop,
        iterations: k,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The gradients of the trained tensors, in the order [W] or [K, Q], then v if trained.
fn gradients(
    settings: &TrainSettings,
    state: &State,
    eval: &crate::model::Evaluation,
) -> Vec<Scaled> {
    let g = &eval.grad_w;
    let mut out = match &state.kq {
        None => vec![g.clone()],
        Some((k, q)) => {
            let mut gk = Scaled {
                mat: &g.mat * q,
                log_scale: g.log_scale,
            };
            let mut gq = Scaled {
                mat: g.mat.transpose() * k,
                log_scale: g.log_scale,
            };
            if settings.kq_ridge > 0.0 {
                let lr = (2.0 * settings.kq_ridge).ln();
                gk = gk.add_scaled(k, lr);
                gq = gq.add_scaled(q, lr);
            }
            vec![gk.normalized(), gq.normalized()]
        }
    };
    if let Some(gv) = &eval.grad_v {
        out.push(gv.clone());
    }
    out
}
