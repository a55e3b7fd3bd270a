"""Instances, the risk and its gradient, and training: the same numbers as the CLI, and the maths
(an independent NumPy forward pass, finite differences, convergence in direction to W_mm)."""
import numpy as np
import pytest

import attnsvm
from conftest import read_csv, write_instance


@pytest.mark.parametrize(
    "family, n, T, d, self_attention",
    [("sphere", 6, 8, 10, False), ("orthonormal", 4, 4, 16, True), ("planted", 5, 6, 7, False)],
)
def test_generate_equals_cli_gen(cli, tmp_path, family, n, T, d, self_attention):
    flags = ["--self-attn"] if self_attention else []
    cli("gen", "--family", family, "--n", n, "--T", T, "--d", d, "--seed", 3, *flags, "--out", tmp_path / "g")
    g = attnsvm.generate(family, n, T, d, seed=3, self_attention=self_attention)
    for name in ("X", "y", "v", "alpha"):
        np.testing.assert_array_equal(g[name], np.load(tmp_path / "g" / f"{name}.npy"))
    assert (g["Z"] is None) == self_attention
    if not self_attention:
        np.testing.assert_array_equal(g["Z"], np.load(tmp_path / "g" / "Z.npy"))
    if g["reference_name"] is not None:
        np.testing.assert_array_equal(g["reference"], np.load(tmp_path / "g" / f"{g['reference_name']}.npy"))
    loaded = attnsvm.load_instance(tmp_path / "g")
    np.testing.assert_array_equal(loaded["X"], g["X"])


def numpy_risk(W, X, Z, y, v):
    """L(W) = mean log(1 + exp(−y_i vᵀX_iᵀ softmax(X_i W z_i))), plainly in NumPy."""
    a = np.einsum("ntd,de,ne->nt", X, W, Z)
    s = np.exp(a - a.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    f = np.einsum("nt,ntd,d->n", s, X, v)
    return np.mean(np.logaddexp(0.0, -y * f))


def test_objective_matches_numpy_and_finite_differences():
    g = attnsvm.generate("gaussian", 7, 5, 6, seed=11)
    X, Z, y, v = g["X"], g["Z"], g["y"], g["v"]
    W = np.random.default_rng(0).standard_normal((6, 6))
    risk = attnsvm.Objective(X, Z, y, v)
    assert risk.shape == (7, 5, 6)
    e = risk.evaluate(W)
    assert e["loss"] == pytest.approx(numpy_risk(W, X, Z, y, v), rel=1e-13)
    assert risk.loss(W) == e["loss"]
    np.testing.assert_allclose(risk.logits(W), np.einsum("ntd,de,ne->nt", X, W, Z), rtol=1e-13, atol=1e-14)
    h = 1e-6
    fd = np.zeros_like(W)
    for i in range(6):
        for j in range(6):
            E = np.zeros_like(W)
            E[i, j] = h
            fd[i, j] = (numpy_risk(W + E, X, Z, y, v) - numpy_risk(W - E, X, Z, y, v)) / (2 * h)
    np.testing.assert_allclose(risk.gradient(W), fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(e["grad_direction"], e["grad"] / np.linalg.norm(e["grad"]), atol=1e-14)
    assert e["log_grad_norm"] == pytest.approx(np.log(np.linalg.norm(e["grad"])), rel=1e-12)


def decimal_gradient(W, X, Z, y, v, digits=60):
    """∇_W L in 60-digit decimal arithmetic (whose exponent range has no underflow at e^{-10⁵}):
    ∂L/∂W = (1/n) Σ_i ℓ'(y_i f_i) y_i Σ_t s_it (g_it − f_i) x_it z_iᵀ, with g_t − f written as
    Σ_τ s_τ (g_t − g_τ) so that nothing cancels."""
    from decimal import Decimal as D, getcontext

    getcontext().prec = digits
    n, T, d = X.shape
    G = [[D(0)] * d for _ in range(d)]
    for i in range(n):
        a = [sum(D(X[i, t, j]) * D(W[j, k]) * D(Z[i, k]) for j in range(d) for k in range(d)
                 if X[i, t, j] != 0 and Z[i, k] != 0) for t in range(T)]
        m = max(a)
        e = [(x - m).exp() for x in a]
        s = [x / sum(e) for x in e]
        g = [sum(D(X[i, t, j]) * D(v[j]) for j in range(d)) for t in range(T)]
        f = sum(st * gt for st, gt in zip(s, g))
        u = D(y[i]) * f
        dl = -1 / (1 + u.exp())
        for t in range(T):
            c = dl * D(y[i]) * s[t] * sum(s[r] * (g[t] - g[r]) for r in range(T)) / n
            for j in range(d):
                for k in range(d):
                    if X[i, t, j] != 0 and Z[i, k] != 0:
                        G[j][k] += c * D(X[i, t, j]) * D(Z[i, k])
    norm = sum(x * x for row in G for x in row).sqrt()
    return np.array([[float(x / norm) for x in row] for row in G]), float(norm.ln())


def test_gradient_direction_survives_saturation():
    """At ‖W‖ = 1e5 the gradient (≈ e^{-10⁴}) underflows to 0 in f64; its direction and log-norm
    are still exact (checked against 60-digit decimal arithmetic)."""
    g = attnsvm.generate("orthonormal", 3, 3, 9, self_attention=True)
    X, y, v = g["X"], g["y"], g["v"]
    risk = attnsvm.Objective(X, None, y, v)
    W = 1e5 * g["reference"] / np.linalg.norm(g["reference"]) + 1e3 * np.eye(9)
    e = risk.evaluate(W)
    assert np.all(e["grad"] == 0.0) and e["log_grad_norm"] < np.log(1e-300)
    direction, log_norm = decimal_gradient(W, X, X[:, 0, :], y, v)
    np.testing.assert_allclose(e["grad_direction"], direction, rtol=1e-9, atol=1e-12)
    assert e["log_grad_norm"] == pytest.approx(log_norm, rel=1e-12)


def test_train_equals_cli_train(cli, tmp_path):
    g = attnsvm.generate("sphere", 6, 8, 10, seed=3)
    data = write_instance(tmp_path / "inst", g["X"], g["Z"], g["y"], g["v"], g["alpha"])
    cli("train", "--data", data, "--opt", "ngd", "--lr", 0.1, "--iters", 300, "--init", "random", "--seed", 5,
        "--out", tmp_path / "run")
    run = attnsvm.train(g["X"], g["Z"], g["y"], g["v"], opt="ngd", lr=0.1, iters=300, init="random", seed=5)
    np.testing.assert_array_equal(run["W"], np.load(tmp_path / "run" / "W.npy"))
    np.testing.assert_array_equal(run["alpha_hat"], np.load(tmp_path / "run" / "alpha_hat.npy"))
    np.testing.assert_array_equal(run["trace"]["selected"], np.load(tmp_path / "run" / "selected.npy"))
    csv = read_csv(tmp_path / "run" / "trace.csv")
    np.testing.assert_array_equal(run["trace"]["iter"], csv["iter"])
    for col in ("loss", "log10_loss", "log10_excess_loss", "log10_grad_norm", "w_norm", "min_max_prob"):
        np.testing.assert_array_equal(run["trace"][col], csv[col], err_msg=col)
    assert run["stop"] == "iterations" and run["iterations"] == 300
    assert run["K"] is None and run["Q"] is None


def test_train_converges_in_direction_to_w_mm():
    g = attnsvm.generate("orthonormal", 4, 4, 16, self_attention=True)
    run = attnsvm.train(g["X"], None, g["y"], g["v"], iters=2000, reference=g["reference"])
    omc = run["trace"]["one_minus_corr"]
    assert omc[-1] < 1e-3 < omc[1]
    assert run["trace"]["loss"][-1] < run["trace"]["loss"][0]
    kq = attnsvm.train(g["X"], None, g["y"], g["v"], param="kq", iters=50)
    np.testing.assert_allclose(kq["W"], kq["K"] @ kq["Q"].T, rtol=1e-12, atol=1e-14)


def test_training_and_solves_release_the_gil():
    """Another Python thread keeps running while a run (or a solve) is in Rust."""
    import threading

    g = attnsvm.generate("sphere", 40, 8, 10, seed=1)
    X, Z, y, v = g["X"], g["Z"], g["y"], g["v"]
    for work in (lambda: attnsvm.train(X, Z, y, v, iters=3000),
                 lambda: [attnsvm.att_svm(X, Z, y, v, norm="nuc") for _ in range(3)]):
        done = []
        worker = threading.Thread(target=lambda: done.append(work()))
        spins = 0
        worker.start()
        while worker.is_alive():
            spins += 1
        worker.join()
        assert done and spins > 10_000, spins
