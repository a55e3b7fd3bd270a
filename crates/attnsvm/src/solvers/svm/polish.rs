//! The exact step of the Frobenius engine: on a candidate support set S, the margins are exactly
//! the right-hand sides, `Σ_{l∈S} ⟨A_k, A_l⟩ λ_l = r_k` (k ∈ S), a Gram system solved by Cholesky.
//! An active-set loop drops constraints whose multiplier comes out negative and adds violated
//! ones; small changes update the Cholesky factor in O(|S|²) (a row appended, or a row removed with
//! a rank-one update of the trailing block) instead of refactoring in O(|S|³). The answer is
//! accepted only when the full KKT certificate meets the tolerance.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

use super::dual::Cd;
use super::{AttSvmProblem, Info, Status, SvmSettings, SvmSolution};
use crate::linalg::{clear_upper_simd_state, matmul_into};

/// Changes per round (relative to |S|) below which the factor is updated instead of recomputed:
/// an update is O(|S|²) scalar work, a refactorization O(|S|³/3) at BLAS-3 speed.
const UPDATE_FRACTION: usize = 64;

/// Rounds that add violated constraints before the polish gives the set back to coordinate
/// ascent: when the set is far from the support, each addition overshoots and the next round drops
/// as many again, and more epochs are cheaper than more factorizations.
const MAX_ADDITIONS: usize = 4;

/// Active-set rounds per polish.
const MAX_ROUNDS: usize = 200;

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
pub(crate) const MAX_POLISH_SET: usize = 6000;

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

    fn get(&self, a: usize, b: usize) -> f64 {
        let (i, j) = (self.pos[&a], self.pos[&b]);
        if i >= j {
            self.rows[i][j]
        } else {
            self.rows[j][i]
        }
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

/// A lower-triangular Cholesky factor `L Lᵀ = Q_SS`, rows of growing length, that can gain or lose
/// a row in O(|S|²).
pub(crate) struct Factor {
    l: Vec<Vec<f64>>,
}

impl Factor {
    pub(crate) fn empty() -> Self {
        Factor { l: Vec::new() }
    }

    fn new(q: &Mat<f64>) -> Option<Self> {
        let llt = q.llt(Side::Lower).ok();
        clear_upper_simd_state();
        let l = llt?.L().to_owned();
        Some(Factor {
            l: (0..q.nrows())
                .map(|i| (0..=i).map(|j| l[(i, j)]).collect())
                .collect(),
        })
    }

    /// Append a row: `row[j] = Q[new, set_j]`, `diag = Q[new, new]`. `false` if not positive definite.
    pub(crate) fn push(&mut self, row: &[f64], diag: f64) -> bool {
        let k = self.l.len();
        let mut new = vec![0.0; k + 1];
        for i in 0..k {
            let s: f64 = self.l[i][..i]
                .iter()
                .zip(&new[..i])
                .map(|(a, b)| a * b)
                .sum();
            new[i] = (row[i] - s) / self.l[i][i];
        }
        let d = diag - new[..k].iter().map(|v| v * v).sum::<f64>();
        if d.is_nan() || d <= 1e-14 * diag {
            return false;
        }
        new[k] = d.sqrt();
        self.l.push(new);
        true
    }

    /// Remove row and column `pos`: the trailing block absorbs the removed column by a rank-one
    /// update (`L₂₂' L₂₂'ᵀ = L₂₂ L₂₂ᵀ + x xᵀ`).
    pub(crate) fn remove(&mut self, pos: usize) {
        let mut x: Vec<f64> = self.l[pos + 1..]
            .iter_mut()
            .map(|row| row.remove(pos))
            .collect();
        self.l.remove(pos);
        let m = self.l.len();
        for j in pos..m {
            let (ljj, xj) = (self.l[j][j], x[j - pos]);
            let r = ljj.hypot(xj);
            let (c, s) = (r / ljj, xj / ljj);
            self.l[j][j] = r;
            for a in j + 1..m {
                let v = (self.l[a][j] + s * x[a - pos]) / c;
                self.l[a][j] = v;
                x[a - pos] = c * x[a - pos] - s * v;
            }
        }
    }

    pub(crate) fn solve(&self, r: &[f64]) -> Vec<f64> {
        let k = self.l.len();
        let mut y = r.to_vec();
        for i in 0..k {
            let s: f64 = self.l[i][..i].iter().zip(&y[..i]).map(|(a, b)| a * b).sum();
            y[i] = (y[i] - s) / self.l[i][i];
        }
        for i in (0..k).rev() {
            y[i] /= self.l[i][i];
            let yi = y[i];
            for (yj, lij) in y[..i].iter_mut().zip(&self.l[i][..i]) {
                *yj -= lij * yi;
            }
        }
        y
    }
}

/// Exact solve on the support set of `cd` with an active-set loop; accepted only when the full KKT
/// certificate meets the tolerance. On failure coordinate ascent resumes from the last
/// sign-feasible iterate.
pub(super) fn polish(
    p: &AttSvmProblem,
    s: &SvmSettings,
    cd: &mut Cd,
    epochs: usize,
) -> Option<SvmSolution> {
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
    let mut factor: Option<Factor> = None;
    let mut best = None;
    let mut additions = 0;
    for _round in 0..MAX_ROUNDS {
        if set.len() > MAX_POLISH_SET {
            break;
        }
        let r: Vec<f64> = set.iter().map(|&k| cons[k].rhs).collect();
        let x = match &factor {
            Some(f) => f.solve(&r),
            None => {
                for &k in &set {
                    cache.add(p, k);
                }
                let q = cache.sub(&set);
                factor = Factor::new(&q);
                match &factor {
                    Some(f) => f.solve(&r),
                    None => solve_gram(&q, &r)?,
                }
            }
        };
        if x.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let neg: Vec<usize> = (0..set.len())
            .filter(|&i| !cons[set[i]].equality && x[i] < 0.0)
            .collect();
        if !neg.is_empty() {
            match factor.as_mut() {
                Some(f) if neg.len() <= set.len() / UPDATE_FRACTION => {
                    for &i in neg.iter().rev() {
                        f.remove(i);
                        set.remove(i);
                    }
                }
                _ => {
                    factor = None;
                    let drop: std::collections::HashSet<usize> = neg.into_iter().collect();
                    set = (0..set.len())
                        .filter(|i| !drop.contains(i))
                        .map(|i| set[i])
                        .collect();
                }
            }
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
            // The most violated first; at most half the set per round: a poorly identified set is
            // better corrected by more coordinate ascent than by one huge factorization.
            let room = MAX_POLISH_SET
                .saturating_sub(set.len())
                .min(set.len() / 2 + 64);
            let added: Vec<usize> = viol
                .iter()
                .map(|v| v.1)
                .filter(|k| !in_set.contains(k))
                .take(room)
                .collect();
            if added.is_empty() {
                return None;
            }
            for &k in &added {
                cache.add(p, k);
            }
            if added.len() > set.len() / UPDATE_FRACTION {
                factor = None;
            }
            for &k in &added {
                if let Some(f) = factor.as_mut() {
                    let row: Vec<f64> = set.iter().map(|&l| cache.get(k, l)).collect();
                    if !f.push(&row, p.norm_sq(k)) {
                        factor = None;
                    }
                }
                set.push(k);
            }
            // Keep the sign-feasible iterate: coordinate ascent resumes from it if polish fails.
            best = Some(lambda);
            additions += 1;
            if additions > MAX_ADDITIONS {
                break;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The updated factor solves the same systems as a fresh factorization of the changed matrix.
    #[test]
    fn factor_updates_match_refactorization() {
        let n = 9;
        let b = Mat::from_fn(n, n + 3, |i, j| {
            ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.4 + if i == j { 1.0 } else { 0.0 }
        });
        let q = &b * b.transpose();
        let mut f = Factor::new(&Mat::from_fn(n - 2, n - 2, |i, j| q[(i, j)])).unwrap();
        let mut idx: Vec<usize> = (0..n - 2).collect();
        for k in [n - 2, n - 1] {
            let row: Vec<f64> = idx.iter().map(|&l| q[(k, l)]).collect();
            assert!(f.push(&row, q[(k, k)]));
            idx.push(k);
        }
        for pos in [3, 0] {
            f.remove(pos);
            idx.remove(pos);
        }
        let sub = Mat::from_fn(idx.len(), idx.len(), |i, j| q[(idx[i], idx[j])]);
        let r: Vec<f64> = (0..idx.len()).map(|i| 1.0 + i as f64).collect();
        let x = f.solve(&r);
        for (i, ri) in r.iter().enumerate() {
            let qi: f64 = (0..idx.len()).map(|j| sub[(i, j)] * x[j]).sum();
            assert!((qi - ri).abs() < 1e-10, "row {i}: {qi} vs {ri}");
        }
    }
}
