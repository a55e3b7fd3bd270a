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

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::certificate::farkas;
use super::mnp::min_norm_point;
use super::{AttSvmProblem, Info, Status, SvmSettings, SvmSolution};
use crate::linalg::{axpy, clear_upper_simd_state, dot, matmul_into};

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

    fn solution(
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

/// The Gram matrix `⟨A_k, A_l⟩ = (a_kᵀa_l)(z_kᵀz_l)` of the constraints in `set`, by two products.
pub(crate) fn gram(p: &AttSvmProblem, set: &[usize]) -> Mat<f64> {
    let d = p.d;
    let a = Mat::from_fn(set.len(), d, |r, j| {
        let c = p.constraints()[set[r]];
        let s = c.sample as usize;
        p.token(s, c.plus as usize)[j] - p.token(s, c.minus as usize)[j]
    });
    let z = Mat::from_fn(set.len(), d, |r, j| {
        p.query(p.constraints()[set[r]].sample as usize)[j]
    });
    let n = set.len();
    let (mut aa, mut zz) = (Mat::zeros(n, n), Mat::zeros(n, n));
    matmul_into(&mut aa, a.as_ref(), a.transpose());
    matmul_into(&mut zz, z.as_ref(), z.transpose());
    let q = Mat::from_fn(n, n, |i, j| aa[(i, j)] * zz[(i, j)]);
    clear_upper_simd_state();
    q
}

/// Largest support set the polish factorizes (a dense Cholesky of this size costs ~20 GFLOP).
const MAX_POLISH_SET: usize = 6000;

/// Gram entries of every constraint that entered the polish's working set: the first set by two
/// products, later additions row by row (O(d) per entry).
struct GramCache {
    members: Vec<usize>,
    pos: std::collections::HashMap<usize, usize>,
    /// Lower triangle: `rows[i][j]`, `j ≤ i`, over `members`.
    rows: Vec<Vec<f64>>,
}

impl GramCache {
    fn new(p: &AttSvmProblem, set: &[usize]) -> Self {
        let q = gram(p, set);
        let rows = (0..set.len())
            .map(|i| (0..=i).map(|j| q[(i, j)]).collect())
            .collect();
        let pos = set.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        GramCache {
            members: set.to_vec(),
            pos,
            rows,
        }
    }

    fn add(&mut self, p: &AttSvmProblem, k: usize) {
        if self.pos.contains_key(&k) {
            return;
        }
        let mut row: Vec<f64> = self.members.iter().map(|&l| p.gram(k, l)).collect();
        row.push(p.norm_sq(k));
        self.pos.insert(k, self.members.len());
        self.members.push(k);
        self.rows.push(row);
    }

    fn sub(&self, set: &[usize]) -> Mat<f64> {
        let idx: Vec<usize> = set.iter().map(|k| self.pos[k]).collect();
        Mat::from_fn(set.len(), set.len(), |a, b| {
            let (i, j) = (idx[a], idx[b]);
            if i >= j {
                self.rows[i][j]
            } else {
                self.rows[j][i]
            }
        })
    }
}

/// Solve `Q λ = r` on the set (Cholesky; a symmetric eigendecomposition when Q is singular, which
/// gives the least-squares solution of smallest norm).
fn solve_gram(q: &Mat<f64>, r: &[f64]) -> Option<Vec<f64>> {
    let n = r.len();
    let rhs = Mat::from_fn(n, 1, |i, _| r[i]);
    let out = match q.llt(Side::Lower) {
        Ok(llt) => {
            let x = llt.solve(&rhs);
            Some((0..n).map(|i| x[(i, 0)]).collect::<Vec<_>>())
        }
        Err(_) => {
            let evd = q.self_adjoint_eigen(Side::Lower).ok()?;
            let (u, sv) = (evd.U(), evd.S().column_vector());
            let top = (0..n).map(|i| sv[i].abs()).fold(0.0f64, f64::max);
            let mut x = vec![0.0; n];
            for j in 0..n {
                if sv[j] > 1e-12 * top {
                    let coef = (0..n).map(|i| u[(i, j)] * r[i]).sum::<f64>() / sv[j];
                    for (i, xi) in x.iter_mut().enumerate() {
                        *xi += coef * u[(i, j)];
                    }
                }
            }
            Some(x)
        }
    };
    clear_upper_simd_state();
    out.filter(|x| x.iter().all(|v| v.is_finite()))
}

/// Exact solve on the support set with an active-set loop; accepted only when the full KKT
/// certificate meets the tolerance.
fn polish(p: &AttSvmProblem, s: &SvmSettings, cd: &mut Cd, epochs: usize) -> Option<SvmSolution> {
    let cons = p.constraints();
    let m = p.n_constraints();
    let mut set: Vec<usize> = (0..m)
        .filter(|&k| cd.lambda[k] > 0.0 || cons[k].equality)
        .collect();
    if set.is_empty() {
        // λ = 0 is optimal only when no constraint asks for a positive margin.
        if cons.iter().all(|c| c.rhs <= 0.0 && !c.equality) {
            return Some(cd.solution(p, s, Status::Solved, epochs, ""));
        }
        return None;
    }
    if set.len() > MAX_POLISH_SET {
        return None;
    }
    let mut cache = GramCache::new(p, &set);
    let mut best = None;
    for _round in 0..30 {
        if set.len() > MAX_POLISH_SET {
            break;
        }
        for &k in &set {
            cache.add(p, k);
        }
        let q = cache.sub(&set);
        let r: Vec<f64> = set.iter().map(|&k| cons[k].rhs).collect();
        let x = solve_gram(&q, &r)?;
        let neg: Vec<usize> = (0..set.len())
            .filter(|&i| !cons[set[i]].equality && x[i] < 0.0)
            .collect();
        if !neg.is_empty() {
            let drop: std::collections::HashSet<usize> = neg.into_iter().collect();
            set = set
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, &k)| k)
                .collect();
            continue;
        }
        let mut lambda = vec![0.0; m];
        for (i, &k) in set.iter().enumerate() {
            lambda[k] = x[i];
        }
        let w = p.combine(&lambda);
        let margins = p.margins(&w);
        let mut viol: Vec<(f64, usize)> = (0..m)
            .filter(|&k| {
                !cons[k].equality && margins[k] < cons[k].rhs - 1e-12 * cons[k].rhs.abs().max(1.0)
            })
            .map(|k| (margins[k] - cons[k].rhs, k))
            .collect();
        if !viol.is_empty() {
            viol.sort_by(|a, b| a.0.total_cmp(&b.0));
            let in_set: std::collections::HashSet<usize> = set.iter().copied().collect();
            let before = set.len();
            // The most violated first, within the size the polish factorizes.
            // At most half the set per round: a poorly identified set is better corrected by
            // more coordinate ascent than by one huge factorization.
            let room = MAX_POLISH_SET
                .saturating_sub(set.len())
                .min(set.len() / 2 + 64);
            set.extend(
                viol.iter()
                    .map(|v| v.1)
                    .filter(|k| !in_set.contains(k))
                    .take(room),
            );
            if set.len() == before {
                return None;
            }
            // Keep the sign-feasible iterate: coordinate ascent resumes from it if polish fails.
            best = Some(lambda);
            continue;
        }
        let info = Info {
            solver: "dual-cd".into(),
            iterations: epochs,
            seconds: 0.0,
            message: String::new(),
        };
        let sol = SvmSolution::from_pair(p, s, Status::Solved, w, lambda.clone(), info);
        if sol.kkt.max() <= s.tol {
            return Some(sol);
        }
        // Close but not certified: continue coordinate ascent from the polished point.
        cd.warm_start(lambda);
        return None;
    }
    if let Some(lambda) = best {
        cd.warm_start(lambda);
    }
    None
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
    let set: Vec<usize> = (0..cd.lambda.len())
        .filter(|&k| cd.lambda[k] > 0.0)
        .collect();
    if set.len() > MAX_POLISH_SET {
        return None;
    }
    let q = gram(p, &set);
    let scale = (0..set.len()).map(|k| q[(k, k)]).fold(0.0f64, f64::max);
    let mnp = min_norm_point(&q, 1e-28 * scale, 20 * set.len() + 100);
    let mut lambda = vec![0.0; cd.lambda.len()];
    for (i, &k) in set.iter().enumerate() {
        lambda[k] = mnp.weights[i];
    }
    let cert = farkas(p, &lambda);
    if cert.residual > FARKAS_TOL {
        return None;
    }
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
