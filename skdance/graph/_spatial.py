"""Spatial graphs between spots: radius graph and SpaGCN's Gaussian kernel."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from sklearn.neighbors import radius_neighbors_graph
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph._base import BaseGraphBuilder

__all__ = ["RadiusGraph", "SpatialGaussianGraph"]


class RadiusGraph(BaseGraphBuilder):
    """Link spots closer than ``radius`` in space.

    ``X`` is the spots' expression (only its rows are used); the graph is
    built from ``coords``, passed as side information
    (``fit_transform(X, coords=...)``) or read from an AnnData's
    ``obsm[spatial_key]``.

    Parameters
    ----------
    radius : float, default=150.0
        Distance threshold in the units of the coordinates.
    mode : {"connectivity", "distance"}, default="connectivity"
        Edge weights: 1 or the distance.
    spatial_key : str, default="spatial"
        ``obsm`` key of the coordinates when ``X`` is an AnnData.

    Attributes
    ----------
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import RadiusGraph
    >>> X = np.ones((3, 4))
    >>> coords = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> RadiusGraph(radius=2.0).fit_transform(X, coords=coords).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """

    _parameter_constraints = {
        "radius": [Interval(Real, 0, None, closed="neither")],
        "mode": [StrOptions({"connectivity", "distance"})],
        "spatial_key": [str],
    }
    _requires_coords = True

    def __init__(self, *, radius=150.0, mode="connectivity", spatial_key="spatial"):
        self.radius = radius
        self.mode = mode
        self.spatial_key = spatial_key

    def _build(self, X, coords):
        A = radius_neighbors_graph(
            coords, self.radius, mode=self.mode, include_self=False
        )
        A.eliminate_zeros()
        return A


def _mean_neighbour_weight(dist2, length_scale):
    return np.mean(np.exp(-dist2 / (2 * length_scale**2)).sum(axis=1)) - 1.0


class SpatialGaussianGraph(BaseGraphBuilder):
    """SpaGCN's dense Gaussian-kernel spot graph.

    ``A_ij = exp(-d_ij^2 / (2 l^2))`` over all pairs of spots, self loops
    included (weight 1), as in SpaGCN (Hu et al. 2021).  ``X`` is the spots'
    expression (only its rows are used); the kernel is computed on
    ``coords`` (side information, or an AnnData's ``obsm[spatial_key]``).
    SpaGCN's histology-aware version passes a third coordinate column
    (scaled colour intensity), treated as another coordinate.  When
    ``length_scale`` is None, ``l`` is found by bisection so that the mean
    total weight a spot receives from the others equals ``p`` (SpaGCN's
    ``search_l``).

    Parameters
    ----------
    length_scale : float or None, default=None
        Kernel width ``l``; None to search it from ``p``.
    p : float, default=0.5
        Target mean neighbour weight per spot for the search.
    min_weight : float, default=0.0
        Drop weights below this value to make the graph sparser (SpaGCN keeps
        them all).
    search_steps : int, default=100
        Bisection steps of the search.
    spatial_key : str, default="spatial"
        ``obsm`` key of the coordinates when ``X`` is an AnnData.

    Attributes
    ----------
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import SpatialGaussianGraph
    >>> X = np.ones((2, 3))
    >>> coords = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> SpatialGaussianGraph(length_scale=1.0).fit_transform(X, coords=coords).toarray()
    array([[1.        , 0.60653066],
           [0.60653066, 1.        ]])
    """

    _parameter_constraints = {
        "length_scale": [Interval(Real, 0, None, closed="neither"), None],
        "p": [Interval(Real, 0, None, closed="neither")],
        "min_weight": [Interval(Real, 0, 1, closed="left")],
        "search_steps": [Interval(Integral, 1, None, closed="left")],
        "spatial_key": [str],
    }
    _requires_coords = True

    def __init__(
        self,
        *,
        length_scale=None,
        p=0.5,
        min_weight=0.0,
        search_steps=100,
        spatial_key="spatial",
    ):
        self.length_scale = length_scale
        self.p = p
        self.min_weight = min_weight
        self.search_steps = search_steps
        self.spatial_key = spatial_key

    def _search_length_scale(self, dist2):
        positive = dist2[dist2 > 0]
        if positive.size == 0:
            raise ValueError("All spots share one position; no length scale fits.")
        lo, hi = np.sqrt(positive.min()) * 1e-3, np.sqrt(positive.max()) * 10
        if _mean_neighbour_weight(dist2, hi) < self.p:
            raise ValueError(
                f"p={self.p} is unreachable: even a very wide kernel gives less "
                "mean neighbour weight. Lower p or pass length_scale."
            )
        for _ in range(self.search_steps):
            mid = 0.5 * (lo + hi)
            if _mean_neighbour_weight(dist2, mid) < self.p:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def _build(self, X, coords):
        dist2 = cdist(coords, coords, "sqeuclidean")
        length = self.length_scale or self._search_length_scale(dist2)
        W = np.exp(-dist2 / (2 * length**2))
        if self.min_weight > 0:
            W[W < self.min_weight] = 0.0
        return sp.csr_matrix(W)
