//! The β path of program (9) on the student–teacher training data (B5.6, B5.7, B5.9): from the
//! exact `β_max` (where `Z = 0`) down four decades, warm-started; at every β the active tokens
//! (before and after the Carathéodory reduction), the loss, the errors and the certificate.

use serde::Serialize;

use super::{task, Regime, Task, TaskConfig};
use crate::error::{Error, Result};
use crate::experiments::Claim;
use crate::solvers::glasso::recover::caratheodory;
use crate::solvers::glasso::{Glasso, GlassoSettings, Status};

/// One β of the path.
#[derive(Debug, Clone, Serialize)]
pub struct PathPoint {
    pub beta: f64,
    /// `β / β_max`.
    pub beta_frac: f64,
    pub status: Status,
    pub rel_gap: f64,
    pub active_tokens: usize,
    /// Active tokens after the Carathéodory reduction (≤ min(n, N + 1)).
    pub reduced_tokens: usize,
    /// `|P(reduced) − P(Z)| / P(Z)`.
    pub reduction_change: f64,
    /// The training loss `Σ (ŷ − y)²`.
    pub loss: f64,
    pub objective: f64,
    pub train_mse: f64,
    pub valid_mse: f64,
    pub test_mse: f64,
    /// `‖z_k‖` per token.
    pub row_norms: Vec<f64>,
    pub iterations: usize,
    pub seconds: f64,
}

/// The path and its endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct BetaPath {
    pub config: TaskConfig,
    pub beta_max: f64,
    /// `argmax_k ‖∇_k f(0)‖`: the token that activates first.
    pub argmax_token: usize,
    /// Active tokens of the solve at `β = β_max` (0 expected) and just below, at `(1 − 1e-3)·β_max`
    /// (1 expected: the argmax token).
    pub active_at_max: usize,
    pub active_below_max: Vec<usize>,
    pub points: Vec<PathPoint>,
    /// The index of the point with the smallest validation error.
    pub best: usize,
    /// `σ²`, the test MSE of the teacher itself.
    pub noise_floor: f64,
}

/// On the [`Regime::Content`] task: `β_k = β_max·10^{−4k/(K−1)}`, `K` = 10 (quick) or 25; `progress(done, total)` returning `false`
/// stops with [`Error::Interrupted`].
pub fn beta_path(quick: bool, progress: &dyn Fn(usize, usize) -> bool) -> Result<BetaPath> {
    let cfg = TaskConfig::new(quick, Regime::Content);
    let t = task(&cfg)?;
    run_path(&t, if quick { 10 } else { 25 }, progress)
}

/// The path on a drawn task with `k` values of β.
pub fn run_path(t: &Task, k: usize, progress: &dyn Fn(usize, usize) -> bool) -> Result<BetaPath> {
    let (train, valid, test) = (
        t.train.problem(&t.config)?,
        t.valid.problem(&t.config)?,
        t.test.problem(&t.config)?,
    );
    let settings = GlassoSettings {
        tol: 1e-10,
        ..GlassoSettings::default()
    };
    let beta_max = train.beta_max();
    let grad0 = train.gradient(&train.dloss(&vec![0.0; train.n_samples]));
    let norms0 = train.group_norms(&grad0);
    let argmax_token = (0..norms0.len())
        .max_by(|&a, &b| norms0[a].total_cmp(&norms0[b]))
        .unwrap_or(0);
    let at_max = Glasso::new(&train, beta_max, settings.clone())?.solve();
    let below = Glasso::new(&train, (1.0 - 1e-3) * beta_max, settings.clone())?.solve();
    let active_below_max = (0..below.row_norms.len())
        .filter(|&j| below.row_norms[j] > 0.0)
        .collect();
    let betas: Vec<f64> = (0..k)
        .map(|j| beta_max * 10f64.powf(-4.0 * j as f64 / (k - 1).max(1) as f64))
        .collect();
    let mut points = Vec::with_capacity(k);
    // One β at a time (each warm-started from the last), so Ctrl-C keeps a responsive bar.
    let mut warm: Option<Vec<f64>> = None;
    for (j, &beta) in betas.iter().enumerate() {
        if !progress(j, k) {
            return Err(Error::Interrupted);
        }
        let sol = match &warm {
            None => Glasso::new(&train, beta, settings.clone())?.solve(),
            Some(z) => Glasso::new(&train, beta, settings.clone())?
                .with_warm_start(z)?
                .solve(),
        };
        let reduced = caratheodory(&train, &sol.z)?;
        let reduced_tokens = train
            .group_norms(&reduced)
            .iter()
            .filter(|&&r| r > 0.0)
            .count();
        let p_red = train.objective(&reduced, beta);
        points.push(PathPoint {
            beta,
            beta_frac: beta / beta_max,
            status: sol.status,
            rel_gap: sol.certificate.rel_gap,
            active_tokens: sol.active_tokens,
            reduced_tokens,
            reduction_change: (p_red - sol.objective).abs() / sol.objective.abs().max(1e-300),
            loss: sol.loss,
            objective: sol.objective,
            train_mse: t.train.mse(&sol.predictions),
            valid_mse: t.valid.mse(&valid.predict(&sol.z)),
            test_mse: t.test.mse(&test.predict(&sol.z)),
            row_norms: sol.row_norms.clone(),
            iterations: sol.info.iterations,
            seconds: sol.info.seconds,
        });
        warm = Some(sol.z);
    }
    progress(k, k);
    let best = (0..points.len())
        .min_by(|&a, &b| points[a].valid_mse.total_cmp(&points[b].valid_mse))
        .unwrap_or(0);
    Ok(BetaPath {
        config: t.config.clone(),
        beta_max,
        argmax_token,
        active_at_max: at_max.active_tokens,
        active_below_max,
        points,
        best,
        noise_floor: t.sigma * t.sigma,
    })
}

impl BetaPath {
    /// B5.6, B5.7, B5.8, B5.9.
    pub fn claims(&self) -> Vec<Claim> {
        let n = self.config.tokens;
        let nn = self.config.n_train;
        let pts = &self.points;
        let solved = pts.iter().filter(|p| p.status == Status::Solved).count();
        let worst_gap = pts.iter().map(|p| p.rel_gap).fold(0.0, f64::max);
        let bound = n.min(nn + 1);
        let worst_red = pts.iter().map(|p| p.reduced_tokens).max().unwrap_or(0);
        let worst_change = pts.iter().map(|p| p.reduction_change).fold(0.0, f64::max);
        // The loss may rise by the solver's tolerance between neighbouring β.
        let rises = pts
            .windows(2)
            .filter(|w| w[1].loss > w[0].loss + 1e-8 * w[0].objective.abs())
            .count();
        let last = pts.last();
        vec![
            Claim::check(
                "B5.6: Z* = 0 at β = β_max, and just below β_max exactly one token row — the argmax of ‖Σ_i ∂L(0, y_i) x_ik‖ — is nonzero",
                format!(
                    "β_max = {:.6}; active tokens at β_max: {}; at (1 − 1e-3)·β_max: {:?}; argmax token {}",
                    self.beta_max, self.active_at_max, self.active_below_max, self.argmax_token
                ),
                self.active_at_max == 0 && self.active_below_max == [self.argmax_token],
            ),
            Claim::check(
                "B5.8: every point of the path is certified (relative duality gap ≤ 1e-10)",
                format!("{solved} of {} solved; largest relative gap {worst_gap:.1e}", pts.len()),
                solved == pts.len(),
            ),
            Claim::check(
                format!("B5.7: after the Carathéodory reduction at most min(n, N + 1) = {bound} tokens are active, and the objective is unchanged"),
                format!("at most {worst_red} active tokens after reduction; largest relative objective change {worst_change:.1e}"),
                worst_red <= bound && worst_change <= 1e-9,
            ),
            Claim::check(
                "B5.9: the training loss is non-increasing as β decreases (up to the solver tolerance), and the active count grows from 0",
                format!(
                    "{rises} rises of the loss over {} steps; active tokens {} → {} over β/β_max = 1 … {:.0e}",
                    pts.len().saturating_sub(1),
                    pts.first().map_or(0, |p| p.active_tokens),
                    last.map_or(0, |p| p.active_tokens),
                    last.map_or(0.0, |p| p.beta_frac)
                ),
                rises == 0
                    && pts.first().is_some_and(|p| p.active_tokens == 0)
                    && last.is_some_and(|p| p.active_tokens > 0),
            ),
            Claim::info(
                "the β chosen by validation error (used by the student–teacher experiment)",
                format!(
                    "β/β_max = {:.2e}: {} active tokens of {n}, test MSE {:.4} (noise floor σ² = {:.4})",
                    pts[self.best].beta_frac,
                    pts[self.best].active_tokens,
                    pts[self.best].test_mse,
                    self.noise_floor
                ),
            ),
        ]
    }
}
