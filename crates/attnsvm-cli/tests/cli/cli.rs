//! The `attnsvm` binary end to end, in temporary directories: gen → train → plot, reruns from a
//! stored config, determinism of `gen`, the demo, and one test per kind of bad input (exit code 2,
//! one line on stderr naming the culprit, no output directory created).

use std::fs;
use std::path::Path;

use crate::common::*;

const FAST: &[&str] = &["--iters", "30", "--points-per-decade", "5"];

#[test]
fn gen_train_plot_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    ok(
        cwd,
        &[
            "gen",
            "--family",
            "orthonormal",
            "--n",
            "2",
            "--T",
            "3",
            "--d",
            "6",
            "--seed",
            "4",
            "--out",
            "inst",
        ],
    );
    assert_eq!(
        listing(&cwd.join("inst")),
        [
            "W_mm.npy",
            "X.npy",
            "Z.npy",
            "alpha.npy",
            "summary.json",
            "v.npy",
            "y.npy"
        ]
    );
    let gen_summary = read_json(&cwd.join("inst/summary.json"));
    assert_eq!(gen_summary["family"], "orthonormal");
    assert_eq!(gen_summary["T"], 3);

    let mut args = vec![
        "train",
        "--data",
        "inst",
        "--out",
        "run",
        "--reference",
        "inst/W_mm.npy",
    ];
    args.extend(FAST);
    let stdout = ok(cwd, &args);
    assert!(stdout.contains("corr(W, reference)"), "{stdout}");
    let run = cwd.join("run");
    assert_eq!(
        listing(&run),
        [
            "W.npy",
            "alpha_hat.npy",
            "config.toml",
            "selected.npy",
            "summary.json",
            "trace.csv"
        ]
    );
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["stop_reason"], "iterations");
    assert_eq!(summary["iterations"], 30);
    // Normalized GD from 0 moves W by exactly lr per update, along directions that stay close.
    let w_norm = summary["w_norm"].as_f64().unwrap();
    assert!(w_norm > 0.0 && w_norm <= 0.1 * 30.0 + 1e-12, "{w_norm}");
    let omc = summary["one_minus_corr"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&omc));

    let mut reader = csv::Reader::from_path(run.join("trace.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "iter");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.first().unwrap()[0].parse::<usize>().unwrap(), 0);
    assert_eq!(rows.last().unwrap()[0].parse::<usize>().unwrap(), 30);
    let omc_col = headers.iter().position(|h| h == "one_minus_corr").unwrap();
    assert!(rows.iter().all(|r| r[omc_col].parse::<f64>().is_ok()));

    ok(cwd, &["plot", "run"]);
    let png = fs::read(run.join("trace.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let svg = fs::read_to_string(run.join("trace.svg")).unwrap();
    assert!(svg.contains("<svg"));
    assert!(
        !listing(&run).iter().any(|f| f.starts_with('.')),
        "temporary files left"
    );
}

#[test]
fn a_stored_config_reruns_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    ok(
        cwd,
        &[
            "gen", "--family", "planted", "--n", "5", "--T", "4", "--d", "3", "--seed", "2",
            "--out", "inst",
        ],
    );
    let mut args = vec![
        "train",
        "--data",
        "inst",
        "--out",
        "a",
        "--param",
        "kq",
        "--train-v",
        "--opt",
        "adam",
        "--lr",
        "0.05",
        "--loss",
        "exp",
        "--init",
        "random",
        "--seed",
        "9",
    ];
    args.extend(FAST);
    ok(cwd, &args);
    for f in ["K.npy", "Q.npy", "v.npy"] {
        assert!(cwd.join("a").join(f).is_file(), "{f}");
    }
    ok(cwd, &["train", "--config", "a/config.toml", "--out", "b"]);
    for f in ["W.npy", "K.npy", "Q.npy", "v.npy", "selected.npy"] {
        assert_eq!(
            fs::read(cwd.join("a").join(f)).unwrap(),
            fs::read(cwd.join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    // The stored config differs only in `out`; rerunning it unchanged replaces run `a` in place.
    let (ca, cb) = (
        fs::read_to_string(cwd.join("a/config.toml")).unwrap(),
        fs::read_to_string(cwd.join("b/config.toml")).unwrap(),
    );
    assert_eq!(ca.replace("out = \"a\"", "out = \"b\""), cb);
    ok(cwd, &["train", "--config", "a/config.toml"]);
    assert_eq!(listing(cwd), ["a", "b", "inst"]);
    // A flag overrides the file.
    ok(
        cwd,
        &[
            "train",
            "--config",
            "a/config.toml",
            "--out",
            "c",
            "--iters",
            "3",
        ],
    );
    assert_eq!(read_json(&cwd.join("c/summary.json"))["iterations"], 3);
}

#[test]
fn gen_with_the_same_seed_writes_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    for out in ["a", "b"] {
        ok(
            cwd,
            &[
                "gen",
                "--family",
                "equal-score",
                "--n",
                "4",
                "--T",
                "5",
                "--d",
                "3",
                "--seed",
                "11",
                "--self-attn",
                "--out",
                out,
            ],
        );
    }
    let files = listing(&cwd.join("a"));
    assert!(
        !files.contains(&"Z.npy".to_string()),
        "self-attention writes no Z"
    );
    assert_eq!(files, listing(&cwd.join("b")));
    for f in &files {
        assert_eq!(
            fs::read(cwd.join("a").join(f)).unwrap(),
            fs::read(cwd.join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    ok(
        cwd,
        &[
            "gen",
            "--family",
            "equal-score",
            "--n",
            "4",
            "--T",
            "5",
            "--d",
            "3",
            "--seed",
            "12",
            "--out",
            "c",
        ],
    );
    assert_ne!(
        fs::read(cwd.join("a/X.npy")).unwrap(),
        fs::read(cwd.join("c/X.npy")).unwrap()
    );
}

#[test]
fn every_head_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Tiny::new().write(&tmp.path().join("inst"));
    for (head, extra) in [("linear", None), ("lambda", Some("0.3")), ("relu", None)] {
        let mut args = vec!["train", "--data", "inst", "--out", head, "--head", head];
        if let Some(l) = extra {
            args.extend(["--lambda", l]);
        }
        args.extend(FAST);
        ok(tmp.path(), &args);
    }
    // A ReLU head read from the instance: W_v (d_h×d) and u (d_h,).
    write_f64(
        &data.join("Wv.npy"),
        &[3, 2],
        &[1.0, 0.0, 0.0, 1.0, 0.5, -0.5],
    );
    write_f64(&data.join("u.npy"), &[3], &[1.0, 1.0, -1.0]);
    let mut args = vec![
        "train", "--data", "inst", "--out", "relu2", "--head", "relu",
    ];
    args.extend(FAST);
    ok(tmp.path(), &args);
    assert_ne!(
        fs::read(tmp.path().join("relu/W.npy")).unwrap(),
        fs::read(tmp.path().join("relu2/W.npy")).unwrap()
    );
}

#[test]
fn demo_selects_the_optimal_tokens_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = ok(tmp.path(), &["demo", "--out", "d", "--iters", "400"]);
    assert!(stdout.contains("= the globally optimal tokens"), "{stdout}");
    let d = tmp.path().join("d");
    assert_eq!(listing(&d), ["data", "run", "summary.json"]);
    let s = read_json(&d.join("summary.json"));
    assert_eq!(s["optimal_tokens"], serde_json::json!([0, 2]));
    assert_eq!(s["selected_equal_optimal"], true);
    // Normalized GD with lr 0.1 moves W at most 0.1 per update.
    for pair in s["w_norm_at"].as_array().unwrap() {
        let (k, nrm) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        assert!(nrm <= 0.1 * k + 1e-9, "‖W_{k}‖ = {nrm}");
    }
    assert!(fs::read(d.join("run/trace.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    assert!(d.join("run/trace.svg").is_file());
    // The stored config points at the demo's data and reruns.
    ok(
        tmp.path(),
        &["train", "--config", "d/run/config.toml", "--out", "again"],
    );
    assert_eq!(
        fs::read(d.join("run/W.npy")).unwrap(),
        fs::read(tmp.path().join("again/W.npy")).unwrap()
    );
}

// ---------- accepted variants of the .npy format ----------

/// Train on `inst` for a few updates and return the bytes of W.npy.
fn trained_w(cwd: &Path, out: &str) -> Vec<u8> {
    let mut args = vec!["train", "--data", "inst", "--out", out];
    args.extend(FAST);
    ok(cwd, &args);
    fs::read(cwd.join(out).join("W.npy")).unwrap()
}

#[test]
fn float32_int32_and_fortran_order_are_read_as_the_same_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let tiny = Tiny::new();
    let data = tiny.write(&cwd.join("inst"));
    let reference = trained_w(cwd, "c");

    // float32 X (every value exactly representable) widens to the same f64 instance.
    let x32: Vec<f32> = tiny.x.iter().map(|&e| e as f32).collect();
    write_f32(&data.join("X.npy"), &[2, 3, 2], &x32);
    assert_eq!(trained_w(cwd, "f32"), reference);

    // int32 alpha.
    write_i32(&data.join("alpha.npy"), &[2], &[0, 2]);
    trained_w(cwd, "i32");
    assert_eq!(
        read_json(&cwd.join("i32/summary.json"))["alpha"],
        serde_json::json!([0, 2])
    );

    // Fortran order: element (i, t, k) stored at offset i + 2t + 6k.
    let mut fortran = vec![0.0; 12];
    for i in 0..2 {
        for t in 0..3 {
            for k in 0..2 {
                fortran[i + 2 * t + 6 * k] = tiny.x[(i * 3 + t) * 2 + k];
            }
        }
    }
    fs::write(
        data.join("X.npy"),
        npy_bytes("<f8", true, &[2, 3, 2], &f64_data(&fortran)),
    )
    .unwrap();
    assert_eq!(trained_w(cwd, "fortran"), reference);
}

// ---------- bad input: exit code 2, one line naming the culprit, nothing written ----------

/// Run `train` on `inst` with `extra` flags and check the failure.
fn rejects(cwd: &Path, extra: &[&str], culprits: &[&str]) {
    let before = listing(cwd);
    let mut args = vec!["train", "--out", "out"];
    if !extra.contains(&"--data") {
        args.extend(["--data", "inst"]);
    }
    args.extend(FAST);
    args.extend(extra);
    let result = attnsvm(cwd, &args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for c in culprits {
        assert!(stderr.contains(c), "'{c}' not in: {stderr}");
    }
    assert!(!cwd.join("out").exists(), "output directory created");
    assert_eq!(listing(cwd), before, "files left behind");
}

/// A temporary directory with the tiny instance in `inst`, altered by `alter(inst)`.
fn broken(alter: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let data = Tiny::new().write(&tmp.path().join("inst"));
    alter(&data);
    tmp
}

#[test]
fn rejects_x_of_the_wrong_rank() {
    let t = broken(|d| write_f64(&d.join("X.npy"), &[2, 6], &Tiny::new().x));
    rejects(t.path(), &[], &["X.npy", "[2, 6]"]);
}

#[test]
fn rejects_y_whose_length_is_not_n() {
    let t = broken(|d| write_f64(&d.join("y.npy"), &[3], &[1.0, 1.0, -1.0]));
    rejects(t.path(), &[], &["y.npy", "[3]"]);
}

#[test]
fn rejects_z_of_another_dimension() {
    let t = broken(|d| write_f64(&d.join("Z.npy"), &[2, 3], &[0.0; 6]));
    rejects(t.path(), &[], &["Z.npy", "[2, 3]"]);
}

#[test]
fn rejects_nan_in_x() {
    let mut x = Tiny::new().x;
    x[(3 + 2) * 2] = f64::NAN; // (i, t, k) = (1, 2, 0)
    let t = broken(|d| write_f64(&d.join("X.npy"), &[2, 3, 2], &x));
    rejects(t.path(), &[], &["X", "NaN", "[1, 2, 0]"]);
}

#[test]
fn rejects_inf_in_z() {
    let t = broken(|d| write_f64(&d.join("Z.npy"), &[2, 2], &[0.5, f64::INFINITY, 0.0, 1.0]));
    rejects(t.path(), &[], &["Z", "inf", "[0, 1]"]);
}

#[test]
fn rejects_a_label_that_is_not_plus_or_minus_one() {
    let t = broken(|d| write_f64(&d.join("y.npy"), &[2], &[1.0, 0.5]));
    rejects(t.path(), &[], &["y", "0.5", "index 1"]);
}

#[test]
fn rejects_alpha_out_of_range() {
    let t = broken(|d| write_i64(&d.join("alpha.npy"), &[2], &[0, 3]));
    rejects(t.path(), &[], &["alpha.npy", "index 3", "sequence 1"]);
}

#[test]
fn rejects_negative_alpha() {
    let t = broken(|d| write_i64(&d.join("alpha.npy"), &[2], &[-1, 0]));
    rejects(t.path(), &[], &["alpha.npy", "-1", "sequence 0"]);
}

#[test]
fn rejects_complex_x() {
    let t = broken(|d| {
        fs::write(
            d.join("X.npy"),
            npy_bytes("<c16", false, &[2, 3, 2], &[0; 192]),
        )
        .unwrap()
    });
    rejects(t.path(), &[], &["X.npy", "c16"]);
}

#[test]
fn rejects_boolean_labels() {
    let t = broken(|d| fs::write(d.join("y.npy"), npy_bytes("|b1", false, &[2], &[1, 0])).unwrap());
    rejects(t.path(), &[], &["y.npy", "b1"]);
}

#[test]
fn rejects_a_truncated_x() {
    let t = broken(|d| {
        let bytes = fs::read(d.join("X.npy")).unwrap();
        fs::write(d.join("X.npy"), &bytes[..bytes.len() - 12]).unwrap();
    });
    rejects(t.path(), &[], &["X.npy", "truncated"]);
}

#[test]
fn rejects_a_garbage_x() {
    let t = broken(|d| {
        fs::write(
            d.join("X.npy"),
            b"this is not an npy file at all, just text\n",
        )
        .unwrap()
    });
    rejects(t.path(), &[], &["X.npy"]);
}

#[test]
fn rejects_a_missing_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    rejects(tmp.path(), &["--data", "no-such-dir"], &["no-such-dir"]);
}

#[test]
fn rejects_a_query_position_outside_the_sequence() {
    let t = broken(|d| fs::remove_file(d.join("Z.npy")).unwrap());
    rejects(
        t.path(),
        &["--query-pos", "3"],
        &["query position 3", "0..3"],
    );
}

#[test]
fn rejects_a_negative_learning_rate() {
    let t = broken(|_| {});
    rejects(t.path(), &["--lr", "-1"], &["lr", "-1"]);
}

#[test]
fn rejects_a_zero_batch_size() {
    let t = broken(|_| {});
    rejects(t.path(), &["--batch-size", "0"], &["batch_size"]);
}

#[test]
fn rejects_a_reference_of_the_wrong_shape() {
    let t = broken(|d| write_f64(&d.join("ref.npy"), &[3, 3], &[0.0; 9]));
    rejects(
        t.path(),
        &["--reference", "inst/ref.npy"],
        &["ref.npy", "3×3", "2×2"],
    );
}

#[test]
fn rejects_a_misspelt_config_key() {
    let t = broken(|d| fs::write(d.join("c.toml"), "[settings]\nlr = 0.1\nitres = 5\n").unwrap());
    rejects(
        t.path(),
        &["--config", "inst/c.toml"],
        &["c.toml", "line 3", "itres"],
    );
}

#[test]
fn never_replaces_a_foreign_directory_or_the_input() {
    let t = broken(|_| {});
    fs::create_dir(t.path().join("mine")).unwrap();
    fs::write(t.path().join("mine/notes.txt"), "keep me").unwrap();
    let mut args = vec!["train", "--data", "inst", "--out", "mine"];
    args.extend(FAST);
    assert_eq!(attnsvm(t.path(), &args).status.code(), Some(2));
    assert_eq!(listing(&t.path().join("mine")), ["notes.txt"]);
    let mut args = vec!["train", "--data", "inst", "--out", "inst"];
    args.extend(FAST);
    let r = attnsvm(t.path(), &args);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("input"));
    assert!(t.path().join("inst/X.npy").is_file());
}

#[test]
fn plot_rejects_a_directory_without_a_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let r = attnsvm(tmp.path(), &["plot", "."]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("trace.csv"));
}
