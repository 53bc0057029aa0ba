"""DANCE's masked-dropout protocol and the scores computed on the hidden entries."""

import numpy as np
import scipy.sparse as sp
from scipy.stats import expon
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from skdance.utils import check_counts

__all__ = ["imputation_scores", "mask_dropout"]


def mask_dropout(X, rate=0.1, *, distribution="exp", min_genes=5, random_state=None):
    """Hide a fraction of every cell's non-zero counts (DANCE's protocol).

    DANCE's ``CellwiseMaskData``: in every cell with more than ``min_genes``
    detected genes, ``floor(rate * n_detected)`` of its non-zero entries are
    set to zero, drawn without replacement with probability proportional to
    ``expon.pdf(count, scale=20)`` (``distribution="exp"``: low counts, the
    ones that drop out in real data, are hidden more often) or uniformly.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_cells, n_genes)
        Non-negative counts.  Not modified.
    rate : float, default=0.1
        Fraction of each cell's non-zero entries to hide.
    distribution : {"exp", "uniform"}, default="exp"
        Which entries are more likely to be hidden.
    min_genes : int, default=5
        Cells with at most this many detected genes are left intact.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    X_masked : same type as ``X``, shape (n_cells, n_genes)
        Counts with the hidden entries set to 0 (a CSR matrix for sparse
        input, a float ndarray otherwise).
    mask : scipy.sparse.csr_matrix of bool, shape (n_cells, n_genes)
        True at the hidden entries.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.imputation import mask_dropout
    >>> X = np.arange(1, 41, dtype=float).reshape(2, 20)
    >>> X_masked, mask = mask_dropout(X, rate=0.1, random_state=0)
    >>> int(mask.sum()), int((X_masked[mask.toarray()] == 0).sum())
    (4, 4)
    """
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate!r}.")
    if distribution not in ("exp", "uniform"):
        raise ValueError(
            f"distribution must be 'exp' or 'uniform', got {distribution!r}."
        )
    sparse_in = sp.issparse(X)
    X = check_array(X, accept_sparse="csr", dtype=np.float64)
    check_counts(X, whom="mask_dropout")
    rng = check_random_state(random_state)
    C = sp.csr_matrix(X, copy=True)
    C.eliminate_zeros()
    C.sort_indices()
    hidden = np.zeros(C.nnz, dtype=bool)
    for i in range(C.shape[0]):
        lo, hi = C.indptr[i], C.indptr[i + 1]
        n_pos = hi - lo
        if n_pos <= min_genes:
            continue
        n_masked = int(np.floor(n_pos * rate))
        if n_masked == 0:
            continue
        if distribution == "exp":
            p = expon.pdf(C.data[lo:hi], 0, 20)
            p = p / p.sum()
        else:
            p = None
        hidden[lo + rng.choice(n_pos, n_masked, replace=False, p=p)] = True
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    mask = sp.csr_matrix(
        (np.ones(hidden.sum(), dtype=bool), (rows[hidden], C.indices[hidden])),
        shape=C.shape,
        dtype=bool,
    )
    masked = C.copy()
    masked.data[hidden] = 0.0
    masked.eliminate_zeros()
    if sparse_in:
        return masked, mask
    return masked.toarray(), mask


def _hidden_values(X, mask):
    """Values of ``X`` at the True entries of ``mask`` (row-major order)."""
    mask = sp.csr_matrix(mask, dtype=bool)
    rows, cols = mask.nonzero()
    if sp.issparse(X):
        return np.asarray(sp.csr_matrix(X)[rows, cols], dtype=np.float64).ravel()
    return np.asarray(X, dtype=np.float64)[rows, cols]


def imputation_scores(X_true, X_imputed, mask, *, log1p=True):
    """Errors of an imputation on the hidden entries.

    Parameters
    ----------
    X_true : {array-like, sparse matrix} of shape (n_cells, n_genes)
        The counts before masking.
    X_imputed : {array-like, sparse matrix} of shape (n_cells, n_genes)
        The imputed counts.
    mask : {array-like, sparse matrix} of bool, shape (n_cells, n_genes)
        True at the hidden entries (from :func:`mask_dropout`).
    log1p : bool, default=True
        Score ``log1p`` of the counts (the unit of DANCE's MSE, RMSE and
        Pearson); False scores the counts themselves.

    Returns
    -------
    scores : dict
        ``mse``, ``rmse``, ``mre`` (mean of ``|x_hat - x| / x``; the hidden
        entries are non-zero) and ``pearson`` over the hidden entries.
        DANCE's RMSE averages over all entries with the non-hidden ones set
        to the truth, i.e. ours times ``sqrt(fraction hidden)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.imputation import imputation_scores
    >>> true = np.array([[3.0, 1.0], [0.0, 7.0]])
    >>> mask = np.array([[True, False], [False, True]])
    >>> s = imputation_scores(true, true * 1.0, mask)
    >>> s["mse"], s["mre"], round(s["pearson"], 6)
    (0.0, 0.0, 1.0)
    """
    if np.shape(X_true) != np.shape(X_imputed) or np.shape(X_true) != np.shape(mask):
        raise ValueError(
            f"X_true, X_imputed and mask must have the same shape, got "
            f"{np.shape(X_true)}, {np.shape(X_imputed)} and {np.shape(mask)}."
        )
    true = _hidden_values(X_true, mask)
    pred = _hidden_values(X_imputed, mask)
    if true.size == 0:
        raise ValueError("mask hides no entry; nothing to score.")
    if not np.isfinite(pred).all():
        raise ValueError("X_imputed has NaN or infinite values at hidden entries.")
    if log1p:
        true, pred = np.log1p(true), np.log1p(np.maximum(pred, 0.0))
    err = pred - true
    mse = float(np.mean(err**2))
    denom = np.maximum(np.abs(true), 1e-10)
    pearson = (
        float(np.corrcoef(true, pred)[0, 1])
        if true.std() > 0 and pred.std() > 0
        else 0.0
    )
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mre": float(np.mean(np.abs(err) / denom)),
        "pearson": pearson,
    }
