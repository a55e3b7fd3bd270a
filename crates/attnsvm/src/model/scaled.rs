//! A gradient stored as `e^{log_scale} · mat`: the direction keeps full relative precision even when
//! the magnitude is far below the smallest f64 (≈ 1e-308), which is the normal regime of attention
//! training (‖W‖ → ∞, softmax saturated).

use faer::Mat;

/// The value `e^{log_scale} · mat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaled {
    pub mat: Mat<f64>,
    pub log_scale: f64,
}

impl Scaled {
    /// Zero of the given shape.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Scaled {
            mat: Mat::zeros(rows, cols),
            log_scale: 0.0,
        }
    }

    /// `log ‖value‖_F` (−∞ for zero).
    pub fn log_norm(&self) -> f64 {
        self.log_scale + crate::linalg::fro_norm(&self.mat).ln()
    }

    /// The plain value (may underflow to zero: use only where that is the intended arithmetic).
    pub fn value(&self) -> Mat<f64> {
        let s = self.log_scale.exp();
        Mat::from_fn(self.mat.nrows(), self.mat.ncols(), |i, j| {
            s * self.mat[(i, j)]
        })
    }

    /// The unit direction `value / ‖value‖_F`, or `None` for a zero gradient.
    pub fn direction(&self) -> Option<Mat<f64>> {
        let nrm = crate::linalg::fro_norm(&self.mat);
        (nrm > 0.0 && nrm.is_finite()).then(|| {
            Mat::from_fn(self.mat.nrows(), self.mat.ncols(), |i, j| {
                self.mat[(i, j)] / nrm
            })
        })
    }

    /// `self + e^{log_b} · b` with the larger of the two scales kept.
    pub fn add_scaled(&self, b: &Mat<f64>, log_b: f64) -> Scaled {
        let s = self.log_scale.max(log_b);
        let (ca, cb) = ((self.log_scale - s).exp(), (log_b - s).exp());
        let mat = Mat::from_fn(b.nrows(), b.ncols(), |i, j| {
            ca * self.mat[(i, j)] + cb * b[(i, j)]
        });
        Scaled { mat, log_scale: s }
    }

    /// Rescale so that the largest entry is about one (keeps products from overflowing).
    pub fn normalized(mut self) -> Scaled {
        let m = self.mat.norm_max();
        if m > 0.0 && m.is_finite() {
            crate::linalg::scale_in_place(&mut self.mat, 1.0 / m);
            self.log_scale += m.ln();
        }
        self
    }
}
