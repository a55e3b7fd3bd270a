//! `attnsvm repro max-margin --quick`: every experiment writes its numbers, figures and claims, the
//! report and the summary agree, every check of spec §5 (11–15, 20) holds at quick sizes, and a
//! second run into the same directory keeps the finished experiments.

use std::fs;

use crate::common::*;

const EXPERIMENTS: [(&str, &[&str]); 5] = [
    ("svm-values", &["svm_values.json", "svm_values.csv"]),
    (
        "single-input",
        &[
            "single_input.json",
            "trajectories.csv",
            "paths.png",
            "paths.svg",
            "softmax.png",
            "softmax.svg",
            "corr.png",
            "corr.svg",
        ],
    ),
    (
        "multi-input",
        &[
            "multi_input.json",
            "trajectories.csv",
            "paths.png",
            "paths.svg",
            "ngd_vs_gd.png",
            "ngd_vs_gd.svg",
            "corr.png",
        ],
    ),
    (
        "joint",
        &[
            "joint.json",
            "trajectories.csv",
            "paths.png",
            "paths.svg",
            "corr.png",
            "corr.svg",
        ],
    ),
    (
        "loss-dependence",
        &[
            "loss_dependence.json",
            "trajectories.csv",
            "paths.png",
            "paths.svg",
            "corr.png",
        ],
    ),
];

#[test]
fn repro_max_margin_quick_writes_claims_figures_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        tmp.path(),
        &["repro", "max-margin", "--quick", "--out", "mm"],
    );
    assert!(out.contains("5 of 5 experiments (0 kept"), "{out}");
    let dir = tmp.path().join("mm");
    for (name, files) in EXPERIMENTS {
        for f in files.iter().chain(&["claims.json"]) {
            assert!(dir.join(name).join(f).is_file(), "{name}/{f} missing");
        }
        for f in files.iter().filter(|f| f.ends_with(".png")) {
            let png = fs::read(dir.join(name).join(f)).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}/{f}");
        }
        let csv = dir.join(name).join("trajectories.csv");
        if csv.is_file() {
            let text = fs::read_to_string(csv).unwrap();
            assert!(text.starts_with("run,step,p0"), "{name}");
            assert!(
                text.lines().count() > 1000,
                "{name}: every step is recorded"
            );
        }
    }

    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["experiment"], "max-margin");
    assert_eq!(summary["complete"], true);
    let (claims, held) = (
        summary["claims"].as_u64().unwrap(),
        summary["held"].as_u64().unwrap(),
    );
    // Every check of §5 that the quick sizes cover holds: these are mathematical facts of the
    // instances (and the spec's re-run numbers), not tuned outcomes.
    assert!(claims >= 20 && held == claims, "{held} of {claims}");
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    for check in [11, 12, 13, 14, 15, 20] {
        let tag = format!("| check {check}:");
        let rows: Vec<&str> = report.lines().filter(|l| l.starts_with(&tag)).collect();
        assert!(!rows.is_empty(), "no claim for check {check}");
        assert!(rows.iter().all(|l| l.ends_with("| yes |")), "{rows:?}");
    }
    assert!(report.contains(&format!("**{held} of {claims} claims held.**")));
    let single = read_json(&dir.join("single-input/claims.json"));
    assert_eq!(single["quick"], true);
    assert!(single["claims"].as_array().unwrap().len() >= 4);

    // Resume: a second run keeps every finished experiment (the files are not rewritten).
    let stamp = fs::metadata(dir.join("joint/joint.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = ok(
        tmp.path(),
        &["repro", "max-margin", "--quick", "--out", "mm"],
    );
    assert!(
        again.contains("5 of 5 experiments (5 kept from an earlier run)"),
        "{again}"
    );
    assert_eq!(
        fs::metadata(dir.join("joint/joint.json"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
    let report2 = fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report2.contains("kept from an earlier run"));
    assert!(report2.contains(&format!("**{held} of {claims} claims held.**")));

    // An interrupted run (a missing experiment) is completed by the next one; --only restricts.
    fs::remove_dir_all(dir.join("joint")).unwrap();
    let third = ok(
        tmp.path(),
        &["repro", "max-margin", "--quick", "--out", "mm"],
    );
    assert!(third.contains("5 of 5 experiments (4 kept"), "{third}");
    assert!(dir.join("joint/claims.json").is_file());
    let only = ok(
        tmp.path(),
        &[
            "repro",
            "max-margin",
            "--quick",
            "--only",
            "svm-values",
            "--force",
            "--out",
            "mm",
        ],
    );
    assert!(only.contains("1 of 1 experiments (0 kept"), "{only}");
}
