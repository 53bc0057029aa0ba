"""Reindex new data to a fitted gene list."""

from numbers import Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted

from skdance.utils import (
    is_anndata,
    reject_mudata,
    unwrap_anndata,
    validate_input,
)

__all__ = ["GeneAligner"]


def _matrix_and_names(X):
    reject_mudata(X, "GeneAligner")
    if is_anndata(X):
        return unwrap_anndata(X, None)
    if isinstance(X, pd.DataFrame):
        return X, np.asarray(X.columns, dtype=object)
    return X, None


class GeneAligner(TransformerMixin, BaseEstimator):
    """Reindex cells x genes data to a fixed gene list, filling absent genes.

    Fit on the reference (training) data, or give the gene list explicitly;
    ``transform`` then reorders the columns of any named input (DataFrame or
    AnnData) to that list, fills genes the input lacks with ``fill_value``
    and drops genes the reference lacks.  Put it first in a Pipeline that is
    fitted on one dataset and applied to another with other genes.

    Parameters
    ----------
    genes : array-like of str or None, default=None
        Target gene list.  None: the gene names of the data passed to ``fit``
        (which must then have names).
    fill_value : float, default=0.0
        Value of target genes absent from the input.
    min_overlap : float, default=0.0
        Smallest accepted fraction of target genes present in the input of
        ``transform``; below it a ``ValueError`` is raised instead of returning
        a mostly filled matrix.

    Attributes
    ----------
    genes_ : ndarray of str of shape (n_genes,)
        The target gene list, in output order.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    Notes
    -----
    Input without gene names (plain arrays) is only accepted when it has
    exactly ``len(genes_)`` columns, which are then assumed to be in order.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdance.preprocessing import GeneAligner
    >>> ref = pd.DataFrame([[1, 2, 3]], columns=["A", "B", "C"])
    >>> new = pd.DataFrame([[5, 4]], columns=["C", "D"])
    >>> aligner = GeneAligner().fit(ref)
    >>> aligner.transform(new)
    array([[0., 0., 5.]])
    >>> aligner.overlap(new)
    0.333...
    """

    _parameter_constraints = {
        "genes": ["array-like", None],
        "fill_value": [Real],
        "min_overlap": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, *, genes=None, fill_value=0.0, min_overlap=0.0):
        self.genes = genes
        self.fill_value = fill_value
        self.min_overlap = min_overlap

    def fit(self, X, y=None):
        """Learn the target gene list.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData}
            Reference data, cells x genes.
        y : None
            Ignored.

        Returns
        -------
        self : GeneAligner
            Fitted transformer.
        """
        self._validate_params()
        validate_input(self, X, reset=True)
        if self.genes is not None:
            genes = np.asarray(self.genes, dtype=object)
        else:
            genes = getattr(self, "feature_names_in_", None)
            if genes is None:
                genes = np.array(
                    [f"x{i}" for i in range(self.n_features_in_)], dtype=object
                )
        if len(set(genes)) != len(genes):
            raise ValueError("GeneAligner: the target gene list has duplicates.")
        self.genes_ = genes
        return self

    def overlap(self, X):
        """Fraction of the target genes present in ``X`` (1.0 for unnamed X).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData}
            Data to align.

        Returns
        -------
        overlap : float
            Between 0 and 1.
        """
        check_is_fitted(self)
        _, names = _matrix_and_names(X)
        if names is None:
            return 1.0
        return float(np.isin(self.genes_, names).mean())

    def transform(self, X):
        """Reindex ``X`` to ``genes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData}
            Cells x genes with gene names (or exactly ``len(genes_)`` unnamed
            columns).

        Returns
        -------
        X_aligned : ndarray or sparse matrix of shape (n_cells, ``len(genes_)``)
            Sparse (CSR) for sparse input, dense otherwise.
        """
        check_is_fitted(self)
        matrix, names = _matrix_and_names(X)
        matrix = check_array(
            matrix, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32)
        )
        n_target = len(self.genes_)
        if names is None:
            if matrix.shape[1] != n_target:
                raise ValueError(
                    f"X has {matrix.shape[1]} features, but GeneAligner is "
                    f"expecting {n_target} features as input. Pass a DataFrame or "
                    "AnnData with gene names to reindex by name."
                )
            return matrix.copy()
        if len(set(names)) != len(names):
            raise ValueError("GeneAligner: the input has duplicated gene names.")
        position = pd.Index(names).get_indexer(self.genes_)
        present = position >= 0
        frac = present.mean() if n_target else 1.0
        if frac < self.min_overlap:
            raise ValueError(
                f"Only {present.sum()} of {n_target} target genes "
                f"({frac:.1%}) are in the input, below min_overlap="
                f"{self.min_overlap}."
            )
        n = matrix.shape[0]
        if sp.issparse(matrix):
            # a selection matrix maps input columns to target columns
            cols = np.flatnonzero(present)
            select = sp.csr_matrix(
                (np.ones(cols.size, dtype=matrix.dtype), (position[present], cols)),
                shape=(matrix.shape[1], n_target),
            )
            out = sp.csr_matrix(matrix @ select)
            if self.fill_value != 0 and (~present).any():
                out = out.toarray()
                out[:, ~present] = self.fill_value
            return out
        out = np.full((n, n_target), self.fill_value, dtype=matrix.dtype)
        out[:, present] = matrix[:, position[present]]
        return out

    def get_feature_names_out(self, input_features=None):
        """Return the target gene list.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            ``genes_``.
        """
        check_is_fitted(self)
        return np.asarray(self.genes_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
