#!/usr/bin/env python3
"""Normalized GD towards the Att-SVM direction: attnsvm against the reference peer
(../shared/peer/attn_ref.py: PyTorch float64 autograd, `W -= lr * g / ||g||`, from W = 0) on the
same instances, in one run. For each instance and iteration budget it prints the time of each side
and corr(W_t, W^mm) (W^mm from `attnsvm svm`, checked against cvxpy's), so one sees where the
float64 autograd loop stalls (its gradient underflows to zero or NaN once the softmax saturates)
while the log-domain loop keeps converging.

  ~/peer-env/bin/python bench/tf_svm_vs_peer.py [--iters 2000,20000,100000]

Instances: the papers' `visualization1` and `visualization2` (spec tf-as-svm.md §4.1-4.2, written
here from the spec's float32 values) and one instance of the local-convergence family
(`attnsvm gen --family sphere --n 6 --T 8 --d 10`). Run after `cargo build --release`."""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "attn_ref.py"
BIN = ROOT / "target" / "release" / "attnsvm"

VIS1 = dict(
    X=[[[-0.9814968, 0.1863952], [-1.1355718, -0.049839072], [-1.4568305, 0.11450518]],
       [[0.6917174, -0.16891584], [0.7323128, -0.017475054], [0.9413471, -0.2896908]]],
    Z=[[0.84501135, 0.5347484], [-0.63626397, -0.7714714]],
    v=[0.92731994, 0.37426966])
VIS2 = dict(
    X=[[[1, 0.5], [-0.18972462, -0.798354], [-0.7976964, 0.30564982], [-0.6198048, -0.01682163], [-1.1724226, 0.24682678]],
       [[1, -0.5], [-0.757443, 0.10261719], [-0.8307859, 0.676377], [-0.8131823, 0.0067082397], [-0.6131634, -0.05462176]]],
    Z=[[-0.53912896, -0.8422232], [0.9525519, 0.30437642]],
    v=[0.9771238, 0.21267143])


def write_fixture(d, spec):
    d.mkdir(parents=True)
    arrays = {k: np.array(spec[k], dtype=np.float32).astype(np.float64) for k in ("X", "Z", "v")}
    for k, x in arrays.items():
        np.save(d / f"{k}.npy", x)
    np.save(d / "y.npy", np.ones(len(spec["X"])))
    np.save(d / "alpha.npy", np.argmax(arrays["X"] @ arrays["v"], axis=1).astype(np.int64))  # labels +1


def last_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def corr(a, b):
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 and np.isfinite(na) else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", default=sys.executable)
    ap.add_argument("--iters", default="2000,20000,100000")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run cargo build --release first")
    budgets = [int(x) for x in a.iters.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_fixture(tmp / "vis1", VIS1)
        write_fixture(tmp / "vis2", VIS2)
        subprocess.run([str(BIN), "gen", "--family", "sphere", "--n", "6", "--T", "8", "--d", "10", "--seed", "0",
                        "--out", str(tmp / "sphere")], check=True, capture_output=True)
        for name in ("vis1", "vis2", "sphere"):
            data = tmp / name
            svm = tmp / f"{name}-svm"
            subprocess.run([str(BIN), "svm", "--data", str(data), "--out", str(svm)], check=True, capture_output=True)
            w_mm = np.load(svm / "W.npy")
            cvx = last_json([a.peer_python, str(PEER), "svm", "--data", str(data), "--norm", "fro", "--out", str(tmp / f"{name}-cvx.npy")])
            agree = corr(w_mm, np.load(tmp / f"{name}-cvx.npy"))
            for iters in budgets:
                p = last_json([a.peer_python, str(PEER), "ngd", "--data", str(data), "--iters", str(iters), "--lr", "0.1",
                               "--out", str(tmp / "peer.npy")])
                c_peer = corr(np.load(tmp / "peer.npy"), w_mm)
                run = tmp / f"{name}-run-{iters}"
                t0 = time.perf_counter()
                subprocess.run([str(BIN), "train", "--data", str(data), "--opt", "ngd", "--lr", "0.1", "--iters", str(iters),
                                "--reference", str(svm / "W.npy"), "--out", str(run)], check=True, capture_output=True)
                t_ours = time.perf_counter() - t0
                c_ours = corr(np.load(run / "W.npy"), w_mm)
                row = dict(instance=name, iters=iters, peer_s=p["total_s"], ours_s=t_ours,
                           peer_1mcorr=1 - c_peer if np.isfinite(c_peer) else None, ours_1mcorr=1 - c_ours,
                           peer_norm=p["norm"], svm_corr_cvxpy=agree)
                rows.append(row)
                pc = "NaN (W is NaN)" if row["peer_1mcorr"] is None else f"{row['peer_1mcorr']:.2e}"
                print(f"{name:7s} iters {iters:>6d}: peer {p['total_s']:7.2f} s, 1-corr {pc:>16s}, |W| {p['norm']:.4g} | "
                      f"attnsvm {t_ours:6.2f} s, 1-corr {1 - c_ours:.2e}  (ratio {p['total_s'] / t_ours:5.1f}x)", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
