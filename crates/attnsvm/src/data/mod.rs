//! Instances: `n` sequences of `T` tokens in `R^d`, one query per sequence, labels and a linear head.
//!
//! The instance directory (shared with NumPy users) holds `X.npy` (n,T,d) f64, optional `Z.npy`
//! (n,d) f64 (absent: self-attention, the query is a token of the sequence), `y.npy` (n,) in {−1,+1},
//! `v.npy` (d,) and optional `alpha.npy` (n,) int64 (selected tokens). `float32` arrays are widened,
//! `int32` indices accepted.

pub mod fixtures;
pub mod generate;
pub mod npy;

use std::path::Path;

use crate::error::{invalid, Error, Result};

/// One attention instance. Tokens are rows: `x_it = x[(i*T + t)*d ..][..d]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub n: usize,
    pub t: usize,
    pub d: usize,
    /// Tokens, `n·T·d` values, row-major (sequence, token, feature).
    pub x: Vec<f64>,
    /// Cross-attention queries `z_i` (`n·d`, row-major); `None` means self-attention.
    pub z: Option<Vec<f64>>,
    /// Labels `y_i ∈ {−1,+1}`.
    pub y: Vec<f64>,
    /// The linear head `v ∈ R^d`.
    pub v: Vec<f64>,
    /// Selected token per sequence, when the instance names one.
    pub alpha: Option<Vec<usize>>,
}

impl Instance {
    /// Build and validate an instance (shapes, finiteness, labels, indices).
    pub fn new(
        (n, t, d): (usize, usize, usize),
        x: Vec<f64>,
        z: Option<Vec<f64>>,
        y: Vec<f64>,
        v: Vec<f64>,
        alpha: Option<Vec<usize>>,
    ) -> Result<Self> {
        let inst = Instance {
            n,
            t,
            d,
            x,
            z,
            y,
            v,
            alpha,
        };
        inst.validate()?;
        Ok(inst)
    }

    /// Check every invariant of the instance; the error names the array and the entry.
    pub fn validate(&self) -> Result<()> {
        let (n, t, d) = (self.n, self.t, self.d);
        if n == 0 || t == 0 || d == 0 {
            return Err(invalid!(
                "X: empty instance (n, T, d) = ({n}, {t}, {d}); all must be ≥ 1"
            ));
        }
        let ntd = n.checked_mul(t).and_then(|nt| nt.checked_mul(d));
        check_len(
            "X",
            self.x.len(),
            ntd.ok_or_else(|| invalid!("X: shape ({n}, {t}, {d}) is too large"))?,
        )?;
        check_finite("X", &self.x, &[n, t, d])?;
        if let Some(z) = &self.z {
            check_len("Z", z.len(), n.saturating_mul(d))?;
            check_finite("Z", z, &[n, d])?;
        }
        check_len("y", self.y.len(), n)?;
        if let Some(i) = self.y.iter().position(|&yi| yi != 1.0 && yi != -1.0) {
            return Err(invalid!(
                "y: label {} at index {i} is not −1 or +1",
                self.y[i]
            ));
        }
        check_len("v", self.v.len(), d)?;
        check_finite("v", &self.v, &[d])?;
        if let Some(a) = &self.alpha {
            check_len("alpha", a.len(), n)?;
            if let Some(i) = a.iter().position(|&ai| ai >= t) {
                return Err(invalid!(
                    "alpha: index {} at sequence {i} is out of range 0..{t}",
                    a[i]
                ));
            }
        }
        Ok(())
    }

    /// `true` for self-attention (no `Z`).
    pub fn is_self_attention(&self) -> bool {
        self.z.is_none()
    }

    /// Token `t` of sequence `i`.
    #[inline]
    pub fn token(&self, i: usize, t: usize) -> &[f64] {
        let o = (i * self.t + t) * self.d;
        &self.x[o..o + self.d]
    }

    /// The sequences `ids` (in that order) as an instance of their own: a minibatch.
    /// Panics when an index is out of range (callers draw them from `0..n`).
    pub fn subset(&self, ids: &[usize]) -> Instance {
        Instance {
            n: ids.len(),
            t: self.t,
            d: self.d,
            x: ids.iter().flat_map(|&i| self.tokens(i)).copied().collect(),
            z: self.z.as_ref().map(|z| {
                ids.iter()
                    .flat_map(|&i| &z[i * self.d..(i + 1) * self.d])
                    .copied()
                    .collect()
            }),
            y: ids.iter().map(|&i| self.y[i]).collect(),
            v: self.v.clone(),
            alpha: self
                .alpha
                .as_ref()
                .map(|a| ids.iter().map(|&i| a[i]).collect()),
        }
    }

    /// The `T×d` token block of sequence `i`, row-major.
    #[inline]
    pub fn tokens(&self, i: usize) -> &[f64] {
        let o = i * self.t * self.d;
        &self.x[o..o + self.t * self.d]
    }

    /// The queries as an `n×d` row-major matrix: `Z` for cross-attention, the token at
    /// `query_position` of each sequence for self-attention.
    pub fn queries(&self, query_position: usize) -> Result<Vec<f64>> {
        match &self.z {
            Some(z) => Ok(z.clone()),
            None => {
                if query_position >= self.t {
                    return Err(invalid!(
                        "query position {query_position} is out of range 0..{} (T)",
                        self.t
                    ));
                }
                Ok((0..self.n)
                    .flat_map(|i| self.token(i, query_position).to_vec())
                    .collect())
            }
        }
    }

    /// Token scores `γ_it = y_i vᵀx_it`, `n·T` values.
    pub fn scores(&self) -> Vec<f64> {
        let mut g = Vec::with_capacity(self.n * self.t);
        for i in 0..self.n {
            for t in 0..self.t {
                g.push(self.y[i] * crate::linalg::dot(self.token(i, t), &self.v));
            }
        }
        g
    }

    /// Globally optimal tokens `opt_i = argmax_t γ_it` (first index on ties).
    pub fn optimal_tokens(&self) -> Vec<usize> {
        let g = self.scores();
        g.chunks(self.t).map(argmax).collect()
    }

    /// Read an instance directory.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(invalid!("{}: not an instance directory", dir.display()));
        }
        let xa = npy::read_f64(&dir.join("X.npy"))?;
        let [n, t, d] = xa.shape[..] else {
            return Err(shape_err(dir, "X", &xa.shape, "(n, T, d)"));
        };
        let z = if dir.join("Z.npy").exists() {
            Some(read_matching(dir, "Z", &[n, d])?)
        } else {
            None
        };
        let y = read_matching(dir, "y", &[n])?;
        let v = read_matching(dir, "v", &[d])?;
        let alpha = if dir.join("alpha.npy").exists() {
            Some(read_alpha(&dir.join("alpha.npy"), n, t)?)
        } else {
            None
        };
        Instance::new((n, t, d), xa.data, z, y, v, alpha).map_err(|e| match e {
            Error::Invalid(m) => invalid!("{}: {m}", dir.display()),
            e => e,
        })
    }

    /// Write the instance directory (creating it). Same instance, same bytes.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        npy::write_f64(&dir.join("X.npy"), &[self.n, self.t, self.d], &self.x)?;
        if let Some(z) = &self.z {
            npy::write_f64(&dir.join("Z.npy"), &[self.n, self.d], z)?;
        }
        npy::write_f64(&dir.join("y.npy"), &[self.n], &self.y)?;
        npy::write_f64(&dir.join("v.npy"), &[self.d], &self.v)?;
        if let Some(a) = &self.alpha {
            let a: Vec<i64> = a.iter().map(|&k| k as i64).collect();
            npy::write_i64(&dir.join("alpha.npy"), &[self.n], &a)?;
        }
        Ok(())
    }
}

/// Read a selection vector (`alpha.npy` or any `(n,)` integer file) and check its range.
pub fn read_alpha(path: &Path, n: usize, t: usize) -> Result<Vec<usize>> {
    let a = npy::read_i64(path)?;
    if a.shape != [n] {
        return Err(Error::Npy {
            path: path.to_path_buf(),
            msg: format!("wrong shape {:?}: expected ({n},) to match X", a.shape),
        });
    }
    if let Some(i) = a.data.iter().position(|&k| k < 0 || k as usize >= t) {
        return Err(Error::Npy {
            path: path.to_path_buf(),
            msg: format!("index {} at sequence {i} is out of range 0..{t}", a.data[i]),
        });
    }
    Ok(a.data.into_iter().map(|k| k as usize).collect())
}

fn shape_err(dir: &Path, name: &str, got: &[usize], want: &str) -> Error {
    Error::Npy {
        path: dir.join(format!("{name}.npy")),
        msg: format!("wrong shape {got:?}: expected {want}"),
    }
}

/// Read `dir/name.npy` and check that its shape is `want` (the sizes `X` implies).
fn read_matching(dir: &Path, name: &str, want: &[usize]) -> Result<Vec<f64>> {
    let a = npy::read_f64(&dir.join(format!("{name}.npy")))?;
    if a.shape != want {
        let dims: Vec<String> = want.iter().map(usize::to_string).collect();
        let tuple = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        return Err(shape_err(
            dir,
            name,
            &a.shape,
            &format!("{tuple} to match X"),
        ));
    }
    Ok(a.data)
}

fn check_len(name: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(invalid!("{name}: has {got} values, expected {want}"));
    }
    Ok(())
}

fn check_finite(name: &str, a: &[f64], shape: &[usize]) -> Result<()> {
    if let Some(k) = a.iter().position(|x| !x.is_finite()) {
        let mut idx = vec![0; shape.len()];
        let mut rest = k;
        for j in (0..shape.len()).rev() {
            idx[j] = rest % shape[j];
            rest /= shape[j];
        }
        return Err(invalid!(
            "{name}: non-finite value {} at index {idx:?}",
            a[k]
        ));
    }
    Ok(())
}

/// Index of the largest entry (first on ties; NaN never wins).
pub fn argmax(a: &[f64]) -> usize {
    let mut best = 0;
    for (k, &x) in a.iter().enumerate() {
        if x > a[best] {
            best = k;
        }
    }
    best
}
