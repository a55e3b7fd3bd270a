"""The attention SVM and the token analysis: the CLI's answer on the same instance, and the
certificates checked from scratch in NumPy (feasibility, KKT, Farkas)."""
import json

import numpy as np
import pytest

import attnsvm
from conftest import read_json, write_instance


def constraint_matrices(X, Z, c):
    """A_k = (x_{i,selected} − x_{i,t}) z_iᵀ for the rows `sample, sequence, position, selected, token`."""
    seq, sel, tok = c[:, 1], c[:, 3], c[:, 4]
    Q = Z[seq] if Z is not None else X[seq, np.where(c[:, 2] < 0, 0, c[:, 2])]
    return np.einsum("kd,ke->kde", X[seq, sel] - X[seq, tok], Q)


@pytest.fixture(scope="module")
def sphere():
    return attnsvm.generate("sphere", 6, 8, 10, seed=3)


@pytest.mark.parametrize("norm", ["fro", "nuc"])
def test_att_svm_equals_cli_svm(cli, tmp_path, sphere, norm):
    g = sphere
    data = write_instance(tmp_path / "inst", g["X"], g["Z"], g["y"], g["v"])
    cli("svm", "--data", data, "--norm", norm, "--out", tmp_path / "svm")
    out = tmp_path / "svm"
    summary = read_json(out / "summary.json")
    sol = attnsvm.att_svm(g["X"], g["Z"], g["y"], g["v"], norm=norm)
    assert sol["status"] == summary["status"] == "Solved"
    assert sol["norm"] == summary["norm"] == norm
    np.testing.assert_array_equal(sol["W"], np.load(out / "W.npy"))
    np.testing.assert_array_equal(sol["duals"], np.load(out / "duals.npy"))
    np.testing.assert_array_equal(sol["margins"], np.load(out / "margins.npy"))
    np.testing.assert_array_equal(sol["constraints"], np.load(out / "constraints.npy"))
    np.testing.assert_array_equal(sol["alpha"], np.load(out / "alpha.npy"))
    assert sol["objective"] == summary["objective"]
    assert sol["kkt"] == summary["kkt"]
    support = read_json(out / "support.json")
    assert [list(r) for r in sol["constraints"][sol["support_by_dual"]][:, [0, 1, 4]]] == support["by_dual"]


def test_frobenius_kkt_from_scratch(sphere):
    g = sphere
    sol = attnsvm.att_svm(g["X"], g["Z"], g["y"], g["v"])
    A = constraint_matrices(g["X"], g["Z"], sol["constraints"])
    W, lam = sol["W"], sol["duals"]
    margins = np.einsum("kde,de->k", A, W)
    np.testing.assert_allclose(margins, sol["margins"], rtol=1e-12)
    assert margins.min() >= 1 - 1e-9                                      # primal feasible
    assert lam.min() >= 0                                                  # dual feasible
    np.testing.assert_allclose(W, np.einsum("k,kde->de", lam, A), atol=1e-9)  # stationarity
    assert np.abs(lam * (margins - 1)).sum() <= 1e-9 * max(1, lam.sum())  # complementarity
    # strong duality: ½‖W‖² = Σλ − ½‖Σλ_k A_k‖², so ‖W‖² = Σλ
    assert np.linalg.norm(W) ** 2 == pytest.approx(lam.sum(), rel=1e-9)
    assert sol["duality_gap"] < 1e-9
    assert sol["objective"] == pytest.approx(np.linalg.norm(W), rel=1e-12)
    # support tokens by dual are tight constraints
    assert np.all(np.abs(margins[sol["support_by_dual"]] - 1) < 1e-6)


def test_nuclear_certificate_from_scratch(sphere):
    g = sphere
    sol = attnsvm.att_svm(g["X"], g["Z"], g["y"], g["v"], norm="nuc")
    A = constraint_matrices(g["X"], g["Z"], sol["constraints"])
    W, lam = sol["W"], sol["duals"]
    nuc = np.linalg.svd(W, compute_uv=False).sum()
    assert sol["objective"] == pytest.approx(nuc, rel=1e-9)
    assert np.einsum("kde,de->k", A, W).min() >= 1 - 1e-8
    # λ with ‖Σλ_k A_k‖_op ≤ 1 is dual feasible; Σλ bounds ‖W‖_⋆ from below, and the gap closes.
    op = np.linalg.norm(np.einsum("k,kde->de", lam, A), 2)
    lower = lam.sum() / max(op, 1.0)
    assert lower <= nuc * (1 + 1e-9)
    assert (nuc - lower) / nuc < 1e-6
    fro = attnsvm.att_svm(g["X"], g["Z"], g["y"], g["v"], norm="fro")
    assert nuc <= np.linalg.svd(fro["W"], compute_uv=False).sum() * (1 + 1e-9)  # W_mm⋆ minimizes ‖·‖⋆


def test_infeasible_selection_has_a_farkas_certificate(cli, tmp_path, sphere):
    """Sequence 0 twice, once selecting token a and once token b: no W separates both ways."""
    g = sphere
    X = np.concatenate([g["X"], g["X"][:1]])
    Z = np.concatenate([g["Z"], g["Z"][:1]])
    y = np.concatenate([g["y"], g["y"][:1]])
    alpha = np.concatenate([g["alpha"], [(g["alpha"][0] + 1) % 8]])
    sol = attnsvm.att_svm(X, Z, y, g["v"], alpha)
    assert sol["status"] == "Infeasible"
    f = sol["farkas"]
    lam = np.array(f["multipliers"])
    assert lam.min() >= 0 and lam.sum() == pytest.approx(1.0, rel=1e-12)
    A = constraint_matrices(X, Z, sol["constraints"])
    assert np.linalg.norm(np.einsum("k,kde->de", lam, A)) < 1e-12 * np.abs(A).max()
    assert 0 in f["sequences"] and 6 in f["sequences"]
    data = write_instance(tmp_path / "inf", X, Z, y, g["v"], alpha)
    cli("svm", "--data", data, "--out", tmp_path / "svm")
    summary = read_json(tmp_path / "svm" / "summary.json")
    assert summary["status"] == "Infeasible"
    assert summary["farkas"]["sequences"] == f["sequences"]


def test_selection_report_equals_cli_tokens(cli, tmp_path, sphere):
    g = sphere
    data = write_instance(tmp_path / "inst", g["X"], g["Z"], g["y"], g["v"])
    # a selection that is not globally optimal: the second-best token of sequence 0
    scores = g["y"][:, None] * np.einsum("ntd,d->nt", g["X"], g["v"])
    alpha = g["alpha"].copy()
    alpha[0] = np.argsort(scores[0])[-2]
    np.save(tmp_path / "alpha.npy", alpha)
    cli("tokens", "--data", data, "--alpha", tmp_path / "alpha.npy", "--json", tmp_path / "tokens.json")
    want = read_json(tmp_path / "tokens.json")
    got = attnsvm.selection_report(g["X"], g["Z"], g["y"], g["v"], alpha)
    for key in ("status", "feasible", "globally_optimal", "locally_optimal_by_margin",
                "locally_optimal_by_dual", "violations", "samples", "norm", "objective"):
        assert json.dumps(got[key]) == json.dumps(want[key]), key
    assert got["globally_optimal"] is False
    assert got["samples"][0]["optimal"] == [int(np.argmax(scores[0]))]
    np.testing.assert_allclose(got["samples"][1]["scores"], scores[1], rtol=1e-14)
    np.testing.assert_array_equal(
        attnsvm.optimal_selection(g["X"], g["Z"], g["y"], g["v"]), np.argmax(scores, axis=1))


def test_self_attention_seq2seq_causal(tmp_path):
    g = attnsvm.generate("orthonormal", 3, 4, 12, self_attention=True)
    sol = attnsvm.att_svm(g["X"], None, g["y"], g["v"], "opt", seq2seq=True, causal=True)
    assert sol["alpha"].shape == (3, 4)
    c = sol["constraints"]
    assert np.all(c[:, 4] <= c[:, 2])                     # causal: only tokens up to the query
    assert sol["status"] == "Solved"
    # every sample with at least one other visible token contributes constraints
    assert len(c) == 3 * sum(range(4))
    closed = attnsvm.att_svm(g["X"], None, g["y"], g["v"])
    np.testing.assert_allclose(closed["W"], g["reference"], atol=1e-9)  # W_mm in closed form


def test_analyze_trained_reads_the_selection_off_w(sphere):
    g = sphere
    X, Z, y, v = g["X"], g["Z"], g["y"], g["v"]
    run = attnsvm.train(X, Z, y, v, iters=2000, init="random", seed=2)
    a = attnsvm.analyze_trained(X, Z, y, v, run["W"])
    logits = np.einsum("ntd,de,ne->nt", X, run["W"], Z)
    np.testing.assert_array_equal(a["selected"], logits.argmax(axis=1))
    np.testing.assert_array_equal(a["selected"], run["alpha_hat"])
    direct = attnsvm.att_svm(X, Z, y, v, a["selected"])
    np.testing.assert_array_equal(a["solution"]["W"], direct["W"])
    assert a["solution"]["status"] == "Solved"
    assert a["corr"] == pytest.approx(np.sum(run["W"] * direct["W"]) / np.linalg.norm(run["W"]) / np.linalg.norm(direct["W"]), rel=1e-12)
    assert a["corr"] > 0.99
    rep = attnsvm.selection_report(X, Z, y, v, a["selected"])
    assert a["report"]["locally_optimal_by_margin"] == rep["locally_optimal_by_margin"]
