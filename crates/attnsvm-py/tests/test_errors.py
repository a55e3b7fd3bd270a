"""Bad input raises ValueError with the one-line message the CLI prints for the same input (the
core library's `attnsvm::Error`); the CLI adds the instance folder or file in front."""
import numpy as np
import pytest

import attnsvm
from conftest import write_instance


def cli_message(proc):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0][len("error: "):]


def assert_same_message(py_msg, cli_msg):
    """The CLI's message is the Python one, possibly behind `<path>: ` (and `Z.npy` for `Z`)."""
    name, _, rest = py_msg.partition(": ")
    assert (cli_msg == py_msg or cli_msg.endswith(": " + py_msg)
            or cli_msg.endswith(f"/{name}.npy: {rest}")), (py_msg, cli_msg)


@pytest.fixture(scope="module")
def inst():
    return attnsvm.generate("sphere", 6, 8, 10, seed=3)


def corrupt(inst, **changes):
    arrays = {k: np.array(inst[k], copy=True) for k in ("X", "Z", "y", "v")}
    for k, f in changes.items():
        arrays[k] = f(arrays[k])
    return arrays


def with_nan(i):
    def f(a):
        a.flat[i] = np.nan
        return a
    return f


def with_label(value):
    def f(a):
        a[1] = value
        return a
    return f


CASES = [
    ("label", dict(y=with_label(2.0)), "y: label 2 at index 1 is not −1 or +1"),
    ("nan-X", dict(X=with_nan(17)), "X: non-finite value NaN at index [0, 1, 7]"),
    ("inf-Z", dict(Z=lambda a: a * np.inf), "Z: non-finite value inf at index [0, 0]"),
    ("nan-v", dict(v=with_nan(3)), "v: non-finite value NaN at index [3]"),
    ("Z-shape", dict(Z=lambda a: a[:, :9]), "Z: wrong shape [6, 9]: expected (6, 10) to match X"),
    ("y-shape", dict(y=lambda a: a[:5]), "y: wrong shape [5]: expected (6,) to match X"),
    ("X-rank", dict(X=lambda a: a[0]), "X: wrong shape [8, 10]: expected (n, T, d)"),
]


@pytest.mark.parametrize("name, changes, message", CASES, ids=[c[0] for c in CASES])
def test_bad_instance_raises_the_cli_message(cli, tmp_path, inst, name, changes, message):
    a = corrupt(inst, **changes)
    for call in (
        lambda: attnsvm.att_svm(a["X"], a["Z"], a["y"], a["v"]),
        lambda: attnsvm.train(a["X"], a["Z"], a["y"], a["v"], iters=1),
        lambda: attnsvm.Objective(a["X"], a["Z"], a["y"], a["v"]),
        lambda: attnsvm.selection_report(a["X"], a["Z"], a["y"], a["v"]),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message
    data = write_instance(tmp_path / name, a["X"], a["Z"], a["y"], a["v"])
    assert_same_message(message, cli_message(cli("svm", "--data", data, "--out", tmp_path / "o", check=False)))


def test_bad_selection_and_settings(cli, tmp_path, inst):
    X, Z, y, v = inst["X"], inst["Z"], inst["y"], inst["v"]
    data = write_instance(tmp_path / "ok", X, Z, y, v)
    alpha = np.array(inst["alpha"])
    alpha[2] = 9
    np.save(tmp_path / "alpha.npy", alpha)
    with pytest.raises(ValueError) as e:
        attnsvm.att_svm(X, Z, y, v, alpha)
    assert str(e.value) == "alpha: index 9 at sequence 2 is out of range 0..8"
    cli_msg = cli_message(cli("svm", "--data", data, "--alpha", tmp_path / "alpha.npy", "--out", tmp_path / "o",
                              check=False))
    assert cli_msg.endswith("alpha.npy: index 9 at sequence 2 is out of range 0..8")
    checks = [
        (lambda: attnsvm.att_svm(X, Z, y, v, tol=2.0), ["svm", "--data", data, "--tol", 2, "--out", tmp_path / "o"]),
        (lambda: attnsvm.train(X, Z, y, v, lr=-1.0), ["train", "--data", data, "--lr", -1, "--out", tmp_path / "o"]),
        (lambda: attnsvm.generate("orthonormal", 4, 4, 5),
         ["gen", "--family", "orthonormal", "--n", 4, "--T", 4, "--d", 5, "--out", tmp_path / "o"]),
        (lambda: attnsvm.regularization_path(X, Z, y, v, [10.0, 1.0]),
         ["path", "--data", data, "--ball", "fro", "--radii", "10,1", "--out", tmp_path / "o"]),
    ]
    for call, args in checks:
        with pytest.raises(ValueError) as e:
            call()
        assert_same_message(str(e.value), cli_message(cli(*args, check=False)))


def test_bad_names_and_types(inst):
    X, Z, y, v = inst["X"], inst["Z"], inst["y"], inst["v"]
    with pytest.raises(ValueError, match="^norm: 'l1' is not one of fro, nuc$"):
        attnsvm.att_svm(X, Z, y, v, norm="l1")
    with pytest.raises(ValueError, match="^family: 'cube' is not one of"):
        attnsvm.generate("cube", 2, 2, 2)
    with pytest.raises(ValueError, match="^alpha: 'best' is neither 'opt' nor an array"):
        attnsvm.att_svm(X, Z, y, v, "best")
    with pytest.raises(ValueError, match=r"^W: wrong shape \[3, 3\]: expected \(10, 10\)"):
        attnsvm.Objective(X, Z, y, v).loss(np.eye(3))
    # lists and other dtypes are converted, not rejected
    sol = attnsvm.att_svm(X.astype(np.float32).astype(np.float64).tolist(), Z, y.astype(int), v)
    assert sol["status"] == "Solved"


def test_bad_seq2seq_selection(cli, tmp_path):
    g = attnsvm.generate("sphere", 3, 4, 5, seed=2, self_attention=True)
    data = write_instance(tmp_path / "sa", g["X"], None, g["y"], g["v"])
    alpha = np.zeros((3, 4), dtype=np.int64)
    alpha[1, 2] = 4
    np.save(tmp_path / "alpha.npy", alpha)
    with pytest.raises(ValueError) as e:
        attnsvm.att_svm(g["X"], None, g["y"], g["v"], alpha, seq2seq=True)
    assert str(e.value) == "alpha: index 4 at sequence 1, query position 2 is out of range 0..4"
    proc = cli("svm", "--data", data, "--seq2seq", "--alpha", tmp_path / "alpha.npy", "--out", tmp_path / "o", check=False)
    assert_same_message(str(e.value), cli_message(proc))


def test_objective_rejects_non_finite_w(inst):
    W = np.zeros((10, 10))
    W[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"^W: non-finite value NaN at index \[2, 3\]$"):
        attnsvm.Objective(inst["X"], inst["Z"], inst["y"], inst["v"]).evaluate(W)
