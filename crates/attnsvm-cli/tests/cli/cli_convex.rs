//! `attnsvm convex` end to end, in temporary directories, against mathematical facts of the token
//! group lasso (spec `rates-and-convex.md` B3, B5.6, B5.8–B5.10): `Z = 0` exactly when `β ≥ β_max`
//! and one active token just below it, the certified gap within `tol` and the reported objective
//! recomputed from `Z.npy`, the decoupling of vector outputs, the path's monotone optimal value,
//! and one test per kind of bad input (exit code 2, one line on stderr, nothing written).

use std::path::Path;

use crate::common::*;
use attnsvm::data::npy;

/// Standard normals from a fixed xorshift generator and Box–Muller (no dependency on `rand`).
fn normals(seed: u64, len: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// `X` (N, n, d) Gaussian and `y = ⟨X_i, Z_l⟩ + 0.1·noise` for a planted `Z` whose token 2 is
/// large and token 4 small (the other rows zero), one column per output.
fn planted(dir: &Path, (nn, n, d, c): (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    std::fs::create_dir_all(dir).unwrap();
    let x = normals(seed, nn * n * d);
    let noise = normals(seed + 1, nn * c);
    let mut y = vec![0.0; nn * c];
    for l in 0..c {
        let mut z = vec![0.0; n * d];
        for f in 0..d {
            z[2 * d + f] = 2.0 + l as f64 + 0.1 * f as f64;
            z[4 * d + f] = 0.3 * (-1.0f64).powi(f as i32);
        }
        for i in 0..nn {
            let xi = &x[i * n * d..(i + 1) * n * d];
            y[i * c + l] =
                xi.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>() + 0.1 * noise[i * c + l];
        }
    }
    write_f64(&dir.join("X.npy"), &[nn, n, d], &x);
    if c == 1 {
        write_f64(&dir.join("y.npy"), &[nn], &y);
    } else {
        write_f64(&dir.join("y.npy"), &[nn, c], &y);
    }
    x
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn f64s(path: &Path) -> Vec<f64> {
    npy::read_f64(path).unwrap().data
}

/// Run `convex` on `inst` with `extra` flags into `out`; return its summary.
fn convex(cwd: &Path, out: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["convex", "--data", "inst", "--out", out];
    args.extend(extra);
    let stdout = ok(cwd, &args);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    read_json(&cwd.join(out).join("summary.json"))
}

fn beta(b: f64) -> String {
    // Rust prints the shortest string that parses back to the same f64.
    format!("{b}")
}

#[test]
fn z_is_zero_exactly_when_beta_reaches_beta_max() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (nn, n, d) = (40, 6, 3);
    let x = planted(&cwd.join("inst"), (nn, n, d, 1), 1);
    let s = convex(cwd, "a", &["--beta", "1", "--loss", "squared"]);
    let beta_max = num(&s["beta_max"]);
    // β_max = max_k ‖Σ_i ∂L(0, y_i) x_ik‖ = max_k ‖Σ_i 2 y_i x_ik‖ (spec B3), from the files.
    let y = f64s(&cwd.join("inst/y.npy"));
    let norms: Vec<f64> = (0..n)
        .map(|k| {
            (0..d)
                .map(|f| {
                    let g: f64 = (0..nn).map(|i| -2.0 * y[i] * x[(i * n + k) * d + f]).sum();
                    g * g
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let argmax = (0..n).fold(0, |a, k| if norms[k] > norms[a] { k } else { a });
    let expect = norms[argmax];
    assert!(
        (beta_max - expect).abs() <= 1e-12 * expect,
        "{beta_max} vs {expect}"
    );
    for (name, b) in [("at", beta_max), ("above", 1.5 * beta_max)] {
        let s = convex(cwd, name, &["--beta", &beta(b), "--loss", "squared"]);
        assert_eq!(s["status"], "Solved");
        assert_eq!(s["active_tokens"], 0);
        let z = f64s(&cwd.join(name).join("Z.npy"));
        assert_eq!(z.len(), n * d);
        assert!(z.iter().all(|&v| v == 0.0), "Z ≠ 0 at β = {b} ≥ β_max");
    }
    // Just below β_max the optimum is nonzero, with the argmax token alone active (B5.6).
    let s = convex(
        cwd,
        "below",
        &["--beta", &beta(0.99 * beta_max), "--loss", "squared"],
    );
    assert_eq!(s["status"], "Solved");
    assert_eq!(s["active_tokens"], 1);
    let z = f64s(&cwd.join("below/Z.npy"));
    for k in 0..n {
        let row = z[k * d..(k + 1) * d].iter().any(|&v| v != 0.0);
        assert_eq!(row, k == argmax, "token {k}");
    }
    // β_max scales with the loss weight: w = ½ halves it (B5.4).
    let s = convex(
        cwd,
        "half",
        &["--beta", "1", "--loss", "squared", "--loss-weight", "0.5"],
    );
    assert!((num(&s["beta_max"]) - 0.5 * beta_max).abs() <= 1e-12 * beta_max);
}

/// `w Σ_i Σ_l (⟨X_i, Z_l⟩ − y_il)² + β Σ_{l,k} ‖z_{l,k}‖` recomputed from the files.
fn squared_objective(
    x: &[f64],
    y: &[f64],
    z: &[f64],
    (nn, n, d, c): (usize, usize, usize, usize),
    b: f64,
) -> f64 {
    let m = n * d;
    let mut loss = 0.0;
    for i in 0..nn {
        for l in 0..c {
            let p: f64 = x[i * m..(i + 1) * m]
                .iter()
                .zip(&z[l * m..(l + 1) * m])
                .map(|(a, b)| a * b)
                .sum();
            loss += (p - y[i * c + l]).powi(2);
        }
    }
    let pen: f64 = z
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .sum();
    loss + b * pen
}

#[test]
fn the_certified_gap_is_within_tol_and_the_objective_is_that_of_z() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dims = (60, 8, 4, 1);
    let x = planted(&cwd.join("inst"), dims, 2);
    let y = f64s(&cwd.join("inst/y.npy"));
    for tol in ["1e-6", "1e-10"] {
        let out = format!("t{tol}");
        let s = convex(
            cwd,
            &out,
            &["--beta", "20", "--loss", "squared", "--tol", tol],
        );
        let tol: f64 = tol.parse().unwrap();
        assert_eq!(s["status"], "Solved");
        assert_eq!(s["program"], 9);
        let (obj, gap) = (num(&s["objective"]), num(&s["duality_gap"]));
        assert!(num(&s["relative_gap"]) <= tol, "{s}");
        assert!(gap >= 0.0 && gap <= tol * obj, "gap {gap}, objective {obj}");
        let z = f64s(&cwd.join(&out).join("Z.npy"));
        let mine = squared_objective(&x, &y, &z, dims, 20.0);
        assert!((mine - obj).abs() <= 1e-12 * obj, "{mine} vs {obj}");
        // Sparse: the planted zero tokens 0, 1, 3, 5.. stay inactive at this β.
        assert!(s["active_tokens"].as_u64().unwrap() < 8, "{s}");
    }
    // The logistic loss on the signs of y: a certified solution too.
    let signs: Vec<f64> = y
        .iter()
        .map(|v| if *v >= 0.0 { 1.0 } else { -1.0 })
        .collect();
    write_f64(&cwd.join("inst/y.npy"), &[60], &signs);
    let s = convex(cwd, "log", &["--beta", "1", "--loss", "logistic"]);
    assert_eq!(s["status"], "Solved");
    assert!(num(&s["relative_gap"]) <= 1e-8);
}

#[test]
fn vector_outputs_decouple_into_one_lasso_per_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (nn, n, d, c) = (50, 5, 3, 2);
    let x = planted(&cwd.join("inst"), (nn, n, d, c), 3);
    let y = f64s(&cwd.join("inst/y.npy"));
    let joint = convex(
        cwd,
        "joint",
        &["--beta", "15", "--loss", "squared", "--tol", "1e-10"],
    );
    assert_eq!(joint["program"], 12);
    assert_eq!(joint["status"], "Solved");
    assert_eq!(
        npy::read_f64(&cwd.join("joint/Z.npy")).unwrap().shape,
        [c, n, d]
    );
    // Program (12) is separable over outputs (B5.10): its optimum is the sum of the columns'.
    let (mut sum, mut gaps) = (0.0, num(&joint["duality_gap"]));
    for l in 0..c {
        let col = cwd.join(format!("col{l}"));
        std::fs::create_dir_all(&col).unwrap();
        write_f64(&col.join("X.npy"), &[nn, n, d], &x);
        let yl: Vec<f64> = (0..nn).map(|i| y[i * c + l]).collect();
        write_f64(&col.join("y.npy"), &[nn], &yl);
        let args = [
            "convex",
            "--data",
            &format!("col{l}"),
            "--beta",
            "15",
            "--loss",
            "squared",
            "--tol",
            "1e-10",
            "--out",
            &format!("o{l}"),
        ];
        ok(cwd, &args);
        let s = read_json(&cwd.join(format!("o{l}/summary.json")));
        assert_eq!(s["status"], "Solved");
        sum += num(&s["objective"]);
        gaps += num(&s["duality_gap"]);
    }
    // Both sides are within their certified gaps of the same optimum.
    assert!(
        (num(&joint["objective"]) - sum).abs() <= gaps,
        "{} vs {sum}",
        joint["objective"]
    );
}

#[test]
fn the_path_starts_at_zero_and_its_optimal_value_decreases_with_beta() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (n, d, k) = (6, 3, 8);
    planted(&cwd.join("inst"), (40, n, d, 1), 4);
    let s = convex(
        cwd,
        "p",
        &[
            "--beta-path",
            "8",
            "--beta-min-ratio",
            "0.001",
            "--loss",
            "squared",
        ],
    );
    let beta_max = num(&s["beta_max"]);
    let csv = std::fs::read_to_string(cwd.join("p/path.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("beta,objective,loss,penalty,duality_gap"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), k);
    let col = |r: &Vec<String>, j: usize| -> f64 { r[j].parse().unwrap() };
    assert!((col(&rows[0], 0) - beta_max).abs() <= 1e-15 * beta_max);
    assert!((col(&rows[k - 1], 0) - 1e-3 * beta_max).abs() <= 1e-12 * beta_max);
    assert_eq!(rows[0][6], "0", "Z = 0 at β_max");
    assert!(
        rows[k - 1][6].parse::<usize>().unwrap() >= 2,
        "the planted tokens are active"
    );
    for w in rows.windows(2) {
        assert_eq!(w[1][7], "Solved");
        assert!(col(&w[1], 0) < col(&w[0], 0));
        // P*(β) is non-decreasing in β (a minimum of functions non-decreasing in β); the reported
        // objectives are within their certified gaps of P*.
        assert!(col(&w[1], 1) <= col(&w[0], 1) + col(&w[1], 4), "{w:?}");
    }
    let zp = npy::read_f64(&cwd.join("p/Z_path.npy")).unwrap();
    assert_eq!(zp.shape, [k, n, d]);
    assert!(zp.data[..n * d].iter().all(|&v| v == 0.0));
    assert_eq!(
        &zp.data[(k - 1) * n * d..],
        f64s(&cwd.join("p/Z.npy")).as_slice()
    );
    assert_eq!(
        listing(&cwd.join("p")),
        [
            "Z.npy",
            "Z_path.npy",
            "heads.json",
            "path.csv",
            "summary.json"
        ]
    );
    assert_eq!(s["path"].as_array().unwrap().len(), k);
}

// ---------- bad input: exit code 2, one line naming the culprit, nothing written ----------

/// Program (14): the gates written are those of their generators, `Z` has a gate axis, the
/// recovered heads reproduce the predictions and the objective, and every head sits behind a gate.
#[test]
fn gated_program_recovers_heads_behind_fixed_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (nn, n, d, m) = (40, 5, 3, 3);
    let x = planted(&cwd.join("inst"), (nn, n, d, 1), 8);
    let s = convex(
        cwd,
        "g",
        &[
            "--beta",
            "2",
            "--loss",
            "squared",
            "--gates",
            "3",
            "--gate-seed",
            "4",
        ],
    );
    assert_eq!(s["program"], 14);
    assert_eq!(s["status"], "Solved");
    let z = npy::read_f64(&cwd.join("g/Z.npy")).unwrap();
    assert_eq!(z.shape, vec![m, n, d]);
    let (u1, u2, gates) = (
        f64s(&cwd.join("g/u1.npy")),
        f64s(&cwd.join("g/u2.npy")),
        f64s(&cwd.join("g/gates.npy")),
    );
    let mut pred = vec![0.0; nn];
    for i in 0..nn {
        for j in 0..m {
            let mut score = 0.0;
            for k in 0..n {
                for f in 0..d {
                    score += u1[j * n + k] * x[(i * n + k) * d + f] * u2[j * d + f];
                }
            }
            assert_eq!(gates[i * m + j], if score >= 0.0 { 1.0 } else { 0.0 });
            let zj = &z.data[j * n * d..(j + 1) * n * d];
            pred[i] += gates[i * m + j]
                * x[i * n * d..(i + 1) * n * d]
                    .iter()
                    .zip(zj)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
        }
    }
    // The objective recomputed from Z.npy and the gates.
    let y = f64s(&cwd.join("inst/y.npy"));
    let loss: f64 = pred.iter().zip(&y).map(|(p, t)| (p - t).powi(2)).sum();
    let penalty: f64 = z
        .data
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .sum();
    let obj = num(&s["objective"]);
    assert!((loss + 2.0 * penalty - obj).abs() <= 1e-9 * obj);
    let r = &s["recovery"];
    assert!(num(&r["heads"]) >= 1.0);
    assert!(num(&r["max_prediction_difference"]) <= 1e-10);
    assert!(num(&r["relative_objective_difference"]) <= 1e-12);
    let heads = read_json(&cwd.join("g/heads.json"));
    assert_eq!(heads.as_array().unwrap().len() as f64, num(&r["heads"]));
    assert!(heads
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["gate"].as_u64().unwrap() < m as u64));
}

fn rejects(cwd: &Path, args: &[&str], culprits: &[&str]) {
    let before = listing(cwd);
    let result = attnsvm(cwd, args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
    // clap's usage errors span several lines; the command's own errors are one line.
    let usage = stderr.contains("Usage:") || stderr.contains("--help");
    assert!(
        usage || stderr.trim_end().lines().count() == 1,
        "not one line: {stderr}"
    );
    for c in culprits {
        assert!(stderr.contains(c), "'{c}' not in: {stderr}");
    }
    assert!(result.stdout.is_empty());
    assert_eq!(listing(cwd), before, "files left behind");
}

#[test]
fn rejects_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let inst = cwd.join("inst");
    planted(&inst, (10, 5, 2, 1), 5);
    let run = |extra: &[&'static str]| {
        let mut v = vec!["convex", "--data", "inst", "--out", "out"];
        v.extend(extra);
        v
    };
    rejects(
        cwd,
        &run(&["--beta", "-1", "--loss", "squared"]),
        &["--beta -1"],
    );
    rejects(
        cwd,
        &run(&["--beta", "0", "--loss", "squared"]),
        &["--beta 0"],
    );
    rejects(
        cwd,
        &run(&["--beta-path", "1", "--loss", "squared"]),
        &["--beta-path 1"],
    );
    rejects(
        cwd,
        &run(&[
            "--beta-path",
            "4",
            "--beta-min-ratio",
            "1.5",
            "--loss",
            "squared",
        ]),
        &["--beta-min-ratio"],
    );
    rejects(
        cwd,
        &run(&["--beta", "1", "--beta-path", "3", "--loss", "squared"]),
        &["--beta"],
    );
    rejects(cwd, &run(&["--beta", "1", "--loss", "hinge"]), &["hinge"]);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared", "--gates", "0"]),
        &["--gates 0"],
    );
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared", "--tol", "0"]),
        &["tol"],
    );
    // Real targets are not labels of the logistic loss.
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "logistic"]),
        &["y.npy", "logistic"],
    );
    // Shapes: X not 3-D, y of the wrong length or rank.
    let x = f64s(&inst.join("X.npy"));
    write_f64(&inst.join("X.npy"), &[10, 10], &x);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared"]),
        &["X.npy", "(N, n, d)"],
    );
    write_f64(&inst.join("X.npy"), &[10, 5, 2], &x);
    write_f64(&inst.join("y.npy"), &[9], &[1.0; 9]);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared"]),
        &["y.npy", "[9]"],
    );
    write_f64(&inst.join("y.npy"), &[10, 1, 1], &[1.0; 10]);
    rejects(cwd, &run(&["--beta", "1", "--loss", "squared"]), &["y.npy"]);
    // Non-finite values.
    let mut y = vec![1.0; 10];
    y[3] = f64::NAN;
    write_f64(&inst.join("y.npy"), &[10], &y);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared"]),
        &["y.npy", "target 3"],
    );
    write_f64(&inst.join("y.npy"), &[10], &[1.0; 10]);
    let mut xn = x.clone();
    xn[13] = f64::INFINITY;
    write_f64(&inst.join("X.npy"), &[10, 5, 2], &xn);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "squared"]),
        &["X.npy", "sample 1"],
    );
    // A label 0 with the logistic loss.
    write_f64(&inst.join("X.npy"), &[10, 5, 2], &x);
    let mut y = vec![1.0; 10];
    y[4] = 0.0;
    write_f64(&inst.join("y.npy"), &[10], &y);
    rejects(
        cwd,
        &run(&["--beta", "1", "--loss", "logistic"]),
        &["target 4"],
    );
    // The output directory must not hold the inputs.
    rejects(
        cwd,
        &[
            "convex", "--data", "inst", "--beta", "1", "--loss", "squared", "--out", "inst",
        ],
        &["--out"],
    );
}
