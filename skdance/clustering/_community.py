"""Shared engine of graph community clustering (Leiden, Louvain)."""

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import HasMethods, Interval

from skdance.graph import KNNGraph, fit_graph, to_igraph
from skdance.utils import SkdanceTags, check_random_state_int, validate_input

__all__ = ["BaseCommunityClustering"]


class BaseCommunityClustering(ClusterMixin, BaseEstimator, metaclass=ABCMeta):
    """Modularity (RB configuration) optimisation on a cell graph.

    Subclasses implement :meth:`partition`, which other models use to
    cluster a graph of their own (SpaGCN's initial clusters).
    """

    @abstractmethod
    def partition(self, igraph_graph, resolution, seed):
        """Return integer labels of the graph's vertices.

        Parameters
        ----------
        igraph_graph : igraph.Graph
            A weighted graph (see :func:`skdance.graph.to_igraph`).
        resolution : float
            Resolution of the modularity.
        seed : int
            Seed of the optimisation.

        Returns
        -------
        labels : ndarray of shape (n_vertices,)
        """

    def _partition_passes(self, igraph_graph, resolution, seed):
        """Return ``partition``'s labels and the optimisation passes run.

        The passes are None for an algorithm that does not count them.
        """
        return self.partition(igraph_graph, resolution, seed), None

    _parameter_constraints = {
        "graph": [HasMethods(["fit_transform"]), None],
        "resolution": [Interval(Real, 0, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        graph=None,
        resolution=1.0,
        n_clusters=None,
        random_state=0,
    ):
        self.graph = graph
        self.resolution = resolution
        self.n_clusters = n_clusters
        self.random_state = random_state

    def _search_resolution(self, igraph_graph, seed):
        """Bisect the resolution until the partition has ``n_clusters`` groups."""
        target = self.n_clusters
        tried = {}

        def run(res):
            tried[res] = self._partition_passes(igraph_graph, res, seed)
            return np.unique(tried[res][0]).size

        lo, hi = 0.0, max(self.resolution, 1e-3)
        while run(hi) < target and hi < 1e3:
            lo, hi = hi, hi * 2
        for _ in range(40):
            k_hi = np.unique(tried[hi][0]).size
            if k_hi == target:
                break
            mid = 0.5 * (lo + hi)
            if run(mid) < target:
                lo = mid
            else:
                hi = mid
        if np.unique(tried[hi][0]).size != target:
            # the count is not monotone in the resolution (it can jump from 7
            # to 9 and back); scan a grid around the bracket before giving up
            for res in np.geomspace(max(lo, hi / 4, 1e-4), 2 * hi, 33):
                if run(float(res)) == target:
                    break
        best = min(tried, key=lambda r: (abs(np.unique(tried[r][0]).size - target), r))
        k = np.unique(tried[best][0]).size
        if k != target:
            warnings.warn(
                f"{type(self).__name__}: no resolution gave n_clusters={target}; "
                f"using resolution={best:.4g} with {k} clusters.",
                UserWarning,
                stacklevel=3,
            )
        return best, tried[best]

    def fit(self, X, y=None):
        """Build the cell graph of ``X`` and partition it into communities.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_features)
            Cell representation the graph is built on (scanpy builds it on the
            top principal components of scaled log-normalised data).
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted clusterer with ``labels_``.
        """
        self._validate_params()
        X = validate_input(self, X, reset=True, ensure_min_samples=2)
        n = X.shape[0]
        if self.n_clusters is not None and self.n_clusters > n:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than the number of cells "
                f"(n_samples={n})."
            )
        default = KNNGraph(n_neighbors=min(15, n - 1), mode="umap")
        adjacency = fit_graph(self.graph, default, X, shape=(n, n), what="cell graph")
        seed = check_random_state_int(self.random_state)
        igraph_graph = to_igraph(adjacency)
        if self.n_clusters is None:
            self.resolution_ = float(self.resolution)
            labels, n_iter = self._partition_passes(
                igraph_graph, self.resolution_, seed
            )
        else:
            self.resolution_, (labels, n_iter) = self._search_resolution(
                igraph_graph, seed
            )
        if n_iter is not None:
            self.n_iter_ = n_iter
        self.labels_ = labels
        self.n_clusters_ = int(np.unique(labels).size)
        self.adjacency_ = adjacency
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="clustering")
