//! `attnsvm repro tf-svm --quick --only rank,multi-token`: every table and figure is written, the
//! report agrees with the claims, and the claims that are theorems hold.

use std::fs;

use crate::common::*;

#[test]
fn repro_tf_svm_rank_and_multi_token_quick() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        tmp.path(),
        &[
            "repro",
            "tf-svm",
            "--quick",
            "--only",
            "rank,multi-token",
            "--out",
            "tf",
        ],
    );
    assert!(out.contains("2 of 2 experiments"), "{out}");
    let dir = tmp.path().join("tf");
    let files = [
        "rank/rank.json",
        "rank/rows.csv",
        "rank/instances.csv",
        "rank/table.md",
        "rank/rank.png",
        "rank/rank.svg",
        "rank/claims.json",
        "multi-token/multi_token.json",
        "multi-token/summary.csv",
        "multi-token/curves.csv",
        "multi-token/instances.csv",
        "multi-token/curves.png",
        "multi-token/curves.svg",
        "multi-token/scatter.png",
        "multi-token/scatter.svg",
        "multi-token/claims.json",
        "report.md",
        "summary.json",
    ];
    for f in files {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for png in [
        "rank/rank.png",
        "multi-token/curves.png",
        "multi-token/scatter.png",
    ] {
        assert_eq!(&fs::read(dir.join(png)).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    }
    let svg = fs::read_to_string(dir.join("rank/rank.svg")).unwrap();
    assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > 4);

    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], true);
    let (claims, held) = (
        summary["claims"].as_u64().unwrap(),
        summary["held"].as_u64().unwrap(),
    );
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    let yes = report.lines().filter(|l| l.ends_with("| yes |")).count() as u64;
    let no = report.lines().filter(|l| l.ends_with("| **no** |")).count() as u64;
    assert_eq!((yes, yes + no), (held, claims), "{report}");
    assert!(report.contains(&format!("{held} of {claims} claims held")));

    // The structural claims (theorems) hold at any size.
    for name in ["rank", "multi-token"] {
        let c: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(name).join("claims.json")).unwrap())
                .unwrap();
        let list = c["claims"].as_array().unwrap();
        assert!(list.len() >= 8, "{name}");
        for claim in list {
            let s = claim["statement"].as_str().unwrap();
            if s.contains("check 4")
                || s.contains("check 16")
                || s.contains("are reported as Infeasible")
            {
                assert_ne!(claim["held"], false, "{name}: {claim}");
            }
        }
    }
    // Infeasible instances appear as such in the per-instance table, without a rank.
    let rows = fs::read_to_string(dir.join("rank/instances.csv")).unwrap();
    let infeasible: Vec<&str> = rows
        .lines()
        .filter(|l| l.contains(",Infeasible,"))
        .collect();
    assert!(!infeasible.is_empty());
    for l in infeasible {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!((f[7], f[8]), ("", ""), "{l}");
    }

    // Rerunning keeps the finished experiments.
    let again = ok(
        tmp.path(),
        &[
            "repro", "tf-svm", "--quick", "--only", "rank", "--out", "tf",
        ],
    );
    assert!(again.contains("1 kept"), "{again}");
}
