"""Numerical helpers shared by the preprocessing transformers."""

import numpy as np
import scipy.sparse as sp

__all__ = ["mean_var", "normalize_rows", "row_sums", "scale_rows"]


def mean_var(X):
    """Per-column mean and unbiased (ddof=1) variance in float64, like scanpy.

    Computed from column sums and sums of squares accumulated in float64, so
    dense and sparse input give the same bits (for counts the sums are
    exact), which keeps loess fits on these statistics identical.
    """
    n = X.shape[0]
    if sp.issparse(X):
        Xf = sp.csr_matrix(X, dtype=np.float64, copy=True)
        s1 = np.asarray(Xf.sum(axis=0)).ravel()
        Xf.data **= 2
        s2 = np.asarray(Xf.sum(axis=0)).ravel()
    else:
        Xd = np.asarray(X, dtype=np.float64)
        s1 = Xd.sum(axis=0)
        s2 = np.square(Xd).sum(axis=0)
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 0.0)
    if n > 1:
        var *= n / (n - 1)
    return mean, var


def row_sums(X):
    """Row totals as a 1-D float64 array, dense or sparse."""
    return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()


def normalize_rows(X, target_sum, totals=None):
    """Scale every row to total ``target_sum``; rows summing to 0 stay 0.

    ``totals`` (default: the row sums of ``X``) lets callers count only a
    subset of columns.  Returns a new object of the input's type.
    """
    if totals is None:
        totals = row_sums(X)
    factors = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return scale_rows(X, factors)


def scale_rows(X, factors):
    """Return ``X`` with row ``i`` multiplied by ``factors[i]`` (new object)."""
    if sp.issparse(X):
        out = sp.csr_matrix(X, copy=True)
        out.data = (out.data * np.repeat(factors, np.diff(out.indptr))).astype(
            X.dtype, copy=False
        )
        return out.asformat(X.format)
    return (X * factors[:, None]).astype(X.dtype, copy=False)
