#!/usr/bin/env python3
"""Normalized GD: attnsvm against the reference peer (../shared/peer/attn_ref.py: PyTorch, float64,
one thread) on the same instances, in one run. Prints one line per instance with both times per
iteration, their ratio and the relative Frobenius difference of the final W, then a JSON summary.

  ~/peer-env/bin/python bench/ngd_vs_peer.py [--repeats 3]

Run it with the peer's Python (numpy, torch: see ../shared/peer/README.md) after
`cargo build --release`."""
import argparse, json, subprocess, sys, tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer" / "attn_ref.py"
BIN = ROOT / "target" / "release" / "attnsvm"
# (n, T, d, iterations): the sizes named by the foundation issue.
CASES = [(20, 6, 8, 2000), (1000, 16, 32, 200)]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return json.loads(out[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", default=sys.executable, help="Python with torch (default: this one)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs, each side")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run cargo build --release first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (n, T, d, iters) in CASES:
            inst = f"{tmp}/inst_{n}_{T}_{d}"
            run_json([a.peer_python, str(PEER), "gen", "--n", str(n), "--T", str(T), "--d", str(d), "--seed", "1", "--out", inst])
            peer_s, ours_s = [], []
            for r in range(a.repeats):
                p = run_json([a.peer_python, str(PEER), "ngd", "--data", inst, "--iters", str(iters), "--lr", "0.1",
                              "--threads", "1", "--out", f"{tmp}/peer_W.npy"])
                peer_s.append(p["per_iter_s"])
                out = f"{tmp}/ours_{r}"
                subprocess.run([str(BIN), "train", "--data", inst, "--param", "w", "--opt", "ngd", "--lr", "0.1",
                                "--iters", str(iters), "--init", "zero", "--out", out], check=True, capture_output=True)
                s = json.loads(Path(out, "summary.json").read_text())
                ours_s.append(s["seconds"] / s["iterations"])
            Wp, Wo = np.load(f"{tmp}/peer_W.npy"), np.load(f"{out}/W.npy")
            rel = float(np.linalg.norm(Wo - Wp) / np.linalg.norm(Wp))
            row = dict(n=n, T=T, d=d, iters=iters, peer_per_iter_s=min(peer_s), attnsvm_per_iter_s=min(ours_s),
                       ratio=min(peer_s) / min(ours_s), rel_diff_W=rel)
            rows.append(row)
            print(f"(n,T,d)=({n},{T},{d}) {iters} iters: peer {row['peer_per_iter_s']*1e6:9.1f} us/iter, "
                  f"attnsvm {row['attnsvm_per_iter_s']*1e6:8.2f} us/iter, ratio {row['ratio']:7.1f}x, "
                  f"rel diff of final W {rel:.1e}")
    print(json.dumps(dict(bench="ngd_vs_peer", rows=rows)))


if __name__ == "__main__":
    main()
