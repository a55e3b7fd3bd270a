//! Minimum-norm point of a convex hull, by Wolfe's algorithm (Wolfe 1976), on a Gram matrix:
//!
//! ```text
//! minimize ‖Σ_k μ_k A_k‖²   subject to   μ ≥ 0, Σ_k μ_k = 1
//! ```
//!
//! The Frobenius Att-SVM is feasible iff the minimum is positive (then `W^mm = G*/‖G*‖²`); a zero
//! minimum is a Farkas certificate. Wolfe's method is finite and ends on an affinely independent
//! "corral" whose affine minimizer has positive weights, so a certificate comes out exact up to
//! rounding (not approximately, as from a first-order method). The corral's matrix
//! `Q_CC + 11ᵀ` (positive definite while the corral is affinely independent) is kept as a Cholesky
//! factor, updated in O(k²) per added or removed point.

use faer::Mat;

use super::polish::Factor;

/// Result: weights over the columns of the Gram matrix.
pub(crate) struct MinNormPoint {
    pub weights: Vec<f64>,
}

struct Corral {
    idx: Vec<usize>,
    /// Cholesky factor of `Q_CC + 11ᵀ`.
    f: Factor,
}

impl Corral {
    /// Append point `j`; `false` when it is affinely dependent on the corral.
    fn push(&mut self, q: &Mat<f64>, j: usize) -> bool {
        let row: Vec<f64> = self.idx.iter().map(|&i| q[(i, j)] + 1.0).collect();
        if !self.f.push(&row, q[(j, j)] + 1.0) {
            return false;
        }
        self.idx.push(j);
        true
    }

    /// Drop the corral's position `pos` (an O(k²) update of the factor).
    fn remove(&mut self, pos: usize) {
        self.f.remove(pos);
        self.idx.remove(pos);
    }

    /// Affine minimizer `y = M⁻¹1 / (1ᵀM⁻¹1)` over the corral.
    fn affine_minimizer(&self) -> Vec<f64> {
        let mut y = self.f.solve(&vec![1.0; self.idx.len()]);
        let total: f64 = y.iter().sum();
        y.iter_mut().for_each(|v| *v /= total);
        y
    }
}

/// Wolfe's algorithm on the Gram matrix `q` (symmetric PSD). Stops when no point improves by more
/// than `rel_tol·max_k q_kk`, or the norm reaches `zero_tol` (a certificate of infeasibility).
pub(crate) fn min_norm_point(q: &Mat<f64>, zero_tol_sq: f64, max_iter: usize) -> MinNormPoint {
    let n = q.nrows();
    let scale = (0..n).map(|k| q[(k, k)]).fold(0.0f64, f64::max);
    let start = (0..n)
        .min_by(|&a, &b| q[(a, a)].total_cmp(&q[(b, b)]))
        .unwrap_or(0);
    let mut corral = Corral {
        idx: Vec::new(),
        f: Factor::empty(),
    };
    corral.push(q, start);
    let mut x = vec![1.0];
    let mut g = vec![0.0; n];
    for _ in 0..max_iter {
        // Pricing: g_j = ⟨G, A_j⟩ for every j (Q symmetric: column j read contiguously), and
        // ‖G‖² = Σ_i x_i g_{idx_i}.
        for (j, gj) in g.iter_mut().enumerate() {
            let col = q.col(j);
            *gj = corral.idx.iter().zip(&x).map(|(&i, &xi)| xi * col[i]).sum();
        }
        let nsq: f64 = corral.idx.iter().zip(&x).map(|(&i, &xi)| xi * g[i]).sum();
        if nsq <= zero_tol_sq {
            break;
        }
        let (mut best, mut best_j) = (f64::INFINITY, usize::MAX);
        for (j, &gj) in g.iter().enumerate() {
            if gj < best {
                best = gj;
                best_j = j;
            }
        }
        if best >= nsq - 1e-14 * scale || corral.idx.contains(&best_j) || !corral.push(q, best_j) {
            break;
        }
        x.push(0.0);
        // Minor cycles: move toward the affine minimizer until it lies inside the simplex.
        loop {
            let y = corral.affine_minimizer();
            if y.iter().all(|&v| v > 0.0) {
                x = y;
                break;
            }
            let mut theta = 1.0f64;
            for (xi, yi) in x.iter().zip(&y) {
                if *yi <= 0.0 && xi - yi > 0.0 {
                    theta = theta.min(xi / (xi - yi));
                }
            }
            for (xi, yi) in x.iter_mut().zip(&y) {
                *xi += theta * (yi - *xi);
            }
            let keep: Vec<usize> = (0..x.len()).filter(|&i| x[i] > 1e-15).collect();
            if keep.len() == x.len() {
                // Rounding kept every weight positive: drop the smallest.
                let smallest = (0..x.len()).min_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
                x[smallest] = 0.0;
            }
            for i in (0..x.len()).rev() {
                if x[i] <= 1e-15 {
                    corral.remove(i);
                    x.remove(i);
                }
            }
            let total: f64 = x.iter().sum();
            x.iter_mut().for_each(|v| *v /= total);
        }
    }
    finish(&corral.idx, &x, n)
}

fn finish(idx: &[usize], x: &[f64], n: usize) -> MinNormPoint {
    let mut weights = vec![0.0; n];
    for (&i, &xi) in idx.iter().zip(x) {
        weights[i] = xi;
    }
    MinNormPoint { weights }
}
