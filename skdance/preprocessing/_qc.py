"""Cell and gene quality-control functions.

These change the number of cells, which a scikit-learn transformer may not
do inside a Pipeline, so they are plain functions applied before fitting.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["filter_cells", "filter_genes"]


def _nnz_and_total(X, axis):
    counts = np.asarray(X.sum(axis=axis)).ravel()
    if sp.issparse(X):
        nnz = np.asarray((X != 0).sum(axis=axis)).ravel()
    else:
        nnz = np.count_nonzero(X, axis=axis)
    return nnz, counts


def filter_cells(X, *, min_counts=1, min_genes=0):
    """Boolean mask of cells passing QC (like :func:`scanpy.pp.filter_cells`).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_cells, n_genes)
        Counts.
    min_counts : float, default=1
        Minimum total counts per cell.
    min_genes : int, default=0
        Minimum number of detected genes per cell.

    Returns
    -------
    keep : ndarray of bool of shape (n_cells,)
        Cells to keep; index ``X[keep]`` (and the labels) with it.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import filter_cells
    >>> filter_cells(np.array([[0, 0], [1, 2]]))
    array([False,  True])
    """
    nnz, counts = _nnz_and_total(X, axis=1)
    return (counts >= min_counts) & (nnz >= min_genes)


def filter_genes(X, *, min_cells=1, min_counts=0):
    """Boolean mask of genes passing QC (like :func:`scanpy.pp.filter_genes`).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_cells, n_genes)
        Counts.
    min_cells : int, default=1
        Minimum number of cells in which the gene is detected.
    min_counts : float, default=0
        Minimum total counts of the gene.

    Returns
    -------
    keep : ndarray of bool of shape (n_genes,)
        Genes to keep.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import filter_genes
    >>> filter_genes(np.array([[0, 1], [0, 2]]))
    array([False,  True])
    """
    nnz, counts = _nnz_and_total(X, axis=0)
    return (nnz >= min_cells) & (counts >= min_counts)
