//! A byte-level `.npy` writer for the I/O tests (format 1.0: magic `\x93NUMPY`, version, a
//! little-endian u16 header length, a Python dict literal padded with spaces so that the data
//! starts at a multiple of 64 bytes, ending in `\n`), so the tests need neither NumPy nor the
//! writer under test; and small helpers around instance directories.

use std::fs;
use std::path::Path;

use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;

pub fn shape_literal(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [a] => format!("({a},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A version-1.0 `.npy` file with the given header fields and raw data bytes.
pub fn npy_bytes_raw(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    // Pad so that 10 + len(header incl. '\n') is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    assert_eq!((out.len() - data.len()) % 64, 0);
    out
}

pub fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let f = if fortran { "True" } else { "False" };
    npy_bytes_raw(descr, f, &shape_literal(shape), data)
}

pub fn f64_le(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn f64_be(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_be_bytes()).collect()
}
pub fn f32_le(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn i64_le(xs: &[i64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn i32_le(xs: &[i32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
}

/// Write an instance directory with the raw writer (C order, f64, int64 alpha).
pub fn write_raw_instance(dir: &Path, inst: &Instance) {
    fs::create_dir_all(dir).unwrap();
    let (n, t, d) = (inst.n, inst.t, inst.d);
    write(
        &dir.join("X.npy"),
        &npy_bytes("<f8", false, &[n, t, d], &f64_le(&inst.x)),
    );
    if let Some(z) = &inst.z {
        write(
            &dir.join("Z.npy"),
            &npy_bytes("<f8", false, &[n, d], &f64_le(z)),
        );
    }
    write(
        &dir.join("y.npy"),
        &npy_bytes("<f8", false, &[n], &f64_le(&inst.y)),
    );
    write(
        &dir.join("v.npy"),
        &npy_bytes("<f8", false, &[d], &f64_le(&inst.v)),
    );
    if let Some(a) = &inst.alpha {
        let a: Vec<i64> = a.iter().map(|&k| k as i64).collect();
        write(
            &dir.join("alpha.npy"),
            &npy_bytes("<i8", false, &[n], &i64_le(&a)),
        );
    }
}

pub fn small_instance(self_attention: bool) -> Instance {
    let spec = GenSpec {
        self_attention,
        ..GenSpec::new(Family::Gaussian, 3, 4, 2, 5)
    };
    generate(&spec).unwrap().instance
}

pub fn file_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}
