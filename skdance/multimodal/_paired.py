"""Validation of paired modalities: one row per cell in both matrices.

The three multimodal tasks (prediction, matching, joint embedding) share
one input rule: the first modality ``X`` (cells x mod1 features) and the
second ``Y`` (cells x mod2 features) describe the same cells in the same row
order.  Either may be an array, a sparse matrix, a DataFrame or an AnnData
(its ``.X``); both may come together as one :class:`mudata.MuData`, whose
modalities the estimator's ``mudata_mods`` parameter names (default: its
first two).  Feature names seen in ``fit`` (DataFrame columns, AnnData
``var_names``) are checked again for both modalities wherever the fitted
estimator reads new data.
"""

import numpy as np
from sklearn.utils.validation import check_array

from skdance.utils import (
    is_anndata,
    is_mudata,
    unwrap_anndata,
    validate_input,
)

__all__ = [
    "MUDATA_CONSTRAINTS",
    "as_pair",
    "first_modality",
    "paired_inputs",
    "split_mudata",
    "validate_paired",
    "validate_second_modality",
]

#: Parameter constraint of ``mudata_mods``, shared by every paired estimator.
MUDATA_CONSTRAINTS = {"mudata_mods": [tuple, list, None]}


def split_mudata(estimator, mdata):
    """Return the two modalities of ``mdata`` the estimator reads, as AnnData.

    Parameters
    ----------
    estimator : estimator
        A paired estimator; its ``mudata_mods`` (a pair of modality names, or
        None for the MuData's first two) chooses the modalities.
    mdata : mudata.MuData
        Paired cells.

    Returns
    -------
    mod1, mod2 : anndata.AnnData
        The chosen modalities, with the same cells in the same order.

    Raises
    ------
    ValueError
        When ``mudata_mods`` is not two distinct names of ``mdata.mod``, the
        MuData has fewer than two modalities, or the two modalities do not
        list the same cells in the same order.
    """
    whom = type(estimator).__name__
    available = list(mdata.mod)
    names = getattr(estimator, "mudata_mods", None)
    if names is None:
        if len(available) < 2:
            raise ValueError(
                f"{whom} needs two paired modalities, but the MuData has "
                f"{len(available)} ({available}); pass a MuData with both, or "
                "the two matrices (X, Y)."
            )
        names = available[:2]
    names = list(names)
    if (
        len(names) != 2
        or not all(isinstance(n, str) for n in names)
        or names[0] == names[1]
    ):
        raise ValueError(
            f"{whom}: mudata_mods must be two distinct modality names "
            f"(mod1, mod2), got {estimator.mudata_mods!r}."
        )
    missing = [n for n in names if n not in mdata.mod]
    if missing:
        raise ValueError(
            f"{whom}: mudata_mods={tuple(names)} names modalities the MuData "
            f"does not have ({missing}); it has {available}."
        )
    mod1, mod2 = (mdata.mod[n] for n in names)
    if mod1.n_obs != mod2.n_obs or not np.array_equal(
        np.asarray(mod1.obs_names), np.asarray(mod2.obs_names)
    ):
        raise ValueError(
            f"{whom}: the modalities {names[0]!r} ({mod1.n_obs} cells) and "
            f"{names[1]!r} ({mod2.n_obs} cells) of the MuData must hold the "
            "same cells in the same order; keep the cells measured in both "
            "first (e.g. muon.pp.intersect_obs(mdata))."
        )
    return mod1, mod2


def paired_inputs(estimator, X, Y):
    """Return ``(X, Y)``, taking both modalities from ``X`` when it is a MuData.

    ``fit(mdata)``, ``fit(mdata, mdata)``, ``match(mdata)`` and
    ``score(mdata)`` all read the two modalities ``mudata_mods`` names; a
    MuData beside a separate second modality is ambiguous and raises.
    """
    if is_mudata(X):
        if Y is not None and Y is not X:
            raise ValueError(
                f"{type(estimator).__name__} got a MuData as X and a separate "
                "second modality: pass the MuData alone (mudata_mods chooses "
                "its two modalities) or two matrices (X, Y)."
            )
        return split_mudata(estimator, X)
    return X, Y


def as_pair(estimator, X):
    """Return a MuData's two modalities as a pair; any other ``X`` unchanged."""
    return split_mudata(estimator, X) if is_mudata(X) else X


def first_modality(estimator, X):
    """Return ``X``, or the first modality ``mudata_mods`` names of a MuData."""
    return split_mudata(estimator, X)[0] if is_mudata(X) else X


def _names_of(Y):
    if is_anndata(Y):
        return np.asarray(Y.var_names, dtype=object)
    if hasattr(Y, "columns"):
        return np.asarray(Y.columns, dtype=object)
    return None


def _check_mod2_names(estimator, names, name):
    fitted = getattr(estimator, "feature_names_mod2_", None)
    if fitted is None or names is None:
        return
    if len(names) != len(fitted) or np.any(names != fitted):
        differ = [
            (str(a), str(b)) for a, b in zip(fitted, names, strict=False) if a != b
        ]
        raise ValueError(
            f"The second-modality feature names of {name} should match those "
            f"passed during fit ({type(estimator).__name__} was fitted on "
            f"{len(fitted)} named features, {name} has {len(names)}; first "
            f"differences (fitted, given): {differ[:3]}). Reorder the columns "
            "to the fitted order, e.g. Y[fitted.feature_names_mod2_]."
        )


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
    if is_mudata(Y):
        raise ValueError(
            f"{whom} got a MuData as {name}: pass the MuData alone as X (its "
            "modalities are chosen by mudata_mods), or the second modality's "
            "AnnData or matrix as Y."
        )
    names = _names_of(Y)
    if is_anndata(Y):
        Y, _ = unwrap_anndata(Y, None)
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
        elif hasattr(estimator, "feature_names_mod2_"):
            del estimator.feature_names_mod2_  # from an earlier fit
    else:
        if Y.shape[1] != estimator.n_features_mod2_:
            raise ValueError(
                f"{name} has {Y.shape[1]} features, but {whom} was fitted with "
                f"{estimator.n_features_mod2_} second-modality features."
            )
        if names is not None and all(isinstance(n, str) for n in names):
            _check_mod2_names(estimator, names, name)
    return Y


def validate_paired(estimator, X, Y, *, reset, **check_params):
    """Validate both modalities; the first sets ``n_features_in_``.

    Returns
    -------
    X, Y : validated matrices with the same number of rows.
    """
    X, Y = paired_inputs(estimator, X, Y)
    X = validate_input(estimator, X, reset=reset, **check_params)
    Y = validate_second_modality(estimator, Y, X.shape[0], reset=reset)
    return X, Y
