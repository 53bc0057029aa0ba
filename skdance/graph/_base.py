"""Common base of the graph builders."""

from abc import ABCMeta, abstractmethod

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdance.utils._validation import validate_input

__all__ = ["BaseGraphBuilder"]


class BaseGraphBuilder(TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Graph builders: ``fit`` records the input, ``transform`` builds a graph.

    ``transform(X)`` returns a ``scipy.sparse`` adjacency over the rows of
    ``X`` (or over genes/cells as the subclass documents), so a model calls
    ``clone(self.graph).fit_transform(X)`` on its training cells.  The graph
    is not a per-sample feature map: subsetting the cells changes the graph.
    """

    @abstractmethod
    def _build(self, X):
        """Return the sparse adjacency of validated ``X``."""

    _counts = False

    def fit(self, X, y=None):
        """Validate ``X`` and record its number (and names) of features.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Input data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted builder.
        """
        self._validate_params()
        validate_input(self, X, reset=True, counts=self._counts)
        return self

    def transform(self, X):
        """Build the adjacency matrix of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix
            Weighted adjacency (see the class docstring for its shape).
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False, counts=self._counts)
        return self._build(X).tocsr()

    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return its adjacency matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Input data.
        y : None
            Ignored.

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix
            Weighted adjacency.
        """
        return self.fit(X).transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self._counts
        return tags
