"""Contract of the modality-matching estimators.

A matcher learns on paired cells (``fit(X_mod1, Y_mod2)``, row i of ``X``
paired with row i of ``Y``) and then, for new cells measured separately in
each modality, returns ``match(X, Y)``: an (n_x, n_y) non-negative
row-stochastic matrix whose row i says how likely each cell of ``Y`` is the
partner of cell i of ``X`` (sparse where the method sparsifies it).
``score(X, Y)`` is the mean probability on the true pairs, the NeurIPS 2021
metric; ``n`` times it is the fold over random guessing.
"""

from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skdance.metrics import matching_score
from skdance.multimodal._paired import (
    paired_inputs,
    validate_paired,
    validate_second_modality,
)
from skdance.utils import SkdanceTags, validate_input

__all__ = ["BaseModalityMatcher", "nearest_partners"]


def nearest_partners(Z_x, Z_y, n_partners, distance):
    """Equal scores on each cell's ``n_partners`` nearest cells of the other side.

    The latent-space matching of CMAE and scMM (DANCE: nearest neighbour in
    the shared latent space), one row per cell of ``Z_x``.

    Parameters
    ----------
    Z_x : ndarray of shape (n_x, n_dims)
        Embeddings of the first modality's cells.
    Z_y : ndarray of shape (n_y, n_dims)
        Embeddings of the second modality's cells.
    n_partners : int
        Partners kept per row (at most ``n_y``).
    distance : str
        A :class:`~sklearn.neighbors.NearestNeighbors` metric.

    Returns
    -------
    S : scipy.sparse.csr_matrix of shape (n_x, n_y)
        ``1 / k`` on each row's ``k`` nearest partners, 0 elsewhere.
    """
    from sklearn.neighbors import NearestNeighbors

    k = min(n_partners, Z_y.shape[0])
    index = NearestNeighbors(n_neighbors=k, metric=distance).fit(Z_y)
    cols = index.kneighbors(Z_x, return_distance=False)
    rows = np.repeat(np.arange(Z_x.shape[0]), k)
    return sp.csr_matrix(
        (np.full(rows.size, 1.0 / k), (rows, cols.ravel())),
        shape=(Z_x.shape[0], Z_y.shape[0]),
    )


class BaseModalityMatcher(BaseEstimator, metaclass=ABCMeta):
    """Base of the modality matchers: paired fit, row-stochastic ``match``.

    Subclasses implement ``_fit(X, Y)`` on validated paired matrices and
    ``_match(X, Y)`` returning non-negative (n_x, n_y) scores; the base
    normalises each row to sum to 1 (a row of zeros becomes uniform).
    """

    @abstractmethod
    def _fit(self, X, Y):
        """Learn from paired cells: row i of ``X`` with row i of ``Y``."""

    @abstractmethod
    def _match(self, X, Y):
        """Return non-negative (n_x, n_y) match scores (dense or sparse)."""

    def fit(self, X, Y=None):
        """Learn the correspondence between the modalities on paired cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_cells, n_features_mod1)
            First modality, or a MuData holding both (``mudata_mods``
            chooses which two; ``Y`` is then left out).
        Y : {array-like, sparse matrix, AnnData} of shape \
(n_cells, n_features_mod2), default=None
            Second modality of the same cells, in the same row order.

        Returns
        -------
        self : object
            Fitted matcher.
        """
        self._validate_params()
        X, Y = validate_paired(self, X, Y, reset=True, ensure_min_samples=2)
        self._fit(X, Y)
        return self

    def match(self, X, Y=None):
        """Probability that each cell of ``Y`` is the partner of each cell of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_x, n_features_mod1)
            First modality of new cells, or a MuData holding both.
        Y : {array-like, sparse matrix, AnnData} of shape \
(n_y, n_features_mod2), default=None
            Second modality of new cells, in any order, on the features
            (and, where named, in the feature order) seen in ``fit``.

        Returns
        -------
        S : ndarray or sparse matrix of shape (n_x, n_y)
            Non-negative; every row sums to 1.
        """
        check_is_fitted(self)
        X, Y = paired_inputs(self, X, Y)
        X = validate_input(self, X, reset=False)
        if Y is None:
            raise ValueError(
                f"{type(self).__name__}.match needs the second modality Y (or "
                "a MuData holding both as X)."
            )
        n_y = Y.shape[0] if hasattr(Y, "shape") else len(Y)
        Y = validate_second_modality(self, Y, n_y, reset=False)
        S = self._match(X, Y)
        if sp.issparse(S):
            S = sp.csr_matrix(S, dtype=np.float64)
            if S.nnz and S.data.min() < 0:
                raise RuntimeError("match scores must be non-negative.")
            rows = np.asarray(S.sum(axis=1)).ravel()
            empty = rows == 0
            S = sp.diags(np.where(empty, 1.0, 1.0 / np.where(empty, 1, rows))) @ S
            if empty.any():
                fill = sp.csr_matrix(
                    np.outer(empty, np.full(S.shape[1], 1 / S.shape[1]))
                )
                S = S + fill
            return sp.csr_matrix(S)
        S = np.array(S, dtype=np.float64)
        if S.min() < 0:
            raise RuntimeError("match scores must be non-negative.")
        rows = S.sum(axis=1, keepdims=True)
        S = np.divide(S, rows, out=np.full_like(S, 1 / S.shape[1]), where=rows > 0)
        return S

    def score(self, X, y=None):
        """Mean probability ``match`` gives to the true pairs.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_cells, n_features_mod1)
            First modality, or a MuData holding both.
        y : {array-like, sparse matrix, AnnData} of shape \
(n_cells, n_features_mod2), default=None
            Second modality, row i paired with row i of ``X`` (named ``y``
            as scikit-learn's scorers pass it).

        Returns
        -------
        score : float
            In [0, 1]; ``1 / n_cells`` for random guessing.

        Raises
        ------
        ValueError
            If ``X`` and ``y`` hold different numbers of cells (``match``
            itself accepts any two sets of cells; the score needs pairs).
        """
        check_is_fitted(self)
        X, y = paired_inputs(self, X, y)
        if y is None:
            raise ValueError(
                f"{type(self).__name__}.score needs the second modality y (or "
                "a MuData holding both as X)."
            )
        n_x, n_y = (a.shape[0] if hasattr(a, "shape") else len(a) for a in (X, y))
        if n_x != n_y:
            raise ValueError(
                f"{type(self).__name__}.score needs paired cells (row i of X "
                f"with row i of y), so X and y must hold the same number of "
                f"cells; got {n_x} and {n_y}. Use match() to score unpaired "
                "sets of different sizes."
            )
        return matching_score(self.match(X, y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="modality_matching")
