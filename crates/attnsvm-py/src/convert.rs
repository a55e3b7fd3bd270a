//! NumPy ↔ attnsvm: arrays in (any real dtype, any memory order: widened to f64 and copied once into
//! the core's owned buffers), arrays out (the core's `Vec`s handed to NumPy without a copy), and
//! the error mapping. Shape errors are worded like the core's (`"Z: wrong shape [3, 4]: expected
//! (3, 5) to match X"`); every other bad value is reported by the core's own validation, so Python
//! sees the same one-line message as the CLI.

use attnsvm::data::Instance;
use faer::Mat;
use numpy::ndarray::{Array2, Array3, ArrayD};
use numpy::{AllowTypeChange, IntoPyArray, PyArray1, PyArray2, PyArrayLikeDyn};
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use serde::de::DeserializeOwned;

/// A real array argument: lists, ints and float32 are accepted and widened to f64.
pub type Real<'py> = PyArrayLikeDyn<'py, f64, AllowTypeChange>;
/// An integer array argument (selected tokens).
pub type Index<'py> = PyArrayLikeDyn<'py, i64, AllowTypeChange>;

/// The core's error as a Python exception: bad input is `ValueError` with the core's message.
pub fn py_err(e: attnsvm::Error) -> PyErr {
    match e {
        attnsvm::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        attnsvm::Error::Interrupted => PyKeyboardInterrupt::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// `ValueError` with a message.
pub fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// `Result<T, attnsvm::Error>` → `PyResult<T>`.
pub trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for attnsvm::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(py_err)
    }
}

fn tuple(dims: &[usize]) -> String {
    match dims {
        [a] => format!("({a},)"),
        _ => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The array's values (row-major) after checking its shape against `want` (`None` = any size).
pub fn values<T: numpy::Element + Copy>(
    name: &str,
    a: &PyArrayLikeDyn<'_, T, AllowTypeChange>,
    want: &[Option<usize>],
    what: &str,
) -> PyResult<(Vec<usize>, Vec<T>)> {
    let view = a.as_array();
    let shape = view.shape().to_vec();
    let fits = shape.len() == want.len()
        && shape
            .iter()
            .zip(want)
            .all(|(s, w)| w.is_none_or(|w| *s == w));
    if !fits {
        return Err(value_err(format!(
            "{name}: wrong shape {shape:?}: expected {what}"
        )));
    }
    Ok((shape, view.iter().copied().collect()))
}

/// Sizes `(n, T, d)` of a token array `X`.
pub fn tokens(x: &Real<'_>) -> PyResult<((usize, usize, usize), Vec<f64>)> {
    let (shape, data) = values("X", x, &[None, None, None], "(n, T, d)")?;
    Ok(((shape[0], shape[1], shape[2]), data))
}

/// Selected tokens of shape `want` (`(n,)`, or `(n, T)` one per query position), each in `0..t`;
/// the messages are those of the CLI's `--alpha FILE` check.
pub fn selection(a: &Index<'_>, want: &[usize], t: usize) -> PyResult<Vec<usize>> {
    let dims: Vec<Option<usize>> = want.iter().map(|&w| Some(w)).collect();
    let (_, data) = values("alpha", a, &dims, &format!("{} to match X", tuple(want)))?;
    if let Some(k) = data.iter().position(|&s| s < 0 || s as usize >= t) {
        let place = match want {
            [_, per] => format!("sequence {}, query position {}", k / per, k % per),
            _ => format!("sequence {k}"),
        };
        return Err(value_err(format!(
            "alpha: index {} at {place} is out of range 0..{t}",
            data[k]
        )));
    }
    Ok(data.into_iter().map(|s| s as usize).collect())
}

/// An instance from NumPy arrays, validated by the core (`Instance::new`).
pub fn instance(
    x: &Real<'_>,
    z: Option<&Real<'_>>,
    y: &Real<'_>,
    v: &Real<'_>,
    alpha: Option<&Index<'_>>,
) -> PyResult<Instance> {
    let ((n, t, d), x) = tokens(x)?;
    let z = z
        .map(|z| {
            values(
                "Z",
                z,
                &[Some(n), Some(d)],
                &format!("{} to match X", tuple(&[n, d])),
            )
        })
        .transpose()?
        .map(|(_, z)| z);
    let (_, y) = values("y", y, &[Some(n)], &format!("{} to match X", tuple(&[n])))?;
    let (_, v) = values("v", v, &[Some(d)], &format!("{} to match X", tuple(&[d])))?;
    let alpha = alpha.map(|a| selection(a, &[n], t)).transpose()?;
    Instance::new((n, t, d), x, z, y, v, alpha).or_py()
}

/// A square `d×d` matrix argument.
pub fn square(name: &str, m: &Real<'_>, d: usize) -> PyResult<Mat<f64>> {
    let (_, data) = values(name, m, &[Some(d), Some(d)], &format!("({d}, {d}) (d×d)"))?;
    Ok(attnsvm::linalg::mat_from_row_major(d, d, &data))
}

/// A matrix as a C-ordered NumPy array.
pub fn mat<'py>(py: Python<'py>, m: &Mat<f64>) -> Bound<'py, PyArray2<f64>> {
    let data = attnsvm::linalg::mat_to_row_major(m);
    Array2::from_shape_vec((m.nrows(), m.ncols()), data)
        .expect("row-major data of the matrix's shape")
        .into_pyarray(py)
}

/// A stack of equally shaped matrices as one `(k, r, c)` array.
pub fn mats<'py>(py: Python<'py>, ms: &[&Mat<f64>], r: usize, c: usize) -> Bound<'py, PyAny> {
    let data: Vec<f64> = ms
        .iter()
        .flat_map(|m| attnsvm::linalg::mat_to_row_major(m))
        .collect();
    Array3::from_shape_vec((ms.len(), r, c), data)
        .expect("row-major data of the stack's shape")
        .into_pyarray(py)
        .into_any()
}

/// A flat vector as a 1-D array (no copy).
pub fn vec1<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>) -> Bound<'py, PyArray1<T>> {
    v.into_pyarray(py)
}

/// A row-major buffer as an array of `shape` (no copy).
pub fn shaped<'py, T: numpy::Element>(
    py: Python<'py>,
    shape: &[usize],
    v: Vec<T>,
) -> Bound<'py, PyAny> {
    ArrayD::from_shape_vec(shape.to_vec(), v)
        .expect("row-major data of the given shape")
        .into_pyarray(py)
        .into_any()
}

/// Indices as int64.
pub fn indices(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&k| k as i64).collect()
}

/// An enum from its name, as the CLI and `config.toml` spell it (the core's serde names).
pub fn parse<T: DeserializeOwned>(what: &str, name: &str, names: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| value_err(format!("{what}: '{name}' is not one of {names}")))
}

/// An enum's name, as the CLI and `config.toml` spell it.
pub fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A serde value (a report the CLI writes as JSON) as Python objects (dict, list, float, …).
pub fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| value_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}
