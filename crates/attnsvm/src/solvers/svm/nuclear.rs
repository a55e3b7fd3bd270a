//! Nuclear-norm engine: ADMM on the split `W = V`,
//!
//! ```text
//! minimize ‖W‖_⋆ + I_C(V)   s.t.  W = V,      C = {V : ⟨V, A_k⟩ ≥ 1 ∀k}
//! W ← SVT_{1/ρ}(V − U)          (singular-value thresholding, faer's SVD)
//! V ← Π_C(W + U)                (a Frobenius Att-SVM with shifted right-hand sides)
//! U ← U + W − V
//! ```
//!
//! The projection is the Frobenius engine with `r_k = 1 − ⟨W+U, A_k⟩`, warm-started from the
//! previous multipliers, so its support-set polish usually succeeds at once. Its multipliers λ
//! give `U = −Σλ_k A_k`, hence the nuclear dual point `ρλ` with `G = ρΣλ_k A_k ∈ ∂‖W‖_⋆` at the
//! fixed point (spec §2.8: `max Σλ_k s.t. ‖Σλ_k A_k‖_op ≤ 1`). The certificate is computed on the
//! feasible iterate V: `(‖V‖_⋆ − Σρλ_k/max(1,‖G‖_op)) / ‖V‖_⋆`.

use std::time::Instant;

use faer::Mat;

use super::dual::{self, Cd};
use super::{AttSvmProblem, Info, Norm, Status, SvmSettings, SvmSolution};
use crate::linalg::{clear_upper_simd_state, mat_from_row_major, mat_to_row_major};

/// Over-relaxation α of the V-step (1 is plain ADMM; 1.5–1.8 usually converges faster).
const RELAX: f64 = 1.6;

pub(super) fn solve(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    let start = Instant::now();
    let d = p.d;
    let m = p.n_constraints();
    let fro = SvmSettings {
        norm: Norm::Frobenius,
        ..s.clone()
    };
    // The Frobenius solution is feasible and a good start; its status answers infeasibility.
    // Near the feasibility boundary the dual engine can run out of epochs without deciding;
    // Clarabel's QP decides (and certifies) those.
    let mut first = dual::solve(p, &fro);
    if !matches!(first.status, Status::Solved | Status::Infeasible) {
        let ipm = super::oracle::qp(p, &fro);
        if matches!(ipm.status, Status::Solved | Status::Infeasible) {
            first = ipm;
        }
    }
    if first.status != Status::Solved {
        let mut sol = first;
        sol.norm = Norm::Nuclear;
        return sol;
    }
    let mut v = mat_to_row_major(&first.w);
    let mut u = vec![0.0; d * d];
    let mut lambda = vec![0.0; m];
    let sigma = first.w.singular_values().map(|s| s[0]).unwrap_or(1.0);
    clear_upper_simd_state();
    let mut rho = 1.0 / sigma.max(f64::MIN_POSITIVE);
    let mut iterations = first.info.iterations;
    let mut best: Option<SvmSolution> = None;
    let mut proj = Projector {
        p,
        settings: fro.clone(),
        set: Vec::new(),
        llt: None,
    };
    // Certify only once the ADMM residuals are small, and then at every tenfold decrease.
    let mut check_at = 1e-6;
    for it in 1..=s.max_iter.min(100_000) {
        // W-step.
        let vu: Vec<f64> = v.iter().zip(&u).map(|(a, b)| a - b).collect();
        let w = svt(&mat_from_row_major(d, d, &vu), 1.0 / rho);
        // V-step: project Ŵ + U onto C, Ŵ = αW + (1−α)V over-relaxed (Boyd et al. §3.4.3).
        let wu: Vec<f64> = (0..d * d)
            .map(|k| RELAX * w[k] + (1.0 - RELAX) * v[k] + u[k])
            .collect();
        let mw = p.margins(&wu);
        let rhs: Vec<f64> = p
            .constraints()
            .iter()
            .zip(&mw)
            .map(|(c, mk)| c.rhs - mk)
            .collect();
        let Some(delta) = proj.project(&rhs, &mut lambda, &mut iterations) else {
            break;
        };
        let v_new: Vec<f64> = wu.iter().zip(&delta).map(|(a, b)| a + b).collect();
        // U-step: U + Ŵ − V = −Δ.
        let r_primal = w
            .iter()
            .zip(&v_new)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let r_dual = rho
            * v.iter()
                .zip(&v_new)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
        u = delta.iter().map(|x| -x).collect();
        v = v_new;
        if r_primal + r_dual < check_at * sigma {
            check_at *= 0.1;
            // ρλ, scaled into the dual feasible set ‖Σλ_k A_k‖_op ≤ 1.
            let g = mat_from_row_major(d, d, &p.combine(&lambda));
            let op = rho * super::certificate::op_norm(&g);
            let duals: Vec<f64> = lambda.iter().map(|l| rho * l / op.max(1.0)).collect();
            let info = Info {
                solver: "admm".into(),
                iterations,
                seconds: 0.0,
                message: format!("{it} ADMM iterations"),
            };
            let cand = SvmSolution::from_pair(p, s, Status::Solved, v.clone(), duals, info);
            let done = cand.kkt.duality_gap <= s.tol.max(1e-9);
            if best
                .as_ref()
                .is_none_or(|b| cand.kkt.duality_gap < b.kkt.duality_gap)
            {
                best = Some(cand);
            }
            if done {
                break;
            }
        }
        // Residual balancing (Boyd et al. §3.4.1); U is rescaled with ρ.
        if it % 10 == 0 {
            let scale = if r_primal > 10.0 * r_dual {
                2.0
            } else if r_dual > 10.0 * r_primal {
                0.5
            } else {
                1.0
            };
            if scale != 1.0 {
                rho *= scale;
                u.iter_mut().for_each(|x| *x /= scale);
                lambda.iter_mut().for_each(|x| *x /= scale);
            }
        }
        if start.elapsed().as_secs_f64() > s.time_limit {
            break;
        }
    }
    let Some(mut sol) = best else {
        // No certified nuclear point: the Frobenius start is feasible but not a nuclear answer
        // (its certificate is for the other norm).
        let mut f = first;
        f.norm = Norm::Nuclear;
        f.status = Status::MaxIterations;
        f.info.message =
            "ADMM stopped before a certified nuclear point (projection failed or limit)".into();
        return f;
    };
    if sol.kkt.duality_gap > s.tol.max(1e-9) {
        sol.status = Status::MaxIterations;
        sol.info.message = format!(
            "{}; duality gap {:.1e} above the tolerance",
            sol.info.message, sol.kkt.duality_gap
        );
    }
    sol
}

/// Singular-value thresholding `U max(Σ − τ, 0) Vᵀ`, row-major.
fn svt(a: &Mat<f64>, tau: f64) -> Vec<f64> {
    let d = a.nrows();
    let Ok(svd) = a.svd() else {
        return vec![f64::NAN; d * d];
    };
    let (uu, ss, vv) = (svd.U(), svd.S().column_vector(), svd.V());
    let mut out = vec![0.0; d * d];
    for k in 0..d {
        let sk = ss[k] - tau;
        if sk <= 0.0 {
            continue;
        }
        for i in 0..d {
            let ui = uu[(i, k)] * sk;
            for j in 0..d {
                out[i * d + j] += ui * vv[(j, k)];
            }
        }
    }
    clear_upper_simd_state();
    out
}

/// `Π_C(M) = M + Σλ_k A_k`, λ the multipliers of the Frobenius Att-SVM with right-hand sides
/// `r_k − ⟨M, A_k⟩`. The Cholesky factor of the support set's Gram matrix is kept between calls:
/// when the support does not change (the usual case late in ADMM) a projection is two triangular
/// solves and a check; otherwise the Frobenius engine solves it from the previous multipliers.
struct Projector<'p, 'a> {
    p: &'p AttSvmProblem<'a>,
    settings: SvmSettings,
    set: Vec<usize>,
    llt: Option<faer::linalg::solvers::Llt<f64>>,
}

impl Projector<'_, '_> {
    /// `Σλ_k A_k` (row-major) for the shifted right-hand sides `rhs`; `lambda` is updated.
    fn project(
        &mut self,
        rhs: &[f64],
        lambda: &mut Vec<f64>,
        iterations: &mut usize,
    ) -> Option<Vec<f64>> {
        if let Some(delta) = self.cached(rhs, lambda) {
            return Some(delta);
        }
        let shifted = self.p.with_rhs(rhs);
        let mut cd = Cd::new(&shifted, self.settings.seed);
        cd.warm_start(lambda.clone());
        let mut sol = dual::solve_from(&shifted, &self.settings, &mut cd, true);
        *iterations += sol.info.iterations;
        if sol.status != Status::Solved {
            // Ill-conditioned projections (near the feasibility boundary) can exhaust the dual
            // engine; the interior point method solves them.
            sol = super::oracle::qp(&shifted, &self.settings);
            if sol.status != Status::Solved {
                return None;
            }
        }
        *lambda = sol.duals;
        self.set = (0..lambda.len()).filter(|&k| lambda[k] > 0.0).collect();
        let q = super::polish::gram(self.p, &self.set);
        self.llt = q.llt(faer::Side::Lower).ok();
        clear_upper_simd_state();
        Some(mat_to_row_major(&sol.w))
    }

    fn cached(&self, rhs: &[f64], lambda: &mut Vec<f64>) -> Option<Vec<f64>> {
        use faer::linalg::solvers::Solve;
        let llt = self.llt.as_ref()?;
        let r = Mat::from_fn(self.set.len(), 1, |i, _| rhs[self.set[i]]);
        let x = llt.solve(&r);
        clear_upper_simd_state();
        if (0..self.set.len()).any(|i| x[(i, 0)].is_nan() || x[(i, 0)] < 0.0) {
            return None;
        }
        let mut new = vec![0.0; lambda.len()];
        for (i, &k) in self.set.iter().enumerate() {
            new[k] = x[(i, 0)];
        }
        let delta = self.p.combine(&new);
        let margins = self.p.margins(&delta);
        let ok = (0..rhs.len())
            .all(|k| new[k] > 0.0 || margins[k] >= rhs[k] - 1e-12 * rhs[k].abs().max(1.0));
        if !ok {
            return None;
        }
        *lambda = new;
        Some(delta)
    }
}
