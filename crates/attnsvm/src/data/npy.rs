//! `.npy` interchange with NumPy: read f64 (f32 widened) and int64/int32 arrays with their shape,
//! write C-ordered f64 and int64 arrays. Every failure names the file and says what is wrong.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use npyz::WriterBuilder;

use crate::error::{Error, Result};

/// An array read from a `.npy` file, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

fn npy_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn open(path: &Path) -> Result<npyz::NpyFile<BufReader<File>>> {
    let mut file = File::open(path).map_err(|e| npy_err(path, format!("cannot open: {e}")))?;
    check_declared_size(path, &file)?;
    std::io::Seek::rewind(&mut file).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    npyz::NpyFile::new(BufReader::new(file)).map_err(|e| {
        // npyz formats some parse errors over several lines; ours are one line.
        let e = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        npy_err(path, format!("not a valid .npy file (corrupt header: {e})"))
    })
}

/// Before npyz reads the header (it multiplies the shape without overflow checks): the shape must
/// have a representable element count whose data fits in the file. Headers we cannot pre-parse are
/// left to npyz's own checks.
fn check_declared_size(path: &Path, file: &File) -> Result<()> {
    let Some((header_end, shape, item)) = peek_header(file) else {
        return Ok(());
    };
    let count = shape.iter().try_fold(1u64, |acc, &s| acc.checked_mul(s));
    let bytes = count.and_then(|c| c.checked_mul(item));
    let available = file
        .metadata()
        .map(|m| m.len().saturating_sub(header_end))
        .unwrap_or(u64::MAX);
    match bytes {
        None => Err(npy_err(
            path,
            format!("shape {shape:?} has more elements than can be addressed"),
        )),
        Some(b) if b > available => Err(npy_err(
            path,
            format!("truncated data: shape {shape:?} needs {b} bytes, the file holds {available}"),
        )),
        Some(_) => Ok(()),
    }
}

/// `(offset of the data, shape, item size)` from a `.npy` header, when it has the usual form.
fn peek_header(file: &File) -> Option<(u64, Vec<u64>, u64)> {
    use std::io::Read;
    let mut r = BufReader::new(file);
    let mut pre = [0u8; 10];
    r.read_exact(&mut pre).ok()?;
    if &pre[..6] != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10),
        2 | 3 => {
            let mut more = [0u8; 2];
            r.read_exact(&mut more).ok()?;
            (
                u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as u64,
                12,
            )
        }
        _ => return None,
    };
    let mut text = vec![0u8; usize::try_from(len).ok()?.min(1 << 20)];
    r.read_exact(&mut text).ok()?;
    let text = String::from_utf8(text).ok()?;
    let descr = text.split("'descr':").nth(1)?.split('\'').nth(1)?;
    let item: u64 = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)?
        .parse()
        .ok()?;
    let shape = text
        .split("'shape':")
        .nth(1)?
        .split('(')
        .nth(1)?
        .split(')')
        .next()?;
    let dims: Option<Vec<u64>> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect();
    Some((start + len, dims?, item))
}

fn read_as<T: npyz::Deserialize>(
    path: &Path,
    npy: npyz::NpyFile<BufReader<File>>,
) -> Result<Vec<T>> {
    let expected = npy.len();
    let data = npy.into_vec::<T>().map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated"
        } else {
            "corrupt"
        };
        npy_err(
            path,
            format!("{what} data ({e}); expected {expected} values"),
        )
    })?;
    Ok(data)
}

/// Rearrange Fortran-ordered data into C order.
fn fortran_to_c<T: Copy>(shape: &[usize], data: Vec<T>) -> Vec<T> {
    if shape.len() < 2 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..data.len() {
        // Fortran offset of the C-ordered multi-index `idx`.
        let (mut off, mut stride) = (0, 1);
        for (k, &i) in idx.iter().enumerate() {
            off += i * stride;
            stride *= shape[k];
        }
        out.push(data[off]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn header(path: &Path) -> Result<(npyz::NpyFile<BufReader<File>>, Vec<usize>, String)> {
    let npy = open(path)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => {
            return Err(npy_err(
                path,
                format!("unsupported dtype {}", other.descr()),
            ))
        }
    };
    Ok((npy, shape, dtype))
}

/// Read an array stored as `T` (dtype code `wide`, e.g. `f8`) or as a narrower `N` (`narrow`,
/// widened exactly); `what` names the accepted dtypes in the error.
fn read_widened<T, N>(path: &Path, wide: &str, narrow: &str, what: &str) -> Result<Array<T>>
where
    T: npyz::Deserialize + From<N> + Copy,
    N: npyz::Deserialize,
{
    let (npy, shape, dtype) = header(path)?;
    let fortran = npy.order() == npyz::Order::Fortran;
    let data = match &dtype[1..] {
        code if code == wide => read_as::<T>(path, npy)?,
        code if code == narrow => read_as::<N>(path, npy)?.into_iter().map(T::from).collect(),
        _ => {
            return Err(npy_err(
                path,
                format!("unsupported dtype '{dtype}': expected {what}"),
            ))
        }
    };
    let data = if fortran {
        fortran_to_c(&shape, data)
    } else {
        data
    };
    Ok(Array { shape, data })
}

/// Read a floating-point array; `float32` is widened to `float64`.
pub fn read_f64(path: &Path) -> Result<Array<f64>> {
    read_widened::<f64, f32>(path, "f8", "f4", "float64 or float32")
}

/// Read an integer array (`int64` or `int32`).
pub fn read_i64(path: &Path) -> Result<Array<i64>> {
    read_widened::<i64, i32>(path, "i8", "i4", "int64 or int32")
}

fn write_npy<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape does not match data"
    );
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = File::create(path).map_err(io)?;
    let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    w.extend(data.iter().copied()).map_err(io)?;
    w.finish().map_err(io)
}

/// Write a C-ordered `float64` array.
pub fn write_f64(path: &Path, shape: &[usize], data: &[f64]) -> Result<()> {
    write_npy(path, shape, data)
}

/// Write a C-ordered `int64` array.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    write_npy(path, shape, data)
}

/// Write a `faer` matrix as a C-ordered `float64` array.
pub fn write_mat(path: &Path, m: &faer::Mat<f64>) -> Result<()> {
    write_f64(
        path,
        &[m.nrows(), m.ncols()],
        &crate::linalg::mat_to_row_major(m),
    )
}

/// Read a rank-2 `float64` matrix.
pub fn read_mat(path: &Path) -> Result<faer::Mat<f64>> {
    let a = read_f64(path)?;
    if a.shape.len() != 2 {
        return Err(npy_err(
            path,
            format!("expected a matrix (rank 2), got shape {:?}", a.shape),
        ));
    }
    if let Some(k) = a.data.iter().position(|x| !x.is_finite()) {
        return Err(npy_err(
            path,
            format!("non-finite value {} at flat index {k}", a.data[k]),
        ));
    }
    Ok(crate::linalg::mat_from_row_major(
        a.shape[0], a.shape[1], &a.data,
    ))
}

/// Write a small text file (JSON, CSV) in one go.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = File::create(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_rearranged_to_c_order() {
        // The 2×3 matrix [[0,1,2],[3,4,5]] stored column by column.
        let f = vec![0, 3, 1, 4, 2, 5];
        assert_eq!(fortran_to_c(&[2, 3], f), vec![0, 1, 2, 3, 4, 5]);
    }
}
