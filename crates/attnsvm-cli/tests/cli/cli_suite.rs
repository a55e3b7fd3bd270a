//! The experiment suites (`repro tf-svm`, `repro max-margin`): one folder per experiment with its
//! figures and `claims.json`, a report whose verdicts match the claims, resume after an interrupted
//! or partial run without recomputing finished experiments, `--force`, and clear errors.

use std::fs;
use std::path::Path;

use crate::common::*;

/// A run that must fail with exit code 2 and one line on stderr; returns that line.
fn fails(cwd: &Path, args: &[&str]) -> String {
    let r = attnsvm(cwd, args);
    let err = String::from_utf8_lossy(&r.stderr).to_string();
    assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

fn claims(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("claims.json")).unwrap()).unwrap()
}

#[test]
fn tf_svm_quick_writes_each_experiment_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        tmp.path(),
        &[
            "repro", "tf-svm", "--quick", "--only", "vis1", "--out", "tq",
        ],
    );
    assert!(out.contains("1 of 1 experiments (0 kept"), "{out}");
    let dir = tmp.path().join("tq");
    for f in [
        "figure.png",
        "figure.svg",
        "paths.csv",
        "long.csv",
        "result.json",
        "claims.json",
    ] {
        assert!(dir.join("vis1").join(f).is_file(), "vis1/{f} missing");
    }
    let png = fs::read(dir.join("vis1/figure.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let first = claims(&dir.join("vis1"));
    let list = first["claims"].as_array().unwrap();
    assert!(list.len() >= 8);
    // The report has one verdict row per claim that has one, and the summary agrees.
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    let yes = report.lines().filter(|l| l.ends_with("| yes |")).count();
    let no = report.lines().filter(|l| l.ends_with("| **no** |")).count();
    let verdicts = list.iter().filter(|c| !c["held"].is_null()).count();
    assert_eq!(yes + no, verdicts);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["claims"].as_u64(), Some(verdicts as u64));
    assert_eq!(summary["complete"].as_bool(), Some(true));

    // A second run into the same directory keeps vis1 (same claims file, untouched) and adds vis2.
    let stamp = fs::metadata(dir.join("vis1/claims.json"))
        .unwrap()
        .modified()
        .unwrap();
    let out = ok(
        tmp.path(),
        &[
            "repro",
            "tf-svm",
            "--quick",
            "--only",
            "vis1,vis2",
            "--out",
            "tq",
        ],
    );
    assert!(out.contains("2 of 2 experiments (1 kept"), "{out}");
    assert_eq!(
        fs::metadata(dir.join("vis1/claims.json"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
    assert!(dir.join("vis2/figure.png").is_file());
    assert!(fs::read_to_string(dir.join("report.md"))
        .unwrap()
        .contains("kept from an earlier run"));
    // --force recomputes; the full sizes do not reuse quick results.
    let out = ok(
        tmp.path(),
        &[
            "repro", "tf-svm", "--quick", "--only", "vis1", "--force", "--out", "tq",
        ],
    );
    assert!(out.contains("(0 kept"), "{out}");
    // No staging folder is left behind.
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn suites_refuse_unknown_experiments_and_foreign_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let err = fails(
        tmp.path(),
        &["repro", "tf-svm", "--quick", "--only", "nope", "--out", "o"],
    );
    assert!(err.contains("--only nope") && err.contains("vis1"), "{err}");
    assert!(!tmp.path().join("o").exists());
    ok(tmp.path(), &["repro", "rates", "--quick", "--out", "r"]);
    let err = fails(
        tmp.path(),
        &["repro", "tf-svm", "--quick", "--only", "vis1", "--out", "r"],
    );
    assert!(err.contains("repro rates"), "{err}");
    fs::create_dir(tmp.path().join("mine")).unwrap();
    fs::write(tmp.path().join("mine/notes.txt"), "keep").unwrap();
    let err = fails(
        tmp.path(),
        &[
            "repro", "tf-svm", "--quick", "--only", "vis1", "--out", "mine",
        ],
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        fs::read_to_string(tmp.path().join("mine/notes.txt")).unwrap(),
        "keep"
    );
}
