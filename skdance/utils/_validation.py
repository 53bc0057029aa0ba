"""Input validation shared by every skdance estimator.

scikit-learn's :func:`~sklearn.utils.validation.validate_data` does the heavy
lifting (dtype, finiteness, ``n_features_in_``, ``feature_names_in_``).  This
module adds what single-cell input needs on top of it:

* :class:`anndata.AnnData` input (``.X`` or a layer), with ``var_names``
  becoming ``feature_names_in_`` and being checked again at predict time;
* checks that a matrix holds counts (non-negative) and has no empty cells,
  with error messages that say what to do.
"""

import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Options
from sklearn.utils.validation import validate_data

__all__ = [
    "Widths",
    "check_counts",
    "check_no_empty_rows",
    "check_widths",
    "is_anndata",
    "is_mudata",
    "validate_input",
]

FLOAT_DTYPES = (np.float64, np.float32)


def is_anndata(X):
    """Return True when ``X`` is an :class:`anndata.AnnData` object."""
    return type(X).__name__ == "AnnData" and hasattr(X, "var_names")


def is_mudata(X):
    """Return True when ``X`` is a :class:`mudata.MuData` object."""
    return type(X).__name__ == "MuData" and hasattr(X, "mod")


def reject_mudata(X, whom):
    """Raise a clear ``ValueError`` when ``X`` is a MuData.

    ``numpy.asarray(mdata)`` does not fail but hangs, so every estimator
    that reads one matrix checks this before anything converts ``X``.
    """
    if is_mudata(X):
        raise ValueError(
            f"{whom} takes one modality (cells x features), not a MuData with "
            f"modalities {list(X.mod)}: pass one of them, e.g. "
            f"mdata[{next(iter(X.mod), 'rna')!r}] (an AnnData)."
        )


def unwrap_anndata(X, layer):
    if layer is None:
        matrix = X.X
    else:
        if layer not in X.layers:
            raise ValueError(
                f"layer={layer!r} is not in the AnnData object; available layers: "
                f"{sorted(X.layers.keys())}."
            )
        matrix = X.layers[layer]
    if matrix is None:
        raise ValueError("The AnnData object has no expression matrix in .X.")
    return matrix, np.asarray(X.var_names, dtype=object)


def _check_anndata_names(estimator, names):
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None:
        return
    if len(fitted) != len(names) or np.any(fitted != names):
        missing = [g for g in fitted[:5] if g not in set(names)]
        raise ValueError(
            "The feature names should match those that were passed during fit. "
            f"The AnnData passed has {len(names)} genes, the estimator was fitted "
            f"on {len(fitted)} (first missing: {missing}). Use "
            "skdance.preprocessing.GeneAligner to reindex new data to the "
            "fitted genes."
        )


def check_counts(X, *, whom):
    """Raise a clear ``ValueError`` unless ``X`` is a valid count matrix.

    Counts must be non-negative (integer-ness is not enforced so that
    size-factor-corrected or ambient-corrected counts are accepted).

    Parameters
    ----------
    X : ndarray or sparse matrix
        Already validated (finite) matrix.
    whom : str
        Name used in the error message.
    """
    data = X.data if sp.issparse(X) else X
    if data.size and data.min() < 0:
        raise ValueError(
            f"Negative values in data passed to {whom}: it requires non-negative "
            f"counts (min={float(data.min()):.4g}). Pass raw counts (before "
            "scaling or centring)."
        )
    return X


def check_no_empty_rows(X, *, whom):
    """Raise a clear ``ValueError`` when some cells have zero total counts."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    empty = np.flatnonzero(totals == 0)
    if empty.size:
        raise ValueError(
            f"{whom} found {empty.size} cell(s) with zero total counts (rows "
            f"{empty[:10].tolist()}{'...' if empty.size > 10 else ''}). Remove "
            "empty cells first, e.g. with skdance.preprocessing.filter_cells or "
            "scanpy.pp.filter_cells(adata, min_counts=1)."
        )
    return X


def validate_input(
    estimator,
    X,
    y="no_validation",
    *,
    reset,
    counts=False,
    nonempty_rows=False,
    accept_sparse=("csr", "csc"),
    dtype=FLOAT_DTYPES,
    **check_params,
):
    """Validate ``X`` (and ``y``) for ``estimator``, accepting AnnData too.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator being fitted or used; ``n_features_in_`` and
        ``feature_names_in_`` are set on it when ``reset=True`` and checked
        otherwise.  If it has a ``layer`` attribute, AnnData input is read from
        that layer.
    X : array-like, sparse matrix, DataFrame or AnnData
        Cells x features.
    y : array-like or "no_validation"
        Targets, validated together with ``X`` when given.
    reset : bool
        True in ``fit``; False in ``predict``/``transform``.
    counts : bool
        Require non-negative values.
    nonempty_rows : bool
        Require every row to have a positive sum.
    accept_sparse, dtype, **check_params
        Passed to :func:`sklearn.utils.validation.validate_data`.

    Returns
    -------
    X or (X, y)
        Validated data; never a view that aliases the caller's buffer when the
        caller later modifies it (callers copy before in-place work).
    """
    names = None
    reject_mudata(X, type(estimator).__name__)
    if is_anndata(X):
        X, names = unwrap_anndata(X, getattr(estimator, "layer", None))
        if not reset:
            _check_anndata_names(estimator, names)
    with warnings.catch_warnings():
        if names is not None:
            warnings.filterwarnings(
                "ignore", message="X does not have valid feature names"
            )
        out = validate_data(
            estimator,
            X,
            y,
            reset=reset,
            accept_sparse=accept_sparse,
            dtype=dtype,
            **check_params,
        )
    if names is not None and reset:
        estimator.feature_names_in_ = names
    Xv = out[0] if isinstance(out, tuple) else out
    whom = type(estimator).__name__
    if counts:
        check_counts(Xv, whom=whom)
    if nonempty_rows:
        check_no_empty_rows(Xv, whom=whom)
    return out


def check_finite_output(out, *, whom, what="output"):
    """Raise a clear ``ValueError`` when a model's output is not finite.

    Finite but extreme input (say 1e30 in one entry) overflows the float32
    arithmetic of the torch models and yields NaN or inf; this turns that
    into an error instead of silent garbage.

    Parameters
    ----------
    out : ndarray or sparse matrix
        The output about to be returned.
    whom : str
        Estimator name for the message.
    what : str, default="output"
        What the output is, for the message.

    Returns
    -------
    out : ndarray or sparse matrix
        Unchanged.
    """
    values = out.data if sp.issparse(out) else np.asarray(out)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        raise ValueError(
            f"{whom} produced a non-finite {what}: the input holds values too "
            "extreme for the model's arithmetic (an overflow). Check that the "
            "input is in the units the model expects (counts, log-normalised "
            "values) and clip or remove extreme entries."
        )
    return out


def dense_float(X, dtype=np.float32):
    """Dense, writable copy of ``X`` (sparse or array) as ``dtype``."""
    if sp.issparse(X):
        return X.toarray().astype(dtype, copy=False)
    return np.array(X, dtype=dtype, copy=True)


def check_random_state_int(random_state):
    """Turn ``random_state`` into an int seed usable by torch/igraph/leidenalg."""
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


class Widths(Options):
    """Parameter constraint: a tuple of positive ints (layer widths).

    Used in ``_parameter_constraints`` of every model with ``hidden_dims``
    and similar tuples, so that a bad value is rejected by
    ``_validate_params`` at the start of ``fit``, with the parameter's name,
    instead of failing deep inside a network's construction.

    Parameters
    ----------
    allow_empty : bool, default=False
        Accept ``()`` (no hidden layer).

    Examples
    --------
    >>> from skdance.utils import Widths
    >>> Widths().is_satisfied_by((64, 32)), Widths().is_satisfied_by(())
    (True, False)
    """

    def __init__(self, allow_empty=False):
        # an ``Options`` subclass: scikit-learn's ``_validate_params`` accepts
        # only its own constraint classes (a bare ``_Constraint`` is refused)
        super().__init__(tuple, set())
        self.allow_empty = allow_empty

    def is_satisfied_by(self, val):
        """Whether ``val`` is a (non-empty unless allowed) tuple of positive ints."""
        try:
            check_widths(val, "value", allow_empty=self.allow_empty)
        except ValueError:
            return False
        return True

    def __str__(self):
        kind = "a tuple" if self.allow_empty else "a non-empty tuple"
        return f"{kind} of positive ints (layer widths)"


def check_widths(value, name, *, allow_empty=False, what="hidden layer widths"):
    """Return ``value`` as a tuple of positive ints (layer widths), or raise.

    Parameters
    ----------
    value : iterable of int
        The widths a user passed (``hidden_dims``, ``decoder_dims``, ...).
    name : str
        The parameter's name, for the error message.
    allow_empty : bool, default=False
        Accept ``()`` (no hidden layer).
    what : str, default="hidden layer widths"
        What the widths are, for the error message.

    Returns
    -------
    dims : tuple of int

    Raises
    ------
    ValueError
        When an entry is not a positive int (bools included), or ``value``
        is empty and ``allow_empty`` is False.
    """
    try:
        dims = tuple(value)
    except TypeError:
        dims = None
    if (
        dims is None
        or (not dims and not allow_empty)
        or any(
            not isinstance(d, Integral) or isinstance(d, bool) or d < 1 for d in dims
        )
    ):
        kind = "tuple" if allow_empty else "non-empty tuple"
        raise ValueError(
            f"{name} must be a {kind} of positive ints ({what}), got {value!r}."
        )
    return tuple(int(d) for d in dims)


def check_per_modality(value, name):
    """Return ``value`` as a pair of positive ints, one per modality, or raise.

    A single positive int applies to both modalities.

    Parameters
    ----------
    value : int or pair of int
        What a user passed (e.g. ``n_components`` of a per-modality LSI).
    name : str
        The parameter's name, for the error message.

    Returns
    -------
    pair : tuple of (int, int)

    Raises
    ------
    ValueError
        When ``value`` is neither a positive int nor a pair of them.
    """
    if isinstance(value, Integral):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
    if len(pair) != 2 or any(
        not isinstance(c, Integral) or isinstance(c, bool) or c < 1 for c in pair
    ):
        raise ValueError(
            f"{name} must be a positive int or a pair of them (one per "
            f"modality), got {value!r}."
        )
    return tuple(int(c) for c in pair)


def check_n_clusters(estimator, n_samples):
    """Raise a clear error when ``estimator.n_clusters`` is missing or too large."""
    name = type(estimator).__name__
    if estimator.n_clusters is None:
        raise ValueError(
            f"{name} requires n_clusters (the number of cell types); got None."
        )
    if estimator.n_clusters > n_samples:
        raise ValueError(
            f"n_clusters={estimator.n_clusters} is larger than the number of cells "
            f"(n_samples={n_samples})."
        )


def canonical_row_order(X):
    """Order of the rows of ``X`` that does not depend on how they were listed.

    Transductive methods (a graph over the cells passed together, a CCA of
    the spots) sum over neighbours in row order and break ties by index, so
    their output for a cell could change, in the last bits or by a tie,
    when the same cells come in another order.  Running them on
    ``X[canonical_row_order(X)]`` and scattering the result back makes the
    output a function of the set of rows: each key below is a row-wise
    reduction with a fixed column order, the same whatever the row's
    position.  Identical rows are interchangeable, so ties among them do
    not matter.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Validated data (CSR with sorted indices when sparse).

    Returns
    -------
    order : ndarray of shape (n_samples,)
        Row permutation (stable lexicographic sort of the row keys).
    """
    n_features = X.shape[1]
    weights = np.cos(np.arange(n_features, dtype=np.float64))
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        X.sort_indices()
        keys = [
            np.asarray(X.multiply(w).sum(axis=1)).ravel()
            for w in (weights, weights**2, np.ones(n_features))
        ]
    else:
        X = np.asarray(X, dtype=np.float64)
        keys = [(X * w).sum(axis=1) for w in (weights, weights**2)]
        keys.append(X.sum(axis=1))
    return np.lexsort(keys[::-1])
