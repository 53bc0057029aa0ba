"""Common base of the graph builders."""

from abc import ABCMeta, abstractmethod

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skdance.utils import SkdanceTags, resolve_side_info, validate_input

__all__ = ["BaseGraphBuilder"]


class BaseGraphBuilder(TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Graph builders: ``fit`` records the input, ``transform`` builds a graph.

    ``transform(X)`` returns a ``scipy.sparse`` adjacency over the rows of
    ``X`` (or over genes/cells as the subclass documents), so a model calls
    ``clone(self.graph).fit_transform(X)`` on its training cells.  The graph
    is not a per-sample feature map: subsetting the cells changes the graph.

    One input protocol for every builder: ``X`` is always the expression of
    the cells (spots); spatial builders (``RadiusGraph``,
    ``SpatialGaussianGraph``) take the coordinates as side information,
    ``fit_transform(X, coords=...)`` or an AnnData ``X`` holding them in
    ``obsm[spatial_key]``, requested for metadata routing by default.

    The adjacency is sparse and its columns are cells (or genes), not
    features, so a builder has no ``get_feature_names_out`` and no
    DataFrame output: ``set_output(transform="pandas")`` (or ``"polars"``)
    raises a ``ValueError``, and a global ``transform_output="pandas"``
    configuration leaves the adjacency sparse.
    """

    @abstractmethod
    def _build(self, X, coords=None):
        """Return the sparse adjacency of validated ``X`` (spatial: of coords)."""

    _counts = False
    # spatial builders set this: their graph comes from ``coords``, given as
    # side information (keyword or ``adata.obsm[spatial_key]``), not from X
    _requires_coords = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_requires_coords", False):
            # requested by default, so routed Pipelines pass coords along
            for method in ("fit", "transform"):
                setattr(cls, f"__metadata_request__{method}", {"coords": True})

    def _coords(self, X, coords, *, required=True):
        if not self._requires_coords:
            if coords is not None:
                raise ValueError(
                    f"{type(self).__name__} builds its graph from X; it takes no "
                    "coords."
                )
            return None
        return resolve_side_info(
            X,
            coords,
            name="coords",
            key=self.spatial_key,
            required=required,
            whom=type(self).__name__,
        )

    def fit(self, X, y=None, coords=None):
        """Validate ``X`` and record its number (and names) of features.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Expression of the cells (spots).
        y : None
            Ignored.
        coords : array-like of shape (n_samples, n_dims), default=None
            Spatial coordinates, for the spatial builders only: checked when
            given; ``fit`` learns only the gene set, the graph is built in
            ``transform``.

        Returns
        -------
        self : object
            Fitted builder.
        """
        self._validate_params()
        validate_input(self, X, reset=True, counts=self._counts)
        self._coords(X, coords, required=False)  # checked when given
        return self

    def transform(self, X, coords=None):
        """Build the adjacency matrix of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Expression of the cells (spots).
        coords : array-like of shape (n_samples, n_dims), default=None
            Spatial coordinates; required by the spatial builders unless
            ``X`` is an AnnData with ``obsm[spatial_key]``.

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix
            Weighted adjacency (see the class docstring for its shape).
        """
        check_is_fitted(self)
        # the expression first: bad X gets its own error even without coords
        Xv = validate_input(self, X, reset=False, counts=self._counts)
        coords = self._coords(X, coords)
        X = Xv
        graph = self._build(X) if coords is None else self._build(X, coords)
        return graph.tocsr()

    def fit_transform(self, X, y=None, coords=None):
        """Fit to ``X`` and return its adjacency matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Expression of the cells (spots).
        y : None
            Ignored.
        coords : array-like of shape (n_samples, n_dims), default=None
            Spatial coordinates (spatial builders only).

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix
            Weighted adjacency.
        """
        return self.fit(X, coords=coords).transform(X, coords=coords)

    def set_output(self, *, transform=None):
        """Keep the default output: an adjacency has no DataFrame form.

        Parameters
        ----------
        transform : {"default", None}, default=None
            ``"default"`` or None (no change) only.

        Returns
        -------
        self : estimator instance
            The builder, unchanged.

        Raises
        ------
        ValueError
            For ``"pandas"``, ``"polars"`` or any other container.
        """
        if transform not in (None, "default"):
            raise ValueError(
                f"{type(self).__name__} returns a sparse adjacency over the "
                "cells (or genes), whose columns are not features, so it has "
                f"no DataFrame output: set_output(transform={transform!r}) is "
                "not supported. Keep the default output (or convert the "
                "adjacency yourself, e.g. pandas.DataFrame.sparse.from_spmatrix)."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self._counts
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(
            task="graph",
            counts=self._counts,
            output="cell_adjacency",
            requires_coords="transform" if self._requires_coords else None,
        )
