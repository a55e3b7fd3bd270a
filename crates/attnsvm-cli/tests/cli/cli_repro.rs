//! `attnsvm repro rates --quick`: every output is written, the report's verdicts match the
//! measured table, and a run over an existing foreign directory is refused.

use std::fs;

use crate::common::*;

#[test]
fn repro_rates_quick_writes_numbers_figures_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["repro", "rates", "--quick", "--out", "rq"]);
    assert!(out.contains("predicted rates held"), "{out}");
    let dir = tmp.path().join("rq");
    for f in [
        "rates.json",
        "curves.csv",
        "table.md",
        "report.md",
        "rates.png",
        "rates.svg",
        "summary.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let png = fs::read(dir.join("rates.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let (claims, held) = (
        summary["claims"].as_u64().unwrap(),
        summary["held"].as_u64().unwrap(),
    );
    assert!(claims >= 10 && held <= claims);
    // The report's table has one verdict per claim and its count line agrees with the summary.
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    let yes = report.lines().filter(|l| l.contains("| yes |")).count() as u64;
    let no = report.lines().filter(|l| l.contains("| **no** |")).count() as u64;
    assert_eq!((yes, yes + no), (held, claims));
    assert!(report.contains(&format!("{held} of {claims} predictions held")));
    // NGD's off-optimal mass rate (−η/‖W_mm‖ in the orthonormal setting) is among those that held.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("| ngd | off-mass") && l.contains("| yes |")),
        "{report}"
    );
}

#[test]
fn repro_refuses_to_replace_a_foreign_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("mine")).unwrap();
    fs::write(tmp.path().join("mine/notes.txt"), "keep").unwrap();
    let out = attnsvm(tmp.path(), &["repro", "rates", "--quick", "--out", "mine"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("mine/notes.txt").is_file());
}

#[test]
fn repro_rates_runs_the_other_data_settings() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &[
            "repro",
            "rates",
            "--quick",
            "--setting",
            "gaussian",
            "--out",
            "rg",
        ],
    );
    let report = fs::read_to_string(tmp.path().join("rg/report.md")).unwrap();
    assert!(report.contains("Setting Gaussian"), "{report}");
    let bad = attnsvm(
        tmp.path(),
        &[
            "repro",
            "rates",
            "--quick",
            "--setting",
            "sphere",
            "--out",
            "rs",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
}
