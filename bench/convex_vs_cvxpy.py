#!/usr/bin/env python3
"""Token group lasso of convex attention (spec rates-and-convex.md, Paper B, program (9), loss weight 1,
squared loss): `attnsvm convex` against cvxpy with Clarabel (../shared/peer/attn_ref.py glasso, the same
program) on the same instances, in one run. Per instance it prints β/β_max, the status, objective,
relative duality gap, active tokens and wall time of each side, the time ratio and the relative
objective difference |P_attnsvm − P_cvxpy| / |P_cvxpy| (target ≤ 1e-7), then a JSON summary.

  ~/peer-env/bin/python bench/convex_vs_cvxpy.py [--peer-timeout 600] [--skip-large] [--only NAME]

Instances are written here with NumPy: X (N, n, d) standard normal, y = ⟨X_i, Z⟩ + σ·noise for a
planted Z with a few nonzero token rows (real-valued targets). β = ratio·β_max with
β_max = max_k ‖Σ_i 2 y_i x_ik‖ (Z = 0 exactly when β ≥ β_max). The issue's benchmark is the large
instance: N = 10⁴ samples, n = 64 tokens, d = 64, β = 0.1·β_max, where attnsvm should reach a
relative duality gap ≤ 1e-8 in ≤ 10 s. A cvxpy run is stopped after --peer-timeout seconds and
reported as a timeout.

Times: cvxpy's `total_s` (building the problem and solving, as a notebook does) and attnsvm's whole
`attnsvm convex` process (reading the .npy files, solving, certifying, writing); its `summary.json`
solve time is shown too. Run after `cargo build --release`, with the peer's Python
(see ../shared/peer/README.md)."""
import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "attn_ref.py"
BIN = ROOT / "target" / "release" / "attnsvm"

# (name, N, n, d, planted active tokens, noise σ, β/β_max, seed)
CASES = [
    ("small-200-8-8", 200, 8, 8, 3, 0.1, 0.1, 1),
    ("medium-2000-32-16", 2000, 32, 16, 5, 0.5, 0.1, 2),
    ("issue-10000-64-64", 10_000, 64, 64, 8, 1.0, 0.1, 3),
]
LARGE = {"issue-10000-64-64"}


def write_instance(path, N, n, d, active, sigma, seed):
    """X standard normal; y = <X_i, Z> + σ·noise with `active` nonzero token rows of Z."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n, d))
    Z = np.zeros((n, d))
    rows = rng.choice(n, size=active, replace=False)
    Z[rows] = rng.standard_normal((active, d)) / np.sqrt(d)
    y = X.reshape(N, n * d) @ Z.reshape(-1) + sigma * rng.standard_normal(N)
    Path(path).mkdir(parents=True)
    np.save(Path(path, "X.npy"), X)
    np.save(Path(path, "y.npy"), y)
    beta_max = float(np.linalg.norm(np.einsum("i,ikd->kd", 2.0 * y, X), axis=1).max())
    return beta_max, sorted(int(r) for r in rows)


def peer(py, args, timeout):
    try:
        out = subprocess.run([py, str(PEER)] + args, check=True, capture_output=True, text=True,
                             timeout=timeout).stdout
        return json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return dict(status="timeout", total_s=timeout)
    except subprocess.CalledProcessError as e:
        return dict(status="failed: " + (e.stderr.strip().splitlines() or ["?"])[-1], total_s=float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", default=sys.executable, help="Python with cvxpy (default: this one)")
    ap.add_argument("--peer-timeout", type=float, default=600.0, help="seconds before a cvxpy run is stopped")
    ap.add_argument("--skip-large", action="store_true", help="skip the N = 10^4 instance")
    ap.add_argument("--skip-peer", action="append", default=[], metavar="NAME", help="run only attnsvm on NAME")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these instances")
    ap.add_argument("--tol", type=float, default=1e-8, help="attnsvm's relative duality-gap target")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run cargo build --release first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (name, N, n, d, active, sigma, ratio, seed) in CASES:
            if (a.skip_large and name in LARGE) or (a.only and name not in a.only):
                continue
            inst = f"{tmp}/{name}"
            beta_max, planted = write_instance(inst, N, n, d, active, sigma, seed)
            beta = ratio * beta_max
            out = f"{tmp}/{name}-ours"
            t0 = time.perf_counter()
            subprocess.run([str(BIN), "convex", "--data", inst, "--beta", repr(beta), "--loss", "squared",
                            "--tol", repr(a.tol), "--out", out], check=True, capture_output=True)
            ours_wall = time.perf_counter() - t0
            s = json.loads(Path(out, "summary.json").read_text())
            row = dict(instance=name, N=N, n=n, d=d, planted_tokens=planted, beta=beta, beta_max=beta_max,
                       beta_max_attnsvm=s["beta_max"], attnsvm_status=s["status"],
                       attnsvm_objective=s["objective"], attnsvm_gap=s["duality_gap"],
                       attnsvm_rel_gap=s["relative_gap"], attnsvm_active=s["active_tokens"],
                       attnsvm_iterations=s["iterations"], attnsvm_solve_s=s["seconds"], attnsvm_wall_s=ours_wall)
            line = (f"{name:20s} β = {ratio:g}·β_max: attnsvm {s['status']} obj {s['objective']:.12g} "
                    f"rel gap {s['relative_gap']:.1e} (abs {s['duality_gap']:.1e}), {s['active_tokens']} active, "
                    f"{s['iterations']} it, {ours_wall:.2f} s (solve {s['seconds']:.2f} s)")
            if name not in a.skip_peer:
                p = peer(a.peer_python, ["glasso", "--data", inst, "--beta", repr(beta), "--loss", "squared",
                                         "--out", f"{tmp}/Z_cvx.npy"], a.peer_timeout)
                row.update(cvxpy_status=p["status"], cvxpy_objective=p.get("objective"),
                           cvxpy_active=p.get("active_tokens"), cvxpy_s=p["total_s"],
                           ratio_cvxpy=p["total_s"] / ours_wall)
                line += f" | cvxpy {p['status']} "
                if p.get("objective") is not None:
                    diff = abs(s["objective"] - p["objective"]) / abs(p["objective"])
                    Zc, Zo = np.load(f"{tmp}/Z_cvx.npy"), np.load(f"{out}/Z.npy")
                    row.update(rel_objective_diff=diff,
                               rel_Z_diff=float(np.linalg.norm(Zo - Zc) / max(np.linalg.norm(Zc), 1e-300)))
                    line += (f"obj {p['objective']:.12g}, {p.get('active_tokens')} active, {p['total_s']:.2f} s "
                             f"({row['ratio_cvxpy']:.0f}x) | obj diff {diff:.1e}, Z diff {row['rel_Z_diff']:.1e}")
                else:
                    line += f"after {p['total_s']:.0f} s"
            if name in LARGE:
                row["target_met"] = s["status"] == "Solved" and s["relative_gap"] <= 1e-8 and ours_wall <= 10.0
                line += f"\n  target (relative gap ≤ 1e-8 within 10 s): {'met' if row['target_met'] else 'MISSED'}"
            rows.append(row)
            print(line, flush=True)
    print(json.dumps(dict(bench="convex_vs_cvxpy", tol=a.tol, rows=rows)))


if __name__ == "__main__":
    main()
