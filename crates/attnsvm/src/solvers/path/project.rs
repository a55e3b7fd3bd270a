//! Euclidean (Frobenius) projections onto the feasible sets of the regularization paths.
//!
//! | set | projection |
//! |---|---|
//! | Frobenius ball `‖W‖_F ≤ R` | `W · min(1, R/‖W‖_F)` |
//! | nuclear ball `‖W‖_⋆ ≤ R` | `U diag(P_Δ(σ)) Vᵀ`, `P_Δ` the projection of the singular values onto `{s ≥ 0, Σs ≤ R}` |
//! | (K,Q) ball `½(‖K‖²_F + ‖Q‖²_F) ≤ R` | joint scaling (a Frobenius ball of radius `√(2R)` in `(K,Q)`) |
//! | cone `C_μ(M) = {W : ⟨W,M⟩ ≥ (1−μ)‖W‖_F‖M‖_F}` | second-order cone with axis `M/‖M‖_F`, closed form below |
//! | `C_μ(M) ∩ {‖W‖_F ≤ R}` | the cone's projection, then the ball's |
//!
//! The nuclear ball's projection is unitarily invariant, so it acts on the singular values alone,
//! and the Frobenius distance of matrices equals the Euclidean distance of their singular values.
//!
//! The cone: write `W = s·a + Y`, `a = M/‖M‖`, `s = ⟨W,a⟩`, `Y ⊥ a`, `r = ‖Y‖`, and `c = 1−μ = cos β`.
//! `W ∈ C` iff `r ≤ s·tan β`; `W` is in the polar cone iff `r·tan β ≤ −s` (projection 0); otherwise
//! the projection is onto the boundary ray `e = cos β·a + sin β·Y/r`: `P(W) = ⟨W, e⟩·e`.
//!
//! For a closed convex cone `C` and a ball `B` centred at the origin (in the same norm),
//! `P_{C∩B} = P_B ∘ P_C`: `P_C(W) = p` satisfies `⟨W − p, p⟩ = 0` and `⟨W − p, y⟩ ≤ 0` on `C`; the
//! scaled point `q = p·min(1, R/‖p‖)` then satisfies `⟨W − q, y − q⟩ ≤ 0` for every `y ∈ C ∩ B`.

use faer::Mat;

use crate::error::{invalid, Result};
use crate::linalg::{clear_upper_simd_state, fro_dot, fro_norm};

/// The projection onto the Frobenius ball `{‖W‖_F ≤ radius}`.
pub fn project_fro_ball(w: &Mat<f64>, radius: f64) -> Mat<f64> {
    let n = fro_norm(w);
    if n <= radius {
        return w.clone();
    }
    let c = radius / n;
    Mat::from_fn(w.nrows(), w.ncols(), |i, j| c * w[(i, j)])
}

/// The projection of a vector onto `{s ≥ 0, Σ s ≤ radius}` (the nonnegative part of the l1 ball).
/// Sort-based (Duchi et al. 2008): `s' = max(s − θ, 0)` with the threshold `θ ≥ 0` that makes the
/// sum `radius` when the clipped input sums to more.
pub fn project_capped_simplex(s: &[f64], radius: f64) -> Vec<f64> {
    let clipped: Vec<f64> = s.iter().map(|&x| x.max(0.0)).collect();
    if clipped.iter().sum::<f64>() <= radius {
        return clipped;
    }
    let mut u = clipped.clone();
    u.sort_unstable_by(|a, b| b.total_cmp(a));
    let (mut cum, mut theta) = (0.0, 0.0);
    for (j, &uj) in u.iter().enumerate() {
        cum += uj;
        let th = (cum - radius) / (j + 1) as f64;
        if uj - th > 0.0 {
            theta = th;
        }
    }
    clipped.iter().map(|&x| (x - theta).max(0.0)).collect()
}

/// The projection onto the nuclear ball `{‖W‖_⋆ ≤ radius}` (an SVD, then
/// [`project_capped_simplex`] on the singular values). NaN entries when the SVD fails.
pub fn project_nuclear_ball(w: &Mat<f64>, radius: f64) -> Mat<f64> {
    let (m, n) = w.shape();
    let Ok(svd) = w.svd() else {
        clear_upper_simd_state();
        return Mat::from_fn(m, n, |_, _| f64::NAN);
    };
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let k = m.min(n);
    let sig: Vec<f64> = (0..k).map(|i| s[i]).collect();
    if sig.iter().sum::<f64>() <= radius {
        clear_upper_simd_state();
        return w.clone();
    }
    let proj = project_capped_simplex(&sig, radius);
    let mut out = Mat::zeros(m, n);
    for (l, &sl) in proj.iter().enumerate() {
        if sl == 0.0 {
            continue;
        }
        for j in 0..n {
            let c = sl * v[(j, l)];
            for i in 0..m {
                out[(i, j)] += u[(i, l)] * c;
            }
        }
    }
    clear_upper_simd_state();
    out
}

/// The cone `C_μ(M) = {W : ⟨W, M⟩ ≥ (1−μ)‖W‖_F‖M‖_F}` of the local regularization path.
#[derive(Debug, Clone, PartialEq)]
pub struct Cone {
    /// `M/‖M‖_F`.
    axis: Mat<f64>,
    /// `cos β = 1 − μ`.
    cos: f64,
    /// `sin β`.
    sin: f64,
}

impl Cone {
    /// The cone around `m` with parameter `mu ∈ (0, 1)`. Errors for a zero or non-finite `m`.
    pub fn new(m: &Mat<f64>, mu: f64) -> Result<Cone> {
        if !(mu > 0.0 && mu < 1.0) {
            return Err(invalid!("cone: μ = {mu} must lie in (0, 1)"));
        }
        let n = fro_norm(m);
        if !n.is_finite() || n == 0.0 {
            return Err(invalid!(
                "cone: the axis M must be a finite nonzero matrix (‖M‖_F = {n})"
            ));
        }
        let cos = 1.0 - mu;
        Ok(Cone {
            axis: Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] / n),
            cos,
            sin: (1.0 - cos * cos).sqrt(),
        })
    }

    /// `M/‖M‖_F`.
    pub fn axis(&self) -> &Mat<f64> {
        &self.axis
    }

    /// `1 − μ`, the cosine of the half-angle.
    pub fn cos_half_angle(&self) -> f64 {
        self.cos
    }

    /// `⟨W, M⟩/(‖W‖_F‖M‖_F)` (1 for `W = 0`, which is the apex and lies in the cone).
    pub fn cosine(&self, w: &Mat<f64>) -> f64 {
        let n = fro_norm(w);
        if n == 0.0 {
            1.0
        } else {
            fro_dot(w, &self.axis) / n
        }
    }

    /// `true` when `W ∈ C_μ(M)` up to a relative slack `tol` in the cosine.
    pub fn contains(&self, w: &Mat<f64>, tol: f64) -> bool {
        self.cosine(w) >= self.cos - tol
    }

    /// The projection onto the cone (module docs).
    pub fn project(&self, w: &Mat<f64>) -> Mat<f64> {
        let s = fro_dot(w, &self.axis);
        let y = Mat::from_fn(w.nrows(), w.ncols(), |i, j| {
            w[(i, j)] - s * self.axis[(i, j)]
        });
        let r = fro_norm(&y);
        if r * self.cos <= s * self.sin {
            return w.clone();
        }
        if r * self.sin <= -s * self.cos {
            return Mat::zeros(w.nrows(), w.ncols());
        }
        // ⟨W, e⟩ with e = cos β·a + sin β·Y/r (r > 0 here).
        let coef = s * self.cos + r * self.sin;
        Mat::from_fn(w.nrows(), w.ncols(), |i, j| {
            coef * (self.cos * self.axis[(i, j)] + self.sin * y[(i, j)] / r)
        })
    }

    /// The projection onto `C_μ(M) ∩ {‖W‖_F ≤ radius}`.
    pub fn project_with_ball(&self, w: &Mat<f64>, radius: f64) -> Mat<f64> {
        project_fro_ball(&self.project(w), radius)
    }
}
