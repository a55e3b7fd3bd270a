//! Frobenius engine: dual coordinate ascent on
//!
//! ```text
//! maximize_λ  Σ_k λ_k r_k − ½‖Σ_k λ_k A_k‖_F²     λ_k ≥ 0 (inequalities), free (equalities)
//! ```
//!
//! with `W = Σ_k λ_k A_k` kept explicitly (spec §2.8: the Frobenius Att-SVM is a hard-margin SVM
//! without bias on the features `vec(A_k)`). Samples are visited as blocks: `u = W z_s` is formed
//! once (O(d²)), each coordinate step of the block costs O(d) because `A_k = a_k z_sᵀ` is rank one
//! (`⟨W, A_k⟩ = a_kᵀu`, `u += δ‖z_s‖² a_k`), and W gets one rank-one update per block. Constraints
//! that stay inactive are shrunk (liblinear's rule) and revisited before convergence is declared.
//!
//! Coordinate ascent identifies the support set quickly but converges slowly on ill-conditioned
//! programs, so every few epochs the engine *polishes*: it solves `Σ_{l∈S} ⟨A_k,A_l⟩ λ_l = r_k` on
//! the current support set S (Gram matrix by two products, Cholesky), fixes the signs by an
//! active-set loop, and accepts when the KKT certificate meets the tolerance. When the multipliers
//! grow while W stays bounded, the program is infeasible: the engine projects `λ/Σλ` onto the null
//! space of the support features and checks the resulting Farkas certificate.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::certificate::farkas;
use super::mnp::min_norm_point;
use super::polish::{gram, polish, MAX_POLISH_SET};
use super::{AttSvmProblem, Info, Status, SvmSettings, SvmSolution};
use crate::linalg::{axpy, dot};

/// A Farkas certificate is accepted when `‖Σλ_k A_k‖_F ≤ FARKAS_TOL · max_k ‖A_k‖_F`.
pub(crate) const FARKAS_TOL: f64 = 1e-10;

/// Epochs between the first polish attempts; doubles after each failed attempt.
const POLISH_EVERY: usize = 50;

pub(super) fn solve(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    let mut cd = Cd::new(p, s.seed);
    solve_from(p, s, &mut cd, false)
}

/// Run the engine from the state in `cd` (warm starts reuse the multipliers; with `polish_first`
/// the support set of the warm start is tried before any epoch).
pub(crate) fn solve_from(
    p: &AttSvmProblem,
    s: &SvmSettings,
    cd: &mut Cd,
    polish_first: bool,
) -> SvmSolution {
    let start = Instant::now();
    if polish_first {
        if let Some(sol) = polish(p, s, cd, 0) {
            return sol;
        }
    }
    // Polish when the projected-gradient spread falls below `eps`, or at checkpoints (which also
    // test for infeasibility) every `interval` epochs, the interval doubling.
    let mut eps = 1e-2f64;
    let mut interval = POLISH_EVERY;
    let mut checkpoint = POLISH_EVERY;
    let mut epochs = 0;
    loop {
        let pg = cd.epoch();
        epochs += 1;
        let converged = pg <= eps;
        let at_checkpoint = epochs >= checkpoint;
        if converged || at_checkpoint {
            let found = if suspect_infeasible(p, cd) {
                certify_infeasible(p, s, cd, epochs)
            } else if converged || epochs >= 4 * POLISH_EVERY {
                polish(p, s, cd, epochs)
            } else {
                None
            };
            if let Some(sol) = found {
                return sol;
            }
            if converged {
                eps = (eps * 0.1).max(1e-15);
                cd.unshrink();
            }
            if at_checkpoint {
                interval = (interval * 2).min(1024);
                checkpoint = epochs + interval;
            }
        }
        if !pg.is_finite() {
            return cd.solution(
                p,
                s,
                Status::NumericalError,
                epochs,
                "non-finite multipliers",
            );
        }
        if epochs >= s.max_iter || start.elapsed().as_secs_f64() > s.time_limit {
            return cd.solution(
                p,
                s,
                Status::MaxIterations,
                epochs,
                "iteration or time limit",
            );
        }
    }
}

/// Dual coordinate ascent state.
pub(crate) struct Cd<'p, 'a> {
    p: &'p AttSvmProblem<'a>,
    d: usize,
    pub(crate) w: Vec<f64>,
    pub(crate) lambda: Vec<f64>,
    active: Vec<bool>,
    order: Vec<usize>,
    rng: ChaCha8Rng,
    /// Shrinking thresholds from the previous epoch (liblinear's `PGmax_old`).
    shrink_bound: f64,
    u: Vec<f64>,
    g: Vec<f64>,
}

impl<'p, 'a> Cd<'p, 'a> {
    pub(crate) fn new(p: &'p AttSvmProblem<'a>, seed: u64) -> Self {
        let (d, m) = (p.d, p.n_constraints());
        Cd {
            p,
            d,
            w: vec![0.0; d * d],
            lambda: vec![0.0; m],
            active: vec![true; m],
            order: (0..p.n_samples()).collect(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            shrink_bound: f64::INFINITY,
            u: vec![0.0; d],
            g: vec![0.0; d],
        }
    }

    /// Start from multipliers `lambda` (W recomputed from them).
    pub(crate) fn warm_start(&mut self, lambda: Vec<f64>) {
        self.w = self.p.combine(&lambda);
        self.lambda = lambda;
    }

    fn unshrink(&mut self) {
        self.active.iter_mut().for_each(|a| *a = true);
        self.shrink_bound = f64::INFINITY;
    }

    /// One pass over all samples in random order; returns the spread of the projected gradient
    /// over the active constraints (the stopping measure).
    fn epoch(&mut self) -> f64 {
        let p = self.p;
        let d = self.d;
        let mut order = std::mem::take(&mut self.order);
        order.shuffle(&mut self.rng);
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for &s in &order {
            let block = p.block(s);
            if block.is_empty() || !block.clone().any(|k| self.active[k]) {
                continue;
            }
            let z = p.query(s);
            let zz = dot(z, z);
            for (ui, row) in self.u.iter_mut().zip(self.w.chunks_exact(d)) {
                *ui = dot(row, z);
            }
            self.g.iter_mut().for_each(|v| *v = 0.0);
            let mut moved = false;
            for k in block {
                if !self.active[k] {
                    continue;
                }
                let c = p.constraints()[k];
                let (xp, xm) = (p.token(s, c.plus as usize), p.token(s, c.minus as usize));
                let grad = dot(xp, &self.u) - dot(xm, &self.u) - c.rhs;
                let l = self.lambda[k];
                let pg = if c.equality {
                    grad
                } else if l == 0.0 {
                    if grad > self.shrink_bound {
                        self.active[k] = false;
                        continue;
                    }
                    grad.min(0.0)
                } else {
                    grad
                };
                pg_max = pg_max.max(pg);
                pg_min = pg_min.min(pg);
                if pg == 0.0 {
                    continue;
                }
                let q = p.norm_sq(k);
                if q == 0.0 {
                    continue;
                }
                let mut new = l - grad / q;
                if !c.equality {
                    new = new.max(0.0);
                }
                let delta = new - l;
                if delta != 0.0 {
                    self.lambda[k] = new;
                    axpy(delta * zz, xp, &mut self.u);
                    axpy(-delta * zz, xm, &mut self.u);
                    axpy(delta, xp, &mut self.g);
                    axpy(-delta, xm, &mut self.g);
                    moved = true;
                }
            }
            if moved {
                for (row, &gi) in self.w.chunks_exact_mut(d).zip(&self.g) {
                    if gi != 0.0 {
                        axpy(gi, z, row);
                    }
                }
            }
        }
        self.order = order;
        if pg_max < pg_min {
            return 0.0;
        }
        self.shrink_bound = if pg_max > 0.0 { pg_max } else { f64::INFINITY };
        pg_max - pg_min
    }

    pub(super) fn solution(
        &self,
        p: &AttSvmProblem,
        s: &SvmSettings,
        status: Status,
        epochs: usize,
        msg: &str,
    ) -> SvmSolution {
        let info = Info {
            solver: "dual-cd".into(),
            iterations: epochs,
            seconds: 0.0,
            message: msg.into(),
        };
        SvmSolution::from_pair(
            p,
            s,
            status,
            p.combine(&self.lambda),
            self.lambda.clone(),
            info,
        )
    }
}

/// At an optimum of the standard program `‖W‖² = Σλ_k`; `‖W‖² ≪ Σλ` means the multipliers grow
/// along a direction where `Σλ_k A_k` stays bounded.
fn suspect_infeasible(p: &AttSvmProblem, cd: &Cd) -> bool {
    let total: f64 = cd.lambda.iter().sum();
    p.is_standard() && total > 0.0 && dot(&cd.w, &cd.w) < 1e-2 * total
}

/// When `‖W‖² ≪ Σλ` the multipliers grow along a direction with `Σλ_k A_k → 0`: project `λ/Σλ`
/// onto the null space of the support features and check the Farkas certificate.
fn certify_infeasible(
    p: &AttSvmProblem,
    s: &SvmSettings,
    cd: &Cd,
    epochs: usize,
) -> Option<SvmSolution> {
    // The growing multipliers carry the certificate, which needs at most d² + 1 constraints
    // (Carathéodory): try the largest ones first, doubling the candidate set.
    let mut order: Vec<usize> = (0..cd.lambda.len())
        .filter(|&k| cd.lambda[k] > 0.0)
        .collect();
    order.sort_by(|&a, &b| cd.lambda[b].total_cmp(&cd.lambda[a]));
    let mut size = (2 * (p.d * p.d + 1)).min(order.len());
    let cert = loop {
        let set = &order[..size];
        let q = gram(p, set);
        let scale = (0..set.len()).map(|k| q[(k, k)]).fold(0.0f64, f64::max);
        let mnp = min_norm_point(&q, 1e-28 * scale, 20 * set.len() + 100);
        let mut lambda = vec![0.0; cd.lambda.len()];
        for (i, &k) in set.iter().enumerate() {
            lambda[k] = mnp.weights[i];
        }
        let cert = farkas(p, &lambda);
        if cert.residual <= FARKAS_TOL {
            break cert;
        }
        if size == order.len() || size >= MAX_POLISH_SET {
            return None;
        }
        size = (2 * size).min(order.len()).min(MAX_POLISH_SET);
    };
    let mut sol = SvmSolution::empty(p, s.norm, Status::Infeasible, "dual-cd");
    sol.info.iterations = epochs;
    sol.info.message = format!(
        "infeasible: {} constraints of {} samples combine to Σλ_k A_k ≈ 0 (residual {:.1e})",
        cert.constraints.len(),
        cert.samples.len(),
        cert.residual
    );
    sol.farkas = Some(cert);
    Some(sol)
}
