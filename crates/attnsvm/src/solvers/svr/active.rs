//! The exact step of the coordinate-descent engine: an active-set method in the orthant and box
//! face of the current point. With the free set F (signs `s_F`) and the rest held at `0` or `±C`,
//! the dual restricted to the face is the quadratic `½β_Fᵀ K̃_FF β_F − rhsᵀβ_F` with
//! `rhs = y_F − ε s_F − K̃_FU β_U`. Each round moves along the Newton direction
//! `−K̃_FF⁺ g` (`g` the restricted gradient), or, when `g` has a component in the null space of
//! `K̃_FF` (a singular kernel: elu+1 has rank ≤ D), along that component, on which the objective
//! decreases linearly. The step stops where a coordinate reaches 0 or ±C; that coordinate leaves F.
//! A full Newton step ends the method at the face's optimum. Coordinate descent then decides
//! which coordinates enter again.

use faer::{Mat, Side};

/// Relative size below which an eigenvalue of `K̃_FF` counts as zero.
const RANK_TOL: f64 = 1e-12;

/// Rounds per call (each removes a coordinate from F or ends the method).
fn max_rounds(n: usize) -> usize {
    2 * n + 4
}

/// The point reached from `b` (or `None` when nothing is free or the eigensolver fails).
pub(super) fn face_newton(
    k: &Mat<f64>,
    y: &[f64],
    b: &[f64],
    c: f64,
    eps: f64,
) -> Option<Vec<f64>> {
    let n = b.len();
    let mut b = b.to_vec();
    for _ in 0..max_rounds(n) {
        let free: Vec<usize> = (0..n).filter(|&j| b[j] != 0.0 && b[j].abs() < c).collect();
        if free.is_empty() {
            break;
        }
        let m = free.len();
        // Restricted gradient g_F = (K̃β)_F − y_F + ε s_F.
        let g: Vec<f64> = free
            .iter()
            .map(|&j| (0..n).map(|l| k[(j, l)] * b[l]).sum::<f64>() - y[j] + eps * b[j].signum())
            .collect();
        let kff = Mat::from_fn(m, m, |a, e| k[(free[a], free[e])]);
        let evd = kff.self_adjoint_eigen(Side::Lower).ok()?;
        crate::linalg::clear_upper_simd_state();
        let (u, s) = (evd.U(), evd.S().column_vector());
        let lmax = (0..m).map(|i| s[i].abs()).fold(0.0f64, f64::max);
        let mut newton = vec![0.0; m];
        let mut null = vec![0.0; m];
        for i in 0..m {
            let proj: f64 = (0..m).map(|a| u[(a, i)] * g[a]).sum();
            let target = if s[i] > RANK_TOL * lmax * m as f64 {
                (&mut newton, -proj / s[i])
            } else {
                (&mut null, -proj)
            };
            for a in 0..m {
                target.0[a] += target.1 * u[(a, i)];
            }
        }
        let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        let null_norm = null.iter().map(|x| x * x).sum::<f64>().sqrt();
        let (dir, cap) = if null_norm > 1e-12 * gnorm.max(f64::MIN_POSITIVE) && null_norm > 0.0 {
            (null, f64::INFINITY)
        } else {
            (newton, 1.0)
        };
        // Longest step that keeps every free coordinate in its orthant and box.
        let mut step = cap;
        let mut blocking = None;
        for (a, &j) in free.iter().enumerate() {
            let (bj, dj) = (b[j], dir[a]);
            let limit = if dj * bj < 0.0 {
                bj.abs() / dj.abs()
            } else if dj != 0.0 {
                (c - bj.abs()) / dj.abs()
            } else {
                f64::INFINITY
            };
            if limit < step {
                (step, blocking) = (limit, Some((j, dj * bj < 0.0)));
            }
        }
        if !step.is_finite() {
            return None;
        }
        for (a, &j) in free.iter().enumerate() {
            b[j] += step * dir[a];
        }
        match blocking {
            Some((j, to_zero)) => b[j] = if to_zero { 0.0 } else { c.copysign(b[j]) },
            None => break, // the full Newton step: the optimum of this face
        }
    }
    Some(b)
}
