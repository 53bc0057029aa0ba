"""Shared plumbing of the imputation transformers."""

from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdance.utils import SkdanceTags, check_finite_output, validate_input

__all__ = ["BaseImputer", "replace_columns"]


def replace_columns(X, columns, block):
    """Return ``X`` with ``X[:, columns]`` replaced by the dense ``block``.

    Sparse input gives a CSR matrix (only the replaced columns become
    dense), dense input an ndarray; ``X`` is not modified.
    """
    columns = np.asarray(columns)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        delta = block - X[:, columns].toarray()
        D = sp.csr_matrix(delta)
        D = sp.csr_matrix((D.data, columns[D.indices], D.indptr), shape=X.shape)
        out = X + D
        out.eliminate_zeros()
        return out
    out = np.array(X, dtype=np.float64, copy=True)
    out[:, columns] = block
    return out


class BaseImputer(
    OneToOneFeatureMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta
):
    """Validation for imputers: counts in, same-shape counts out.

    Subclasses implement ``_fit(X)`` and ``_transform(X)`` on validated,
    non-negative input (CSR or ndarray, float64).

    The output's columns are the input's genes (``get_feature_names_out``),
    so that ``set_output(transform="pandas")`` returns DataFrames of the
    imputed genes, indexed as a DataFrame ``X`` is.  A sparse output (of
    sparse input, where the method keeps it sparse) has no DataFrame form:
    scikit-learn then raises a ``ValueError`` saying so.
    """

    @abstractmethod
    def _fit(self, X):
        """Learn the imputation model from validated counts."""

    @abstractmethod
    def _transform(self, X):
        """Impute validated counts on the fitted genes."""

    def fit(self, X, y=None):
        """Learn the imputation model from counts.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (the masked matrix in an evaluation).
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted imputer.
        """
        self._validate_params()
        X = validate_input(
            self, X, reset=True, counts=True, ensure_min_samples=2, dtype=np.float64
        )
        self._fit(X)
        return self

    def transform(self, X):
        """Impute the dropouts of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts on the genes seen in ``fit``.

        Returns
        -------
        X_imputed : {ndarray, sparse matrix} of shape (n_cells, n_genes)
            Imputed counts, never negative: CSR for sparse input when the
            method leaves most zeros in place (DeepImpute), dense otherwise.
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False, counts=True, dtype=np.float64)
        return check_finite_output(
            self._transform(X), whom=type(self).__name__, what="imputation"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="imputation", counts=True)
