#!/usr/bin/env python3
"""Att-SVM: attnsvm against the reference peer (../shared/peer/attn_ref.py: cvxpy with Clarabel,
constraints built one by one; scikit-learn's liblinear on the flattened SVM) on the same instances,
in one run. Per instance and norm it prints the status, objective and wall time of each side, the
time ratios, the relative objective difference and the relative Frobenius distance of W, then a
JSON summary.

  ~/peer-env/bin/python bench/svm_vs_peer.py [--peer-timeout 300] [--skip-large]

Times: the peer's `total_s` (building the constraints and solving, as a notebook does) and
attnsvm's whole `attnsvm svm` process (reading the .npy files, solving, certifying, writing), so the
ratio is conservative for attnsvm; its `summary.json` solve time is shown too. Run after
`cargo build --release`, with the peer's Python (see ../shared/peer/README.md)."""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "attn_ref.py"
BIN = ROOT / "target" / "release" / "attnsvm"

# (name, generator, n, T, d, seed, self-attention, norms, run cvxpy, run liblinear)
CASES = [
    ("gauss-30-6-10", "peer", 30, 6, 10, 1, False, ["fro", "nuc"], True, True),
    ("gauss-sa-20-5-8", "peer", 20, 5, 8, 3, True, ["fro", "nuc"], True, True),
    ("gauss-100-8-16", "peer", 100, 8, 16, 1, False, ["fro", "nuc"], True, True),
    ("gauss-200-16-32", "peer", 200, 16, 32, 7, False, ["fro"], True, True),
    ("gauss-300-8-16-infeasible", "peer", 300, 8, 16, 1, False, ["fro"], True, False),
    ("gauss-1000-16-32", "peer", 1000, 16, 32, 7, False, ["fro"], False, False),
    ("planted-160-64-64-nuc", "attnsvm", 160, 64, 64, 1, False, ["nuc"], False, False),
    ("planted-15874-64-64-1M", "attnsvm", 15874, 64, 64, 1, False, ["fro"], False, False),
]
LARGE = {"gauss-1000-16-32", "planted-160-64-64-nuc", "planted-15874-64-64-1M"}


def run_json(cmd, timeout=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def peer(py, args, timeout):
    try:
        return run_json([py, str(PEER)] + args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(status="timeout", total_s=float("inf"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", default=sys.executable, help="Python with cvxpy and sklearn (default: this one)")
    ap.add_argument("--peer-timeout", type=float, default=300.0, help="seconds before a peer run is stopped")
    ap.add_argument("--skip-large", action="store_true", help="skip the instances with 10^4–10^6 constraints")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run cargo build --release first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (name, gen, n, T, d, seed, sa, norms, do_cvx, do_ll) in CASES:
            if a.skip_large and name in LARGE:
                continue
            inst = f"{tmp}/{name}"
            if gen == "peer":
                run_json([a.peer_python, str(PEER), "gen", "--n", str(n), "--T", str(T), "--d", str(d), "--seed",
                          str(seed), "--out", inst] + (["--self-attn"] if sa else []))
            else:
                subprocess.run([str(BIN), "gen", "--family", "planted", "--n", str(n), "--T", str(T), "--d", str(d),
                                "--seed", str(seed), "--out", inst], check=True, capture_output=True)
            for norm in norms:
                out = f"{tmp}/{name}-{norm}-ours"
                t0 = time.perf_counter()
                subprocess.run([str(BIN), "svm", "--data", inst, "--norm", norm, "--out", out], check=True,
                               capture_output=True)
                ours_wall = time.perf_counter() - t0
                s = json.loads(Path(out, "summary.json").read_text())
                row = dict(instance=name, n=n, T=T, d=d, norm=norm, constraints=n * (T - 1),
                           attnsvm_status=s["status"], attnsvm_objective=s.get("objective"),
                           attnsvm_gap=s.get("duality_gap"), attnsvm_solve_s=s["seconds"], attnsvm_wall_s=ours_wall)
                if s["status"] == "Infeasible":
                    row["farkas_residual"] = s.get("farkas", {}).get("residual")
                if do_cvx:
                    p = peer(a.peer_python, ["svm", "--data", inst, "--norm", norm, "--out", f"{tmp}/W_cvx.npy"],
                             a.peer_timeout)
                    row.update(cvxpy_status=p["status"], cvxpy_objective=p.get("objective"),
                               cvxpy_s=p["total_s"], ratio_cvxpy=p["total_s"] / ours_wall)
                    if p.get("objective") is not None and s.get("objective") is not None and s["status"] == "Solved":
                        row["rel_objective_diff"] = abs(p["objective"] - s["objective"]) / abs(p["objective"])
                        Wp, Wo = np.load(f"{tmp}/W_cvx.npy"), np.load(f"{out}/W.npy")
                        row["rel_W_diff"] = float(np.linalg.norm(Wo - Wp) / np.linalg.norm(Wp))
                if do_ll and norm == "fro":
                    p = peer(a.peer_python, ["liblinear", "--data", inst, "--out", f"{tmp}/W_ll.npy"], a.peer_timeout)
                    row.update(liblinear_s=p["total_s"], ratio_liblinear=p["total_s"] / ours_wall,
                               liblinear_norm=p.get("norm"), liblinear_min_margin=p.get("min_margin"))
                rows.append(row)
                line = (f"{name:28s} {norm}: attnsvm {s['status']:10s} obj {s.get('objective') or 0:.10g} "
                        f"in {ours_wall*1e3:8.1f} ms (solve {s['seconds']*1e3:.1f} ms)")
                if "cvxpy_s" in row:
                    line += f" | cvxpy {row['cvxpy_status']} {row['cvxpy_s']:.3f} s ({row['ratio_cvxpy']:.0f}x)"
                if "rel_objective_diff" in row:
                    line += f" obj diff {row['rel_objective_diff']:.1e} W diff {row['rel_W_diff']:.1e}"
                if "liblinear_s" in row:
                    line += f" | liblinear {row['liblinear_s']:.3f} s ({row['ratio_liblinear']:.0f}x)"
                if "farkas_residual" in row:
                    line += f" | Farkas residual {row['farkas_residual']:.1e}"
                print(line, flush=True)
    print(json.dumps(dict(bench="svm_vs_peer", rows=rows)))


if __name__ == "__main__":
    main()
