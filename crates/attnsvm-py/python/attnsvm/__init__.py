"""attnsvm: the optimization geometry of softmax attention, from NumPy.

Attention SVMs with certificates (``att_svm``), token analysis (``selection_report``), exact
log-domain training (``train``, ``Objective``), regularization paths (``regularization_path``) and
the token-group lasso of convex attention (``glasso``), computed by the Rust library ``attnsvm``.
Arrays go in as NumPy arrays (or anything ``numpy.asarray`` takes) and come out as NumPy arrays;
long computations release the GIL. Bad input raises ``ValueError`` with the same one-line message
as the ``attnsvm`` command-line tool.

Conventions: tokens of sequence i are the rows of ``X[i]`` (T×d); logits ``a_it = x_itᵀ W z_i``
(``Z=None``: self-attention, the query is a token of the sequence); attention
``s_i = softmax(a_i)``; output ``x̄_i = X_iᵀ s_i``; labels ``y_i ∈ {−1, +1}``; token score
``γ_it = y_i vᵀ x_it``.
"""

from ._attnsvm import (
    Objective,
    __version__,
    analyze_trained,
    att_svm,
    generate,
    glasso,
    glasso_beta_max,
    glasso_path,
    load_instance,
    optimal_selection,
    regularization_path,
    selection_report,
    train,
)

__all__ = [
    "Objective",
    "__version__",
    "analyze_trained",
    "att_svm",
    "generate",
    "glasso",
    "glasso_beta_max",
    "glasso_path",
    "load_instance",
    "optimal_selection",
    "regularization_path",
    "selection_report",
    "train",
]
