//! The path loop: warm-started projected gradient on the log-domain merit, one radius at a time
//! (algorithm and certificate in the module docs of [`super`]).

use std::time::Instant;

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::project::{project_fro_ball, project_nuclear_ball};
use super::theta::Theta;
use super::{log_norm, Ball, PathPoint, PathResult, RegPath, Status};
use crate::linalg::{corr, fro_dot, fro_norm, one_minus_corr};
use crate::model::{Evaluation, Loss};
use crate::solvers::svm::{nuclear_norm, op_norm};

/// Relative slack under which a constraint counts as active.
const ACTIVE: f64 = 1e-9;
/// Smallest step length, relative to ρ, before the line search gives up.
const MIN_STEP: f64 = 1e-15;

/// Which monotone transform of the risk is minimized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merit {
    /// `log(L − L*)` (linear head).
    Excess,
    /// `log L`.
    Log,
    /// `L` (correlation loss with a nonlinear head: no logarithm).
    Raw,
}

/// An evaluated iterate.
struct Point {
    theta: Theta,
    w: Mat<f64>,
    eval: Evaluation,
    merit: f64,
    /// `∇_θ L/‖∇_θ L‖_F` (the direction of `∇_θ m` too); `None` for a zero gradient.
    dir: Option<Theta>,
    /// `log ‖∇_θ L‖_F`.
    log_grad: f64,
    /// `log ‖∇_θ m‖_F`.
    log_merit_grad: f64,
}

struct Run<'r, 'o, 'a> {
    path: &'r mut RegPath<'o, 'a>,
    merit: Merit,
    v: Vec<f64>,
    evaluations: usize,
    start: Instant,
    /// The last accepted Frank–Wolfe step (nuclear ball).
    fw_gamma: f64,
}

pub(super) fn run(path: &mut RegPath) -> PathResult {
    let start = Instant::now();
    path.objective.set_diagnostics(true);
    let merit = if path.objective.head().is_linear() {
        Merit::Excess
    } else if path.objective.loss_kind() != Loss::Corr {
        Merit::Log
    } else {
        Merit::Raw
    };
    let v = path.objective.instance().v.clone();
    let radii = path.problem.radii.clone();
    let mut run = Run {
        path,
        merit,
        v,
        evaluations: 0,
        start,
        fw_gamma: 1.0,
    };
    let mut theta = run.initial(radii[0]);
    let mut t = run.path.settings.step_init;
    let mut points = Vec::with_capacity(radii.len());
    let mut iterations = 0;
    let mut status = Status::Solved;
    for (k, &r) in radii.iter().enumerate() {
        if k > 0 {
            let c = r / radii[k - 1];
            theta = theta.scale(if run.path.problem.ball == Ball::Kq {
                c.sqrt()
            } else {
                c
            });
        }
        if run.out_of_time() {
            status = status_or(status, Status::MaxIterations);
            break;
        }
        let t0 = Instant::now();
        let evals0 = run.evaluations;
        let (x, st, iters) = run.solve_radius(theta, r, &mut t);
        iterations += iters;
        status = status_or(status, st);
        let point = run.report(&x, r, st, iters, run.evaluations - evals0, t0);
        points.push(point);
        theta = x.theta;
    }
    PathResult {
        status,
        points,
        iterations,
        evaluations: run.evaluations,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The first status that is not `Solved`.
fn status_or(acc: Status, new: Status) -> Status {
    if acc == Status::Solved {
        new
    } else {
        acc
    }
}

impl Run<'_, '_, '_> {
    fn out_of_time(&self) -> bool {
        self.start.elapsed().as_secs_f64() > self.path.settings.time_limit
    }

    /// The Frobenius radius of the feasible set in θ.
    fn rho(&self, r: f64) -> f64 {
        match self.path.problem.ball {
            Ball::Kq => (2.0 * r).sqrt(),
            _ => r,
        }
    }

    /// The start of the first radius (module docs).
    fn initial(&self, r: f64) -> Theta {
        let d = self.path.objective.instance().d;
        match (self.path.problem.ball, &self.path.cone) {
            (Ball::Kq, _) => {
                let m = self.path.settings.kq_width.unwrap_or(d);
                let mut rng = ChaCha8Rng::seed_from_u64(self.path.settings.seed);
                let mut gauss = || Mat::from_fn(d, m, |_, _| rng.sample::<f64, _>(StandardNormal));
                let (k, q) = (gauss(), gauss());
                let th = Theta::Kq(k, q);
                let c = (2.0 * r).sqrt() / th.norm();
                th.scale(c)
            }
            (_, Some(cone)) => Theta::W(Mat::from_fn(d, d, |i, j| r * cone.axis()[(i, j)])),
            _ => Theta::W(Mat::zeros(d, d)),
        }
    }

    fn project(&self, theta: &Theta, r: f64) -> Theta {
        match (theta, self.path.problem.ball, &self.path.cone) {
            (Theta::W(w), Ball::Frobenius, Some(cone)) => Theta::W(cone.project_with_ball(w, r)),
            (Theta::W(w), Ball::Frobenius, None) => Theta::W(project_fro_ball(w, r)),
            (Theta::W(w), Ball::Nuclear, _) => Theta::W(project_nuclear_ball(w, r)),
            (th, ..) => {
                let (n, rho) = (th.norm(), self.rho(r));
                if n > rho {
                    th.scale(rho / n)
                } else {
                    th.clone()
                }
            }
        }
    }

    fn point(&mut self, theta: Theta) -> Point {
        let w = theta.effective();
        let eval = self.path.objective.evaluate(&w, &self.v, false);
        self.evaluations += 1;
        let (dir, log_grad) = theta.gradient(&eval.grad_w);
        let (merit, log_merit_grad) = match self.merit {
            Merit::Excess => {
                let m = eval.log_excess_loss.unwrap_or(f64::NAN);
                (m, log_grad - m)
            }
            Merit::Log => {
                let m = eval.log_loss.unwrap_or(f64::NAN);
                (m, log_grad - m)
            }
            Merit::Raw => (eval.loss, log_grad),
        };
        Point {
            theta,
            w,
            eval,
            merit,
            dir,
            log_grad,
            log_merit_grad,
        }
    }

    /// Whether the ball constraint and the cone constraint hold with equality.
    fn active(&self, x: &Point, r: f64) -> (bool, Option<bool>) {
        let ball = match (self.path.problem.ball, &x.theta) {
            (Ball::Frobenius, _) => fro_norm(&x.w) >= r * (1.0 - ACTIVE),
            (Ball::Nuclear, _) => nuclear_norm(&x.w) >= r * (1.0 - ACTIVE),
            (Ball::Kq, th) => 0.5 * th.norm().powi(2) >= r * (1.0 - ACTIVE),
        };
        let cone = self
            .path
            .cone
            .as_ref()
            .map(|c| c.cosine(&x.w) <= c.cos_half_angle() + ACTIVE);
        (ball, cone)
    }

    /// The stationarity residual of the module table.
    fn residual(&self, x: &Point, r: f64) -> f64 {
        let Some(dir) = &x.dir else {
            return 0.0;
        };
        let (ball, cone) = self.active(x, r);
        if !ball && cone != Some(true) {
            return x.log_grad.exp();
        }
        if cone.is_some() {
            // The gradient mapping of the unit direction, at a step far below the curvature scale.
            let h = 1e-7 * r;
            let y = self.project(&x.theta.combine(1.0, dir, -h), r);
            let g = y.combine(1.0, &x.theta, -1.0).norm() / h;
            let g2 = (g * g).min(1.0);
            return g2 / (1.0 + (1.0 - g2).sqrt());
        }
        match (self.path.problem.ball, dir) {
            (Ball::Nuclear, Theta::W(g)) => {
                let align = -fro_dot(g, &x.w) / (op_norm(g) * nuclear_norm(&x.w));
                1.0 - align
            }
            _ => {
                // 1 − ⟨−Ĝ, θ̂⟩ = ½‖θ̂ + Ĝ‖², free of cancellation.
                let u = x.theta.scale(1.0 / x.theta.norm()).combine(1.0, dir, 1.0);
                0.5 * u.dot(&u)
            }
        }
    }

    /// The Armijo rule on the merit, or, when the merit's change is below its rounding level, on the
    /// trapezoid estimate of the change from the exact gradient directions.
    fn accept(&self, x: &Point, y: &Point, s: &Theta, a: f64) -> bool {
        let sigma = self.path.settings.armijo;
        let dm = y.merit - x.merit;
        if dm.is_nan() {
            return false;
        }
        let noise = 64.0 * f64::EPSILON * x.merit.abs().max(y.merit.abs()).max(1.0);
        if dm.abs() > noise {
            return dm <= sigma * x.log_merit_grad.exp() * a;
        }
        let Some(dy) = &y.dir else {
            return true;
        };
        let b = (y.log_merit_grad - x.log_merit_grad).exp() * dy.dot(s);
        !b.is_nan() && 0.5 * (a + b) <= sigma * a
    }

    /// Projected gradient at radius `r` from `theta0`; `t` (relative step) is carried over.
    fn solve_radius(&mut self, theta0: Theta, r: f64, t: &mut f64) -> (Point, Status, usize) {
        let s = &self.path.settings;
        let (tol, max_iter, grow, shrink) = (s.tol, s.max_iter, s.step_grow, s.step_shrink);
        let rho = self.rho(r);
        let start = self.project(&theta0, r);
        let mut x = self.point(start);
        let mut iters = 0;
        loop {
            let res = self.residual(&x, r);
            if res <= tol {
                return (x, Status::Solved, iters);
            }
            if res.is_nan() || x.merit.is_nan() || x.merit == f64::INFINITY {
                return (x, Status::NumericalError, iters);
            }
            if iters >= max_iter || self.out_of_time() {
                return (x, Status::MaxIterations, iters);
            }
            let dir = x.dir.clone().expect("a zero gradient has residual 0");
            let next = loop {
                let y = self.project(&x.theta.combine(1.0, &dir, -*t * rho), r);
                let step = y.combine(1.0, &x.theta, -1.0);
                let a = dir.dot(&step);
                if a >= 0.0 {
                    // An exact projection gives a ≤ −‖step‖²/(tρ) < 0: here the projection's
                    // rounding dominates the step, and shorter steps only make that worse.
                    break None;
                }
                let py = self.point(y);
                if self.accept(&x, &py, &step, a) {
                    *t = (*t * grow).min(2.0);
                    break Some(py);
                }
                *t *= shrink;
                if *t < MIN_STEP {
                    // Start the next radius from a usable step.
                    *t = self.path.settings.step_init;
                    break None;
                }
            };
            match next {
                Some(p) => {
                    x = p;
                    iters += 1;
                }
                None => match self.frank_wolfe(&x, &dir, r) {
                    Some(p) => {
                        x = p;
                        iters += 1;
                    }
                    None => return (x, Status::InsufficientProgress, iters),
                },
            }
        }
    }

    /// A Frank–Wolfe step for the nuclear ball, tried when the projected step stalls: the direction
    /// `S − W` with `S = −R·u₁v₁ᵀ` (top singular pair of `∇L`) is the rank-one move that the
    /// residual `1 − ⟨−G,W⟩/(‖G‖_op‖W‖_⋆)` measures (its slope is `−R‖Ĝ‖_op·residual`), and it is
    /// formed without the SVD round trip whose rounding hides such small moves from the projection.
    fn frank_wolfe(&mut self, x: &Point, dir: &Theta, r: f64) -> Option<Point> {
        let (Ball::Nuclear, Theta::W(w), Theta::W(g)) = (self.path.problem.ball, &x.theta, dir)
        else {
            return None;
        };
        let svd = g.svd().ok()?;
        crate::linalg::clear_upper_simd_state();
        let (u, v) = (svd.U().col(0), svd.V().col(0));
        let d = Theta::W(Mat::from_fn(w.nrows(), w.ncols(), |i, j| {
            -r * u[i] * v[j] - w[(i, j)]
        }));
        let slope = dir.dot(&d);
        // Start near the last accepted step: the useful steps are tiny and similar in size.
        let mut gamma = (4.0 * self.fw_gamma).min(1.0);
        while slope < 0.0 && gamma >= 1e-20 {
            let step = d.scale(gamma);
            let y = self.point(x.theta.combine(1.0, &step, 1.0));
            if self.accept(x, &y, &step, gamma * slope) {
                self.fw_gamma = gamma;
                return Some(y);
            }
            gamma *= 0.5;
        }
        None
    }

    fn report(
        &self,
        x: &Point,
        r: f64,
        status: Status,
        iterations: usize,
        evaluations: usize,
        t0: Instant,
    ) -> PathPoint {
        let (active, cone_active) = self.active(x, r);
        let reference = self.path.problem.reference.as_ref();
        let kq = match &x.theta {
            Theta::Kq(k, q) => Some((k.clone(), q.clone())),
            Theta::W(_) => None,
        };
        PathPoint {
            radius: r,
            status,
            residual: self.residual(x, r),
            iterations,
            evaluations,
            w: x.w.clone(),
            kq_norm: kq.as_ref().map(|_| 0.5 * x.theta.norm().powi(2)),
            kq,
            loss: x.eval.loss,
            log_loss: x.eval.log_loss,
            log_excess_loss: x.eval.log_excess_loss,
            log_grad_norm: log_norm(&x.eval.grad_w),
            active,
            cone_active,
            fro_norm: fro_norm(&x.w),
            nuclear_norm: nuclear_norm(&x.w),
            corr: reference.map(|m| corr(&x.w, m)),
            one_minus_corr: reference.map(|m| one_minus_corr(&x.w, m)),
            selected: x.eval.selected.clone(),
            seconds: t0.elapsed().as_secs_f64(),
        }
    }
}
