"""Shared plumbing of the cell-type deconvolution estimators."""

import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from skdance.metrics import proportion_mse
from skdance.utils import (
    SkdanceTags,
    check_counts,
    check_finite_output,
    is_anndata,
    reject_mudata,
    resolve_side_info,
    unwrap_anndata,
    validate_input,
)

__all__ = ["BaseDeconvolution", "cell_type_profiles"]


def cell_type_profiles(X, y_idx, n_types, statistic="median"):
    """Per-type median (or mean) expression, ``(n_types, n_genes)``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        Expression of the reference cells.
    y_idx : ndarray of shape (n_cells,)
        Type index of every cell, ``0 .. n_types - 1``.
    n_types : int
        Number of types.
    statistic : {"median", "mean"}, default="median"
        Per-type summary.

    Returns
    -------
    profiles : ndarray of shape (n_types, n_genes)
    """
    profiles = np.zeros((n_types, X.shape[1]))
    for k in range(n_types):
        block = X[y_idx == k]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        profiles[k] = (
            np.median(block, axis=0) if statistic == "median" else block.mean(axis=0)
        )
    return profiles


def _feature_names(X):
    if is_anndata(X):
        return np.asarray(X.var_names, dtype=object)
    columns = getattr(X, "columns", None)
    if columns is not None and all(isinstance(c, str) for c in columns):
        return np.asarray(columns, dtype=object)
    return None


class BaseDeconvolution(BaseEstimator, metaclass=ABCMeta):
    """Validation, classes and gene alignment for deconvolution estimators.

    ``fit(X_ref, y_ref)`` validates a labelled count reference and calls
    ``_fit(X, y_idx)``; ``predict(X_spots, coords=None)`` aligns the spots'
    genes to the reference (by name when both carry gene names, keeping the
    shared genes) and calls ``_predict(X, genes, coords)`` where ``genes``
    indexes the fitted genes present in ``X``'s columns.

    Subclasses that need coordinates set ``_requires_coords = True`` and
    have a ``spatial_key`` parameter: the coordinates then reach
    ``_predict`` as side information, ``predict(X, coords=...)`` or an
    AnnData ``X`` holding them in ``obsm[spatial_key]``
    (:func:`~skdance.utils._side_info.resolve_side_info`), requested for
    metadata routing by default in ``predict`` and ``score``.
    """

    @abstractmethod
    def _fit(self, X, y_idx):
        """Learn signatures from validated counts and integer labels."""

    @abstractmethod
    def _predict(self, X, genes, coords):
        """Proportions of validated spots; ``genes`` indexes fitted genes."""

    _requires_coords = False
    # below this fraction of the reference genes in the spots, predict raises
    _min_gene_overlap = 0.5

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_requires_coords", False):
            # requested by default, so routed Pipelines pass coords along
            for method in ("predict", "score"):
                setattr(cls, f"__metadata_request__{method}", {"coords": True})

    def fit(self, X, y):
        """Learn the cell-type signatures from a labelled reference.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Reference single-cell counts.
        y : array-like of shape (n_cells,)
            Cell-type labels of the reference cells.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        X, y = validate_input(
            self,
            X,
            y,
            reset=True,
            counts=True,
            accept_sparse="csr",
            dtype=np.float64,
            ensure_min_samples=2,
        )
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 cell types in y; got "
                f"{self.classes_.size}."
            )
        self._fit(X, y_idx)
        return self

    def _aligned(self, X):
        """Return the validated spots on the fitted genes they contain."""
        reject_mudata(X, type(self).__name__)
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        if (
            fitted is None
            or names is None
            or (names.size == fitted.size and np.all(names == fitted))
        ):
            X = validate_input(
                self, X, reset=False, counts=True, accept_sparse="csr", dtype=np.float64
            )
            return X, np.arange(self.n_features_in_)
        position = {g: i for i, g in enumerate(fitted)}
        columns = np.array(
            [j for j, g in enumerate(names) if g in position], dtype=np.intp
        )
        whom = type(self).__name__
        overlap = columns.size / fitted.size
        if overlap < self._min_gene_overlap:
            raise ValueError(
                f"{whom}: the spots hold {columns.size} of the {fitted.size} "
                f"reference genes ({overlap:.0%}), below the minimum overlap of "
                f"{self._min_gene_overlap:.0%} (spot genes e.g. {list(names[:3])}, "
                f"reference genes e.g. {list(fitted[:3])}). Fit the reference on "
                "the genes the spots measure."
            )
        if columns.size < fitted.size:
            warnings.warn(
                f"{whom}: {fitted.size - columns.size} of the {fitted.size} "
                f"reference genes are not in the spots ({overlap:.1%} overlap); "
                f"predicting on the {columns.size} shared genes "
                "(see shared_genes(X)).",
                UserWarning,
                stacklevel=3,
            )
        matrix = unwrap_anndata(X, None)[0] if is_anndata(X) else X
        matrix = check_array(matrix, accept_sparse="csr", dtype=np.float64)
        check_counts(matrix, whom=type(self).__name__)
        genes = np.array([position[names[j]] for j in columns], dtype=np.intp)
        order = np.argsort(genes)
        return matrix[:, columns[order]], genes[order]

    def shared_genes(self, X):
        """Names of the fitted reference genes that ``predict(X)`` uses.

        ``predict`` aligns the spots to the reference by gene name (the two
        rarely share one gene list): the reference genes the spots also
        measure are used, in the reference's order; spots whose columns
        are the reference's genes (or unnamed) use all of them.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData} of shape (n_spots, n_genes)
            Spots, as passed to ``predict``.

        Returns
        -------
        genes : ndarray
            Gene names (or column indices when the reference had no names).
        """
        check_is_fitted(self)
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        if fitted is None:
            return np.arange(self.n_features_in_)
        if names is None:
            return fitted.copy()
        present = set(names)
        return np.array([g for g in fitted if g in present], dtype=object)

    def _coords(self, X, coords, n_spots):
        """Spot coordinates from the keyword or ``X.obsm[spatial_key]``."""
        return resolve_side_info(
            X,
            coords,
            name="coords",
            key=getattr(self, "spatial_key", None),
            n_samples=n_spots,
            required=self._requires_coords,
            whom=type(self).__name__,
        )

    def predict(self, X, coords=None):
        """Estimate the cell-type proportions of every spot.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData} of shape \
(n_spots, n_genes)
            Spot counts.  With gene names on both the reference and the spots
            the shared genes are used, in any order; otherwise the columns
            must be the reference's genes.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spatial coordinates of the spots: required by spatial models
            unless ``X`` is an AnnData holding them in ``obsm[spatial_key]``.

        Returns
        -------
        proportions : ndarray of shape (n_spots, n_types)
            Rows on the simplex, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        spots = X
        X, genes = self._aligned(X)
        coords = self._coords(spots, coords, X.shape[0])
        P = np.asarray(self._predict(X, genes, coords), dtype=np.float64)
        check_finite_output(P, whom=type(self).__name__, what="proportions")
        P = np.clip(P, 0.0, None)
        totals = P.sum(axis=1, keepdims=True)
        uniform = np.full(P.shape[1], 1.0 / P.shape[1])
        return np.where(totals > 0, P / np.where(totals > 0, totals, 1.0), uniform)

    def score(self, X, y, coords=None):
        """Negative mean squared error of the predicted proportions.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Spot counts.
        y : array-like of shape (n_spots, n_types) or (n_spots,)
            True proportions, columns in the order of ``classes_``; a 1-D
            ``y`` holds cell-type labels of single-cell "spots", scored
            against one-hot proportions.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spatial coordinates of the spots (see ``predict``).

        Returns
        -------
        score : float
            ``-mean((P_pred - y) ** 2)`` (higher is better).
        """
        P = self.predict(X, coords=coords)
        y = np.asarray(y)
        if y.ndim == 1:
            unknown = ~np.isin(y, self.classes_)
            if unknown.any():
                raise ValueError(
                    f"y has labels not seen in fit: {np.unique(y[unknown])[:5]}."
                )
            y = (y[:, None] == self.classes_[None, :]).astype(np.float64)
        y = check_array(y, dtype=np.float64)
        if y.shape != P.shape:
            raise ValueError(
                f"y must be the (n_spots, n_types) true proportions {P.shape}, got "
                f"{y.shape}."
            )
        return -proportion_mse(y, P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.target_tags.required = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(
            task="deconvolution",
            counts=True,
            output="proportions",
            requires_coords="predict" if self._requires_coords else None,
        )
