//! `attnsvm svm` and `attnsvm tokens` end to end, in temporary directories: the outputs of a solve
//! and the mathematical facts they must satisfy (spec tf-as-svm.md §2.2, §2.3, §2.8), the
//! infeasible path with its Farkas certificate, the sequence-to-sequence layout, and one test per
//! kind of bad input (exit code 2, one line on stderr naming the culprit, nothing written).

use std::fs;
use std::path::Path;

use crate::common::*;
use attnsvm::data::npy;

/// A generated instance directory `inst` in `cwd`.
fn gen(cwd: &Path, family: &str, (n, t, d): (usize, usize, usize), self_attn: bool) {
    let (n, t, d) = (n.to_string(), t.to_string(), d.to_string());
    let mut args = vec![
        "gen", "--family", family, "--n", &n, "--T", &t, "--d", &d, "--seed", "3", "--out", "inst",
    ];
    if self_attn {
        args.push("--self-attn");
    }
    ok(cwd, &args);
}

fn f64s(path: &Path) -> Vec<f64> {
    npy::read_f64(path).unwrap().data
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn svm_writes_a_certified_solution() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    gen(cwd, "sphere", (3, 4, 5), false);
    let stdout = ok(
        cwd,
        &["svm", "--data", "inst", "--norm", "fro", "--out", "s"],
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("Solved") && stdout.contains("objective"),
        "{stdout}"
    );
    let out = cwd.join("s");
    assert_eq!(
        listing(&out),
        [
            "W.npy",
            "alpha.npy",
            "constraints.npy",
            "duals.npy",
            "margins.npy",
            "summary.json",
            "support.json"
        ]
    );
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["command"], "svm");
    assert_eq!(s["status"], "Solved");
    assert_eq!(s["norm"], "fro");
    // gen writes alpha.npy (the optimal tokens), which is the default selection.
    assert_eq!(s["alpha_source"], "inst/alpha.npy");
    assert_eq!(s["globally_optimal"], true);
    let m = s["n_constraints"].as_u64().unwrap() as usize;
    assert_eq!(m, 3 * (4 - 1));
    for key in [
        "primal_residual",
        "dual_residual",
        "stationarity",
        "complementarity",
        "duality_gap",
    ] {
        assert!(num(&s["kkt"][key]) < 1e-8, "{key}: {}", s["kkt"][key]);
    }
    assert!(num(&s["duality_gap"]) < 1e-8);
    assert!(s["iterations"].is_u64() && s["seconds"].is_f64() && s["solver"].is_string());
    assert!(s["message"].is_string() && s["farkas"].is_null());

    // §2.8: W = Σλ_k A_k, so ‖W‖_F² = Σλ_k (all margins 1 on the support); margins ≥ 1, λ ≥ 0.
    let w = npy::read_mat(&out.join("W.npy")).unwrap();
    assert_eq!(w.shape(), (5, 5));
    let (duals, margins) = (f64s(&out.join("duals.npy")), f64s(&out.join("margins.npy")));
    assert_eq!((duals.len(), margins.len()), (m, m));
    assert!(duals.iter().all(|&l| l >= 0.0));
    assert!(margins.iter().all(|&g| g >= 1.0 - 1e-8), "{margins:?}");
    let fro2 = w.norm_l2().powi(2);
    let sum: f64 = duals.iter().sum();
    assert!((fro2 - sum).abs() <= 1e-8 * fro2, "‖W‖² {fro2} vs Σλ {sum}");
    assert!((num(&s["objective"]) - fro2.sqrt()).abs() <= 1e-10 * fro2.sqrt());

    // Constraint rows (sample, sequence, position, selected, token) in sample order.
    let c = npy::read_i64(&out.join("constraints.npy")).unwrap();
    assert_eq!(c.shape, [m, 5]);
    let alpha = npy::read_i64(&cwd.join("inst/alpha.npy")).unwrap().data;
    for row in c.data.chunks(5) {
        assert_eq!(row[0], row[1]);
        assert_eq!(row[2], -1, "cross-attention has no query position");
        assert_eq!(row[3], alpha[row[1] as usize]);
        assert_ne!(row[4], row[3]);
    }
    // support.json lists as many support tokens as the summary counts, each with margin ≈ 1.
    let sup = read_json(&out.join("support.json"));
    let by_margin = sup["by_margin"].as_array().unwrap();
    assert_eq!(by_margin.len() as u64, s["support_tokens_by_margin"]);
    assert!(!by_margin.is_empty());
    for triple in by_margin {
        let (sample, token) = (triple[0].as_i64().unwrap(), triple[2].as_i64().unwrap());
        let k = c
            .data
            .chunks(5)
            .position(|r| r[0] == sample && r[4] == token)
            .unwrap();
        assert!((margins[k] - 1.0).abs() < 1e-6, "margin {}", margins[k]);
    }

    // The interior point oracle finds the same W; a rerun replaces the earlier output.
    ok(
        cwd,
        &["svm", "--data", "inst", "--solver", "ipm", "--out", "s"],
    );
    let w2 = npy::read_mat(&out.join("W.npy")).unwrap();
    assert!((&w2 - &w).norm_l2() <= 1e-6 * w.norm_l2());
    assert_eq!(
        read_json(&out.join("summary.json"))["solver"],
        "clarabel-qp"
    );
    assert!(
        !listing(cwd).iter().any(|f| f.starts_with('.')),
        "temporary files left"
    );
}

#[test]
fn svm_sequence_to_sequence_causal() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    // n·T = 6 queries in d = 8: feasible for every selection.
    gen(cwd, "sphere", (2, 3, 8), true);
    ok(
        cwd,
        &[
            "svm",
            "--data",
            "inst",
            "--seq2seq",
            "--causal",
            "--out",
            "s",
        ],
    );
    let s = read_json(&cwd.join("s/summary.json"));
    assert_eq!(s["status"], "Solved");
    assert_eq!(
        s["alpha_source"], "opt",
        "alpha.npy is per sequence, not per position"
    );
    assert_eq!(s["n_samples"], 6);
    // Causal position k sees k + 1 tokens: 0 + 1 + 2 constraints per sequence.
    assert_eq!(s["n_constraints"], 6);
    assert_eq!(s["layout"]["seq2seq"], true);
    assert!(s["layout"]["query_pos"].is_null());
    let alpha = npy::read_i64(&cwd.join("s/alpha.npy")).unwrap();
    assert_eq!(alpha.shape, [2, 3]);
    assert_eq!(alpha.data[0], 0, "position 0 sees only token 0");
    assert_eq!(s["locally_optimal_by_margin"], true);
    // The written selection is accepted back.
    ok(
        cwd,
        &[
            "svm",
            "--data",
            "inst",
            "--seq2seq",
            "--causal",
            "--alpha",
            "s/alpha.npy",
            "--out",
            "s2",
        ],
    );
    assert_eq!(
        fs::read(cwd.join("s/W.npy")).unwrap(),
        fs::read(cwd.join("s2/W.npy")).unwrap()
    );
}

#[test]
fn one_sequence_has_the_same_solution_under_both_norms() {
    // §2.8, n = 1: W = u zᵀ/‖z‖² is optimal for the Frobenius and the nuclear norm.
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    gen(cwd, "sphere", (1, 3, 3), false);
    ok(cwd, &["svm", "--data", "inst", "--out", "f"]);
    ok(
        cwd,
        &["svm", "--data", "inst", "--norm", "nuc", "--out", "n"],
    );
    let s = read_json(&cwd.join("n/summary.json"));
    assert_eq!(s["status"], "Solved");
    assert_eq!(s["norm"], "nuc");
    let (wf, wn) = (
        npy::read_mat(&cwd.join("f/W.npy")).unwrap(),
        npy::read_mat(&cwd.join("n/W.npy")).unwrap(),
    );
    assert!((&wf - &wn).norm_l2() <= 1e-6 * wf.norm_l2());
}

/// The tiny instance with token 1 of sequence 0 replaced by token 0 (the selected one).
fn duplicated_token(dir: &Path) {
    let mut tiny = Tiny::new();
    tiny.x[2] = tiny.x[0];
    tiny.x[3] = tiny.x[1];
    tiny.write(dir);
}

#[test]
fn an_infeasible_selection_is_an_answer_with_a_farkas_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    duplicated_token(&cwd.join("inst"));
    let r = attnsvm(cwd, &["svm", "--data", "inst", "--out", "s"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
    );
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.contains("Infeasible"), "{stdout}");
    let s = read_json(&cwd.join("s/summary.json"));
    assert_eq!(s["status"], "Infeasible");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("sample 0") && msg.contains("token 0 equals token 1"),
        "{msg}"
    );
    let f = &s["farkas"];
    assert_eq!(num(&f["residual"]), 0.0);
    assert_eq!(f["samples"], serde_json::json!([0]));
    assert_eq!(f["sequences"], serde_json::json!([0]));
    let weights = f["weights"].as_array().unwrap();
    assert_eq!(weights.len(), 1);
    assert_eq!(weights[0]["constraint"], 0);
    assert_eq!(
        (
            weights[0]["selected"].as_u64(),
            weights[0]["token"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(num(&weights[0]["weight"]), 1.0);
    assert_eq!(s["locally_optimal_by_margin"], false);
    let w = f64s(&cwd.join("s/W.npy"));
    assert!(w.iter().all(|&v| v == 0.0));

    // `tokens` says the same, on stdout and in JSON.
    let stdout = ok(cwd, &["tokens", "--data", "inst", "--json", "t.json"]);
    assert!(
        stdout.contains("locally optimal: no (the Att-SVM is infeasible)"),
        "{stdout}"
    );
    let t = read_json(&cwd.join("t.json"));
    assert_eq!(t["status"], "Infeasible");
    assert_eq!(t["feasible"], false);
    assert_eq!(t["globally_optimal"], true);
}

#[test]
fn tokens_reports_scores_optimal_tokens_and_local_optimality() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    Tiny::new().write(&cwd.join("inst"));
    let stdout = ok(cwd, &["tokens", "--data", "inst", "--json", "t.json"]);
    // γ = y vᵀx: sequence 0 is best at token 0 (−0.78125), sequence 1 at token 2 (0.78125).
    assert!(
        stdout.contains("sequence 0: γ [-0.781250, -1.007812, -1.265625], optimal [0], selected 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sequence 1: γ [0.609375, 0.656250, 0.781250], optimal [2], selected 2")
    );
    assert!(stdout.contains("globally optimal: yes; locally optimal: yes by margin, yes by dual"));
    let t = read_json(&cwd.join("t.json"));
    assert_eq!(t["command"], "tokens");
    assert_eq!(t["status"], "Solved");
    assert_eq!(t["samples"][1]["optimal"], serde_json::json!([2]));
    assert_eq!(t["samples"][1]["scores"][2], 0.78125);
    assert!(t["samples"][0]["support_by_margin"].is_array());
}

#[test]
fn tokens_finds_a_locally_but_not_globally_optimal_selection() {
    // n = 1, v = e₂ (the score is the second coordinate), z = (0.6, 0.8). Selecting x0 (γ 0):
    // its only support token is x1 (γ −1, margin 1); the optimal x2 (γ 0.5) has margin 1.75.
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let d = cwd.join("inst");
    fs::create_dir(&d).unwrap();
    write_f64(
        &d.join("X.npy"),
        &[1, 3, 2],
        &[1.0, 0.0, 0.0, -1.0, -3.0, 0.5],
    );
    write_f64(&d.join("Z.npy"), &[1, 2], &[0.6, 0.8]);
    write_f64(&d.join("y.npy"), &[1], &[1.0]);
    write_f64(&d.join("v.npy"), &[2], &[0.0, 1.0]);
    for (a, verdict) in [
        (
            0,
            "globally optimal: no; locally optimal: yes by margin, yes by dual",
        ),
        (
            1,
            "globally optimal: no; locally optimal: no by margin, no by dual",
        ),
        (
            2,
            "globally optimal: yes; locally optimal: yes by margin, yes by dual",
        ),
    ] {
        write_i64(&cwd.join("a.npy"), &[1], &[a]);
        let stdout = ok(cwd, &["tokens", "--data", "inst", "--alpha", "a.npy"]);
        assert!(stdout.contains(verdict), "α = {a}: {stdout}");
    }
    let stdout = ok(
        cwd,
        &[
            "tokens", "--data", "inst", "--alpha", "a.npy", "--norm", "nuc",
        ],
    );
    assert!(
        stdout.contains("globally optimal: yes; locally optimal: yes"),
        "{stdout}"
    );
    // α = 1 is beaten by both of its support tokens.
    write_i64(&cwd.join("a.npy"), &[1], &[1]);
    let stdout = ok(cwd, &["tokens", "--data", "inst", "--alpha", "a.npy"]);
    assert!(
        stdout.contains("selected token 1 (γ -1.000000) does not beat support token 0"),
        "{stdout}"
    );
    assert!(stdout.contains("does not beat support token 2"), "{stdout}");
}

// ---------- bad input: exit code 2, one line naming the culprit, nothing written ----------

/// Run `attnsvm args` in `cwd` and check the failure.
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
    assert!(
        result.stdout.is_empty(),
        "printed: {}",
        String::from_utf8_lossy(&result.stdout)
    );
    assert_eq!(listing(cwd), before, "files left behind");
}

/// The tiny cross-attention instance in `inst`, altered by `alter(inst)`.
fn tiny(alter: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let data = Tiny::new().write(&tmp.path().join("inst"));
    alter(&data);
    tmp
}

const SVM: &[&str] = &["svm", "--data", "inst", "--out", "out"];

fn svm_with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = SVM.to_vec();
    v.extend(extra);
    v
}

#[test]
fn rejects_an_alpha_file_out_of_range() {
    let t = tiny(|d| write_i64(&d.join("a.npy"), &[2], &[0, 3]));
    rejects(
        t.path(),
        &svm_with(&["--alpha", "inst/a.npy"]),
        &["a.npy", "index 3", "sequence 1"],
    );
    rejects(
        t.path(),
        &["tokens", "--data", "inst", "--alpha", "inst/a.npy"],
        &["a.npy", "index 3"],
    );
}

#[test]
fn rejects_an_alpha_file_of_the_wrong_shape() {
    let t = tiny(|d| write_i64(&d.join("a.npy"), &[3], &[0, 1, 2]));
    rejects(
        t.path(),
        &svm_with(&["--alpha", "inst/a.npy"]),
        &["a.npy", "[3]", "(2,)"],
    );
}

#[test]
fn rejects_a_per_sequence_alpha_with_seq2seq() {
    let t = tiny(|d| {
        fs::remove_file(d.join("Z.npy")).unwrap();
        write_i64(&d.join("a.npy"), &[2], &[0, 2]);
    });
    rejects(
        t.path(),
        &svm_with(&["--seq2seq", "--alpha", "inst/a.npy"]),
        &["a.npy", "[2]", "(2, 3)"],
    );
}

#[test]
fn rejects_seq2seq_and_causal_on_cross_attention() {
    let t = tiny(|_| {});
    rejects(t.path(), &svm_with(&["--seq2seq"]), &["--seq2seq", "Z.npy"]);
    rejects(t.path(), &svm_with(&["--causal"]), &["--causal", "Z.npy"]);
    rejects(
        t.path(),
        &["tokens", "--data", "inst", "--seq2seq"],
        &["Z.npy"],
    );
}

#[test]
fn rejects_a_selection_hidden_by_the_causal_mask() {
    // Self-attention, query position 1: token 2 is not visible.
    let t = tiny(|d| {
        fs::remove_file(d.join("Z.npy")).unwrap();
        write_i64(&d.join("alpha.npy"), &[2], &[2, 0]);
    });
    rejects(
        t.path(),
        &svm_with(&["--causal", "--query-pos", "1"]),
        &["alpha", "token 2", "sequence 0", "causal"],
    );
}

#[test]
fn rejects_a_query_position_outside_the_sequence() {
    let t = tiny(|d| fs::remove_file(d.join("Z.npy")).unwrap());
    rejects(
        t.path(),
        &svm_with(&["--query-pos", "3"]),
        &["query position 3", "0..3"],
    );
}

#[test]
fn rejects_invalid_solver_settings() {
    let t = tiny(|_| {});
    rejects(t.path(), &svm_with(&["--max-iter", "0"]), &["max_iter"]);
    rejects(t.path(), &svm_with(&["--tol", "2"]), &["tol", "2"]);
    rejects(
        t.path(),
        &svm_with(&["--support-tol", "0"]),
        &["support_tol"],
    );
}

#[test]
fn never_replaces_an_input_or_a_foreign_directory() {
    let t = tiny(|_| {});
    rejects(
        t.path(),
        &["svm", "--data", "inst", "--out", "inst"],
        &["input"],
    );
    fs::create_dir(t.path().join("mine")).unwrap();
    fs::write(t.path().join("mine/notes.txt"), "keep").unwrap();
    rejects(
        t.path(),
        &["svm", "--data", "inst", "--out", "mine"],
        &["mine"],
    );
    rejects(
        t.path(),
        &["tokens", "--data", "inst", "--json", "inst/X.npy"],
        &["--json", "X.npy"],
    );
}
