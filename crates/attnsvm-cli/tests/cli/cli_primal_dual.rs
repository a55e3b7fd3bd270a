//! `attnsvm repro primal-dual --quick`: every experiment writes its numbers, figures and claims;
//! the exact cost claims (counted FLOPs = the closed form, SH memory = ρ, BN ≤ 1.05×) hold, every
//! variant trained on every task, and the measured cost has a peak-memory reading (the CLI counts
//! heap bytes).

use std::fs;

use crate::common::*;

const VARIANTS: usize = 10;

#[test]
fn repro_primal_dual_quick_writes_tables_figures_and_the_exact_claims_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        tmp.path(),
        &["repro", "primal-dual", "--quick", "--out", "pd"],
    );
    assert!(out.contains("4 of 4 experiments (0 kept"), "{out}");
    let dir = tmp.path().join("pd");
    for task in ["digits", "vowels", "retrieval"] {
        for f in [
            "result.json",
            "runs.csv",
            "table.md",
            "accuracy.png",
            "accuracy.svg",
            "claims.json",
        ] {
            assert!(dir.join(task).join(f).is_file(), "{task}/{f} missing");
        }
        let res = read_json(&dir.join(task).join("result.json"));
        let rows = res["rows"].as_array().unwrap();
        assert_eq!(rows.len(), VARIANTS);
        for r in rows {
            let acc = r["final_test"][0].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{task}: {r}");
        }
        // Two epochs per run, one seed.
        let csv = fs::read_to_string(dir.join(task).join("runs.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + VARIANTS * 2, "{task}");
        let table = fs::read_to_string(dir.join(task).join("table.md")).unwrap();
        assert!(table.contains("| bn+sh |"), "{table}");
    }
    for f in [
        "result.json",
        "analytic.csv",
        "measured.csv",
        "ratios.png",
        "ratios.svg",
        "measured.png",
        "measured.svg",
    ] {
        assert!(dir.join("cost").join(f).is_file(), "cost/{f} missing");
    }
    let png = fs::read(dir.join("cost/ratios.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let measured = fs::read_to_string(dir.join("cost/measured.csv")).unwrap();
    assert!(
        measured.lines().skip(1).all(|l| {
            let peak = l.split(',').nth(4).unwrap();
            peak.parse::<usize>().is_ok_and(|b| b > 0)
        }),
        "{measured}"
    );
    let report = fs::read_to_string(dir.join("report.md")).unwrap();
    assert_held(
        &report,
        &[
            "SH layer FLOPs follow R(N, D)",
            "memory ratio of SH is exactly ρ",
            "Attention-BN costs ≤ 1.05× softmax in FLOPs",
        ],
    );
}

/// Each claim has one row in `report` and it held.
fn assert_held(report: &str, claims: &[&str]) {
    for claim in claims {
        let rows: Vec<&str> = report.lines().filter(|l| l.contains(claim)).collect();
        assert_eq!(rows.len(), 1, "{claim}: {rows:?}");
        assert!(rows[0].ends_with("| yes |"), "{rows:?}");
    }
}

#[test]
fn repro_primal_dual_only_rejects_unknown_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    let out = attnsvm(
        tmp.path(),
        &[
            "repro",
            "primal-dual",
            "--quick",
            "--out",
            "pd",
            "--only",
            "imagenet",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imagenet"), "{err}");
    assert!(!tmp.path().join("pd").exists());
}

/// `--precision f64`: the cost experiment runs in f64 (its exact claims hold there too), as its
/// own suite: an f32 run refuses to resume into the f64 directory.
#[test]
fn repro_primal_dual_runs_in_f64_as_its_own_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "repro",
        "primal-dual",
        "--quick",
        "--out",
        "pd",
        "--only",
        "cost",
    ];
    let out = ok(tmp.path(), &[&args[..], &["--precision", "f64"]].concat());
    assert!(out.contains("1 of 1 experiments"), "{out}");
    let report = fs::read_to_string(tmp.path().join("pd/report.md")).unwrap();
    assert!(report.contains("(f64)"), "{report}");
    assert_held(
        &report,
        &[
            "SH layer FLOPs follow R(N, D)",
            "memory ratio of SH is exactly ρ",
        ],
    );
    let again = attnsvm(tmp.path(), &args);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("primal-dual-f64"), "{err}");
}
