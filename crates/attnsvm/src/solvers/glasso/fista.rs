//! FISTA with group soft-thresholding, backtracking on the Lipschitz constant, and two restarts:
//! the function restart (a step that raises `P` is rejected and the momentum reset, which makes
//! the accepted objective sequence non-increasing) and the gradient restart of O'Donoghue–Candès
//! (`⟨y − x⁺, x⁺ − x⟩ > 0`: the momentum points against the step). "Non-increasing" is up to
//! `ROUNDING·|P|`: below that, `P` is rounding noise while `Z` still converges.
//!
//! Per iteration: one pass over `A` per trial step, which computes `A·x⁺` and, fused into the same
//! pass, `Aᵀg` at the next extrapolated point: its predictions are the same combination of the
//! predictions at `x⁺` and `x` (linearity), known row by row, and the momentum is decided before
//! the pass. A rejected step (function restart) costs one more `Aᵀg`.

use std::time::Instant;

use super::problem::{Certificate, GlassoProblem};
use super::{GlassoSettings, Status};
use crate::linalg::dot;

/// What the engine returns: the point, its predictions, the certificate and the counters.
pub(crate) struct Outcome {
    pub status: Status,
    pub z: Vec<f64>,
    pub predictions: Vec<f64>,
    pub certificate: Certificate,
    pub iterations: usize,
    pub restarts: usize,
    pub backtracks: usize,
    pub lipschitz: f64,
    pub history: Vec<f64>,
    pub message: String,
}

/// `prox_{τβΩ}`: each group `v_{l,k} ↦ max(0, 1 − τβ/‖v_{l,k}‖)·v_{l,k}` (in place).
fn group_soft_threshold(v: &mut [f64], d: usize, thresh: f64) {
    for r in v.chunks_exact_mut(d) {
        let nr = dot(r, r).sqrt();
        let s = if nr > thresh { 1.0 - thresh / nr } else { 0.0 };
        r.iter_mut().for_each(|a| *a *= s);
    }
}

fn is_done(c: &Certificate, beta: f64, tol: f64) -> bool {
    if c.rel_gap.is_nan() {
        // No conjugate: the KKT residuals relative to β decide.
        c.kkt_active.max(c.kkt_inactive) <= tol * beta
    } else {
        c.rel_gap <= tol
    }
}

/// The slack, relative to `|P|`, within which a step counts as non-increasing (a few ulps of `P`).
pub(crate) const ROUNDING: f64 = 1e-14;

pub(crate) fn solve(
    p: &GlassoProblem,
    beta: f64,
    s: &GlassoSettings,
    z0: Vec<f64>,
    lipschitz0: f64,
    observe: &mut dyn FnMut(usize, &[f64]),
) -> Outcome {
    let start = Instant::now();
    let d = p.d;
    let mut lip = lipschitz0;
    let mut x = z0;
    let mut px = p.predict(&x);
    let mut obj_x = p.smooth_value(&px) + beta * p.penalty(&x);
    let mut history = vec![obj_x];
    let (mut y, mut py) = (x.clone(), px.clone());
    let mut t = 1.0f64;
    let (mut restarts, mut backtracks, mut iterations) = (0, 0, 0);
    let mut cert = p.certify(&x, &px, beta);
    let mut status = Status::MaxIterations;
    let mut message = String::new();
    let mut since_check = 0;
    // `Aᵀg` at the current `y` when the last accepted step computed it in its prediction pass.
    let mut grad_y: Option<Vec<f64>> = None;
    if is_done(&cert, beta, s.tol) {
        status = Status::Solved;
    }
    while status != Status::Solved && iterations < s.max_iter {
        if start.elapsed().as_secs_f64() > s.time_limit {
            message = "time limit".into();
            break;
        }
        let momentum = y != x;
        let fy = p.smooth_value(&py);
        let grad = match grad_y.take() {
            Some(g) => g,
            None => p.gradient(&p.dloss(&py)),
        };
        // Backtracking: grow L until the quadratic model majorizes f at the trial point.
        let (xn, pn, fnew, grad_next, against, t_next, mom) = loop {
            let mut xn: Vec<f64> = y.iter().zip(&grad).map(|(a, g)| a - g / lip).collect();
            group_soft_threshold(&mut xn, d, beta / lip);
            // Gradient restart: the momentum direction disagrees with the step just taken. It
            // depends on y, x⁺ and x only, so the next extrapolation is known before the
            // prediction pass, which then also yields the gradient at the next y.
            let against: f64 = y
                .iter()
                .zip(&xn)
                .zip(&x)
                .map(|((yy, a), b)| (yy - a) * (a - b))
                .sum();
            let (t_next, mom) = if against > 0.0 {
                (1.0, 0.0)
            } else {
                let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
                (t_next, (t - 1.0) / t_next)
            };
            let (pn, grad_next) =
                p.predict_and_gradient(&xn, |j, pj| p.dloss_at(j, pj + mom * (pj - px[j])));
            let fnew = p.smooth_value(&pn);
            let (mut lin, mut sq) = (0.0, 0.0);
            for ((a, b), g) in xn.iter().zip(&y).zip(&grad) {
                lin += g * (a - b);
                sq += (a - b) * (a - b);
            }
            let model = fy + lin + 0.5 * lip * sq;
            // Relative slack for rounding in f: without it, L would grow forever near the optimum.
            if fnew <= model + 1e-12 * fy.abs().max(1e-300) || !fnew.is_finite() || lip > 1e300 {
                break (xn, pn, fnew, grad_next, against, t_next, mom);
            }
            lip *= s.backtrack_factor;
            backtracks += 1;
        };
        if !fnew.is_finite() {
            status = Status::NumericalError;
            message = "non-finite objective".into();
            break;
        }
        iterations += 1;
        let obj_n = fnew + beta * p.penalty(&xn);
        // Near the optimum P changes by less than its rounding error while Z (and the certificate)
        // still converge: a step counts as a descent up to ROUNDING·|P|.
        if obj_n > obj_x + ROUNDING * obj_x.abs() {
            if momentum {
                // Function restart: reject the step, continue from x without momentum.
                restarts += 1;
                t = 1.0;
                y.clone_from(&x);
                py.clone_from(&px);
                continue;
            }
            // A plain proximal-gradient step did not descend: rounding has the last word.
            status = Status::InsufficientProgress;
            message = "a proximal gradient step did not decrease the objective".into();
            break;
        }
        if against > 0.0 {
            restarts += 1;
        }
        for k in 0..y.len() {
            y[k] = xn[k] + mom * (xn[k] - x[k]);
        }
        // The same expression as in the prediction pass, so `grad_next` is the gradient at `py`.
        for k in 0..py.len() {
            py[k] = pn[k] + mom * (pn[k] - px[k]);
        }
        grad_y = Some(grad_next);
        t = t_next;
        x = xn;
        px = pn;
        obj_x = obj_n;
        history.push(obj_x);
        observe(iterations, &x);
        since_check += 1;
        if since_check >= s.check_every || iterations >= s.max_iter {
            since_check = 0;
            cert = p.certify(&x, &px, beta);
            if is_done(&cert, beta, s.tol) {
                status = Status::Solved;
            }
        }
    }
    if status != Status::Solved {
        cert = p.certify(&x, &px, beta);
        if is_done(&cert, beta, s.tol) {
            status = Status::Solved;
        }
    }
    Outcome {
        status,
        z: x,
        predictions: px,
        certificate: cert,
        iterations,
        restarts,
        backtracks,
        lipschitz: lip,
        history,
        message,
    }
}
