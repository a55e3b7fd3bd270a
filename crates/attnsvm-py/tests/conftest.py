"""Shared helpers: the `attnsvm` CLI binary (results are compared with it on the same instance) and
instance folders written with NumPy."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def cli_path():
    """The CLI built by `cargo test --workspace` / `cargo build` (ATTNSVM_CLI overrides)."""
    env = os.environ.get("ATTNSVM_CLI")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "attnsvm"
        if p.exists():
            return p
    return None


@pytest.fixture(scope="session")
def cli():
    path = cli_path()
    if path is None or not path.exists():
        pytest.skip("the attnsvm CLI is not built (cargo build -p attnsvm-cli, or set ATTNSVM_CLI)")

    def run(*args, check=True):
        proc = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"attnsvm {' '.join(map(str, args))} failed: {proc.stderr}")
        return proc

    return run


def write_instance(folder, X, Z, y, v, alpha=None):
    """An instance directory in the shared .npy format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "X.npy", np.asarray(X, dtype=np.float64))
    if Z is not None:
        np.save(folder / "Z.npy", np.asarray(Z, dtype=np.float64))
    np.save(folder / "y.npy", np.asarray(y, dtype=np.float64))
    np.save(folder / "v.npy", np.asarray(v, dtype=np.float64))
    if alpha is not None:
        np.save(folder / "alpha.npy", np.asarray(alpha, dtype=np.int64))
    return folder


def read_json(path):
    return json.loads(Path(path).read_text())


def read_csv(path):
    """A CSV written by the CLI as a dict of columns (floats where they parse, NaN for empty)."""
    lines = Path(path).read_text().strip().splitlines()
    head = lines[0].split(",")
    cols = {h: [] for h in head}
    for line in lines[1:]:
        for h, cell in zip(head, line.split(",")):
            cols[h].append(cell)

    def conv(cells):
        try:
            return np.array([float(c) if c != "" else np.nan for c in cells])
        except ValueError:
            return cells

    return {h: conv(c) for h, c in cols.items()}
