//! `attnsvm repro convex --quick`: every experiment writes its numbers, figures and claims; the
//! claims that are theorems (B5.1, B5.3, B5.4, B5.6–B5.9) hold, the paper's empirical claims carry a
//! verdict either way; the curves and maps are complete.

use std::fs;

use crate::common::*;

const EXPERIMENTS: [(&str, &[&str]); 3] = [
    (
        "student-teacher",
        &[
            "result_content.json",
            "result_positional.json",
            "curves.csv",
            "maps.csv",
            "errors.png",
            "errors.svg",
            "attention_content.png",
            "attention_content.svg",
            "attention_positional.png",
            "attention_positional.svg",
        ],
    ),
    (
        "beta-path",
        &["result.json", "path.csv", "path.png", "path.svg"],
    ),
    ("width", &["result.json", "width.png", "width.svg"]),
];

#[test]
fn repro_convex_quick_writes_claims_figures_and_the_theorems_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["repro", "convex", "--quick", "--out", "cx"]);
    assert!(out.contains("3 of 3 experiments (0 kept"), "{out}");
    let dir = tmp.path().join("cx");
    for (name, files) in EXPERIMENTS {
        for f in files.iter().chain(&["claims.json"]) {
            assert!(dir.join(name).join(f).is_file(), "{name}/{f} missing");
        }
        for f in files.iter().filter(|f| f.ends_with(".png")) {
            let png = fs::read(dir.join(name).join(f)).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}/{f}");
        }
    }
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["experiment"], "convex");
    assert_eq!(summary["complete"], true);
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    // Theorem-backed claims: must hold.
    for tag in [
        "| B5.1/B5.3",
        "| B-T2:",
        "| B5.3:",
        "| B5.4:",
        "| B5.6:",
        "| B5.7:",
        "| B5.8:",
        "| B5.9:",
    ] {
        let rows: Vec<&str> = report.lines().filter(|l| l.starts_with(tag)).collect();
        assert!(!rows.is_empty(), "no claim {tag}");
        assert!(rows.iter().all(|l| l.ends_with("| yes |")), "{rows:?}");
    }
    // The paper's empirical claims are reported with a verdict, for both teachers.
    let empirical: Vec<&str> = report.lines().filter(|l| l.starts_with("| B4.1")).collect();
    assert_eq!(empirical.len(), 4, "{empirical:?}");
    assert!(empirical
        .iter()
        .all(|l| l.ends_with("| yes |") || l.ends_with("| **no** |")));

    // Curves: both regimes, the three models, the final point of every run.
    let curves = fs::read_to_string(dir.join("student-teacher/curves.csv")).unwrap();
    for regime in ["content", "positional"] {
        for model in ["convex", "simplex", "softmax"] {
            let prefix = format!("{regime},{model},");
            assert!(
                curves.lines().filter(|l| l.starts_with(&prefix)).count() > 5,
                "{prefix}"
            );
        }
    }
    let path = fs::read_to_string(dir.join("beta-path/path.csv")).unwrap();
    assert_eq!(path.lines().count(), 1 + 10);
    assert!(path
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(2) == Some("Solved")));
}
