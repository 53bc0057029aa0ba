"""Contract of the spatial-domain estimators.

A spatial-domain model clusters the spots of one tissue section into
domains from expression *and* position: ``fit(X, coords=...)`` (or an
AnnData with ``obsm[spatial_key]``) sets ``labels_``; ``fit_predict``
returns them; models with a latent space also set ``embedding_`` and
``transform``.  The coordinates are side information with one row per
spot, declared for metadata routing (requested by default), so that
``Pipeline`` and ``GridSearchCV`` slice them with the spots.  The models
with ``transform`` name the embedding's columns (``get_feature_names_out``)
and take ``set_output(transform="pandas")``.
"""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import TransformerTags
from sklearn.utils._available_if import available_if
from sklearn.utils._set_output import _SetOutputMixin
from sklearn.utils.validation import _generate_get_feature_names_out, check_is_fitted

from skdance.utils import (
    SkdanceTags,
    check_n_clusters,
    resolve_side_info,
    validate_input,
)

__all__ = ["BaseSpatialDomain", "check_distinct_positions"]


def check_distinct_positions(coords, whom):
    """Raise a ValueError when every spot sits at the same position.

    A spatial-domain model needs spots at distinct places: with a single
    position there is no spot spacing, no spatial neighbourhood and no
    length scale to measure them in.

    Parameters
    ----------
    coords : ndarray of shape (n_spots, n_dims)
        Validated spot positions.
    whom : str
        Estimator name, at the start of the message.

    Raises
    ------
    ValueError
        When all the rows of ``coords`` are identical.
    """
    if coords.shape[0] > 1 and (coords == coords[0]).all():
        raise ValueError(
            f"{whom}: all {coords.shape[0]} spots share one position (every row "
            f"of coords is {coords[0].tolist()}); spatial domains need the spots' "
            "distinct positions. Check that coords holds the spot coordinates."
        )


def _has_transform(estimator):
    return hasattr(estimator, "transform")


# auto_wrap_output_keys=None: the base wraps nothing itself (wrapping would
# make the optional fit_transform always present); each subclass with a
# ``transform`` gets it wrapped for set_output, and fit_transform returns it
class BaseSpatialDomain(
    ClusterMixin,
    _SetOutputMixin,
    BaseEstimator,
    metaclass=ABCMeta,
    auto_wrap_output_keys=None,
):
    """Base of the spatial-domain clusterers: counts plus spot coordinates.

    Subclasses set ``spatial_key`` and ``n_clusters`` in ``__init__`` and
    implement ``_fit(X, coords)``, which must set ``labels_`` (one domain
    per spot, integers ``0..n_clusters-1``).  ``X`` reaches ``_fit``
    validated (non-negative, finite, CSR or ndarray); ``coords`` is a new
    float array of shape (n_spots, n_dims), its spots not all at one
    position (a ValueError in ``fit`` and ``transform`` otherwise).

    A subclass with a latent space sets ``embedding_`` in ``_fit`` and
    defines ``transform``, which returns an embedding as wide as
    ``embedding_``; it then has ``get_feature_names_out`` and
    ``set_output`` too.
    """

    __metadata_request__fit = {"coords": True}

    @abstractmethod
    def _fit(self, X, coords):
        """Cluster validated counts ``X`` with spot positions ``coords``."""

    def _resolve(self, X, coords, *, reset):
        # the expression first: bad X gets its own error even without coords
        Xv = validate_input(self, X, reset=reset, counts=True, ensure_min_samples=2)
        coords = resolve_side_info(
            X,
            coords,
            name="coords",
            key=self.spatial_key,
            slot="obsm",
            whom=type(self).__name__,
        )
        if coords.shape[0] != Xv.shape[0]:  # pragma: no cover - checked above
            raise ValueError("coords and X disagree on the number of spots.")
        check_distinct_positions(coords, type(self).__name__)
        return Xv, coords

    def fit(self, X, y=None, coords=None):
        """Find the spatial domains of the spots.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Raw counts of the spots.
        y : None
            Ignored.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spot positions.  Required unless ``X`` is an AnnData holding
            them in ``obsm[spatial_key]``.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        Xv, coords = self._resolve(X, coords, reset=True)
        check_n_clusters(self, Xv.shape[0])
        self._fit(Xv, coords)
        self.labels_ = np.asarray(self.labels_)
        return self

    def fit_predict(self, X, y=None, coords=None):
        """Fit and return the domain of each spot.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Raw counts of the spots.
        y : None
            Ignored.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spot positions (see ``fit``).

        Returns
        -------
        labels : ndarray of shape (n_spots,)
            Domain of each spot.
        """
        return self.fit(X, coords=coords).labels_

    @available_if(_has_transform)
    def fit_transform(self, X, y=None, coords=None):
        """Fit and return the spots' embedding (models with one).

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Raw counts of the spots.
        y : None
            Ignored.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spot positions (see ``fit``).

        Returns
        -------
        embedding : ndarray of shape (n_spots, n_components)
            ``transform`` of the training spots.
        """
        return self.fit(X, coords=coords).transform(X, coords=coords)

    @available_if(_has_transform)
    def get_feature_names_out(self, input_features=None):
        """Names of the embedding's columns (models with one).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the genes seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``<class name in lower case>0``, ``...1``, ..., one per column of
            ``transform``'s embedding; ``set_output(transform="pandas")``
            names the DataFrame's columns with them.
        """
        check_is_fitted(self, "embedding_")
        return _generate_get_feature_names_out(
            self, self.embedding_.shape[1], input_features=input_features
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        if hasattr(self, "transform"):  # models with an embedding
            tags.transformer_tags = TransformerTags()
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="spatial_domain", counts=True, requires_coords="fit")
