"""Side information aligned with the cells: one protocol for every estimator.

Spatial coordinates, batch labels, partial cell-type labels and similar
per-cell values reach an estimator in one of two ways:

* as a keyword argument of ``fit`` / ``predict`` (``fit(X, coords=...)``),
  declared for scikit-learn metadata routing so that ``Pipeline`` and
  ``GridSearchCV`` slice it per fold;
* inside an :class:`anndata.AnnData` ``X``, under the ``obsm`` / ``obs`` key
  named by a parameter (``spatial_key="spatial"``, ``batch_key=...``).

:func:`resolve_side_info` applies that rule in one place: the keyword wins,
the AnnData key is the fallback, the result has one row per cell, and missing
required information is a ``ValueError`` that says how to pass it.

The design: ``doc/architecture.rst``, section ``architecture-side-information``.
"""

import numpy as np
from sklearn.utils.validation import _num_samples, check_array

from skdance.utils._validation import is_anndata

__all__ = ["MissingSideInfoError", "resolve_side_info"]


class MissingSideInfoError(ValueError):
    """Required side information (``coords``, ...) was not given.

    A ``ValueError``, so callers that catch those keep working; the scorers
    of :mod:`skdance.metrics` catch it to say how to route the information.

    Parameters
    ----------
    message : str
        The error message.
    name : str or None, default=None
        Name of the missing keyword argument (``"coords"``).
    """

    def __init__(self, message, name=None):
        super().__init__(message)
        self.name = name


def resolve_side_info(
    X,
    value,
    *,
    name,
    key=None,
    slot="obsm",
    n_samples=None,
    required=True,
    whom="the estimator",
    kind="matrix",
):
    """Return side information for the cells of ``X``, aligned by row.

    Parameters
    ----------
    X : array-like, sparse matrix or AnnData
        The cells (rows) the information belongs to.
    value : array-like or None
        The keyword argument passed by the user (``coords=...``).  Takes
        precedence over the AnnData key.
    name : str
        Name of the keyword argument, used in messages (``"coords"``).
    key : str or None, default=None
        The ``obsm`` / ``obs`` key to read when ``X`` is an AnnData and
        ``value`` is None (``spatial_key``, ``batch_key``).
    slot : {"obsm", "obs"}, default="obsm"
        Where ``key`` lives in the AnnData.
    n_samples : int or None, default=None
        Number of cells; defaults to ``X.shape[0]``.
    required : bool, default=True
        Raise when nothing was given; otherwise return None.
    whom : str, default="the estimator"
        Estimator name for messages.
    kind : {"matrix", "vector"}, default="matrix"
        ``"matrix"``: a finite float array of shape (n_samples, n_dims)
        (coordinates); ``"vector"``: a 1-d array of shape (n_samples,) of any
        dtype (batch or label values).

    Returns
    -------
    info : ndarray or None
        A new array (never a view of the caller's data).

    Raises
    ------
    MissingSideInfoError
        When required information is missing or the AnnData key is absent
        (a ``ValueError``).
    ValueError
        When the number of rows differs from the number of cells.
    """
    source = f"{name}="
    if value is None and key is not None and is_anndata(X):
        container = getattr(X, slot)
        if key not in container:
            if required:
                available = sorted(map(str, container.keys()))
                raise MissingSideInfoError(
                    f"{whom} needs {name}: pass {name}=... or store it in "
                    f"adata.{slot}[{key!r}] (not found; {slot} keys: {available}).",
                    name=name,
                )
            return None
        value = container[key]
        source = f"adata.{slot}[{key!r}]"
    if value is None:
        if not required:
            return None
        hint = (
            f" or pass an AnnData with adata.{slot}[{key!r}]" if key is not None else ""
        )
        raise MissingSideInfoError(
            f"{whom} requires {name} (one row per cell): pass {name}=...{hint}.",
            name=name,
        )
    if kind == "matrix":
        info = check_array(
            getattr(value, "values", value),
            dtype=np.float64,
            copy=True,
            input_name=name,
        )
    else:
        info = np.array(getattr(value, "values", value), copy=True)
        if info.ndim != 1:
            info = info.reshape(-1) if info.ndim == 2 and 1 in info.shape else info
        if info.ndim != 1:
            raise ValueError(
                f"{name} must be 1-dimensional (one value per cell); got shape "
                f"{info.shape}."
            )
    if n_samples is None:
        n_samples = _num_samples(X)
    if info.shape[0] != n_samples:
        raise ValueError(
            f"{source} has {info.shape[0]} rows but X has {n_samples} cells; side "
            "information must have one row per cell."
        )
    return info
