//! Helpers of the CLI tests: run the built binary, and write `.npy` files byte by byte (format
//! version 1.0: magic, 2-byte little-endian header length, a Python dict padded with spaces to a
//! multiple of 64 bytes and ending in '\n', then the raw data), so no NumPy is needed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `attnsvm args…` in `cwd`.
pub fn attnsvm(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attnsvm"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("the attnsvm binary runs")
}

/// Run and require success; return stdout.
pub fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = attnsvm(cwd, args);
    assert!(
        out.status.success(),
        "attnsvm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The bytes of a `.npy` file with dtype `descr` (e.g. `<f8`), order and shape.
pub fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

pub fn f64_data(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn write_f64(path: &Path, shape: &[usize], v: &[f64]) {
    std::fs::write(path, npy_bytes("<f8", false, shape, &f64_data(v))).unwrap();
}

pub fn write_f32(path: &Path, shape: &[usize], v: &[f32]) {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<f4", false, shape, &data)).unwrap();
}

pub fn write_i64(path: &Path, shape: &[usize], v: &[i64]) {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<i8", false, shape, &data)).unwrap();
}

pub fn write_i32(path: &Path, shape: &[usize], v: &[i32]) {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<i4", false, shape, &data)).unwrap();
}

/// A small valid cross-attention instance (n = 2, T = 3, d = 2): tokens exactly representable in
/// float32, sequence 0 best at token 0, sequence 1 at token 2.
pub struct Tiny {
    pub x: Vec<f64>,
    pub z: Vec<f64>,
    pub y: Vec<f64>,
    pub v: Vec<f64>,
    pub alpha: Vec<i64>,
}

impl Tiny {
    pub fn new() -> Self {
        Tiny {
            x: vec![
                -1.0, 0.25, -1.125, -0.0625, -1.5, 0.125, 0.75, -0.125, 0.75, 0.0, 1.0, -0.25,
            ],
            z: vec![0.75, 0.5, -0.625, -0.75],
            y: vec![1.0, 1.0],
            v: vec![0.875, 0.375],
            alpha: vec![0, 2],
        }
    }

    /// Write the instance into `dir` (created), as f64 C-ordered arrays.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        write_f64(&dir.join("X.npy"), &[2, 3, 2], &self.x);
        write_f64(&dir.join("Z.npy"), &[2, 2], &self.z);
        write_f64(&dir.join("y.npy"), &[2], &self.y);
        write_f64(&dir.join("v.npy"), &[2], &self.v);
        write_i64(&dir.join("alpha.npy"), &[2], &self.alpha);
        dir.to_path_buf()
    }
}

/// The file names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
