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
//! factor, extended in O(k²) per added point and refactored after removals.

use faer::Mat;

/// Result: weights over the columns of the Gram matrix.
pub(crate) struct MinNormPoint {
    pub weights: Vec<f64>,
}

struct Corral {
    idx: Vec<usize>,
    /// Lower-triangular Cholesky factor of `Q_CC + 11ᵀ`, row-major rows of growing length.
    l: Vec<Vec<f64>>,
}

impl Corral {
    fn entry(q: &Mat<f64>, a: usize, b: usize) -> f64 {
        q[(a, b)] + 1.0
    }

    /// Append point `j`; `false` when it is affinely dependent on the corral.
    fn push(&mut self, q: &Mat<f64>, j: usize) -> bool {
        let k = self.idx.len();
        let mut row = vec![0.0; k + 1];
        for i in 0..k {
            let mut s = Self::entry(q, self.idx[i], j);
            for (p, r) in self.l[i].iter().zip(&row).take(i) {
                s -= p * r;
            }
            row[i] = s / self.l[i][i];
        }
        let diag = Self::entry(q, j, j) - row[..k].iter().map(|v| v * v).sum::<f64>();
        // (NaN-safe: a NaN pivot is also rejected.)
        if diag.is_nan() || diag <= 1e-13 * Self::entry(q, j, j) {
            return false;
        }
        row[k] = diag.sqrt();
        self.l.push(row);
        self.idx.push(j);
        true
    }

    fn rebuild(&mut self, q: &Mat<f64>, keep: Vec<usize>) {
        self.idx.clear();
        self.l.clear();
        for j in keep {
            self.push(q, j);
        }
    }

    /// Affine minimizer `y = M⁻¹1 / (1ᵀM⁻¹1)` over the corral.
    fn affine_minimizer(&self) -> Vec<f64> {
        let k = self.idx.len();
        let mut y = vec![1.0; k];
        for i in 0..k {
            let s: f64 = (0..i).map(|p| self.l[i][p] * y[p]).sum();
            y[i] = (y[i] - s) / self.l[i][i];
        }
        for i in (0..k).rev() {
            let s: f64 = (i + 1..k).map(|p| self.l[p][i] * y[p]).sum();
            y[i] = (y[i] - s) / self.l[i][i];
        }
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
        l: Vec::new(),
    };
    corral.push(q, start);
    let mut x = vec![1.0];
    let norm_sq_of = |idx: &[usize], x: &[f64]| -> f64 {
        let mut s = 0.0;
        for (a, &ia) in idx.iter().enumerate() {
            for (b, &ib) in idx.iter().enumerate() {
                s += x[a] * x[b] * q[(ia, ib)];
            }
        }
        s
    };
    for _ in 0..max_iter {
        let nsq = norm_sq_of(&corral.idx, &x);
        if nsq <= zero_tol_sq {
            break;
        }
        // Pricing: ⟨G, A_j⟩ for every j.
        let (mut best, mut best_j) = (f64::INFINITY, usize::MAX);
        for j in 0..n {
            let g: f64 = corral
                .idx
                .iter()
                .zip(&x)
                .map(|(&i, &xi)| xi * q[(i, j)])
                .sum();
            if g < best {
                best = g;
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
            let kept: Vec<usize> = (0..x.len()).filter(|&i| x[i] > 1e-15).collect();
            let idx: Vec<usize> = kept.iter().map(|&i| corral.idx[i]).collect();
            x = kept.iter().map(|&i| x[i]).collect();
            let total: f64 = x.iter().sum();
            x.iter_mut().for_each(|v| *v /= total);
            corral.rebuild(q, idx);
            if corral.idx.len() != x.len() {
                return finish(&corral.idx, &x[..corral.idx.len()], n);
            }
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
