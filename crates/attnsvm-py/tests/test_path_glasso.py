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


def planted_outputs(N=30, n=4, d=3, c=2, seed=0):
    """Two outputs of a planted two-token model, for the vector programs (12) and (14)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n, d))
    Z = np.zeros((c, n, d))
    Z[0, 1] = [1.0, -2.0, 0.5]
    Z[1, 3] = [0.5, 1.0, -1.0]
    y = np.einsum("ind,lnd->il", X, Z) + 0.1 * rng.standard_normal((N, c))
    return X, y


def test_gated_glasso_equals_cli_convex(cli, tmp_path):
    X, y = planted_outputs(seed=4)
    folder = tmp_path / "cvx"
    folder.mkdir()
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    bmax = attnsvm.glasso_beta_max(X, y, gates=3, gate_seed=5)
    assert bmax != attnsvm.glasso_beta_max(X, y, gates=3, gate_seed=6)   # the seed picks the gates
    beta = 0.2 * bmax
    cli("convex", "--data", folder, "--loss", "squared", "--beta", repr(beta),
        "--gates", 3, "--gate-seed", 5, "--out", tmp_path / "out")
    out = tmp_path / "out"
    summary = read_json(out / "summary.json")
    sol = attnsvm.glasso(X, y, beta, gates=3, gate_seed=5)
    assert summary["program"] == 14 and summary["gates"] == 3
    assert sol["Z"].shape == (2, 3, 4, 3) and sol["row_norms"].shape == (2, 3, 4)
    np.testing.assert_allclose(sol["Z"], np.load(out / "Z.npy"), rtol=1e-9, atol=1e-12)
    assert summary["beta_max"] == pytest.approx(bmax, rel=1e-12)
    assert summary["status"] == sol["status"] == "Solved"
    assert summary["objective"] == pytest.approx(sol["objective"], rel=1e-9)
    assert summary["active_tokens"] == sol["active_tokens"]
    for key in ("gates", "u1", "u2"):
        np.testing.assert_array_equal(sol[key], np.load(out / f"{key}.npy"), err_msg=key)
    heads = read_json(out / "heads.json")
    np.testing.assert_array_equal(sol["heads"]["gate"], [h["gate"] for h in heads])
    np.testing.assert_array_equal(sol["heads"]["token"], [h["token"] for h in heads])
    np.testing.assert_allclose(sol["heads"]["value"], [h["value"] for h in heads], rtol=1e-9)
    np.testing.assert_allclose(sol["heads"]["output"], [h["output"] for h in heads], rtol=1e-9)
    rec = summary["recovery"]
    assert rec["heads"] == len(heads) == len(sol["heads"]["gate"])
    assert rec["nonconvex_objective"] == pytest.approx(sol["recovery"]["nonconvex_objective"], rel=1e-9)


def model_predictions(X, sol):
    """Model (13) (or (11): one open gate) from the recovered heads, in NumPy."""
    h = sol["heads"]
    D = sol["gates"] if "gates" in sol else np.ones((X.shape[0], 1))
    picked = X[:, h["token"], :]                              # (N, h, d): the one-hot attention
    scores = np.einsum("ihd,hd->ih", picked, h["value"]) * D[:, h["gate"]]
    return scores @ h["output"]


@pytest.mark.parametrize("gates", [None, 3])
def test_recovered_heads_reproduce_the_convex_solution(gates):
    X, y = planted_outputs(seed=1)
    kw = {} if gates is None else {"gates": gates, "gate_seed": 2}
    beta = 0.1 * attnsvm.glasso_beta_max(X, y, **kw)
    sol = attnsvm.glasso(X, y, beta, **kw)
    assert sol["status"] == "Solved"
    N, n, d = X.shape
    c = y.shape[1]
    m = 1 if gates is None else gates
    h = sol["heads"]
    # one one-hot head per nonzero group (l, j, k)
    assert len(h["gate"]) == np.count_nonzero(sol["row_norms"]) >= 2
    assert h["value"].shape == (len(h["gate"]), d) and h["output"].shape == (len(h["gate"]), c)
    assert np.all((0 <= h["token"]) & (h["token"] < n)) and np.all((0 <= h["gate"]) & (h["gate"] < m))
    assert np.all(np.count_nonzero(h["output"], axis=1) == 1)
    if gates is None:
        assert sol["Z"].shape == (c, n, d) and "gates" not in sol and np.all(h["gate"] == 0)
    else:
        u1, u2, D = sol["u1"], sol["u2"], sol["gates"]
        assert D.shape == (N, m) and u1.shape == (m, n) and u2.shape == (m, d)
        np.testing.assert_array_equal(D, np.einsum("jn,ind,jd->ij", u1, X, u2) >= 0)
        assert 0 < D.mean() < 1
        # (14): Σ_j D_ij ⟨X_i, Z_jl⟩
        np.testing.assert_allclose(np.einsum("ij,ind,ljnd->il", D, X, sol["Z"]), sol["predictions"],
                                   rtol=1e-10, atol=1e-10)
    pred = model_predictions(X, sol)
    assert np.abs(pred - sol["predictions"]).max() < 1e-9
    assert sol["recovery"]["max_prediction_difference"] < 1e-9
    # objective (13)/(11) of the heads: loss + (β/2) Σ (‖v‖² + ‖o‖₁²) = the convex objective
    reg = (h["value"] ** 2).sum() + (np.abs(h["output"]).sum(axis=1) ** 2).sum()
    nonconvex = ((pred - y) ** 2).sum() + 0.5 * beta * reg
    assert nonconvex == pytest.approx(sol["objective"], rel=1e-9)
    assert sol["recovery"]["nonconvex_objective"] == pytest.approx(sol["objective"], rel=1e-9)
    assert sol["recovery"]["relative_objective_difference"] < 1e-9
    path = attnsvm.glasso_path(X, y, [0.5 * beta / 0.1, beta], **kw)
    assert path[-1]["recovery"]["relative_objective_difference"] < 1e-9
    assert len(path[-1]["heads"]["gate"]) == np.count_nonzero(path[-1]["row_norms"])


def test_zero_gates_is_refused_as_by_the_cli(cli, tmp_path):
    X, y = planted_outputs()
    msg = "gates=0: program (14) needs at least one gate"
    for f, args in ((attnsvm.glasso, (0.1,)), (attnsvm.glasso_path, ([0.1],)), (attnsvm.glasso_beta_max, ())):
        with pytest.raises(ValueError) as err:
            f(X, y, *args, gates=0)
        assert str(err.value) == msg
    with pytest.raises(ValueError, match="gate_seed=4: the gate seed needs gates"):
        attnsvm.glasso(X, y, 0.1, gate_seed=4)
    folder = tmp_path / "cvx"
    folder.mkdir()
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    proc = cli("convex", "--data", folder, "--loss", "squared", "--beta", "0.1", "--gates", 0,
               "--out", tmp_path / "out", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --gates 0: program (14) needs at least one gate"
    assert msg.split(": ", 1)[1] in proc.stderr
