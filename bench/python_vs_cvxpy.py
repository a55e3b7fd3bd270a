#!/usr/bin/env python3
"""The Python package against the reference peer, in one process: `attnsvm.att_svm` against cvxpy
(Clarabel, constraints built one by one as the papers' code does) on the (n, T, d) = (200, 16, 32)
Att-SVM, and `attnsvm.train` against the peer's PyTorch float64 normalized-GD loop, on the same
instance (the peer's `gen`, seed 7). The peer's own functions (../shared/peer/attn_ref.py) are
imported and called here, so both sides run in this interpreter on the same arrays.

  ~/peer-env/bin/pip install attnsvm-*.whl     # maturin build --release -m crates/attnsvm-py/Cargo.toml
  ~/peer-env/bin/python bench/python_vs_cvxpy.py [--n 200 --T 16 --d 32] [--iters 1000] [--skip-cvxpy]

Prints, per task, the wall time of each side, the ratio, and how far the answers are apart
(relative objective and W differences for the SVM; corr(W, W_mm) and the relative W difference for
training), then one JSON line. Times: the peer's `total_s` (cvxpy: building the program and
solving; PyTorch: the loop), attnsvm's whole call from Python (NumPy in, validation, solve,
certificate, NumPy out), best of `--repeat` runs for attnsvm."""
import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import attnsvm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "peer"))
import attn_ref  # noqa: E402  (the peer, imported from its folder)


def peer_call(fn, **args):
    """Run one of the peer's commands in this process; return the JSON line it prints."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(SimpleNamespace(**args))
    return json.loads(buf.getvalue().strip().splitlines()[-1])


def best_of(k, f):
    times, out = [], None
    for _ in range(k):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def corr(a, b):
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--iters", type=int, default=1000, help="normalized-GD steps (lr 0.1, W = 0)")
    ap.add_argument("--repeat", type=int, default=3, help="attnsvm runs per task (best is reported)")
    ap.add_argument("--skip-cvxpy", action="store_true", help="skip the cvxpy solve (about 2 minutes at 200,16,32)")
    a = ap.parse_args()
    res = dict(n=a.n, T=a.T, d=a.d, seed=a.seed, iters=a.iters, attnsvm_version=attnsvm.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "inst"
        peer_call(attn_ref.gen, n=a.n, T=a.T, d=a.d, seed=a.seed, self_attn=False, out=str(data))
        D = attnsvm.load_instance(data)
        X, Z, y, v, alpha = D["X"], D["Z"], D["y"], D["v"], D["alpha"]

        # --- Att-SVM (Frobenius) ---
        t_svm, sol = best_of(a.repeat, lambda: attnsvm.att_svm(X, Z, y, v, alpha, norm="fro"))
        res.update(svm_status=sol["status"], svm_objective=sol["objective"], svm_gap=sol["duality_gap"],
                   svm_constraints=len(sol["duals"]), attnsvm_svm_s=t_svm, attnsvm_svm_solver_s=sol["seconds"])
        print(f"Att-SVM fro ({a.n},{a.T},{a.d}), {len(sol['duals'])} constraints")
        print(f"  attnsvm.att_svm  {t_svm:9.4f} s  {sol['status']}  ‖W‖_F = {sol['objective']:.10g}  gap {sol['duality_gap']:.1e}")
        if not a.skip_cvxpy:
            out = Path(tmp) / "W_cvx.npy"
            p = peer_call(attn_ref.svm, data=str(data), norm="fro", solver="CLARABEL", out=str(out))
            w_cvx = np.load(out) if out.exists() else None
            ratio = p["total_s"] / t_svm
            rel_obj = abs(p["objective"] - sol["objective"]) / sol["objective"]
            rel_w = float(np.linalg.norm(w_cvx - sol["W"]) / np.linalg.norm(sol["W"])) if w_cvx is not None else None
            res.update(cvxpy_status=p["status"], cvxpy_objective=p["objective"], cvxpy_build_s=p["build_s"],
                       cvxpy_solve_s=p["solve_s"], cvxpy_total_s=p["total_s"], svm_ratio=ratio,
                       svm_rel_objective_diff=rel_obj, svm_rel_w_diff=rel_w)
            print(f"  cvxpy+Clarabel   {p['total_s']:9.4f} s  {p['status']}  ‖W‖_F = {p['objective']:.10g}"
                  f"  (build {p['build_s']:.2f} s, solve {p['solve_s']:.2f} s)")
            print(f"  ratio cvxpy/attnsvm = {ratio:.0f}×; relative objective difference {rel_obj:.1e},"
                  f" relative ‖ΔW‖_F {rel_w:.1e}")

        # --- normalized GD from W = 0 ---
        t_tr, run = best_of(a.repeat, lambda: attnsvm.train(X, Z, y, v, opt="ngd", lr=0.1, iters=a.iters))
        out = Path(tmp) / "W_ngd.npy"
        p = peer_call(attn_ref.ngd, data=str(data), iters=a.iters, lr=0.1, threads=1, out=str(out))
        w_peer = np.load(out)
        ratio = p["total_s"] / t_tr
        rel_w = float(np.linalg.norm(w_peer - run["W"]) / np.linalg.norm(run["W"]))
        c_ours, c_peer = corr(run["W"], sol["W"]), corr(w_peer, sol["W"])
        res.update(attnsvm_train_s=t_tr, torch_ngd_s=p["total_s"], train_ratio=ratio, train_rel_w_diff=rel_w,
                   attnsvm_corr_w_mm=c_ours, torch_corr_w_mm=c_peer, attnsvm_train_loss=float(run["trace"]["loss"][-1]),
                   torch_loss=p["loss"])
        print(f"normalized GD, {a.iters} steps, lr 0.1, W = 0")
        print(f"  attnsvm.train     {t_tr:9.4f} s  ({1e3 * t_tr / a.iters:.3f} ms/step, trace with diagnostics)")
        print(f"  PyTorch (1 thread) {p['total_s']:8.4f} s  ({1e3 * p['per_iter_s']:.3f} ms/step)")
        print(f"  ratio PyTorch/attnsvm = {ratio:.1f}×; relative ‖ΔW‖_F {rel_w:.1e};"
              f" corr(W, W_mm): attnsvm {c_ours:.9f}, PyTorch {c_peer:.9f}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
