//! `attnsvm path` end to end, in temporary directories: the files of a path, the facts they must
//! satisfy (certified points on the boundary of the ball, directional convergence towards the
//! Att-SVM solution of the matching norm, (K,Q) factors that multiply to W, a local path that stays
//! in its cone), and bad input (exit code 2, one line naming the culprit, nothing written).

use std::path::Path;

use crate::common::*;
use attnsvm::data::npy;
use faer::Mat;

fn gen(cwd: &Path) {
    ok(
        cwd,
        &[
            "gen", "--family", "sphere", "--n", "3", "--T", "4", "--d", "5", "--seed", "3",
            "--out", "inst",
        ],
    );
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The rows of `path.csv` as maps from column name to cell.
fn rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn cosine(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s / (a.norm_l2() * b.norm_l2())
}

#[test]
fn path_writes_a_certified_frobenius_path() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    gen(cwd);
    let args = [
        "path",
        "--data",
        "inst",
        "--ball",
        "fro",
        "--radii",
        "1,10,100,1000",
        "--out",
        "p",
    ];
    let stdout = ok(cwd, &args);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("Solved"), "{stdout}");
    let out = cwd.join("p");
    assert_eq!(
        listing(&out),
        ["W.npy", "W_svm.npy", "path.csv", "summary.json"]
    );
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["command"], "path");
    assert_eq!(s["status"], "Solved");
    assert_eq!(s["ball"], "fro");
    assert_eq!(s["reference"]["status"], "Solved");
    assert_eq!(s["reference"]["norm"], "fro");
    assert_eq!(
        (s["points"].as_u64(), s["solved_points"].as_u64()),
        (Some(4), Some(4))
    );
    assert!(num(&s["max_residual"]) <= 1e-10);

    let rows = rows(&out.join("path.csv"));
    assert_eq!(rows.len(), 4);
    let f = |r: &std::collections::HashMap<String, String>, k: &str| -> f64 {
        r[k].parse().unwrap_or_else(|_| panic!("{k}: {}", r[k]))
    };
    let mut prev_corr = -1.0;
    for r in &rows {
        assert_eq!(r["status"], "Solved");
        assert!(f(r, "residual") <= 1e-10);
        assert_eq!(r["active"], "true");
        assert!((f(r, "fro_norm") - f(r, "radius")).abs() <= 1e-9 * f(r, "radius"));
        assert!(f(r, "corr") > prev_corr, "corr must grow with R");
        prev_corr = f(r, "corr");
    }
    assert!(prev_corr >= 0.999, "{prev_corr}");
    // The last point attends to the selection solved for (opt, the instance's alpha.npy).
    let alpha = npy::read_i64(&cwd.join("inst/alpha.npy")).unwrap().data;
    let selected: Vec<i64> = rows[3]["selected"]
        .split(' ')
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(selected, alpha);
    let final_selected: Vec<i64> = s["final_selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(final_selected, alpha);
    // The files agree with the table: W is the last point, W_svm the reference.
    let w = npy::read_mat(&out.join("W.npy")).unwrap();
    let w_svm = npy::read_mat(&out.join("W_svm.npy")).unwrap();
    assert!((w.norm_l2() - 1000.0).abs() <= 1e-9 * 1000.0);
    assert!((cosine(&w, &w_svm) - prev_corr).abs() <= 1e-12);
    // A rerun replaces the earlier output and leaves no temporary files.
    ok(cwd, &args);
    assert!(!listing(cwd).iter().any(|f| f.starts_with('.')));
}

#[test]
fn kq_path_writes_factors_and_local_path_stays_in_its_cone() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    gen(cwd);
    ok(
        cwd,
        &[
            "path", "--data", "inst", "--ball", "kq", "--radii", "1,10,100", "--out", "kq",
        ],
    );
    let out = cwd.join("kq");
    assert_eq!(
        listing(&out),
        [
            "K.npy",
            "Q.npy",
            "W.npy",
            "W_svm.npy",
            "path.csv",
            "summary.json"
        ]
    );
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["reference"]["norm"], "nuc");
    let (k, q, w) = (
        npy::read_mat(&out.join("K.npy")).unwrap(),
        npy::read_mat(&out.join("Q.npy")).unwrap(),
        npy::read_mat(&out.join("W.npy")).unwrap(),
    );
    assert!((&k * q.transpose() - &w).norm_l2() <= 1e-12 * w.norm_l2());
    let half = 0.5 * (k.norm_l2().powi(2) + q.norm_l2().powi(2));
    assert!((half - 100.0).abs() <= 1e-9 * 100.0);

    // The local path around W_mm(opt) with μ = 0.05: every point in the cone.
    ok(
        cwd,
        &[
            "path", "--data", "inst", "--ball", "fro", "--radii", "1,10,100", "--alpha", "opt",
            "--mu", "0.05", "--out", "local",
        ],
    );
    let out = cwd.join("local");
    let s = read_json(&out.join("summary.json"));
    assert_eq!(num(&s["mu"]), 0.05);
    assert_eq!(s["alpha_source"], "opt");
    for r in rows(&out.join("path.csv")) {
        assert!(r["cone_active"] == "true" || r["cone_active"] == "false");
        assert!(r["corr"].parse::<f64>().unwrap() >= 0.95 - 1e-12);
    }
}

// ---------- bad input ----------

fn rejects(cwd: &Path, args: &[&str], culprits: &[&str]) {
    let before = listing(cwd);
    let result = attnsvm(cwd, args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for c in culprits {
        assert!(stderr.contains(c), "'{c}' not in: {stderr}");
    }
    assert!(result.stdout.is_empty());
    assert_eq!(listing(cwd), before, "files left behind");
}

#[test]
fn path_bad_input_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    gen(cwd);
    let base = |radii: &'static str| {
        vec![
            "path", "--data", "inst", "--ball", "fro", "--radii", radii, "--out", "p",
        ]
    };
    rejects(cwd, &base("1,-2"), &["radius 1 is -2"]);
    rejects(cwd, &base("0"), &["radii must be positive"]);
    rejects(cwd, &base("3,2"), &["strictly increasing"]);
    let mut a = base("1,2");
    a.extend(["--mu", "1.5"]);
    rejects(cwd, &a, &["μ = 1.5"]);
    let mut a = base("1,2");
    a[4] = "nuc";
    a.extend(["--mu", "0.1"]);
    rejects(cwd, &a, &["Frobenius ball only"]);
    let mut a = base("1,2");
    a.extend(["--tol", "0"]);
    rejects(cwd, &a, &["tol"]);
    let mut a = base("1,2");
    a[2] = "missing";
    rejects(cwd, &a, &["missing"]);
    let mut a = base("1,2");
    a.extend(["--alpha", "nope.npy"]);
    rejects(cwd, &a, &["nope.npy"]);
    // A usage error (clap) is bad input too.
    let r = attnsvm(
        cwd,
        &[
            "path", "--data", "inst", "--ball", "l1", "--radii", "1", "--out", "p",
        ],
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(!cwd.join("p").exists());
}
