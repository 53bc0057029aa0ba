"""Contract of the joint-embedding estimators (DESIGN section 2).

A joint embedding is a transformer of paired cells: ``X`` is either the two
modalities side by side (``[mod1 | mod2]`` column blocks, the first
``n_features_mod1`` columns being mod1) or a pair ``(mod1, mod2)`` of
matrices / AnnData objects with the same cells; ``transform`` returns the
joint embedding.  ``y`` (cell types) is used only by methods that say so.
"""

from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdance.multimodal._paired import validate_paired
from skdance.utils._tags import SkdanceTags
from skdance.utils._validation import validate_input

__all__ = ["BaseJointEmbedding"]


def _is_pair(X):
    """Tell whether X is a pair ``(mod1, mod2)`` of matrices, not two rows."""
    if not isinstance(X, tuple | list) or len(X) != 2:
        return False
    return all(len(getattr(part, "shape", ())) == 2 for part in X)


class BaseJointEmbedding(TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Base of the joint embeddings: split the modalities, embed the cells.

    Subclasses have an ``n_features_mod1`` parameter and implement
    ``_fit(X1, X2, y)`` and ``_transform(X1, X2)`` on validated blocks.
    """

    @abstractmethod
    def _fit(self, X1, X2, y):
        """Learn the joint embedding of paired blocks (``y`` may be None)."""

    @abstractmethod
    def _transform(self, X1, X2):
        """Return the (n_cells, n_components) embedding of paired blocks."""

    def _split(self, X, *, reset):
        whom = type(self).__name__
        if _is_pair(X):
            X1, X2 = validate_paired(self, X[0], X[1], reset=reset)
            if reset:
                self._input_pair = True
            return X1, X2
        if isinstance(X, tuple):
            raise ValueError(
                f"{whom} takes X as [mod1 | mod2] column blocks or a pair "
                f"(mod1, mod2); got a tuple of {len(X)} items."
            )
        Xv = validate_input(self, X, reset=reset)
        k = self.n_features_mod1
        if k is None or not isinstance(k, Integral) or not 0 < k < Xv.shape[1]:
            raise ValueError(
                f"{whom}: n_features_mod1={k!r} must split the "
                f"n_features={Xv.shape[1]} columns of X into two non-empty "
                "blocks [mod1 | mod2] (or pass X as a pair (mod1, mod2))."
            )
        if reset:
            self._input_pair = False
            self.n_features_mod2_ = Xv.shape[1] - k
        Xc = Xv.tocsc() if sp.issparse(Xv) else Xv
        X1, X2 = Xc[:, :k], Xc[:, k:]
        if sp.issparse(Xv):
            X1, X2 = X1.tocsr(), X2.tocsr()
        return X1, X2

    def fit(self, X, y=None):
        """Learn the joint embedding of paired cells.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_cells, n_features) or pair
            ``[mod1 | mod2]`` column blocks (the first ``n_features_mod1``
            columns are mod1), or a pair ``(mod1, mod2)`` with the same cells.
        y : array-like of shape (n_cells,), default=None
            Cell types, for the methods that use them.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        X1, X2 = self._split(X, reset=True)
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != X1.shape[0]:
                raise ValueError(f"y has {y.shape[0]} labels for {X1.shape[0]} cells.")
        self._fit(X1, X2, y)
        return self

    def transform(self, X):
        """Joint embedding of paired cells.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_cells, n_features) or pair
            The same layout as in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_cells, n_components)
            Embedding.
        """
        check_is_fitted(self)
        X1, X2 = self._split(X, reset=False)
        return np.asarray(self._transform(X1, X2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="joint_embedding")
