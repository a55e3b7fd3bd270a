//! Explicit feature maps and the primal layer `f(x) = W Φ(x)/h(x)` (spec `primal-dual.md` §1.4,
//! §1.5, §5.1, §5.4). For the exponential kernel
//!
//! ```text
//! Φ_l(x) = Π_i (x_i / D^{1/4})^{l_i} / √(l_i!),   every multi-index l ∈ ℕ^D with |l| ≤ T,
//! ```
//!
//! so `Σ_{|l|=t} Φ_l(x)Φ_l(y) = (xᵀy/√D)^t/t!` and `Φ(x)ᵀΦ(y) → exp(xᵀy/√D)` as `T → ∞`, with
//! error `≤ |z|^{T+1} e^{|z|}/(T+1)!`, `z = xᵀy/√D`; `C(D+T, T)` features. For `elu + 1` the map is
//! finite and exact.

use faer::Mat;

use super::{SvrKernel, SvrProblem};
use crate::error::{invalid, Result};
use crate::model::attention::elu_plus_one;

/// The exponential kernel's feature map truncated at total degree `degree`.
#[derive(Debug, Clone)]
pub struct ExpFeatureMap {
    dim: usize,
    degree: usize,
    /// Every multi-index of total degree ≤ `degree`, in graded order.
    indices: Vec<Vec<u32>>,
}

impl ExpFeatureMap {
    /// The map on `R^dim`; at most 10⁶ features.
    pub fn new(dim: usize, degree: usize) -> Result<Self> {
        let count = (1..=dim).fold(1u128, |acc, i| acc * (degree + i) as u128 / i as u128);
        if dim == 0 || count > 1_000_000 {
            return Err(invalid!(
                "exp feature map: D = {dim}, T = {degree} gives {count} features (1..=10⁶ allowed)"
            ));
        }
        let mut indices = Vec::with_capacity(count as usize);
        for t in 0..=degree {
            let mut l = vec![0u32; dim];
            push_degree(&mut l, 0, t as u32, &mut indices);
        }
        Ok(ExpFeatureMap {
            dim,
            degree,
            indices,
        })
    }

    pub fn degree(&self) -> usize {
        self.degree
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// `Φ(x)`.
    pub fn features(&self, x: &[f64]) -> Vec<f64> {
        let scale = (self.dim as f64).powf(-0.25);
        // powers[i][p] = (x_i/D^{1/4})^p / √(p!)
        let powers: Vec<Vec<f64>> = x
            .iter()
            .map(|&xi| {
                let mut row = vec![1.0; self.degree + 1];
                for p in 1..=self.degree {
                    row[p] = row[p - 1] * xi * scale / (p as f64).sqrt();
                }
                row
            })
            .collect();
        self.indices
            .iter()
            .map(|l| {
                l.iter()
                    .zip(&powers)
                    .map(|(&p, row)| row[p as usize])
                    .product()
            })
            .collect()
    }
}

/// Every `l[pos..]` with sum `rest`, appended in lexicographic order.
fn push_degree(l: &mut Vec<u32>, pos: usize, rest: u32, out: &mut Vec<Vec<u32>>) {
    if pos + 1 == l.len() {
        l[pos] = rest;
        out.push(l.clone());
        return;
    }
    for p in (0..=rest).rev() {
        l[pos] = p;
        push_degree(l, pos + 1, rest - p, out);
    }
    l[pos] = 0;
}

/// A finite feature map `Φ`.
#[derive(Debug, Clone)]
pub enum FeatureMap {
    /// The truncated exponential map (approximates [`SvrKernel::Exp`]).
    Exp(ExpFeatureMap),
    /// `elu + 1` (exactly [`SvrKernel::EluPlusOne`]).
    EluPlusOne,
}

impl FeatureMap {
    pub fn features(&self, x: &[f64]) -> Vec<f64> {
        match self {
            FeatureMap::Exp(m) => m.features(x),
            FeatureMap::EluPlusOne => x.iter().map(|&v| elu_plus_one(v)).collect(),
        }
    }

    fn kernel(&self) -> SvrKernel {
        match self {
            FeatureMap::Exp(_) => SvrKernel::Exp,
            FeatureMap::EluPlusOne => SvrKernel::EluPlusOne,
        }
    }
}

/// The primal layer `f(x) = W Φ(x)/h(x)` of a dual point: `W = Σ_j β_j Φ(k_j)ᵀ/h(k_j)`
/// (`D_v × D_φ`), `h(x) = Φ(x)ᵀ z` with `z = Σ_j Φ(k_j)`, everything from explicit features.
#[derive(Debug, Clone)]
pub struct PrimalLayer {
    pub w: Mat<f64>,
    pub z: Vec<f64>,
    map: FeatureMap,
    width: usize,
}

impl PrimalLayer {
    pub fn new(problem: &SvrProblem, beta: &Mat<f64>, map: FeatureMap) -> Result<Self> {
        let width_ok = match &map {
            FeatureMap::Exp(m) => m.dim == problem.keys().ncols(),
            FeatureMap::EluPlusOne => true,
        };
        if map.kernel() != problem.kernel || !width_ok || beta.shape() != problem.targets().shape()
        {
            return Err(invalid!(
                "primal layer: the feature map must match the SVR kernel ({:?}) and key width, β the targets' shape",
                problem.kernel
            ));
        }
        let keys = problem.keys();
        let phis: Vec<Vec<f64>> = (0..keys.nrows())
            .map(|j| map.features(&(0..keys.ncols()).map(|c| keys[(j, c)]).collect::<Vec<_>>()))
            .collect();
        let dphi = phis[0].len();
        let z: Vec<f64> = (0..dphi).map(|a| phis.iter().map(|p| p[a]).sum()).collect();
        let h: Vec<f64> = phis.iter().map(|p| crate::linalg::dot(p, &z)).collect();
        let w = Mat::from_fn(beta.ncols(), dphi, |c, a| {
            (0..keys.nrows())
                .map(|j| beta[(j, c)] * phis[j][a] / h[j])
                .sum()
        });
        Ok(PrimalLayer {
            w,
            z,
            map,
            width: keys.ncols(),
        })
    }

    /// `W Φ(q)/h(q)` for every query row.
    pub fn predict(&self, queries: &Mat<f64>) -> Result<Mat<f64>> {
        if queries.ncols() != self.width {
            return Err(invalid!(
                "primal layer: queries have {} columns, keys {}",
                queries.ncols(),
                self.width
            ));
        }
        crate::model::attention::check_finite("queries", queries)?;
        let mut out = Mat::zeros(queries.nrows(), self.w.nrows());
        for i in 0..queries.nrows() {
            let q: Vec<f64> = (0..queries.ncols()).map(|c| queries[(i, c)]).collect();
            let phi = self.map.features(&q);
            let h = crate::linalg::dot(&phi, &self.z);
            for c in 0..self.w.nrows() {
                out[(i, c)] = (0..phi.len()).map(|a| self.w[(c, a)] * phi[a]).sum::<f64>() / h;
            }
        }
        Ok(out)
    }
}
