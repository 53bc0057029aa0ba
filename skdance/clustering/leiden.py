"""Leiden clustering of cells (the graph-based baseline of scanpy)."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from skdance.clustering._community import BaseCommunityClustering
from skdance.clustering._docs import COMMUNITY_PARAMS
from skdance.utils import fill_doc

__all__ = ["Leiden"]


@fill_doc(**COMMUNITY_PARAMS)
class Leiden(BaseCommunityClustering):
    """Leiden community detection on a cell graph, as :func:`scanpy.tl.leiden`.

    A k-nearest-neighbour graph is built on ``X`` by ``graph`` (default:
    scanpy's 15-neighbour UMAP-weighted graph) and its communities are found
    by optimising the RB-configuration modularity with ``leidenalg``.
    Scanpy's recipe feeds it the top 50 principal components of scaled,
    log-normalised counts; compose that as a Pipeline.

    Transductive: there is no ``predict`` for new cells; use ``fit_predict``
    and the scorers in :mod:`skdance.metrics`, which handle this.

    Parameters
    ----------
    {graph} {resolution} {n_clusters}
    max_iter : int, default=-1
        The most passes of the Leiden optimisation (leidenalg's
        ``n_iterations``); -1 runs until a pass no longer improves the
        partition.
    {random_state}

    Attributes
    ----------
    labels_ : ndarray of shape (n_cells,)
        Cluster of every cell, 0 for the largest cluster.
    n_clusters_ : int
        Number of clusters found.
    resolution_ : float
        Resolution used.
    n_iter_ : int
        Optimisation passes run for the final partition (at that
        resolution).
    adjacency_ : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        The cell graph.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    See Also
    --------
    Louvain : Modularity optimisation without Leiden's refinement step.

    References
    ----------
    Traag, Waltman & van Eck (2019), "From Louvain to Leiden: guaranteeing
    well-connected communities", Scientific Reports 9, 5233.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdance.clustering import Leiden
    >>> X, _ = make_blobs(n_samples=90, centers=3, random_state=0)
    >>> Leiden(n_clusters=3, random_state=0).fit(X).n_clusters_
    3
    """

    _parameter_constraints = {
        **BaseCommunityClustering._parameter_constraints,
        "max_iter": [Interval(Integral, -1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        graph=None,
        resolution=1.0,
        n_clusters=None,
        max_iter=-1,
        random_state=0,
    ):
        super().__init__(
            graph=graph,
            resolution=resolution,
            n_clusters=n_clusters,
            random_state=random_state,
        )
        self.max_iter = max_iter

    def partition(self, igraph_graph, resolution, seed):
        """Return Leiden labels of the graph's vertices (see the base class)."""
        return self._partition_passes(igraph_graph, resolution, seed)[0]

    def _partition_passes(self, igraph_graph, resolution, seed):
        import leidenalg

        # leidenalg.find_partition's optimisation, one pass at a time to count
        # them (the same passes and random draws)
        partition = leidenalg.RBConfigurationVertexPartition(
            igraph_graph, weights="weight", resolution_parameter=resolution
        )
        optimiser = leidenalg.Optimiser()
        optimiser.set_rng_seed(seed)
        n_iter = 0
        while self.max_iter < 0 or n_iter < self.max_iter:
            improvement = optimiser.optimise_partition(partition, n_iterations=1)
            n_iter += 1
            if self.max_iter < 0 and improvement <= 0:
                break
        return np.asarray(partition.membership, dtype=np.int64), n_iter
