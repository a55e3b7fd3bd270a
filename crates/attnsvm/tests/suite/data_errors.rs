//! Every bad instance directory or `.npy` file gives an `Err` — never a panic — whose `Display`
//! is one line naming the file or array and saying what is wrong. Files are written byte by byte
//! by `crate::common::npy_raw`.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::common::npy_raw::*;
use attnsvm::data::{npy, Instance};
use attnsvm::Error;

// ---------------------------------------------------------------------------------------------
// Bad inputs

/// A bad-input case: how to break a valid directory, and what the error must mention.
struct Bad {
    name: &'static str,
    /// The file or array the message must name.
    names: &'static str,
    /// At least one of these (lower case) must appear in the message.
    problem: &'static [&'static str],
    corrupt: Corrupt,
}

/// Breaks a valid instance directory (given the instance written there).
type Corrupt = Box<dyn Fn(&Path, &Instance)>;

fn bad(
    name: &'static str,
    names: &'static str,
    problem: &'static [&'static str],
    corrupt: impl Fn(&Path, &Instance) + 'static,
) -> Bad {
    Bad {
        name,
        names,
        problem,
        corrupt: Box::new(corrupt),
    }
}

fn put(dir: &Path, file: &str, bytes: Vec<u8>) {
    write(&dir.join(file), &bytes);
}

/// X with one entry replaced.
fn x_with(inst: &Instance, k: usize, val: f64) -> Vec<u8> {
    let mut x = inst.x.clone();
    x[k] = val;
    npy_bytes("<f8", false, &[inst.n, inst.t, inst.d], &f64_le(&x))
}

fn bad_cases() -> Vec<Bad> {
    const SHAPE: &[&str] = &["shape", "match", "rank"];
    const DTYPE: &[&str] = &["dtype"];
    const CORRUPT: &[&str] = &["corrupt", "not a valid", "truncated", "invalid", "header"];
    vec![
        bad("truncated data", "X.npy", &["truncated"], |d, i| {
            let full = npy_bytes("<f8", false, &[i.n, i.t, i.d], &f64_le(&i.x));
            put(d, "X.npy", full[..full.len() - 12].to_vec());
        }),
        bad("truncated mid-value", "y.npy", &["truncated"], |d, i| {
            let full = npy_bytes("<f8", false, &[i.n], &f64_le(&i.y));
            put(d, "y.npy", full[..full.len() - 3].to_vec());
        }),
        bad("truncated header", "X.npy", CORRUPT, |d, i| {
            let full = npy_bytes("<f8", false, &[i.n, i.t, i.d], &f64_le(&i.x));
            put(d, "X.npy", full[..30].to_vec());
        }),
        bad("empty file", "v.npy", CORRUPT, |d, _| {
            put(d, "v.npy", vec![])
        }),
        bad("garbage file", "X.npy", CORRUPT, |d, _| {
            put(
                d,
                "X.npy",
                b"this is not a numpy file, just some text\n".repeat(5),
            )
        }),
        bad("header dict without shape", "Z.npy", CORRUPT, |d, _| {
            put(d, "Z.npy", npy_bytes_raw("<f8", "False", "None", &[]))
        }),
        bad("unknown npy version", "X.npy", CORRUPT, |d, i| {
            let mut b = npy_bytes("<f8", false, &[i.n, i.t, i.d], &f64_le(&i.x));
            b[6] = 9;
            put(d, "X.npy", b)
        }),
        bad("fortran_order not a bool", "X.npy", CORRUPT, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes_raw(
                    "<f8",
                    "'yes'",
                    &shape_literal(&[i.n, i.t, i.d]),
                    &f64_le(&i.x),
                ),
            )
        }),
        bad("negative dimension", "X.npy", CORRUPT, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes_raw(
                    "<f8",
                    "False",
                    &format!("({}, -{}, {})", i.n, i.t, i.d),
                    &f64_le(&i.x),
                ),
            )
        }),
        bad("complex dtype", "X.npy", DTYPE, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes("<c16", false, &[i.n, i.t, i.d], &vec![0u8; 16 * i.x.len()]),
            )
        }),
        bad("bool labels", "y.npy", DTYPE, |d, i| {
            put(d, "y.npy", npy_bytes("|b1", false, &[i.n], &vec![1u8; i.n]))
        }),
        bad("int64 tokens", "X.npy", DTYPE, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes("<i8", false, &[i.n, i.t, i.d], &i64_le(&vec![1; i.x.len()])),
            )
        }),
        bad("float16 head", "v.npy", DTYPE, |d, i| {
            put(
                d,
                "v.npy",
                npy_bytes("<f2", false, &[i.d], &vec![0u8; 2 * i.d]),
            )
        }),
        bad("pickled object array", "Z.npy", DTYPE, |d, i| {
            put(
                d,
                "Z.npy",
                npy_bytes("|O", false, &[i.n, i.d], &[0x80, 0x02, b'N', b'.']),
            )
        }),
        bad("float alpha", "alpha.npy", DTYPE, |d, i| {
            put(
                d,
                "alpha.npy",
                npy_bytes("<f8", false, &[i.n], &f64_le(&vec![0.0; i.n])),
            )
        }),
        bad("X of rank 2", "X.npy", SHAPE, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes("<f8", false, &[i.n * i.t, i.d], &f64_le(&i.x)),
            )
        }),
        bad("X of rank 4", "X.npy", SHAPE, |d, i| {
            put(
                d,
                "X.npy",
                npy_bytes("<f8", false, &[i.n, i.t, i.d, 1], &f64_le(&i.x)),
            )
        }),
        bad("X scalar", "X.npy", SHAPE, |d, _| {
            put(d, "X.npy", npy_bytes("<f8", false, &[], &f64_le(&[1.0])))
        }),
        bad("y of rank 2", "y.npy", SHAPE, |d, i| {
            put(
                d,
                "y.npy",
                npy_bytes("<f8", false, &[i.n, 1], &f64_le(&i.y)),
            )
        }),
        bad("y longer than n", "y.npy", SHAPE, |d, i| {
            let mut y = i.y.clone();
            y.push(1.0);
            put(d, "y.npy", npy_bytes("<f8", false, &[i.n + 1], &f64_le(&y)))
        }),
        bad("v of the wrong d", "v.npy", SHAPE, |d, i| {
            put(
                d,
                "v.npy",
                npy_bytes("<f8", false, &[i.d + 1], &f64_le(&vec![0.5; i.d + 1])),
            )
        }),
        bad("Z of the wrong d", "Z.npy", SHAPE, |d, i| {
            put(
                d,
                "Z.npy",
                npy_bytes(
                    "<f8",
                    false,
                    &[i.n, i.d + 1],
                    &f64_le(&vec![0.5; i.n * (i.d + 1)]),
                ),
            )
        }),
        bad("Z of the wrong n", "Z.npy", SHAPE, |d, i| {
            put(
                d,
                "Z.npy",
                npy_bytes(
                    "<f8",
                    false,
                    &[i.n - 1, i.d],
                    &f64_le(&vec![0.5; (i.n - 1) * i.d]),
                ),
            )
        }),
        bad("alpha of the wrong n", "alpha.npy", SHAPE, |d, i| {
            put(
                d,
                "alpha.npy",
                npy_bytes("<i8", false, &[i.n - 1], &i64_le(&vec![0; i.n - 1])),
            )
        }),
        bad("empty X", "X", &["empty"], |d, i| {
            // (alpha would be out of range 0..0 and be reported first.)
            fs::remove_file(d.join("alpha.npy")).unwrap();
            put(d, "X.npy", npy_bytes("<f8", false, &[i.n, 0, i.d], &[]))
        }),
        bad("NaN token", "X", &["non-finite", "nan"], |d, i| {
            put(d, "X.npy", x_with(i, 5, f64::NAN))
        }),
        bad("+Inf token", "X", &["non-finite", "inf"], |d, i| {
            put(d, "X.npy", x_with(i, 0, f64::INFINITY))
        }),
        bad("-Inf query", "Z", &["non-finite", "inf"], |d, i| {
            let mut z = i.z.clone().unwrap();
            z[1] = f64::NEG_INFINITY;
            put(
                d,
                "Z.npy",
                npy_bytes("<f8", false, &[i.n, i.d], &f64_le(&z)),
            )
        }),
        bad("NaN head", "v", &["non-finite", "nan"], |d, i| {
            let mut v = i.v.clone();
            v[0] = f64::NAN;
            put(d, "v.npy", npy_bytes("<f8", false, &[i.d], &f64_le(&v)))
        }),
        bad("label 0.5", "y", &["label", "±1", "-1", "−1"], |d, i| {
            let mut y = i.y.clone();
            y[1] = 0.5;
            put(d, "y.npy", npy_bytes("<f8", false, &[i.n], &f64_le(&y)))
        }),
        bad("label 0", "y", &["label"], |d, i| {
            let mut y = i.y.clone();
            y[0] = 0.0;
            put(d, "y.npy", npy_bytes("<f8", false, &[i.n], &f64_le(&y)))
        }),
        bad("NaN label", "y", &["label", "non-finite", "nan"], |d, i| {
            let mut y = i.y.clone();
            y[2] = f64::NAN;
            put(d, "y.npy", npy_bytes("<f8", false, &[i.n], &f64_le(&y)))
        }),
        bad("alpha = T", "alpha", &["range"], |d, i| {
            let mut a = vec![0i64; i.n];
            a[1] = i.t as i64;
            put(d, "alpha.npy", npy_bytes("<i8", false, &[i.n], &i64_le(&a)))
        }),
        bad("alpha negative", "alpha", &["range", "negative"], |d, i| {
            let mut a = vec![0i64; i.n];
            a[2] = -1;
            put(d, "alpha.npy", npy_bytes("<i8", false, &[i.n], &i64_le(&a)))
        }),
        bad("alpha int32 huge", "alpha", &["range"], |d, i| {
            put(
                d,
                "alpha.npy",
                npy_bytes("<i4", false, &[i.n], &i32_le(&vec![i32::MAX; i.n])),
            )
        }),
        bad(
            "missing X",
            "X.npy",
            &["open", "no such", "not found", "missing"],
            |d, _| fs::remove_file(d.join("X.npy")).unwrap(),
        ),
        bad(
            "missing y",
            "y.npy",
            &["open", "no such", "not found", "missing"],
            |d, _| fs::remove_file(d.join("y.npy")).unwrap(),
        ),
        bad(
            "a directory where X.npy should be",
            "X.npy",
            &["open", "directory", "read", "corrupt", "not a valid"],
            |d, _| {
                fs::remove_file(d.join("X.npy")).unwrap();
                fs::create_dir(d.join("X.npy")).unwrap();
            },
        ),
    ]
}

/// Run `f`, turning a panic into a test failure that says which case panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: panicked instead of returning Err: {msg}")
        }
    }
}

fn check_error(case: &str, err: &Error, names: &str, problem: &[&str]) {
    let msg = err.to_string();
    assert!(!msg.is_empty(), "{case}: empty message");
    assert!(
        !msg.contains('\n'),
        "{case}: message is not one line: {msg:?}"
    );
    assert!(
        msg.contains(names),
        "{case}: message does not name {names}: {msg:?}"
    );
    let lower = msg.to_lowercase();
    assert!(
        problem.iter().any(|p| lower.contains(&p.to_lowercase())),
        "{case}: message does not say the problem ({problem:?}): {msg:?}"
    );
    assert!(
        err.is_bad_input(),
        "{case}: a content error must count as bad input: {msg:?}"
    );
}

#[test]
fn every_bad_input_is_a_one_line_error_naming_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = small_instance(false);
    let mut failures = Vec::new();
    for (k, case) in bad_cases().into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{k}"));
        write_raw_instance(&dir, &inst);
        assert!(Instance::load(&dir).is_ok(), "the base directory is valid");
        (case.corrupt)(&dir, &inst);
        let res = no_panic(case.name, || Instance::load(&dir));
        match res {
            Ok(_) => failures.push(format!("{}: loaded without error", case.name)),
            Err(e) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| {
                    check_error(case.name, &e, case.names, case.problem)
                })) {
                    failures.push(
                        p.downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| case.name.to_string()),
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_path_that_is_not_an_instance_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing: PathBuf = tmp.path().join("nope");
    let e = Instance::load(&missing).unwrap_err();
    check_error(
        "missing dir",
        &e,
        "nope",
        &["not an instance directory", "directory"],
    );
    let file = tmp.path().join("file.npy");
    write(&file, b"x");
    let e = Instance::load(&file).unwrap_err();
    check_error("file as dir", &e, "file.npy", &["directory"]);
}

#[test]
fn read_mat_rejects_non_matrices_and_non_finite_values() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("W.npy");
    write(&p, &npy_bytes("<f8", false, &[4], &f64_le(&[1.0; 4])));
    check_error(
        "rank 1",
        &npy::read_mat(&p).unwrap_err(),
        "W.npy",
        &["rank", "matrix", "shape"],
    );
    write(
        &p,
        &npy_bytes("<f8", false, &[2, 2], &f64_le(&[1.0, f64::NAN, 0.0, 1.0])),
    );
    check_error(
        "NaN",
        &npy::read_mat(&p).unwrap_err(),
        "W.npy",
        &["non-finite", "nan"],
    );
}

/// A header that is not a Python literal at all. npyz's parse error is a multi-line, pest-formatted
/// diagnostic (with a `-->` pointer and a caret line); the library embeds it verbatim, so the
/// `Display` form is no longer the promised single line.
#[test]

fn an_unparsable_header_gives_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("Z.npy");
    let mut b = b"\x93NUMPY\x01\x00\x40\x00".to_vec();
    b.extend(std::iter::repeat_n(b'#', 63));
    b.push(b'\n');
    write(&p, &b);
    let e = no_panic("unparsable header", || npy::read_f64(&p)).unwrap_err();
    check_error(
        "unparsable header",
        &e,
        "Z.npy",
        &["corrupt", "not a valid"],
    );
}

/// A header whose shape has an element count beyond u64 is a corrupt file like any other: `read_f64`
/// and `Instance::load` must return `Err`. npyz 0.9 multiplies the shape without overflow checks
/// (`NpyHeader::from_parts`): in debug/test builds that panics inside `NpyFile::new`; in release it
/// wraps (2^120 → 0, checked with a standalone npyz build), `read_f64` returns `Ok` with 0 values
/// for a shape that claims 2^120, and `Instance::load` of X shape (1, 2^63, 2) then passes
/// `check_len` because `n·T·d` wraps to 0 in usize too — an `Instance` with T = 2^63 and no data,
/// which panics on first use.
#[test]

fn a_header_whose_element_count_overflows_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("X.npy");
    let big = 1usize << 40;
    write(
        &p,
        &npy_bytes("<f8", false, &[big, big, big], &f64_le(&[1.0])),
    );
    let res = no_panic("overflowing shape", || npy::read_f64(&p));
    let e = res.expect_err("a header with 2^120 elements and 8 bytes of data must be rejected");
    check_error(
        "overflowing shape",
        &e,
        "X.npy",
        &["shape", "corrupt", "truncated", "large", "overflow"],
    );
    // The directory-level consequence: T·d = 2^64 wraps to 0 elements.
    let dir = tmp.path().join("inst");
    fs::create_dir(&dir).unwrap();
    write(
        &dir.join("X.npy"),
        &npy_bytes("<f8", false, &[1, 1 << 63, 2], &[]),
    );
    write(
        &dir.join("y.npy"),
        &npy_bytes("<f8", false, &[1], &f64_le(&[1.0])),
    );
    write(
        &dir.join("v.npy"),
        &npy_bytes("<f8", false, &[2], &f64_le(&[0.6, 0.8])),
    );
    let res = no_panic("overflowing instance", || Instance::load(&dir));
    let e = res.expect_err("X of shape (1, 2^63, 2) with no data must be rejected");
    check_error(
        "overflowing instance",
        &e,
        "X",
        &["shape", "corrupt", "truncated", "large", "overflow"],
    );
}

/// The element count fits in u64 but the byte count of the data does not fit the file: must be an
/// error (truncated), and must not try to allocate 2^40 values up front.
#[test]
fn a_header_claiming_a_huge_array_is_a_truncation_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("X.npy");
    write(
        &p,
        &npy_bytes(
            "<f8",
            false,
            &[1 << 20, 1 << 10, 1 << 10],
            &f64_le(&[1.0, 2.0]),
        ),
    );
    let e = no_panic("huge shape", || npy::read_f64(&p)).unwrap_err();
    check_error("huge shape", &e, "X.npy", &["truncated"]);
}
