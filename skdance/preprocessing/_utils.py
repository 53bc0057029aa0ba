"""Numerical helpers shared by the preprocessing transformers."""

import numpy as np
import scipy.sparse as sp

__all__ = ["mean_var", "row_sums", "scale_rows"]


def mean_var(X):
    """Per-column mean and unbiased (ddof=1) variance in float64, like scanpy."""
    n = X.shape[0]
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
        sq = X.copy()
        sq.data = np.square(sq.data, dtype=np.float64)
        mean_sq = np.asarray(sq.mean(axis=0, dtype=np.float64)).ravel()
        var = mean_sq - mean**2
    else:
        Xd = np.asarray(X, dtype=np.float64)
        mean = Xd.mean(axis=0)
        var = Xd.var(axis=0)
    if n > 1:
        var *= n / (n - 1)
    return mean, var


def row_sums(X):
    """Row totals as a 1-D float64 array, dense or sparse."""
    return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()


def scale_rows(X, factors):
    """Return ``X`` with row ``i`` multiplied by ``factors[i]`` (new object)."""
    if sp.issparse(X):
        out = sp.csr_matrix(X, copy=True)
        out.data = (out.data * np.repeat(factors, np.diff(out.indptr))).astype(
            X.dtype, copy=False
        )
        return out.asformat(X.format)
    return (X * factors[:, None]).astype(X.dtype, copy=False)
