//! The instance directory and `.npy` I/O: save/load round trips, determinism on disk, and the NumPy
//! variants we accept (float32, int32 indices, Fortran order, big-endian). Bad inputs are in
//! `data_errors.rs`. Files are written byte by byte by `crate::common::npy_raw`.

use std::fs;

use crate::common::npy_raw::*;
use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::{npy, Instance};

// ---------------------------------------------------------------------------------------------
// Round trips and determinism

#[test]
fn save_then_load_is_the_identity_for_every_family() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, family) in Family::ALL.into_iter().enumerate() {
        for self_attention in [false, true] {
            let spec = GenSpec {
                self_attention,
                ..GenSpec::new(family, 2, 3, 6, 40 + k as u64)
            };
            let inst = generate(&spec).unwrap().instance;
            let dir = tmp
                .path()
                .join(format!("{}-{self_attention}", family.name()));
            inst.save(&dir).unwrap();
            assert_eq!(dir.join("Z.npy").exists(), !self_attention);
            let back = Instance::load(&dir).unwrap();
            assert_eq!(back, inst, "{family:?} self={self_attention}");
        }
    }
    // No alpha: no alpha.npy, and None comes back.
    let mut inst = small_instance(false);
    inst.alpha = None;
    let dir = tmp.path().join("no-alpha");
    inst.save(&dir).unwrap();
    assert!(!dir.join("alpha.npy").exists());
    assert_eq!(Instance::load(&dir).unwrap(), inst);
}

#[test]
fn save_writes_what_the_raw_npy_format_says() {
    // The library's writer and the byte-level writer of this test agree on the data section and
    // on every header field, so NumPy reads what we write.
    let tmp = tempfile::tempdir().unwrap();
    let inst = small_instance(false);
    inst.save(&tmp.path().join("lib")).unwrap();
    let x = fs::read(tmp.path().join("lib/X.npy")).unwrap();
    assert_eq!(&x[..6], b"\x93NUMPY");
    let hlen = match x[6] {
        1 => u16::from_le_bytes([x[8], x[9]]) as usize + 10,
        2 | 3 => u32::from_le_bytes([x[8], x[9], x[10], x[11]]) as usize + 12,
        v => panic!("unknown npy version {v}"),
    };
    assert_eq!(hlen % 16, 0, "header must be padded (NumPy pads to 64)");
    let header = std::str::from_utf8(&x[10..hlen]).unwrap();
    assert!(header.ends_with('\n'));
    assert!(header.contains("'descr': '<f8'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(compact.contains("'shape':(3,4,2"), "{header}");
    assert_eq!(&x[hlen..], &f64_le(&inst.x)[..]);
    let a = fs::read(tmp.path().join("lib/alpha.npy")).unwrap();
    let ah = String::from_utf8_lossy(&a[..64.min(a.len())]);
    assert!(ah.contains("'descr': '<i8'"), "alpha is int64: {ah}");
}

#[test]
fn generating_twice_with_one_seed_gives_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    for family in Family::ALL {
        let spec = GenSpec::new(family, 3, 4, 12, 99);
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        generate(&spec).unwrap().instance.save(&a).unwrap();
        generate(&spec).unwrap().instance.save(&b).unwrap();
        let (fa, fb) = (file_bytes(&a), file_bytes(&b));
        assert_eq!(fa.len(), 5, "{family:?}: X, Z, y, v, alpha");
        assert_eq!(fa, fb, "{family:?}");
        // And a different seed gives different files (for `orthonormal` only y, v, alpha and
        // W_mm depend on the seed: its tokens are the unit vectors).
        let c = tmp.path().join("c");
        generate(&GenSpec { seed: 100, ..spec })
            .unwrap()
            .instance
            .save(&c)
            .unwrap();
        assert_ne!(fa, file_bytes(&c), "{family:?}");
        for d in [a, b, c] {
            fs::remove_dir_all(d).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accepted NumPy variants

#[test]
fn float32_arrays_are_widened_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (n, t, d) = (2, 3, 2);
    // Values with long binary expansions, a subnormal f32 and signed zero.
    let xs: Vec<f32> = (0..n * t * d)
        .map(|k| match k {
            0 => 0.1,
            1 => 1.0 / 3.0,
            2 => 1e-40, // subnormal in f32, normal in f64
            3 => -0.0,
            4 => f32::MAX,
            _ => (k as f32).sqrt() - 1.7,
        })
        .collect();
    let zs: Vec<f32> = (0..n * d).map(|k| 0.3 * k as f32 - 0.7).collect();
    let ys: Vec<f32> = vec![1.0, -1.0];
    let vs: Vec<f32> = vec![0.6, -0.8];
    let dir = tmp.path();
    write(
        &dir.join("X.npy"),
        &npy_bytes("<f4", false, &[n, t, d], &f32_le(&xs)),
    );
    write(
        &dir.join("Z.npy"),
        &npy_bytes("<f4", false, &[n, d], &f32_le(&zs)),
    );
    write(
        &dir.join("y.npy"),
        &npy_bytes("<f4", false, &[n], &f32_le(&ys)),
    );
    write(
        &dir.join("v.npy"),
        &npy_bytes("<f4", false, &[d], &f32_le(&vs)),
    );
    let inst = Instance::load(dir).unwrap();
    let widen = |a: &[f32]| a.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    // Bitwise: f32 → f64 is exact, so the values must be identical, not merely close.
    let bits = |a: &[f64]| a.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    assert_eq!(bits(&inst.x), bits(&widen(&xs)));
    assert_eq!(bits(inst.z.as_ref().unwrap()), bits(&widen(&zs)));
    assert_eq!(inst.y, widen(&ys));
    assert_eq!(inst.v, widen(&vs));
    assert_ne!(
        inst.x[0], 0.1,
        "0.1f32 is not 0.1f64: no decimal round trip"
    );
}

#[test]
fn int32_and_int64_alpha_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = small_instance(false);
    let want: Vec<usize> = vec![3, 0, 2];
    for (descr, bytes) in [("<i4", i32_le(&[3, 0, 2])), ("<i8", i64_le(&[3, 0, 2]))] {
        let dir = tmp.path().join(descr.replace('<', ""));
        write_raw_instance(
            &dir,
            &Instance {
                alpha: None,
                ..inst.clone()
            },
        );
        write(
            &dir.join("alpha.npy"),
            &npy_bytes(descr, false, &[3], &bytes),
        );
        let back = Instance::load(&dir).unwrap();
        assert_eq!(back.alpha.as_deref(), Some(&want[..]), "{descr}");
        assert_eq!(
            npy::read_i64(&dir.join("alpha.npy")).unwrap().data,
            vec![3, 0, 2]
        );
    }
}

#[test]
fn fortran_ordered_arrays_are_read_in_c_order() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = small_instance(false);
    let (n, t, d) = (inst.n, inst.t, inst.d);
    let dir = tmp.path();
    write_raw_instance(dir, &inst);
    // Column-major: element (i, k, c) sits at i + n·(k + T·c).
    let mut xf = vec![0.0; n * t * d];
    for i in 0..n {
        for k in 0..t {
            for c in 0..d {
                xf[i + n * (k + t * c)] = inst.x[(i * t + k) * d + c];
            }
        }
    }
    let z = inst.z.as_ref().unwrap();
    let mut zf = vec![0.0; n * d];
    for i in 0..n {
        for c in 0..d {
            zf[i + n * c] = z[i * d + c];
        }
    }
    write(
        &dir.join("X.npy"),
        &npy_bytes("<f8", true, &[n, t, d], &f64_le(&xf)),
    );
    write(
        &dir.join("Z.npy"),
        &npy_bytes("<f8", true, &[n, d], &f64_le(&zf)),
    );
    // Rank-1 arrays are the same in both orders.
    write(
        &dir.join("y.npy"),
        &npy_bytes("<f8", true, &[n], &f64_le(&inst.y)),
    );
    assert_ne!(xf, inst.x, "the test must actually permute the data");
    assert_eq!(Instance::load(dir).unwrap(), inst);
    // The same for an integer array and a matrix read through read_mat.
    let m = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let mf = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
    write(
        &dir.join("M.npy"),
        &npy_bytes("<f8", true, &[2, 3], &f64_le(&mf)),
    );
    let got = npy::read_mat(&dir.join("M.npy")).unwrap();
    for (r, row) in m.iter().enumerate() {
        for (c, &x) in row.iter().enumerate() {
            assert_eq!(got[(r, c)], x);
        }
    }
    write(
        &dir.join("I.npy"),
        &npy_bytes("<i4", true, &[2, 3], &i32_le(&[1, 4, 2, 5, 3, 6])),
    );
    assert_eq!(
        npy::read_i64(&dir.join("I.npy")).unwrap().data,
        vec![1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn big_endian_float64_is_read_correctly() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = small_instance(false);
    let dir = tmp.path();
    write_raw_instance(dir, &inst);
    write(
        &dir.join("X.npy"),
        &npy_bytes(">f8", false, &[inst.n, inst.t, inst.d], &f64_be(&inst.x)),
    );
    assert_eq!(Instance::load(dir).unwrap(), inst);
}

#[test]
fn write_mat_and_read_mat_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let m = crate::common::random_mat(&mut crate::common::rng(3), 4, 3, 2.0);
    let p = tmp.path().join("m.npy");
    npy::write_mat(&p, &m).unwrap();
    assert_eq!(npy::read_mat(&p).unwrap(), m);
    let arr = npy::read_f64(&p).unwrap();
    assert_eq!(arr.shape, vec![4, 3]);
    assert_eq!(arr.data[1], m[(0, 1)], "row-major on disk");
}
