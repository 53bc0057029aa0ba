"""Validation of paired modalities: one row per cell in both matrices.

The three multimodal tasks (DESIGN section 2) share one input rule: the
first modality ``X`` (cells x mod1 features) and the second ``Y`` (cells x
mod2 features) describe the same cells in the same row order.  Either may
be an array, a sparse matrix, a DataFrame or an AnnData (its ``.X``).
"""

import numpy as np
from sklearn.utils.validation import check_array

from skdance.utils._validation import _unwrap_anndata, is_anndata, validate_input

__all__ = ["validate_paired", "validate_second_modality"]


def validate_second_modality(estimator, Y, n_cells, *, reset, name="Y"):
    """Validate the second modality of ``estimator`` against ``n_cells`` rows.

    On ``reset`` the number of mod2 features (``n_features_mod2_``) and
    their names (``feature_names_mod2_``, from a DataFrame or AnnData) are
    recorded; otherwise they are checked.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted or used.
    Y : array-like, sparse matrix, DataFrame or AnnData
        Second modality.
    n_cells : int
        Rows of the first modality.
    reset : bool
        True in ``fit``.
    name : str, default="Y"
        Name in messages.

    Returns
    -------
    Y : ndarray or sparse matrix
        Validated float matrix (CSR when sparse).
    """
    whom = type(estimator).__name__
    if Y is None:
        raise ValueError(
            f"{whom} requires y to be passed, but the target y is None: pass "
            f"the second modality of the same cells as {name}."
        )
    names = None
    if is_anndata(Y):
        Y, names = _unwrap_anndata(Y, None)
    elif hasattr(Y, "columns"):
        names = np.asarray(Y.columns, dtype=object)
    Y = check_array(
        Y,
        accept_sparse="csr",
        dtype=(np.float64, np.float32),
        input_name=name,
        ensure_2d=False,
    )
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.shape[0] != n_cells:
        raise ValueError(
            f"{whom}: the two modalities must describe the same cells (row i of "
            f"X paired with row i of {name}); got {n_cells} cells in X and "
            f"{Y.shape[0]} in {name}."
        )
    if reset:
        estimator.n_features_mod2_ = Y.shape[1]
        if names is not None and all(isinstance(n, str) for n in names):
            estimator.feature_names_mod2_ = names
    elif Y.shape[1] != estimator.n_features_mod2_:
        raise ValueError(
            f"{name} has {Y.shape[1]} features, but {whom} was fitted with "
            f"{estimator.n_features_mod2_} second-modality features."
        )
    return Y


def validate_paired(estimator, X, Y, *, reset, **check_params):
    """Validate both modalities; the first sets ``n_features_in_``.

    Returns
    -------
    X, Y : validated matrices with the same number of rows.
    """
    X = validate_input(estimator, X, reset=reset, **check_params)
    Y = validate_second_modality(estimator, Y, X.shape[0], reset=reset)
    return X, Y
