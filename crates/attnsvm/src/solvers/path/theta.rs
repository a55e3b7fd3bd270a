//! The optimization variable of a path: `W`, or `(K, Q)` with `W = K Qᵀ`, as one vector with the
//! joint Frobenius inner product `⟨(K,Q),(K',Q')⟩ = ⟨K,K'⟩ + ⟨Q,Q'⟩`.

use faer::Mat;

use crate::linalg::{fro_dot, fro_norm};
use crate::model::Scaled;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Theta {
    W(Mat<f64>),
    Kq(Mat<f64>, Mat<f64>),
}

fn lin(a: &Mat<f64>, ca: f64, b: &Mat<f64>, cb: f64) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| ca * a[(i, j)] + cb * b[(i, j)])
}

fn scaled(a: &Mat<f64>, c: f64) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| c * a[(i, j)])
}

impl Theta {
    /// The attention matrix `W` (`K Qᵀ` for (K,Q)).
    pub fn effective(&self) -> Mat<f64> {
        match self {
            Theta::W(w) => w.clone(),
            Theta::Kq(k, q) => k * q.transpose(),
        }
    }

    pub fn scale(&self, c: f64) -> Theta {
        match self {
            Theta::W(w) => Theta::W(scaled(w, c)),
            Theta::Kq(k, q) => Theta::Kq(scaled(k, c), scaled(q, c)),
        }
    }

    /// `a·self + b·other` (same kind).
    pub fn combine(&self, a: f64, other: &Theta, b: f64) -> Theta {
        match (self, other) {
            (Theta::W(x), Theta::W(y)) => Theta::W(lin(x, a, y, b)),
            (Theta::Kq(k, q), Theta::Kq(k2, q2)) => Theta::Kq(lin(k, a, k2, b), lin(q, a, q2, b)),
            _ => unreachable!("a path never mixes parameterizations"),
        }
    }

    pub fn dot(&self, other: &Theta) -> f64 {
        match (self, other) {
            (Theta::W(x), Theta::W(y)) => fro_dot(x, y),
            (Theta::Kq(k, q), Theta::Kq(k2, q2)) => fro_dot(k, k2) + fro_dot(q, q2),
            _ => unreachable!("a path never mixes parameterizations"),
        }
    }

    /// Joint Frobenius norm.
    pub fn norm(&self) -> f64 {
        match self {
            Theta::W(w) => fro_norm(w),
            Theta::Kq(k, q) => fro_norm(k).hypot(fro_norm(q)),
        }
    }

    /// The gradient in this parameterization from `∇_W L = e^{s}·G`, as a unit direction and the
    /// log of its norm: `G` itself, or `(G Q, Gᵀ K)` for (K,Q). `None` for a zero gradient.
    pub fn gradient(&self, grad_w: &Scaled) -> (Option<Theta>, f64) {
        let g = match self {
            Theta::W(_) => Theta::W(grad_w.mat.clone()),
            Theta::Kq(k, q) => Theta::Kq(&grad_w.mat * q, grad_w.mat.transpose() * k),
        };
        let n = g.norm();
        if n > 0.0 && n.is_finite() {
            (Some(g.scale(1.0 / n)), grad_w.log_scale + n.ln())
        } else {
            (None, f64::NEG_INFINITY)
        }
    }
}
