"""Type stubs of attnsvm (the compiled attnsvm._attnsvm, re-exported). Docstrings are on the
functions themselves (``help(attnsvm.att_svm)``)."""

from os import PathLike
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Family = Literal["gaussian", "sphere", "orthonormal", "equal-score", "planted"]
HeadName = Literal["linear", "relu", "lambda"]
LossName = Literal["logistic", "exp", "corr"]
NormName = Literal["fro", "nuc"]

def generate(
    family: Family,
    n: int,
    T: int,
    d: int,
    seed: int = 0,
    self_attention: bool = False,
    margin: float = 0.5,
) -> Dict[str, Any]:
    """A seeded instance: ``X`` (n,T,d), ``Z`` (n,d) or None, ``y``, ``v``, ``alpha``,
    ``reference_name`` ("W_mm", "W_star" or None) and ``reference`` (d,d) or None."""

def load_instance(path: Union[str, PathLike[str]]) -> Dict[str, Any]:
    """Read an instance directory (the CLI's format) into ``X``, ``Z``, ``y``, ``v``, ``alpha``."""

class Objective:
    """The risk ``L(W) = (1/n) Σ ℓ(y_i f_i)`` of one attention layer and its exact gradient."""

    def __init__(
        self,
        X: ArrayLike,
        Z: Optional[ArrayLike],
        y: ArrayLike,
        v: ArrayLike,
        head: HeadName = "linear",
        loss: LossName = "logistic",
        query_position: int = 0,
        lam: float = 0.1,
        Wv: Optional[ArrayLike] = None,
        u: Optional[ArrayLike] = None,
        seed: int = 0,
    ) -> None: ...
    def evaluate(self, W: ArrayLike, v: Optional[ArrayLike] = None) -> Dict[str, Any]:
        """``loss``, ``log_loss``, ``log_excess_loss``, ``grad``, ``grad_direction``,
        ``log_grad_norm``, ``grad_v``, ``selected``, ``min_max_prob``, ``mean_max_prob``,
        ``log_max_off_mass``."""
    def loss(self, W: ArrayLike) -> float: ...
    def gradient(self, W: ArrayLike) -> F64: ...
    def logits(self, W: ArrayLike) -> F64: ...
    @property
    def shape(self) -> Tuple[int, int, int]: ...

def train(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    *,
    param: Literal["w", "kq"] = "w",
    opt: Literal["gd", "ngd", "polyak", "adam"] = "ngd",
    lr: float = 0.1,
    iters: int = 1000,
    init: Literal["zero", "random"] = "zero",
    seed: int = 0,
    head: HeadName = "linear",
    loss: LossName = "logistic",
    lam: float = 0.1,
    Wv: Optional[ArrayLike] = None,
    u: Optional[ArrayLike] = None,
    query_position: int = 0,
    reference: Optional[ArrayLike] = None,
    lr_decay: float = 0.0,
    ngd_eps: float = 0.0,
    polyak_target: Literal["zero", "infimum"] = "zero",
    kq_ridge: float = 0.0,
    train_v: bool = False,
    loss_tol: Optional[float] = None,
    grad_tol: Optional[float] = None,
    batch_size: Optional[int] = None,
    points_per_decade: int = 20,
) -> Dict[str, Any]:
    """``W``, ``K``, ``Q``, ``v``, ``alpha_hat``, ``stop``, ``iterations``, ``seconds`` and
    ``trace`` (a dict of arrays: the columns of the CLI's trace.csv, and ``selected``)."""

Alpha = Union[Literal["opt"], ArrayLike, None]

def att_svm(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    alpha: Alpha = None,
    norm: NormName = "fro",
    *,
    query_position: int = 0,
    seq2seq: bool = False,
    causal: bool = False,
    solver: Literal["auto", "dual", "ipm"] = "auto",
    tol: float = 1e-10,
    max_iter: int = 200000,
    time_limit: Optional[float] = None,
    support_tol: float = 1e-6,
    seed: int = 0,
) -> Dict[str, Any]:
    """``W``, ``duals``, ``margins``, ``constraints``, ``alpha``, ``status``, ``norm``,
    ``objective``, ``duality_gap``, ``kkt``, ``farkas``, ``support_by_margin``,
    ``support_by_dual``, ``iterations``, ``seconds``, ``solver``, ``message``."""

def selection_report(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    alpha: Alpha = None,
    norm: NormName = "fro",
    *,
    query_position: int = 0,
    seq2seq: bool = False,
    causal: bool = False,
    solver: Literal["auto", "dual", "ipm"] = "auto",
    tol: float = 1e-10,
    max_iter: int = 200000,
    time_limit: Optional[float] = None,
    support_tol: float = 1e-6,
) -> Dict[str, Any]:
    """The token analysis of ``attnsvm tokens --json``."""

def optimal_selection(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    *,
    query_position: int = 0,
    seq2seq: bool = False,
    causal: bool = False,
) -> I64: ...
def analyze_trained(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    W: ArrayLike,
    norm: NormName = "fro",
    *,
    query_position: int = 0,
    causal: bool = False,
    solver: Literal["auto", "dual", "ipm"] = "auto",
    tol: float = 1e-10,
    max_iter: int = 200000,
    time_limit: Optional[float] = None,
    support_tol: float = 1e-6,
) -> Dict[str, Any]:
    """``selected`` (α̂), ``corr`` (corr(W, W^mm(α̂))), ``solution`` (as att_svm), ``report``."""

def regularization_path(
    X: ArrayLike,
    Z: Optional[ArrayLike],
    y: ArrayLike,
    v: ArrayLike,
    radii: Sequence[float],
    ball: Literal["fro", "nuc", "kq"] = "fro",
    *,
    loss: LossName = "logistic",
    head: HeadName = "linear",
    lam: float = 0.1,
    Wv: Optional[ArrayLike] = None,
    u: Optional[ArrayLike] = None,
    query_position: int = 0,
    reference: Optional[ArrayLike] = None,
    cone_axis: Optional[ArrayLike] = None,
    mu: Optional[float] = None,
    tol: float = 1e-10,
    max_iter: int = 100000,
    time_limit: Optional[float] = None,
    seed: int = 0,
    kq_width: Optional[int] = None,
) -> Dict[str, Any]:
    """Per radius: ``radius``, ``point_status``, ``residual``, ``loss``, ``corr``, ``W`` (k,d,d), …"""

def glasso(
    X: ArrayLike,
    y: ArrayLike,
    beta: float,
    loss: Literal["squared", "logistic"] = "squared",
    *,
    loss_weight: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 100000,
    time_limit: Optional[float] = None,
    zero_tol: float = 0.0,
    gates: Optional[int] = None,
    gate_seed: int = 0,
) -> Dict[str, Any]:
    """``status``, ``beta``, ``Z`` (c,n,d), or (c,M,n,d) with ``gates=M`` (program (14)),
    ``row_norms``, ``active_tokens``, ``objective``, ``certificate``, …; ``heads`` (``gate``,
    ``token``, ``value``, ``output``), ``recovery`` (``heads``, ``max_prediction_difference``, ``nonconvex_objective``,
    ``relative_objective_difference``); with gates ``gates`` (N,M), ``u1`` (M,n), ``u2`` (M,d)."""

def glasso_path(
    X: ArrayLike,
    y: ArrayLike,
    betas: Sequence[float],
    loss: Literal["squared", "logistic"] = "squared",
    *,
    loss_weight: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 100000,
    time_limit: Optional[float] = None,
    zero_tol: float = 0.0,
    gates: Optional[int] = None,
    gate_seed: int = 0,
) -> List[Dict[str, Any]]: ...
def glasso_beta_max(
    X: ArrayLike,
    y: ArrayLike,
    loss: Literal["squared", "logistic"] = "squared",
    *,
    loss_weight: float = 1.0,
    gates: Optional[int] = None,
    gate_seed: int = 0,
) -> float: ...
