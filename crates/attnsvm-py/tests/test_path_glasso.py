"""Regularization paths and the token-group lasso: the CLI's numbers, and the certificates
(stationarity on the ball; the duality gap and KKT conditions of the group lasso, in NumPy)."""
import numpy as np
import pytest

import attnsvm
from conftest import read_csv, read_json, write_instance


def test_regularization_path_equals_cli_path(cli, tmp_path):
    g = attnsvm.generate("sphere", 6, 8, 10, seed=3)
    data = write_instance(tmp_path / "inst", g["X"], g["Z"], g["y"], g["v"])
    radii = [1.0, 10.0, 100.0]
    cli("path", "--data", data, "--ball", "fro", "--radii", "1,10,100", "--out", tmp_path / "p")
    csv = read_csv(tmp_path / "p" / "path.csv")
    w_mm = attnsvm.att_svm(g["X"], g["Z"], g["y"], g["v"])["W"]
    np.testing.assert_array_equal(w_mm, np.load(tmp_path / "p" / "W_svm.npy"))
    p = attnsvm.regularization_path(g["X"], g["Z"], g["y"], g["v"], radii, "fro", reference=w_mm)
    for col in ("radius", "residual", "loss", "corr", "one_minus_corr", "fro_norm"):
        np.testing.assert_array_equal(p[col], csv[col], err_msg=col)
    assert p["point_status"] == csv["status"]
    np.testing.assert_array_equal(p["W"][-1], np.load(tmp_path / "p" / "W.npy"))
    # the maths: points on the sphere ‖W‖_F = R, certified stationary, turning towards W_mm
    assert p["status"] == "Solved" and np.all(p["residual"] <= 1e-10)
    np.testing.assert_allclose(np.linalg.norm(p["W"], axis=(1, 2)), radii, rtol=1e-9)
    assert np.all(np.diff(p["one_minus_corr"]) < 0)


def test_kq_path_factors():
    g = attnsvm.generate("sphere", 4, 5, 6, seed=1)
    p = attnsvm.regularization_path(g["X"], g["Z"], g["y"], g["v"], [1.0, 4.0], "kq")
    K, Q = p["K"], p["Q"]
    np.testing.assert_allclose(p["W"], K @ np.transpose(Q, (0, 2, 1)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p["kq_norm"], 0.5 * ((K ** 2).sum(axis=(1, 2)) + (Q ** 2).sum(axis=(1, 2))))


def planted_lasso(N=40, n=6, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n, d))
    Z = np.zeros((n, d))
    Z[1] = [1.0, -2.0, 0.5]
    y = np.einsum("ind,nd->i", X, Z) + 0.1 * rng.standard_normal(N)
    return X, y


def test_glasso_certificate_and_kkt():
    X, y = planted_lasso()
    bmax = attnsvm.glasso_beta_max(X, y)
    grad0 = np.einsum("ind,i->nd", X, -2 * y)          # ∇ Σ(ŷ − y)² at Z = 0
    assert bmax == pytest.approx(np.linalg.norm(grad0, axis=1).max(), rel=1e-12)
    beta = 0.2 * bmax
    sol = attnsvm.glasso(X, y, beta)
    assert sol["status"] == "Solved" and sol["certificate"]["rel_gap"] <= 1e-8
    Z = sol["Z"][0]
    r = np.einsum("ind,nd->i", X, Z) - y
    assert sol["objective"] == pytest.approx((r ** 2).sum() + beta * np.linalg.norm(Z, axis=1).sum(), rel=1e-12)
    G = np.einsum("ind,i->nd", X, 2 * r)
    for k in range(Z.shape[0]):
        zk = np.linalg.norm(Z[k])
        if zk > 0:   # ∇_k f + β z_k/‖z_k‖ = 0
            assert np.linalg.norm(G[k] + beta * Z[k] / zk) <= 1e-3 * beta
        else:        # ‖∇_k f‖ ≤ β
            assert np.linalg.norm(G[k]) <= beta * (1 + 1e-3)
    assert sol["active_tokens"] >= 1 and np.linalg.norm(Z[1]) > 0
    assert np.all(attnsvm.glasso(X, y, 1.01 * bmax)["Z"] == 0)        # β ≥ β_max ⇒ Z = 0
    path = attnsvm.glasso_path(X, y, [0.8 * bmax, 0.4 * bmax, 0.1 * bmax])
    assert [s["status"] for s in path] == ["Solved"] * 3
    assert path[-1]["objective"] == pytest.approx(attnsvm.glasso(X, y, 0.1 * bmax)["objective"], rel=1e-7)


def test_glasso_equals_cli_convex(cli, tmp_path):
    X, y = planted_lasso(seed=2)
    folder = tmp_path / "cvx"
    folder.mkdir()
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    beta = 0.3 * attnsvm.glasso_beta_max(X, y)
    cli("convex", "--data", folder, "--loss", "squared", "--beta", repr(beta), "--out", tmp_path / "out")
    summary = read_json(tmp_path / "out" / "summary.json")
    sol = attnsvm.glasso(X, y, beta)
    np.testing.assert_array_equal(sol["Z"][0], np.load(tmp_path / "out" / "Z.npy"))
    assert summary["beta_max"] == attnsvm.glasso_beta_max(X, y)
    assert summary["status"] == sol["status"] == "Solved"
    for key in ("objective", "loss", "penalty", "active_tokens", "iterations"):
        assert summary[key] == sol[key], key
    assert summary["relative_gap"] == sol["certificate"]["rel_gap"]
