"""Contract of the joint-embedding estimators.

A joint embedding is a transformer of paired cells: ``X`` is the two
modalities side by side (``[mod1 | mod2]`` column blocks, the first
``n_features_mod1`` columns being mod1), a pair ``(mod1, mod2)`` of
matrices / AnnData objects with the same cells, or a MuData whose two
modalities ``mudata_mods`` names; ``transform`` returns the joint
embedding.  ``y`` (cell types) is used only by methods that say so.
"""

from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from skdance.multimodal._paired import as_pair, validate_paired
from skdance.utils import (
    SkdanceTags,
    check_finite_output,
    validate_input,
)

__all__ = ["BaseJointEmbedding"]


def _is_pair(X):
    """Tell whether X is a pair ``(mod1, mod2)`` of matrices, not two rows."""
    if not isinstance(X, tuple | list) or len(X) != 2:
        return False
    return all(len(getattr(part, "shape", ())) == 2 for part in X)


class BaseJointEmbedding(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base of the joint embeddings: split the modalities, embed the cells.

    Subclasses have an ``n_features_mod1`` parameter and implement
    ``_fit(X1, X2, y)`` and ``_transform(X1, X2)`` on validated blocks.

    The embedding's columns are named ``<class name in lower case>0``,
    ``...1``, ... (``get_feature_names_out``), so that
    ``set_output(transform="pandas")`` returns DataFrames, indexed as a
    DataFrame ``X`` is.  ``fit`` (a subclass's own too) ends with
    ``_set_n_features_out``, which takes the embedding's width from the
    embedding of the first training cells (a cell's embedding does not
    depend on the cells embedded with it).
    """

    @abstractmethod
    def _fit(self, X1, X2, y):
        """Learn the joint embedding of paired blocks (``y`` may be None)."""

    @abstractmethod
    def _transform(self, X1, X2):
        """Return the (n_cells, n_components) embedding of paired blocks."""

    def _set_n_features_out(self, X1, X2):
        """Record the embedding's width; every ``fit`` ends with it.

        The width of the first training cells' embedding names the output
        columns (``get_feature_names_out``) for ``set_output``.
        """
        self._n_features_out = np.asarray(self._transform(X1[:2], X2[:2])).shape[1]

    def _split(self, X, *, reset):
        whom = type(self).__name__
        X = as_pair(self, X)  # a MuData's two modalities
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
        X : {array-like, sparse matrix} of shape (n_cells, n_features), pair \
or MuData
            ``[mod1 | mod2]`` column blocks (the first ``n_features_mod1``
            columns are mod1), a pair ``(mod1, mod2)`` with the same cells,
            or a MuData (``mudata_mods`` names its two modalities).
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
        self._set_n_features_out(X1, X2)
        return self

    def transform(self, X):
        """Joint embedding of paired cells.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_cells, n_features), pair \
or MuData
            The same layout as in ``fit``, on the features (and, where named,
            in the feature order) seen in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_cells, n_components)
            Embedding.
        """
        check_is_fitted(self)
        X1, X2 = self._split(X, reset=False)
        Z = np.asarray(self._transform(X1, X2))
        return check_finite_output(Z, whom=type(self).__name__, what="embedding")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="joint_embedding")
